//! Retention by size counts a segment's data, not its file's length: a `preallocate=true`
//! topic, whose active file runs ahead of its data, keeps exactly what the same appends keep
//! on the write path.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;

#[test]
fn retention_by_bytes_keeps_the_same_offsets_with_and_without_preallocation() -> TestResult {
    let log = TempLog::new()?;
    for (topic, prealloc) in [("plain", "false"), ("pre", "true")] {
        let mut c = small_segments(4096).with("preallocate", prealloc)?;
        c.retention_bytes = Some(10_000);
        log.create_topic_with(topic, 1, c)?;
        let p = log.partition(topic, 0)?;
        for i in 0..300 {
            p.append(&[rec(i)])?;
        }
    }
    log.maintain()?;
    let (plain, pre) = (log.partition("plain", 0)?, log.partition("pre", 0)?);
    assert!(plain.log_start_offset() > 0, "retention deleted nothing");
    assert_eq!(pre.log_start_offset(), plain.log_start_offset());
    assert_eq!(values(&read_all(&pre)?), values(&read_all(&plain)?));
    let size = |t: &str| -> TestResult<u64> { Ok(log.describe_topic(t)?.partitions[0].size_bytes) };
    assert_eq!(size("pre")?, size("plain")?);
    // The preallocated topic's active file is longer than its data meanwhile.
    let active = segment_logs(&log.path().join("pre-0"))
        .pop()
        .ok_or("no segment")?;
    let plain_active = segment_logs(&log.path().join("plain-0"))
        .pop()
        .ok_or("no segment")?;
    assert!(std::fs::metadata(active)?.len() > std::fs::metadata(plain_active)?.len());
    Ok(())
}
