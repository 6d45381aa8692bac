//! Group admin on [`Log`]: list, describe, reset and delete consumer groups, and delete some
//! of a group's offsets (what Kafka's `kafka-consumer-groups.sh` does against a broker).

use crate::error::{Error, Result};
use crate::group::coordinator::{GroupState, MemberDescription};
use crate::group::offsets::OffsetAndMetadata;
use crate::log::Log;
use crate::types::TopicPartition;

/// Where [`Log::reset_group_offsets`] moves a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// Each partition's log start offset.
    Earliest,
    /// Each partition's end (high watermark).
    Latest,
    /// This offset, clamped to each partition's range.
    Offset(i64),
    /// The first offset with a timestamp >= this one (the end when none).
    Timestamp(i64),
}

/// One partition of a group, from [`Log::describe_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The committed offset, if any.
    pub committed: Option<i64>,
    /// The partition's end (high watermark), if the topic still exists.
    pub end: Option<i64>,
    /// `end - committed`.
    pub lag: Option<i64>,
}

/// A consumer group, from [`Log::describe_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// Current state.
    pub state: GroupState,
    /// Current generation.
    pub generation: i32,
    /// The protocol type its members joined with (`consumer` for Kafka consumers); `None`
    /// for a group known only by its committed offsets and generation (after a restart, or
    /// offsets committed without joining).
    pub protocol_type: Option<String>,
    /// The assignor in use.
    pub protocol: Option<String>,
    /// Live members.
    pub members: Vec<MemberDescription>,
    /// Committed offsets, ends and lag per partition.
    pub offsets: Vec<GroupOffset>,
}

impl Log {
    /// Whether `group` has committed offsets, a generation or live state: what
    /// [`Log::list_groups`] lists, asked of one group without listing them all.
    fn group_exists(&self, group: &str) -> bool {
        let c = self.inner.coordinator();
        c.offsets.knows(group) || c.is_live(group)
    }

