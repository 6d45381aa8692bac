//! The event store against what a Rust user would build instead: an event table in SQLite
//! (through `rusqlite` with its bundled SQLite), WAL mode, `PRIMARY KEY(stream, version)` or
//! `UNIQUE(stream, version)` enforcing the expected version (an insert of version n + 1 fails
//! when another writer took it), in both layouts: a rowid table and `WITHOUT ROWID`. Same
//! events (200 B payload, a type, a 16-byte id, a timestamp), same run.
//!
//! - `es_append_one` (criterion): one event per append with an exact expected version, to the
//!   next of 100,000 streams in turn. topiclog under `Os` against SQLite `synchronous=NORMAL`
//!   (no fsync per commit, both layouts). Then [`SAMPLES`] more appends of each are timed one
//!   by one and their p50/p99/p99.9 printed.
//! - `es_append_durable` (criterion): the same under `EveryBatch` against SQLite
//!   `synchronous=FULL` (both layouts) and a plain loop that writes the same bytes to a file
//!   and `fdatasync`s each.
//! - `es_append_threads` (printed): 8 and 16 threads appending durably to streams drawn at
//!   random from one shared pool of 100,000 (real same-stream races: a lost race reads the
//!   version again and retries, counted), for [`THREAD_SECONDS`] each; events per second,
//!   p99.9 latency of an append (retries included), races lost.
//! - `es_read_stream` (criterion, then percentiles): a store of [`DATASET`] events
//!   (`TOPICLOG_ES_BENCH_EVENTS`, default 10,000,000) over 1,000,000 streams: 100,000 of 50
//!   events, 100,000 of 20, the rest of 3 or 4; written one event per append, round-robin, so a
//!   stream's events are spread through the log. Reading one whole stream of 20 and of 50
//!   (warm page cache, random streams), topiclog against SQLite `WITHOUT ROWID` with `mmap`.
//! - `es_rebuild` (printed): rebuilding 100,000 aggregates (streams of 20) by reading each
//!   stream and folding its events, topiclog against SQLite; and the time to rebuild the whole
//!   index of the store from the log (the index directory removed), with the process's RSS
//!   after building the store and after the rebuild (anonymous and file-backed).
//!
//! Run: `cargo bench --bench eventstore -- --noplot` (the dataset takes a few minutes to
//! build; `TOPICLOG_ES_BENCH_EVENTS=1000000` for a quick run; `TOPICLOG_ES_BENCH_ONLY=append`,
//! `threads` or `read` runs one part).

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::indexing_slicing,
    clippy::too_many_lines,
    clippy::many_single_char_names
)]

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use topiclog::eventstore::{EventData, EventId, EventStore, EventStoreConfig, ReadDirection};
use topiclog::{Error, ExpectedVersion, FlushPolicy, Log, LogOptions};

const PAYLOAD: usize = 200;
const STREAMS: usize = 100_000;
const SAMPLES: usize = 100_000;
const THREAD_SECONDS: u64 = 5;
const DATASET: usize = 10_000_000;

fn payload() -> Vec<u8> {
    (0..PAYLOAD).map(|i| b'a' + (i % 26) as u8).collect()
}

fn stream_name(i: usize) -> String {
    format!("account-{i:07}")
}

fn event(data: &[u8]) -> EventData {
    EventData::new("Deposited", data.to_vec())
}

fn log_in(dir: &Path) -> Log {
    LogOptions::new().open(dir).unwrap()
}

/// The store's defaults (one partition, `preallocate=true`, 64 MiB segments) with `policy`.
fn store_config(policy: FlushPolicy) -> EventStoreConfig {
    let mut c = EventStoreConfig::default();
    c.topic_config.flush_policy = policy;
    c
}

#[derive(Clone, Copy, Debug)]
enum Layout {
    Rowid,
    WithoutRowid,
}

