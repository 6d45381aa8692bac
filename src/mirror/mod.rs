//! Mirroring topics into and out of a Kafka-protocol cluster (MirrorMaker 2's job), in
//! process and synchronous, through librdkafka (feature `kafka`).
//!
//! - [`push`]: local topics → the cluster. A transactional producer writes each batch of
//!   records together with MirrorMaker 2's offset syncs (in `mm2-offset-syncs.<alias>.internal`
//!   on the cluster), so a restarted push resumes after the last committed record: exactly
//!   once. On a cluster without transactions it falls back to an idempotent producer (at least
//!   once) and says so in the report.
//! - [`pull`]: cluster topics → the local log. Records and offset syncs are appended in one
//!   topiclog transaction; the cluster is read `read_committed`.
//!
//! Both copy records, not batches: key, value, headers and timestamp (sent as CreateTime) and
//! the partition number when both sides have as many partitions (else Kafka's murmur2 of the
//! key). Missing target topics are created with the source's partition count,
//! `cleanup.policy`, `retention.ms`, `retention.bytes` and `max.message.bytes`. Names follow
//! MirrorMaker 2's `DefaultReplicationPolicy` ([`ReplicationPolicy`]): `<alias>.<topic>` with
//! an alias, the same name without one; internal topics are never mirrored.
//!
//! Committed offsets of the source side's consumer groups are translated through the offset
//! syncs (never ahead of what the group consumed) into checkpoints in
//! `<alias>.checkpoints.internal` on the target and, with
//! [`MirrorConfig::sync_group_offsets`], committed to the target's groups that have no active
//! member, so a consumer can fail over.
//!
//! ```no_run
//! use topiclog::Log;
//! use topiclog::mirror::{self, MirrorConfig};
//! let log = Log::open("data")?;
//! let mut config = MirrorConfig::new("127.0.0.1:9092");
//! config.alias = Some("edge".into());
//! config.until_end = true;
//! let report = mirror::push(&log, &config)?;
//! println!("{report}");
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

mod cluster;
mod policy;
mod pull;
mod push;
mod schema;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use policy::{DEFAULT_ALIAS, ReplicationPolicy};
pub use pull::pull;
pub use push::push;
pub use schema::{
    CHECKPOINT_VERSION, Checkpoint, OffsetSync, OffsetSyncs, SYNCS_KEPT, SchemaError,
};

use crate::TopicPartition;

/// Whether the mirror writes in transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExactlyOnce {
    /// Transactions when the target supports them, else an idempotent producer (at least
    /// once), said in the report's warnings.
    #[default]
    Auto,
    /// Transactions, or fail with [`MirrorError::Unsupported`].
    Required,
    /// An idempotent producer: at least once (a crash re-sends the records after the last
    /// offset sync).
    Disabled,
}

/// A progress line: what a running mirror has done and how far behind it is.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Records copied so far.
    pub records: u64,
    /// Records per second since the previous progress line.
    pub records_per_second: f64,
    /// Records not yet copied, per source partition (the source's end minus the position).
    pub lag: Vec<(TopicPartition, i64)>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: i64 = self.lag.iter().map(|(_, l)| *l).sum();
        write!(
            f,
            "{} records, {:.0} records/s, lag {total}",
            self.records, self.records_per_second
        )?;
        let mut behind: Vec<_> = self.lag.iter().filter(|(_, l)| *l > 0).collect();
        behind.sort_by_key(|(_, l)| std::cmp::Reverse(*l));
        for (tp, l) in behind.iter().take(8) {
            write!(f, " {}-{}:{l}", tp.topic, tp.partition)?;
        }
        if behind.len() > 8 {
            write!(f, " (+{} more)", behind.len() - 8)?;
        }
        Ok(())
    }
}

