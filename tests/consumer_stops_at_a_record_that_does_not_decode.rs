//! A record whose batch passes its checksum but does not decode (bytes rewritten with a
//! matching CRC) ends its partition's records in that poll; the next poll returns the error
//! with the position at that record, until the application seeks past it, as Kafka's consumer.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use common::{TempLog, TestResult};
use topiclog::{BatchBuilder, Compression, ConsumerConfig, Error, Record, TopicPartition};

/// Three records at offsets 3..6 whose second key length runs past its record, re-checksummed.
fn batch_with_a_bad_record() -> TestResult<Vec<u8>> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 3..6 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        b.push(
            Some(k.as_bytes()),
            Some(v.as_bytes()),
            &[],
            1_700_000_000_000,
        )?;
    }
    let mut bytes = b.finish()?.to_vec();
    bytes
        .get_mut(0..8)
        .ok_or("short batch")?
        .copy_from_slice(&3i64.to_be_bytes());
    let at = bytes
        .windows(2)
        .position(|w| w == b"k4")
        .ok_or("key k4 not found")?;
    // The key's length varint: 2 (zigzag 4) becomes 63 (zigzag 126).
    let len = bytes.get_mut(at - 1).ok_or("no length byte")?;
    assert_eq!(*len, 4);
    *len = 126;
    let crc = crc32c::crc32c(bytes.get(21..).ok_or("short batch")?);
    bytes
        .get_mut(17..21)
        .ok_or("short batch")?
        .copy_from_slice(&crc.to_be_bytes());
    Ok(bytes)
}

#[test]
fn the_next_poll_reports_the_record_and_a_seek_moves_past_it() -> TestResult {
    let t = TempLog::with_topic("events", 1)?;
    t.append(
        "events",
        0,
        &[Record::new("v0"), Record::new("v1"), Record::new("v2")],
    )?;
    let dir = t.close()?;
    OpenOptions::new()
        .append(true)
        .open(dir.path().join("events-0").join("00000000000000000000.log"))?
        .write_all(&batch_with_a_bad_record()?)?;
    let log = common::open(dir.path())?;
    assert_eq!(log.partition("events", 0)?.log_end_offset(), 6);

    let tp = TopicPartition::new("events", 0);
    let mut c = log.consumer(ConsumerConfig::default())?;
    c.assign(std::slice::from_ref(&tp))?;
    c.seek(&tp, 0)?;
    let polled = c.poll(Duration::from_millis(200))?;
    // The records before the bad one are handed out; iteration ends at it.
    let offsets: Vec<i64> = polled.iter().map(|r| r.offset()).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3]);
    drop(polled);
    // Until a seek moves past it, no record at or after the bad one is handed out, and polls
    // keep reporting it (a poll that fetches the batch again may return it undecoded; its
    // iteration reports the record, and the poll after that returns the error).
    let mut errors = 0;
    for _ in 0..4 {
        match c.poll(Duration::from_millis(50)) {
            Err(Error::InvalidBatch { reason }) => {
                assert!(reason.contains("events-0 at offset 4"), "{reason}");
                assert_eq!(c.position(&tp)?, 4, "the position stays at the bad record");
                errors += 1;
            }
            Ok(polled) => assert_eq!(polled.iter().count(), 0),
            Err(e) => return Err(e.into()),
        }
    }
    assert!(
        errors >= 2,
        "the error was reported {errors} times in four polls"
    );
    c.seek(&tp, 6)?;
    assert!(c.poll(Duration::from_millis(50))?.is_empty());
    drop(c);
    log.close()?;
    Ok(())
}
