//! Kafka's topic settings that topiclog stores and reports but that change nothing here: they
//! steer replication, tiered storage, or broker mechanics a single embedded node does not have.
//! Deployment scripts and admin tools send them with every topic they create, so they are
//! accepted with Kafka's types and ranges, persisted with the topic, and shown by
//! [`crate::TopicConfig::to_properties`] (and so by an adapter's DescribeConfigs).

use crate::error::{Error, Result};

/// How a stored setting's value is checked, as Kafka's `ConfigDef` checks it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `true` or `false`, any case.
    Bool,
    /// A 32-bit integer in `min..=max`, or exactly `also` when given.
    Int {
        min: i64,
        max: i64,
        also: Option<i64>,
    },
    /// A 64-bit integer of at least `min`.
    Long { min: i64 },
    /// Kafka's throttled-replica list: empty, `*`, or `partition:broker` pairs separated by
    /// commas.
    Replicas,
    /// A Kafka message-format version such as `3.0-IV1` or `2.8`.
    Version,
}

/// One stored setting: its Kafka name, how it is checked, Kafka's default, and why it has no
/// effect here.
#[derive(Debug)]
pub(super) struct Stored {
    pub(super) name: &'static str,
    kind: Kind,
    pub(super) default: &'static str,
}

const fn stored(name: &'static str, kind: Kind, default: &'static str) -> Stored {
    Stored {
        name,
        kind,
        default,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Kafka 3.9's topic settings that are stored without effect, sorted by name. Why each has none:
/// - `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`: batches the
///   log compresses itself (a topic `compression.type` other than the producer's) use each
///   codec's default level.
/// - `file.delete.delay.ms`: segments retention or compaction remove are deleted at once (no
///   broker reads them asynchronously).
/// - `follower.replication.throttled.replicas`, `leader.replication.throttled.replicas`,
///   `min.insync.replicas`, `unclean.leader.election.enable`: one replica, always the leader
///   and always in sync.
/// - `local.retention.bytes`, `local.retention.ms`, `remote.storage.enable`,
///   `remote.log.copy.disable`, `remote.log.delete.on.disable`: there is no tiered storage;
///   every segment stays local under `retention.*`.
/// - `max.compaction.lag.ms`, `segment.jitter.ms`: compaction and rolls follow
///   `min.cleanable.dirty.ratio`, `min.compaction.lag.ms`, `segment.ms` and `segment.bytes`
///   only.
/// - `message.downconversion.enable`, `message.format.version`: only the v2 record format is
///   stored or served (consumers asking for older formats are refused).
/// - `preallocate` is stored here too (Kafka's type, default and reporting) but has an effect:
///   `TopicConfig::preallocate` reads it.
pub(super) const STORED: &[Stored] = &[
    stored(
        "compression.gzip.level",
        Kind::Int {
            min: 1,
            max: 9,
            also: Some(-1),
        },
        "-1",
    ),
    stored(
        "compression.lz4.level",
        Kind::Int {
            min: 1,
            max: 17,
            also: None,
        },
        "9",
    ),
    stored(
        "compression.zstd.level",
        Kind::Int {
            min: -131_072,
            max: 22,
            also: None,
        },
        "3",
    ),
    stored("file.delete.delay.ms", Kind::Long { min: 0 }, "60000"),
    stored(
        "follower.replication.throttled.replicas",
        Kind::Replicas,
        "",
    ),
    stored("leader.replication.throttled.replicas", Kind::Replicas, ""),
    stored("local.retention.bytes", Kind::Long { min: -2 }, "-2"),
    stored("local.retention.ms", Kind::Long { min: -2 }, "-2"),
    stored("max.compaction.lag.ms", Kind::Long { min: 1 }, LONG_MAX),
    stored("message.downconversion.enable", Kind::Bool, "true"),
    stored("message.format.version", Kind::Version, "3.0-IV1"),
    stored(
        "min.insync.replicas",
        Kind::Int {
            min: 1,
            max: i32::MAX as i64,
            also: None,
        },
        "1",
    ),
    stored("preallocate", Kind::Bool, "false"),
    stored("remote.log.copy.disable", Kind::Bool, "false"),
    stored("remote.log.delete.on.disable", Kind::Bool, "false"),
    stored("remote.storage.enable", Kind::Bool, "false"),
    stored("segment.jitter.ms", Kind::Long { min: 0 }, "0"),
    stored("unclean.leader.election.enable", Kind::Bool, "false"),
];

/// The stored setting named `key` (Kafka's name), if it is one.
pub(super) fn find(key: &str) -> Option<&'static Stored> {
    STORED.iter().find(|s| s.name == key)
}

impl Stored {
    /// `value` checked and written the way it is stored and reported (booleans in lower case,
    /// numbers without padding). `key` is the name the user typed, for the error.
    pub(super) fn normalize(&self, key: &str, value: &str) -> Result<String> {
        let v = value.trim();
        let bad = |why: String| Err(Error::invalid_config(key, why));
        match self.kind {
            Kind::Bool => match v.to_ascii_lowercase().as_str() {
                b @ ("true" | "false") => Ok(b.to_string()),
                _ => bad(format!("'{v}' is not true or false")),
            },
            Kind::Int { min, max, also } => {
                let n = number(key, v)?;
                if (min..=max).contains(&n) || also == Some(n) {
                    Ok(n.to_string())
                } else {
                    let or = also.map_or(String::new(), |a| format!(" (or {a})"));
                    bad(format!("{n} is out of range: must be {min} to {max}{or}"))
                }
            }
            Kind::Long { min } => {
                let n = number(key, v)?;
                if n >= min {
                    Ok(n.to_string())
                } else {
                    bad(format!("{n} is out of range: must be at least {min}"))
                }
            }
            Kind::Replicas => {
                let pairs: Vec<&str> = v.split(',').map(str::trim).collect();
                let pair_ok = |p: &&str| {
                    p.split_once(':').is_some_and(|(a, b)| {
                        a.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                    })
                };
                if v.is_empty() || v == "*" {
                    Ok(v.to_string())
                } else if pairs.iter().all(pair_ok) {
                    Ok(pairs.join(","))
                } else {
                    bad(format!(
                        "'{v}' is not *, or a list of partition:broker pairs such as 0:1,1:1"
                    ))
                }
            }
            Kind::Version => {
                let (release, iv) = v.split_once("-IV").unwrap_or((v, "0"));
                let parts: Vec<&str> = release.split('.').collect();
                let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if (2..=3).contains(&parts.len()) && parts.iter().all(|p| numeric(p)) && numeric(iv)
                {
                    Ok(v.to_string())
                } else {
                    bad(format!("'{v}' is not a Kafka version such as 3.0-IV1"))
                }
            }
        }
    }
}

fn number(key: &str, v: &str) -> Result<i64> {
    v.parse::<i64>()
        .map_err(|_| Error::invalid_config(key, format!("'{v}' is not a valid number")))
}
