//! `send_async` holds at most `buffer.memory` bytes: it waits up to `max.block.ms` for room, then fails with a typed error, and a record larger than the buffer is refused at once.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::Duration;
use topiclog::{Error, ProducerConfig, ProducerRecord, Result};

fn config(max_block: Duration) -> ProducerConfig {
    let mut cfg = ProducerConfig::default();
    cfg.buffer_memory = 1000;
    cfg.max_block = max_block;
    // Nothing leaves on its own: only a caller waiting for room (or a flush) sends.
    cfg.linger = Duration::from_hours(1);
    cfg.batch_size = 1 << 20;
    cfg
}

#[test]
fn a_full_buffer_times_out_with_a_typed_error() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let producer = log.producer(config(Duration::ZERO))?;
    let mut queued = 0;
    let err = loop {
        match producer.send_async(ProducerRecord::new("t", vec![b'v'; 100])) {
            Ok(_) => queued += 1,
            Err(e) => break e,
        }
        assert!(
            queued < 100,
            "buffer.memory must bound what send_async holds"
        );
    };
    assert!(
        matches!(
            err,
            Error::BufferExhausted {
                buffer_memory: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert!(queued >= 1);
    // What was queued is still sent.
    producer.flush()?;
    assert_eq!(log.partition("t", 0)?.log_end_offset(), queued);
    Ok(())
}

#[test]
fn a_blocked_send_waits_for_room_and_succeeds() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let producer = log.producer(config(Duration::from_mins(1)))?;
    let receipts: Vec<_> = (0..50)
        .map(|i| producer.send_async(ProducerRecord::new("t", format!("{i:0100}"))))
        .collect::<Result<_>>()?;
    // Fifty records of ~140 bytes never fit 1000 bytes at once: the sends waited for the
    // earlier ones to be stored although linger is an hour.
    assert!(log.partition("t", 0)?.log_end_offset() >= 40);
    producer.flush()?;
    for (i, r) in receipts.into_iter().enumerate() {
        assert_eq!(r.wait()?.offset, i as i64);
    }
    Ok(())
}

#[test]
fn a_record_larger_than_the_buffer_is_refused() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let producer = log.producer(config(Duration::from_mins(1)))?;
    let err = producer
        .send_async(ProducerRecord::new("t", vec![b'v'; 2000]))
        .unwrap_err();
    assert!(
        matches!(err, Error::BufferExhausted { waited, .. } if waited == Duration::ZERO),
        "{err}"
    );
    Ok(())
}
