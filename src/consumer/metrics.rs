//! A consumer's metrics: what `poll` returned, the lag of each assigned partition, how often
//! the application polls and how long rebalances take. Counted in the consumer's own fields
//! as it polls (an add or two per poll, no lock, no atomic: a consumer is used from one thread
//! at a time); [`ConsumerMetrics`] is the snapshot [`Consumer::metrics`](super::Consumer::metrics)
//! returns.

// Counts become f64 for rates and means: exact below 2^53, far beyond any count here.
#![allow(clippy::cast_precision_loss)]

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::TopicPartition;

/// A snapshot of a consumer's metrics, from
/// [`Consumer::metrics`](super::Consumer::metrics). Names follow Kafka's consumer metrics
/// (`records-consumed-total` is `records_consumed_total`, and so on).
///
/// Totals count from the consumer's creation. Rates and poll intervals cover a window: from
/// the previous call of `metrics()` on this consumer (or from its creation) to this one, so
/// an application that reads them every 10 s gets 10-second figures.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsumerMetrics {
    /// Records `poll` returned (`records-consumed-total`).
    pub records_consumed_total: u64,
    /// Bytes of the stored batches those records came in, batch headers included, as a Kafka
    /// fetch counts them (`bytes-consumed-total`). For a compressed batch, its compressed
    /// size.
    pub bytes_consumed_total: u64,
    /// Records per second over the window (`records-consumed-rate`).
    pub records_consumed_rate: f64,
    /// Bytes per second over the window (`bytes-consumed-rate`).
    pub bytes_consumed_rate: f64,
    /// The window the rates and poll intervals cover.
    pub window: Duration,
    /// Per assigned partition, in partition order: its high watermark minus the consumer's
    /// position, in records (`records-lag`); `None` until the position is known (before the
    /// first poll resolves it from a commit or the reset policy).
    pub records_lag: Vec<(TopicPartition, Option<i64>)>,
    /// The largest of `records_lag` (`records-lag-max`); `None` when no partition's position
    /// is known.
    pub records_lag_max: Option<i64>,
    /// Calls of `poll` in the window.
    pub polls: u64,
    /// Mean time from one `poll` call to the next in the window (`time-between-poll-avg`);
    /// `None` with fewer than two polls.
    pub time_between_poll_avg: Option<Duration>,
    /// Longest time from one `poll` call to the next in the window (`time-between-poll-max`).
    pub time_between_poll_max: Option<Duration>,
    /// Time since the last `poll` call (`last-poll-seconds-ago`); `None` before the first.
    pub last_poll_ago: Option<Duration>,
    /// Rebalances this consumer took part in as a group member, from leaving its partitions
    /// to holding the new assignment (`rebalance-total`).
    pub rebalance_total: u64,
    /// Mean duration of those rebalances (`rebalance-latency-avg`); `None` before the first.
    pub rebalance_latency_avg: Option<Duration>,
    /// Longest of them (`rebalance-latency-max`).
    pub rebalance_latency_max: Option<Duration>,
    /// Time since the last one completed (`last-rebalance-seconds-ago`).
    pub last_rebalance_ago: Option<Duration>,
}

impl fmt::Display for ConsumerMetrics {
    /// One metric a line, Kafka's name first, with its unit (`-` for one not known yet); the
    /// lag of each partition after the maximum.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Option<Duration>| {
            d.map_or_else(
                || "-".to_string(),
                |d| format!("{:.3} ms", d.as_secs_f64() * 1e3),
            )
        };
        let records =
            |n: Option<i64>| n.map_or_else(|| "-".to_string(), |n| format!("{n} records"));
        let w = self.window.as_secs_f64();
        writeln!(
            f,
            "records-consumed-total   {} records",
            self.records_consumed_total
        )?;
        writeln!(
            f,
            "records-consumed-rate    {:.1} records/s (over {w:.3} s)",
            self.records_consumed_rate
        )?;
        writeln!(
            f,
            "bytes-consumed-total     {} bytes",
            self.bytes_consumed_total
        )?;
        writeln!(
            f,
            "bytes-consumed-rate      {:.1} MB/s",
            self.bytes_consumed_rate / 1e6
        )?;
        writeln!(
            f,
            "records-lag-max          {}",
            records(self.records_lag_max)
        )?;
        for (tp, lag) in &self.records_lag {
            writeln!(
                f,
                "records-lag {}-{}  {}",
                tp.topic,
                tp.partition,
                records(*lag)
            )?;
        }
        writeln!(
            f,
            "poll-total               {} polls (in the window)",
            self.polls
        )?;
        writeln!(
            f,
            "time-between-poll-avg    {}",
            ms(self.time_between_poll_avg)
        )?;
        writeln!(
            f,
            "time-between-poll-max    {}",
            ms(self.time_between_poll_max)
        )?;
        writeln!(f, "last-poll-seconds-ago    {}", ms(self.last_poll_ago))?;
        writeln!(
            f,
            "rebalance-total          {} rebalances",
            self.rebalance_total
        )?;
        writeln!(
            f,
            "rebalance-latency-avg    {}",
            ms(self.rebalance_latency_avg)
        )?;
        writeln!(
            f,
            "rebalance-latency-max    {}",
            ms(self.rebalance_latency_max)
        )?;
        writeln!(
            f,
            "last-rebalance-seconds-ago {}",
            ms(self.last_rebalance_ago)
        )
    }
}

