//! [`PartitionHandle`]: append to and read from one partition without looking it up again.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::log::LogInner;
use crate::partition::read::{ReadResult, ReadShape};
use crate::partition::{AppendGuard, AppendResult, BatchLocation, Partition};
use crate::record::batch::BatchRef;
use crate::record::{Batch, BatchBuilder, Header, Record, StoredRecord};
use crate::types::IsolationLevel;
use crate::wait::Notifier;

thread_local! {
    /// One reused encode buffer per thread: `append(&[Record])` allocates nothing per record.
    static BUILDER: RefCell<BatchBuilder> = RefCell::new(BatchBuilder::new(crate::Compression::None));
}

/// Records a batch can be encoded from: `[Record]`, or a writer's own layout (the stream
/// processors keep outputs as bytes in one buffer, with no `Record` per output).
pub(crate) trait Encodable {
    /// How many records.
    fn count(&self) -> usize;

    /// Whether a record has a null key (a compacted topic refuses it).
    fn has_null_key(&self) -> bool;

    /// Appends every record to `b`; records without a timestamp get `now`.
    fn push_into(&self, b: &mut BatchBuilder, now: i64) -> Result<()>;
}

impl Encodable for [Record] {
    fn count(&self) -> usize {
        self.len()
    }

    fn has_null_key(&self) -> bool {
        self.iter().any(|r| r.key.is_none())
    }

    fn push_into(&self, b: &mut BatchBuilder, now: i64) -> Result<()> {
        for r in self {
            b.push_record(r, now)?;
        }
        Ok(())
    }
}

/// Encodes `records` as one batch in this thread's reused builder (records without a
/// timestamp get `now`; with `producer`, the batch carries its id and epoch, and comes without
/// its CRC, which the writer computes when it stamps the base sequence: it must go to
/// `Partition::append_sequenced`) and hands the finished bytes to `f`. A producer's batch
/// inside a transaction (the third field) carries the transactional bit.
pub(crate) fn with_encoded<R, E: Encodable + ?Sized>(
    codec: crate::Compression,
    records: &E,
    now: i64,
    producer: Option<(i64, i16, bool)>,
    f: impl FnOnce(&mut [u8]) -> Result<R>,
) -> Result<R> {
    BUILDER.with(|cell| {
        // A re-entrant call (impossible today) would find the builder borrowed; fall back to
        // a fresh one rather than panic.
        let mut fresh;
        let mut guard = cell.try_borrow_mut();
        let b: &mut BatchBuilder = if let Ok(b) = guard.as_deref_mut() {
            b
        } else {
            fresh = BatchBuilder::new(codec);
            &mut fresh
        };
        if b.compression() != codec {
            b.set_compression(codec);
        }
        b.clear();
        records.push_into(b, now)?;
        b.set_transactional(producer.is_some_and(|(_, _, t)| t));
        match producer {
            // The writer stamps the base sequence and computes the CRC then (append_sequenced):
            // one CRC per batch.
            Some((id, epoch, _)) => {
                b.set_producer(id, epoch, 0);
                f(b.finish_unchecked()?)
            }
            None => f(b.finish()?),
        }
    })
}

/// A handle to one partition of an open [`crate::Log`]. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct PartitionHandle {
    log: Arc<LogInner>,
    part: Arc<Partition>,
    /// An internal topic's partition: readable, never written through a handle.
    internal: bool,
    /// What this handle's reads return of transactions.
    isolation: IsolationLevel,
}

impl std::fmt::Debug for PartitionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionHandle")
            .field("topic", &self.part.topic)
            .field("partition", &self.part.id)
            .finish_non_exhaustive()
    }
}

impl PartitionHandle {
    pub(crate) fn new(log: Arc<LogInner>, part: Arc<Partition>) -> Self {
        let internal = crate::log::is_internal_topic(&part.topic);
        PartitionHandle {
            log,
            part,
            internal,
            isolation: IsolationLevel::ReadUncommitted,
        }
    }

