//! Topics: create, list, describe, change config, add partitions, delete; all persisted; a
//! stale handle to a deleted topic cannot write into a re-created one.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{CleanupPolicy, Error, TopicConfig, partition_for_key};

#[test]
fn topics_and_configs_persist() -> TestResult {
    let log = TempLog::new()?;
    {
        let c = TopicConfig::new()
            .with("retention.ms", "86400000")?
            .with("cleanup.policy", "compact,delete")?
            .with("max.message.bytes", "5000")?
            .with("compression.type", "zstd")?;
        log.create_topic_with("orders", 3, c)?;
        log.create_topic("audit.log", 1)?;
        assert_eq!(
            log.topics(),
            vec!["audit.log".to_string(), "orders".to_string()]
        );
        log.add_partitions("orders", 5)?;
        assert!(matches!(
            log.add_partitions("orders", 5),
            Err(Error::InvalidConfig { .. })
        ));
        // Partition counts are bounded: no request can make millions of directories.
        assert!(matches!(
            log.add_partitions("orders", topiclog::MAX_PARTITIONS + 1),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            log.create_topic("huge", i32::MAX),
            Err(Error::InvalidConfig { .. })
        ));
        let mut c = log.describe_topic("orders")?.config;
        c.retention_bytes = Some(1 << 30);
        log.alter_topic_config("orders", c)?;
        log.append("orders", 4, &[rec(1).key("x")])?;
    }
    let log = log.reopen()?;
    let d = log.describe_topic("orders")?;
    assert_eq!(d.partitions.len(), 5);
    assert_eq!(d.config.retention_ms, Some(86_400_000));
    assert_eq!(d.config.retention_bytes, Some(1 << 30));
    assert_eq!(d.config.cleanup_policy, CleanupPolicy::CompactDelete);
    assert_eq!(d.config.max_message_bytes, 5000);
    assert_eq!(d.config.compression, Some(topiclog::Compression::Zstd));
    assert_eq!(d.partitions[4].log_end_offset, 1);
    assert!(d.partitions[4].size_bytes > 0);
    Ok(())
}

#[test]
fn delete_topic_removes_data_and_fences_old_handles() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let old = log.partition("t", 0)?;
    old.append(&[rec(0), rec(1)])?;
    log.delete_topic("t")?;
    assert!(log.topics().is_empty());
    assert!(!log.path().join("t-0").exists());
    assert!(matches!(old.append(&[rec(2)]), Err(Error::Closed { .. })));
    assert!(matches!(
        log.partition("t", 0),
        Err(Error::TopicNotFound { .. })
    ));
    log.create_topic("t", 1)?;
    let new = log.partition("t", 0)?;
    assert_eq!(new.log_end_offset(), 0, "a re-created topic starts empty");
    assert!(matches!(old.append(&[rec(2)]), Err(Error::Closed { .. })));
    assert!(matches!(
        log.delete_topic("nope"),
        Err(Error::TopicNotFound { .. })
    ));
    let log = log.reopen()?;
    assert_eq!(log.topics(), vec!["t".to_string()]);
    assert_eq!(log.partition_count("t")?, 1);
    Ok(())
}

#[test]
fn interrupted_delete_leftovers_are_swept_and_orphans_kept() -> TestResult {
    let log = TempLog::new()?;
    log.create_topic("t", 1)?;
    log.append("t", 0, &[rec(0)])?;
    let dir = log.close()?;
    // A lost metadata file: the partition directory is kept and the topic rebuilt
    // (tests/log_keeps_stray_partitions.rs covers the cases). A `-delete` directory of
    // topiclog's own naming is what an interrupted delete leaves: it goes.
    std::fs::remove_file(dir.path().join(".topics").join("t"))?;
    std::fs::create_dir(dir.path().join("x-3.abc-delete"))?;
    let log = open(dir.path())?;
    assert_eq!(log.topics(), vec!["t".to_string()]);
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 1);
    assert!(!dir.path().join("x-3.abc-delete").exists());
    Ok(())
}

#[test]
fn default_partitioner_matches_kafka() -> TestResult {
    let log = TempLog::with_topic("t", 6)?;
    for key in ["a", "user-1", "order-9999", ""] {
        assert_eq!(
            log.partition_for("t", Some(key.as_bytes()), 10)?,
            partition_for_key(key.as_bytes(), 6)
        );
    }
    let p = log.partition_for("t", None, 10)?;
    assert!((0..6).contains(&p));
    Ok(())
}
