//! A consumer with assigned partitions: order, fairness, blocking poll woken by appends,
//! wakeup, seeks, positions, timestamps, and out-of-range positions per `auto_offset_reset`.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::{Duration, Instant};
use topiclog::{ConsumerConfig, Error, OffsetReset, Record, Result, TopicPartition};

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new("t", p)
}

#[test]
fn poll_returns_records_in_order_and_fairly() -> TestResult {
    let log = TempLog::with_topic("t", 3)?;
    for p in 0..3 {
        let h = log.partition("t", p)?;
        for i in 0..100 {
            h.append(&[rec(i)])?;
        }
    }
    let mut cfg = ConsumerConfig::default();
    cfg.max_poll_records = 50;
    let mut c = log.consumer(cfg)?;
    c.assign(&[tp(0), tp(1), tp(2)])?;
    let first = c.poll(SHORT)?;
    assert_eq!(first.len(), 50);
    let mut seen = vec![Vec::new(); 3];
    let mut partitions_in_first_three_polls = std::collections::BTreeSet::new();
    for r in &first {
        seen[r.partition() as usize].push(r.offset());
        partitions_in_first_three_polls.insert(r.partition());
    }
    for n in 0..20 {
        let recs = c.poll(SHORT)?;
        if recs.is_empty() {
            break;
        }
        for r in &recs {
            if n < 2 {
                partitions_in_first_three_polls.insert(r.partition());
            }
            seen[r.partition() as usize].push(r.offset());
        }
    }
    assert_eq!(
        partitions_in_first_three_polls.len(),
        3,
        "every partition gets a turn"
    );
    for s in &seen {
        assert_eq!(
            s,
            &(0..100).collect::<Vec<i64>>(),
            "in order, none missing or repeated"
        );
    }
    Ok(())
}

#[test]
fn blocked_poll_is_woken_by_an_append_and_by_wakeup() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut c = log.consumer(ConsumerConfig::default())?;
    c.assign(&[tp(0)])?;
    assert!(c.poll(Duration::from_millis(10))?.is_empty());
    let h = log.partition("t", 0)?;
    let writer = std::thread::spawn(move || -> Result<()> {
        std::thread::sleep(Duration::from_millis(50));
        h.append(&[Record::new("late")])?;
        Ok(())
    });
    let t0 = Instant::now();
    let recs = c.poll(Duration::from_secs(30))?;
    assert_eq!(recs.len(), 1);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "woken by the append"
    );
    writer.join().expect("the writer thread panicked")?;
    let w = c.wakeup_handle();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        w.wakeup();
    });
    assert!(matches!(
        c.poll(Duration::from_secs(30)),
        Err(Error::WokenUp)
    ));
    waker.join().expect("the waker thread panicked");
    assert!(
        c.poll(Duration::from_millis(1))?.is_empty(),
        "a wakeup is consumed once"
    );
    Ok(())
}

#[test]
fn seek_position_and_offsets_for_times() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let h = log.partition("t", 0)?;
    for i in 0..10 {
        h.append(&[Record::new(format!("v{i}")).timestamp(1000 + i * 10)])?;
    }
    let mut c = log.consumer(ConsumerConfig::default())?;
    c.assign(&[tp(0)])?;
    assert_eq!(c.position(&tp(0))?, 0);
    c.seek(&tp(0), 7)?;
    assert_eq!(
        c.poll(SHORT)?
            .iter()
            .map(|r| r.offset())
            .collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
    c.seek_to_beginning(&[tp(0)])?;
    assert_eq!(c.poll(SHORT)?.len(), 10);
    c.seek_to_end(&[tp(0)])?;
    assert_eq!(c.position(&tp(0))?, 10);
    assert!(c.poll(SHORT)?.is_empty());
    let found = c.offsets_for_times(&[(tp(0), 1035)])?;
    assert_eq!(found[0].1, Some((4, 1040)));
    assert!(matches!(c.seek(&tp(5), 0), Err(Error::NotAssigned { .. })));
    Ok(())
}

#[test]
fn deleted_positions_follow_auto_offset_reset() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let h = log.partition("t", 0)?;
    for i in 0..10 {
        h.append(&[rec(i)])?;
    }
    for (reset, expect) in [
        (OffsetReset::Earliest, Some(5)),
        (OffsetReset::Latest, None),
        (OffsetReset::Error, None),
    ] {
        let mut cfg = ConsumerConfig::default();
        cfg.auto_offset_reset = reset;
        let mut c = log.consumer(cfg)?;
        c.assign(&[tp(0)])?;
        c.seek(&tp(0), 2)?;
        if h.log_start_offset() < 5 {
            h.delete_records(5)?;
        }
        match (reset, c.poll(SHORT)) {
            (OffsetReset::Error, Err(Error::OffsetOutOfRange { .. })) => {}
            (OffsetReset::Earliest, Ok(r)) => {
                assert_eq!(r.iter().next().map(|r| r.offset()), expect);
            }
            (OffsetReset::Latest, Ok(r)) => {
                assert!(r.is_empty());
                assert_eq!(c.position(&tp(0))?, 10);
            }
            (r, other) => panic!("{r:?}: {other:?}"),
        }
    }
    // No commit and reset = error.
    let mut cfg = ConsumerConfig::group("g");
    cfg.auto_offset_reset = OffsetReset::Error;
    let mut c = log.consumer(cfg)?;
    c.assign(&[tp(0)])?;
    assert!(matches!(c.poll(SHORT), Err(Error::NoOffset { .. })));
    Ok(())
}

#[test]
fn compressed_batches_are_decoded_transparently() -> TestResult {
    let log = TempLog::new()?;
    log.create_topic_with(
        "t",
        1,
        topiclog::TopicConfig::new().with("compression.type", "lz4")?,
    )?;
    let h = log.partition("t", 0)?;
    h.append(&(0..20).map(rec).collect::<Vec<_>>())?;
    let mut c = log.consumer(ConsumerConfig::default())?;
    c.assign(&[tp(0)])?;
    c.seek(&tp(0), 5)?;
    let got = c.poll(SHORT)?;
    assert_eq!(
        got.iter().map(|r| r.offset()).collect::<Vec<_>>(),
        (5..20).collect::<Vec<_>>()
    );
    assert_eq!(
        got.iter().next().ok_or("none left")?.value(),
        rec(5).value.as_deref()
    );
    Ok(())
}
