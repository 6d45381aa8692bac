//! `__consumer_offsets` and `__transaction_state` are Kafka's internal topics: topiclog writes
//! them itself, and public calls that would delete, repartition, create or write one are
//! refused with a typed error and Kafka's error codes; committed offsets survive the attempt.
#![allow(clippy::indexing_slicing)]

mod common;

use common::{TempLog, TestResult};
use topiclog::{
    ConsumerConfig, Error, OffsetAndMetadata, ProducerConfig, ProducerRecord, Record, Result,
    TopicConfig, TopicPartition,
};

fn refused(r: Result<impl std::fmt::Debug>, operation: &str) -> Error {
    match r {
        Err(e @ Error::InternalTopic { .. }) => {
            assert!(e.to_string().contains(operation), "{e}");
            e
        }
        other => panic!("expected InternalTopic for {operation}, got {other:?}"),
    }
}

#[test]
fn internal_topics_refuse_delete_repartition_create_and_writes() -> TestResult {
    let log = TempLog::with_topic("orders", 1)?;
    log.partition("orders", 0)?.append(&[Record::new("a")])?;
    let mut consumer = log.consumer(ConsumerConfig::group("billing"))?;
    consumer.commit_offsets(&[(TopicPartition::new("orders", 0), OffsetAndMetadata::new(1))])?;
    drop(consumer);

    let e = refused(log.delete_topic("__consumer_offsets"), "delete");
    assert_eq!(e.kafka_error_code(), 42); // INVALID_REQUEST
    refused(
        log.add_partitions("__consumer_offsets", 3),
        "add partitions",
    );
    for name in ["__consumer_offsets", "__transaction_state"] {
        let e = refused(log.create_topic(name, 1), "create");
        assert!(e.to_string().contains("reserved"), "{e}");
        refused(log.create_topic_with(name, 1, TopicConfig::new()), "create");
    }
    let offsets = log.partition("__consumer_offsets", 0)?;
    let end = offsets.log_end_offset();
    let e = refused(
        offsets.append(&[Record::new("garbage").key("garbage")]),
        "append",
    );
    assert_eq!(e.kafka_error_code(), 17); // INVALID_TOPIC_EXCEPTION, as Kafka's produce
    refused(offsets.delete_records(end), "delete records");
    refused(offsets.truncate_to(0), "truncate");
    let producer = log.producer(ProducerConfig::default())?;
    assert!(
        producer
            .send(ProducerRecord::new("__consumer_offsets", "garbage").key("garbage"))
            .is_err()
    );
    // Reading stays allowed, as in Kafka, and nothing was written.
    assert!(!offsets.records(0, 1 << 20)?.is_empty());
    assert_eq!(offsets.log_end_offset(), end);

    let log = log.reopen()?;
    let d = log.describe_group("billing")?;
    assert_eq!(d.offsets[0].committed, Some(1));
    log.close()?;
    Ok(())
}
