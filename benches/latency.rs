//! Latency and concurrency: how fast a blocked reader learns of an append, and how appends
//! from many threads to one partition share `fdatasync` (group commit). DESIGN §7 targets:
//! append → consumer wake-up p50 < 10 µs and p99 < 100 µs; 4 threads sending single records
//! ≥ 2x one thread; under `EveryBatch`, 16 threads ≥ 8x one thread.
//!
//! Group `wakeup` (topic under [`FlushPolicy::Os`], one partition, one 8-byte key + 100 B
//! value record per append). A waiter thread blocks; the appender (the bench thread) takes a
//! timestamp just before [`PartitionHandle::append`], and the waiter takes one when it holds
//! the record. A sample is the difference. After each sample the appender waits for the
//! waiter's report, then until `/proc/<pid>/task/<tid>/stat` shows the waiter asleep (`S`),
//! then spins [`PAUSE`] more, so every append finds the waiter really blocked. Cases:
//!
//! - `consumer_poll`: a [`Consumer`] assigned to the partition (no group, no auto-commit),
//!   blocked in [`Consumer::poll`]; the time runs until `poll` returns the record.
//! - `wait_for`: a thread blocked in [`PartitionHandle::wait_for`]; the time runs until
//!   `wait_for` returned and [`PartitionHandle::records`] has decoded the record.
//! - `consumer_poll_busy`: the same consumer with [`ConsumerConfig::busy_poll`] of
//!   [`BUSY_WINDOW`]: its `poll` spins on the wake-up flag instead of parking. The appender
//!   does not wait for it to be asleep (it never is within the window): it waits [`BUSY_SETTLE`]
//!   after the report, so the waiter is back in `poll` and spinning when the append comes.
//! - `notifier_floor`: no log work at all: the appender calls [`Notifier::notify`] on a
//!   notifier the waiter is blocked on ([`Notifier::wait_until`]). The floor of the wake-up
//!   mechanism (and of a thread wake-up on this machine).
//!
//! Criterion times the samples (`iter_custom` returns the sum of the sample latencies). When a
//! case ran, [`PERCENTILE_SAMPLES`] more samples are then taken and their p50, p90, p99, p99.9,
//! max and mean printed, with the appender's own `append` call duration beside them.
//!
//! Group `group_commit`: 1, 4 and 16 threads each send single-record appends (the same record)
//! to ONE partition, through [`PartitionHandle::append`] and through [`Producer::send`] (one
//! shared idempotent producer, the default config), under [`FlushPolicy::EveryBatch`]
//! (fdatasync before the ack), and with 1 and 4 threads under [`FlushPolicy::Os`]. One
//! criterion iteration is one record from each thread (Throughput::Elements = threads). Each
//! case runs in a fresh log in a temporary directory. After each case the bench prints the
//! records per second over all its timed iterations (warm-up included), the ratio to one
//! thread, and from [`Log::stats`] the `fdatasync` count, records per fsync, mean fsync time
//! and the share of the timed wall clock spent in fsync.
//!
//! Group `idle_producer`: one record through an idle producer (nothing queued, the sender
//! asleep), `send_async` then waiting on its receipt, with the default `linger` of 5 ms and
//! with `linger` 0; and `send` for comparison. The time to the acknowledgement is the linger
//! (plus the append), not the sender's idle sleep of up to 100 ms.
//!
//! Run: `cargo bench --bench latency -- --noplot`.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::fmt;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use topiclog::{
    ConsumerConfig, Error, FlushPolicy, Log, LogOptions, Notifier, PartitionHandle, Producer,
    ProducerConfig, ProducerRecord, Record, TopicConfig, TopicPartition,
};

/// Topic every case writes to.
const TOPIC: &str = "bench";
/// Value size in bytes (keys are 8 bytes).
const VALUE_BYTES: usize = 100;
/// Extra pause after the waiter is seen asleep, before the next append.
const PAUSE: Duration = Duration::from_micros(5);
/// The busy-poll window of `consumer_poll_busy`.
const BUSY_WINDOW: Duration = Duration::from_millis(200);
/// How long the appender waits after a busy-polling waiter's report before the next append.
const BUSY_SETTLE: Duration = Duration::from_micros(50);
/// Samples behind the printed wake-up percentiles.
const PERCENTILE_SAMPLES: usize = 20_000;
/// Longest wait for the waiter to be seen asleep before a sample goes ahead anyway.
const BLOCK_WAIT: Duration = Duration::from_millis(100);
/// Thread counts of the group-commit cases under `EveryBatch`.
const SYNC_THREADS: [usize; 3] = [1, 4, 16];
/// Thread counts of the group-commit cases under `Os`.
const OS_THREADS: [usize; 2] = [1, 4];

