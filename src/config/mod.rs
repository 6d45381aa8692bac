//! Configuration: [`LogOptions`] for a data directory, [`TopicConfig`] per topic, and the named
//! durability and timestamp choices.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::{Compression, TimestampType};

mod passive;

/// When appended bytes are forced to stable storage, and so what an acknowledged append survives.
///
/// | policy | acknowledged after | survives a process crash | survives power loss |
/// |---|---|---|---|
/// | `Os` | `write` to the page cache | yes | no: the unsynced tail may be lost |
/// | `EveryBatch` | `fdatasync` of the batch | yes | yes |
/// | `Interval(d)` | `write`; synced every `d` | yes | all but the last `d` of appends |
///
/// Readers see the written end under `Os` and `Interval`, and only the synced end under
/// `EveryBatch`, so a consumer never commits an offset that a power loss could erase there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushPolicy {
    /// Leave writeback to the operating system (Kafka's default). Fastest; a power loss can lose
    /// the tail written since the last roll or checkpoint, and its offsets are then reused.
    #[default]
    Os,
    /// `fdatasync` before each append returns. Concurrent appends to one partition share one
    /// `fdatasync` (group commit).
    EveryBatch,
    /// Acknowledge on write; a background thread syncs each partition at this interval.
    Interval(Duration),
}

impl FlushPolicy {
    /// True when appends wait for `fdatasync` before they are acknowledged and visible.
    pub fn syncs_each_batch(self) -> bool {
        matches!(self, FlushPolicy::EveryBatch)
    }
}

impl fmt::Display for FlushPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlushPolicy::Os => f.write_str("os"),
            FlushPolicy::EveryBatch => f.write_str("every-batch"),
            FlushPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
        }
    }
}

impl std::str::FromStr for FlushPolicy {
    type Err = Error;

    /// Parses `os`, `every-batch` (or `every_batch`), or `interval:MILLIS`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "os" => Ok(FlushPolicy::Os),
            "every-batch" | "every_batch" | "everybatch" => Ok(FlushPolicy::EveryBatch),
            other => {
                let ms = other
                    .strip_prefix("interval:")
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        Error::invalid_config(
                            "flush_policy",
                            format!("'{s}' is not one of os, every-batch, interval:MILLIS"),
                        )
                    })?;
                if ms == 0 {
                    return Err(Error::invalid_config(
                        "flush_policy",
                        "interval must be at least 1 ms",
                    ));
                }
                Ok(FlushPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

/// What happens to old segments (Kafka's `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupPolicy {
    /// Delete whole segments by time and size retention.
    #[default]
    Delete,
    /// Keep the latest record per key (log compaction).
    Compact,
    /// Both: compact, and delete by retention.
    CompactDelete,
}

impl CleanupPolicy {
    /// True when retention deletes segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }
    /// True when the topic is compacted (and so every record needs a key).
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }
}

/// Kafka's default `max.message.bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1_048_588;

const MIN_SEGMENT_BYTES: u32 = 1024;
const MIN_SEGMENT_INDEX_BYTES: u32 = 4096;

