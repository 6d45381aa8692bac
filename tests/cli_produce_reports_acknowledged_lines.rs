//! `topiclog produce` stores inputs larger than one batch may be, and when a record fails it names exactly the input lines that were acknowledged.
#![cfg(feature = "cli")]
#![allow(clippy::indexing_slicing)]

mod common;

use std::io::Write;
use std::path::Path;

use common::{TestResult, run_cli as tl};

fn end_offset(dir: &Path, topic: &str) -> TestResult<u64> {
    let out = tl(dir, &["topics", "describe", topic], b"");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout)?;
    Ok(line
        .split('\t')
        .nth(2)
        .ok_or("no end offset column")?
        .parse()?)
}

#[test]
fn five_thousand_records_of_three_kilobytes_are_stored() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    assert!(tl(d, &["topics", "create", "t"], b"").status.success());
    let mut input = Vec::new();
    for i in 0..5_000 {
        writeln!(input, "{i:05}{}", "x".repeat(3_000))?;
    }
    let out = tl(d, &["produce", "t"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(end_offset(d, "t")?, 5_000);
    Ok(())
}

#[test]
fn a_failed_line_is_reported_with_the_acknowledged_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
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
            writeln!(input, "{}", "x".repeat(3_000))?;
        } else {
            writeln!(input, "line {i}")?;
        }
    }
    let out = tl(d, &["produce", "t"], &input);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("line 700 failed"), "{err}");
    // The batch of lines 1..=1000 was in flight when line 700 failed: everything but 700
    // was acknowledged, and the command stopped there, before line 1001.
    assert!(err.contains("acknowledged lines 1-699,701-1000;"), "{err}");
    assert_eq!(end_offset(d, "t")?, 999);
    Ok(())
}
