//! One `Log` owns a directory: a second open, from this process or another, gets
//! `AlreadyLocked` and touches nothing. A read-only open takes no lock.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::process::Command;
use topiclog::{Error, LogOptions};

const CHILD_ENV: &str = "TOPICLOG_LOCK_CHILD_DIR";

fn snapshot(dir: &std::path::Path) -> TestResult<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for e in walk(dir)? {
        if e.is_file() {
            out.push((e.display().to_string(), std::fs::read(&e)?));
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &std::path::Path) -> TestResult<Vec<std::path::PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            v.extend(walk(&p)?);
        }
        v.push(p);
    }
    Ok(v)
}

#[test]
fn second_open_in_this_process_is_refused() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    log.append("t", 0, &[rec(1)])?;
    let before = snapshot(log.path())?;
    let err = open(log.path()).unwrap_err();
    assert!(matches!(err, Error::AlreadyLocked { .. }), "{err}");
    assert_eq!(
        before,
        snapshot(log.path())?,
        "the refused open changed files"
    );
    // A read-only open works alongside.
    let ro = LogOptions::new().read_only(true).open(log.path())?;
    assert_eq!(ro.partition("t", 0)?.log_end_offset(), 1);
    drop(ro);
    let dir = log.close()?;
    // Released on close. A process another test spawns at this moment holds a copy of the
    // lock's file descriptor between its fork and its exec (the lock is the open file's,
    // which the copy shares): allow that window to pass.
    let started = std::time::Instant::now();
    loop {
        match open(dir.path()) {
            Ok(again) => return Ok(again.close()?),
            Err(Error::AlreadyLocked { .. })
                if started.elapsed() < std::time::Duration::from_secs(2) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[test]
fn second_open_from_another_process_is_refused() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_tries_to_open",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, log.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(
        stdout.contains("CHILD-SAW-LOCKED"),
        "child output: {stdout}"
    );
    log.close()?;
    Ok(())
}

/// Runs only inside the child process started above.
#[test]
fn child_tries_to_open() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    match open(std::path::Path::new(&dir)) {
        Err(Error::AlreadyLocked { .. }) => println!("CHILD-SAW-LOCKED"),
        other => panic!("expected AlreadyLocked, got {other:?}"),
    }
}