/// Per-topic settings. Every field is also settable by its Kafka name through [`TopicConfig::set`].
///
/// # Kafka settings stored without effect
///
/// [`TopicConfig::set`] also accepts the rest of Kafka 3.9's documented topic settings, so that
/// scripts and tools written for Kafka create topics unchanged. Each is checked against Kafka's
/// type and range, persisted with the topic and reported by [`TopicConfig::to_properties`],
/// and has no effect on this single embedded node:
///
/// | setting | why it has no effect |
/// |---|---|
/// | `min.insync.replicas`, `unclean.leader.election.enable`, `leader.replication.throttled.replicas`, `follower.replication.throttled.replicas` | one replica, always the leader and always in sync |
/// | `remote.storage.enable`, `local.retention.ms`, `local.retention.bytes`, `remote.log.copy.disable`, `remote.log.delete.on.disable` | no tiered storage: every segment stays local under `retention.*` |
/// | `message.downconversion.enable`, `message.format.version` | only the v2 record format is stored and served |
/// | `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level` | batches the log compresses itself use each codec's default level |
/// | `file.delete.delay.ms` | removed segments are deleted at once |
/// | `max.compaction.lag.ms`, `segment.jitter.ms` | compaction and rolls follow the settings above only |
///
/// `preallocate` is stored the same way but has an effect: see [`TopicConfig::preallocate`].
///
/// ```
/// use topiclog::TopicConfig;
/// let config = TopicConfig::new()
///     .with("min.insync.replicas", "2")?
///     .with("unclean.leader.election.enable", "false")?;
/// assert_eq!(config.to_properties()["min.insync.replicas"], "2");
/// assert!(TopicConfig::new().with("min.insync.replicas", "0").is_err());
/// # Ok::<_, topiclog::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TopicConfig {
    /// `segment.bytes`: roll the active segment before it would pass this size. Bytes; default
    /// 1 GiB; 1024..=`i32::MAX` (positions in the index are 32-bit).
    pub segment_bytes: u32,
    /// `segment.ms`: roll when the active segment's records span this long (measured on record
    /// timestamps, as Kafka does; without them, from the segment's creation, which a reopen
    /// takes from its `.log` file). Default 7 days; at least 1 ms.
    pub segment_ms: u64,
    /// `segment.index.bytes`: the largest `.index` file; the segment rolls when it is full (the
    /// `.timeindex` may hold 1.5x as many bytes: 12-byte entries). Default 10 MiB; at least 4096.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: about how many log bytes lie between two index entries. Default 4096.
    pub index_interval_bytes: u32,
    /// `retention.ms`: delete segments whose newest record is older than this (a segment whose
    /// records carry no timestamp is aged from its `.log` file's modification time, as in
    /// Kafka). `None` (Kafka's -1) keeps them forever, the default here: event-sourcing imports
    /// back-dated records.
    pub retention_ms: Option<u64>,
    /// `retention.bytes`: delete the oldest segments while the rest stays at least this large.
    /// `None` (-1, the default) means unlimited.
    pub retention_bytes: Option<u64>,
    /// `max.message.bytes`: the largest batch, after compression. Default 1,048,588 (Kafka's).
    pub max_message_bytes: u32,
    /// `message.timestamp.type`: CreateTime (default) or LogAppendTime.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: under CreateTime, an append is refused with
    /// [`Error::InvalidTimestamp`] when a record's timestamp lies more than this before the
    /// broker's clock. `None` (Kafka's 9223372036854775807, the default) sets no bound; then
    /// `message.timestamp.difference.max.ms` applies, as in Kafka.
    #[serde(default)]
    pub timestamp_before_max_ms: Option<u64>,
    /// `message.timestamp.after.max.ms`: as `timestamp_before_max_ms`, for timestamps ahead of
    /// the broker's clock. `None` (the default, Kafka 3.9's) sets no bound.
    #[serde(default)]
    pub timestamp_after_max_ms: Option<u64>,
    /// `message.timestamp.difference.max.ms` (deprecated by Kafka for the two above): the bound
    /// on both sides where they are unset. `None` (the default) sets none.
    #[serde(default)]
    pub timestamp_difference_max_ms: Option<u64>,
    /// `cleanup.policy`: delete (default), compact, or compact,delete.
    pub cleanup_policy: CleanupPolicy,
    /// `compression.type`: the codec batches are written with; `None` means Kafka's `producer`
    /// (keep what the producer chose; the default).
    pub compression: Option<Compression>,
    /// `flush.policy` (or Kafka's `flush.messages=1` / `flush.ms=N`): see [`FlushPolicy`].
    pub flush_policy: FlushPolicy,
    /// `delete.retention.ms`: how long tombstones survive compaction. Default 24 h.
    pub delete_retention_ms: u64,
    /// `min.cleanable.dirty.ratio`: compact when dirty bytes pass this share. Default 0.5.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted. Default 0.
    pub min_compaction_lag_ms: u64,
    /// The Kafka settings stored without effect (see the table above) that differ from
    /// Kafka's default, by Kafka name, as [`TopicConfig::set`] normalized them.
    #[serde(default)]
    stored: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: None,
            retention_bytes: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: None,
            timestamp_after_max_ms: None,
            timestamp_difference_max_ms: None,
            cleanup_policy: CleanupPolicy::Delete,
            compression: None,
            flush_policy: FlushPolicy::Os,
            delete_retention_ms: 24 * 3600 * 1000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            stored: BTreeMap::new(),
        }
    }
}