    /// This handle with reads at `level`: at [`IsolationLevel::ReadCommitted`], `read`,
    /// `read_contiguous` and `records` stop at the last stable offset, and `records` (and
    /// [`ReadResult::records_from`]) skip the records of aborted transactions. The default is
    /// [`IsolationLevel::ReadUncommitted`], as Kafka's. Control records are never returned by
    /// `records` at either level.
    ///
    /// ```
    /// use topiclog::{IsolationLevel, Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?.with_isolation_level(IsolationLevel::ReadCommitted);
    /// p.append(&[Record::new("not in a transaction")])?;
    /// assert_eq!(p.records(0, 1 << 20)?.len(), 1);
    /// assert_eq!(p.last_stable_offset(), 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    #[must_use]
    pub fn with_isolation_level(mut self, level: IsolationLevel) -> Self {
        self.isolation = level;
        self
    }

    /// The isolation level of this handle's reads.
    pub fn isolation_level(&self) -> IsolationLevel {
        self.isolation
    }

    /// The last stable offset: the first offset of the oldest open transaction in this
    /// partition, or the high watermark when none is open. Where a `read_committed` reader
    /// stops (and what its `seek_to_end` and lag use).
    pub fn last_stable_offset(&self) -> i64 {
        self.part.last_stable_offset()
    }

    /// The end this handle's reads stop at: the last stable offset for `read_committed`,
    /// else the high watermark.
    pub fn readable_end(&self) -> i64 {
        match self.isolation {
            IsolationLevel::ReadCommitted => self.part.last_stable_offset(),
            IsolationLevel::ReadUncommitted => self.part.high_watermark(),
        }
    }

    fn committed(&self) -> bool {
        self.isolation == IsolationLevel::ReadCommitted
    }

    /// The partition, for a producer about to write to it.
    pub(crate) fn live_partition(&self) -> Result<&Arc<Partition>> {
        self.writable("append")
    }

    /// The partition when the log is open, the topic not deleted and not internal.
    fn writable(&self, operation: &'static str) -> Result<&Arc<Partition>> {
        let part = self.live()?;
        if self.internal {
            return Err(Error::InternalTopic {
                topic: part.topic.to_string(),
                operation,
            });
        }
        Ok(part)
    }

    fn live(&self) -> Result<&Arc<Partition>> {
        if self.log.is_closed() {
            return Err(Error::Closed { what: "the log" });
        }
        if self.part.is_deleted() {
            return Err(Error::Closed {
                what: "the topic was deleted",
            });
        }
        Ok(&self.part)
    }

    #[cfg(test)]
    pub(crate) fn inner(&self) -> &Arc<Partition> {
        &self.part
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.part.topic
    }

    /// The partition number.
    pub fn partition(&self) -> i32 {
        self.part.id
    }

