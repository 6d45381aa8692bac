//! Starting the groups when a log opens: load committed offsets from `__consumer_offsets`,
//! register the coordinator with the log (which then ticks its deadlines and wakes its waiters
//! on close), and check the commits against the log ends recovery left.

use std::collections::BTreeMap;

use super::coordinator::Coordinator;
use super::offsets::{OffsetStore, groups_named_in};
use crate::error::Result;
use crate::layout::OFFSETS_TOPIC;
use crate::log::{CommittedPastEnd, LogInner, RecoveryReport};
use crate::types::TopicPartition;

/// Loads the committed offsets and registers the coordinator, then runs [`check_commits`].
pub(crate) fn start(log: &LogInner, report: &mut RecoveryReport) -> Result<()> {
    let partition = log
        .topics
        .read()
        .get(OFFSETS_TOPIC)
        .and_then(|t| t.partition(0).ok());
    let store = OffsetStore::load(partition)?;
    log.services
        .get_or_register(move || Coordinator::new(store));
    check_commits(log, report)
}

impl LogInner {
    /// The group coordinator (an empty one if the groups never started).
    pub(crate) fn coordinator(&self) -> std::sync::Arc<Coordinator> {
        self.services
            .get_or_register(|| Coordinator::new(OffsetStore::empty()))
    }
}

/// Runs once the partitions and the groups are loaded. Where damage at rest left a log end below
/// the largest offset a group committed on it, the end moves up to that offset (a gap readers
/// step over), so the offsets are never handed out again: otherwise the group would skip the
/// records appended there. Any other committed offset past its end is named (the unsynced
/// tail an `Os` crash lost; those offsets are reused, as documented). Commits found in a
/// damaged part of `__consumer_offsets`, or in a batch its load skipped for a bad checksum,
/// name their groups.
pub(crate) fn check_commits(log: &LogInner, report: &mut RecoveryReport) -> Result<()> {
    let coordinator = log.coordinator();
    let offsets = &coordinator.offsets;
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
