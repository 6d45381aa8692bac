//! A producer's `Partitioner` picks the partition of every record sent without one, through
//! `send`, `send_async` and `send_batch`; an explicit partition skips it; a choice outside the
//! topic fails with a typed error and stores nothing; `DefaultPartitioner` places records as
//! the producer does without a partitioner (Kafka's murmur2 and sticky placement).
#![allow(clippy::indexing_slicing)]

mod common;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use parking_lot::Mutex;
use topiclog::{
    DefaultPartitioner, Error, Partitioner, ProducerConfig, ProducerRecord, partition_for_key,
};

/// One call's arguments: topic, key, value, partition count.
type Call = (String, Option<Vec<u8>>, Option<Vec<u8>>, i32);

/// Routes by the value's last byte, an ASCII digit, and notes each call's arguments.
#[derive(Debug, Default)]
struct LastDigit {
    calls: Mutex<Vec<Call>>,
}

impl Partitioner for LastDigit {
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: i32,
    ) -> i32 {
        self.calls.lock().push((
            topic.to_string(),
            key.map(<[u8]>::to_vec),
            value.map(<[u8]>::to_vec),
            partitions,
        ));
        let digit = value
            .and_then(|v| v.last())
            .map_or(0, |b| i32::from(*b) - 48);
        digit % partitions
    }
}

/// Always returns the same partition, whatever the topic has.
#[derive(Debug)]
struct Fixed(i32, AtomicUsize);

impl Partitioner for Fixed {
    fn partition(&self, _: &str, _: Option<&[u8]>, _: Option<&[u8]>, _: i32) -> i32 {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0
    }
}

#[test]
fn custom_partitioner_routes_send_send_async_and_send_batch() -> TestResult {
    let log = TempLog::with_topic("t", 4)?;
    let partitioner = Arc::new(LastDigit::default());
    let producer = log.producer(ProducerConfig::default().partitioner(partitioner.clone()))?;

    let md = producer.send(ProducerRecord::new("t", "v3").key("k"))?;
    assert_eq!(md.partition, 3);
    let receipt = producer.send_async(ProducerRecord::new("t", "v2"))?;
    producer.flush()?;
    assert_eq!(receipt.wait()?.partition, 2);
    let mds = producer.send_batch(vec![
        ProducerRecord::new("t", "v1"),
        ProducerRecord::new("t", "v5"), // 5 % 4
        ProducerRecord::tombstone("t", "gone"),
    ])?;
    let parts: Vec<i32> = mds.iter().map(|m| m.partition).collect();
    assert_eq!(parts, [1, 1, 0]);

    let calls = partitioner.calls.lock().clone();
    assert_eq!(calls.len(), 5, "one call per record");
    assert_eq!(
        calls[0],
        (
            "t".to_string(),
            Some(b"k".to_vec()),
            Some(b"v3".to_vec()),
            4
        )
    );
    assert_eq!(
        calls[4],
        ("t".to_string(), Some(b"gone".to_vec()), None, 4),
        "a tombstone's value is None"
    );
    // The records are where the partitioner said.
    assert_eq!(log.partition("t", 1)?.records(0, 1 << 20)?.len(), 2);
    assert_eq!(log.partition("t", 3)?.records(0, 1 << 20)?.len(), 1);
    Ok(())
}

#[test]
fn explicit_partition_skips_the_partitioner() -> TestResult {
    let log = TempLog::with_topic("t", 3)?;
    let partitioner = Arc::new(Fixed(0, AtomicUsize::new(0)));
    let producer = log.producer(ProducerConfig::default().partitioner(partitioner.clone()))?;
    assert_eq!(
        producer
            .send(ProducerRecord::new("t", "a").key("k").partition(2))?
            .partition,
        2
    );
    let r = producer.send_async(ProducerRecord::new("t", "b").partition(1))?;
    producer.flush()?;
    assert_eq!(r.wait()?.partition, 1);
    let mds = producer.send_batch(vec![ProducerRecord::new("t", "c").partition(2)])?;
    assert_eq!(mds[0].partition, 2);
    assert_eq!(partitioner.1.load(Ordering::Relaxed), 0, "never asked");
    Ok(())
}

#[test]
fn a_partition_outside_the_topic_is_an_error_and_stores_nothing() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    for bad in [2, -1, i32::MAX, i32::MIN] {
        let producer = log.producer(
            ProducerConfig::default().partitioner(Arc::new(Fixed(bad, AtomicUsize::new(0)))),
        )?;
        let expect = |r: Result<_, Error>, how: &str| match r {
            Err(Error::PartitionerOutOfRange {
                topic,
                partition,
                partitions,
            }) => {
                assert_eq!(
                    (topic.as_str(), partition, partitions),
                    ("t", bad, 2),
                    "{how}"
                );
            }
            other => panic!("{how} of partition {bad}: {other:?}"),
        };
        expect(
            producer.send(ProducerRecord::new("t", "a")).map(|_| ()),
            "send",
        );
        expect(
            producer
                .send_async(ProducerRecord::new("t", "b"))
                .map(|_| ()),
            "send_async",
        );
        expect(
            producer
                .send_batch(vec![ProducerRecord::new("t", "c")])
                .map(|_| ()),
            "send_batch",
        );
        producer.flush()?;
    }
    for p in 0..2 {
        assert_eq!(
            log.partition("t", p)?.log_end_offset(),
            0,
            "partition {p} empty"
        );
    }
    Ok(())
}

#[test]
fn default_partitioner_places_records_as_the_default_producer() -> TestResult {
    let log = TempLog::with_topic("t", 6)?;
    let plain = log.producer(ProducerConfig::default())?;
    let wrapped =
        log.producer(ProducerConfig::default().partitioner(Arc::new(DefaultPartitioner::new())))?;
    for i in 0..50 {
        let key = format!("key-{i}");
        let want = partition_for_key(key.as_bytes(), 6);
        let a = plain.send(ProducerRecord::new("t", "v").key(key.clone()))?;
        let b = wrapped.send(ProducerRecord::new("t", "v").key(key.clone()))?;
        let c = wrapped.send_async(ProducerRecord::new("t", "v").key(key.clone()))?;
        let d = wrapped.send_batch(vec![ProducerRecord::new("t", "v").key(key)])?;
        wrapped.flush()?;
        assert_eq!(a.partition, want, "no partitioner: murmur2");
        assert_eq!(b.partition, want, "DefaultPartitioner through send");
        assert_eq!(c.wait()?.partition, want, "through send_async");
        assert_eq!(d[0].partition, want, "through send_batch");
    }
    // Keyless: small records stick to one partition, and move on after about 16 KiB.
    let first = wrapped.send(ProducerRecord::new("t", "small"))?.partition;
    assert_eq!(
        wrapped.send(ProducerRecord::new("t", "small"))?.partition,
        first
    );
    let p = DefaultPartitioner::new();
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let big = vec![0u8; 10_000];
        let q = p.partition("t", None, Some(&big), 6);
        assert!((0..6).contains(&q));
        seen.insert(q);
    }
    assert!(seen.len() > 1, "keyless records move on: {seen:?}");
    Ok(())
}
