//! Invalid names, configs, partitions, offsets and oversized batches each give a typed error,
//! and nothing already stored is lost.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Error, LogOptions, Record, TopicConfig};

#[test]
fn invalid_topic_names() -> TestResult {
    let log = TempLog::new()?;
    let long = "a".repeat(250);
    for name in [
        "",
        ".",
        "..",
        "a/b",
        "../escape",
        "a b",
        "tab\t",
        long.as_str(),
        "naïve",
    ] {
        let err = log.create_topic(name, 1).unwrap_err();
        assert!(
            matches!(err, Error::InvalidTopicName { .. }),
            "{name:?}: {err}"
        );
    }
    log.create_topic(&"a".repeat(249), 1)?;
    assert_eq!(log.topics().len(), 1);
    // Nothing escaped the data directory.
    assert!(
        !log.path()
            .parent()
            .ok_or("no parent")?
            .join("escape-0")
            .exists()
    );
    Ok(())
}

#[test]
fn invalid_configs() -> TestResult {
    let log = TempLog::new()?;
    let mut c = TopicConfig::new();
    c.segment_bytes = 10;
    let err = log.create_topic_with("t", 1, c).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field, .. } if field == "segment_bytes"),
        "{err}"
    );
    let err = log.create_topic("t", 0).unwrap_err();
    assert!(matches!(&err, Error::InvalidConfig { field, .. } if field == "partitions"));
    for (k, v) in [
        ("segment.bytes", "x"),
        ("retention.ms", "-5"),
        ("cleanup.policy", "shred"),
        ("compression.type", "brotli"),
        ("no.such.key", "1"),
        ("flush.policy", "sometimes"),
    ] {
        let err = TopicConfig::new().with(k, v).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { .. }), "{k}={v}");
    }
    let c = TopicConfig::new()
        .with("segment.bytes", "2048")?
        .with("retention.ms", "-1")?
        .with("cleanup.policy", "compact,delete")?
        .with("flush.messages", "1")?;
    assert_eq!(c.segment_bytes, 2048);
    assert!(c.flush_policy.syncs_each_batch());
    let err = LogOptions::new()
        .max_open_files(1)
        .open(log.path().join("x"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }));
    assert!(log.topics().is_empty());
    Ok(())
}

#[test]
fn missing_topics_and_partitions() -> TestResult {
    let log = TempLog::new()?;
    assert!(matches!(
        log.partition("nope", 0),
        Err(Error::TopicNotFound { .. })
    ));
    log.create_topic("t", 2)?;
    assert!(matches!(
        log.partition("t", 2),
        Err(Error::PartitionNotFound { .. })
    ));
    assert!(matches!(
        log.partition("t", -1),
        Err(Error::PartitionNotFound { .. })
    ));
    assert!(matches!(
        log.create_topic("t", 1),
        Err(Error::TopicAlreadyExists { .. })
    ));
    Ok(())
}

