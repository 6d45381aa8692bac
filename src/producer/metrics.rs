//! [`ProducerMetrics`]: what a producer has sent, how fast, how long each batch took, what
//! failed and how full its buffer is, named after Kafka's producer metrics.
//!
//! The send path only adds to relaxed atomic counters and one bucket of a lock-free
//! histogram (see `crate::metrics`); the rates, averages and quantiles are worked out when
//! [`Producer::metrics`] is called. Timing a batch takes two reads of the monotonic clock,
//! about 40 ns each on the machine behind `BENCHMARKS.md` against 500-900 ns for a whole
//! single-record `send` there: so every batch of several records is timed, but only one
//! single-record batch in [`SAMPLE`] per thread (the latency quantiles are then those of a
//! systematic sample, which tracks the whole once there are a few hundred sends).
//!
//! [`Producer::metrics`]: crate::Producer::metrics

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::metrics::Histogram;

/// A producer's metrics at one time, from [`Producer::metrics`](crate::Producer::metrics).
/// Names follow Kafka's producer metrics (`record-send-rate` is `record_send_rate`); each
/// field's unit is in its doc.
///
/// Totals count from the producer's creation, across all its clones. Rates are over
/// [`window`](ProducerMetrics::window): the time since the previous `metrics()` call on this
/// producer (any clone), or since it was created: with several readers, each sees the rates
/// over the gap since whichever read came last. Latency quantiles are over the batches timed
/// since creation (see `request_latency_p50`), accurate to 12.5% (each is the upper bound of
/// a log-linear bucket). The counters are read one after another, not at one instant: while
/// records are being sent they may disagree by the last few.
///
/// A batch is what one append stores: one `send`, one partition's share of a `send_batch`,
/// or one batch of `send_async` records (after any split to fit `max.message.bytes`).
///
/// ```
/// use topiclog::{Log, ProducerConfig, ProducerRecord};
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let log = Log::open(dir.path())?;
/// log.create_topic("events", 1)?;
/// let producer = log.producer(ProducerConfig::default())?;
/// for i in 0..100 {
///     producer.send(ProducerRecord::new("events", format!("event {i}")))?;
/// }
/// let m = producer.metrics();
/// assert_eq!(m.record_send_total, 100);
/// assert_eq!(m.batch_total, 100); // one batch per `send`
/// assert!(m.request_latency_p50 <= m.request_latency_p99);
/// println!("{m}"); // one line per metric, with units
/// # Ok::<_, topiclog::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records stored (Kafka's `record-send-total`), a count since creation.
    pub record_send_total: u64,
    /// Records stored per second over `window` (`record-send-rate`).
    pub record_send_rate: f64,
    /// Bytes of batches stored, as written to the log (after compression, with batch
    /// headers), since creation (`byte-total`).
    pub byte_total: u64,
    /// Bytes of batches stored per second over `window` (`byte-rate`).
    pub byte_rate: f64,
    /// Batches stored since creation (Kafka's `request-total`: here one append is one
    /// request).
    pub batch_total: u64,
    /// Mean size of a stored batch, in bytes, since creation (`batch-size-avg`).
    pub batch_size_avg: f64,
    /// Largest stored batch, in bytes, since creation (`batch-size-max`).
    pub batch_size_max: u64,
    /// Mean records per stored batch since creation (`records-per-request-avg`).
    pub records_per_batch_avg: f64,
    /// Median time to store a batch (`request-latency`, p50): encoding, compression, the
    /// append, and the sync when the flush policy asks for one per batch. Time a
    /// `send_async` record waits in its batch (`linger`) is not included. Every batch of
    /// several records is timed, one single-record batch in 8 per thread (a clock read costs
    /// a noticeable part of a single send).
    pub request_latency_p50: Duration,
    /// 99th percentile of the time to store a batch (`request-latency`, p99).
    pub request_latency_p99: Duration,
    /// Longest time to store a timed batch (`request-latency-max`).
    pub request_latency_max: Duration,
    /// Records that failed, a count since creation (`record-error-total`): each record of a
    /// `send` or `send_batch` that returned an error and was not stored, each `send_async`
    /// that returned an error, and each `send_async` record whose receipt holds one.
    pub record_error_total: u64,
    /// Records that failed per second over `window` (`record-error-rate`).
    pub record_error_rate: f64,
    /// `buffer.memory`, in bytes (`buffer-total-bytes`).
    pub buffer_total_bytes: u64,
    /// Bytes of `buffer.memory` held by `send_async` records queued or being sent, not yet
    /// acknowledged (estimated as `buffer.memory` counts them).
    pub buffer_used_bytes: u64,
    /// Bytes of `buffer.memory` free (`buffer-available-bytes`).
    pub buffer_available_bytes: u64,
    /// The time the rates are over: since the previous `metrics()` call on this producer,
    /// or since it was created.
    pub window: Duration,
}

