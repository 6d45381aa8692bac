//! Dropping a producer sends what `send_async` queued before it returns, so closing the log right after loses nothing; a closed producer refuses sends.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::Duration;
use topiclog::{Error, ProducerConfig, ProducerRecord, Result};

fn lingering() -> ProducerConfig {
    let mut cfg = ProducerConfig::default();
    // Longer than any test: only the drop (or close) sends.
    cfg.linger = Duration::from_hours(1);
    cfg
}

#[test]
fn drop_then_close_keeps_every_record() -> TestResult {
    let log = TempLog::with_topic("t", 3)?;
    let producer = log.producer(lingering())?;
    let clone = producer.clone();
    for i in 0..300 {
        producer.send_async(ProducerRecord::new("t", format!("{i}")).partition(i % 3))?;
    }
    // Let the sender thread start and wait for the linger, as it does in a running program.
    std::thread::sleep(Duration::from_millis(100));
    drop(producer);
    // A clone keeps the producer alive; its records stay queued until the last one goes.
    clone.send_async(ProducerRecord::new("t", "last").partition(0))?;
    drop(clone);
    let log = log.reopen()?;
    let total: i64 = (0..3)
        .map(|p| log.partition("t", p).map(|h| h.log_end_offset()))
        .sum::<Result<i64>>()?;
    assert_eq!(total, 301);
    Ok(())
}

#[test]
fn close_sends_then_refuses() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let producer = log.producer(lingering())?;
    let receipt = producer.send_async(ProducerRecord::new("t", "queued"))?;
    producer.close()?;
    assert_eq!(receipt.wait()?.offset, 0);
    let sent = producer.send(ProducerRecord::new("t", "late"));
    assert!(matches!(sent, Err(Error::Closed { .. })), "{sent:?}");
    let queued = producer.send_async(ProducerRecord::new("t", "late"));
    assert!(matches!(queued, Err(Error::Closed { .. })), "{queued:?}");
    producer.close()?;
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 1);
    Ok(())
}

#[test]
fn close_reports_what_its_timeout_gave_up_on() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut cfg = lingering();
    cfg.close_timeout = Duration::ZERO;
    let producer = log.producer(cfg)?;
    let receipts: Vec<_> = (0..200)
        .map(|i| producer.send_async(ProducerRecord::new("t", format!("{i}"))))
        .collect::<Result<_>>()?;
    let closed = producer.close();
    let mut given_up = 0;
    for r in receipts {
        match r.wait() {
            Ok(_) => {}
            Err(Error::Closed { .. }) => given_up += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // The sender may or may not have taken the batch before the zero timeout: either way
    // close reports exactly the records it gave up on, and only the others are stored.
    match closed {
        Ok(()) => assert_eq!(given_up, 0),
        Err(Error::SendFailed { failed, .. }) => assert_eq!(failed, given_up),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(
        log.partition("t", 0)?.log_end_offset(),
        200 - given_up as i64
    );
    Ok(())
}