/// The keys [`TopicConfig::set`] accepts: (topiclog name, Kafka name).
const KEYS: &[(&str, &str)] = &[
    ("segment_bytes", "segment.bytes"),
    ("segment_ms", "segment.ms"),
    ("segment_index_bytes", "segment.index.bytes"),
    ("index_interval_bytes", "index.interval.bytes"),
    ("retention_ms", "retention.ms"),
    ("retention_bytes", "retention.bytes"),
    ("max_message_bytes", "max.message.bytes"),
    ("timestamp_type", "message.timestamp.type"),
    ("timestamp_before_max_ms", "message.timestamp.before.max.ms"),
    ("timestamp_after_max_ms", "message.timestamp.after.max.ms"),
    (
        "timestamp_difference_max_ms",
        "message.timestamp.difference.max.ms",
    ),
    ("cleanup_policy", "cleanup.policy"),
    ("compression", "compression.type"),
    ("flush_policy", "flush.policy"),
    ("delete_retention_ms", "delete.retention.ms"),
    ("min_cleanable_dirty_ratio", "min.cleanable.dirty.ratio"),
    ("min_compaction_lag_ms", "min.compaction.lag.ms"),
];

fn parse_num<T: std::str::FromStr>(field: &str, value: &str) -> Result<T> {
    let v = value.trim();
    v.parse::<T>().map_err(|_| {
        // A number that does not fit the setting is out of range, not "not a number".
        if v.parse::<i128>().is_ok() || v.parse::<f64>().is_ok_and(f64::is_finite) {
            let range = range_of(field).map_or(String::new(), |r| format!(": {r}"));
            Error::invalid_config(field, format!("{v} is out of range{range}"))
        } else {
            Error::invalid_config(field, format!("'{value}' is not a valid number"))
        }
    })
}

/// The accepted range of each numeric setting, by topiclog or Kafka name, as errors say it.
fn range_of(key: &str) -> Option<&'static str> {
    let ours = KEYS
        .iter()
        .find(|(ours, kafka)| *ours == key || *kafka == key)
        .map_or(key, |(ours, _)| *ours);
    Some(match ours {
        "segment_bytes" => "must be 1024 to 2147483647",
        "segment_index_bytes" => "must be 4096 to 2147483647",
        "max_message_bytes" => "must be 64 to 2147483647",
        "index_interval_bytes" => "must be 0 to 2147483647",
        "segment_ms" | "flush.ms" | "flush.messages" => "must be at least 1",
        "retention_ms" | "retention_bytes" => "must be -1 (unlimited) or at least 0",
        "delete_retention_ms" | "min_compaction_lag_ms" => "must be at least 0",
        "min_cleanable_dirty_ratio" => "must lie between 0 and 1",
        "timestamp_before_max_ms" | "timestamp_after_max_ms" | "timestamp_difference_max_ms" => {
            "must be 0 to 9223372036854775807"
        }
        _ => return None,
    })
}

/// Parses a timestamp bound: 0 to `i64::MAX`, which (Kafka's default) means no bound.
fn parse_bound(field: &str, value: &str) -> Result<Option<u64>> {
    let n: i64 = parse_num(field, value)?;
    match n {
        i64::MAX => Ok(None),
        n if n >= 0 => Ok(Some(n as u64)),
        _ => Err(Error::invalid_config(
            field,
            format!("{n} is out of range: must be 0 to 9223372036854775807"),
        )),
    }
}

