//! The crate's error type.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias used throughout topiclog.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in topiclog.
///
/// Each variant is a case a caller handles differently; the messages name the file, offset or
/// setting involved so a person can act on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on `path`.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the call was made on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A file holds bytes that cannot be what topiclog wrote there.
    #[error("corrupt data in {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte position in the file where the damage starts.
        position: u64,
        /// What was wrong.
        reason: String,
    },

    /// A byte string given to a decoder is not a valid Kafka RecordBatch v2 (or record inside it).
    #[error("invalid record batch: {reason}")]
    InvalidBatch {
        /// What was wrong.
        reason: String,
    },

    /// A batch's stored CRC-32C does not match its bytes (Kafka's `CORRUPT_MESSAGE`).
    #[error(
        "CRC mismatch in the batch at base offset {base_offset}: stored {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        /// The batch's base offset as stored.
        base_offset: i64,
        /// The CRC in the batch header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },

    /// The batch uses a compression codec this build cannot handle.
    #[error("unsupported compression codec {codec}: {reason}")]
    UnsupportedCompression {
        /// The codec id from the batch attributes (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
        codec: u8,
        /// Why it is unsupported (unknown id, or a cargo feature that is off).
        reason: &'static str,
    },

    /// The requested offset lies outside `[start, end]` of the partition.
    #[error("offset {requested} is out of range: the partition holds offsets {start}..{end}")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: i64,
        /// The log start offset (first readable offset).
        start: i64,
        /// The end offset (next offset to be written, as visible to readers).
        end: i64,
    },

    /// A batch (after compression) is larger than the topic's `max_message_bytes`.
    #[error("record batch of {size} bytes exceeds the topic's max_message_bytes of {max}")]
    RecordTooLarge {
        /// Size of the batch in bytes.
        size: usize,
        /// The limit in force.
        max: usize,
    },

    /// A record's CreateTime timestamp lies outside the window the topic's
    /// `message.timestamp.before.max.ms` / `after.max.ms` (or `difference.max.ms`) allow around
    /// the broker's clock; the whole batch is refused, as Kafka refuses it.
    #[error(
        "record timestamp {timestamp} is out of range: the topic accepts timestamps from {earliest} to {latest} now"
    )]
    InvalidTimestamp {
        /// The refused record's timestamp, in ms since the Unix epoch.
        timestamp: i64,
        /// The earliest timestamp accepted at the time of the append.
        earliest: i64,
        /// The latest timestamp accepted at the time of the append.
        latest: i64,
    },

    /// No topic of that name exists.
    #[error("topic '{topic}' does not exist")]
    TopicNotFound {
        /// The topic asked for.
        topic: String,
    },

    /// A topic of that name exists already.
    #[error("topic '{topic}' already exists")]
    TopicAlreadyExists {
        /// The topic name.
        topic: String,
    },

    /// The topic exists but has no such partition.
    #[error("topic '{topic}' has no partition {partition}")]
    PartitionNotFound {
        /// The topic name.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },

    /// The name breaks Kafka's topic-name rules (`[a-zA-Z0-9._-]{1,249}`, not `.` or `..`).
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A configuration value is out of range or malformed.
    #[error("invalid configuration for {field}: {reason}")]
    InvalidConfig {
        /// The setting, by topiclog's or Kafka's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Another `Log` (in this process or another one) holds the directory's lock.
    #[error(
        "data directory {} is locked by another Log (in this or another process)",
        path.display()
    )]
    AlreadyLocked {
        /// The locked data directory.
        path: PathBuf,
    },

    /// A conditional append found a different end offset than expected.
    #[error("conditional append expected end offset {expected} but the partition ends at {actual}")]
    EndOffsetMismatch {
        /// The end offset the caller expected.
        expected: i64,
        /// The partition's actual end offset.
        actual: i64,
    },

    /// An [`AppendGuard`](crate::AppendGuard) refused a batch: the error for a guard of your
    /// own to return from `check`. Nothing of the batch was written.
    #[error("the append was refused: {reason}")]
    AppendRefused {
        /// Why.
        reason: String,
    },

    /// An event-store append found its stream at another version than it expected. Nothing
    /// of the append was written.
    #[error("stream '{stream}': expected {expected}, but {}", match actual {
        Some(v) => format!("its last event has version {v}"),
        None => "it has no event".to_string(),
    })]
    WrongExpectedVersion {
        /// The stream.
        stream: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The version of the stream's last event; `None` when it has none.
        actual: Option<u64>,
    },

    /// A connector's record could not be converted or transformed (Kafka Connect's
    /// `DataException`): a value that does not fit its schema, malformed JSON, a missing field.
    #[error("connect: {reason}")]
    ConnectData {
        /// What is wrong with the record.
        reason: String,
    },

    /// A connector's operation failed for a reason that may pass (Kafka Connect's
    /// `RetriableException`): a database busy or locked by another writer, an I/O error, a
    /// full disk. The runtime retries it with a backoff until it succeeds or the connector
    /// stops.
    #[error("connect (retriable): {reason}")]
    ConnectRetriable {
        /// What failed.
        reason: String,
    },

    /// A serializer or deserializer refused a value (`topiclog::streams`'s serdes and the
    /// typed clients: bytes that are not UTF-8, an `i64` that is not 8 bytes, a null).
    #[error("serde: {reason}")]
    Serde {
        /// What is wrong with the value.
        reason: String,
    },

    /// A streams topology cannot run: an invalid topology, a source topic that does not
    /// exist, inputs that must be co-partitioned and are not, or an operation in the wrong
    /// state (Kafka Streams' `TopologyException`, `MissingSourceTopicException`,
    /// `IllegalStateException`).
    #[error("streams: {reason}")]
    Streams {
        /// What is wrong.
        reason: String,
    },

    /// An event-store append reused event ids of an earlier append in a way that is not a
    /// retry of it (other events, another stream or another order). Nothing was written.
    #[error("stream '{stream}': event id {id} was already appended ({reason})")]
    EventIdReused {
        /// The stream of the refused append.
        stream: String,
        /// The first reused id, as a UUID.
        id: String,
        /// How the append differs from the earlier one.
        reason: String,
    },

    /// An earlier fsync on this partition failed; writes are refused until the log is reopened,
    /// because the kernel may have dropped the unsynced pages.
    #[error(
        "partition {topic}-{partition} is poisoned by a failed fsync ({reason}); reopen the log"
    )]
    Poisoned {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: i32,
        /// The original failure.
        reason: String,
    },

    /// The log was opened read-only and the call would modify it.
    #[error("the log was opened read-only")]
    ReadOnly,

    /// The log has been closed, or the topic was deleted under this handle.
    #[error("the log or topic handle is closed: {what}")]
    Closed {
        /// What was closed.
        what: &'static str,
    },

    /// An idempotent batch's sequence number does not follow the producer's last one.
    #[error(
        "producer {producer_id} sent sequence {received} to {topic}-{partition} but {expected} was expected"
    )]
    OutOfOrderSequence {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: i32,
        /// The producer id.
        producer_id: i64,
        /// The sequence the partition expected.
        expected: i32,
        /// The sequence the batch carried.
        received: i32,
    },

    /// A newer instance of this producer (a higher epoch) has taken over.
    #[error("producer {producer_id} epoch {epoch} is fenced by epoch {current_epoch}")]
    Fenced {
        /// The producer id.
        producer_id: i64,
        /// The epoch the stale producer used.
        epoch: i16,
        /// The current epoch.
        current_epoch: i16,
    },

    /// A transactional producer call made in a state that does not allow it: a send or
    /// commit outside a transaction, `begin_transaction` twice, anything before
    /// `init_transactions`, or anything but `abort_transaction` after a failed send in the
    /// transaction. Nothing of the call was applied.
    #[error("transactional id '{transactional_id}': cannot {operation} while {state}")]
    InvalidTxnState {
        /// The producer's transactional id.
        transactional_id: String,
        /// The call refused.
        operation: &'static str,
        /// The state the producer is in.
        state: String,
    },

    /// The transaction was open longer than the producer's `transaction.timeout.ms`: the log
    /// aborted it. Abort the transaction on the producer to go on; a new one can begin then.
    #[error(
        "transactional id '{transactional_id}': the transaction was aborted after {timeout_ms} ms open (transaction.timeout.ms)"
    )]
    TransactionTimedOut {
        /// The producer's transactional id.
        transactional_id: String,
        /// The timeout it passed.
        timeout_ms: u64,
    },

    /// A group call carried a generation or member id the group no longer has (for example a
    /// commit from before a rebalance).
    #[error("group '{group}': member '{member}' with generation {generation} is stale ({reason})")]
    StaleMember {
        /// The group id.
        group: String,
        /// The member id given.
        member: String,
        /// The generation given.
        generation: i32,
        /// Why it is stale.
        reason: String,
    },

    /// The group is rebalancing; the member must rejoin.
    #[error("group '{group}' is rebalancing")]
    RebalanceInProgress {
        /// The group id.
        group: String,
    },

    /// The operation needs a group with no active members.
    #[error("group '{group}' has active members")]
    GroupNotEmpty {
        /// The group id.
        group: String,
    },

    /// The group's live members subscribe to the topic whose committed offsets a call would
    /// delete (Kafka's `GROUP_SUBSCRIBED_TO_TOPIC`): they would lose their position while
    /// consuming it.
    #[error("group '{group}' has members subscribed to topic '{topic}'")]
    GroupSubscribedToTopic {
        /// The group id.
        group: String,
        /// The subscribed topic.
        topic: String,
    },

    /// No such group.
    #[error("group '{group}' does not exist")]
    GroupNotFound {
        /// The group id.
        group: String,
    },

    /// The consumer has no position for a partition and its `auto_offset_reset` is `Error`.
    #[error("no committed offset for {topic}-{partition} and auto_offset_reset is error")]
    NoOffset {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// The partition is not assigned to this consumer.
    #[error("{topic}-{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic name.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// A blocked `poll` was interrupted by `WakeupHandle::wakeup`.
    #[error("the consumer was woken up")]
    WokenUp,

    /// A record without a key was sent to a compacted topic.
    #[error("topic '{topic}' is compacted and every record needs a key")]
    KeyRequired {
        /// The topic name.
        topic: String,
    },

    /// The path is not a topiclog data directory and topiclog will not make it one: a file,
    /// a non-empty folder without `topiclog.properties` (so a mistyped path never has its
    /// folders taken for partitions), or a directory of a newer format.
    #[error("{} is not a topiclog data directory: {reason}", path.display())]
    NotADataDirectory {
        /// The path given.
        path: PathBuf,
        /// What was found there.
        reason: String,
    },

    /// The call would create, delete, repartition or write to an internal topic
    /// (`__consumer_offsets`, `__transaction_state`), which only topiclog itself writes.
    #[error("topic '{topic}' is internal, reserved for topiclog itself: {operation} is refused")]
    InternalTopic {
        /// The topic name.
        topic: String,
        /// What was refused (`"append"`, `"delete"`, `"create"`, `"add partitions"`, ...).
        operation: &'static str,
    },

    /// A producer's queued records held `buffer.memory` bytes and none were acknowledged
    /// within `max.block.ms` (Kafka's `BufferExhaustedException`), or the record alone is
    /// larger than `buffer.memory`. The record was not queued.
    #[error(
        "the producer's buffer.memory of {buffer_memory} bytes had no room for a record of \
         {requested} bytes within max.block.ms (waited {waited:?})"
    )]
    BufferExhausted {
        /// The record's estimated size in bytes.
        requested: usize,
        /// The producer's `buffer.memory`.
        buffer_memory: usize,
        /// How long the send waited.
        waited: std::time::Duration,
    },

    /// A producer's [`Partitioner`](crate::Partitioner) chose a partition the topic does not
    /// have (outside `0..partitions`). The record was not sent.
    #[error(
        "the producer's partitioner chose partition {partition} of topic '{topic}', which has \
         {partitions} partition(s)"
    )]
    PartitionerOutOfRange {
        /// The topic name.
        topic: String,
        /// The partition the partitioner returned.
        partition: i32,
        /// How many partitions the topic has.
        partitions: i32,
    },

    /// Records a producer sent with `send_async` failed; each one's [`crate::Receipt`] holds
    /// its own error.
    #[error("{failed} record(s) failed to send; the first: {first}")]
    SendFailed {
        /// How many records failed.
        failed: usize,
        /// The first failure.
        first: Box<Error>,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_batch(reason: impl Into<String>) -> Self {
        Error::InvalidBatch {
            reason: reason.into(),
        }
    }

    /// A copy of this error for a second caller of the same failed operation (I/O errors are
    /// not `Clone`: the copy keeps the kind and the message).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                // Keep the OS error number (ENOSPC, EIO) for callers that branch on it.
                source: source.raw_os_error().map_or_else(
                    || io::Error::new(source.kind(), source.to_string()),
                    io::Error::from_raw_os_error,
                ),
            },
            Error::Poisoned {
                topic,
                partition,
                reason,
            } => Error::Poisoned {
                topic: topic.clone(),
                partition: *partition,
                reason: reason.clone(),
            },
            Error::RecordTooLarge { size, max } => Error::RecordTooLarge {
                size: *size,
                max: *max,
            },
            Error::Closed { what } => Error::Closed { what },
            Error::Fenced {
                producer_id,
                epoch,
                current_epoch,
            } => Error::Fenced {
                producer_id: *producer_id,
                epoch: *epoch,
                current_epoch: *current_epoch,
            },
            Error::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => Error::WrongExpectedVersion {
                stream: stream.clone(),
                expected: *expected,
                actual: *actual,
            },
            Error::ConnectData { reason } => Error::ConnectData {
                reason: reason.clone(),
            },
            Error::ConnectRetriable { reason } => Error::ConnectRetriable {
                reason: reason.clone(),
            },
            Error::Serde { reason } => Error::Serde {
                reason: reason.clone(),
            },
            Error::Streams { reason } => Error::Streams {
                reason: reason.clone(),
            },
            Error::AppendRefused { reason } => Error::AppendRefused {
                reason: reason.clone(),
            },
            Error::EventIdReused { stream, id, reason } => Error::EventIdReused {
                stream: stream.clone(),
                id: id.clone(),
                reason: reason.clone(),
            },
            Error::InvalidTxnState {
                transactional_id,
                operation,
                state,
            } => Error::InvalidTxnState {
                transactional_id: transactional_id.clone(),
                operation,
                state: state.clone(),
            },
            Error::TransactionTimedOut {
                transactional_id,
                timeout_ms,
            } => Error::TransactionTimedOut {
                transactional_id: transactional_id.clone(),
                timeout_ms: *timeout_ms,
            },
            Error::InvalidTimestamp {
                timestamp,
                earliest,
                latest,
            } => Error::InvalidTimestamp {
                timestamp: *timestamp,
                earliest: *earliest,
                latest: *latest,
            },
            other => Error::InvalidBatch {
                reason: format!("the batch failed: {other}"),
            },
        }
    }

    /// The Kafka protocol error code that stands for this error, for adapters that answer
    /// Kafka clients (`-1`, `UNKNOWN_SERVER_ERROR`, where Kafka has no closer code).
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            Error::ChecksumMismatch { .. } | Error::Corrupt { .. } => 2, // CORRUPT_MESSAGE
            Error::OffsetOutOfRange { .. } => 1,                         // OFFSET_OUT_OF_RANGE
            Error::TopicNotFound { .. }
            | Error::PartitionNotFound { .. }
            | Error::PartitionerOutOfRange { .. } => 3, // UNKNOWN_TOPIC_OR_PARTITION
            Error::RecordTooLarge { .. } => 10,                          // MESSAGE_TOO_LARGE
            Error::InvalidTopicName { .. } => 17,                        // INVALID_TOPIC_EXCEPTION
            Error::InvalidTimestamp { .. } => 32,                        // INVALID_TIMESTAMP
            Error::StaleMember { reason, .. } if reason.contains("generation") => 22, // ILLEGAL_GENERATION
            Error::StaleMember { .. } => 25, // UNKNOWN_MEMBER_ID
            Error::RebalanceInProgress { .. } => 27, // REBALANCE_IN_PROGRESS
            Error::TopicAlreadyExists { .. } => 36, // TOPIC_ALREADY_EXISTS
            Error::InvalidConfig { .. } => 40, // INVALID_CONFIG
            Error::OutOfOrderSequence { .. } => 45, // OUT_OF_ORDER_SEQUENCE_NUMBER
            // A timed-out transaction's producer gets INVALID_PRODUCER_EPOCH, as from Kafka.
            Error::Fenced { .. } | Error::TransactionTimedOut { .. } => 47, // INVALID_PRODUCER_EPOCH
            Error::InvalidTxnState { .. } => 48,                            // INVALID_TXN_STATE
            Error::Io { .. } | Error::Poisoned { .. } | Error::ReadOnly | Error::Closed { .. } => {
                56
            } // KAFKA_STORAGE_ERROR
            Error::GroupNotEmpty { .. } => 68,                              // NON_EMPTY_GROUP
            Error::GroupNotFound { .. } => 69,                              // GROUP_ID_NOT_FOUND
            Error::UnsupportedCompression { .. } => 76, // UNSUPPORTED_COMPRESSION_TYPE
            Error::GroupSubscribedToTopic { .. } => 86, // GROUP_SUBSCRIBED_TO_TOPIC
            Error::InvalidBatch { .. } | Error::KeyRequired { .. } => 87, // INVALID_RECORD
            // Kafka refuses produce to an internal topic with INVALID_TOPIC_EXCEPTION and
            // other changes to one with INVALID_REQUEST.
            Error::InternalTopic { operation, .. } if *operation == "append" => 17,
            Error::InternalTopic { .. } => 42,
            _ => -1,
        }
    }

    pub(crate) fn invalid_config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Extension to attach a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

/// What an event-store append expects of its stream (EventStoreDB's expected version). An
/// event's version is the number of earlier events in its stream, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check: append whatever the stream holds.
    Any,
    /// The stream has no event yet.
    NoStream,
    /// The stream has at least one event.
    StreamExists,
    /// The stream's last event has this version.
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}