fn sqlite(path: &Path, layout: Layout, full: bool) -> Connection {
    let c = Connection::open(path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })
        .unwrap();
    c.pragma_update(None, "mmap_size", 16i64 << 30).unwrap();
    c.busy_timeout(Duration::from_secs(30)).unwrap();
    let ddl = match layout {
        Layout::Rowid => {
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, \
             version INTEGER NOT NULL, type TEXT NOT NULL, event_id BLOB NOT NULL, \
             data BLOB NOT NULL, ts INTEGER NOT NULL, UNIQUE(stream, version))"
        }
        Layout::WithoutRowid => {
            "CREATE TABLE IF NOT EXISTS events (stream TEXT NOT NULL, version INTEGER NOT NULL, \
             type TEXT NOT NULL, event_id BLOB NOT NULL, data BLOB NOT NULL, \
             ts INTEGER NOT NULL, PRIMARY KEY(stream, version)) WITHOUT ROWID"
        }
    };
    c.execute_batch(ddl).unwrap();
    c
}

const INSERT: &str = "INSERT INTO events (stream, version, type, event_id, data, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// The SQLite append: version = expected + 1; the key's uniqueness refuses a lost race.
fn sqlite_append(c: &Connection, stream: &str, version: u64, data: &[u8]) -> bool {
    let mut st = c.prepare_cached(INSERT).unwrap();
    match st.execute(params![
        stream,
        version as i64,
        "Deposited",
        &EventId::new().0[..],
        data,
        now_ms()
    ]) {
        Ok(_) => true,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            false
        }
        Err(e) => panic!("{e}"),
    }
}

