//! # topiclog
//!
//! An embeddable, synchronous commit log that stores Kafka's own bytes. Topics split into
//! partitions; each partition is an append-only log of records (key, value, timestamp,
//! headers) at increasing offsets, kept in segment files that roll and expire — in your
//! process, with no server.
//!
//! - **Kafka-compatible on disk**: every batch is a Kafka RecordBatch v2 (CRC-32C, optional
//!   gzip/snappy/lz4/zstd), in Kafka's partition layout (`<topic>-<n>/<20-digit offset>.log`,
//!   `.index`, `.timeindex`). Keys map to partitions as with Kafka's Java client (murmur2).
//! - **Synchronous**: `Send + Sync` handles, blocking calls, no async runtime.
//! - **Durable by choice**: a [`FlushPolicy`] per topic says what an acknowledged append
//!   survives; crash recovery cuts torn tails and rebuilds indexes.
//!
//! What it is not: a Kafka broker (no replication, no cluster; directories are not meant to
//! be adopted by a broker), or a database (no secondary indexes). Linux is the supported
//! platform (it relies on mapping past the end of a file and on unlinking mapped files); the
//! crate builds on macOS.
//!
//! ## Concepts, and which type to reach for
//!
//! ```text
//! Log ─── a data directory (one per process at a time; LogOptions configures it)
//!  └─ topic ─── a name and a TopicConfig (retention, compaction, flush policy, ...)
//!      └─ partition ─── an ordered log of records at offsets 0, 1, 2, ...  (PartitionHandle)
//!          └─ segment ─── <base offset>.log with its .index and .timeindex files
//!              └─ record batch ─── Kafka RecordBatch v2: records with key, value,
//!                                  timestamp and headers (Record in, StoredRecord out)
//! ```
//!
//! | you want to | reach for |
//! |---|---|
//! | open a directory, create and describe topics | [`Log`], [`LogOptions`], [`TopicConfig`] |
//! | append to and read one partition you chose | [`Log::partition`] → [`PartitionHandle`] |
//! | send records to a topic as Kafka's producer does (key → partition, batching, idempotence) | [`Log::producer`] → [`Producer`] |
//! | choose partitions yourself, or see what a producer sent, how fast and how long it took | [`Partitioner`], [`Producer::metrics`] → [`ProducerMetrics`] |
//! | read topics as Kafka's consumer does, alone or in a group, with committed offsets | [`Log::consumer`] → [`Consumer`] |
//! | see and manage consumer groups | [`Log::list_groups`], [`Log::describe_group`], [`Log::reset_group_offsets`] |
//! | know what an open found after a crash | [`Log::recovery_report`] |
//! | decode or build Kafka batches yourself (an adapter, a fetch response) | [`Batch`], [`Batches`], [`BatchBuilder`] |
//! | choose what an acknowledged append survives | [`FlushPolicy`] |
//!
//! Producers, consumers and groups are built on the partitions: a [`Producer`] picks a
//! partition per record (murmur2 of the key, sticky placement for keyless records, or your
//! [`Partitioner`]) and appends batches; a [`Consumer`] reads from positions it keeps per partition and commits them to the
//! internal `__consumer_offsets` topic, in Kafka's record format, so a group resumes where it
//! stopped after a restart. `ARCHITECTURE.md` walks the write and read paths, recovery and what
//! each fsync guarantees; `docs/format.md` the bytes on disk; `docs/durability.md` what each
//! flush policy keeps through a process crash and through a power loss.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `gzip` | yes | gzip-compressed batches (Kafka codec 1) |
//! | `snappy` | yes | snappy-compressed batches in xerial framing (Kafka codec 2) |
//! | `streams` | yes | `topiclog::streams`: Kafka Streams' model in process (persistent stores on redb) |
//! | `json` | no | a serde JSON serde for `topiclog::streams` |
//! | `sqlite` | no | the SQLite source and sink connectors of `topiclog::connect` (bundled SQLite) |
//! | `kafka` | no | `topiclog::mirror`: mirroring to and from Kafka-protocol clusters through librdkafka (built from source: a C compiler and make) |
//! | `cli` | no | the `topiclog` command-line tool (`cargo install topiclog --features cli`) |
//! | `sim` | no | a simulated disk and crash hooks for power-loss and fault-injection tests; hidden, not a stable API |
//!
//! lz4 and zstd (codecs 3 and 4) are always built in.
//!
//! ## The engine: partitions by hand
//!
//! ```
//! use topiclog::{Log, Record, TopicConfig, FlushPolicy};
//!
//! let dir = tempfile::tempdir().expect("a temporary directory");
//! let log = Log::open(dir.path())?;
//! let mut config = TopicConfig::new();
//! config.flush_policy = FlushPolicy::EveryBatch; // survive power loss
//! log.create_topic_with("orders", 3, config)?;
//!
//! let p = log.partition_for("orders", Some(b"customer-7"), 0)?;
//! let orders = log.partition("orders", p)?;
//! let at = orders.append(&[Record::new("created").key("customer-7")])?;
//!
//! for r in orders.records(at.base_offset, 1 << 20)? {
//!     println!("{} {:?}", r.offset, r.value);
//! }
//! log.close()?;
//! # Ok::<_, topiclog::Error>(())
//! ```
//!
//! ## Producer and consumer, as with Kafka's clients
//!
//! ```
//! use std::time::Duration;
//! use topiclog::{ConsumerConfig, Log, ProducerConfig, ProducerRecord};
//!
//! let dir = tempfile::tempdir().expect("a temporary directory");
//! let log = Log::open(dir.path())?;
//! log.create_topic("payments", 2)?;
//!
//! let producer = log.producer(ProducerConfig::default())?;
//! for i in 0..10 {
//!     let record = ProducerRecord::new("payments", format!("payment {i}")).key(format!("user-{}", i % 3));
//!     producer.send(record)?; // returns once stored; `send_async` batches instead
//! }
//! producer.close()?;
//!
//! // A member of group "billing": partitions are assigned by the in-process coordinator and
//! // the group's offsets are committed to `__consumer_offsets`.
//! let mut consumer = log.consumer(ConsumerConfig::group("billing"))?;
//! consumer.subscribe(&["payments"])?;
//! let mut seen = 0;
//! while seen < 10 {
//!     let batch = consumer.poll(Duration::from_millis(200))?;
//!     for r in batch.iter() {
//!         println!("{}-{} @{}: {:?}", r.topic(), r.partition(), r.offset(), r.value());
//!     }
//!     seen += batch.len();
//! }
//! consumer.commit()?;
//! consumer.close()?;
//! log.close()?;
//! # Ok::<_, topiclog::Error>(())
//! ```