/// Parses Kafka's "-1 means unlimited" convention.
fn parse_limit(field: &str, value: &str) -> Result<Option<u64>> {
    let n: i64 = parse_num(field, value)?;
    match n {
        -1 => Ok(None),
        n if n >= 0 => Ok(Some(n as u64)),
        _ => Err(Error::invalid_config(
            field,
            "must be -1 (unlimited) or at least 0",
        )),
    }
}

impl TopicConfig {
    /// A config with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one field by its topiclog name (`segment_bytes`) or Kafka name (`segment.bytes`).
    /// Also understands Kafka's `flush.messages` (1 means [`FlushPolicy::EveryBatch`]) and
    /// `flush.ms`, and stores the Kafka settings that have no effect on one node (see
    /// [`TopicConfig`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown key or a value that does not parse or is out of
    /// range.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        if let Some(setting) = passive::find(key) {
            let v = setting.normalize(key, value)?;
            if v == setting.default {
                self.stored.remove(setting.name);
            } else {
                self.stored.insert(setting.name.to_string(), v);
            }
            return Ok(self);
        }
        let name = KEYS
            .iter()
            .find(|(ours, kafka)| *ours == key || *kafka == key)
            .map_or(key, |(ours, _)| *ours);
        // Set on a copy and range-checked there, naming the key as the user typed it: a
        // refused value leaves the config as it was.
        let mut next = self.clone();
        next.assign(name, key, value)?;
        next.check(name, key)?;
        *self = next;
        Ok(self)
    }

    fn assign(&mut self, name: &str, key: &str, value: &str) -> Result<()> {
        let v = value.trim();
        match name {
            "segment_bytes" => self.segment_bytes = parse_num(key, v)?,
            "segment_ms" => self.segment_ms = parse_num(key, v)?,
            "segment_index_bytes" => self.segment_index_bytes = parse_num(key, v)?,
            "index_interval_bytes" => self.index_interval_bytes = parse_num(key, v)?,
            "retention_ms" => self.retention_ms = parse_limit(key, v)?,
            "retention_bytes" => self.retention_bytes = parse_limit(key, v)?,
            "max_message_bytes" => self.max_message_bytes = parse_num(key, v)?,
            "timestamp_before_max_ms" => self.timestamp_before_max_ms = parse_bound(key, v)?,
            "timestamp_after_max_ms" => self.timestamp_after_max_ms = parse_bound(key, v)?,
            "timestamp_difference_max_ms" => {
                self.timestamp_difference_max_ms = parse_bound(key, v)?;
            }
            "timestamp_type" => {
                self.timestamp_type = match v.to_ascii_lowercase().as_str() {
                    "createtime" | "create_time" => TimestampType::CreateTime,
                    "logappendtime" | "log_append_time" => TimestampType::LogAppendTime,
                    _ => {
                        return Err(Error::invalid_config(
                            key,
                            format!("'{v}' is not CreateTime or LogAppendTime"),
                        ));
                    }
                }
            }
            "cleanup_policy" => {
                let mut parts: Vec<String> = v
                    .split(',')
                    .map(|p| p.trim().to_ascii_lowercase())
                    .filter(|p| !p.is_empty())
                    .collect();
                parts.sort();
                parts.dedup();
                self.cleanup_policy = match parts.iter().map(String::as_str).collect::<Vec<_>>()[..]
                {
                    ["delete"] => CleanupPolicy::Delete,
                    ["compact"] => CleanupPolicy::Compact,
                    ["compact", "delete"] => CleanupPolicy::CompactDelete,
                    _ => {
                        return Err(Error::invalid_config(
                            key,
                            format!("'{v}' is not delete, compact or compact,delete"),
                        ));
                    }
                }
            }
            "compression" => {
                self.compression = if v.eq_ignore_ascii_case("producer") {
                    None
                } else {
                    Some(v.parse::<Compression>().map_err(|_| {
                        Error::invalid_config(
                            key,
                            format!("'{v}' is not producer, none, gzip, snappy, lz4 or zstd"),
                        )
                    })?)
                }
            }
            "flush_policy" => {
                self.flush_policy = v.parse().map_err(|_| {
                    Error::invalid_config(
                        key,
                        format!("'{v}' is not os, every-batch or interval:MILLIS"),
                    )
                })?;
            }
            "flush.messages" => {
                let n: i64 = parse_num(key, v)?;
                self.flush_policy = if n == 1 {
                    FlushPolicy::EveryBatch
                } else if n > 1 || n == i64::MAX {
                    FlushPolicy::Os
                } else {
                    return Err(Error::invalid_config(key, "must be at least 1"));
                };
            }
            "flush.ms" => {
                let n: i64 = parse_num(key, v)?;
                self.flush_policy = match n {
                    i64::MAX => FlushPolicy::Os,
                    n if n >= 1 => FlushPolicy::Interval(Duration::from_millis(n as u64)),
                    _ => return Err(Error::invalid_config(key, "must be at least 1")),
                };
            }
            "delete_retention_ms" => self.delete_retention_ms = parse_num(key, v)?,
            "min_cleanable_dirty_ratio" => self.min_cleanable_dirty_ratio = parse_num(key, v)?,
            "min_compaction_lag_ms" => self.min_compaction_lag_ms = parse_num(key, v)?,
            _ => return Err(Error::invalid_config(key, "unknown topic setting")),
        }
        Ok(())
    }

    /// Checks one field (by topiclog name) and names it `key` in the error.
    fn check(&self, name: &str, key: &str) -> Result<()> {
        let out_of_range = |value: String| {
            let range = range_of(name).unwrap_or("is out of range");
            Err(Error::invalid_config(
                key,
                format!("{value} is out of range: {range}"),
            ))
        };
        let within = |v: u32, min: u32| (min..=i32::MAX as u32).contains(&v);
        match name {
            "segment_bytes" if !within(self.segment_bytes, MIN_SEGMENT_BYTES) => {
                out_of_range(self.segment_bytes.to_string())
            }
            "segment_ms" if self.segment_ms == 0 => out_of_range(self.segment_ms.to_string()),
            "segment_index_bytes" if !within(self.segment_index_bytes, MIN_SEGMENT_INDEX_BYTES) => {
                out_of_range(self.segment_index_bytes.to_string())
            }
            "index_interval_bytes" if !within(self.index_interval_bytes, 0) => {
                out_of_range(self.index_interval_bytes.to_string())
            }
            "max_message_bytes" if !within(self.max_message_bytes, 64) => {
                out_of_range(self.max_message_bytes.to_string())
            }
            "min_cleanable_dirty_ratio"
                if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) =>
            {
                out_of_range(self.min_cleanable_dirty_ratio.to_string())
            }
            "flush_policy" | "flush.ms" => match self.flush_policy {
                FlushPolicy::Interval(d) if d.is_zero() => {
                    Err(Error::invalid_config(key, "interval must be at least 1 ms"))
                }
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Builder form of [`TopicConfig::set`].
    ///
    /// # Errors
    /// As [`TopicConfig::set`].
    pub fn with(mut self, key: &str, value: &str) -> Result<Self> {
        self.set(key, value)?;
        Ok(self)
    }

    /// Checks every field's range; called by topic creation and config changes.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<()> {
        for (ours, _) in KEYS {
            self.check(ours, ours)?;
        }
        // Checked here, not when set: a topic file naming a codec this build lacks still
        // loads (its batches are refused when read or written, with that reason).
        if let Some(c) = self.compression
            && !c.is_available()
        {
            return Err(Error::invalid_config(
                "compression",
                format!("codec {c} is not compiled into this build"),
            ));
        }
        Ok(())
    }

    /// Kafka's `preallocate` (set with `set("preallocate", "true")`; default false, as in
    /// Kafka): the active segment's `.log` is extended ahead of its data with `fallocate`, in
    /// chunks that grow with the data up to 16 MiB ahead (never past `segment.bytes` unless
    /// one batch needs it), and appends are stored into a shared memory map of that range
    /// instead of a `write(2)` each. A full disk fails the append that needs the extension
    /// (`Error::Io`, `ENOSPC`); a store never can. Where the file system has no `fallocate`
    /// the write path is used. A roll and a clean close cut the unused tail, so files at rest
    /// are exactly Kafka's; sizes, retention and `describe` count data bytes only. A change
    /// takes effect when the partition next opens its active segment's files (after a roll,
    /// a reopen, or when the descriptor budget closed them).
    pub fn preallocate(&self) -> bool {
        self.stored.get("preallocate").is_some_and(|v| v == "true")
    }

    /// How far before and after the broker's clock a CreateTime record's timestamp may lie
    /// (`None`: no bound on that side), Kafka's rule: `message.timestamp.before.max.ms` and
    /// `after.max.ms` where set, else `message.timestamp.difference.max.ms`. `None` when neither
    /// side is bounded or the topic stamps LogAppendTime, whose timestamps are the broker's.
    pub(crate) fn create_time_window(&self) -> Option<(Option<u64>, Option<u64>)> {
        if self.timestamp_type == TimestampType::LogAppendTime {
            return None;
        }
        let before = self
            .timestamp_before_max_ms
            .or(self.timestamp_difference_max_ms);
        let after = self
            .timestamp_after_max_ms
            .or(self.timestamp_difference_max_ms);
        (before.is_some() || after.is_some()).then_some((before, after))
    }

    /// The config as Kafka-named `key=value` pairs (what is persisted with the topic).
    pub fn to_properties(&self) -> BTreeMap<&'static str, String> {
        let limit = |v: Option<u64>| v.map_or_else(|| "-1".to_string(), |n| n.to_string());
        let mut m = BTreeMap::new();
        m.insert("segment.bytes", self.segment_bytes.to_string());
        m.insert("segment.ms", self.segment_ms.to_string());
        m.insert("segment.index.bytes", self.segment_index_bytes.to_string());
        m.insert(
            "index.interval.bytes",
            self.index_interval_bytes.to_string(),
        );
        m.insert("retention.ms", limit(self.retention_ms));
        m.insert("retention.bytes", limit(self.retention_bytes));
        m.insert("max.message.bytes", self.max_message_bytes.to_string());
        m.insert(
            "message.timestamp.type",
            match self.timestamp_type {
                TimestampType::CreateTime => "CreateTime".into(),
                TimestampType::LogAppendTime => "LogAppendTime".into(),
            },
        );
        let bound = |v: Option<u64>| v.map_or_else(|| i64::MAX.to_string(), |n| n.to_string());
        m.insert(
            "message.timestamp.before.max.ms",
            bound(self.timestamp_before_max_ms),
        );
        m.insert(
            "message.timestamp.after.max.ms",
            bound(self.timestamp_after_max_ms),
        );
        m.insert(
            "message.timestamp.difference.max.ms",
            bound(self.timestamp_difference_max_ms),
        );
        for s in passive::STORED {
            let v = self
                .stored
                .get(s.name)
                .cloned()
                .unwrap_or_else(|| s.default.to_string());
            m.insert(s.name, v);
        }
        m.insert(
            "cleanup.policy",
            match self.cleanup_policy {
                CleanupPolicy::Delete => "delete".into(),
                CleanupPolicy::Compact => "compact".into(),
                CleanupPolicy::CompactDelete => "compact,delete".into(),
            },
        );
        m.insert(
            "compression.type",
            self.compression
                .map_or_else(|| "producer".into(), |c| c.name().into()),
        );
        m.insert("flush.policy", self.flush_policy.to_string());
        m.insert("delete.retention.ms", self.delete_retention_ms.to_string());
        m.insert(
            "min.cleanable.dirty.ratio",
            self.min_cleanable_dirty_ratio.to_string(),
        );
        m.insert(
            "min.compaction.lag.ms",
            self.min_compaction_lag_ms.to_string(),
        );
        m
    }
}

