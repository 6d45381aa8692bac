//! `topiclog consume` processes, read-only, beside an owner that appends and runs retention and
//! compaction: no I/O or corruption error, no torn or reordered record, never an empty run.
#![cfg(feature = "cli")]
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use topiclog::{CleanupPolicy, MaintenanceReport, Record, Result};

/// Readers to run beside the owner, `AT_ONCE` at a time. Most of a reader's run is its open
/// and first read, where the old failures were, so many short readers test more than long ones.
const READERS: usize = 96;
const AT_ONCE: usize = 4;
/// Upper bound on the owner's rounds, whatever the readers do.
const MAX_ROUNDS: usize = 4000;

fn key(offset: i64) -> String {
    format!("k{}", offset / 2)
}

fn value(offset: i64) -> String {
    format!("v{offset:06}-{}", "x".repeat((offset % 61) as usize))
}

fn reader(dir: &Path, extra: &[&str]) -> std::io::Result<Child> {
    Command::new(env!("CARGO_BIN_EXE_topiclog"))
        .arg("--dir")
        .arg(dir)
        .args(["consume", "t", "--from-beginning", "--print-offsets"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// Checks one reader's run and returns the offsets it printed.
fn check(child: Child) -> TestResult<Vec<i64>> {
    let out = child.wait_with_output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reader failed: {stderr}");
    assert!(stderr.is_empty(), "reader wrote to stderr: {stderr}");
    let stdout = String::from_utf8(out.stdout)?;
    let mut offsets = Vec::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 4, "torn line {line:?}");
        assert_eq!(f[0], "0");
        let o: i64 = f[1].parse()?;
        assert_eq!(
            (f[2], f[3]),
            (key(o).as_str(), value(o).as_str()),
            "record {o}"
        );
        if let Some(&prev) = offsets.last() {
            assert!(o > prev, "offset {o} after {prev}");
        }
        offsets.push(o);
    }
    assert!(!offsets.is_empty(), "the reader printed nothing");
    Ok(offsets)
}

#[test]
fn readers_never_fail_while_segments_are_deleted_and_compacted() -> TestResult {
    // Names and inodes are what this test is about, not durability: on a memory file system
    // the owner's fsyncs (several per compaction) cost nothing, so its rounds are not paced by
    // a busy disk.
    let dir = match Path::new("/dev/shm") {
        shm if shm.is_dir() => tempfile::tempdir_in(shm)?,
        _ => tempfile::tempdir()?,
    };
    let log = open(dir.path())?;
    let mut cfg = small_segments(1024);
    cfg.cleanup_policy = CleanupPolicy::CompactDelete;
    cfg.retention_bytes = Some(12 * 1024);
    cfg.min_cleanable_dirty_ratio = 0.0;
    log.create_topic_with("t", 1, cfg)?;
    let p = log.partition("t", 0)?;
    let mut next = 0i64;
    let mut append = |n: usize| -> Result<()> {
        for _ in 0..n {
            let r = p.append(&[Record::new(value(next)).key(key(next))])?;
            assert_eq!(r.base_offset, next);
            next += 1;
        }
        Ok(())
    };
    append(200)?;
    let mut done = MaintenanceReport::default();
    let follow = ["--max", "100", "--timeout-ms", "2000"];
    let mut running: Vec<Child> = (0..AT_ONCE)
        .map(|_| reader(dir.path(), &follow))
        .collect::<std::io::Result<_>>()?;
    let (mut started, mut finished, mut rounds) = (AT_ONCE, 0, 0);
    while finished < READERS && rounds < MAX_ROUNDS {
        rounds += 1;
        append(4)?;
        let r = log.maintain()?;
        done.segments_deleted += r.segments_deleted;
        done.records_removed += r.records_removed;
        let mut i = 0;
        while i < running.len() {
            if running[i].try_wait()?.is_some() {
                check(running.swap_remove(i))?;
                finished += 1;
                if started < READERS {
                    running.push(reader(dir.path(), &follow)?);
                    started += 1;
                }
            } else {
                i += 1;
            }
        }
    }
    for child in running {
        check(child)?;
    }
    assert!(done.segments_deleted > 0, "retention deleted nothing");
    assert!(done.records_removed > 0, "compaction removed nothing");
    // With the owner quiet, a reader prints exactly what the owner reads.
    let owner: Vec<i64> = read_all(&log.partition("t", 0)?)?
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(check(reader(dir.path(), &["--timeout-ms", "300"])?)?, owner);
    log.close()?;
    Ok(())
}