/// What a consumer counts as it polls.
#[derive(Debug)]
pub(super) struct Counters {
    records: u64,
    bytes: u64,
    last_poll: Option<Instant>,
    rebalances: u64,
    rebalance_time: Duration,
    rebalance_max: Duration,
    last_rebalance: Option<Instant>,
    /// Where the current window started; reset by each snapshot (`Cell`: a snapshot takes
    /// `&self`, and a consumer is used from one thread at a time).
    window: Cell<Window>,
}

/// The start of the metrics window, and the poll intervals seen in it.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    records: u64,
    bytes: u64,
    polls: u64,
    intervals: u64,
    interval_sum: Duration,
    interval_max: Duration,
}

impl Counters {
    pub(super) fn new() -> Counters {
        let now = Instant::now();
        Counters {
            records: 0,
            bytes: 0,
            last_poll: None,
            rebalances: 0,
            rebalance_time: Duration::ZERO,
            rebalance_max: Duration::ZERO,
            last_rebalance: None,
            window: Cell::new(Window {
                start: now,
                records: 0,
                bytes: 0,
                polls: 0,
                intervals: 0,
                interval_sum: Duration::ZERO,
                interval_max: Duration::ZERO,
            }),
        }
    }

    /// A `poll` call starting at `now`.
    pub(super) fn polled(&mut self, now: Instant) {
        let mut w = self.window.get();
        w.polls += 1;
        if let Some(prev) = self.last_poll {
            let gap = now.saturating_duration_since(prev);
            w.intervals += 1;
            w.interval_sum += gap;
            w.interval_max = w.interval_max.max(gap);
        }
        self.window.set(w);
        self.last_poll = Some(now);
    }

    /// Records and stored bytes a poll returned.
    pub(super) fn consumed(&mut self, records: usize, bytes: usize) {
        self.records += records as u64;
        self.bytes += bytes as u64;
    }

    /// A rebalance that took `took`, completed now.
    pub(super) fn rebalanced(&mut self, took: Duration) {
        self.rebalances += 1;
        self.rebalance_time += took;
        self.rebalance_max = self.rebalance_max.max(took);
        self.last_rebalance = Some(Instant::now());
    }

    /// The snapshot, with the lag the caller computed; starts the next window.
    pub(super) fn snapshot(
        &self,
        records_lag: Vec<(TopicPartition, Option<i64>)>,
    ) -> ConsumerMetrics {
        let now = Instant::now();
        let w = self.window.get();
        let window = now.saturating_duration_since(w.start);
        let secs = window.as_secs_f64();
        let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        self.window.set(Window {
            start: now,
            records: self.records,
            bytes: self.bytes,
            polls: 0,
            intervals: 0,
            interval_sum: Duration::ZERO,
            interval_max: Duration::ZERO,
        });
        let records_lag_max = records_lag.iter().filter_map(|(_, lag)| *lag).max();
        ConsumerMetrics {
            records_consumed_total: self.records,
            bytes_consumed_total: self.bytes,
            records_consumed_rate: rate(self.records - w.records),
            bytes_consumed_rate: rate(self.bytes - w.bytes),
            window,
            records_lag,
            records_lag_max,
            polls: w.polls,
            time_between_poll_avg: mean(w.interval_sum, w.intervals),
            time_between_poll_max: (w.intervals > 0).then_some(w.interval_max),
            last_poll_ago: self.last_poll.map(|t| now.saturating_duration_since(t)),
            rebalance_total: self.rebalances,
            rebalance_latency_avg: mean(self.rebalance_time, self.rebalances),
            rebalance_latency_max: (self.rebalances > 0).then_some(self.rebalance_max),
            last_rebalance_ago: self
                .last_rebalance
                .map(|t| now.saturating_duration_since(t)),
        }
    }
}

/// `total` over `count`; `None` for a count of zero.
fn mean(total: Duration, count: u64) -> Option<Duration> {
    (count > 0).then(|| Duration::from_secs_f64(total.as_secs_f64() / count as f64))
}