/// Options for opening a data directory. Build with [`LogOptions::new`], then [`LogOptions::open`].
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub(crate) read_only: bool,
    pub(crate) max_open_files: Option<usize>,
    pub(crate) max_mapped_segments: usize,
    pub(crate) flusher_tick: Option<Duration>,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) maintenance_interval: Option<Duration>,
    pub(crate) default_topic_config: TopicConfig,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            read_only: false,
            max_open_files: None,
            max_mapped_segments: 8192,
            flusher_tick: Some(Duration::from_millis(10)),
            checkpoint_interval: Duration::from_mins(1),
            maintenance_interval: Some(Duration::from_mins(5)),
            default_topic_config: TopicConfig::default(),
        }
    }
}

impl LogOptions {
    /// Default options: read-write, background flusher on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Open without the exclusive lock, modifying nothing and recovering nothing: reads see
    /// what is on disk up to the last valid batch. For tools inspecting a directory that a
    /// running application owns. Default `false`.
    ///
    /// Beside a running owner, each partition is a view of the files as they were when it was
    /// last loaded: a read that finds nothing, reads past the view's end or fails loads the
    /// view again, so it sees later appends, and an offset below the owner's new log start is
    /// then [`Error::OffsetOutOfRange`](crate::Error::OffsetOutOfRange) (a consumer resets it
    /// per `auto_offset_reset`). Segments the owner deletes or compacts meanwhile stay readable
    /// from the files the view loaded, never torn and never reported as corrupt; their disk
    /// space is freed when the view moves on. A view keeps one memory map per segment `.log`
    /// (not counted in [`LogOptions::max_mapped_segments`]); `log_end_offset` and
    /// `high_watermark` are the view's until a read loads it again.
    #[must_use]
    pub fn read_only(mut self, yes: bool) -> Self {
        self.read_only = yes;
        self
    }

