//! `topiclog dump-log` on the active segment of a `preallocate=true` topic left by a crash
//! lists every batch and names the zeros after them as the unwritten preallocated range, not
//! as a bad batch.
#![cfg(feature = "cli")]
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::Record;

#[test]
fn dump_log_names_the_zeros_after_the_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic_with("t", 1, small_segments(1 << 20).with("preallocate", "true")?)?;
    let p = log.partition("t", 0)?;
    for i in 0..30 {
        p.append(&[Record::new(format!("v{i}")).key("k")])?;
    }
    let data = log.describe_topic("t")?.partitions[0].size_bytes;
    drop(p);
    log.abandon();
    let seg = dir.path().join("t-0/00000000000000000000.log");
    let len = std::fs::metadata(&seg)?.len();
    assert!(len > data);
    let out = run_cli(
        dir.path(),
        &["dump-log", seg.to_str().ok_or("a path that is not UTF-8")?],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| !l.starts_with('#')).count(),
        30,
        "{text}"
    );
    assert_eq!(
        lines.last().copied(),
        Some(
            format!(
                "# {} zero bytes after the data (preallocated, not yet written)",
                len - data
            )
            .as_str()
        ),
        "{text}"
    );
    Ok(())
}
