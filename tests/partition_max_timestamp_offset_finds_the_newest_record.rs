//! `PartitionHandle::max_timestamp_offset` (Kafka's ListOffsets MAX_TIMESTAMP) finds the
//! first readable record with the largest timestamp, out of order, across segments and
//! after the log start moved past it.

mod common;
use common::*;
use topiclog::Record;

fn at(ts: i64) -> Record {
    Record::new("x").timestamp(ts)
}

#[test]
fn the_first_record_with_the_largest_timestamp_wins() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    assert_eq!(p.max_timestamp_offset()?, None);
    // Many small segments; the newest timestamp comes early and again later.
    for i in 0..40 {
        p.append(&[at(1_000 + i)])?;
    }
    p.append(&[at(500), at(90_000), at(700)])?; // offsets 40, 41, 42
    for i in 0..40 {
        p.append(&[at(2_000 + i)])?;
    }
    p.append(&[at(90_000)])?; // offset 83: a tie, later
    let segments = log
        .describe_topic("t")?
        .partitions
        .first()
        .map(|d| d.segments);
    assert!(segments > Some(3), "{segments:?}");
    assert_eq!(p.max_timestamp_offset()?, Some((41, 90_000)));
    Ok(())
}

#[test]
fn a_newest_record_below_the_log_start_no_longer_counts() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    p.append(&[at(5_000), at(9_000), at(1_000)])?;
    p.append(&[at(3_000), at(4_000)])?;
    assert_eq!(p.max_timestamp_offset()?, Some((1, 9_000)));
    // The segment still holds offset 1; it is no longer readable.
    p.delete_records(2)?;
    assert_eq!(p.max_timestamp_offset()?, Some((4, 4_000)));
    p.delete_records(-1)?;
    assert_eq!(p.max_timestamp_offset()?, None);
    Ok(())
}
