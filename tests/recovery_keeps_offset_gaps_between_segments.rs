//! A compacted Kafka-format log has segments that end before the next one's base offset;
//! reopening such a directory, cleanly or after a crash, keeps every segment and reads step
//! over the gaps.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::fs;
use std::path::Path;
use std::time::Duration;
use topiclog::{
    BatchBuilder, Compression, ConsumerConfig, Log, Record, Result, TopicConfig, TopicPartition,
};

/// Segments as a cleaner elsewhere left them: keys `a,b | b,c | x` written at offsets 0-4 in
/// three segments, compacted to `a@0 | b@2, c@3 | x@4`, then more records `y@7, z@8` in a
/// fourth segment after a gap of two offsets.
const SEGMENTS: &[(i64, &[(i64, &str)])] = &[
    (0, &[(0, "a")]),
    (2, &[(2, "b"), (3, "c")]),
    (4, &[(4, "x")]),
    (7, &[(7, "y"), (8, "z")]),
];

/// One batch of `records` (offsets consecutive from the first), stamped at its base offset.
fn batch(records: &[(i64, &str)]) -> Result<Vec<u8>> {
    let mut b = BatchBuilder::new(Compression::None);
    for (offset, key) in records {
        let value = format!("value of {key}");
        b.push(
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            &[],
            1_000 + offset,
        )?;
    }
    let mut bytes = b.finish()?.to_vec();
    // The base offset is outside the CRC: the writer stamps it the same way.
    bytes[..8].copy_from_slice(&records[0].0.to_be_bytes());
    Ok(bytes)
}

/// A compacted topic `t` whose partition files are replaced by [`SEGMENTS`] (no indexes:
/// the open rebuilds them).
fn lay_out(dir: &Path) -> TestResult {
    let log = open(dir)?;
    log.create_topic_with(
        "t",
        1,
        TopicConfig::new().with("cleanup.policy", "compact")?,
    )?;
    log.close()?;
    let pdir = dir.join("t-0");
    for f in fs::read_dir(&pdir)? {
        fs::remove_file(f?.path())?;
    }
    for (base, records) in SEGMENTS {
        fs::write(pdir.join(format!("{base:020}.log")), batch(records)?)?;
    }
    Ok(())
}

fn check(log: &Log) -> TestResult {
    let p = log.partition("t", 0)?;
    let r = log.recovery_report();
    assert!(r.damaged().next().is_none(), "{r:?}");
    let t = r
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .ok_or("no recovery report for t")?;
    assert_eq!(t.offset_gaps, 2, "{t:?}");
    assert_eq!(p.log_end_offset(), 9);
    let got: Vec<(i64, Vec<u8>)> = read_all(&p)?
        .into_iter()
        .map(|r| Ok((r.offset, r.key.ok_or("a null key")?.to_vec())))
        .collect::<TestResult<_>>()?;
    let want: Vec<(i64, Vec<u8>)> = SEGMENTS
        .iter()
        .flat_map(|(_, rs)| rs.iter().map(|(o, k)| (*o, k.as_bytes().to_vec())))
        .collect();
    assert_eq!(got, want);
    // A read from inside a gap starts at the next record.
    assert_eq!(p.records(1, 1 << 16)?[0].offset, 2);
    assert_eq!(p.records(5, 1 << 16)?[0].offset, 7);
    // Timestamp lookups step over the gaps too.
    assert_eq!(p.offset_for_timestamp(1_005)?, Some((7, 1_007)));
    // A consumer from the beginning sees every record, in order.
    let mut c = log.consumer(ConsumerConfig::default())?;
    let tp = TopicPartition::new("t", 0);
    c.assign(std::slice::from_ref(&tp))?;
    c.seek_to_beginning(std::slice::from_ref(&tp))?;
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.extend(
            c.poll(Duration::from_millis(10))?
                .iter()
                .map(|r| r.offset()),
        );
        if seen.len() >= want.len() {
            break;
        }
    }
    assert_eq!(seen, want.iter().map(|w| w.0).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn compacted_segments_with_gaps_reopen_whole_after_a_clean_close() -> TestResult {
    let dir = tempfile::tempdir()?;
    lay_out(dir.path())?;
    let log = open(dir.path())?;
    assert!(log.recovery_report().clean);
    check(&log)?;
    let p = log.partition("t", 0)?;
    assert_eq!(p.append(&[Record::new("v").key("w")])?.base_offset, 9);
    drop(p);
    log.close()?;
    let log = open(dir.path())?;
    assert_eq!(read_all(&log.partition("t", 0)?)?.len(), 7);
    Ok(())
}

#[test]
fn compacted_segments_with_gaps_below_the_recovery_point_survive_a_crash() -> TestResult {
    let dir = tempfile::tempdir()?;
    lay_out(dir.path())?;
    // As if the process had crashed after syncing all of it: no clean-shutdown marker, the
    // recovery point at the end.
    fs::remove_file(dir.path().join(".kafka_cleanshutdown"))?;
    let rp = dir.path().join("recovery-point-offset-checkpoint");
    let text = fs::read_to_string(&rp)?.replace("t 0 0", "t 0 9");
    fs::write(&rp, text)?;
    let log = open(dir.path())?;
    assert!(!log.recovery_report().clean);
    check(&log)?;
    Ok(())
}
