//! Topic `preallocate=true`: appends are stored into the active segment's preallocated,
//! mapped tail; readers see exactly the data; a roll trims the sealed segment at once and a
//! clean close trims the active one, so files at rest are exactly the batches; sizes count
//! data bytes, not file length; and a crash leaves a zero tail that the next open cuts as the
//! end of the data, keeping every record and every segment.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::path::Path;
use topiclog::{FlushPolicy, Record, Result, TopicConfig};

fn prealloc(segment_bytes: u32) -> TestResult<TopicConfig> {
    Ok(small_segments(segment_bytes).with("preallocate", "true")?)
}

/// Record `i`: small ones and, every fifth, 0-20 KB, so stores cross page boundaries.
fn record(i: u64) -> Record {
    let len = if i % 5 == 4 {
        (i.wrapping_mul(2_654_435_761) >> 5) as usize % 20_000
    } else {
        (i % 41) as usize
    };
    Record::new(format!("v{i}-{}", "z".repeat(len)))
        .key(format!("k{i}"))
        .timestamp(1_700_000_000_000 + i as i64)
}

/// Checks that `p` holds exactly `record(0..n)` at offsets `0..n`, with working lookups.
fn check(p: &topiclog::PartitionHandle, n: u64) -> Result<()> {
    let got = read_all(p)?;
    assert_eq!(got.len() as u64, n);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value, record(i as u64).value);
    }
    for o in (0..n as i64).step_by(7) {
        assert_eq!(p.records(o, 1)?[0].offset, o, "lookup at {o}");
    }
    Ok(())
}

/// The bytes of whole batches at the start of `path`.
fn data_len(path: &Path) -> TestResult<u64> {
    let bytes = std::fs::read(path)?;
    let mut n = 0u64;
    for b in topiclog::Batches::new(bytes.into()) {
        match b {
            Ok(b) => n += b.len() as u64,
            Err(_) => break,
        }
    }
    Ok(n)
}

/// What the open did to partition t-0.
fn report(log: &topiclog::Log) -> TestResult<&topiclog::PartitionRecovery> {
    Ok(log
        .recovery_report()
        .partitions
        .iter()
        .find(|r| r.topic == "t" && r.partition == 0)
        .ok_or("no report for t-0")?)
}

fn file_len(path: &Path) -> TestResult<u64> {
    Ok(std::fs::metadata(path)?.len())
}

#[test]
fn appends_read_back_and_the_active_file_runs_ahead_of_its_data() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, prealloc(1 << 30)?)?;
    let p = log.partition("t", 0)?;
    for i in 0..300 {
        let at = p.append(&[record(i)])?;
        assert_eq!(at.base_offset, i as i64);
    }
    check(&p, 300)?;
    let active = segment_logs(&log.path().join("t-0"))
        .pop()
        .ok_or("no segment")?;
    let data = data_len(&active)?;
    assert!(file_len(&active)? > data, "the file was not extended ahead");
    // Sizes count data bytes, not the file's length.
    let described = log.describe_topic("t")?;
    assert_eq!(described.partitions[0].size_bytes, data);
    Ok(())
}

#[test]
fn a_roll_trims_the_sealed_segment_and_a_clean_close_the_active_one() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, prealloc(64 << 10)?)?;
    let p = log.partition("t", 0)?;
    for i in 0..400 {
        p.append(&[record(i)])?;
    }
    let pdir = log.path().join("t-0");
    let logs = segment_logs(&pdir);
    assert!(logs.len() > 3, "{} segments", logs.len());
    // Every sealed segment is exactly its batches, before any sync or close.
    for l in &logs[..logs.len() - 1] {
        assert_eq!(file_len(l)?, data_len(l)?, "{}", l.display());
    }
    let dir = log.close()?;
    for l in segment_logs(&dir.path().join("t-0")) {
        assert_eq!(file_len(&l)?, data_len(&l)?, "{}", l.display());
    }
    let log = open(dir.path())?;
    assert!(log.recovery_report().clean);
    check(&log.partition("t", 0)?, 400)?;
    Ok(())
}

#[test]
fn a_crash_leaves_a_zero_tail_that_the_open_cuts_as_the_end_of_the_data() -> TestResult {
    for policy in [FlushPolicy::Os, FlushPolicy::EveryBatch] {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path())?;
        let mut c = prealloc(1 << 30)?;
        c.flush_policy = policy;
        log.create_topic_with("t", 1, c)?;
        let p = log.partition("t", 0)?;
        for i in 0..100 {
            p.append(&[record(i)])?;
        }
        let active = segment_logs(&dir.path().join("t-0"))
            .pop()
            .ok_or("no segment")?;
        let (len, data) = (file_len(&active)?, data_len(&active)?);
        assert!(len > data);
        log.abandon();
        let log = open(dir.path())?;
        let r = report(&log)?;
        assert_eq!(r.preallocated_bytes_trimmed, len - data, "{policy:?}");
        assert_eq!(r.truncated_bytes, 0);
        assert!(r.damage.is_empty(), "{:?}", r.damage);
        assert_eq!(file_len(&active)?, data);
        let p = log.partition("t", 0)?;
        check(&p, 100)?;
        p.append(&[record(100)])?;
        check(&p, 101)?;
    }
    Ok(())
}

