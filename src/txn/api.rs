//! The transaction coordinator's calls as Kafka's transaction APIs name them, on [`Log`], for
//! code that serves Kafka clients (the network adapter): InitProducerId with a transactional
//! id, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn. In-process
//! applications use [`crate::Producer`]'s transactional calls, which drive the same
//! coordinator.

use std::time::Duration;

use super::TxnCoordinator;
use crate::error::{Error, Result};
use crate::group::offsets::OffsetAndMetadata;
use crate::layout::OFFSETS_TOPIC;
use crate::log::Log;
use crate::types::{ConsumerGroupMetadata, TopicPartition};

impl Log {
    fn txn_coordinator(&self) -> Result<std::sync::Arc<TxnCoordinator>> {
        self.inner.check_writable()?;
        self.inner
            .services
            .get::<TxnCoordinator>()
            .ok_or(Error::Closed {
                what: "the transaction coordinator",
            })
    }

    /// Kafka's InitProducerId with a transactional id: the id's producer id and next epoch
    /// (persisted), fencing its older producers, after completing what they left (a prepared
    /// transaction with its decision, an open one aborted). `timeout` is the producer's
    /// `transaction.timeout.ms`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an id with whitespace, an id used as a producer name, or a
    /// timeout outside 1 ms..=`i32::MAX` ms; I/O errors; [`Error::ReadOnly`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{Log, TopicPartition};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("t", 1)?;
    /// let (id, epoch) = log.init_transactional_id("app", Duration::from_mins(1))?;
    /// log.add_partitions_to_txn("app", id, epoch, &[TopicPartition::new("t", 0)])?;
    /// // ... the client appends transactional batches to t-0 (PartitionHandle::append_raw) ...
    /// log.end_txn("app", id, epoch, true)?;
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn init_transactional_id(&self, id: &str, timeout: Duration) -> Result<(i64, i16)> {
        let ms = i32::try_from(timeout.as_millis())
            .ok()
            .filter(|&ms| ms >= 1)
            .ok_or_else(|| {
                Error::invalid_config("transaction.timeout.ms", "from 1 ms to i32::MAX ms")
            })?;
        self.txn_coordinator()?.init(id, ms)
    }

    /// Kafka's AddPartitionsToTxn: the partitions join `id`'s transaction (opening it), durably
    /// (synced when one of them syncs each batch), before the client writes to them.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::PartitionNotFound`]; [`Error::Fenced`] for an old
    /// epoch; [`Error::TransactionTimedOut`]; [`Error::InvalidTxnState`] while the transaction
    /// is being committed or aborted, or for an id never initialized; I/O errors.
    pub fn add_partitions_to_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let coordinator = self.txn_coordinator()?;
        let mut sync = false;
        for tp in partitions {
            let p = self
                .inner
                .topic(&tp.topic)
                .and_then(|t| t.partition(tp.partition))?;
            sync |= p.config().flush_policy.syncs_each_batch();
        }
        coordinator.add_partitions(id, producer_id, epoch, partitions, sync)
    }

    /// Kafka's AddOffsetsToTxn: `__consumer_offsets` joins `id`'s transaction, so that
    /// [`Log::txn_offset_commit`] may follow.
    ///
    /// # Errors
    /// As [`Log::add_partitions_to_txn`].
    pub fn add_offsets_to_txn(&self, id: &str, producer_id: i64, epoch: i16) -> Result<()> {
        let tp = TopicPartition::new(OFFSETS_TOPIC, 0);
        self.txn_coordinator()?.add_partitions(
            id,
            producer_id,
            epoch,
            std::slice::from_ref(&tp),
            true,
        )
    }

    /// Kafka's TxnOffsetCommit: the group's offsets, committed inside `id`'s transaction
    /// (visible to `committed()` once it commits). `group` carries the member and generation
    /// (KIP-447).
    ///
    /// # Errors
    /// [`Error::InvalidTxnState`] unless [`Log::add_offsets_to_txn`] came first in this
    /// transaction; [`Error::StaleMember`]; [`Error::Fenced`]; I/O errors.
    pub fn txn_offset_commit(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &ConsumerGroupMetadata,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
    ) -> Result<()> {
        let coordinator = self.txn_coordinator()?;
        let tp = TopicPartition::new(OFFSETS_TOPIC, 0);
        coordinator.within(id, producer_id, epoch, &tp, || {
            self.inner.coordinator().commit_txn(
                &group.group_id,
                &group.member_id,
                group.generation_id,
                (producer_id, epoch),
                offsets,
            )
        })
    }

    /// Kafka's EndTxn: commits (`commit`) or aborts `id`'s transaction: the decision made
    /// durable, a marker in every partition of it, then the transaction complete. Ending a
    /// transaction with nothing in it does nothing.
    ///
    /// # Errors
    /// [`Error::Fenced`]; [`Error::TransactionTimedOut`] when the timeout aborted the
    /// transaction (for an abort too: it is aborted, and the id has moved to a newer epoch,
    /// which [`Log::init_transactional_id`] hands the client, as Kafka's clients re-initialize
    /// after INVALID_PRODUCER_EPOCH); [`Error::InvalidTxnState`] for the other decision than
    /// one already being carried out; I/O errors (the decision stays: calling again, or the
    /// next open, completes it).
    pub fn end_txn(&self, id: &str, producer_id: i64, epoch: i16, commit: bool) -> Result<()> {
        match self
            .txn_coordinator()?
            .end(id, producer_id, epoch, commit)?
        {
            None => Ok(()),
            Some(_) => Err(Error::TransactionTimedOut {
                transactional_id: id.to_string(),
                timeout_ms: 0,
            }),
        }
    }
}
