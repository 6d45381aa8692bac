//! `send_async` never builds a batch larger than the topic's `max.message.bytes` after compression: every record is stored once, in order, and only a record too large on its own fails.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Compression, Error, ProducerConfig, ProducerRecord, Result, TopicConfig};

const LIMIT: usize = 4096;

/// Pseudo-random, so compression cannot shrink a batch under the limit by itself.
fn noise(i: u64, len: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn value(i: u64, compressible: bool) -> Vec<u8> {
    let mut v = format!("{i:08}").into_bytes();
    if compressible {
        v.extend(std::iter::repeat_n(b'x', 200));
    } else {
        v.extend(noise(i, 200));
    }
    v
}

fn limited_topic(log: &topiclog::Log, name: &str) -> Result<()> {
    let cfg = TopicConfig::new().with("max.message.bytes", &LIMIT.to_string())?;
    log.create_topic_with(name, 1, cfg)?;
    Ok(())
}

fn check(compression: Compression, compressible: bool, batch_size: usize) -> TestResult {
    let log = TempLog::new()?;
    limited_topic(&log, "t")?;
    let mut cfg = ProducerConfig::default();
    cfg.compression = Some(compression);
    cfg.batch_size = batch_size;
    let producer = log.producer(cfg)?;
    let n = 2_000u64;
    let receipts: Vec<_> = (0..n)
        .map(|i| producer.send_async(ProducerRecord::new("t", value(i, compressible))))
        .collect::<Result<_>>()?;
    producer.flush()?;
    for (i, r) in receipts.into_iter().enumerate() {
        assert_eq!(r.wait()?.offset, i as i64, "{compression:?} {batch_size}");
    }
    let part = log.partition("t", 0)?;
    let mut offset = 0;
    let mut batches = 0;
    while offset < part.log_end_offset() {
        let res = part.read(offset, 1 << 20)?;
        for b in &res.batches {
            assert!(
                b.len() <= LIMIT,
                "{compression:?}, batch.size {batch_size}: a stored batch of {} bytes",
                b.len()
            );
            batches += 1;
            offset = b.last_offset() + 1;
        }
    }
    assert!(batches > 1);
    let stored = values(&read_all(&part)?);
    let expected: Vec<Vec<u8>> = (0..n).map(|i| value(i, compressible)).collect();
    assert_eq!(stored, expected, "every record once, in order");
    Ok(())
}

#[test]
fn batch_size_above_the_limit_is_split_after_compression() -> TestResult {
    check(Compression::None, false, 1 << 20)?;
    check(Compression::Gzip, false, 1 << 20)?;
    // Compressible records: one compressed batch holds more than the limit uncompressed.
    check(Compression::Gzip, true, 1 << 20)
}

#[test]
fn batch_size_below_the_limit_closes_batches() -> TestResult {
    check(Compression::None, false, 1000)
}

#[test]
fn only_a_record_too_large_alone_fails() -> TestResult {
    let log = TempLog::new()?;
    limited_topic(&log, "t")?;
    let producer = log.producer(ProducerConfig::default())?;
    let receipts: Vec<_> = (0..100u64)
        .map(|i| {
            let v = if i == 50 {
                vec![b'y'; LIMIT * 2]
            } else {
                value(i, false)
            };
            producer.send_async(ProducerRecord::new("t", v))
        })
        .collect::<Result<_>>()?;
    let _ = producer.flush();
    let mut stored = Vec::new();
    for (i, r) in receipts.into_iter().enumerate() {
        match r.wait() {
            Ok(_) => stored.push(value(i as u64, false)),
            Err(Error::RecordTooLarge { .. }) => assert_eq!(i, 50),
            Err(e) => panic!("record {i}: {e}"),
        }
    }
    assert_eq!(stored.len(), 99);
    assert_eq!(values(&read_all(&log.partition("t", 0)?)?), stored);
    Ok(())
}
