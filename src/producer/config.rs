//! What a producer is given: its settings ([`ProducerConfig`]) and the records it sends
//! ([`ProducerRecord`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::config::FlushPolicy;
use crate::record::{Compression, Header, Record};

use super::partitioner::Partitioner;

/// Producer settings. Unset fields take Kafka's producer defaults; [`Log::producer`] checks
/// them.
///
/// [`Log::producer`]: crate::Log::producer
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// Codec for this producer's batches; `None` uses the topic's `compression` (none when the
    /// topic says `producer`).
    pub compression: Option<Compression>,
    /// Kafka's `batch.size`, in bytes (uncompressed, estimated as the records' keys, values
    /// and headers plus a small per-record overhead). `send_async` closes a partition's batch
    /// when the next record would take it past this size and sends it at once; a record
    /// larger than this goes alone in its batch. Whatever this says, a batch stored is never
    /// larger than the topic's `max.message.bytes` after compression: one that is gets split
    /// in halves and retried. Default 16384; at least 1.
    pub batch_size: usize,
    /// Kafka's `linger.ms`: how long a batch that is not full waits for more records. Default
    /// 5 ms (Kafka 4's).
    pub linger: Duration,
    /// Idempotent sends (producer id, epoch, sequences): a retried batch is stored once.
    /// Default true (as Kafka).
    pub idempotence: bool,
    /// A stable name: each producer opened with the same name gets the same producer id and
    /// a higher epoch, fencing the older instance (like Kafka's `transactional.id`).
    pub name: Option<String>,
    /// Strengthen the topic's flush policy for this producer's sends (only `EveryBatch`
    /// strengthens; a weaker setting is ignored).
    pub flush_policy: Option<FlushPolicy>,
    /// Kafka's `buffer.memory`, in bytes (estimated as for `batch_size`): the most that records
    /// queued by `send_async` and not yet acknowledged may hold, across the producer's clones.
    /// A `send_async` that would exceed it blocks up to `max_block`; a record larger than it
    /// is refused at once. Default 32 MiB; at least 1.
    pub buffer_memory: usize,
    /// Kafka's `max.block.ms`: how long `send_async` waits for room in `buffer_memory` before
    /// it fails with [`Error::BufferExhausted`](crate::Error::BufferExhausted). Default 60 s; zero never waits.
    pub max_block: Duration,
    /// How long [`Producer::close`](crate::Producer::close) and the drop of the last clone wait for queued records
    /// to be acknowledged; records still queued then fail with [`Error::Closed`](crate::Error::Closed) (Kafka's
    /// `close(timeout)`; Kafka's `close()` waits without bound). Default 60 s; zero sends
    /// nothing more.
    pub close_timeout: Duration,
    /// Kafka's `partitioner.class`: picks the partition of each record sent without one.
    /// `None` (the default) places records as Kafka's Java client does: murmur2 of the key
    /// ([`partition_for_key`](crate::partition_for_key)), keyless records sticky per topic.
    /// See [`Partitioner`] and [`ProducerConfig::partitioner`].
    pub partitioner: Option<Arc<dyn Partitioner>>,
    /// Kafka's `transactional.id`: makes the producer transactional (see
    /// [`ProducerConfig::transactional`]). Shares one namespace with `name`: an id used as
    /// one cannot be used as the other.
    pub transactional_id: Option<String>,
    /// Kafka's `transaction.timeout.ms`: a transaction open longer is aborted by the log's
    /// background thread, and the producer's next call fails with
    /// [`Error::TransactionTimedOut`](crate::Error::TransactionTimedOut). Default 60 s, as
    /// Kafka; at least 1 ms, at most `i32::MAX` ms.
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            compression: None,
            batch_size: 16 * 1024,
            linger: Duration::from_millis(5),
            idempotence: true,
            name: None,
            flush_policy: None,
            buffer_memory: 32 << 20,
            max_block: Duration::from_mins(1),
            close_timeout: Duration::from_mins(1),
            partitioner: None,
            transactional_id: None,
            transaction_timeout: Duration::from_mins(1),
        }
    }
}

impl ProducerConfig {
    /// A transactional producer with this `transactional.id` (idempotent, as Kafka requires):
    /// call [`Producer::init_transactions`](crate::Producer::init_transactions) once, then
    /// send only between `begin_transaction` and `commit_transaction` or
    /// `abort_transaction`. The records of a transaction, over any partitions and topics,
    /// become visible to `read_committed` readers together, or never.
    ///
    /// ```
    /// use topiclog::{IsolationLevel, Log, ProducerConfig, ProducerRecord};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("orders", 2)?;
    /// log.create_topic("payments", 1)?;
    /// let producer = log.producer(ProducerConfig::transactional("checkout"))?;
    /// producer.init_transactions()?;
    /// producer.begin_transaction()?;
    /// producer.send(ProducerRecord::new("orders", "order 7").key("7"))?;
    /// producer.send(ProducerRecord::new("payments", "paid 7").key("7"))?;
    /// producer.commit_transaction()?;
    /// let payments = log.partition("payments", 0)?.with_isolation_level(IsolationLevel::ReadCommitted);
    /// assert_eq!(payments.records(0, 1 << 20)?.len(), 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn transactional(id: impl Into<String>) -> Self {
        ProducerConfig {
            transactional_id: Some(id.into()),
            ..ProducerConfig::default()
        }
    }

    /// Sets `transaction.timeout.ms`.
    #[must_use]
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.transaction_timeout = timeout;
        self
    }

    /// Sets the [`Partitioner`] that picks the partition of records sent without one (Kafka's
    /// `partitioner.class`); records that name a partition skip it. Default: none, Kafka's
    /// own placement.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use topiclog::{DefaultPartitioner, ProducerConfig};
    /// let config = ProducerConfig::default().partitioner(Arc::new(DefaultPartitioner::new()));
    /// assert!(config.partitioner.is_some());
    /// ```
    #[must_use]
    pub fn partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.partitioner = Some(partitioner);
        self
    }
}

/// A record addressed to a topic (and optionally a partition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Partition; `None` lets the producer's partitioner choose (by default murmur2 of the
    /// key, sticky when keyless).
    pub partition: Option<i32>,
    /// The record.
    pub record: Record,
}

impl ProducerRecord {
    /// A record with this value and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            record: Record::new(value),
        }
    }

    /// A record with a null value (a tombstone).
    pub fn tombstone(topic: impl Into<String>, key: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            record: Record::tombstone(key),
        }
    }

    /// Sets the key.
    #[must_use]
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.record.key = Some(key.into());
        self
    }

    /// Sets the partition.
    #[must_use]
    pub fn partition(mut self, p: i32) -> Self {
        self.partition = Some(p);
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, h: Header) -> Self {
        self.record.headers.push(h);
        self
    }

    /// Sets the timestamp (ms since the epoch).
    #[must_use]
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.record.timestamp = Some(ms);
        self
    }
}
