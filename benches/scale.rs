//! Scale checks that are not throughput curves, so they are a plain program (no criterion)
//! printing what it measured:
//!
//! 1. **10,000 partitions in one store** (DESIGN §7: bounded fds and maps, RSS < 512 MB). A
//!    fresh process state: one topic of 10,000 partitions; times creating it, one append to
//!    each partition, one read of each, a clean close and a reopen; after each step prints the
//!    process's open descriptors (`/proc/self/fd`), memory maps (`/proc/self/maps`), resident
//!    memory (`VmRSS`) and its peak (`VmHWM`) from `/proc/self/status`, and the log's own
//!    counters. Run twice: with default `LogOptions`, and with the budgets of
//!    `tests/partitions_10k_bounded_fds.rs` (64 write descriptors, 256 mapped segments), and
//!    a third time with those budgets on a `preallocate=true` topic, also printing the `.log`
//!    bytes on disk against the data (the ranges reserved ahead of it). It runs first, so
//!    `VmHWM` is the first run's peak.
//! 2. **Append cost over 100 segments** (DESIGN §7: flat within 1.2x). One partition with
//!    1 MiB segments gets batches of 10 records (8-byte keys, 100 B values) under
//!    `FlushPolicy::Os` until it has 100 segments; every append is timed on its own. Prints the
//!    median and mean time per append of each tenth of the appends, and the ratio of the last
//!    tenth to the first. A plain file written with the same bytes (one `write_all` per
//!    batch) is measured the same way, so growth that comes from the machine (page cache,
//!    writeback) shows there too. Repeated [`RUNS`] times.
//!
//! Run: `cargo bench --bench scale` (1-4 minutes here, plus the build: creating and closing
//! 10,000 partitions follows the disk).

#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

// The generator picks hex digits by index into a 16-byte table, modulo 16.
#[allow(clippy::indexing_slicing)]
#[path = "support/values.rs"]
mod values;
use values::{POOL, value_pool};

use topiclog::{BatchBuilder, Compression, FlushPolicy, LogOptions, Record, TopicConfig};

/// Partitions in the wide topic.
const PARTITIONS: i32 = 10_000;
/// Segment size of the growth check.
const SEGMENT_BYTES: u32 = 1 << 20;
/// Segments the growth check fills.
const SEGMENTS: usize = 100;
/// Records per append in the growth check.
const BATCH: usize = 10;
/// Value size in the growth check.
const VALUE: usize = 100;
/// Runs of the growth check.
const RUNS: usize = 3;
/// Appends slower than this are counted apart (ns).
const SLOW_NS: u64 = 50_000;
/// Record timestamp.
const TS: i64 = 1_700_000_000_000;

/// A field of `/proc/self/status` in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

fn process_line(step: &str, took: Duration) {
    println!(
        "  {step:<28} {:>9.1} ms   fds {:>5}   maps {:>6}   VmRSS {:>7.1} MiB   VmHWM {:>7.1} MiB",
        took.as_secs_f64() * 1e3,
        fds(),
        maps(),
        status_kb("VmRSS") as f64 / 1024.0,
        status_kb("VmHWM") as f64 / 1024.0,
    );
}

fn wide(label: &str, options: &dyn Fn() -> LogOptions, config: &TopicConfig) {
    println!("10,000 partitions, {label}:");
    process_line("before open", Duration::ZERO);
    let dir = tempfile::tempdir().expect("temp dir");

    let t = Instant::now();
    let log = options().open(dir.path()).expect("open");
    process_line("open (empty)", t.elapsed());

    let t = Instant::now();
    log.create_topic_with("wide", PARTITIONS, config.clone())
        .expect("create topic");
    process_line("create topic", t.elapsed());

    let t = Instant::now();
    for i in 0..PARTITIONS {
        let p = log.partition("wide", i).expect("partition");
        p.append(&[Record::new(format!("v{i}")).key("k")])
            .expect("append");
    }
    process_line("one append each", t.elapsed());
    let s = log.stats();
    println!(
        "  log.stats(): {} write fds open, {} segments mapped",
        s.open_files, s.mapped_segments
    );
    let data: u64 = log
        .describe_topic("wide")
        .expect("describe")
        .partitions
        .iter()
        .map(|p| p.size_bytes)
        .sum();
    println!(
        "  .log bytes on disk {} for {data} bytes of data",
        log_bytes(dir.path())
    );

    let t = Instant::now();
    for i in 0..PARTITIONS {
        let got = log
            .partition("wide", i)
            .expect("partition")
            .records(0, 1024)
            .expect("read");
        assert_eq!(
            got.first().and_then(|r| r.value.as_deref()),
            Some(format!("v{i}").as_bytes())
        );
    }
    process_line("one read each", t.elapsed());
    let s = log.stats();
    println!(
        "  log.stats(): {} write fds open, {} segments mapped",
        s.open_files, s.mapped_segments
    );

    let t = Instant::now();
    log.close().expect("close");
    process_line("close", t.elapsed());

    let t = Instant::now();
    let log = options().open(dir.path()).expect("reopen");
    process_line("reopen (clean)", t.elapsed());
    assert!(log.recovery_report().clean);

    let t = Instant::now();
    for i in 0..PARTITIONS {
        let got = log
            .partition("wide", i)
            .expect("partition")
            .records(0, 1024)
            .expect("read");
        assert_eq!(got.len(), 1);
    }
    process_line("one read each after reopen", t.elapsed());
    let t = Instant::now();
    log.close().expect("close");
    process_line("close", t.elapsed());
    drop(dir);
    println!();
}

