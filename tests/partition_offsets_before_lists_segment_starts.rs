//! `PartitionHandle::offsets_before` answers Kafka's pre-0.10.1 offset lookup: segment starts
//! by last modification, newest first, capped at the high watermark and the log start.
#![allow(clippy::indexing_slicing)]

mod common;
use std::time::{Duration, SystemTime};

use common::*;

/// The base offsets of the partition's segments, from their file names, oldest first.
fn bases(dir: &std::path::Path) -> TestResult<Vec<i64>> {
    segment_logs(dir)
        .iter()
        .map(|p| {
            let stem = p.file_stem().ok_or("no file stem")?.to_string_lossy();
            Ok(stem.parse::<i64>()?)
        })
        .collect()
}

#[test]
fn latest_and_earliest_list_segment_starts_newest_first() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i)])?;
    }
    p.flush()?;
    let bases = bases(&log.path().join("t-0"))?;
    assert!(bases.len() > 3, "{bases:?}");
    let mut latest: Vec<i64> = bases.iter().rev().copied().collect();
    latest.insert(0, 100);
    assert_eq!(p.offsets_before(-1, 1000)?, latest);
    assert_eq!(p.offsets_before(-1, 2)?, latest[..2]);
    assert_eq!(p.offsets_before(-1, 0)?, Vec::<i64>::new());
    assert_eq!(p.offsets_before(-2, 1000)?, vec![0]);
    let far_future = i64::MAX;
    assert_eq!(p.offsets_before(far_future, 1000)?, latest);

    // Past the log start, the first listed offset is the log start, not its segment's base.
    let start = bases[1] + 1;
    p.delete_records(start)?;
    assert_eq!(p.offsets_before(-2, 1000)?, vec![start]);
    assert_eq!(p.offsets_before(-1, 1000)?.last(), Some(&start));
    Ok(())
}

#[test]
fn a_timestamp_lists_the_segments_last_modified_before_it() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i)])?;
    }
    p.flush()?;
    let dir = log.path().join("t-0");
    let logs = segment_logs(&dir);
    let bases = bases(&dir)?;
    // The first two segments were last written in September 2001 and August 2002; the
    // others just now.
    let (first, second) = (1_000_000_000, 1_030_000_000);
    let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    for (path, when) in logs.iter().zip([at(first), at(second)]) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_modified(when)?;
    }
    let ms = |t: SystemTime| -> TestResult<i64> {
        Ok(i64::try_from(
            t.duration_since(SystemTime::UNIX_EPOCH)?.as_millis(),
        )?)
    };
    assert_eq!(p.offsets_before(ms(at(first))? - 1, 10)?, Vec::<i64>::new());
    assert_eq!(p.offsets_before(ms(at(first))?, 10)?, vec![0]);
    assert_eq!(p.offsets_before(ms(at(second))?, 10)?, vec![bases[1], 0]);
    assert_eq!(p.offsets_before(ms(at(second))?, 1)?, vec![bases[1]]);
    Ok(())
}