    /// Most file descriptors the log keeps open for writing at once. Default: a quarter of the
    /// process's soft `RLIMIT_NOFILE`, at least 16, leaving the application most of it. At
    /// least 4 (one active segment's three files, plus one).
    #[must_use]
    pub fn max_open_files(mut self, n: usize) -> Self {
        self.max_open_files = Some(n);
        self
    }

    /// Most segments kept memory-mapped at once (each counts three maps against
    /// `vm.max_map_count`). Default 8192; at least 1.
    #[must_use]
    pub fn max_mapped_segments(mut self, n: usize) -> Self {
        self.max_mapped_segments = n;
        self
    }

    /// How often the background flusher wakes (post-roll syncs, `Interval` syncs,
    /// checkpoints, maintenance). Default 10 ms. `None` runs no background thread: call
    /// [`Log::flush`](crate::Log::flush) and [`Log::maintain`](crate::Log::maintain) yourself; `Interval` topics then sync only when
    /// you call `flush`.
    #[must_use]
    pub fn flusher(mut self, tick: Option<Duration>) -> Self {
        self.flusher_tick = tick;
        self
    }

    /// How often recovery-point and log-start checkpoints are written. Default 60 s.
    #[must_use]
    pub fn checkpoint_interval(mut self, every: Duration) -> Self {
        self.checkpoint_interval = every;
        self
    }

    /// How often the flusher runs retention. Default 5 minutes; `None` turns it off (call
    /// [`Log::maintain`](crate::Log::maintain) yourself).
    #[must_use]
    pub fn maintenance_interval(mut self, every: Option<Duration>) -> Self {
        self.maintenance_interval = every;
        self
    }

    /// The config topics get when created with [`Log::create_topic`](crate::Log::create_topic) and no explicit config.
    #[must_use]
    pub fn default_topic_config(mut self, config: TopicConfig) -> Self {
        self.default_topic_config = config;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(n) = self.max_open_files
            && n < 4
        {
            return Err(Error::invalid_config(
                "max_open_files",
                "must be at least 4",
            ));
        }
        if self.max_mapped_segments == 0 {
            return Err(Error::invalid_config(
                "max_mapped_segments",
                "must be at least 1",
            ));
        }
        if let Some(t) = self.flusher_tick
            && t.is_zero()
        {
            return Err(Error::invalid_config(
                "flusher",
                "tick must be at least 1 ms",
            ));
        }
        self.default_topic_config.validate()
    }
}
