//! `topiclog produce` stores inputs larger than one batch may be, and when a record fails it names exactly the input lines that were acknowledged.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::path::Path;

use common::run_cli as tl;

fn end_offset(dir: &Path, topic: &str) -> u64 {
    let out = tl(dir, &["topics", "describe", topic], b"");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    line.split('\t').nth(2).unwrap().parse().unwrap()
}

#[test]
fn five_thousand_records_of_three_kilobytes_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(tl(d, &["topics", "create", "t"], b"").status.success());
    let mut input = Vec::new();
    for i in 0..5_000 {
        writeln!(input, "{i:05}{}", "x".repeat(3_000)).unwrap();
    }
    let out = tl(d, &["produce", "t"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(end_offset(d, "t"), 5_000);
}

#[test]
fn a_failed_line_is_reported_with_the_acknowledged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let create = [
        "topics",
        "create",
        "t",
        "--config",
        "max.message.bytes=2000",
    ];
    assert!(tl(d, &create, b"").status.success());
    let mut input = Vec::new();
    for i in 1..=1_200 {
        if i == 700 {
            writeln!(input, "{}", "x".repeat(3_000)).unwrap();
        } else {
            writeln!(input, "line {i}").unwrap();
        }
    }
    let out = tl(d, &["produce", "t"], &input);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("line 700 failed"), "{err}");
    // The batch of lines 1..=1000 was in flight when line 700 failed: everything but 700
    // was acknowledged, and the command stopped there, before line 1001.
    assert!(err.contains("acknowledged lines 1-699,701-1000;"), "{err}");
    assert_eq!(end_offset(d, "t"), 999);
}
