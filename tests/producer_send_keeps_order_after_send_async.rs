//! One producer's records keep their order per partition across `send` and `send_async`, as Kafka's do.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::Duration;
use topiclog::{ProducerConfig, ProducerRecord};

#[test]
fn send_goes_behind_queued_records() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let mut cfg = ProducerConfig::default();
    cfg.linger = Duration::from_hours(1);
    let producer = log.producer(cfg)?;
    let mut expected: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    for i in 0..300u32 {
        let p = (i % 2) as i32;
        let v = format!("{i}");
        expected[p as usize].push(v.clone().into_bytes());
        let r = ProducerRecord::new("t", v).partition(p);
        if i % 5 == 4 {
            let md = producer.send(r)?;
            assert_eq!(md.offset, expected[p as usize].len() as i64 - 1);
        } else {
            producer.send_async(r)?;
        }
    }
    producer.send_batch(vec![ProducerRecord::new("t", "batch").partition(1)])?;
    expected[1].push(b"batch".to_vec());
    producer.flush()?;
    for p in 0..2 {
        assert_eq!(
            values(&read_all(&log.partition("t", p)?)?),
            expected[p as usize]
        );
    }
    Ok(())
}
