//! `Producer::metrics` counts what was stored (records, bytes as written, batches, latency),
//! what failed through each way of sending, and the `buffer.memory` held by queued records;
//! rates cover the time since the previous read.
#![allow(
    clippy::indexing_slicing,
    clippy::float_cmp,
    clippy::cast_precision_loss
)]

mod common;
use std::time::Duration;

use common::*;
use topiclog::{CleanupPolicy, ProducerConfig, ProducerRecord, TopicConfig};

/// Bytes of every batch stored in `topic`'s partitions `0..n`.
fn stored_bytes(log: &TempLog, topic: &str, n: i32) -> TestResult<u64> {
    let mut total = 0;
    for p in 0..n {
        for b in &log.partition(topic, p)?.read(0, 1 << 30)?.batches {
            total += b.len() as u64;
        }
    }
    Ok(total)
}

#[test]
fn sends_count_records_bytes_batches_and_latency() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let producer = log.producer(ProducerConfig::default())?;
    let fresh = producer.metrics();
    assert_eq!(fresh.record_send_total, 0);
    assert_eq!(fresh.batch_total, 0);
    assert_eq!(fresh.request_latency_p99, Duration::ZERO);

    for i in 0..20 {
        producer.send(ProducerRecord::new("t", format!("value {i}")).partition(i % 2))?;
    }
    let recs: Vec<_> = (0..10)
        .map(|i| ProducerRecord::new("t", format!("v{i}")).partition(i % 2))
        .collect();
    producer.send_batch(recs)?; // two batches, five records each
    std::thread::sleep(Duration::from_millis(20));

    let m = producer.metrics();
    assert_eq!(m.record_send_total, 30);
    assert_eq!(m.batch_total, 22);
    assert_eq!(
        m.byte_total,
        stored_bytes(&log, "t", 2)?,
        "bytes as written"
    );
    assert_eq!(m.records_per_batch_avg, 30.0 / 22.0);
    assert_eq!(m.batch_size_avg, m.byte_total as f64 / 22.0);
    assert!(
        m.batch_size_max as f64 > m.batch_size_avg,
        "the 5-record batches"
    );
    assert!(m.window >= Duration::from_millis(20));
    let rate = m.record_send_rate * m.window.as_secs_f64();
    assert!(
        (rate - 30.0).abs() < 1e-6,
        "records over the window: {rate}"
    );
    assert!(m.byte_rate > 0.0);
    assert!(m.request_latency_p50 > Duration::ZERO);
    assert!(m.request_latency_p50 <= m.request_latency_p99);
    assert!(m.request_latency_p99 <= m.request_latency_max);
    assert_eq!(m.record_error_total, 0);

    // The next read's rates cover only what happened since this one.
    let again = producer.metrics();
    assert_eq!(again.record_send_total, 30, "totals keep counting");
    assert_eq!(again.record_send_rate, 0.0);
    assert_eq!(again.byte_rate, 0.0);
    assert!(again.window < m.window);

    // Clones share the counters.
    producer
        .clone()
        .send(ProducerRecord::new("t", "x").partition(0))?;
    assert_eq!(producer.metrics().record_send_total, 31);
    let shown = producer.metrics().to_string();
    for line in [
        "record-send-total        31 records",
        "request-latency-p99",
        "buffer-available-bytes   33554432 bytes",
    ] {
        assert!(shown.contains(line), "{line} in\n{shown}");
    }
    Ok(())
}