fn sqlite_version(c: &Connection, stream: &str) -> Option<u64> {
    let mut st = c
        .prepare_cached("SELECT max(version) FROM events WHERE stream = ?1")
        .unwrap();
    st.query_row([stream], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .map(|v| v as u64)
}

/// One whole stream through SQLite: (version, type, id, data, ts) rows, owned.
type Row = (i64, String, Vec<u8>, Vec<u8>, i64);

fn sqlite_read(c: &Connection, stream: &str) -> Vec<Row> {
    let mut st = c
        .prepare_cached(
            "SELECT version, type, event_id, data, ts FROM events WHERE stream = ?1 \
             ORDER BY version",
        )
        .unwrap();
    st.query_map([stream], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn percentiles(label: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    println!(
        "{label:<44} n={:<8} p50 {:>8.1} µs  p99 {:>8.1} µs  p99.9 {:>8.1} µs  mean {:>8.1} µs",
        ns.len(),
        at(0.5),
        at(0.99),
        at(0.999),
        mean
    );
}

/// Appends to streams in turn, keeping each stream's version.
struct Turns {
    versions: Vec<Option<u64>>,
    next: usize,
}

impl Turns {
    fn new() -> Turns {
        Turns {
            versions: vec![None; STREAMS],
            next: 0,
        }
    }

    fn take(&mut self) -> (usize, Option<u64>) {
        let i = self.next;
        self.next = (self.next + 1) % STREAMS;
        (i, self.versions[i])
    }
}

fn es_append(store: &EventStore<'_>, names: &[String], turns: &mut Turns, data: &[u8]) {
    let (i, v) = turns.take();
    let expected = v.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
    let w = store.append(&names[i], expected, &[event(data)]).unwrap();
    turns.versions[i] = Some(w.last_version);
}

fn sq_append(c: &Connection, names: &[String], turns: &mut Turns, data: &[u8]) {
    let (i, v) = turns.take();
    let version = v.map_or(0, |v| v + 1);
    assert!(sqlite_append(c, &names[i], version, data));
    turns.versions[i] = Some(version);
}

/// Whether the part `name` runs (`TOPICLOG_ES_BENCH_ONLY` unset or naming it).
fn runs(name: &str) -> bool {
    std::env::var("TOPICLOG_ES_BENCH_ONLY").map_or(true, |only| only == name)
}

fn append_one(c: &mut Criterion) {
    if !runs("append") {
        return;
    }
    let names: Vec<String> = (0..STREAMS).map(stream_name).collect();
    let data = payload();
    for durable in [false, true] {
        let mut g = c.benchmark_group(if durable {
            "es_append_durable"
        } else {
            "es_append_one"
        });
        g.sample_size(if durable { 10 } else { 30 });
        g.measurement_time(Duration::from_secs(if durable { 5 } else { 8 }));
        let policy = if durable {
            FlushPolicy::EveryBatch
        } else {
            FlushPolicy::Os
        };
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path());
        let store = EventStore::open(&log, "events", &store_config(policy)).unwrap();
        let mut turns = Turns::new();
        g.bench_function("topiclog", |b| {
            b.iter(|| es_append(&store, &names, &mut turns, &data));
        });
        let mut lat = Vec::with_capacity(SAMPLES);
        let samples = if durable { SAMPLES / 50 } else { SAMPLES };
        for _ in 0..samples {
            let t = Instant::now();
            es_append(&store, &names, &mut turns, &data);
            lat.push(t.elapsed().as_nanos() as u64);
        }
        let label = if durable { "durable" } else { "os" };
        percentiles(&format!("es_append {label} topiclog"), lat);
        drop(store);
        drop(log);
        for layout in [Layout::Rowid, Layout::WithoutRowid] {
            let sdir = tempfile::tempdir().unwrap();
            let conn = sqlite(&sdir.path().join("events.db"), layout, durable);
            let mut turns = Turns::new();
            g.bench_function(format!("sqlite_{layout:?}"), |b| {
                b.iter(|| sq_append(&conn, &names, &mut turns, &data));
            });
            let mut lat = Vec::with_capacity(samples);
            for _ in 0..samples {
                let t = Instant::now();
                sq_append(&conn, &names, &mut turns, &data);
                lat.push(t.elapsed().as_nanos() as u64);
            }
            percentiles(&format!("es_append {label} sqlite {layout:?}"), lat);
        }
        if durable {
            // The floor: the same bytes written and fdatasynced, one at a time.
            let fdir = tempfile::tempdir().unwrap();
            let mut f = File::create(fdir.path().join("plain")).unwrap();
            let record = vec![7u8; PAYLOAD + 80];
            g.bench_function("write_fdatasync", |b| {
                b.iter(|| {
                    f.write_all(&record).unwrap();
                    f.sync_data().unwrap();
                });
            });
        }
        g.finish();
    }
}

/// `threads` threads appending durably for [`THREAD_SECONDS`] to random streams of a shared
/// pool: events/s, p99.9 and lost races.
fn threads_case(label: &str, threads: usize, append: &(dyn Fn(usize, &mut u64) -> u32 + Sync)) {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let lost = AtomicU64::new(0);
    let started = Instant::now();
    let lats: Vec<Vec<u64>> = std::thread::scope(|t| {
        let hs: Vec<_> = (0..threads)
            .map(|th| {
                let (stop, done, lost) = (&stop, &done, &lost);
                t.spawn(move || {
                    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (th as u64 + 1);
                    let mut lat = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let s = Instant::now();
                        let l = append(th, &mut seed);
                        lat.push(s.elapsed().as_nanos() as u64);
                        done.fetch_add(1, Ordering::Relaxed);
                        lost.fetch_add(u64::from(l), Ordering::Relaxed);
                    }
                    lat
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(THREAD_SECONDS));
        stop.store(true, Ordering::Relaxed);
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "es_append_threads {label:<28} {threads:>2} threads: {:>9.0} events/s, {} races lost",
        n as f64 / secs,
        lost.load(Ordering::Relaxed)
    );
    percentiles(
        &format!("es_append_threads {label} {threads}t"),
        lats.into_iter().flatten().collect(),
    );
}

fn rand(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn append_threads(_: &mut Criterion) {
    if !runs("threads") {
        return;
    }
    let names: Vec<String> = (0..STREAMS).map(stream_name).collect();
    let data = payload();
    for threads in [8, 16] {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path());
        let store =
            EventStore::open(&log, "events", &store_config(FlushPolicy::EveryBatch)).unwrap();
        threads_case("topiclog EveryBatch", threads, &|_, seed| {
            let s = &names[rand(seed) as usize % STREAMS];
            let mut lost = 0;
            loop {
                let v = store.stream_version(s).unwrap();
                let expected = v.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                match store.append(s, expected, &[event(&data)]) {
                    Ok(_) => return lost,
                    Err(Error::WrongExpectedVersion { .. }) => lost += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        drop(store);
        drop(log);
        for layout in [Layout::Rowid, Layout::WithoutRowid] {
            let sdir = tempfile::tempdir().unwrap();
            let path = sdir.path().join("events.db");
            drop(sqlite(&path, layout, true));
            let conns: Vec<std::sync::Mutex<Connection>> = (0..threads)
                .map(|_| std::sync::Mutex::new(sqlite(&path, layout, true)))
                .collect();
            threads_case(&format!("sqlite FULL {layout:?}"), threads, &|th, seed| {
                let c = conns[th].lock().unwrap();
                let s = &names[rand(seed) as usize % STREAMS];
                let mut lost = 0;
                loop {
                    let v = sqlite_version(&c, s).map_or(0, |v| v + 1);
                    if sqlite_append(&c, s, v, &data) {
                        return lost;
                    }
                    lost += 1;
                }
            });
        }
    }
}

/// Stream lengths of the dataset: 100,000 of 50, 100,000 of 20, the rest of 3 or 4, scaled
/// to `events`.
fn dataset(events: usize) -> Vec<u8> {
    let scale = events as f64 / DATASET as f64;
    let n = |k: usize| ((k as f64) * scale).round() as usize;
    let mut lens = Vec::new();
    lens.extend(std::iter::repeat_n(50u8, n(100_000)));
    lens.extend(std::iter::repeat_n(20u8, n(100_000)));
    lens.extend(std::iter::repeat_n(4u8, n(600_000)));
    lens.extend(std::iter::repeat_n(3u8, n(200_000)));
    lens
}

/// The process's resident memory in MiB: (total, anonymous, file-backed).
fn rss_now() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (get("VmRSS:"), get("RssAnon:"), get("RssFile:"))
}

/// The resident memory the store added since `base` (the bench's own stream names and
/// lengths are in `base`).
fn rss(base: (u64, u64, u64)) -> String {
    let now = rss_now();
    format!(
        "RSS {} MiB, of it the store's {} MiB (anonymous {} MiB, file-backed {} MiB)",
        now.0,
        now.0.saturating_sub(base.0),
        now.1.saturating_sub(base.1),
        now.2.saturating_sub(base.2)
    )
}

fn read_and_rebuild(c: &mut Criterion) {
    if !runs("read") {
        return;
    }
    let events: usize = std::env::var("TOPICLOG_ES_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DATASET);
    let lens = dataset(events);
    let total: usize = lens.iter().map(|&l| l as usize).sum();
    let names: Vec<String> = (0..lens.len()).map(stream_name).collect();
    let data = payload();
    let dir = tempfile::tempdir().unwrap();
    // topiclog first, alone in the process, for its RSS.
    let base = rss_now();
    let built = Instant::now();
    {
        let log = log_in(dir.path());
        let store = EventStore::open(&log, "events", &store_config(FlushPolicy::Os)).unwrap();
        for round in 0..50u8 {
            for (i, &len) in lens.iter().enumerate() {
                if round < len {
                    let expected = if round == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(u64::from(round) - 1)
                    };
                    store.append(&names[i], expected, &[event(&data)]).unwrap();
                }
            }
        }
        let stats = store.index_stats();
        println!(
            "es_dataset: {} streams, {} events written in {:.1} s; {}",
            stats.streams,
            stats.events,
            built.elapsed().as_secs_f64(),
            rss(base)
        );
        store.close().unwrap();
        log.close().unwrap();
    }
    {
        std::fs::remove_dir_all(dir.path().join(".eventstore")).unwrap();
        let log = log_in(dir.path());
        let t = Instant::now();
        let store = EventStore::open(&log, "events", &store_config(FlushPolicy::Os)).unwrap();
        println!(
            "es_index_rebuild: {} events, {} streams from the log in {:.2} s; {}",
            store.index_stats().events,
            store.index_stats().streams,
            t.elapsed().as_secs_f64(),
            rss(base)
        );
        store.close().unwrap();
        log.close().unwrap();
    }
    let sdir = tempfile::tempdir().unwrap();
    let sq = sqlite(&sdir.path().join("events.db"), Layout::WithoutRowid, false);
    {
        let t = Instant::now();
        let mut batch = 0;
        sq.execute_batch("BEGIN").unwrap();
        for round in 0..50u8 {
            for (i, &len) in lens.iter().enumerate() {
                if round < len {
                    assert!(sqlite_append(&sq, &names[i], u64::from(round), &data));
                    batch += 1;
                    if batch % 10_000 == 0 {
                        sq.execute_batch("COMMIT; BEGIN").unwrap();
                    }
                }
            }
        }
        sq.execute_batch("COMMIT").unwrap();
        println!(
            "es_dataset sqlite WITHOUT ROWID: {total} events in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let log = log_in(dir.path());
    let store = EventStore::open(&log, "events", &store_config(FlushPolicy::Os)).unwrap();
    let of_len = |want: u8| -> Vec<usize> {
        lens.iter()
            .enumerate()
            .filter(|(_, l)| **l == want)
            .map(|(i, _)| i)
            .collect()
    };
    let mut g = c.benchmark_group("es_read_stream");
    g.sample_size(50);
    for len in [20u8, 50] {
        let pool = of_len(len);
        // Warm the page cache over every stream of this length once.
        for &i in &pool {
            black_box(sqlite_read(&sq, &names[i]));
            black_box(
                store
                    .read_stream(&names[i], 0, ReadDirection::Forwards, 100)
                    .unwrap(),
            );
        }
        let mut seed = 0x1234_5678u64;
        g.bench_function(format!("topiclog_{len}"), |b| {
            b.iter(|| {
                let i = pool[rand(&mut seed) as usize % pool.len()];
                let got = store
                    .read_stream(&names[i], 0, ReadDirection::Forwards, 100)
                    .unwrap();
                assert_eq!(got.events.len(), usize::from(len));
                black_box(got);
            });
        });
        g.bench_function(format!("sqlite_without_rowid_{len}"), |b| {
            b.iter(|| {
                let i = pool[rand(&mut seed) as usize % pool.len()];
                let got = sqlite_read(&sq, &names[i]);
                assert_eq!(got.len(), usize::from(len));
                black_box(got);
            });
        });
        let (mut a, mut s) = (Vec::new(), Vec::new());
        for _ in 0..SAMPLES / 2 {
            let i = pool[rand(&mut seed) as usize % pool.len()];
            let t = Instant::now();
            black_box(
                store
                    .read_stream(&names[i], 0, ReadDirection::Forwards, 100)
                    .unwrap(),
            );
            a.push(t.elapsed().as_nanos() as u64);
            let t = Instant::now();
            black_box(sqlite_read(&sq, &names[i]));
            s.push(t.elapsed().as_nanos() as u64);
        }
        percentiles(&format!("es_read_stream {len} topiclog"), a);
        percentiles(&format!("es_read_stream {len} sqlite WITHOUT ROWID"), s);
    }
    g.finish();
    // Rebuild 100,000 aggregates (the streams of 20): read each stream, fold its events.
    let pool = of_len(20);
    let t = Instant::now();
    let mut sum = 0u64;
    for &i in pool.iter().take(100_000) {
        for e in store
            .read_stream(&names[i], 0, ReadDirection::Forwards, 1000)
            .unwrap()
            .events
        {
            sum += e.data.len() as u64 + e.version;
        }
    }
    let es = t.elapsed();
    let t = Instant::now();
    let mut sum2 = 0u64;
    for &i in pool.iter().take(100_000) {
        for r in sqlite_read(&sq, &names[i]) {
            sum2 += r.3.len() as u64 + r.0 as u64;
        }
    }
    let sqt = t.elapsed();
    assert_eq!(sum, sum2);
    println!(
        "es_rebuild {} aggregates: topiclog {:.2} s, sqlite WITHOUT ROWID {:.2} s ({:.2}x)",
        pool.len().min(100_000),
        es.as_secs_f64(),
        sqt.as_secs_f64(),
        sqt.as_secs_f64() / es.as_secs_f64()
    );
    store.close().unwrap();
}

criterion_group!(benches, append_one, append_threads, read_and_rebuild);
criterion_main!(benches);
