//! `Producer::flush` fails when a `send_async` record it waited for failed, and says how many; each receipt keeps its own error.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Error, ProducerConfig, ProducerRecord, TopicConfig};

#[test]
fn flush_reports_refused_records() -> TestResult {
    let log = TempLog::new()?;
    log.create_topic_with(
        "t",
        1,
        TopicConfig::new().with("max.message.bytes", "1024")?,
    )?;
    let producer = log.producer(ProducerConfig::default())?;
    let mut receipts = Vec::new();
    for i in 0..30 {
        let size = if i % 10 == 3 { 2048 } else { 10 };
        receipts.push(producer.send_async(ProducerRecord::new("t", vec![b'v'; size]))?);
    }
    match producer.flush() {
        Err(Error::SendFailed { failed, first }) => {
            assert_eq!(failed, 3);
            assert!(
                matches!(*first, Error::RecordTooLarge { max: 1024, .. }),
                "{first}"
            );
        }
        other => panic!("flush must report the refused records, got {other:?}"),
    }
    let failed = receipts
        .into_iter()
        .map(topiclog::Receipt::wait)
        .filter(|r| matches!(r, Err(Error::RecordTooLarge { .. })))
        .count();
    assert_eq!(failed, 3, "each receipt keeps its own error");
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 27);
    // Reported once: the next flush covers what was sent after this one.
    producer.send_async(ProducerRecord::new("t", "ok"))?;
    producer.flush()?;
    Ok(())
}
