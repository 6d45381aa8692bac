//! Partition directories the topic catalog does not account for are never deleted at open: a
//! topic whose metadata file is gone is rebuilt from directories contiguous from partition 0;
//! any other is moved aside as `-stray`; only an interrupted delete is finished.
#![allow(clippy::indexing_slicing)]

mod common;

use std::fs;

use common::{TempLog, TestResult, dir_names, open, read_all, small_segments, values};
use topiclog::{Log, Record, Result};

fn fill(log: &Log, topic: &str, partitions: i32, per_partition: usize) -> Result<()> {
    log.create_topic_with(topic, partitions, small_segments(1024))?;
    for p in 0..partitions {
        let h = log.partition(topic, p)?;
        for i in 0..per_partition {
            h.append(&[Record::new(format!("{topic}-{p}-{i}")).key("k")])?;
        }
    }
    Ok(())
}

#[test]
fn a_lost_metadata_file_rebuilds_the_topic_with_every_record() -> TestResult {
    let log = TempLog::new()?;
    fill(&log, "orders", 3, 40)?;
    let dir = log.close()?;
    fs::remove_file(dir.path().join(".topics/orders"))?;

    let log = open(dir.path())?;
    let report = log.recovery_report();
    assert_eq!(report.topics_rebuilt, vec!["orders".to_string()]);
    assert!(report.strays.is_empty());
    assert!(
        report.notices().iter().any(|n| n.contains("'orders'")),
        "{:?}",
        report.notices()
    );
    let d = log.describe_topic("orders")?;
    assert!(d.recovered);
    assert_eq!(d.partitions.len(), 3);
    let props = d.config.to_properties();
    assert_eq!(props["cleanup.policy"], "delete");
    assert_eq!(props["retention.ms"], "-1");
    for p in 0..3 {
        let got = read_all(&log.partition("orders", p)?)?;
        assert_eq!(got.len(), 40);
        assert_eq!(values(&got)[39], format!("orders-{p}-39").into_bytes());
    }
    log.close()?;
    // The rebuilt file says so, and later opens keep the mark without reporting it again.
    let text = fs::read_to_string(dir.path().join(".topics/orders"))?;
    assert!(text.contains("recovered=true"), "{text}");
    let log = open(dir.path())?;
    assert!(log.recovery_report().topics_rebuilt.is_empty());
    assert!(log.describe_topic("orders")?.recovered);
    log.close()?;
    Ok(())
}

#[test]
fn partitions_not_contiguous_from_zero_are_moved_aside_whole() -> TestResult {
    let log = TempLog::new()?;
    fill(&log, "gappy", 3, 20)?;
    fill(&log, "kept", 2, 5)?;
    let dir = log.close()?;
    fs::remove_file(dir.path().join(".topics/gappy"))?;
    fs::rename(dir.path().join("gappy-0"), dir.path().join("elsewhere"))?;
    // A copy past a live topic's partition count is a stray too.
    fs::create_dir(dir.path().join("kept-7"))?;
    fs::write(dir.path().join("kept-7/notes.txt"), "mine")?;

    let log = open(dir.path())?;
    let strays = &log.recovery_report().strays;
    assert_eq!(strays.len(), 3, "{strays:?}");
    assert!(log.recovery_report().topics_rebuilt.is_empty());
    assert!(log.describe_topic("gappy").is_err());
    assert_eq!(log.partition_count("kept")?, 2);
    for s in strays {
        let name = s
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("a stray without a UTF-8 name")?;
        assert!(name.ends_with("-stray"), "{name}");
        assert!(s.is_dir());
    }
    // Every byte is still there, under the stray names.
    let gappy_1 = strays
        .iter()
        .find(|s| {
            s.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("gappy-1."))
        })
        .ok_or("no gappy-1 stray")?;
    assert!(!common::segment_logs(gappy_1).is_empty());
    let kept_7 = strays
        .iter()
        .find(|s| {
            s.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kept-7."))
        })
        .ok_or("no kept-7 stray")?;
    assert_eq!(fs::read_to_string(kept_7.join("notes.txt"))?, "mine");
    log.close()?;
    // Strays are left alone from then on.
    let before = dir_names(dir.path())?;
    open(dir.path())?.close()?;
    assert_eq!(dir_names(dir.path())?, before);
    Ok(())
}