/// The record every append writes: an 8-byte key and a 100 B JSON-like value.
fn record() -> Record {
    let mut v =
        b"{\"seq\":00000001,\"type\":\"order.created\",\"customer\":\"c-1234\",\"payload\":\""
            .to_vec();
    while v.len() + 2 < VALUE_BYTES {
        v.push(b"0123456789abcdef"[v.len() % 16]);
    }
    v.extend_from_slice(b"\"}");
    Record::new(Bytes::from(v)).key(Bytes::from_static(b"key-0001"))
}

/// A fresh log in a temporary directory with one single-partition topic under `policy`.
fn open_log(policy: FlushPolicy) -> (Log, PartitionHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new().open(dir.path()).unwrap();
    let mut config = TopicConfig::new();
    config.flush_policy = policy;
    log.create_topic_with(TOPIC, 1, config).unwrap();
    let handle = log.partition(TOPIC, 0).unwrap();
    (log, handle, dir)
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Microseconds with two decimals.
fn us(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e6)
}

/// Where the waiter blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiter {
    /// `Consumer::poll` on an assigned partition.
    Poll,
    /// The same with busy-poll on.
    PollBusy,
    /// `PartitionHandle::wait_for`, then `records`.
    WaitFor,
    /// A bare `Notifier`: no log work.
    Notifier,
}

impl fmt::Display for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Waiter::Poll => "consumer_poll",
            Waiter::PollBusy => "consumer_poll_busy",
            Waiter::WaitFor => "wait_for",
            Waiter::Notifier => "notifier_floor",
        })
    }
}

/// A waiter thread and the appender's side of the protocol.
struct WakeRig {
    kind: Waiter,
    handle: PartitionHandle,
    record: Record,
    notifier: Arc<Notifier>,
    base: Instant,
    /// When the last append started, in ns since `base`.
    start_ns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    reports: mpsc::Receiver<Duration>,
    /// The waiter's `/proc/<pid>/task/<tid>/stat` (Linux).
    stat_path: Option<PathBuf>,
    /// `append` call durations of the samples taken so far.
    append_times: Vec<Duration>,
    /// Samples whose waiter was not seen asleep within `BLOCK_WAIT`.
    unconfirmed: u64,
    /// Samples taken so far.
    taken: u64,
    wakeup: Option<topiclog::WakeupHandle>,
    thread: Option<JoinHandle<()>>,
    // Dropped last: the log closes before its directory is removed.
    log: Option<Log>,
    _dir: tempfile::TempDir,
}

/// The state letter of a thread from its `/proc/.../stat` line (after the `(comm)` field).
fn thread_state(path: &Path) -> Option<u8> {
    let s = std::fs::read(path).ok()?;
    let close = s.iter().rposition(|&c| c == b')')?;
    s.get(close + 2).copied()
}

impl WakeRig {
    fn new(kind: Waiter) -> WakeRig {
        let (log, handle, dir) = open_log(FlushPolicy::Os);
        let notifier = Notifier::new();
        let base = Instant::now();
        let start_ns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, reports) = mpsc::channel::<Duration>();
        let (path_tx, path_rx) = mpsc::channel::<Option<PathBuf>>();
        let mut wakeup = None;