/// Called with each progress line.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How a mirror runs. Build with [`MirrorConfig::new`] and set fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct MirrorConfig {
    /// The cluster's `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// A regex the whole topic name must match (MirrorMaker 2's `topics`); `.*` by default.
    pub topics: String,
    /// The source cluster's alias: topics are renamed `<alias>.<topic>`. Without it names
    /// are kept and internal topics use `source`.
    pub alias: Option<String>,
    /// Stop once caught up with the source's end as of the start, instead of following it.
    pub until_end: bool,
    /// Transactions or not.
    pub exactly_once: ExactlyOnce,
    /// Records per transaction (or per offset sync, without transactions), at most.
    pub transaction_records: usize,
    /// How long a transaction stays open at most while records keep coming.
    pub transaction_interval: Duration,
    /// How often group offsets are checkpointed (MirrorMaker 2's
    /// `emit.checkpoints.interval.seconds`; also at the end of an `until_end` run).
    pub checkpoint_interval: Duration,
    /// Commit translated offsets to the target's groups that have no active member
    /// (MirrorMaker 2's `sync.group.offsets.enabled`); only forward.
    pub sync_group_offsets: bool,
    /// librdkafka settings for every client (security, timeouts), as `(key, value)`.
    pub client_properties: Vec<(String, String)>,
    /// librdkafka settings for the producer of a push (`linger.ms`, `batch.size`,
    /// `compression.type`, ...).
    pub producer_properties: Vec<(String, String)>,
    /// librdkafka settings for the consumer of a pull.
    pub consumer_properties: Vec<(String, String)>,
    /// How long to wait for the cluster to answer (metadata, transactions, flushes).
    pub timeout: Duration,
    /// Failed rounds retried in a row (with backoff from 100 ms doubling to 10 s) before
    /// the mirror gives up.
    pub retries: u32,
    /// The transactional id (default `topiclog-mirror-push-<alias>-<directory id>` or
    /// `topiclog-mirror-pull-<alias>`): one mirror per id runs at a time; a second fences
    /// the first.
    pub transactional_id: Option<String>,
    /// How often `progress` is called.
    pub progress_interval: Duration,
    /// Called with a progress line every `progress_interval`.
    pub progress: Option<ProgressFn>,
    /// Set to stop: the current transaction commits and the call returns.
    pub stop: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for MirrorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MirrorConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topics", &self.topics)
            .field("alias", &self.alias)
            .field("until_end", &self.until_end)
            .field("exactly_once", &self.exactly_once)
            .field("transaction_records", &self.transaction_records)
            .field("transaction_interval", &self.transaction_interval)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("sync_group_offsets", &self.sync_group_offsets)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("transactional_id", &self.transactional_id)
            .finish_non_exhaustive()
    }
}

impl MirrorConfig {
    /// Defaults for a cluster: every topic, no alias, follow the source, exactly once when
    /// the target can, 100,000 records or 1 s per transaction, checkpoints every 10 s.
    pub fn new(bootstrap_servers: impl Into<String>) -> MirrorConfig {
        MirrorConfig {
            bootstrap_servers: bootstrap_servers.into(),
            topics: ".*".into(),
            alias: None,
            until_end: false,
            exactly_once: ExactlyOnce::Auto,
            transaction_records: 100_000,
            transaction_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(10),
            sync_group_offsets: false,
            client_properties: Vec::new(),
            producer_properties: Vec::new(),
            consumer_properties: Vec::new(),
            timeout: Duration::from_secs(30),
            retries: 10,
            transactional_id: None,
            progress_interval: Duration::from_secs(5),
            progress: None,
            stop: None,
        }
    }

