//! 10,000 partitions in one store: create, append one record to each, read each back, close
//! and reopen — with a bounded number of open file descriptors.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::Record;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[test]
#[cfg(target_os = "linux")]
fn ten_thousand_partitions_with_bounded_descriptors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let budget = 64;
    let baseline = open_fds();
    let n = 10_000;
    {
        let log = quiet()
            .max_open_files(budget)
            .max_mapped_segments(256)
            .open(dir.path())?;
        log.create_topic("wide", n)?;
        for i in 0..n {
            let p = log.partition("wide", i)?;
            p.append(&[Record::new(format!("v{i}")).key("k")])?;
            if i % 1000 == 0 {
                assert!(log.stats().open_files <= budget);
            }
        }
        assert!(
            open_fds() <= baseline + budget + 16,
            "{} fds open",
            open_fds()
        );
        for i in (0..n).rev() {
            let got = log.partition("wide", i)?.records(0, 1024)?;
            assert_eq!(got[0].value.as_deref(), Some(format!("v{i}").as_bytes()));
        }
        assert!(log.stats().mapped_segments <= 256);
        log.close()?;
    }
    let log = quiet().max_open_files(budget).open(dir.path())?;
    assert!(log.recovery_report().clean);
    let p = log.partition("wide", 9_999)?;
    assert_eq!(p.log_end_offset(), 1);
    assert!(open_fds() <= baseline + budget + 16);
    Ok(())
}

/// Descriptors open on files under `dir`.
#[cfg(target_os = "linux")]
fn fds_under(dir: &std::path::Path) -> TestResult<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count())
}

#[test]
#[cfg(target_os = "linux")]
fn rolled_segments_awaiting_their_sync_hold_few_descriptors_without_a_flusher() -> TestResult {
    // No flusher: rolled segments wait for `Log::flush` to sync them. However many rolls
    // happen meanwhile, only the last two keep their descriptors; the flush reopens the rest.
    let dir = tempfile::tempdir()?;
    let n = 3000u64;
    {
        let log = open(dir.path())?;
        log.create_topic_with("t", 1, small_segments(4096))?;
        let p = log.partition("t", 0)?;
        for i in 0..n {
            p.append(&[rec(i)])?;
        }
        let segments = segment_logs(&dir.path().join("t-0")).len();
        assert!(segments > 50, "{segments} segments");
        let held = fds_under(dir.path())?;
        // The active segment's 3, two rolled segments' 6, the directory lock and the
        // consumer-offsets partition's files.
        assert!(
            held <= 16,
            "{held} descriptors open under the log for {segments} segments"
        );
        log.flush()?;
        assert!(fds_under(dir.path())? <= held);
        drop(p);
        log.abandon();
    }
    // The flush synced every segment and checkpointed the end: the reopen scans nothing
    // before it.
    let log = open(dir.path())?;
    let r = log.recovery_report();
    let t = r
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .ok_or("no recovery report for t")?;
    assert_eq!(t.end_offset, n as i64);
    assert!(t.segments_trusted > 50, "{t:?}");
    assert_eq!(read_all(&log.partition("t", 0)?)?.len() as u64, n);
    Ok(())
}