        let report = {
            let start_ns = Arc::clone(&start_ns);
            move |now: Duration| -> bool {
                let start = Duration::from_nanos(start_ns.load(Ordering::Acquire));
                tx.send(now.saturating_sub(start)).is_ok()
            }
        };
        let thread = match kind {
            Waiter::Poll | Waiter::PollBusy => {
                let mut cfg = ConsumerConfig::default();
                cfg.enable_auto_commit = false;
                if kind == Waiter::PollBusy {
                    cfg = cfg.busy_poll(BUSY_WINDOW);
                }
                let mut consumer = log.consumer(cfg).unwrap();
                consumer.assign(&[TopicPartition::new(TOPIC, 0)]).unwrap();
                wakeup = Some(consumer.wakeup_handle());
                let stop = Arc::clone(&stop);
                spawn_waiter(path_tx, move || {
                    loop {
                        match consumer.poll(Duration::from_secs(1)) {
                            Ok(recs) => {
                                let now = base.elapsed();
                                if stop.load(Ordering::Acquire) {
                                    break;
                                }
                                if recs.is_empty() {
                                    continue;
                                }
                                black_box(&recs);
                                if !report(now) {
                                    break;
                                }
                            }
                            Err(Error::WokenUp) => break,
                            Err(e) => panic!("poll: {e}"),
                        }
                    }
                })
            }
            Waiter::WaitFor => {
                let h = handle.clone();
                let stop = Arc::clone(&stop);
                spawn_waiter(path_tx, move || {
                    let mut next = h.high_watermark();
                    loop {
                        let ready = h.wait_for(next, Duration::from_secs(1));
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if !ready {
                            continue;
                        }
                        let recs = h.records(next, 64 << 10).unwrap();
                        let now = base.elapsed();
                        let Some(last) = recs.last() else { continue };
                        next = last.offset + 1;
                        black_box(&recs);
                        if !report(now) {
                            break;
                        }
                    }
                })
            }
            Waiter::Notifier => {
                let n = Arc::clone(&notifier);
                let stop = Arc::clone(&stop);
                spawn_waiter(path_tx, move || {
                    loop {
                        let woke = n.wait_until(Instant::now() + Duration::from_secs(1));
                        let now = base.elapsed();
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if woke && !report(now) {
                            break;
                        }
                    }
                })
            }
        };
        let stat_path = path_rx.recv().unwrap();
        WakeRig {
            kind,
            handle,
            record: record(),
            notifier,
            base,
            start_ns,
            stop,
            reports,
            stat_path,
            append_times: Vec::new(),
            unconfirmed: 0,
            taken: 0,
            wakeup,
            thread: Some(thread),
            log: Some(log),
            _dir: dir,
        }
    }

    /// Waits until the waiter thread is asleep (state `S`), yielding the CPU meanwhile.
    fn wait_until_blocked(&mut self) {
        if self.kind == Waiter::PollBusy {
            // It spins instead: give it time to be back in `poll`.
            let settle = Instant::now();
            while settle.elapsed() < BUSY_SETTLE {
                std::hint::spin_loop();
            }
            return;
        }
        let Some(path) = &self.stat_path else { return };
        let deadline = Instant::now() + BLOCK_WAIT;
        loop {
            if thread_state(path) == Some(b'S') {
                return;
            }
            if Instant::now() >= deadline {
                self.unconfirmed += 1;
                return;
            }
            thread::yield_now();
        }
    }

    /// Takes `n` samples: append (or notify) with the waiter blocked, wait for its report.
    fn sample(&mut self, n: u64) -> Vec<Duration> {
        let mut out = Vec::with_capacity(n as usize);
        for _ in 0..n {
            self.wait_until_blocked();
            let spin = Instant::now();
            while spin.elapsed() < PAUSE {
                std::hint::spin_loop();
            }
            let t0 = self.base.elapsed();
            self.start_ns.store(t0.as_nanos() as u64, Ordering::Release);
            if self.kind == Waiter::Notifier {
                self.notifier.notify();
            } else {
                self.handle
                    .append(std::slice::from_ref(&self.record))
                    .unwrap();
            }
            self.append_times
                .push(self.base.elapsed().saturating_sub(t0));
            out.push(self.reports.recv().unwrap());
        }
        self.taken += n;
        out
    }
}

impl Drop for WakeRig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        match self.kind {
            Waiter::Poll | Waiter::PollBusy => {
                if let Some(w) = &self.wakeup {
                    w.wakeup();
                }
            }
            Waiter::WaitFor => {
                let _ = self.handle.append(std::slice::from_ref(&self.record));
            }
            Waiter::Notifier => self.notifier.notify(),
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        if let Some(log) = self.log.take() {
            log.close().unwrap();
        }
    }
}