    /// Appends `records` as one batch: atomic (all or none are stored, at consecutive offsets)
    /// and acknowledged under the topic's [`crate::FlushPolicy`]. Records without a timestamp
    /// get the append time. The batch is compressed with the topic's `compression` (none when
    /// the topic says `producer`).
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] for an empty slice; [`Error::RecordTooLarge`] when the batch
    /// exceeds `max_message_bytes`; [`Error::KeyRequired`] for a keyless record on a compacted
    /// topic; [`Error::Poisoned`], [`Error::ReadOnly`], [`Error::Closed`], I/O errors.
    ///
    /// ```
    /// use topiclog::{Header, Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?;
    /// let at = p.append(&[
    ///     Record::new("signed up").key("user-1").timestamp(1_700_000_000_000),
    ///     Record::new("logged in").key("user-1").header(Header::new("source", "web")),
    /// ])?;
    /// assert_eq!((at.base_offset, at.last_offset), (0, 1));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn append(&self, records: &[Record]) -> Result<AppendResult> {
        self.append_records(records, None)
    }

    /// Appends only if the partition's end offset equals `expected_end` (optimistic
    /// concurrency for event sourcing: read the end, decide, append conditionally).
    ///
    /// The end compared is the log end offset ([`PartitionHandle::log_end_offset`]: the next
    /// offset the writer will assign), checked under the writer lock, not the high watermark.
    /// The two differ only under [`FlushPolicy::EveryBatch`](crate::FlushPolicy::EveryBatch)
    /// while a sync is in flight: the log end already counts batches that are written but not
    /// yet synced (and so not yet visible to readers). Take `expected_end` from
    /// `log_end_offset`, or from the `last_offset + 1` of your own last append.
    ///
    /// # Errors
    /// [`Error::EndOffsetMismatch`] (with the actual end) when another append got there
    /// first; otherwise as [`PartitionHandle::append`].
    ///
    /// ```
    /// use topiclog::{Error, Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("account-42", 1)?;
    /// let stream = log.partition("account-42", 0)?;
    /// let end = stream.log_end_offset();
    /// stream.append_if(end, &[Record::new("deposited 10")])?;
    /// // A writer that read the same end loses the race and learns the new one:
    /// match stream.append_if(end, &[Record::new("withdrew 5")]) {
    ///     Err(Error::EndOffsetMismatch { expected, actual }) => assert_eq!((expected, actual), (0, 1)),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn append_if(&self, expected_end: i64, records: &[Record]) -> Result<AppendResult> {
        self.append_records(records, Some(expected_end))
    }

    /// Appends `records` as one batch if `guard` accepts it: a conditional append whose
    /// condition is the caller's own state, checked atomically with the write. The writer calls
    /// [`AppendGuard::check`] under its lock with the offset the batch would get, writes the
    /// batch only if it returns `Ok`, then calls [`AppendGuard::settle`] with the outcome and
    /// its [`BatchLocation`] before any other batch is checked. The event store keeps its
    /// per-stream versions this way; [`PartitionHandle::append_if`] is the special case whose
    /// state is the partition's end offset.
    ///
    /// A guarded append waits for the writer instead of queuing for a combined write, so it
    /// never shares a `writev` with a batch of another thread (it still shares the
    /// `EveryBatch` sync).
    ///
    /// # Errors
    /// The guard's error when it refuses the batch; otherwise as [`PartitionHandle::append`].
    ///
    /// ```
    /// use topiclog::{AppendGuard, AppendResult, BatchLocation, Error, Log, Record};
    /// // Accepts at most `left` more batches.
    /// struct Quota { left: u32, landed: Vec<BatchLocation> }
    /// impl AppendGuard for Quota {
    ///     fn check(&mut self, _base_offset: i64) -> topiclog::Result<()> {
    ///         if self.left == 0 {
    ///             return Err(Error::AppendRefused { reason: "the quota is used up".into() });
    ///         }
    ///         self.left -= 1; // check may reserve: settle reports the outcome
    ///         Ok(())
    ///     }
    ///     fn settle(&mut self, outcome: Result<(AppendResult, BatchLocation), &Error>) {
    ///         match outcome {
    ///             Ok((_, at)) => self.landed.push(at),
    ///             Err(_) => self.left += 1,
    ///         }
    ///     }
    /// }
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?;
    /// let mut quota = Quota { left: 1, landed: Vec::new() };
    /// p.append_guarded(&[Record::new("a")], &mut quota)?;
    /// assert!(matches!(
    ///     p.append_guarded(&[Record::new("b")], &mut quota),
    ///     Err(Error::AppendRefused { .. })
    /// ));
    /// assert_eq!(p.log_end_offset(), 1);
    /// let batch = p.read_at(quota.landed[0], 0)?.expect("the batch is where the guard saw it");
    /// assert_eq!(batch.base_offset(), 0);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn append_guarded(
        &self,
        records: &[Record],
        guard: &mut dyn AppendGuard,
    ) -> Result<AppendResult> {
        self.encode_checked(records, |part, data| part.append_guarded(data, guard))
    }

    /// The readable batch at `at` (from an [`AppendGuard`] or [`ReadResult::locations`]) if
    /// it holds `offset`: one read without the offset index. `None` when no readable batch
    /// holding `offset` is there any more (truncated, removed by retention, rewritten by
    /// compaction, or not yet below the high watermark): look it up by offset then.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the segment cannot be mapped; [`Error::Closed`].
    pub fn read_at(&self, at: BatchLocation, offset: i64) -> Result<Option<Batch>> {
        let mut out = Vec::with_capacity(1);
        self.live()?.read_batches_at(&[(at, offset)], &mut out)?;
        Ok(out.pop().flatten())
    }

    /// [`PartitionHandle::read_at`] for many batches at once, appending one entry per
    /// `(location, offset)` to `out` in order (repeat a location for each offset wanted in
    /// it, or once). One look at the segment list for the whole slice: what a reader of
    /// scattered batches whose places it knows (the event store's stream reads) calls.
    ///
    /// # Errors
    /// As [`PartitionHandle::read_at`].
    pub fn read_batches_at(
        &self,
        wanted: &[(BatchLocation, i64)],
        out: &mut Vec<Option<Batch>>,
    ) -> Result<()> {
        self.live()?.read_batches_at(wanted, out)
    }

    /// Drops this partition's read maps of its segment files (views already handed out keep
    /// theirs; the next read maps again). After a scan of a whole partition (an index
    /// rebuilt from the log, an export), so the pages it touched stop counting in the
    /// process's resident memory: they stay in the page cache, where the kernel reclaims them
    /// as it needs.
    pub fn release_maps(&self) {
        if let Ok(p) = self.live() {
            p.release_maps();
        }
    }

    fn append_records(
        &self,
        records: &[Record],
        expected_end: Option<i64>,
    ) -> Result<AppendResult> {
        self.encode_checked(records, |part, data| {
            part.append_encoded(data, expected_end)
        })
    }

    /// Checks `records` as an append takes them (some, keyed on a compacted topic), encodes
    /// them as one batch in the topic's compression, and hands the batch to `write`.
    fn encode_checked(
        &self,
        records: &[Record],
        write: impl FnOnce(&Arc<Partition>, &mut [u8]) -> Result<AppendResult>,
    ) -> Result<AppendResult> {
        let part = self.writable("append")?;
        if records.is_empty() {
            return Err(Error::invalid_batch("an append needs at least one record"));
        }
        let cfg = part.config();
        if cfg.cleanup_policy.compacts() && records.iter().any(|r| r.key.is_none()) {
            return Err(Error::KeyRequired {
                topic: part.topic.to_string(),
            });
        }
        let codec = cfg.compression.unwrap_or_default();
        with_encoded(codec, records, now_ms(), None, |data| write(part, data))
    }

    /// Appends the batch in `builder` (finishing it) and clears the builder for reuse: the
    /// allocation-free path for high rates.
    ///
    /// # Errors
    /// As [`PartitionHandle::append`].
    ///
    /// ```
    /// use topiclog::{BatchBuilder, Compression, Log};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("metrics", 1)?;
    /// let p = log.partition("metrics", 0)?;
    /// let mut b = BatchBuilder::new(Compression::None); // keep it: its buffer is reused
    /// for i in 0..1000u32 {
    ///     b.push(None, Some(&i.to_be_bytes()), &[], 1_700_000_000_000)?;
    /// }
    /// let at = p.append_builder(&mut b)?;
    /// assert_eq!(at.last_offset, 999);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn append_builder(&self, builder: &mut BatchBuilder) -> Result<AppendResult> {
        self.append_builder_if(builder, None)
    }

    /// [`PartitionHandle::append_builder`] with an expected end offset (see
    /// [`PartitionHandle::append_if`]).
    ///
    /// # Errors
    /// As [`PartitionHandle::append_if`].
    pub fn append_builder_if(
        &self,
        builder: &mut BatchBuilder,
        expected_end: Option<i64>,
    ) -> Result<AppendResult> {
        let part = self.writable("append")?;
        if builder.has_null_key() && part.compacts() {
            return Err(Error::KeyRequired {
                topic: part.topic.to_string(),
            });
        }
        let r = part.append_encoded(builder.finish()?, expected_end);
        builder.clear();
        r
    }

    /// Reads whole batches starting with the one that holds `offset`, up to about `max_bytes`
    /// (at least one batch when any is readable), never past the high watermark. Batches are
    /// `Bytes` views of the mapped segment: no copy. The CRC is not checked here; see
    /// [`Batch::verify_crc`](crate::Batch::verify_crc).
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] when `offset` is below the log start or above the high
    /// watermark; [`Error::Corrupt`] when a segment holds damaged bytes.
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?;
    /// p.append(&[Record::new("a"), Record::new("b")])?;
    /// p.append(&[Record::new("c")])?;
    /// let mut offset = 1;
    /// let got = p.read(offset, 1 << 20)?;
    /// // Whole batches: the first holds offset 0 too; `records_from` skips what comes before.
    /// for batch in &got.batches {
    ///     batch.verify_crc()?;
    /// }
    /// assert_eq!(got.records_from(offset)?.len(), 2);
    /// offset = got.next_offset().unwrap_or(offset);
    /// assert_eq!(offset, 3);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let mut shape = ReadShape::batches(max_bytes);
        shape.committed = self.committed();
        self.live()?.read_shaped(offset, shape)
    }

    /// [`PartitionHandle::read`] without the per-batch views: the same batches, only as
    /// [`ReadResult::contiguous`] runs (`batches` is empty). What a network fetch sends, with
    /// one reference count per segment read instead of one per batch.
    ///
    /// # Errors
    /// As [`PartitionHandle::read`].
    pub fn read_contiguous(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.live()?.read_shaped(
            offset,
            ReadShape {
                max_bytes,
                batches: false,
                whole_batches: true,
                committed: self.committed(),
            },
        )
    }

    /// The consumer's read: one span of the segment holding `offset`, from the batch holding
    /// it, about `max_bytes` long; it may end inside a batch and run past the high watermark
    /// (the returned `high_watermark` says where readable batches end). The caller walks and
    /// checks the batches.
    pub(crate) fn read_raw(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.live()?.read_shaped(
            offset,
            ReadShape {
                max_bytes,
                batches: false,
                whole_batches: false,
                committed: self.committed(),
            },
        )
    }

    /// Decoded records from `offset` (records before it in the first batch are skipped), up
    /// to about `max_bytes` of batches, with CRCs checked.
    ///
    /// # Errors
    /// As [`PartitionHandle::read`], plus [`Error::ChecksumMismatch`] for a batch that fails
    /// its CRC and [`Error::InvalidBatch`] for one that does not decode.
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?;
    /// p.append(&[Record::new("a").key("k")])?;
    /// let records = p.records(0, 1 << 20)?;
    /// assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
    /// assert_eq!(records[0].value.as_deref(), Some(&b"a"[..]));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn records(&self, offset: i64, max_bytes: usize) -> Result<Vec<StoredRecord>> {
        self.read(offset, max_bytes)?.records_from(offset)
    }

    /// The first offset whose record timestamp is >= `timestamp`, with that timestamp.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or decode errors from the scanned batches.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        self.live()?.offset_for_timestamp(timestamp)
    }

    /// Offsets by segment, as Kafka answered before per-record timestamps (ListOffsets v0):
    /// the first offset of each segment last modified at or before `timestamp` (ms since the
    /// epoch), plus the log end when the timestamp is at or after now, newest first, at most
    /// `max_offsets` of them and none above the high watermark (which takes the place of
    /// those above it). `-1` (latest) lists them all from the end, `-2` (earliest) gives the
    /// log start offset.
    ///
    /// # Errors
    /// I/O errors from reading a segment file's modification time; [`Error::Closed`].
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?;
    /// p.append(&[Record::new("a"), Record::new("b")])?;
    /// p.flush()?;
    /// assert_eq!(p.offsets_before(-1, 10)?, vec![2, 0]);
    /// assert_eq!(p.offsets_before(-1, 1)?, vec![2]);
    /// assert_eq!(p.offsets_before(-2, 10)?, vec![0]);
    /// assert_eq!(p.offsets_before(0, 10)?, Vec::<i64>::new());
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn offsets_before(&self, timestamp: i64, max_offsets: usize) -> Result<Vec<i64>> {
        self.live()?.offsets_before(timestamp, max_offsets)
    }

    /// The readable record with the largest timestamp, as `(offset, timestamp)`: the first
    /// of them when several share it, `None` when the partition has no readable record.
    /// This is Kafka's ListOffsets `MAX_TIMESTAMP` (-3): with out-of-order CreateTime
    /// timestamps it is not the last record.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or decode errors from the scanned batches; [`Error::Closed`].
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?;
    /// assert_eq!(p.max_timestamp_offset()?, None);
    /// p.append(&[Record::new("a").timestamp(1_000), Record::new("b").timestamp(5_000)])?;
    /// p.append(&[Record::new("late").timestamp(2_000)])?;
    /// assert_eq!(p.max_timestamp_offset()?, Some((1, 5_000)));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>> {
        self.live()?.max_timestamp_offset()
    }

    /// Makes everything appended to this partition so far durable (`fdatasync`, shared with
    /// concurrent callers), whatever the topic's flush policy.
    ///
    /// # Errors
    /// The fsync's error (the partition is then poisoned); [`Error::Closed`].
    pub fn flush(&self) -> Result<()> {
        let part = self.live()?;
        part.sync_to(part.log_end())
    }

    /// First readable offset.
    pub fn log_start_offset(&self) -> i64 {
        self.part.log_start()
    }

    /// Next offset to be written.
    pub fn log_end_offset(&self) -> i64 {
        self.part.log_end()
    }

    /// End visible to readers (see [`crate::FlushPolicy`]).
    pub fn high_watermark(&self) -> i64 {
        self.part.high_watermark()
    }

    /// Advances the log start offset to `offset` (Kafka's delete-records; -1 means the high
    /// watermark), persists it, and deletes the segments wholly below it. Returns the new log
    /// start offset.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] when `offset` is negative (other than -1) or past the high
    /// watermark; [`Error::ReadOnly`]; I/O errors.
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        let part = self.writable("delete records")?;
        let start = part.delete_records(offset)?;
        crate::cleaner::retention::apply(
            part,
            now_ms(),
            crate::cleaner::retention::Rules::LogStartOnly,
        )?;
        self.log.write_checkpoints()?;
        Ok(start)
    }

    /// Removes every record at or after `offset`; the batch holding `offset` goes too, since
    /// batches are atomic (as in Kafka). Returns the new end offset. Offsets are then reused.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] outside `[log start, log end]`; [`Error::ReadOnly`]; I/O.
    pub fn truncate_to(&self, offset: i64) -> Result<i64> {
        let part = self.writable("truncate")?;
        if crate::layout::event_store_dir(&self.log.dir, &part.topic).is_dir() {
            return Err(Error::invalid_config(
                "truncate",
                format!(
                    "'{}' is an event topic: cutting its tail would take acknowledged events \
                     and the versions the store gave them",
                    part.topic
                ),
            ));
        }
        let end = part.truncate_to(offset)?;
        self.log.write_checkpoints()?;
        Ok(end)
    }

    /// Blocks until the high watermark passes `offset` or `timeout` elapses; returns whether
    /// data at `offset` is readable. Woken by appends, not by polling.
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let p = log.partition("events", 0)?;
    /// let writer = p.clone();
    /// let t = std::thread::spawn(move || writer.append(&[Record::new("hello")]));
    /// assert!(p.wait_for(0, Duration::from_secs(10)));
    /// t.join().expect("the writer thread")?;
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn wait_for(&self, offset: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        if self.part.high_watermark() > offset {
            return true;
        }
        let n = Notifier::new();
        self.part.waiters.register(&n);
        let ready = loop {
            // Registered before this check: an append after it will notify.
            if self.part.high_watermark() > offset {
                break true;
            }
            if self.part.is_deleted() || self.log.is_closed() || !n.wait_until(deadline) {
                break self.part.high_watermark() > offset;
            }
        };
        self.part.waiters.unregister(&n);
        ready
    }

    /// Registers a notifier woken by every append to this partition (for multiplexed waits
    /// over many partitions).
    pub fn register_notifier(&self, n: &Arc<Notifier>) {
        self.part.waiters.register(n);
    }

    /// Removes a notifier registered with [`PartitionHandle::register_notifier`].
    pub fn unregister_notifier(&self, n: &Arc<Notifier>) {
        self.part.waiters.unregister(n);
    }

    /// Validates one client-encoded Kafka batch as Kafka's broker does on produce, then
    /// appends it as it came, stamping only the base offset (and the time under
    /// LogAppendTime). When the topic's `compression.type` names a codec other than the
    /// batch's, the records are recompressed into a new batch that keeps the producer id,
    /// epoch, sequence, timestamps and headers. For adapters that receive batches from Kafka
    /// clients.
    ///
    /// Checked: magic 2, exactly one whole batch, the CRC, a record count above zero with
    /// `lastOffsetDelta = count - 1`, no control or delete-horizon batch, a transactional
    /// batch only for a partition its producer's ongoing transaction holds (see
    /// [`Log::add_partitions_to_txn`](crate::Log::add_partitions_to_txn)),
    /// a base sequence and epoch of at least 0 when the batch has a producer id, every record
    /// decoding at its expected offset delta, and a key on every record of a compacted topic.
    /// A batch without a producer id may carry any base sequence, as Kafka's broker accepts it:
    /// default (non-idempotent) producers of kafkajs, sarama and aiokafka send `producerId =
    /// -1` with `baseSequence = 0`. It is stored as sent and tracked by no producer state.
    ///
    /// # Errors
    /// [`Error::ChecksumMismatch`] for a bad CRC; [`Error::UnsupportedCompression`] for a
    /// codec this build lacks; [`Error::KeyRequired`] for a null key on a compacted topic;
    /// [`Error::InvalidBatch`] for any other batch Kafka's broker would refuse; otherwise
    /// as [`PartitionHandle::append`] (for example [`Error::OutOfOrderSequence`]).
    pub fn append_raw(&self, batch: &mut [u8]) -> Result<AppendResult> {
        let part = self.writable("append")?;
        let cfg = part.config();
        // Checked in place: no copy of the client's bytes.
        let b = BatchRef::new(batch)?;
        b.verify_crc()?;
        let h = b.header;
        if h.record_count <= 0 || i64::from(h.last_offset_delta) != i64::from(h.record_count) - 1 {
            return Err(Error::invalid_batch(format!(
                "record count {} does not match last offset delta {}",
                h.record_count, h.last_offset_delta
            )));
        }
        if h.is_control() {
            return Err(Error::invalid_batch(
                "clients may not write control batches",
            ));
        }
        if h.has_delete_horizon() {
            return Err(Error::invalid_batch(
                "the delete-horizon attribute is set only by compaction",
            ));
        }
        if h.producer_id >= 0 && (h.base_sequence < 0 || h.producer_epoch < 0) {
            return Err(Error::invalid_batch(format!(
                "producer id {} with epoch {} and base sequence {}: an idempotent batch needs both",
                h.producer_id, h.producer_epoch, h.base_sequence
            )));
        }
        let codec = h.compression()?;
        let target = cfg.compression.unwrap_or(codec);
        let mut rebuilt = (target != codec).then(|| {
            let mut bb = BatchBuilder::new(target);
            bb.set_producer(h.producer_id, h.producer_epoch, h.base_sequence);
            bb.set_transactional(h.is_transactional());
            bb
        });
        let mut count = 0i64;
        let mut refused: Option<Error> = None;
        b.for_each_record(|r| {
            if refused.is_some() {
                return;
            }
            if r.offset - h.base_offset != count {
                refused = Some(Error::invalid_batch(format!(
                    "record {count} has offset delta {}",
                    r.offset - h.base_offset
                )));
            } else if cfg.cleanup_policy.compacts() && r.key.is_none() {
                refused = Some(Error::KeyRequired {
                    topic: self.topic().to_string(),
                });
            } else if let Some(bb) = rebuilt.as_mut() {
                let headers: Vec<Header> = r
                    .headers()
                    .map(|(k, v)| Header {
                        key: k.to_owned(),
                        value: v.map(bytes::Bytes::copy_from_slice),
                    })
                    .collect();
                if let Err(e) = bb.push(r.key, r.value, &headers, r.timestamp) {
                    refused = Some(e);
                }
            }
            count += 1;
        })?;
        if let Some(e) = refused {
            return Err(e);
        }
        let mut append = || match rebuilt.as_mut() {
            Some(bb) => part.append_encoded(bb.finish()?, None),
            None => part.append_encoded(batch, None),
        };
        if !h.is_transactional() {
            return append();
        }
        // A transactional batch goes in only while the producer's ongoing transaction holds
        // this partition (as Kafka's broker verifies), under the coordinator's lock of that
        // transaction, so it cannot land after the transaction's marker.
        self.log
            .services
            .append_transactional(
                &part.topic,
                part.id,
                h.producer_id,
                h.producer_epoch,
                &mut append,
            )
            .unwrap_or_else(|| {
                Err(Error::invalid_batch(
                    "a transactional batch needs the log's transaction coordinator",
                ))
            })
    }
}
