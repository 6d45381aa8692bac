//! What an open found and did: [`RecoveryReport`], and its lines for a person.

use std::path::PathBuf;

use crate::layout::{IDENTITY_FILE, OFFSETS_TOPIC};
use crate::partition::PartitionRecovery;
use crate::types::TopicPartition;

/// What `Log::open` found and did, partition by partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// True when the previous `Log` closed cleanly (indexes were trusted, nothing scanned).
    pub clean: bool,
    /// One entry per partition.
    pub partitions: Vec<PartitionRecovery>,
    /// True when this open adopted a data directory written by a topiclog from before the
    /// identity file (`topiclog.properties`), and wrote that file.
    pub adopted: bool,
    /// Topics whose metadata file (`.topics/<topic>`) was missing, rebuilt from partition
    /// directories contiguous from 0 with the default config, `cleanup.policy=delete` and
    /// unlimited retention, and marked `recovered=true` in the rebuilt file.
    pub topics_rebuilt: Vec<String>,
    /// Partition directories no topic owns (no metadata, not contiguous from partition 0, or
    /// past a topic's partition count), moved aside as `<topic>-<n>.<nonce>-stray`, as Kafka
    /// names stray partitions. Never deleted: move one back (renamed to `<topic>-<n>`) to
    /// recover it.
    pub strays: Vec<PathBuf>,
    /// Topics whose deletion a crash interrupted, finished by this open.
    pub deletes_completed: Vec<String>,
    /// Committed offsets past their partition's log end once everything was loaded (the
    /// unsynced tail an `Os` crash lost): those consumers reset per `auto.offset.reset`.
    pub committed_past_end: Vec<CommittedPastEnd>,
    /// Groups named by commits in a damaged part of `__consumer_offsets` (or in a batch whose
    /// checksum failed when the commits were loaded): their offsets may be
    /// older than what they last committed, or gone. Damage there with none named here means
    /// the commits lost cannot be attributed (see [`RecoveryReport::damage_lines`]).
    pub lost_commit_groups: Vec<String>,
    /// Transactions the open completed: decided ones (PrepareCommit, PrepareAbort) with
    /// their decision, open ones (Ongoing) aborted, and markers missing from a partition
    /// (lost in a damaged or torn range) written again from the transaction state.
    pub transactions_completed: Vec<TxnCompleted>,
}

/// A transaction [`crate::Log::open`] completed (see
/// [`RecoveryReport::transactions_completed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TxnCompleted {
    /// The transactional id, when the transaction state names the producer.
    pub transactional_id: Option<String>,
    /// The producer id.
    pub producer_id: i64,
    /// True for COMMIT markers, false for ABORT.
    pub committed: bool,
    /// The partitions that got a marker.
    pub partitions: Vec<TopicPartition>,
    /// Why: `"prepared commit"`, `"prepared abort"`, `"open at the crash"`, or
    /// `"marker missing"`.
    pub reason: &'static str,
}

impl RecoveryReport {
    /// Total bytes cut from torn or corrupt tails.
    pub fn truncated_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.truncated_bytes).sum()
    }

    /// Partitions where anything was cut, deleted or found damaged at rest.
    pub fn damaged(&self) -> impl Iterator<Item = &PartitionRecovery> {
        self.partitions
            .iter()
            .filter(|p| p.truncated_bytes > 0 || p.segments_deleted > 0 || !p.damage.is_empty())
    }

    /// What the open did to the directory, one line each, for a person (the CLI prints
    /// these on stderr): adoption, rebuilt topics, strays set aside, completed deletes, then
    /// [`RecoveryReport::damage_lines`]. Empty when there is nothing to tell.
    pub fn notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.adopted {
            out.push(format!(
                "adopted a data directory from an earlier topiclog (wrote {IDENTITY_FILE})"
            ));
        }
        for t in &self.topics_rebuilt {
            out.push(format!(
                "topic '{t}': its metadata file was missing; rebuilt from its partition \
                 directories with the default config (cleanup.policy=delete, unlimited \
                 retention), marked recovered=true: check its config"
            ));
        }
        for s in &self.strays {
            out.push(format!(
                "stray partition directory moved aside, not deleted: {}",
                s.display()
            ));
        }
        for t in &self.deletes_completed {
            out.push(format!(
                "topic '{t}': finished its deletion, interrupted by a crash"
            ));
        }
        out.extend(self.damage_lines());
        out
    }
}

/// A group's committed offset past its partition's log end after an open.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommittedPastEnd {
    /// The group.
    pub group: String,
    /// The partition.
    pub partition: TopicPartition,
    /// The offset it committed.
    pub committed: i64,
    /// The partition's log end after recovery.
    pub log_end: i64,
}

impl RecoveryReport {
    /// One line per thing the open found that a person should hear about: damage at rest
    /// (where, which offsets no longer read back, what was kept aside, where appends
    /// continue), a torn tail cut after a crash, a committed offset past its log end, and
    /// groups whose commits were in a damaged part of `__consumer_offsets`. Empty when
    /// nothing was wrong. The command-line tool prints them on stderr.
    pub fn damage_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for p in &self.partitions {
            let name = format!("{}-{}", p.topic, p.partition);
            for d in &p.damage {
                lines.push(format!("{name}: damage at rest in {d}"));
            }
            if let Some(end) = p.end_raised_to {
                lines.push(format!(
                    "{name}: appends continue at offset {end}, the largest offset a group \
                     committed, so no offset is handed out twice"
                ));
            }
            if p.truncated_bytes > 0 || p.segments_deleted > 0 {
                lines.push(format!(
                    "{name}: cut {} bytes of a torn tail and {} later segments after an \
                     unclean shutdown ({}); the log ends at {}",
                    p.truncated_bytes,
                    p.segments_deleted,
                    p.reason.as_deref().unwrap_or("no reason recorded"),
                    p.end_offset
                ));
            }
            if p.topic == OFFSETS_TOPIC
                && !p.damage.is_empty()
                && self.lost_commit_groups.is_empty()
            {
                lines.push(format!(
                    "{name}: commits of groups that cannot be named may be lost"
                ));
            }
        }
        if !self.lost_commit_groups.is_empty() {
            lines.push(format!(
                "{OFFSETS_TOPIC}: groups whose commits may be lost or older: {}",
                self.lost_commit_groups.join(", ")
            ));
        }
        for t in &self.transactions_completed {
            if t.reason != "marker missing" {
                continue;
            }
            let parts: Vec<String> = t.partitions.iter().map(ToString::to_string).collect();
            lines.push(format!(
                "producer {} ({}): an end-transaction marker was missing in {}; wrote {}                  from the transaction state",
                t.producer_id,
                t.transactional_id.as_deref().unwrap_or("no transactional id"),
                parts.join(", "),
                if t.committed { "COMMIT" } else { "ABORT" }
            ));
        }
        for c in &self.committed_past_end {
            lines.push(format!(
                "group {}: committed offset {} on {}-{} is past the log end {}; its \
                 consumers reset per auto.offset.reset",
                c.group, c.committed, c.partition.topic, c.partition.partition, c.log_end
            ));
        }
        lines
    }
}