/// Spawns the waiter thread; it first sends the path of its own `/proc` stat file.
fn spawn_waiter(
    path_tx: mpsc::Sender<Option<PathBuf>>,
    body: impl FnOnce() + Send + 'static,
) -> JoinHandle<()> {
    thread::Builder::new()
        .name("bench-waiter".into())
        .spawn(move || {
            // "/proc/thread-self" links to "<pid>/task/<tid>".
            let path = std::fs::read_link("/proc/thread-self")
                .ok()
                .map(|p| PathBuf::from("/proc").join(p).join("stat"));
            path_tx.send(path).unwrap();
            body();
        })
        .unwrap()
}

/// Prints the percentiles of `PERCENTILE_SAMPLES` fresh samples of `rig`.
fn print_percentiles(rig: &mut WakeRig) {
    rig.append_times.clear();
    let unconfirmed_before = rig.unconfirmed;
    let mut lat = rig.sample(PERCENTILE_SAMPLES as u64);
    lat.sort_unstable();
    let mut app = std::mem::take(&mut rig.append_times);
    app.sort_unstable();
    let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
    println!(
        "wakeup/{}: {} samples (waiter not seen asleep before {} of them): \
         p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs, max {} µs, mean {} µs",
        rig.kind,
        lat.len(),
        rig.unconfirmed - unconfirmed_before,
        us(pct(&lat, 50.0)),
        us(pct(&lat, 90.0)),
        us(pct(&lat, 99.0)),
        us(pct(&lat, 99.9)),
        us(*lat.last().unwrap()),
        us(mean),
    );
    let what = if rig.kind == Waiter::Notifier {
        "notify"
    } else {
        "append"
    };
    println!(
        "wakeup/{}: the appender's {what} call: p50 {} µs, p99 {} µs, max {} µs",
        rig.kind,
        us(pct(&app, 50.0)),
        us(pct(&app, 99.0)),
        us(*app.last().unwrap()),
    );
}

fn wakeup(c: &mut Criterion) {
    let mut g = c.benchmark_group("wakeup");
    g.sample_size(10)
        .measurement_time(Duration::from_millis(1500))
        .warm_up_time(Duration::from_millis(500));
    for kind in [
        Waiter::Poll,
        Waiter::PollBusy,
        Waiter::WaitFor,
        Waiter::Notifier,
    ] {
        let mut rig = WakeRig::new(kind);
        g.bench_function(kind.to_string(), |b| {
            b.iter_custom(|iters| rig.sample(iters).iter().sum());
        });
        // Only when criterion ran this case (it may be filtered out).
        if rig.taken > 0 {
            print_percentiles(&mut rig);
        }
    }
    g.finish();
}

/// How each thread appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `PartitionHandle::append(&[record])`.
    Append,
    /// `Producer::send` on one shared idempotent producer.
    Send,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Via::Append => "append",
            Via::Send => "send",
        })
    }
}

/// One group-commit case's totals over all its timed iterations.
struct GcResult {
    policy: FlushPolicy,
    via: Via,
    threads: usize,
    records: u64,
    timed: Duration,
    fsyncs: u64,
    fsync_time: Duration,
}

impl GcResult {
    fn rate(&self) -> f64 {
        self.records as f64 / self.timed.as_secs_f64()
    }
}

/// `threads` threads each append `iters` single-record batches; returns the wall time from
/// their common start until the last one finished.
fn run_threads(
    threads: usize,
    iters: u64,
    handle: &PartitionHandle,
    producer: Option<&Producer>,
    rec: &Record,
) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let start = thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    if let Some(p) = producer {
                        let r = ProducerRecord {
                            topic: TOPIC.to_string(),
                            partition: Some(0),
                            record: rec.clone(),
                        };
                        black_box(p.send(r).unwrap());
                    } else {
                        black_box(handle.append(std::slice::from_ref(rec)).unwrap());
                    }
                }
            });
        }
        barrier.wait();
        Instant::now()
    });
    start.elapsed()
}

