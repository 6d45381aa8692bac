//! The producer: blocking sends, batches (one per partition), async sends with linger and
//! flush, Kafka's partitioner, compression per producer.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::Duration;
use topiclog::{Compression, ProducerConfig, ProducerRecord, Result, partition_for_key};

#[test]
fn send_routes_keys_like_kafka_and_returns_offsets() -> TestResult {
    let log = TempLog::with_topic("t", 4)?;
    let producer = log.producer(ProducerConfig::default())?;
    let mut next = [0i64; 4];
    for i in 0..40 {
        let key = format!("key-{}", i % 7);
        let md = producer.send(ProducerRecord::new("t", format!("v{i}")).key(key.clone()))?;
        assert_eq!(md.partition, partition_for_key(key.as_bytes(), 4));
        assert_eq!(md.offset, next[md.partition as usize]);
        next[md.partition as usize] += 1;
    }
    let md = producer.send(ProducerRecord::new("t", "x").partition(3))?;
    assert_eq!(md.partition, 3);
    Ok(())
}

#[test]
fn send_batch_writes_one_batch_per_partition() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let producer = log.producer(ProducerConfig::default())?;
    let recs: Vec<_> = (0..10)
        .map(|i| ProducerRecord::new("t", format!("v{i}")).partition(i % 2))
        .collect();
    let mds = producer.send_batch(recs)?;
    assert_eq!(mds.len(), 10);
    for (i, md) in mds.iter().enumerate() {
        assert_eq!(md.partition, (i % 2) as i32);
        assert_eq!(md.offset, (i / 2) as i64);
    }
    for p in 0..2 {
        let res = log.partition("t", p)?.read(0, 1 << 20)?;
        assert_eq!(res.batches.len(), 1);
        assert_eq!(res.batches[0].record_count(), 5);
        assert!(
            res.batches[0].header().producer_id >= 0,
            "idempotent by default"
        );
    }
    Ok(())
}

#[test]
fn send_async_batches_and_flush_waits() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut cfg = ProducerConfig::default();
    cfg.linger = Duration::from_mins(1);
    cfg.batch_size = 1 << 30;
    let producer = log.producer(cfg)?;
    let receipts: Vec<_> = (0..100)
        .map(|i| producer.send_async(ProducerRecord::new("t", format!("v{i}")).partition(0)))
        .collect::<Result<_>>()?;
    assert_eq!(
        log.partition("t", 0)?.log_end_offset(),
        0,
        "held by the linger"
    );
    producer.flush()?;
    let p = log.partition("t", 0)?;
    assert_eq!(p.log_end_offset(), 100);
    assert_eq!(
        p.read(0, 1 << 20)?.batches.len(),
        1,
        "one accumulated batch"
    );
    for (i, r) in receipts.into_iter().enumerate() {
        assert_eq!(r.wait()?.offset, i as i64);
    }
    // A full batch goes out without a flush; linger sends the rest.
    let mut cfg = ProducerConfig::default();
    cfg.linger = Duration::from_millis(20);
    cfg.batch_size = 200;
    let producer = log.producer(cfg)?;
    let mut receipts = Vec::new();
    for i in 0..30 {
        receipts.push(
            producer.send_async(ProducerRecord::new("t", format!("value-{i:04}")).partition(0))?,
        );
    }
    let last = receipts.pop().ok_or("no receipts")?;
    assert_eq!(last.wait()?.offset, 129);
    Ok(())
}

#[test]
fn producer_compression_overrides_the_topic() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut cfg = ProducerConfig::default();
    cfg.compression = Some(Compression::Zstd);
    let producer = log.producer(cfg)?;
    producer.send_batch(
        (0..50)
            .map(|i| ProducerRecord::new("t", format!("v{i}")).partition(0))
            .collect(),
    )?;
    let p = log.partition("t", 0)?;
    let res = p.read(0, 1 << 20)?;
    assert_eq!(res.batches[0].header().compression()?, Compression::Zstd);
    assert_eq!(read_all(&p)?.len(), 50);
    Ok(())
}

#[test]
fn concurrent_senders_share_a_producer() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let producer = log.producer(ProducerConfig::default())?;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let p = producer.clone();
            std::thread::spawn(move || -> Result<()> {
                for i in 0..100 {
                    p.send(ProducerRecord::new("t", format!("{t}-{i}")).partition(0))?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a sender thread panicked")?;
    }
    let got = read_all(&log.partition("t", 0)?)?;
    assert_eq!(got.len(), 400);
    for t in 0..4 {
        let mine: Vec<String> = values(&got)
            .into_iter()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .filter(|v| v.starts_with(&format!("{t}-")))
            .collect();
        let want: Vec<String> = (0..100).map(|i| format!("{t}-{i}")).collect();
        assert_eq!(mine, want, "per-thread order");
    }
    Ok(())
}
