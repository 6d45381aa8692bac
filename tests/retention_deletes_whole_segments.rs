//! Retention by time and size deletes whole segments oldest first, with Kafka's semantics;
//! delete-records advances the log start offset and frees segments below it; truncate-to
//! removes the tail.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Error, Record, TopicConfig};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as i64
}

#[test]
fn time_retention_uses_record_timestamps() -> TestResult {
    let mut c = small_segments(1024);
    c.retention_ms = Some(60_000);
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    let old = now() - 3_600_000;
    for i in 0..40 {
        p.append(&[rec(i).timestamp(old)])?;
    }
    for i in 40..60 {
        p.append(&[rec(i).timestamp(now())])?;
    }
    let before = log.describe_topic("t")?.partitions[0].segments;
    let report = log.maintain()?;
    assert!(report.segments_deleted > 0 && report.bytes_reclaimed > 0);
    let d = &log.describe_topic("t")?.partitions[0];
    assert_eq!(d.segments, before - report.segments_deleted);
    // Every remaining record but (possibly) the first segment's old ones is new.
    let got = read_all(&p)?;
    assert_eq!(got.first().ok_or("no records")?.offset, d.log_start_offset);
    assert!(d.log_start_offset > 0 && d.log_start_offset <= 40);
    assert_eq!(got.last().ok_or("no records")?.offset, 59);
    assert!(matches!(
        p.read(0, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // Nothing more to do.
    assert_eq!(log.maintain()?.segments_deleted, 0);
    Ok(())
}

#[test]
fn when_everything_expired_an_empty_segment_is_rolled_first() -> TestResult {
    let mut c = small_segments(1024);
    c.retention_ms = Some(1000);
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    for i in 0..30 {
        p.append(&[rec(i).timestamp(now() - 10_000)])?;
    }
    log.maintain()?;
    let d = &log.describe_topic("t")?.partitions[0];
    assert_eq!(d.segments, 1);
    assert_eq!(d.log_start_offset, 30);
    assert_eq!(d.log_end_offset, 30);
    assert_eq!(d.size_bytes, 0);
    assert_eq!(p.append(&[rec(30)])?.base_offset, 30);
    let log = log.reopen()?;
    let p = log.partition("t", 0)?;
    assert_eq!(p.log_start_offset(), 30);
    assert_eq!(read_all(&p)?.len(), 1);
    Ok(())
}

#[test]
fn size_retention_keeps_at_least_the_limit() -> TestResult {
    let mut c = small_segments(1024);
    c.retention_bytes = Some(3000);
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    for i in 0..200 {
        p.append(&[rec(i)])?;
    }
    log.maintain()?;
    let d = &log.describe_topic("t")?.partitions[0];
    assert!(d.size_bytes >= 3000, "{} bytes left", d.size_bytes);
    assert!(
        d.size_bytes < 3000 + 1024,
        "may exceed by at most a segment: {}",
        d.size_bytes
    );
    assert_eq!(read_all(&p)?.last().ok_or("no records")?.offset, 199);
    Ok(())
}

#[test]
fn unlimited_retention_by_default_keeps_back_dated_records() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..50 {
        p.append(&[rec(i).timestamp(1)])?;
    }
    assert_eq!(log.maintain()?.segments_deleted, 0);
    assert_eq!(read_all(&p)?.len(), 50);
    Ok(())
}

#[test]
fn delete_records_advances_start_and_frees_segments() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i)])?;
    }
    let segs_before = log.describe_topic("t")?.partitions[0].segments;
    assert_eq!(p.delete_records(70)?, 70);
    assert_eq!(p.log_start_offset(), 70);
    assert!(log.describe_topic("t")?.partitions[0].segments < segs_before);
    let got = read_all(&p)?;
    assert_eq!(got.first().ok_or("no records")?.offset, 70);
    assert_eq!(got.len(), 30);
    // Moves forward only; -1 means the high watermark.
    assert_eq!(p.delete_records(10)?, 70);
    let log = log.reopen()?;
    let p = log.partition("t", 0)?;
    assert_eq!(p.log_start_offset(), 70, "persisted");
    assert_eq!(p.delete_records(-1)?, 100);
    assert!(read_all(&p)?.is_empty());
    Ok(())
}

#[test]
fn truncate_to_cuts_the_tail_and_offsets_are_reused() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i)])?;
    }
    // Hold a read of the tail across the truncation: it stays valid.
    let held = p.read(90, 1 << 20)?;
    assert_eq!(p.truncate_to(42)?, 42);
    assert_eq!(p.log_end_offset(), 42);
    for b in &held.batches {
        b.verify_crc()?;
        assert!(b.owned_records()?.count() > 0);
    }
    assert_eq!(read_all(&p)?.len(), 42);
    assert_eq!(p.append(&[Record::new("new")])?.base_offset, 42);
    let log = log.reopen()?;
    let p = log.partition("t", 0)?;
    let got = read_all(&p)?;
    assert_eq!(got.len(), 43);
    assert_eq!(got[42].value.as_deref(), Some(&b"new"[..]));
    // Inside a multi-record batch: the whole batch goes (batches are atomic).
    p.append(&[rec(1), rec(2), rec(3)])?; // 43..=45
    assert_eq!(p.truncate_to(44)?, 43);
    Ok(())
}

#[test]
fn retention_config_changes_apply() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i).timestamp(1000)])?;
    }
    let mut c = log.describe_topic("t")?.config;
    c.retention_ms = Some(1);
    log.alter_topic_config("t", c)?;
    log.maintain()?;
    assert_eq!(p.log_start_offset(), 100);
    let _ = TopicConfig::new();
    Ok(())
}

#[test]
fn a_read_in_progress_survives_retention_deleting_its_segment() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i)])?;
    }
    let held = p.read(0, 2048)?;
    let mut before = Vec::new();
    for b in &held.batches {
        for r in b.owned_records()? {
            before.push(r?.value);
        }
    }
    p.delete_records(90)?;
    assert!(matches!(
        p.read(0, 10),
        Err(topiclog::Error::OffsetOutOfRange { .. })
    ));
    // The segment files are gone from the directory; the held views still read them.
    let mut after = Vec::new();
    for b in &held.batches {
        b.verify_crc()?;
        for r in b.owned_records()? {
            after.push(r?.value);
        }
    }
    assert_eq!(before, after);
    assert!(!before.is_empty());
    Ok(())
}