impl fmt::Display for ProducerMetrics {
    /// One metric a line, Kafka's name first, with its unit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.window.as_secs_f64();
        writeln!(
            f,
            "record-send-total        {} records",
            self.record_send_total
        )?;
        writeln!(
            f,
            "record-send-rate         {:.1} records/s (over {w:.3} s)",
            self.record_send_rate
        )?;
        writeln!(f, "byte-total               {} bytes", self.byte_total)?;
        writeln!(
            f,
            "byte-rate                {:.1} MB/s",
            self.byte_rate / 1e6
        )?;
        writeln!(f, "batch-total              {} batches", self.batch_total)?;
        writeln!(
            f,
            "batch-size-avg           {:.1} bytes",
            self.batch_size_avg
        )?;
        writeln!(f, "batch-size-max           {} bytes", self.batch_size_max)?;
        writeln!(
            f,
            "records-per-batch-avg    {:.1} records",
            self.records_per_batch_avg
        )?;
        writeln!(
            f,
            "request-latency-p50      {:.1} µs",
            micros(self.request_latency_p50)
        )?;
        writeln!(
            f,
            "request-latency-p99      {:.1} µs",
            micros(self.request_latency_p99)
        )?;
        writeln!(
            f,
            "request-latency-max      {:.1} µs",
            micros(self.request_latency_max)
        )?;
        writeln!(
            f,
            "record-error-total       {} records",
            self.record_error_total
        )?;
        writeln!(
            f,
            "record-error-rate        {:.1} records/s",
            self.record_error_rate
        )?;
        writeln!(
            f,
            "buffer-total-bytes       {} bytes",
            self.buffer_total_bytes
        )?;
        writeln!(
            f,
            "buffer-used-bytes        {} bytes",
            self.buffer_used_bytes
        )?;
        write!(
            f,
            "buffer-available-bytes   {} bytes",
            self.buffer_available_bytes
        )
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One single-record batch in this many is timed, per thread.
pub(super) const SAMPLE: u32 = 8;

thread_local! {
    /// Single-record batches this thread stored, for the sampling of their latency.
    static SINGLES: Cell<u32> = const { Cell::new(0) };
}

/// What the send path adds to; shared by a producer's clones.
#[derive(Debug)]
pub(super) struct Counters {
    records: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    batch_max: AtomicU64,
    errors: AtomicU64,
    /// Nanoseconds per timed batch (see [`SAMPLE`]).
    latency: Histogram,
    /// The totals at the previous read, for the rates.
    last: Mutex<Mark>,
}

#[derive(Debug)]
struct Mark {
    at: Instant,
    records: u64,
    bytes: u64,
    errors: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batch_max: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Histogram::default(),
            last: Mutex::new(Mark {
                at: Instant::now(),
                records: 0,
                bytes: 0,
                errors: 0,
            }),
        }
    }
}

impl Counters {
    /// When a batch of `records` records begins, if it is to be timed: every batch of
    /// several records, one single-record batch in [`SAMPLE`] per thread.
    #[inline]
    pub(super) fn start(records: usize) -> Option<Instant> {
        if records > 1 {
            return Some(Instant::now());
        }
        SINGLES.with(|n| {
            let seen = n.get();
            n.set(seen.wrapping_add(1));
            (seen % SAMPLE == 0).then(Instant::now)
        })
    }

    /// A batch of `records` records and `bytes` bytes was stored; `start` is what
    /// [`Counters::start`] said when it began.
    #[inline]
    pub(super) fn stored(&self, records: usize, bytes: usize, start: Option<Instant>) {
        if let Some(start) = start {
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.latency.record(nanos);
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        let bytes = bytes as u64;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if bytes > self.batch_max.load(Ordering::Relaxed) {
            self.batch_max.fetch_max(bytes, Ordering::Relaxed);
        }
    }

    /// `n` records failed.
    pub(super) fn failed(&self, n: usize) {
        if n > 0 {
            self.errors.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The metrics now; the rates over the time since the previous call.
    #[allow(clippy::cast_precision_loss)]
    pub(super) fn read(&self, buffer_total: usize, buffer_used: usize) -> ProducerMetrics {
        let lat = self.latency.snapshot();
        let records = self.records.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let errors = self.errors.load(Ordering::Relaxed);
        let batches = self.batches.load(Ordering::Relaxed);
        let now = Instant::now();
        let (window, d_records, d_bytes, d_errors) = {
            let mut last = self.last.lock();
            let delta = (
                now.saturating_duration_since(last.at),
                records.saturating_sub(last.records),
                bytes.saturating_sub(last.bytes),
                errors.saturating_sub(last.errors),
            );
            *last = Mark {
                at: now,
                records,
                bytes,
                errors,
            };
            delta
        };
        let secs = window.as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let per_batch = |n: u64| {
            if batches > 0 {
                n as f64 / batches as f64
            } else {
                0.0
            }
        };
        ProducerMetrics {
            record_send_total: records,
            record_send_rate: rate(d_records),
            byte_total: bytes,
            byte_rate: rate(d_bytes),
            batch_total: batches,
            batch_size_avg: per_batch(bytes),
            batch_size_max: self.batch_max.load(Ordering::Relaxed),
            records_per_batch_avg: per_batch(records),
            request_latency_p50: Duration::from_nanos(lat.quantile(0.5)),
            request_latency_p99: Duration::from_nanos(lat.quantile(0.99)),
            request_latency_max: Duration::from_nanos(lat.max),
            record_error_total: errors,
            record_error_rate: rate(d_errors),
            buffer_total_bytes: buffer_total as u64,
            buffer_used_bytes: buffer_used as u64,
            buffer_available_bytes: buffer_total.saturating_sub(buffer_used) as u64,
            window,
        }
    }
}
