//! What a Kafka consumer user reaches for: `pause`/`resume`/`paused` (positions and
//! assignment kept, pauses dropped by a rebalance), busy-poll (a spinning poll still honours
//! its timeout and `wakeup`, and returns what is appended while it spins), and metrics
//! (records and bytes consumed, lag per partition, time between polls, rebalances).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use topiclog::{Consumer, ConsumerConfig, Error, RebalanceListener, Record, TopicPartition};

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

/// Polls until `done` holds of the consumer (or gives up after about 4 s; the caller's
/// assertions then say what was missing).
fn poll_until(c: &mut Consumer, done: impl Fn(&Consumer) -> bool) -> topiclog::Result<()> {
    for _ in 0..400 {
        c.poll(Duration::from_millis(10))?;
        if done(c) {
            break;
        }
    }
    Ok(())
}

fn offsets(c: &mut Consumer, wait: Duration) -> TestResult<Vec<(i32, i64)>> {
    Ok(c.poll(wait)?
        .iter()
        .map(|r| (r.partition(), r.offset()))
        .collect())
}

#[test]
fn paused_partitions_return_nothing_and_resume_where_they_stood() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    for i in 0..3 {
        log.append("t", 0, &[rec(i)])?;
        log.append("t", 1, &[rec(10 + i)])?;
    }
    let mut cfg = ConsumerConfig::default();
    cfg.max_poll_records = 2;
    let mut c = log.consumer(cfg)?;
    c.assign(&[tp(0), tp(1)])?;
    c.pause(&[tp(1)])?;
    assert_eq!(c.paused(), BTreeSet::from([tp(1)]));
    // Only partition 0, in order, until it runs dry; partition 1 stays where it was.
    let mut got = offsets(&mut c, Duration::from_millis(100))?;
    got.extend(offsets(&mut c, Duration::from_millis(100))?);
    assert_eq!(got, vec![(0, 0), (0, 1), (0, 2)]);
    assert!(offsets(&mut c, Duration::from_millis(50))?.is_empty());
    assert_eq!(c.position(&tp(1))?, 0);
    assert_eq!(c.assignment(), vec![tp(0), tp(1)]);
    // An append to the paused partition does not end a poll early with nothing.
    log.append("t", 1, &[rec(13)])?;
    assert!(offsets(&mut c, Duration::from_millis(50))?.is_empty());
    c.resume(&[tp(1)])?;
    assert!(c.paused().is_empty());
    let mut got = offsets(&mut c, Duration::from_millis(100))?;
    got.extend(offsets(&mut c, Duration::from_millis(100))?);
    assert_eq!(got, vec![(1, 0), (1, 1), (1, 2), (1, 3)]);
    Ok(())
}

#[test]
fn pausing_a_partition_not_assigned_fails_and_pauses_nothing() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let mut c = log.consumer(ConsumerConfig::default())?;
    c.assign(&[tp(0)])?;
    let err = c.pause(&[tp(0), tp(1)]).unwrap_err();
    assert!(
        matches!(err, Error::NotAssigned { partition: 1, .. }),
        "{err}"
    );
    assert!(c.paused().is_empty());
    assert!(matches!(
        c.resume(&[tp(1)]).unwrap_err(),
        Error::NotAssigned { .. }
    ));
    Ok(())
}

#[test]
fn assign_keeps_the_pauses_of_partitions_it_keeps() -> TestResult {
    let log = TempLog::with_topic("t", 3)?;
    let mut c = log.consumer(ConsumerConfig::default())?;
    c.assign(&[tp(0), tp(1)])?;
    c.pause(&[tp(0), tp(1)])?;
    c.assign(&[tp(1), tp(2)])?;
    assert_eq!(c.paused(), BTreeSet::from([tp(1)]));
    Ok(())
}

/// Pauses again after each assignment, as the docs suggest; counts the assignments.
struct Repause {
    assigned: Arc<std::sync::atomic::AtomicUsize>,
}

impl RebalanceListener for Repause {
    fn on_partitions_assigned(&mut self, consumer: &mut Consumer, partitions: &[TopicPartition]) {
        self.assigned
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = consumer.pause(partitions);
    }
}