    fn stopping(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    fn policy(&self) -> Result<ReplicationPolicy, MirrorError> {
        if let Some(a) = &self.alias
            && (a.is_empty()
                || a.contains(|c: char| !(c.is_ascii_alphanumeric() || "-_".contains(c))))
        {
            return Err(MirrorError::InvalidConfig(format!(
                "alias {a:?}: use letters, digits, '-' and '_'"
            )));
        }
        if self.transaction_records == 0 {
            return Err(MirrorError::InvalidConfig(
                "transaction_records must be at least 1".into(),
            ));
        }
        ReplicationPolicy::new(self.alias.as_deref(), &self.topics)
            .map_err(|e| MirrorError::InvalidConfig(format!("topics regex: {e}")))
    }
}

/// Why a mirror stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The cluster did not answer.
    #[error("cannot reach the Kafka cluster at {bootstrap} within {timeout:?}: {detail}")]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// How long the mirror waited.
        timeout: Duration,
        /// The client's last error.
        detail: String,
    },
    /// A topic to mirror does not exist (or nothing matches the pattern).
    #[error("topic not found: {0}")]
    TopicNotFound(String),
    /// Something this build or the cluster cannot do: a security protocol or SASL mechanism
    /// librdkafka was built without, or transactions where they are required.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The cluster refused the client's credentials or permissions.
    #[error("not authorized: {0}")]
    Auth(String),
    /// A setting is wrong.
    #[error("invalid mirror setting: {0}")]
    InvalidConfig(String),
    /// Another mirror with the same transactional id started: this one stopped.
    #[error("fenced: another mirror with transactional id {0} is running")]
    Fenced(String),
    /// Rounds kept failing.
    #[error("gave up after {attempts} failed attempts in a row: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The Kafka client failed.
    #[error("Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The local log failed.
    #[error(transparent)]
    Log(#[from] crate::Error),
    /// A record of an offset-syncs or checkpoints topic does not decode.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// What a mirror did.
#[derive(Debug, Clone, Default)]
pub struct MirrorReport {
    /// Source topic → target topic.
    pub topics: Vec<(String, String)>,
    /// Target topics the mirror created.
    pub created_topics: Vec<String>,
    /// Records copied.
    pub records: u64,
    /// Transactions committed (or offset-sync rounds, without transactions).
    pub transactions: u64,
    /// True when the records were written in transactions with their offset syncs.
    pub exactly_once: bool,
    /// Checkpoint records written.
    pub checkpoints: u64,
    /// Group offsets committed on the target.
    pub group_offsets_synced: u64,
    /// Records the source had deleted (retention) before the mirror reached them.
    pub skipped_by_retention: u64,
    /// Rounds that failed and were retried.
    pub retried_rounds: u64,
    /// Things a user should know: a fallback to at-least-once, a target topic with
    /// LogAppendTime, partition counts that differ.
    pub warnings: Vec<String>,
}

impl fmt::Display for MirrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records in {} {} ({}), {} checkpoints, {} group offsets synced",
            self.records,
            self.transactions,
            if self.exactly_once {
                "transactions"
            } else {
                "rounds"
            },
            if self.exactly_once {
                "exactly once"
            } else {
                "at least once"
            },
            self.checkpoints,
            self.group_offsets_synced
        )?;
        if !self.created_topics.is_empty() {
            write!(f, "; created {}", self.created_topics.join(", "))?;
        }
        if self.skipped_by_retention > 0 {
            write!(
                f,
                "; {} records were deleted by retention before they could be copied",
                self.skipped_by_retention
            )?;
        }
        if self.retried_rounds > 0 {
            write!(f, "; {} rounds retried", self.retried_rounds)?;
        }
        Ok(())
    }
}

/// Calls [`MirrorConfig::progress`] every `progress_interval`.
struct Ticker {
    since: Instant,
    records: u64,
}

impl Ticker {
    fn new() -> Ticker {
        Ticker {
            since: Instant::now(),
            records: 0,
        }
    }

    /// A progress line if one is due; `lag` is asked only then.
    fn tick(
        &mut self,
        cfg: &MirrorConfig,
        records: u64,
        lag: impl FnOnce() -> Vec<(TopicPartition, i64)>,
    ) {
        let Some(progress) = &cfg.progress else {
            return;
        };
        if self.since.elapsed() < cfg.progress_interval {
            return;
        }
        let secs = self.since.elapsed().as_secs_f64().max(1e-9);
        progress(&Progress {
            records,
            #[allow(clippy::cast_precision_loss)] // a rate on a terminal
            records_per_second: records.saturating_sub(self.records) as f64 / secs,
            lag: lag(),
        });
        *self = Ticker {
            since: Instant::now(),
            records,
        };
    }
}

/// The last checkpoint written per (group, target topic, partition): (upstream, downstream).
type Emitted = HashMap<(String, String, i32), (i64, i64)>;

/// Counts a committed round in the report and remembers its checkpoints.
fn count_round(
    report: &mut MirrorReport,
    emitted: &mut Emitted,
    records: usize,
    checkpoints: &[Checkpoint],
) {
    report.records += records as u64;
    report.transactions += 1;
    report.checkpoints += checkpoints.len() as u64;
    for c in checkpoints {
        emitted.insert(
            (c.group.clone(), c.topic.clone(), c.partition),
            (c.upstream, c.downstream),
        );
    }
}

/// Exponential backoff between failed rounds.
struct Backoff {
    failures: u32,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { failures: 0 }
    }

    /// Records a failure; sleeps, or gives up after `retries` in a row.
    fn failed(&mut self, retries: u32, why: String) -> Result<(), MirrorError> {
        self.failures += 1;
        if self.failures > retries {
            return Err(MirrorError::RetriesExhausted {
                attempts: self.failures,
                last: why,
            });
        }
        let wait = Duration::from_millis(100u64 << self.failures.min(7).saturating_sub(1))
            .min(Duration::from_secs(10));
        std::thread::sleep(wait);
        Ok(())
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }
}
