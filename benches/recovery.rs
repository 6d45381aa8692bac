//! Reopen time: how long `LogOptions::open` takes on a data directory after a clean close and
//! after a crash, against the size of the data.
//!
//! DESIGN §7 asks for a clean reopen that does not depend on the size of the data, and a crash
//! reopen proportional to the unsynced tail.
//!
//! - `reopen/clean/<size>`: one partition of `<size>` (200 MB or 2 GB) of 1 KiB records in
//!   batches of 1000, in 256 MiB segments (1 and 8 segments), closed with `Log::close`. One
//!   iteration opens the directory (timed) and closes it again (untimed). The clean-shutdown
//!   marker lets the open trust the indexes and scan nothing.
//! - `reopen/crash/<size>+tail<n>MiB`: the 200 MB or 2 GB partition, closed cleanly, then
//!   reopened and given `<n>` MiB more under `FlushPolicy::Os` before `Log::abandon` drops it
//!   without a sync, a checkpoint or the marker, as a crash would. One iteration opens it
//!   (timed), which rescans every segment from the one holding the recovery point on, from its
//!   start; then (untimed) it cuts the tail off again with `PartitionHandle::truncate_to` and
//!   closes cleanly. The bench prints, once per case, how many segments and bytes the open
//!   trusted and scanned.
//!
//! All data stays in the page cache (the bench does not drop caches), so this measures the
//! work recovery does, not the disk.
//!
//! Run: `cargo bench --bench recovery -- --noplot`.

#![allow(clippy::cast_precision_loss)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

// The generator picks hex digits by index into a 16-byte table, modulo 16.
#[allow(clippy::indexing_slicing)]
#[path = "support/values.rs"]
mod values;
use values::{POOL, value_pool};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use topiclog::{BatchBuilder, Compression, FlushPolicy, Log, LogOptions, TopicConfig};

/// Value size of every record.
const VALUE: usize = 1024;
/// Records per batch.
const BATCH: usize = 1000;
/// Segment size.
const SEGMENT_BYTES: u32 = 256 << 20;
/// Record timestamp.
const TS: i64 = 1_700_000_000_000;
/// Sizes of the cleanly closed data sets (decimal MB, as DESIGN states them).
const CLEAN_SIZES: [(u64, &str); 2] = [(200_000_000, "200MB"), (2_000_000_000, "2GB")];
/// Crash cases: the cleanly closed data set (bytes, name) and the unsynced tail written on
/// top of it before the crash, MiB.
const CRASH_CASES: [(u64, &str, u64); 4] = [
    (CLEAN_SIZES[0].0, "200MB", 16),
    (CLEAN_SIZES[0].0, "200MB", 64),
    (CLEAN_SIZES[0].0, "200MB", 256),
    (CLEAN_SIZES[1].0, "2GB", 16),
];

/// Appends batches to partition 0 of `bench` until it holds at least `bytes`; returns its end
/// offset.
fn fill(log: &Log, pool: &[u8], bytes: u64, seq: &mut u64) -> i64 {
    let handle = log.partition("bench", 0).expect("partition");
    let mut builder = BatchBuilder::new(Compression::None);
    let mut written = 0u64;
    while written < bytes {
        for _ in 0..BATCH {
            let i = (*seq as usize) % POOL;
            let value = pool.get(i * VALUE..(i + 1) * VALUE).expect("in the pool");
            builder
                .push(Some(&seq.to_be_bytes()), Some(value), &[], TS)
                .expect("push");
            *seq += 1;
        }
        let res = handle.append_builder(&mut builder).expect("append");
        black_box(res);
        written = handle_size(log);
    }
    handle.log_end_offset()
}

fn handle_size(log: &Log) -> u64 {
    log.describe_topic("bench")
        .expect("describe")
        .partitions
        .first()
        .expect("one partition")
        .size_bytes
}

/// A cleanly closed directory with `bytes` of records.
fn build(pool: &[u8], bytes: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = LogOptions::new().open(dir.path()).expect("open");
    let mut config = TopicConfig::new();
    config.flush_policy = FlushPolicy::Os;
    config.segment_bytes = SEGMENT_BYTES;
    log.create_topic_with("bench", 1, config)
        .expect("create topic");
    let mut seq = 0;
    fill(&log, pool, bytes, &mut seq);
    let d = log.describe_topic("bench").expect("describe");
    let p = d.partitions.first().expect("one partition");
    eprintln!(
        "data set: {} records, {} bytes in {} segments",
        p.log_end_offset, p.size_bytes, p.segments
    );
    log.close().expect("close");
    dir
}

fn open(dir: &Path) -> Log {
    LogOptions::new().open(dir).expect("open")
}

fn reopen(c: &mut Criterion) {
    let pool = value_pool(VALUE);
    let mut g = c.benchmark_group("reopen");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sampling_mode(SamplingMode::Flat);

    // Built on first use (untimed), so a filtered run builds only what it measures; kept for
    // the crash cases.
    let mut small: Option<tempfile::TempDir> = None;
    let mut large: Option<tempfile::TempDir> = None;
    for (bytes, name) in CLEAN_SIZES {
        let data = if bytes == CLEAN_SIZES[0].0 {
            &mut small
        } else {
            &mut large
        };
        g.bench_function(BenchmarkId::new("clean", name), |b| {
            let dir = data.get_or_insert_with(|| build(&pool, bytes));
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let log = open(dir.path());
                    elapsed += start.elapsed();
                    assert!(log.recovery_report().clean, "expected a clean open");
                    log.close().expect("close");
                }
                elapsed
            });
        });
    }

    for (base, base_name, tail) in CRASH_CASES {
        let tail_bytes = tail << 20;
        let mut reported = false;
        let id = BenchmarkId::new("crash", format!("{base_name}+tail{tail}MiB"));
        let data = if base == CLEAN_SIZES[0].0 {
            &mut small
        } else {
            &mut large
        };
        g.bench_function(id, |b| {
            let dir = data.get_or_insert_with(|| build(&pool, base));
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                let mut seq = 1u64 << 40;
                for _ in 0..iters {
                    // Untimed: reopen cleanly, write the tail, crash.
                    let log = open(dir.path());
                    assert!(log.recovery_report().clean, "expected a clean open");
                    let clean_end = log
                        .partition("bench", 0)
                        .expect("partition")
                        .log_end_offset();
                    let start_size = handle_size(&log);
                    fill(&log, &pool, start_size + tail_bytes, &mut seq);
                    log.abandon();

                    let start = Instant::now();
                    let log = open(dir.path());
                    elapsed += start.elapsed();

                    let report = log.recovery_report();
                    assert!(!report.clean, "expected a recovering open");
                    if !reported {
                        let p = report
                            .partitions
                            .iter()
                            .find(|p| p.topic == "bench")
                            .expect("the bench partition");
                        eprintln!(
                            "crash {base_name} + {tail} MiB: {} segments trusted, {} scanned \
                             ({} bytes), {} bytes cut",
                            p.segments_trusted,
                            p.segments_scanned,
                            p.bytes_scanned,
                            p.truncated_bytes
                        );
                        reported = true;
                    }
                    let handle = log.partition("bench", 0).expect("partition");
                    handle.truncate_to(clean_end).expect("truncate");
                    log.close().expect("close");
                }
                elapsed
            });
        });
    }
    g.finish();
}

criterion_group!(benches, reopen);
criterion_main!(benches);