#![deny(unsafe_code)]

mod checkpoint;
mod cleaner;
mod clock;
mod config;
pub mod connect;
mod consumer;
mod error;
pub mod eventstore;
mod group;
mod io;
mod layout;
mod log;
mod metrics;
#[cfg(feature = "kafka")]
pub mod mirror;
mod open;
mod partition;
mod producer;
mod record;
mod segment;
#[cfg(feature = "streams")]
pub mod streams;
mod txn;
mod types;
mod wait;
mod wire;

pub use cleaner::MaintenanceReport;
#[cfg(feature = "sim")]
#[doc(hidden)]
pub use cleaner::compact::CrashPoint;
pub use config::{CleanupPolicy, DEFAULT_MAX_MESSAGE_BYTES, FlushPolicy, LogOptions, TopicConfig};
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerMetrics, ConsumerRecord, ConsumerRecordIter, ConsumerRecords,
    OffsetReset, OwnedConsumerRecord, RebalanceListener, WakeupHandle,
};
pub use error::{Error, ExpectedVersion, Result};
pub use group::assignor::{Assignor, RangeAssignor, RoundRobinAssignor, StickyAssignor};
pub use group::coordinator::{GroupState, JoinRequest, JoinResponse, MemberDescription};
pub use group::membership::{MAX_SESSION_TIMEOUT, MIN_SESSION_TIMEOUT};
pub use group::offsets::OffsetAndMetadata;
pub use group::protocol::{Assignment, Subscription};
pub use group::{GroupDescription, GroupOffset, OffsetSpec};
pub use layout::{MAX_TOPIC_NAME_LEN, OFFSETS_TOPIC, validate_topic_name};
pub use log::topic::{MAX_PARTITIONS, murmur2, partition_for_key};
pub use log::{
    CommittedPastEnd, Log, LogStats, PartitionDescription, PartitionHandle, RecoveryReport,
    TopicDescription, TxnCompleted, is_internal_topic,
};
pub use partition::read::ReadResult;
pub use partition::{
    AbortedTxn, AppendGuard, AppendResult, BatchLocation, Damage, PartitionRecovery, PartitionStats,
};
pub use producer::{
    DefaultPartitioner, Partitioner, Producer, ProducerConfig, ProducerMetrics, ProducerRecord,
    Receipt, RecordMetadata,
};
pub use record::{
    Batch, BatchBuilder, BatchHeader, Batches, Compression, ControlRecord, EndTxnMarker, Header,
    Record, RecordIter, RecordRef, Records, StoredRecord, TimestampType,
};
pub use types::{ConsumerGroupMetadata, IsolationLevel, TopicPartition};
pub use wait::Notifier;

/// A simulated disk for power-loss and fault-injection tests (feature `sim`): not part of the
/// supported API.
#[cfg(feature = "sim")]
#[doc(hidden)]
pub use io::sim;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