#[test]
fn send_async_counts_batches_and_buffer_use() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut cfg = ProducerConfig::default();
    cfg.linger = Duration::from_mins(1);
    cfg.batch_size = 1 << 20;
    cfg.buffer_memory = 1 << 20;
    let producer = log.producer(cfg)?;
    for i in 0..100 {
        producer.send_async(ProducerRecord::new("t", format!("v{i}")))?;
    }
    let queued = producer.metrics();
    assert_eq!(queued.buffer_total_bytes, 1 << 20);
    assert!(queued.buffer_used_bytes > 100 * 3, "{queued:?}");
    assert_eq!(
        queued.buffer_available_bytes,
        queued.buffer_total_bytes - queued.buffer_used_bytes
    );
    assert_eq!(queued.record_send_total, 0, "nothing sent yet");

    producer.flush()?;
    let m = producer.metrics();
    assert_eq!(m.record_send_total, 100);
    assert_eq!(m.batch_total, 1, "one batch");
    assert_eq!(m.records_per_batch_avg, 100.0);
    assert_eq!(m.batch_size_max, m.byte_total);
    assert_eq!(m.byte_total, stored_bytes(&log, "t", 1)?);
    assert_eq!(m.buffer_used_bytes, 0);
    assert_eq!(m.buffer_available_bytes, 1 << 20);
    Ok(())
}

#[test]
fn failures_count_once_per_record_whichever_way_it_was_sent() -> TestResult {
    let log = TempLog::new()?;
    log.create_topic("t", 2)?;
    let mut compacted = TopicConfig::new();
    compacted.cleanup_policy = CleanupPolicy::Compact;
    log.create_topic_with("c", 1, compacted)?;
    let producer = log.producer(ProducerConfig::default())?;

    // A send to a topic that does not exist.
    assert!(producer.send(ProducerRecord::new("nope", "a")).is_err());
    assert_eq!(producer.metrics().record_error_total, 1);

    // A send_batch whose second partition fails: the stored partition's records are not
    // failures, the others are.
    let batch = vec![
        ProducerRecord::new("t", "a").partition(0),
        ProducerRecord::new("t", "b").partition(9),
        ProducerRecord::new("t", "c").partition(9),
    ];
    assert!(producer.send_batch(batch).is_err());
    let m = producer.metrics();
    assert_eq!(m.record_error_total, 3);
    assert_eq!(m.record_send_total, 1);

    // send_async: refused at once, and failed in the sender (a keyless record on a
    // compacted topic), each counted once.
    assert!(
        producer
            .send_async(ProducerRecord::new("nope", "a"))
            .is_err()
    );
    let receipt = producer.send_async(ProducerRecord::new("c", "keyless"))?;
    assert!(producer.flush().is_err());
    assert!(receipt.wait().is_err());
    assert_eq!(producer.metrics().record_error_total, 5);

    // A send that goes behind queued records joins their batch, which fails as a whole:
    // the send and the queued record count once each.
    let mut cfg = ProducerConfig::default();
    cfg.linger = Duration::from_mins(1);
    let queued = log.producer(cfg)?;
    let first = queued.send_async(ProducerRecord::new("c", "k1").key("k"))?;
    assert!(
        queued
            .send(ProducerRecord::new("c", "keyless").partition(0))
            .is_err()
    );
    assert!(first.wait().is_err());
    assert_eq!(queued.metrics().record_error_total, 2);
    assert_eq!(queued.metrics().record_send_total, 0);

    // After close, every send fails.
    producer.close()?;
    assert!(producer.send(ProducerRecord::new("t", "late")).is_err());
    let m = producer.metrics();
    assert_eq!(m.record_error_total, 6);
    assert!(m.record_error_rate > 0.0 || m.window.is_zero());
    Ok(())
}

#[test]
fn single_sends_are_timed_one_in_eight_per_thread_from_the_first() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let producer = log.producer(ProducerConfig::default())?;
    let p = producer.clone();
    std::thread::spawn(move || p.send(ProducerRecord::new("t", "first")))
        .join()
        .map_err(|_| "the sending thread panicked")??;
    let m = producer.metrics();
    assert_eq!(m.batch_total, 1);
    assert!(
        m.request_latency_max > Duration::ZERO,
        "a thread's first send is timed"
    );
    assert_eq!(m.request_latency_p50, m.request_latency_max, "one sample");
    Ok(())
}