#[test]
fn a_crash_between_a_roll_and_its_trim_keeps_every_segment() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic_with("t", 1, prealloc(64 << 10)?)?;
    let p = log.partition("t", 0)?;
    for i in 0..400 {
        p.append(&[record(i)])?;
    }
    log.abandon();
    // What a power loss can leave: the sealed segments' trims never reached the disk, while
    // the segments after them did.
    let pdir = dir.path().join("t-0");
    let logs = segment_logs(&pdir);
    assert!(logs.len() > 3);
    for l in &logs[..logs.len() - 1] {
        let f = std::fs::OpenOptions::new().write(true).open(l)?;
        f.set_len(file_len(l)? + 100_000)?;
    }
    let log = open(dir.path())?;
    let r = report(&log)?;
    assert_eq!(r.segments_deleted, 0);
    assert!(r.damage.is_empty(), "{:?}", r.damage);
    assert!(r.preallocated_bytes_trimmed >= 100_000 * (logs.len() as u64 - 1));
    assert_eq!(segment_logs(&pdir).len(), logs.len());
    for l in &logs[..logs.len() - 1] {
        assert_eq!(file_len(l)?, data_len(l)?);
    }
    check(&log.partition("t", 0)?, 400)?;
    Ok(())
}

#[test]
fn zeros_after_a_clean_close_are_damage_kept_aside() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, prealloc(1 << 30)?)?;
    let p = log.partition("t", 0)?;
    for i in 0..50 {
        p.append(&[record(i)])?;
    }
    let dir = log.close()?;
    let active = segment_logs(&dir.path().join("t-0"))
        .pop()
        .ok_or("no segment")?;
    let data = file_len(&active)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)?
        .set_len(data + 4096)?;
    let log = open(dir.path())?;
    let r = report(&log)?;
    assert_eq!(r.preallocated_bytes_trimmed, 0);
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert!(r.damage[0].preserved.as_ref().is_some_and(|c| c.exists()));
    check(&log.partition("t", 0)?, 50)?;
    Ok(())
}

#[test]
fn a_closed_writer_gives_up_its_tail_and_the_write_path_cuts_one_left_behind() -> TestResult {
    // A budget of one writer's descriptors: appending to one partition closes the other's
    // files, which cuts its tail.
    let dir = tempfile::tempdir()?;
    let sim = topiclog::sim::SimFs::install(dir.path())?;
    let log = quiet().max_open_files(4).open(dir.path())?;
    log.create_topic_with("t", 2, prealloc(1 << 30)?)?;
    let (p0, p1) = (log.partition("t", 0)?, log.partition("t", 1)?);
    for i in 0..20 {
        p0.append(&[record(i)])?;
    }
    let active = segment_logs(&dir.path().join("t-0"))
        .pop()
        .ok_or("no segment")?;
    assert!(file_len(&active)? > data_len(&active)?);
    p1.append(&[record(0)])?;
    assert_eq!(
        file_len(&active)?,
        data_len(&active)?,
        "eviction cut the tail"
    );
    for i in 20..30 {
        p0.append(&[record(i)])?;
    }
    assert!(file_len(&active)? > data_len(&active)?);
    // This time the cut fails: the descriptors go anyway and the tail stays behind.
    sim.fail_times(
        topiclog::sim::Op::SetLen,
        "t-0",
        topiclog::sim::FaultKind::Eio,
        1,
    );
    p1.append(&[record(1)])?;
    assert!(
        file_len(&active)? > data_len(&active)?,
        "the failed cut left the tail"
    );
    // Switched to the write path: the next opening of p0's files cuts the tail first, or
    // O_APPEND writes would land after the zeros.
    log.alter_topic_config("t", prealloc(1 << 30)?.with("preallocate", "false")?)?;
    for i in 30..40 {
        p0.append(&[record(i)])?;
    }
    check(&p0, 40)?;
    assert_eq!(file_len(&active)?, data_len(&active)?);
    drop((p0, p1));
    log.abandon();
    drop(sim);
    let log = open(dir.path())?;
    assert_eq!(report(&log)?.truncated_bytes, 0);
    check(&log.partition("t", 0)?, 40)?;
    Ok(())
}
