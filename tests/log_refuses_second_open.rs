//! One `Log` owns a directory: a second open, from this process or another, gets
//! `AlreadyLocked` and touches nothing. A read-only open takes no lock.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::process::Command;
use topiclog::{Error, LogOptions, Result};

const CHILD_ENV: &str = "TOPICLOG_LOCK_CHILD_DIR";

fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        if e.is_file() {
            out.push((e.display().to_string(), std::fs::read(&e).unwrap()));
        }
    }
    out.sort();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        }
        v.push(p);
    }
    v
}

#[test]
fn second_open_in_this_process_is_refused() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path())?;
    log.create_topic("t", 1)?;
    log.append("t", 0, &[rec(1)])?;
    let before = snapshot(dir.path());
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::AlreadyLocked { .. }), "{err}");
    assert_eq!(
        before,
        snapshot(dir.path()),
        "the refused open changed files"
    );
    // A read-only open works alongside.
    let ro = LogOptions::new().read_only(true).open(dir.path())?;
    assert_eq!(ro.partition("t", 0)?.log_end_offset(), 1);
    drop(ro);
    log.close()?;
    // Released on close.
    open(dir.path())?.close()
}

#[test]
fn second_open_from_another_process_is_refused() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path())?;
    log.create_topic("t", 1)?;
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "child_tries_to_open",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    assert!(
        stdout.contains("CHILD-SAW-LOCKED"),
        "child output: {stdout}"
    );
    log.close()
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