/// Sums the partition's (records appended, fsyncs, fsync time).
fn partition_counters(log: &Log) -> (u64, u64, Duration) {
    let s = log.stats();
    let p = s
        .partitions
        .iter()
        .find(|p| p.topic == TOPIC && p.partition == 0)
        .unwrap();
    (p.records_appended, p.fsyncs, p.fsync_time)
}

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_commit");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let rec = record();
    let mut results: Vec<GcResult> = Vec::new();
    let cases = [
        (FlushPolicy::EveryBatch, Via::Append, &SYNC_THREADS[..]),
        (FlushPolicy::EveryBatch, Via::Send, &SYNC_THREADS[..]),
        (FlushPolicy::Os, Via::Append, &OS_THREADS[..]),
        (FlushPolicy::Os, Via::Send, &OS_THREADS[..]),
    ];
    for (policy, via, counts) in cases {
        for &threads in counts {
            let (log, handle, _dir) = open_log(policy);
            let producer = (via == Via::Send).then(|| {
                let p = log.producer(ProducerConfig::default()).unwrap();
                assert!(p.producer_id().0 >= 0, "the producer is idempotent");
                p
            });
            let (recs0, fsyncs0, ftime0) = partition_counters(&log);
            let mut timed = Duration::ZERO;
            let mut calls = 0u64;
            g.throughput(Throughput::Elements(threads as u64));
            g.bench_function(BenchmarkId::new(format!("{policy}/{via}"), threads), |b| {
                b.iter_custom(|iters| {
                    calls += 1;
                    let d = run_threads(threads, iters, &handle, producer.as_ref(), &rec);
                    timed += d;
                    d
                });
            });
            let (recs1, fsyncs1, ftime1) = partition_counters(&log);
            drop(producer);
            log.close().unwrap();
            if calls == 0 {
                continue; // filtered out
            }
            let r = GcResult {
                policy,
                via,
                threads,
                records: recs1 - recs0,
                timed,
                fsyncs: fsyncs1 - fsyncs0,
                fsync_time: ftime1.saturating_sub(ftime0),
            };
            print_gc(&r, &results);
            results.push(r);
        }
    }
    g.finish();
    if !results.is_empty() {
        println!("group_commit summary (records/s over all timed iterations, warm-up included):");
        for r in &results {
            print_gc(r, &results);
        }
    }
}

/// One line per case: rate, ratio to the same case with one thread, fsync counters.
fn print_gc(r: &GcResult, done: &[GcResult]) {
    let one = done
        .iter()
        .chain(std::iter::once(r))
        .find(|o| o.policy == r.policy && o.via == r.via && o.threads == 1);
    let ratio = one.map_or_else(
        || "n/a".to_string(),
        |o| format!("{:.2}x", r.rate() / o.rate()),
    );
    let per_fsync = if r.fsyncs == 0 {
        "-".to_string()
    } else {
        format!("{:.2}", r.records as f64 / r.fsyncs as f64)
    };
    let mean_fsync = if r.fsyncs == 0 {
        "-".to_string()
    } else {
        us(r.fsync_time / r.fsyncs as u32)
    };
    println!(
        "group_commit/{}/{}/{:>2} threads: {:>9.0} rec/s, {ratio} vs 1 thread; {} records, \
         {} fsyncs ({per_fsync} records/fsync, {:.3} fsyncs/record), mean fsync {mean_fsync} µs, \
         fsync {:.0}% of timed wall clock",
        r.policy,
        r.via,
        r.threads,
        r.rate(),
        r.records,
        r.fsyncs,
        if r.records == 0 {
            0.0
        } else {
            r.fsyncs as f64 / r.records as f64
        },
        100.0 * r.fsync_time.as_secs_f64() / r.timed.as_secs_f64(),
    );
}

fn idle_producer(c: &mut Criterion) {
    let mut g = c.benchmark_group("idle_producer");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let (log, _handle, _dir) = open_log(FlushPolicy::Os);
    for (name, linger) in [
        ("send_async_wait/linger5ms", Duration::from_millis(5)),
        ("send_async_wait/linger0", Duration::ZERO),
    ] {
        let mut config = ProducerConfig::default();
        config.linger = linger;
        let producer = log.producer(config).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                // Let the sender go idle first: nothing has been queued for a while.
                thread::sleep(Duration::from_millis(2));
                let receipt = producer
                    .send_async(ProducerRecord::new(TOPIC, "idle").partition(0))
                    .unwrap();
                black_box(receipt.wait().unwrap())
            });
        });
    }
    let producer = log.producer(ProducerConfig::default()).unwrap();
    g.bench_function("send", |b| {
        b.iter(|| {
            thread::sleep(Duration::from_millis(2));
            black_box(
                producer
                    .send(ProducerRecord::new(TOPIC, "idle").partition(0))
                    .unwrap(),
            )
        });
    });
    g.finish();
}

criterion_group!(benches, wakeup, group_commit, idle_producer);
criterion_main!(benches);
