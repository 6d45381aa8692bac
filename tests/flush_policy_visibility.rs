//! Under `EveryBatch` an append returns after fdatasync and concurrent appends share syncs
//! (group commit); under `Interval` the flusher syncs in the background; readers see only
//! what each policy acknowledges.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::Duration;
use topiclog::{FlushPolicy, LogOptions, Result, TopicConfig};

fn stats(log: &topiclog::Log) -> TestResult<topiclog::PartitionStats> {
    Ok(log
        .stats()
        .partitions
        .into_iter()
        .find(|s| s.topic == "t" && s.partition == 0)
        .ok_or("no stats for t-0")?)
}

fn config(policy: FlushPolicy) -> TopicConfig {
    let mut c = TopicConfig::new();
    c.flush_policy = policy;
    c
}

#[test]
fn every_batch_syncs_before_acknowledging() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, config(FlushPolicy::EveryBatch))?;
    let p = log.partition("t", 0)?;
    for i in 0..20 {
        let at = p.append(&[rec(i)])?;
        assert_eq!(
            p.high_watermark(),
            at.last_offset + 1,
            "visible once synced"
        );
    }
    let s = stats(&log)?;
    assert!(
        s.fsyncs >= 20,
        "one sync per sequential append, got {}",
        s.fsyncs
    );
    assert!(s.fsync_max > Duration::ZERO);
    assert_eq!(s.records_appended, 20);
    Ok(())
}

#[test]
fn concurrent_appends_share_fsyncs_and_lose_nothing() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, config(FlushPolicy::EveryBatch))?;
    let threads = 8;
    let per = 50;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let p = log.partition("t", 0)?;
            Ok(std::thread::spawn(move || -> Result<Vec<i64>> {
                let mut offs = Vec::new();
                for i in 0..per {
                    offs.push(p.append(&[rec(t * 1000 + i)])?.base_offset);
                }
                Ok(offs)
            }))
        })
        .collect::<Result<_>>()?;
    let mut offsets = Vec::new();
    for h in handles {
        let offs = h.join().expect("an appender thread panicked")?;
        assert!(offs.windows(2).all(|w| w[0] < w[1]), "per-thread order");
        offsets.extend(offs);
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..(threads * per) as i64).collect::<Vec<_>>());
    let p = log.partition("t", 0)?;
    assert_eq!(read_all(&p)?.len(), (threads * per) as usize);
    let s = stats(&log)?;
    assert!(
        s.fsyncs < (threads * per),
        "group commit: {} fsyncs for {} appends",
        s.fsyncs,
        threads * per
    );
    Ok(())
}

#[test]
fn interval_policy_syncs_in_the_background() -> TestResult {
    let log = TempLog::with_options(LogOptions::new().flusher(Some(Duration::from_millis(5))))?;
    log.create_topic_with(
        "t",
        1,
        config(FlushPolicy::Interval(Duration::from_millis(20))),
    )?;
    let p = log.partition("t", 0)?;
    p.append(&[rec(0)])?;
    assert_eq!(
        p.high_watermark(),
        1,
        "acknowledged on write, visible at once"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats(&log)?.fsyncs == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the flusher never synced"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    log.close()?;
    Ok(())
}

#[test]
fn os_policy_appends_do_not_sync() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    for i in 0..10 {
        p.append(&[rec(i)])?;
    }
    assert_eq!(stats(&log)?.fsyncs, 0);
    log.flush()?;
    assert!(stats(&log)?.fsyncs > 0);
    Ok(())
}

#[test]
fn wait_for_is_woken_by_an_append() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    assert!(
        !p.wait_for(0, Duration::from_millis(20)),
        "times out with no data"
    );
    let p2 = p.clone();
    let waiter = std::thread::spawn(move || p2.wait_for(0, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(20));
    p.append(&[rec(0)])?;
    assert!(waiter.join().expect("the waiter thread panicked"));
    Ok(())
}
