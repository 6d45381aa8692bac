//! Segments whose records carry no timestamp are aged from their `.log` file's modification
//! time, as Kafka does, not from when this process loaded or rolled them; the `segment.ms`
//! roll of such an active segment does not restart its clock at a reopen either.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::path::Path;
use std::time::{Duration, SystemTime};
use topiclog::{BatchBuilder, Compression, Log, PartitionHandle, Result, TopicConfig};

const HOUR_MS: u64 = 3_600_000;

fn config(retention_ms: u64) -> TopicConfig {
    let mut c = small_segments(1024);
    c.retention_ms = Some(retention_ms);
    c
}

/// Appends `n` one-record batches whose record has no timestamp (-1).
fn append_untimestamped(p: &PartitionHandle, n: usize) -> Result<()> {
    for i in 0..n {
        let mut b = BatchBuilder::new(Compression::None);
        b.push(
            Some(b"k"),
            Some(format!("value-{i:04}").as_bytes()),
            &[],
            -1,
        )?;
        p.append_builder(&mut b)?;
    }
    Ok(())
}

fn records(log: &Log) -> Result<Vec<i64>> {
    let recs = read_all(&log.partition("t", 0)?)?;
    assert!(recs.iter().all(|r| r.timestamp == -1), "no timestamps");
    Ok(recs.iter().map(|r| r.offset).collect())
}

fn set_modified(path: &Path, ago: Duration) -> TestResult {
    let f = std::fs::File::options().write(true).open(path)?;
    f.set_modified(SystemTime::now() - ago)?;
    Ok(())
}

#[test]
fn a_segment_modified_long_ago_is_deleted_after_a_reopen() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, config(HOUR_MS))?;
    append_untimestamped(&log.partition("t", 0)?, 60)?;
    let dir = log.close()?;
    let logs = segment_logs(&dir.path().join("t-0"));
    assert!(logs.len() >= 3, "{logs:?}");
    set_modified(&logs[0], Duration::from_hours(2))?;
    let log = open(dir.path())?;
    let report = log.maintain()?;
    assert_eq!(report.segments_deleted, 1, "{report:?}");
    let p = log.partition("t", 0)?;
    assert_eq!(p.log_start_offset(), segment_base(&logs[1]));
    assert_eq!(records(&log)?.len() as i64, 60 - segment_base(&logs[1]));
    Ok(())
}

#[test]
fn fresh_segments_survive_a_reopen_and_maintenance() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, config(HOUR_MS))?;
    append_untimestamped(&log.partition("t", 0)?, 60)?;
    assert_eq!(log.maintain()?.segments_deleted, 0);
    let log = log.reopen()?;
    assert_eq!(log.maintain()?.segments_deleted, 0);
    assert_eq!(records(&log)?, (0..60).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn records_written_long_after_the_segment_was_loaded_are_not_aged_from_the_load() -> TestResult {
    let log = TempLog::new()?;
    // The active segment is created now; its records come later than the retention time.
    log.create_topic_with("t", 1, config(3_000))?;
    std::thread::sleep(Duration::from_secs(4));
    append_untimestamped(&log.partition("t", 0)?, 60)?;
    let report = log.maintain()?;
    assert_eq!(
        report.segments_deleted, 0,
        "records just written: {report:?}"
    );
    assert_eq!(records(&log)?, (0..60).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn the_segment_ms_roll_does_not_restart_at_a_reopen() -> TestResult {
    let mut c = config(HOUR_MS);
    c.segment_ms = 2_000;
    let log = TempLog::with_topic_config("t", 1, c)?;
    append_untimestamped(&log.partition("t", 0)?, 1)?;
    let dir = log.close()?;
    std::thread::sleep(Duration::from_millis(2_500));
    let log = open(dir.path())?;
    // The active segment has held records for longer than `segment.ms`: the next append
    // rolls, although this process opened it just now.
    append_untimestamped(&log.partition("t", 0)?, 1)?;
    assert_eq!(segment_logs(&dir.path().join("t-0")).len(), 2);
    Ok(())
}

#[test]
fn compaction_keeps_the_age_of_the_segments_it_rewrites() -> TestResult {
    let mut c = config(HOUR_MS);
    c.cleanup_policy = topiclog::CleanupPolicy::CompactDelete;
    let log = TempLog::with_topic_config("t", 1, c)?;
    append_untimestamped(&log.partition("t", 0)?, 60)?;
    let dir = log.close()?;
    let part = dir.path().join("t-0");
    let logs = segment_logs(&part);
    for f in &logs[..logs.len() - 1] {
        set_modified(f, Duration::from_hours(2))?;
    }
    let log = open(dir.path())?;
    // Every record has the same key: compaction rewrites the sealed segments, and the
    // rewritten ones are still two hours old, so retention then deletes them.
    log.compact("t")?;
    let rewritten = segment_logs(&part);
    let sealed = &rewritten[..rewritten.len() - 1];
    assert!(!sealed.is_empty());
    for f in sealed {
        let age = SystemTime::now().duration_since(std::fs::metadata(f)?.modified()?)?;
        assert!(age > Duration::from_hours(1), "{f:?} is {age:?} old");
    }
    let report = log.maintain()?;
    assert_eq!(report.segments_deleted, sealed.len(), "{report:?}");
    Ok(())
}