#[test]
fn offsets_out_of_range() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    p.append(&[rec(0), rec(1), rec(2)])?;
    match p.read(4, 1024) {
        Err(Error::OffsetOutOfRange {
            requested,
            start,
            end,
        }) => {
            assert_eq!((requested, start, end), (4, 0, 3));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p.read(-1, 1024),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert!(
        p.read(3, 1024)?.batches.is_empty(),
        "the end itself is an empty read"
    );
    p.delete_records(2)?;
    assert!(matches!(
        p.read(1, 1024),
        Err(Error::OffsetOutOfRange { start: 2, .. })
    ));
    assert!(matches!(
        p.delete_records(9),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        p.truncate_to(7),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&p)?.len(), 1);
    Ok(())
}

#[test]
fn oversized_batches_are_refused_and_nothing_is_lost() -> TestResult {
    let mut c = TopicConfig::new();
    c.max_message_bytes = 1000;
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    p.append(&[rec(0)])?;
    let big = Record::new(vec![7u8; 2000]);
    match p.append(&[big]) {
        Err(Error::RecordTooLarge { size, max }) => assert!(size > 2000 && max == 1000),
        other => panic!("{other:?}"),
    }
    let many: Vec<_> = (0..100).map(rec).collect();
    assert!(matches!(p.append(&many), Err(Error::RecordTooLarge { .. })));
    assert_eq!(p.log_end_offset(), 1);
    assert_eq!(p.append(&[rec(1)])?.base_offset, 1);
    assert_eq!(read_all(&p)?.len(), 2);
    assert!(matches!(p.append(&[]), Err(Error::InvalidBatch { .. })));
    Ok(())
}

#[test]
fn keyless_records_on_compacted_topics_are_refused() -> TestResult {
    let log = TempLog::new()?;
    log.create_topic_with(
        "c",
        1,
        TopicConfig::new().with("cleanup.policy", "compact")?,
    )?;
    let p = log.partition("c", 0)?;
    assert!(matches!(
        p.append(&[Record::new("v")]),
        Err(Error::KeyRequired { .. })
    ));
    p.append(&[Record::new("v").key("k")])?;
    Ok(())
}

#[test]
fn conditional_append_checks_the_end_offset() -> TestResult {
    let log = TempLog::with_topic("acct", 1)?;
    let p = log.partition("acct", 0)?;
    assert_eq!(p.append_if(0, &[rec(0)])?.base_offset, 0);
    match p.append_if(0, &[rec(1)]) {
        Err(Error::EndOffsetMismatch { expected, actual }) => {
            assert_eq!((expected, actual), (0, 1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.append_if(1, &[rec(1), rec(2)])?.last_offset, 2);
    assert_eq!(read_all(&p)?.len(), 3);
    Ok(())
}

#[test]
fn closed_log_and_read_only_refuse_writes() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    p.append(&[rec(0)])?;
    let dir = log.close()?;
    assert!(matches!(p.append(&[rec(1)]), Err(Error::Closed { .. })));
    let ro = LogOptions::new().read_only(true).open(dir.path())?;
    let rp = ro.partition("t", 0)?;
    assert!(matches!(rp.append(&[rec(1)]), Err(Error::ReadOnly)));
    assert!(matches!(ro.create_topic("u", 1), Err(Error::ReadOnly)));
    assert_eq!(read_all(&rp)?.len(), 1);
    Ok(())
}

#[test]
fn config_values_are_range_checked_when_set_under_the_key_typed() {
    let cases = [
        ("segment.bytes", "10", "must be 1024 to 2147483647"),
        ("segment_bytes", "10", "must be 1024 to 2147483647"),
        ("segment.bytes", "99999999999", "out of range"),
        ("segment.bytes", "-1", "out of range"),
        ("segment.index.bytes", "100", "must be 4096"),
        ("max.message.bytes", "1", "must be 64"),
        ("segment.ms", "0", "at least 1"),
        ("min.cleanable.dirty.ratio", "1.5", "between 0 and 1"),
        ("delete.retention.ms", "-3", "out of range"),
    ];
    for (key, value, says) in cases {
        let mut c = TopicConfig::new();
        let before = c.clone();
        match c.set(key, value) {
            Err(Error::InvalidConfig { field, reason }) => {
                assert_eq!(field, key, "{key}={value}: {reason}");
                assert!(reason.contains(says), "{key}={value}: {reason}");
                assert!(!reason.contains("not a valid number"), "{reason}");
            }
            other => panic!("{key}={value}: {other:?}"),
        }
        // A refused value leaves the config as it was.
        assert_eq!(c, before);
    }
    let err = TopicConfig::new().with("segment.bytes", "ten").unwrap_err();
    assert!(err.to_string().contains("not a valid number"), "{err}");
}

#[test]
fn unimplemented_assignors_are_refused_with_the_supported_list() -> TestResult {
    let log = TempLog::new()?;
    let mut config = topiclog::ConsumerConfig::group("g");
    config.assignors = vec!["cooperative-sticky".into()];
    match log.consumer(config) {
        Err(Error::InvalidConfig { reason, .. }) => {
            assert!(reason.contains("cooperative-sticky"), "{reason}");
            assert!(reason.contains("range, roundrobin, sticky"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}
