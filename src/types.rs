//! Small shared types.

use std::fmt;

/// A topic name and partition number.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// A topic-partition pair.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Which records a reader sees of transactions (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum IsolationLevel {
    /// Every record written, including those of open and aborted transactions (Kafka's
    /// default).
    #[default]
    ReadUncommitted,
    /// Only committed records: reads stop at the last stable offset (the first offset of the
    /// oldest open transaction) and skip the records of aborted transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// Kafka's name: `read_uncommitted` or `read_committed`.
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IsolationLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read_uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            "read_committed" => Ok(IsolationLevel::ReadCommitted),
            other => Err(format!(
                "isolation level {other:?}: expected read_committed or read_uncommitted"
            )),
        }
    }
}

/// A consumer's place in its group, handed to
/// [`Producer::send_offsets_to_transaction`](crate::Producer::send_offsets_to_transaction)
/// (Kafka's `ConsumerGroupMetadata`, KIP-447): the offsets are refused when the member or its
/// generation is no longer the group's, so a consumer fenced by a rebalance cannot commit
/// through a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ConsumerGroupMetadata {
    /// The group.
    pub group_id: String,
    /// The generation the member joined (-1 outside a live group).
    pub generation_id: i32,
    /// The member id ("" outside a live group).
    pub member_id: String,
}

impl ConsumerGroupMetadata {
    /// Metadata for a group the caller does not take part in as a member (generation -1,
    /// no member id): its offsets are accepted only while the group has no members, as a
    /// standalone commit's are.
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
        }
    }

    /// Metadata of a member of a live group.
    pub fn member(
        group_id: impl Into<String>,
        generation_id: i32,
        member_id: impl Into<String>,
    ) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id,
            member_id: member_id.into(),
        }
    }
}
