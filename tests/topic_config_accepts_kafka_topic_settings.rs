//! Every documented Kafka topic setting is accepted (checked against Kafka's type and range), persisted with the topic and reported; unknown names and bad values are refused.

mod common;
use common::*;
use topiclog::{Error, TopicConfig};

/// Kafka 3.9's documented topic settings, each with a valid value other than its default.
const KAFKA_SETTINGS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact,delete"),
    ("compression.gzip.level", "6"),
    ("compression.lz4.level", "12"),
    ("compression.type", "uncompressed"),
    ("compression.zstd.level", "-5"),
    ("delete.retention.ms", "1000"),
    ("file.delete.delay.ms", "0"),
    ("flush.messages", "1"),
    ("flush.ms", "1000"),
    ("follower.replication.throttled.replicas", "0:1, 1:2"),
    ("index.interval.bytes", "8192"),
    ("leader.replication.throttled.replicas", "*"),
    ("local.retention.bytes", "1048576"),
    ("local.retention.ms", "3600000"),
    ("max.compaction.lag.ms", "86400000"),
    ("max.message.bytes", "2000000"),
    ("message.downconversion.enable", "FALSE"),
    ("message.format.version", "2.8-IV1"),
    ("message.timestamp.after.max.ms", "3600000"),
    ("message.timestamp.before.max.ms", "86400000"),
    ("message.timestamp.difference.max.ms", "604800000"),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.25"),
    ("min.compaction.lag.ms", "5"),
    ("min.insync.replicas", "2"),
    ("preallocate", "true"),
    ("remote.log.copy.disable", "true"),
    ("remote.log.delete.on.disable", "true"),
    ("remote.storage.enable", "true"),
    ("retention.bytes", "1073741824"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1048576"),
    ("segment.index.bytes", "65536"),
    ("segment.jitter.ms", "1000"),
    ("segment.ms", "3600000"),
    ("unclean.leader.election.enable", "true"),
];

/// Settings with the value each reads back as (normalized: no spaces, lower-case booleans).
const REPORTED: &[(&str, &str)] = &[
    ("compression.gzip.level", "6"),
    ("compression.lz4.level", "12"),
    ("compression.zstd.level", "-5"),
    ("file.delete.delay.ms", "0"),
    ("follower.replication.throttled.replicas", "0:1,1:2"),
    ("leader.replication.throttled.replicas", "*"),
    ("local.retention.bytes", "1048576"),
    ("local.retention.ms", "3600000"),
    ("max.compaction.lag.ms", "86400000"),
    ("message.downconversion.enable", "false"),
    ("message.format.version", "2.8-IV1"),
    ("message.timestamp.after.max.ms", "3600000"),
    ("message.timestamp.before.max.ms", "86400000"),
    ("message.timestamp.difference.max.ms", "604800000"),
    ("min.insync.replicas", "2"),
    ("preallocate", "true"),
    ("remote.log.copy.disable", "true"),
    ("remote.log.delete.on.disable", "true"),
    ("remote.storage.enable", "true"),
    ("segment.jitter.ms", "1000"),
    ("unclean.leader.election.enable", "true"),
];

fn every_setting() -> TestResult<TopicConfig> {
    let mut c = TopicConfig::new();
    for (k, v) in KAFKA_SETTINGS {
        c.set(k, v).map_err(|e| format!("{k}={v}: {e}"))?;
    }
    Ok(c)
}

#[test]
fn every_documented_setting_is_accepted_and_reported() -> TestResult {
    let c = every_setting()?;
    c.validate()?;
    let props = c.to_properties();
    for (k, v) in REPORTED {
        assert_eq!(props.get(k).map(String::as_str), Some(*v), "{k}");
    }
    Ok(())
}

#[test]
fn defaults_are_reported_as_kafka_reports_them() {
    let props = TopicConfig::new().to_properties();
    for (k, v) in [
        ("min.insync.replicas", "1"),
        ("unclean.leader.election.enable", "false"),
        ("preallocate", "false"),
        ("remote.storage.enable", "false"),
        ("local.retention.ms", "-2"),
        ("message.downconversion.enable", "true"),
        ("follower.replication.throttled.replicas", ""),
        ("max.compaction.lag.ms", "9223372036854775807"),
        ("message.timestamp.before.max.ms", "9223372036854775807"),
        ("message.timestamp.after.max.ms", "9223372036854775807"),
        ("message.timestamp.difference.max.ms", "9223372036854775807"),
    ] {
        assert_eq!(props.get(k).map(String::as_str), Some(v), "{k}");
    }
}

#[test]
fn stored_settings_survive_a_reopen() -> TestResult {
    let log = TempLog::new()?;
    log.create_topic_with("t", 1, every_setting()?)?;
    let log = log.reopen()?;
    let props = log.describe_topic("t")?.config.to_properties();
    for (k, v) in REPORTED {
        assert_eq!(props.get(k).map(String::as_str), Some(*v), "{k}");
    }
    assert_eq!(log.describe_topic("t")?.config, every_setting()?);
    Ok(())
}

#[test]
fn unknown_names_and_bad_values_are_refused_naming_the_key() {
    for (k, v) in [
        ("min.insync.replica", "1"),
        ("log.retention.ms", "1"),
        ("min.insync.replicas", "0"),
        ("min.insync.replicas", "2147483648"),
        ("min.insync.replicas", "two"),
        ("unclean.leader.election.enable", "yes"),
        ("preallocate", "1"),
        ("local.retention.ms", "-3"),
        ("max.compaction.lag.ms", "0"),
        ("segment.jitter.ms", "-1"),
        ("compression.gzip.level", "0"),
        ("compression.gzip.level", "10"),
        ("compression.lz4.level", "18"),
        ("compression.zstd.level", "23"),
        ("follower.replication.throttled.replicas", "0-1"),
        ("leader.replication.throttled.replicas", "a:b"),
        ("message.format.version", "latest"),
        ("message.timestamp.before.max.ms", "-1"),
        ("message.timestamp.after.max.ms", "soon"),
        ("message.timestamp.difference.max.ms", "-5"),
    ] {
        let mut c = TopicConfig::new();
        match c.set(k, v) {
            Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, k, "{k}={v}"),
            other => panic!("{k}={v}: expected InvalidConfig, got {other:?}"),
        }
        assert_eq!(c, TopicConfig::new(), "a refused {k} changed the config");
    }
}

#[test]
fn setting_a_default_back_reads_as_never_set() -> TestResult {
    let c = TopicConfig::new()
        .with("min.insync.replicas", "3")?
        .with("min.insync.replicas", "1")?;
    assert_eq!(c, TopicConfig::new());
    Ok(())
}
