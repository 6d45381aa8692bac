//! What the open tells a person about recovery, and the checks that need the groups loaded:
//! committed offsets against the log ends recovery left, and who had commits in a damaged part
//! of `__consumer_offsets`.

use std::collections::BTreeMap;

use crate::TopicPartition;
use crate::error::Result;
use crate::group::offsets::{OFFSETS_TOPIC, groups_named_in};
use crate::log::{LogInner, RecoveryReport};

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

/// Runs once the partitions and the groups are loaded. Where damage at rest left a log end below
/// the largest offset a group committed on it, the end moves up to that offset (a gap readers
/// step over), so the offsets are never handed out again: otherwise the group would skip the
/// records appended there. Any other committed offset past its end is named (the unsynced
/// tail an `Os` crash lost; those offsets are reused, as documented). Commits found in a
/// damaged part of `__consumer_offsets`, or in a batch its load skipped for a bad checksum,
/// name their groups.
pub(crate) fn check_commits(log: &LogInner, report: &mut RecoveryReport) -> Result<()> {
    let offsets = &log.coordinator().offsets;
    let mut highest: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut commits = Vec::new();
    for group in offsets.groups() {
        for (tp, om) in offsets.group_offsets(&group) {
            let top = highest.entry(tp.clone()).or_insert(om.offset);
            *top = (*top).max(om.offset);
            commits.push((group.clone(), tp, om.offset));
        }
    }
    for pr in &mut report.partitions {
        if pr.damage.is_empty() || log.shared.read_only {
            continue;
        }
        let tp = TopicPartition::new(pr.topic.clone(), pr.partition);
        let Some(&top) = highest.get(&tp) else {
            continue;
        };
        let Ok(p) = log.topic(&pr.topic).and_then(|t| t.partition(pr.partition)) else {
            continue;
        };
        if p.log_end() < top {
            p.skip_to(top)?;
            pr.end_raised_to = Some(top);
            pr.end_offset = top;
        }
    }
    for (group, tp, committed) in commits {
        let Ok(p) = log.topic(&tp.topic).and_then(|t| t.partition(tp.partition)) else {
            continue;
        };
        let log_end = p.log_end();
        if committed > log_end {
            report.committed_past_end.push(CommittedPastEnd {
                group,
                partition: tp,
                committed,
                log_end,
            });
        }
    }
    let mut lost: std::collections::BTreeSet<String> =
        offsets.skipped_groups.iter().cloned().collect();
    for pr in report
        .partitions
        .iter()
        .filter(|p| p.topic == OFFSETS_TOPIC)
    {
        for d in &pr.damage {
            let Some(bytes) = d
                .preserved
                .as_ref()
                .and_then(|p| crate::io::ops::read(p).ok())
            else {
                continue;
            };
            let from = usize::try_from(d.position).unwrap_or(usize::MAX);
            lost.extend(groups_named_in(bytes.get(from..).unwrap_or(&[])));
        }
    }
    report.lost_commit_groups = lost.into_iter().collect();
    Ok(())
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
