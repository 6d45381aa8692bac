//! The active segment rolls when the next batch would pass `segment_bytes`, when its index is
//! full, and when its records span `segment_ms`; new segments are named by base offset.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Record, Result, TopicConfig};

fn names(dir: &std::path::Path) -> Vec<String> {
    segment_logs(dir)
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn rolls_at_segment_bytes_and_names_segments_by_base_offset() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i)])?;
    }
    let pdir = log.path().join("t-0");
    let logs = segment_logs(&pdir);
    assert!(logs.len() > 5);
    let mut expected_base = 0;
    for path in &logs {
        let name = path
            .file_name()
            .ok_or("a segment path without a name")?
            .to_string_lossy()
            .into_owned();
        assert_eq!(name, format!("{expected_base:020}.log"));
        let size = std::fs::metadata(path)?.len();
        assert!(size <= 1024, "{name} is {size} bytes");
        for ext in ["index", "timeindex"] {
            assert!(path.with_extension(ext).exists());
        }
        // The next segment starts right after this one's last offset.
        let bytes = std::fs::read(path)?;
        let batches: Vec<_> = topiclog::Batches::new(bytes.into()).collect::<Result<_>>()?;
        expected_base = batches.last().ok_or("an empty segment")?.last_offset() + 1;
    }
    assert_eq!(read_all(&p)?.len(), 100);
    Ok(())
}

#[test]
fn a_batch_larger_than_a_segment_gets_its_own() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    p.append(&[rec(0)])?;
    p.append(&[Record::new(vec![1u8; 3000]).key("big")])?;
    p.append(&[rec(2)])?;
    assert_eq!(names(&log.path().join("t-0")).len(), 3);
    assert_eq!(read_all(&p)?.len(), 3);
    Ok(())
}

#[test]
fn rolls_when_the_index_is_full() -> TestResult {
    let mut c = TopicConfig::new();
    c.segment_index_bytes = 4096; // 512 offset entries, 340 time entries
    c.index_interval_bytes = 1; // an entry for (almost) every batch
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    for i in 0..1000 {
        p.append(&[rec(i)])?;
    }
    let pdir = log.path().join("t-0");
    let logs = segment_logs(&pdir);
    assert!(logs.len() >= 3, "{} segments", logs.len());
    for l in &logs {
        let t = std::fs::metadata(l.with_extension("timeindex"))?.len();
        assert!(t <= 4096, "time index {t} bytes");
        assert_eq!(t % 12, 0);
    }
    let got = read_all(&p)?;
    assert_eq!(got.len(), 1000);
    for off in [0, 339, 340, 341, 680, 999] {
        assert_eq!(p.records(off, 1)?[0].offset, off);
    }
    Ok(())
}

#[test]
fn rolls_by_record_time_span() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, TopicConfig::new().with("segment.ms", "1000")?)?;
    let p = log.partition("t", 0)?;
    let t0 = 1_700_000_000_000;
    p.append(&[Record::new("a").timestamp(t0)])?;
    p.append(&[Record::new("b").timestamp(t0 + 999)])?;
    assert_eq!(names(&log.path().join("t-0")).len(), 1);
    p.append(&[Record::new("c").timestamp(t0 + 1001)])?;
    assert_eq!(
        names(&log.path().join("t-0")),
        vec![format!("{:020}.log", 0), format!("{:020}.log", 2)]
    );
    Ok(())
}