    /// Groups with committed offsets or live members, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        let c = self.inner.coordinator();
        let mut g = c.offsets.groups();
        g.extend(c.live_groups());
        g.sort();
        g.dedup();
        g
    }

    /// A group's state, members and, per partition, committed offset, end and lag.
    ///
    /// # Errors
    /// [`Error::GroupNotFound`] for a group with neither offsets nor members.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{ConsumerConfig, Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.append("events", 0, &[Record::new("a"), Record::new("b")])?;
    /// let mut consumer = log.consumer(ConsumerConfig::group("audit"))?;
    /// consumer.subscribe(&["events"])?;
    /// while consumer.poll(Duration::from_millis(200))?.is_empty() {}
    /// consumer.close()?; // commits its position on the way out
    /// assert_eq!(log.list_groups(), ["audit"]);
    /// let d = log.describe_group("audit")?;
    /// assert_eq!(d.offsets[0].committed, Some(2));
    /// assert_eq!(d.offsets[0].lag, Some(0));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        if !self.group_exists(group) {
            return Err(Error::GroupNotFound {
                group: group.to_string(),
            });
        }
        let c = self.inner.coordinator();
        let live = c.describe(group);
        let members = live.members;
        let mut parts: std::collections::BTreeSet<TopicPartition> =
            c.offsets.group_offsets(group).into_keys().collect();
        for m in &members {
            parts.extend(m.assignment.iter().cloned());
        }
        let offsets = parts
            .into_iter()
            .map(|tp| {
                let committed = c.offsets.committed(group, &tp).map(|o| o.offset);
                let end = self
                    .inner
                    .topic(&tp.topic)
                    .and_then(|t| t.partition(tp.partition))
                    .map(|p| p.high_watermark())
                    .ok();
                let lag = match (committed, end) {
                    (Some(c), Some(e)) => Some((e - c).max(0)),
                    _ => None,
                };
                GroupOffset {
                    partition: tp,
                    committed,
                    end,
                    lag,
                }
            })
            .collect();
        Ok(GroupDescription {
            group: group.to_string(),
            state: live.state,
            generation: live.generation,
            protocol_type: live.protocol_type,
            protocol: live.protocol,
            members,
            offsets,
        })
    }

    /// Sets a group's committed offsets for every partition of `topic`, while the group has
    /// no active member. Returns the offsets written.
    ///
    /// # Errors
    /// [`Error::GroupNotEmpty`]; [`Error::TopicNotFound`]; I/O errors.
    pub fn reset_group_offsets(
        &self,
        group: &str,
        topic: &str,
        to: OffsetSpec,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        self.inner.check_writable()?;
        let c = self.inner.coordinator();
        c.ensure_empty(group)?;
        let t = self.inner.topic(topic)?;
        let mut out = Vec::new();
        for p in t.partitions.read().iter() {
            let offset = match to {
                OffsetSpec::Earliest => p.log_start(),
                OffsetSpec::Latest => p.high_watermark(),
                OffsetSpec::Offset(o) => o.clamp(p.log_start(), p.high_watermark()),
                OffsetSpec::Timestamp(ts) => p
                    .offset_for_timestamp(ts)?
                    .map_or_else(|| p.high_watermark(), |(o, _)| o),
            };
            out.push((TopicPartition::new(topic, p.id), offset));
        }
        let commits: Vec<_> = out
            .iter()
            .map(|(tp, o)| (tp.clone(), OffsetAndMetadata::new(*o)))
            .collect();
        c.commit(group, "", -1, &commits)?;
        Ok(out)
    }

    /// Deletes a group's committed offsets of some partitions (Kafka's OffsetDelete), leaving
    /// the rest. Refused per partition, with [`Error::GroupSubscribedToTopic`], for a topic
    /// the group's live members subscribe to: they would lose their position while consuming
    /// it. Partitions without a committed offset are answered `Ok` (nothing to delete). The
    /// result has one entry per partition asked, in order.
    ///
    /// # Errors
    /// [`Error::GroupNotFound`] for a group with neither offsets nor members;
    /// [`Error::GroupNotEmpty`] when live members joined with a protocol type other than
    /// `consumer` (their subscriptions cannot be read); [`Error::ReadOnly`]; I/O errors.
    ///
    /// ```
    /// use topiclog::{Error, Log, OffsetAndMetadata, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("old", 1)?;
    /// log.create_topic("new", 1)?;
    /// let (old, new) = (TopicPartition::new("old", 0), TopicPartition::new("new", 0));
    /// let commits = [(old.clone(), OffsetAndMetadata::new(0)), (new.clone(), OffsetAndMetadata::new(0))];
    /// log.commit_group_offsets("audit", "", -1, &commits)?; // a group with no members
    /// let results = log.delete_group_offsets("audit", &[old.clone()])?;
    /// assert!(results[0].1.is_ok());
    /// assert_eq!(log.committed_offsets("audit", None), [(new, Some(commits[1].1.clone()))]);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        self.inner.check_writable()?;
        if !self.group_exists(group) {
            return Err(Error::GroupNotFound {
                group: group.to_string(),
            });
        }
        self.inner.coordinator().delete_offsets(group, partitions)
    }

    /// Deletes a group's committed offsets (and its generation record), while it has no
    /// active member. Returns how many offsets were deleted.
    ///
    /// # Errors
    /// [`Error::GroupNotEmpty`]; [`Error::GroupNotFound`]; I/O errors.
    pub fn delete_group(&self, group: &str) -> Result<usize> {
        self.inner.check_writable()?;
        if !self.group_exists(group) {
            return Err(Error::GroupNotFound {
                group: group.to_string(),
            });
        }
        let c = self.inner.coordinator();
        c.ensure_empty(group)?;
        let n = c.offsets.delete(group, true)?;
        c.forget(group);
        Ok(n)
    }
}
