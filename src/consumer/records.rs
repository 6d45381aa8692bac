//! What a poll returns: [`ConsumerRecord`]s, grouped as [`ConsumerRecords`].

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::TopicPartition;
use crate::record::Header;

/// A record as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Key (`None` for null).
    pub key: Option<Bytes>,
    /// Value (`None` for null: a tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

/// Records returned by one [`Consumer::poll`](crate::Consumer::poll): in order within each partition.
#[derive(Debug, Clone, Default)]
pub struct ConsumerRecords {
    pub(super) records: Vec<ConsumerRecord>,
}

impl ConsumerRecords {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }
    /// True when the poll returned nothing.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// Iterates the records.
    pub fn iter(&self) -> std::slice::Iter<'_, ConsumerRecord> {
        self.records.iter()
    }
    /// The partitions with records in this batch.
    pub fn partitions(&self) -> BTreeSet<TopicPartition> {
        self.records
            .iter()
            .map(|r| TopicPartition::new(r.topic.as_ref(), r.partition))
            .collect()
    }
}

impl IntoIterator for ConsumerRecords {
    type Item = ConsumerRecord;
    type IntoIter = std::vec::IntoIter<ConsumerRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConsumerRecords {
    type Item = &'a ConsumerRecord;
    type IntoIter = std::slice::Iter<'a, ConsumerRecord>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}
