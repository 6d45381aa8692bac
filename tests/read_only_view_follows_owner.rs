//! A read-only view beside a live owner: it sees later appends, a segment deleted or compacted
//! under it stays readable from the inode it loaded, and once it looks again a position below
//! the owner's new log start is out of range.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{CleanupPolicy, Error, Record};

#[test]
fn an_empty_read_looks_again_and_finds_later_appends() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..20 {
        p.append(&[rec(i)])?;
    }
    let view = read_only_view(log.path())?;
    let rp = view.partition("t", 0)?;
    assert_eq!(read_all(&rp)?.len(), 20);
    for i in 20..120 {
        p.append(&[rec(i)])?;
    }
    // The owner rolled several segments since the view was loaded.
    assert!(segment_logs(&log.path().join("t-0")).len() > 2);
    let got = rp.records(20, 1 << 20)?;
    assert!(
        !got.is_empty(),
        "records past the view's end were not found"
    );
    assert_eq!(got[0].offset, 20);
    let all = read_all(&rp)?;
    assert_eq!(all.len(), 120);
    assert_eq!(values(&all), values(&read_all(&p)?));
    assert_eq!(rp.high_watermark(), 120);
    log.close()?;
    Ok(())
}

#[test]
fn a_deleted_segment_stays_readable_then_its_offsets_are_out_of_range() -> TestResult {
    let mut cfg = small_segments(1024);
    cfg.retention_bytes = Some(2048);
    let log = TempLog::with_topic_config("t", 1, cfg)?;
    let p = log.partition("t", 0)?;
    for i in 0..150 {
        p.append(&[rec(i)])?;
    }
    let expected = read_all(&p)?;
    let view = read_only_view(log.path())?;
    let rp = view.partition("t", 0)?;
    assert_eq!(rp.log_start_offset(), 0);
    // Retention deletes the oldest segments: files the view listed but has not read yet.
    log.maintain()?;
    let start = p.log_start_offset();
    assert!(start > 0, "retention deleted nothing");
    assert!(
        !log.path()
            .join("t-0")
            .join(format!("{:020}.log", 0))
            .exists()
    );
    // A read in progress finishes on the files the view loaded, as Kafka delays the unlink.
    let got = read_all(&rp)?;
    assert_eq!(values(&got), values(&expected));
    // Reading at the end made the view look again: offset 0 is now below the log start.
    assert_eq!(rp.log_start_offset(), start);
    match rp.read(0, 1 << 20) {
        Err(Error::OffsetOutOfRange { start: s, .. }) => assert_eq!(s, start),
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    // A consumer resets such a position per `auto_offset_reset` and reads on.
    let mut c = view.consumer(topiclog::ConsumerConfig::default())?;
    let tp = topiclog::TopicPartition::new("t", 0);
    c.assign(std::slice::from_ref(&tp))?;
    c.seek(&tp, 0)?;
    let recs = c.poll(SHORT)?;
    assert_eq!(recs.iter().next().map(|r| r.offset()), Some(start));
    log.close()?;
    Ok(())
}

#[test]
fn a_segment_compacted_under_the_view_is_read_from_the_file_it_loaded() -> TestResult {
    let mut cfg = small_segments(1024);
    cfg.cleanup_policy = CleanupPolicy::Compact;
    cfg.min_cleanable_dirty_ratio = 0.0;
    let log = TempLog::with_topic_config("c", 1, cfg)?;
    let p = log.partition("c", 0)?;
    for i in 0..200u64 {
        p.append(&[
            Record::new(format!("value-{i}-{}", "y".repeat(20))).key(format!("k{}", i % 5))
        ])?;
    }
    let before = read_all(&p)?;
    let view = read_only_view(log.path())?;
    let rp = view.partition("c", 0)?;
    let report = log.compact("c")?;
    assert!(report.records_removed > 0, "compaction removed nothing");
    // The view was loaded before the swap: it reads the replaced files' bytes, never the
    // compacted file at the old positions, and reports nothing as corrupt.
    let got = read_all(&rp)?;
    assert_eq!(got.len(), before.len());
    assert_eq!(values(&got), values(&before));
    // A fresh view reads the compacted log.
    let fresh = read_only_view(log.path())?;
    assert_eq!(
        values(&read_all(&fresh.partition("c", 0)?)?),
        values(&read_all(&p)?)
    );
    log.close()?;
    Ok(())
}

#[test]
fn a_view_of_a_preallocated_segment_reads_its_data_and_reports_no_damage() -> TestResult {
    // The owner's active file runs ahead of its data (zeros): the view takes them for the end
    // of the data, as the owner's own recovery would, and follows later appends.
    let cfg = small_segments(1 << 20).with("preallocate", "true")?;
    let log = TempLog::with_topic_config("t", 1, cfg)?;
    let p = log.partition("t", 0)?;
    for i in 0..50 {
        p.append(&[rec(i)])?;
    }
    let view = read_only_view(log.path())?;
    assert!(
        view.recovery_report().damaged().next().is_none(),
        "{:?}",
        view.recovery_report()
    );
    let rp = view.partition("t", 0)?;
    assert_eq!(values(&read_all(&rp)?), values(&read_all(&p)?));
    for i in 50..80 {
        p.append(&[rec(i)])?;
    }
    let all = read_all(&rp)?;
    assert_eq!(all.len(), 80);
    assert_eq!(values(&all), values(&read_all(&p)?));
    log.close()?;
    Ok(())
}