#[test]
fn a_rebalance_drops_the_pauses_of_revoked_partitions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(open(dir.path())?);
    log.create_topic("t", 2)?;
    let mut group = ConsumerConfig::group("g");
    group.enable_auto_commit = false;
    let mut a = log.consumer(group.clone())?;
    a.subscribe(&["t"])?;
    poll_until(&mut a, |c| c.assignment().len() == 2)?;
    a.pause(&[tp(0), tp(1)])?;
    let generation = a.group_generation().ok_or("not in the group")?.1;
    // A second member joins: the rebalance revokes both partitions of `a`, and their pauses.
    let b_log = Arc::clone(&log);
    let b = std::thread::spawn(move || -> topiclog::Result<Consumer> {
        let mut b = b_log.consumer(group)?;
        b.subscribe(&["t"])?;
        poll_until(&mut b, |c| c.assignment().len() == 1)?;
        Ok(b)
    });
    poll_until(&mut a, |c| {
        c.group_generation().is_some_and(|g| g.1 > generation) && c.assignment().len() == 1
    })?;
    let b = b.join().expect("member b")?;
    assert_eq!(a.assignment().len(), 1);
    assert!(
        a.paused().is_empty(),
        "pauses survived the rebalance: {:?}",
        a.paused()
    );
    // A listener that pauses again holds them paused after the next rebalance.
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    a.set_rebalance_listener(Repause {
        assigned: Arc::clone(&count),
    });
    b.close()?;
    poll_until(&mut a, |c| c.assignment().len() == 2)?;
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(a.paused(), BTreeSet::from([tp(0), tp(1)]));
    Ok(())
}

#[test]
fn busy_poll_returns_an_append_made_while_it_spins() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(open(dir.path())?);
    log.create_topic("t", 1)?;
    let mut c = log.consumer(ConsumerConfig::default().busy_poll(Duration::from_secs(10)))?;
    c.assign(&[tp(0)])?;
    let appender = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            log.append("t", 0, &[Record::new("x")])
        })
    };
    let got = offsets(&mut c, Duration::from_secs(20))?;
    appender.join().expect("appender")?;
    assert_eq!(got, vec![(0, 0)]);
    Ok(())
}

#[test]
fn busy_poll_still_honours_the_timeout_and_wakeup() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut c = log.consumer(ConsumerConfig::default().busy_poll(Duration::from_secs(30)))?;
    c.assign(&[tp(0)])?;
    // The timeout bounds the spin: a 100 ms poll does not spin for the 30 s window.
    let started = Instant::now();
    assert!(offsets(&mut c, Duration::from_millis(100))?.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // wakeup() from another thread ends a spinning poll.
    let wake = c.wakeup_handle();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        wake.wakeup();
    });
    let started = Instant::now();
    assert!(matches!(
        c.poll(Duration::from_mins(1)),
        Err(Error::WokenUp)
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    waker.join().expect("waker");
    Ok(())
}

#[test]
fn metrics_count_records_bytes_lag_and_polls() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    for i in 0..5 {
        log.append("t", 0, &[rec(i)])?;
    }
    log.append("t", 1, &[rec(9)])?;
    let mut cfg = ConsumerConfig::default();
    cfg.max_poll_records = 3;
    let mut c = log.consumer(cfg)?;
    c.assign(&[tp(0), tp(1)])?;
    let m = c.metrics();
    assert_eq!(m.records_consumed_total, 0);
    assert_eq!(m.records_lag, vec![(tp(0), None), (tp(1), None)]);
    assert_eq!(m.last_poll_ago, None);
    let mut polled = 0;
    while polled < 6 {
        polled += c.poll(Duration::from_millis(100))?.len();
        std::thread::sleep(Duration::from_millis(5));
    }
    let m = c.metrics();
    assert_eq!(m.records_consumed_total, 6);
    // Each record is its own batch: 61 header bytes plus the record.
    let stored: u64 = log
        .describe_topic("t")?
        .partitions
        .iter()
        .map(|p| p.size_bytes)
        .sum();
    assert_eq!(m.bytes_consumed_total, stored);
    assert!(m.records_consumed_rate > 0.0 && m.bytes_consumed_rate > 0.0);
    assert_eq!(m.records_lag, vec![(tp(0), Some(0)), (tp(1), Some(0))]);
    assert_eq!(m.records_lag_max, Some(0));
    assert!(m.polls >= 2);
    let avg = m.time_between_poll_avg.ok_or("no poll interval")?;
    let max = m.time_between_poll_max.ok_or("no poll interval")?;
    assert!(
        avg >= Duration::from_millis(5) && max >= avg,
        "{avg:?} {max:?}"
    );
    assert!(m.last_poll_ago.is_some());
    // The next window starts at the last snapshot; lag follows appends.
    log.append("t", 1, &[rec(10), rec(11)])?;
    let m = c.metrics();
    assert_eq!(m.polls, 0);
    assert!(m.records_consumed_rate.abs() < f64::EPSILON);
    assert_eq!(m.records_lag_max, Some(2));
    assert_eq!(m.rebalance_total, 0);
    Ok(())
}

#[test]
fn metrics_count_rebalances_and_their_duration() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let mut cfg = ConsumerConfig::group("g");
    cfg.enable_auto_commit = false;
    let mut c = log.consumer(cfg)?;
    c.subscribe(&["t"])?;
    poll_until(&mut c, |c| c.assignment().len() == 2)?;
    let m = c.metrics();
    assert_eq!(m.rebalance_total, 1);
    let avg = m.rebalance_latency_avg.ok_or("no rebalance time")?;
    assert_eq!(m.rebalance_latency_max, Some(avg));
    assert!(m.last_rebalance_ago.is_some());
    Ok(())
}
