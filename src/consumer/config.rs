//! A consumer's settings: [`ConsumerConfig`] and where it starts without a position
//! ([`OffsetReset`]).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::group::assignor::any_assignor;
use crate::types::IsolationLevel;

/// An offset and the timestamp of the record there.
pub type OffsetAndTimestamp = (i64, i64);

/// Where a consumer starts when it has no valid position (no commit, or the committed offset
/// is out of range, e.g. deleted by retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// The log start offset. topiclog's default (Kafka's is `Latest`): replaying what is
    /// stored is the common embedded use, e.g. rebuilding state from events.
    #[default]
    Earliest,
    /// The end (high watermark): only records appended from now on.
    Latest,
    /// Fail with [`Error::NoOffset`] (or [`Error::OffsetOutOfRange`]).
    Error,
}

/// Consumer settings; defaults follow Kafka's except `auto_offset_reset` (see [`OffsetReset`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Consumer group; required for `subscribe` and for commits.
    pub group_id: Option<String>,
    /// Client id shown in group descriptions. Default `topiclog-consumer`.
    pub client_id: String,
    /// Default [`OffsetReset::Earliest`].
    pub auto_offset_reset: OffsetReset,
    /// Most records one `poll` returns. Default 500; at least 1.
    pub max_poll_records: usize,
    /// Longest time between polls before the member is removed from its group. Default
    /// 300 s (Kafka's `max.poll.interval.ms`).
    pub max_poll_interval: Duration,
    /// Removed from the group when neither a heartbeat nor a poll arrives for this long.
    /// While the consumer exists, the log's background thread heartbeats for it (as Kafka's
    /// heartbeat thread does). Default 45 s.
    pub session_timeout: Duration,
    /// Assignor names in order of preference: `range`, `roundrobin`, `sticky` (and `stream`,
    /// the task assignor of `topiclog::streams`, which spreads every subscribed topic's
    /// partitions evenly as tasks of one partition each). Default `["range", "sticky"]`.
    pub assignors: Vec<String>,
    /// Commit positions automatically every `auto_commit_interval` (during `poll`), before a
    /// rebalance revokes partitions, and on close. Default true (as Kafka).
    pub enable_auto_commit: bool,
    /// Default 5 s.
    pub auto_commit_interval: Duration,
    /// Most bytes read from one partition per fetch. Default 1 MiB.
    pub max_partition_fetch_bytes: usize,
    /// How long a `poll` that found nothing spins, watching for an append, before it parks
    /// its thread. Default zero: it parks at once. See [`ConsumerConfig::busy_poll`].
    pub busy_poll: Duration,
    /// What `poll` returns of transactions (Kafka's `isolation.level`). Default
    /// [`IsolationLevel::ReadUncommitted`], as Kafka's; see
    /// [`ConsumerConfig::isolation_level`].
    pub isolation_level: IsolationLevel,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            client_id: "topiclog-consumer".into(),
            auto_offset_reset: OffsetReset::Earliest,
            max_poll_records: 500,
            max_poll_interval: Duration::from_mins(5),
            session_timeout: Duration::from_secs(45),
            assignors: vec!["range".into(), "sticky".into()],
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            max_partition_fetch_bytes: 1 << 20,
            busy_poll: Duration::ZERO,
            isolation_level: IsolationLevel::ReadUncommitted,
        }
    }
}

impl ConsumerConfig {
    /// Defaults with a group id.
    pub fn group(group_id: impl Into<String>) -> Self {
        ConsumerConfig {
            group_id: Some(group_id.into()),
            ..ConsumerConfig::default()
        }
    }

    /// Lets a `poll` that finds nothing spin for up to `window` (within its timeout), watching
    /// for an append, before it parks its thread: the lowest wake-up latency. A woken thread
    /// takes tens of microseconds to run again here; a spinning one sees the append within a
    /// few.
    ///
    /// A spinning consumer keeps a core busy for the whole window on every empty poll. Give
    /// it a core of its own: with more spinning threads than cores, spinners take the cores
    /// the appending threads need, and wake-ups get slower, not faster. Zero (the default)
    /// turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("ticks", 1)?;
    /// let config = ConsumerConfig::default().busy_poll(Duration::from_millis(50));
    /// let mut consumer = log.consumer(config)?;
    /// consumer.assign(&[TopicPartition::new("ticks", 0)])?;
    /// log.append("ticks", 0, &[Record::new("t1")])?;
    /// assert_eq!(consumer.poll(Duration::from_secs(1))?.len(), 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    #[must_use]
    pub fn busy_poll(mut self, window: Duration) -> Self {
        self.busy_poll = window;
        self
    }

    /// Kafka's `isolation.level`. At [`IsolationLevel::ReadCommitted`] a poll returns only
    /// committed records: it stops at each partition's last stable offset (the first offset
    /// of its oldest open transaction) and skips the records of aborted transactions;
    /// `seek_to_end`, `auto_offset_reset = latest` and the lag use the last stable offset.
    /// Transaction markers are never returned at either level.
    ///
    /// ```
    /// use topiclog::{ConsumerConfig, IsolationLevel};
    /// let config = ConsumerConfig::group("billing").isolation_level(IsolationLevel::ReadCommitted);
    /// assert_eq!(config.isolation_level, IsolationLevel::ReadCommitted);
    /// ```
    #[must_use]
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation_level = level;
        self
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.max_poll_records == 0 {
            return Err(Error::invalid_config(
                "max_poll_records",
                "must be at least 1",
            ));
        }
        if self.group_id.as_deref() == Some("") {
            return Err(Error::invalid_config("group_id", "must not be empty"));
        }
        if self.assignors.is_empty() {
            return Err(Error::invalid_config("assignors", "name at least one"));
        }
        for a in &self.assignors {
            if any_assignor(a).is_none() {
                return Err(Error::invalid_config(
                    "assignors",
                    format!(
                        "topiclog does not implement the assignor '{a}'; supported: {}, stream",
                        crate::group::assignor::ASSIGNORS.join(", ")
                    ),
                ));
            }
        }
        if self.session_timeout.is_zero() || self.max_poll_interval.is_zero() {
            return Err(Error::invalid_config(
                "session_timeout",
                "timeouts must be positive",
            ));
        }
        Ok(())
    }
}
