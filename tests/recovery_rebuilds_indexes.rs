//! Missing, short or corrupt `.index` / `.timeindex` files are rebuilt on open; lookups by
//! offset and by time give the same answers as before.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::fs;
use std::path::Path;
use topiclog::Result;

fn build(dir: &Path) -> Result<()> {
    let log = open(dir)?;
    log.create_topic_with("t", 1, small_segments(8192))?;
    let p = log.partition("t", 0)?;
    for i in 0..400 {
        p.append(&[rec(i)])?;
    }
    log.close()
}

fn verify(dir: &Path) -> TestResult {
    let log = open(dir)?;
    let p = log.partition("t", 0)?;
    assert_eq!(read_all(&p)?.len(), 400);
    for off in [0i64, 1, 57, 199, 200, 333, 399] {
        let got = p.records(off, 1)?;
        assert_eq!(got[0].offset, off);
    }
    let ts = 1_700_000_000_000 + 250;
    assert_eq!(p.offset_for_timestamp(ts)?, Some((250, ts)));
    assert_eq!(p.offset_for_timestamp(ts + 1000)?, None);
    log.close()?;
    Ok(())
}

fn index_files(dir: &Path, ext: &str) -> TestResult<Vec<std::path::PathBuf>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir.join("t-0"))? {
        let p = e?.path();
        if p.extension().is_some_and(|e| e == ext) {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

#[test]
fn deleted_indexes_are_rebuilt() -> TestResult {
    let dir = tempfile::tempdir()?;
    build(dir.path())?;
    let before: Vec<Vec<u8>> = index_files(dir.path(), "index")?
        .iter()
        .map(fs::read)
        .collect::<std::io::Result<_>>()?;
    for p in index_files(dir.path(), "index")?
        .iter()
        .chain(&index_files(dir.path(), "timeindex")?)
    {
        fs::remove_file(p)?;
    }
    verify(dir.path())?;
    let after: Vec<Vec<u8>> = index_files(dir.path(), "index")?
        .iter()
        .map(fs::read)
        .collect::<std::io::Result<_>>()?;
    assert_eq!(
        before, after,
        "rebuilt indexes equal the ones the writer made"
    );
    Ok(())
}

#[test]
fn short_and_garbage_indexes_are_rebuilt() -> TestResult {
    let dir = tempfile::tempdir()?;
    build(dir.path())?;
    let idx = index_files(dir.path(), "index")?;
    let time = index_files(dir.path(), "timeindex")?;
    // Not a whole number of entries.
    let mut b = fs::read(&idx[0])?;
    b.pop();
    fs::write(&idx[0], b)?;
    // Last entry points at the wrong place.
    let mut b = fs::read(&idx[1])?;
    let n = b.len();
    b[n - 1] ^= 0x55;
    fs::write(&idx[1], b)?;
    // Garbage time index.
    fs::write(&time[2], [0xffu8; 7])?;
    verify(dir.path())
}

#[test]
fn indexes_are_trusted_after_a_clean_close() -> TestResult {
    let dir = tempfile::tempdir()?;
    build(dir.path())?;
    let log = open(dir.path())?;
    let r = log.recovery_report();
    assert!(r.clean);
    let t = r
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .ok_or("no recovery report for t")?;
    assert_eq!(t.indexes_rebuilt, 0);
    assert!(t.segments_trusted > 1);
    assert!(r.partitions.iter().all(|p| p.segments_scanned == 0));
    Ok(())
}

/// After a crash, the segment holding the recovery point is scanned from the last index
/// entry at or below it, not from its start; the indexes come out as a full rebuild would
/// make them, and every lookup still works.
#[test]
fn crash_recovery_scans_from_the_recovery_point() -> TestResult {
    let dir = tempfile::tempdir()?;
    let full_index: Vec<u8>;
    let full_time: Vec<u8>;
    {
        let log = open(dir.path())?;
        log.create_topic_with("t", 1, small_segments(1 << 20))?;
        let p = log.partition("t", 0)?;
        for i in 0..400 {
            p.append(&[rec(i)])?;
        }
        log.flush()?; // the recovery point: offset 400
        for i in 400..430 {
            p.append(&[rec(i)])?;
        }
        p.flush()?; // synced, but the checkpoint still says 400
        full_index = fs::read(&index_files(dir.path(), "index")?[0])?;
        full_time = fs::read(&index_files(dir.path(), "timeindex")?[0])?;
        log.abandon();
    }
    let segment_len = fs::metadata(dir.path().join("t-0/00000000000000000000.log"))?.len();
    let log = open(dir.path())?;
    let report = log
        .recovery_report()
        .partitions
        .iter()
        .find(|r| r.topic == "t")
        .cloned()
        .ok_or("no recovery report for t")?;
    assert!(!report.clean);
    assert!(
        report.bytes_scanned < segment_len / 4,
        "scanned {} of a {segment_len}-byte segment",
        report.bytes_scanned
    );
    assert_eq!(fs::read(&index_files(dir.path(), "index")?[0])?, full_index);
    assert_eq!(
        fs::read(&index_files(dir.path(), "timeindex")?[0])?,
        full_time
    );
    let p = log.partition("t", 0)?;
    assert_eq!(read_all(&p)?.len(), 430);
    for off in [0i64, 1, 57, 199, 399, 400, 401, 429] {
        assert_eq!(p.records(off, 1)?[0].offset, off);
    }
    let ts = 1_700_000_000_000 + 410;
    assert_eq!(p.offset_for_timestamp(ts)?, Some((410, ts)));
    p.append(&[rec(430)])?;
    log.close()?;
    Ok(())
}
