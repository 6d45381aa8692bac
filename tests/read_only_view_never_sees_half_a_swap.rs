//! A compaction stopped at each step of its swap: a read-only view opened before it reads every
//! record it loaded; one opened after it reads every record, or, once replaced segments are
//! gone and the new one is not in place, refuses to open naming the `.swap` file, never showing
//! a log with records missing.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{CleanupPolicy, CrashPoint, Error, Record};

/// (offset, value) of every record a view reads.
fn contents(log: &topiclog::Log) -> TestResult<Vec<(i64, Vec<u8>)>> {
    pairs(read_all(&log.partition("c", 0)?)?)
}

fn pairs(records: Vec<topiclog::StoredRecord>) -> TestResult<Vec<(i64, Vec<u8>)>> {
    records
        .into_iter()
        .map(|r| Ok((r.offset, r.value.ok_or("a null value")?.to_vec())))
        .collect()
}

/// The records a view loaded, read up to its end without asking past it.
fn loaded(log: &topiclog::Log) -> TestResult<Vec<(i64, Vec<u8>)>> {
    let p = log.partition("c", 0)?;
    let mut out = Vec::new();
    let mut offset = p.log_start_offset();
    while offset < p.high_watermark() {
        let res = p.read(offset, 64 * 1024)?;
        out.extend(pairs(res.records_from(offset)?)?);
        offset = res
            .next_offset()
            .ok_or("a read below the high watermark found nothing")?;
    }
    Ok(out)
}

fn names_swap(e: &Error) -> bool {
    matches!(e, Error::Io { path, .. } if path.to_string_lossy().ends_with(".log.swap"))
}

#[test]
fn every_step_of_a_swap_reads_all_or_refuses() -> TestResult {
    for (crash, whole_on_disk) in [
        (CrashPoint::AfterCleaned, true),
        (CrashPoint::AfterSwap, true),
        (CrashPoint::AfterFirstDelete, false),
        (CrashPoint::AfterIndexRename, false),
    ] {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path())?;
        let mut cfg = small_segments(1024);
        cfg.cleanup_policy = CleanupPolicy::Compact;
        log.create_topic_with("c", 1, cfg)?;
        let p = log.partition("c", 0)?;
        for i in 0..120u64 {
            let v = format!("value-{i}-{}", "z".repeat(16));
            p.append(&[Record::new(v).key(format!("k{}", i % 4))])?;
        }
        let before = read_only_view(dir.path())?;
        let expected = contents(&before)?;
        assert_eq!(expected.len(), 120);
        log.compact_until("c", Some(crash))?;
        // Loaded before: the files it loaded, whatever the swap did to their names. Asked
        // past its end, it looks at the directory again: all there, or the swap named.
        assert_eq!(loaded(&before)?, expected, "{crash:?}: view from before");
        match before.partition("c", 0)?.read(120, 1024) {
            Ok(r) => assert!(whole_on_disk && r.batches.is_empty(), "{crash:?}"),
            Err(e) => assert!(!whole_on_disk && names_swap(&e), "{crash:?}: {e}"),
        }
        match read_only_view(dir.path()) {
            Ok(after) => {
                assert!(whole_on_disk, "{crash:?}: opened with records missing");
                assert_eq!(contents(&after)?, expected, "{crash:?}: view from after");
            }
            Err(e) => {
                assert!(
                    !whole_on_disk,
                    "{crash:?}: refused an intact directory: {e}"
                );
                assert!(names_swap(&e), "{crash:?}: {e}");
            }
        }
        // The owner's next read-write open completes the swap (or drops the `.cleaned` files);
        // a view then reads the result.
        log.abandon();
        let reopened = open(dir.path())?;
        let now = contents(&read_only_view(dir.path())?)?;
        assert_eq!(now, contents(&reopened)?);
        assert_eq!(
            now.len() < expected.len(),
            crash != CrashPoint::AfterCleaned
        );
        assert!(now.iter().all(|r| expected.contains(r)));
        reopened.close()?;
    }
    Ok(())
}