#[test]
fn only_topiclogs_own_delete_leftovers_are_removed() -> TestResult {
    let dir = tempfile::tempdir()?;
    open(dir.path())?.close()?;
    for d in [
        "backup-delete",
        "old-1-delete",
        "x-1.zz-delete",
        "t-0.17f-delete",
    ] {
        fs::create_dir(dir.path().join(d))?;
        fs::write(dir.path().join(d).join("f"), "x")?;
    }
    open(dir.path())?.close()?;
    let names = dir_names(dir.path())?;
    for d in ["backup-delete", "old-1-delete", "x-1.zz-delete"] {
        assert!(names.contains(&d.to_string()), "{d} was removed: {names:?}");
    }
    // The one name of topiclog's own form, from a delete a crash interrupted, is gone.
    assert!(!names.contains(&"t-0.17f-delete".to_string()));
    Ok(())
}

#[test]
fn a_delete_interrupted_by_a_crash_is_finished_not_rebuilt() -> TestResult {
    let log = TempLog::new()?;
    fill(&log, "gone", 2, 10)?;
    let dir = log.close()?;
    // What a crash right after the delete's first step leaves: the metadata moved to the
    // tombstone folder, the partition directories not yet renamed.
    fs::create_dir_all(dir.path().join(".topics-deleting"))?;
    fs::rename(
        dir.path().join(".topics/gone"),
        dir.path().join(".topics-deleting/gone"),
    )?;
    let log = open(dir.path())?;
    let report = log.recovery_report();
    assert_eq!(report.deletes_completed, vec!["gone".to_string()]);
    assert!(report.topics_rebuilt.is_empty() && report.strays.is_empty());
    assert!(log.describe_topic("gone").is_err());
    assert!(!dir.path().join("gone-0").exists());
    assert!(!dir.path().join(".topics-deleting/gone").exists());
    log.close()?;
    Ok(())
}

#[test]
fn delete_then_create_again_starts_empty() -> TestResult {
    let log = TempLog::new()?;
    fill(&log, "again", 2, 3)?;
    log.delete_topic("again")?;
    log.create_topic("again", 2)?;
    assert_eq!(log.partition("again", 1)?.log_end_offset(), 0);
    let log = log.reopen()?;
    assert_eq!(log.partition("again", 1)?.log_end_offset(), 0);
    assert!(log.recovery_report().strays.is_empty());
    log.close()?;
    Ok(())
}

#[test]
fn a_lost_offsets_topic_metadata_file_keeps_every_commit() -> TestResult {
    use topiclog::{ConsumerConfig, OffsetAndMetadata, TopicPartition};
    let log = TempLog::new()?;
    fill(&log, "orders", 1, 5)?;
    let mut c = log.consumer(ConsumerConfig::group("billing"))?;
    c.commit_offsets(&[(TopicPartition::new("orders", 0), OffsetAndMetadata::new(4))])?;
    drop(c);
    let dir = log.close()?;
    fs::remove_file(dir.path().join(".topics/__consumer_offsets"))?;
    let log = open(dir.path())?;
    assert_eq!(
        log.recovery_report().topics_rebuilt,
        vec!["__consumer_offsets".to_string()]
    );
    assert_eq!(log.describe_group("billing")?.offsets[0].committed, Some(4));
    let props = log
        .describe_topic("__consumer_offsets")?
        .config
        .to_properties();
    assert_eq!(props["cleanup.policy"], "compact");
    log.close()?;
    Ok(())
}