/// Median and mean of `xs` in ns.
fn median_mean(xs: &mut [u64]) -> (f64, f64) {
    xs.sort_unstable();
    let median = xs.get(xs.len() / 2).copied().unwrap_or(0) as f64;
    let mean = xs.iter().sum::<u64>() as f64 / xs.len().max(1) as f64;
    (median, mean)
}

/// Prints per-tenth median and mean append time and returns (median ratio, mean ratio) of the
/// last tenth to the first.
fn deciles(label: &str, times: &[u64]) -> (f64, f64) {
    let tenth = times.len() / 10;
    let mut line_median = String::new();
    let mut line_mean = String::new();
    let mut line_slow = String::new();
    let mut first = (0.0, 0.0);
    let mut last = (0.0, 0.0);
    for (d, chunk) in times.chunks(tenth.max(1)).take(10).enumerate() {
        let mut c = chunk.to_vec();
        let (median, mean) = median_mean(&mut c);
        let _ = write!(line_median, " {median:>6.0}");
        let _ = write!(line_mean, " {mean:>6.0}");
        let slow = c.iter().filter(|&&t| t > SLOW_NS).count();
        let _ = write!(line_slow, " {slow:>6}");
        if d == 0 {
            first = (median, mean);
        }
        last = (median, mean);
    }
    let ratio = (last.0 / first.0, last.1 / first.1);
    println!(
        "  {label:<9} median ns/append by tenth:{line_median}   last/first {:.2}",
        ratio.0
    );
    println!(
        "  {label:<9} mean   ns/append by tenth:{line_mean}   last/first {:.2}",
        ratio.1
    );
    let slow_ns: u64 = times.iter().filter(|&&t| t > SLOW_NS).sum();
    println!(
        "  {label:<9} appends > 50 us by tenth: {line_slow}   ({:.0}% of all append time)",
        slow_ns as f64 * 100.0 / times.iter().sum::<u64>().max(1) as f64
    );
    ratio
}

/// Pushes records `*seq..*seq + BATCH` into `builder`.
fn fill(builder: &mut BatchBuilder, pool: &[u8], seq: &mut u64) {
    for _ in 0..BATCH {
        let i = (*seq as usize) % POOL;
        let value = pool.get(i * VALUE..(i + 1) * VALUE).expect("in the pool");
        builder
            .push(Some(&seq.to_be_bytes()), Some(value), &[], TS)
            .expect("push");
        *seq += 1;
    }
}

/// The bytes of one encoded batch, for the floor.
fn one_batch(pool: &[u8]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    fill(&mut b, pool, &mut 0);
    b.finish().expect("encode").to_vec()
}

fn growth(run: usize, pool: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = LogOptions::new().open(dir.path()).expect("open");
    let mut config = TopicConfig::new();
    config.flush_policy = FlushPolicy::Os;
    config.segment_bytes = SEGMENT_BYTES;
    log.create_topic_with("grow", 1, config)
        .expect("create topic");
    let handle = log.partition("grow", 0).expect("partition");
    let mut builder = BatchBuilder::new(Compression::None);
    let mut seq = 0u64;
    let mut times = Vec::new();
    let started = Instant::now();
    loop {
        fill(&mut builder, pool, &mut seq);
        let t = Instant::now();
        black_box(handle.append_builder(&mut builder).expect("append"));
        times.push(t.elapsed().as_nanos() as u64);
        // Checked every 1000 appends, outside the timed call.
        if times.len() % 1000 == 0 {
            let d = log.describe_topic("grow").expect("describe");
            if d.partitions.first().expect("one partition").segments >= SEGMENTS {
                break;
            }
        }
    }
    let wall = started.elapsed();
    let d = log.describe_topic("grow").expect("describe");
    let p = d.partitions.first().expect("one partition");
    println!(
        "run {}: {} appends of {BATCH} x {VALUE} B, {} segments, {} bytes, {:.2} s wall",
        run + 1,
        times.len(),
        p.segments,
        p.size_bytes,
        wall.as_secs_f64()
    );
    deciles("topiclog", &times);
    log.close().expect("close");

    // The floor: the same number of writes of one encoded batch's bytes to a plain file.
    let one = one_batch(pool);
    let path = dir.path().join("floor.log");
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .expect("floor file");
    let mut floor = Vec::with_capacity(times.len());
    for _ in 0..times.len() {
        let t = Instant::now();
        f.write_all(black_box(&one)).expect("write");
        floor.push(t.elapsed().as_nanos() as u64);
    }
    deciles("floor", &floor);
}

/// Bytes of every `.log` under `dir` (file lengths: with `preallocate`, data plus the ranges
/// reserved ahead of it).
fn log_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| {
                let path = e.path();
                if path.is_dir() {
                    log_bytes(&path)
                } else if path.extension().is_some_and(|x| x == "log") {
                    e.metadata().map_or(0, |m| m.len())
                } else {
                    0
                }
            })
            .sum()
    })
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter is not supported.
    let plain = TopicConfig::new();
    wide("default LogOptions", &LogOptions::new, &plain);
    let budgets = || {
        LogOptions::new()
            .max_open_files(64)
            .max_mapped_segments(256)
    };
    wide(
        "max_open_files(64), max_mapped_segments(256)",
        &budgets,
        &plain,
    );
    // Each open writer holds a writable map and a reserved range; the budget bounds both.
    let prealloc = TopicConfig::new()
        .with("preallocate", "true")
        .expect("preallocate");
    wide(
        "preallocate=true, max_open_files(64), max_mapped_segments(256)",
        &budgets,
        &prealloc,
    );

    let pool = value_pool(VALUE);
    println!(
        "Append cost over {SEGMENTS} segments of {} KiB:",
        SEGMENT_BYTES >> 10
    );
    for run in 0..RUNS {
        growth(run, &pool);
    }
}
