//! An event store on a topic: streams with per-stream optimistic concurrency, stream reads,
//! `$all` reads, catch-up subscriptions, snapshots and stream metadata (EventStoreDB's model),
//! in Kafka's format.
//!
//! A stream is a record key; its partition is Kafka's murmur2 of the key, so every Kafka
//! consumer sees a stream's events in order. Each event is one record whose headers carry its
//! version in the stream (`es.version`, 8 bytes big-endian), its type (`es.type`) and its id
//! (`es.id`, 16 bytes); the value is the payload. The log alone is the truth: the per-stream
//! index (see `index.rs`) is a cache that an open checks against the log and rebuilds from it.
//!
//! An append's expected-version check runs under the partition's writer lock through
//! [`PartitionHandle::append_guarded`]: the guard compares the stream's version in the index
//! with what the append expects and the index takes the new events before the writer lets go,
//! so writers to different streams never conflict and two writers expecting the same version
//! of one stream cannot both win.

mod companion;
mod event;
mod index;
mod subscribe;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, MutexGuard};

use crate::clock::now_ms;
use crate::config::TopicConfig;
use crate::error::ExpectedVersion;
use crate::error::{Error, IoContext, Result};
use crate::io::ops;
use crate::log::topic::partition_for_key;
use crate::log::{Log, PartitionHandle};
use crate::partition::{AppendGuard, AppendResult, BatchLocation};
use crate::record::Batch;

pub use companion::{Snapshot, StreamMetadata};
pub use event::{
    EventData, EventId, EventPosition, ID_HEADER, RecordedEvent, SharedStr, TYPE_HEADER,
    VERSION_HEADER,
};
pub use index::{PartitionIndexReport, StreamGap};
pub use subscribe::{AllPosition, Subscription};

use event::{Shared, recorded};
use index::{Entry, PartIndex, stream_hash};

/// Attempts an append makes when the index must catch up with writes outside the store or a
/// concurrent `Any` append changed the stream's version under it.
const MAX_ATTEMPTS: u32 = 1000;

/// Settings of an [`EventStore`].
#[derive(Debug, Clone)]
pub struct EventStoreConfig {
    /// Partitions of the event topic when the store creates it (1 gives `$all` a total
    /// order).
    pub partitions: i32,
    /// The event topic's config when the store creates it (`cleanup.policy=compact` is
    /// refused: compaction would delete events).
    pub topic_config: TopicConfig,
    /// Event ids remembered per partition for idempotent retries: the ids of the events among
    /// the last this-many offsets of the partition (default 10,000).
    pub idempotency_window: usize,
}

impl Default for EventStoreConfig {
    /// One partition; the topic config is the default with `preallocate=true` (appends are
    /// stores into a mapped tail, and an `EveryBatch` sync has no file size to write: about a
    /// third off an append under both policies here) and `segment.bytes` of 64 MiB (the
    /// active segment's written pages stay mapped while it is active, so its size bounds the
    /// file-backed memory appends keep resident); an idempotency window of 10,000.
    fn default() -> Self {
        let mut topic_config = TopicConfig::new();
        topic_config.segment_bytes = 64 << 20;
        EventStoreConfig {
            partitions: 1,
            topic_config: topic_config
                .clone()
                .with("preallocate", "true")
                .unwrap_or(topic_config),
            idempotency_window: 10_000,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteResult {
    /// The version of the first event appended.
    pub first_version: u64,
    /// The version of the last event appended: what the next append expects
    /// (`ExpectedVersion::Exact(last_version)`).
    pub last_version: u64,
    /// Where the first event sits.
    pub first_position: EventPosition,
    /// Where the last event sits.
    pub last_position: EventPosition,
}

/// Which way a stream read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadDirection {
    /// From the given version up.
    Forwards,
    /// From the given version down (pass `u64::MAX` to start at the end).
    Backwards,
}

/// The result of a stream read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvents {
    /// The events, in the direction read.
    pub events: Vec<RecordedEvent>,
    /// The version of the stream's last event (`None`: no event yet). Set even when the
    /// stream's metadata hides every event.
    pub last_version: Option<u64>,
    /// Events in the range read that the topic's retention removed (whole segments deleted
    /// by `retention.ms`/`retention.bytes` or `delete_records`): they are gone from the log.
    pub removed_by_retention: u64,
    /// Where to continue in the read's direction: the version after (forwards) or before
    /// (backwards) the last one the read covered, counting events it skipped (removed by
    /// retention, older than `$maxAge`); `None` backwards once version 0 was covered.
    pub next_version: Option<u64>,
}

/// Index figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexStats {
    /// Streams in the index.
    pub streams: usize,
    /// Events in the index.
    pub events: u64,
}

/// One partition of the event topic with its index.
struct Part {
    handle: PartitionHandle,
    index: Mutex<PartIndex>,
    /// Taken around a checkpoint (before the index's lock), so checkpoints write in turn.
    checkpointing: Mutex<()>,
}

/// Stores open in this process, by index directory: one store per topic at a time.
static OPEN: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// An event store over one topic of a [`Log`]. Synchronous and shareable between threads
/// (`&EventStore` is `Sync`).
///
/// ```
/// use topiclog::Log;
/// use topiclog::ExpectedVersion;
/// use topiclog::eventstore::{EventData, EventStore, EventStoreConfig, ReadDirection};
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let log = Log::open(dir.path())?;
/// let store = EventStore::open(&log, "accounts", &EventStoreConfig::default())?;
/// let w = store.append("account-1", ExpectedVersion::NoStream, &[EventData::new("Opened", "{}")])?;
/// store.append(
///     "account-1",
///     ExpectedVersion::Exact(w.last_version),
///     &[EventData::new("Deposited", r#"{"amount":10}"#)],
/// )?;
/// // Another writer that read version 0 loses:
/// let lost = store.append("account-1", ExpectedVersion::Exact(0), &[EventData::new("Withdrawn", "{}")]);
/// assert!(matches!(lost, Err(topiclog::Error::WrongExpectedVersion { actual: Some(1), .. })));
/// let read = store.read_stream("account-1", 0, ReadDirection::Forwards, 100)?;
/// assert_eq!(read.events.len(), 2);
/// assert_eq!(read.events[1].event_type, "Deposited");
/// store.close()?;
/// # Ok::<_, topiclog::Error>(())
/// ```
pub struct EventStore<'a> {
    log: &'a Log,
    topic: String,
    parts: Vec<Part>,
    dir: PathBuf,
    companions: companion::Companions,
    closed: bool,
}

impl std::fmt::Debug for EventStore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("topic", &self.topic)
            .field("partitions", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl<'a> EventStore<'a> {
    /// Opens the store over `topic`, creating the topic (with `config.partitions` and
    /// `config.topic_config`) when it does not exist. Each partition's index starts from its
    /// checkpoint when that matches the log and catches up with the log; otherwise it is
    /// rebuilt from the log ([`EventStore::index_report`] says which).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a compacted event topic or a store already open over the
    /// topic in this process; [`Error::ReadOnly`] for a read-only log; I/O errors.
    pub fn open(log: &'a Log, topic: &str, config: &EventStoreConfig) -> Result<EventStore<'a>> {
        if log.is_read_only() {
            return Err(Error::ReadOnly);
        }
        let refuse = || {
            Error::invalid_config(
                "cleanup.policy",
                format!(
                    "'{topic}' is compacted: an event topic keeps every event (compaction \
                     would delete all but the last event of each stream); use retention"
                ),
            )
        };
        let partitions = match log.describe_topic(topic) {
            Ok(d) => {
                if d.config.cleanup_policy.compacts() {
                    return Err(refuse());
                }
                d.partitions.len() as i32
            }
            Err(Error::TopicNotFound { .. }) => {
                if config.topic_config.cleanup_policy.compacts() {
                    return Err(refuse());
                }
                match log.create_topic_with(topic, config.partitions, config.topic_config.clone()) {
                    Ok(()) | Err(Error::TopicAlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
                log.describe_topic(topic)?.partitions.len() as i32
            }
            Err(e) => return Err(e),
        };
        let dir = crate::layout::event_store_dir(log.dir(), topic);
        {
            let mut open = OPEN.lock();
            let set = open.get_or_insert_with(HashSet::new);
            if !set.insert(dir.clone()) {
                return Err(Error::invalid_config(
                    "event store",
                    format!("a store over '{topic}' is already open in this process"),
                ));
            }
        }
        let opened = Self::open_parts(log, topic, &dir, partitions, config);
        let (parts, companions) = match opened {
            Ok(p) => p,
            Err(e) => {
                release(&dir);
                return Err(e);
            }
        };
        Ok(EventStore {
            log,
            topic: topic.to_string(),
            parts,
            dir,
            companions,
            closed: false,
        })
    }

    fn open_parts(
        log: &'a Log,
        topic: &str,
        dir: &Path,
        partitions: i32,
        config: &EventStoreConfig,
    ) -> Result<(Vec<Part>, companion::Companions)> {
        ops::create_dir_all(dir).at(dir)?;
        let mut parts = Vec::with_capacity(partitions as usize);
        for p in 0..partitions {
            let handle = log.partition(topic, p)?;
            let index = PartIndex::open(dir, &handle, config.idempotency_window)?;
            parts.push(Part {
                handle,
                index: Mutex::new(index),
                checkpointing: Mutex::new(()),
            });
        }
        let companions = companion::Companions::open(log, topic, partitions)?;
        let mut store_parts = parts;
        // A checkpoint right away: the next open starts where this one caught up to.
        for part in &mut store_parts {
            let idx = part.index.get_mut();
            if idx.report.records_replayed > 0 || idx.report.rebuilt.is_some() {
                idx.checkpoint()?;
            }
        }
        Ok((store_parts, companions))
    }

    /// The event topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The log the store writes to.
    pub fn log(&self) -> &'a Log {
        self.log
    }

    /// Partitions of the event topic.
    pub fn partitions(&self) -> i32 {
        self.parts.len() as i32
    }

    /// The partition of a stream (Kafka's murmur2 of its id).
    pub fn partition_of(&self, stream: &str) -> i32 {
        partition_for_key(stream.as_bytes(), self.parts.len() as i32)
    }

    fn part(&self, stream: &str) -> Result<&Part> {
        if stream.is_empty() {
            return Err(Error::invalid_config("stream", "a stream id is not empty"));
        }
        self.parts
            .get(self.partition_of(stream) as usize)
            .ok_or(Error::Closed {
                what: "the event store has no such partition",
            })
    }

    /// Appends `events` to `stream` if the stream is as `expected` says: atomically (one
    /// batch: all or none), at versions following the stream's last.
    ///
    /// Idempotent by event id: when the first event's id is among the ids of the partition's
    /// recent events (the last [`EventStoreConfig::idempotency_window`] offsets), the append
    /// is taken as a retry and returns the first append's result without writing, whatever
    /// it expects; if the ids do not match that earlier append event for event (another
    /// stream, other ids, another order) it fails with [`Error::EventIdReused`]. Ids of older
    /// events are not checked (EventStoreDB's rule: the idempotency is best effort beyond its
    /// window).
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`] when the stream is not as expected;
    /// [`Error::EventIdReused`]; [`Error::InvalidConfig`] for an empty stream id, no events
    /// or an `es.` header of your own; otherwise as [`PartitionHandle::append`].
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
    ) -> Result<WriteResult> {
        let part = self.part(stream)?;
        if events.is_empty() {
            return Err(Error::invalid_config(
                "events",
                "an append needs at least one event",
            ));
        }
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        let mut records = Vec::with_capacity(events.len());
        for _ in 0..MAX_ATTEMPTS {
            // The versions the batch is encoded with; the guard checks them (and the expected
            // version, and whether this is a retry) under the writer lock.
            let first = match part.index.lock().version(stream.as_bytes()) {
                None => 0,
                Some(v) => v.checked_add(1).ok_or_else(|| {
                    Error::invalid_config("stream", format!("'{stream}' is at the last version"))
                })?,
            };
            if first.checked_add(events.len() as u64).is_none() {
                return Err(Error::invalid_config(
                    "stream",
                    format!("'{stream}' has no room for {} more versions", events.len()),
                ));
            }
            records.clear();
            for (i, e) in events.iter().enumerate() {
                records.push(e.to_record(stream, first + i as u64)?);
            }
            let mut guard = StreamGuard {
                index: &part.index,
                held: None,
                partition: part.handle.partition(),
                stream,
                expected,
                first,
                ids: &ids,
                verdict: Verdict::Undecided,
            };
            match part.handle.append_guarded(&records, &mut guard) {
                Ok(r) => {
                    let p = part.handle.partition();
                    return Ok(WriteResult {
                        first_version: first,
                        last_version: first + events.len() as u64 - 1,
                        first_position: EventPosition {
                            partition: p,
                            offset: r.base_offset,
                        },
                        last_position: EventPosition {
                            partition: p,
                            offset: r.last_offset,
                        },
                    });
                }
                Err(e) => match std::mem::replace(&mut guard.verdict, Verdict::Undecided) {
                    Verdict::Duplicate(done) => return acknowledged(part, done),
                    Verdict::Refused | Verdict::Undecided => return Err(e),
                    Verdict::Reencode => {}
                    Verdict::CatchUp => catch_up(part)?,
                },
            }
        }
        Err(Error::Closed {
            what: "an append kept losing races with writes outside the store",
        })
    }

    /// The version of a stream's last event; `None` when it has none.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty stream id.
    pub fn stream_version(&self, stream: &str) -> Result<Option<u64>> {
        Ok(self.part(stream)?.index.lock().version(stream.as_bytes()))
    }

    /// Reads up to `max` events of `stream` starting at version `from` (inclusive), in
    /// `direction`. The stream's metadata applies: events below its truncate-before, beyond
    /// its max count or older than its max age are not returned. Reads the events by their
    /// file positions, one read per batch, without the offset index.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty stream id; [`Error::Corrupt`] or
    /// [`Error::ChecksumMismatch`] for damaged batches; I/O errors.
    pub fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: ReadDirection,
        max: usize,
    ) -> Result<StreamEvents> {
        let part = self.part(stream)?;
        let meta = self.companions.metadata(stream);
        let mut entries = Vec::new();
        let mut start = from;
        let last = {
            let mut idx = part.index.lock();
            let last = idx.version(stream.as_bytes());
            if let Some(last) = last {
                let floor = meta.floor(last);
                match direction {
                    ReadDirection::Forwards => {
                        start = from.max(floor);
                        idx.collect(stream.as_bytes(), start, true, max, &mut entries)?;
                    }
                    ReadDirection::Backwards => {
                        if from >= floor {
                            idx.collect(stream.as_bytes(), from, false, max, &mut entries)?;
                            entries.retain(|e| e.version >= floor);
                        }
                    }
                }
            }
            last
        };
        let hw = part.handle.high_watermark();
        // Events appended but not yet acknowledged (a sync in flight) are not read.
        entries.retain(|e| e.offset < hw);
        let next_version = match (direction, entries.last()) {
            (ReadDirection::Forwards, Some(e)) => e.version.checked_add(1),
            (ReadDirection::Forwards, None) => Some(start),
            (ReadDirection::Backwards, Some(e)) => e.version.checked_sub(1),
            (ReadDirection::Backwards, None) => None,
        };
        let mut out = StreamEvents {
            events: Vec::with_capacity(entries.len()),
            last_version: last,
            removed_by_retention: 0,
            next_version,
        };
        load_events(part, stream, &entries, &mut out)?;
        if let Some(age) = meta.max_age {
            let oldest = now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            out.events.retain(|e| e.timestamp >= oldest);
        }
        Ok(out)
    }

    /// The position after every event readable now (for a subscription that wants only new
    /// events).
    pub fn end_position(&self) -> AllPosition {
        AllPosition::new(
            self.parts
                .iter()
                .map(|p| p.handle.high_watermark())
                .collect(),
        )
    }

    /// Reads up to `max` events of every stream from `from`: partition by partition, each in
    /// its log order. There is no total order across partitions (a topic with one partition
    /// has one); `from` holds the next offset to read in each partition, and the returned
    /// position continues after the events returned. Records that are not events of the
    /// store (no `es.version` header) are skipped.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a position of another partition count; read errors.
    pub fn read_all(
        &self,
        from: &AllPosition,
        max: usize,
    ) -> Result<(Vec<RecordedEvent>, AllPosition)> {
        let mut pos = from.clone();
        if pos.offsets.len() != self.parts.len() {
            return Err(Error::invalid_config(
                "position",
                format!(
                    "the position has {} partitions, the event topic {}",
                    pos.offsets.len(),
                    self.parts.len()
                ),
            ));
        }
        let mut out = Vec::new();
        let mut shared = Shared::default();
        for (part, at) in self.parts.iter().zip(pos.offsets.iter_mut()) {
            while out.len() < max {
                *at = (*at).max(part.handle.log_start_offset());
                if *at >= part.handle.high_watermark() {
                    break;
                }
                let got = match part.handle.read(*at, 1 << 20) {
                    Ok(g) => g,
                    Err(Error::OffsetOutOfRange { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if got.batches.is_empty() {
                    // Offsets without batches up to the high watermark (a gap): step over.
                    *at = (*at).max(got.high_watermark);
                    break;
                }
                for batch in &got.batches {
                    if out.len() >= max {
                        break;
                    }
                    if batch.header().is_control() || batch.header().is_transactional() {
                        *at = batch.last_offset() + 1;
                        continue;
                    }
                    batch.verify_crc()?;
                    let p = part.handle.partition();
                    let from_offset = *at;
                    let mut last = from_offset - 1;
                    let room = max - out.len();
                    let mut taken = 0;
                    let shared = &mut shared;
                    batch.for_each_record(|r| {
                        if r.offset < from_offset || taken >= room {
                            return;
                        }
                        last = r.offset;
                        if let Some(e) = recorded(&r, batch.as_bytes(), p, shared) {
                            out.push(e);
                            taken += 1;
                        }
                    })?;
                    if taken >= room && last < batch.last_offset() {
                        *at = last + 1;
                    } else {
                        *at = batch.last_offset() + 1;
                    }
                }
            }
        }
        Ok((out, pos))
    }

    /// A catch-up subscription to `stream` from version `from` (inclusive): the events there
    /// now, then new ones as they are appended.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty stream id.
    pub fn subscribe_to_stream(&self, stream: &str, from: u64) -> Result<Subscription<'_, 'a>> {
        self.part(stream)?;
        Ok(Subscription::to_stream(self, stream, from))
    }

    /// A catch-up subscription to every stream from `from`, then live.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a position of another partition count.
    pub fn subscribe_to_all(&self, from: AllPosition) -> Result<Subscription<'_, 'a>> {
        if from.offsets.len() != self.parts.len() {
            return Err(Error::invalid_config(
                "position",
                "the position has another partition count than the event topic",
            ));
        }
        Ok(Subscription::to_all(self, from))
    }

    /// A subscription to every stream that resumes from the checkpoint `name` last saved
    /// ([`Subscription::checkpoint`]), or from the start.
    ///
    /// # Errors
    /// None today; the signature leaves room for checkpoints kept elsewhere.
    #[allow(clippy::unnecessary_wraps)]
    pub fn subscribe_to_all_from_checkpoint(&self, name: &str) -> Result<Subscription<'_, 'a>> {
        let pos = subscribe::load_all_checkpoint(self, name);
        Ok(Subscription::to_all(self, pos).named(name))
    }

    /// A subscription to `stream` that resumes after the checkpoint `name` last saved, or
    /// from version 0.
    pub fn subscribe_to_stream_from_checkpoint(
        &self,
        name: &str,
        stream: &str,
    ) -> Result<Subscription<'_, 'a>> {
        self.part(stream)?;
        let from = subscribe::load_stream_checkpoint(self, name, stream)?;
        Ok(Subscription::to_stream(self, stream, from).named(name))
    }

    /// Saves a snapshot of `stream` as of `version` (the last event it reflects) in the
    /// compacted companion topic `<topic>-snapshots`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the stream has no event at `version` yet.
    pub fn save_snapshot(&self, stream: &str, version: u64, data: &[u8]) -> Result<()> {
        let part = self.part(stream)?;
        let entry = part.index.lock().entry_of(stream.as_bytes(), version)?;
        let Some(entry) = entry else {
            return Err(Error::invalid_config(
                "snapshot",
                format!("stream '{stream}' has no event at version {version}"),
            ));
        };
        self.companions
            .save_snapshot(stream, version, entry.offset, data)
    }

    /// The latest snapshot of `stream`, if any. Rebuild an aggregate from it plus
    /// `read_stream(stream, snapshot.version + 1, ..)`. A snapshot whose event is no
    /// longer in the stream at its version (lost to a power loss the snapshot survived, even if
    /// the stream has grown past that version again since) is not returned.
    pub fn load_snapshot(&self, stream: &str) -> Result<Option<Snapshot>> {
        let part = self.part(stream)?;
        let Some((snapshot, offset)) = self.companions.load_snapshot(stream)? else {
            return Ok(None);
        };
        // The event it was taken at must still be the one at that version: a snapshot that
        // outlived its events (lost to a power loss, written again since) is not returned.
        let entry = part
            .index
            .lock()
            .entry_of(stream.as_bytes(), snapshot.version)?;
        Ok(entry
            .filter(|e| offset.is_none_or(|o| o == e.offset))
            .map(|_| snapshot))
    }

    /// Sets `stream`'s metadata (in the compacted companion topic `<topic>-metadata`).
    pub fn set_stream_metadata(&self, stream: &str, meta: &StreamMetadata) -> Result<()> {
        self.part(stream)?;
        self.companions.set_metadata(stream, meta)
    }

    /// `stream`'s metadata (the default when none was set).
    pub fn stream_metadata(&self, stream: &str) -> StreamMetadata {
        self.companions.metadata(stream)
    }

    /// Soft-deletes `stream` if it is as `expected` says: sets its truncate-before past its
    /// last event, so reads return nothing, while the events stay in the log (retention
    /// removes them). Appending again continues the versions (EventStoreDB's soft delete).
    ///
    /// The expected-version check is made when the call starts, not under the writer lock:
    /// an append racing the delete may land before or after the new truncate-before (the
    /// metadata lives in another topic); its events stay in the log either way.
    ///
    /// # Errors
    /// [`Error::WrongExpectedVersion`].
    pub fn delete_stream(&self, stream: &str, expected: ExpectedVersion) -> Result<()> {
        let actual = self.stream_version(stream)?;
        check_expected(stream, expected, actual)?;
        let mut meta = self.companions.metadata(stream);
        meta.truncate_before = Some(actual.map_or(0, |v| v.saturating_add(1)));
        self.companions.set_metadata(stream, &meta)
    }

    /// What each partition's index did at open (checkpoint used or rebuilt, records replayed,
    /// gaps and anomalies found in the log).
    pub fn index_report(&self) -> Vec<PartitionIndexReport> {
        self.parts
            .iter()
            .map(|p| p.index.lock().report.clone())
            .collect()
    }

    /// Streams and events in the index.
    pub fn index_stats(&self) -> IndexStats {
        let mut s = IndexStats::default();
        for p in &self.parts {
            let idx = p.index.lock();
            s.streams += idx.streams();
            s.events += u64::from(idx.events());
        }
        s
    }

    /// Writes each partition's index checkpoint, so the next open replays only what comes
    /// after. [`EventStore::close`] does it too.
    ///
    /// # Errors
    /// I/O errors.
    pub fn checkpoint(&self) -> Result<()> {
        for p in &self.parts {
            let _turn = p.checkpointing.lock();
            // The index is held only to copy it: appends wait for no sync.
            let pending = p.index.lock().prepare_checkpoint()?;
            pending.write()?;
        }
        Ok(())
    }

    /// Checkpoints the indexes and closes the store (the log stays open).
    ///
    /// # Errors
    /// I/O errors.
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.checkpoint()
    }
}

impl EventStore<'_> {
    /// Drops the store without a checkpoint, as a crash would leave it (the next open
    /// replays the log from the last checkpoint). For tests and tools.
    pub fn abandon(mut self) {
        self.closed = true;
    }
}

impl Drop for EventStore<'_> {
    fn drop(&mut self) {
        if !self.closed {
            // Best effort: a store dropped without `close` still saves its place.
            let _ = self.checkpoint();
        }
        release(&self.dir);
    }
}

fn release(dir: &Path) {
    if let Some(set) = OPEN.lock().as_mut() {
        set.remove(dir);
    }
}

/// The result of an append a retry found in the log, once that append is acknowledged (under
/// `EveryBatch`: synced). A retry never answers before the first append could have.
fn acknowledged(part: &Part, done: WriteResult) -> Result<WriteResult> {
    let last = done.last_position.offset;
    if part.handle.high_watermark() > last
        || part
            .handle
            .wait_for(last, std::time::Duration::from_secs(30))
    {
        Ok(done)
    } else {
        Err(Error::Closed {
            what: "the append this retries was written but is not acknowledged (its sync failed)",
        })
    }
}

/// Indexes what other writers appended to the partition (waiting, briefly, for it to be
/// readable).
fn catch_up(part: &Part) -> Result<()> {
    let end = part.handle.log_end_offset();
    if end > part.handle.high_watermark() {
        part.handle
            .wait_for(end - 1, std::time::Duration::from_secs(1));
    }
    part.index.lock().catch_up(&part.handle)
}

/// Whether `actual` is what `expected` says.
fn check_expected(stream: &str, expected: ExpectedVersion, actual: Option<u64>) -> Result<()> {
    let ok = match expected {
        ExpectedVersion::Any => true,
        ExpectedVersion::NoStream => actual.is_none(),
        ExpectedVersion::StreamExists => actual.is_some(),
        ExpectedVersion::Exact(v) => actual == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::WrongExpectedVersion {
            stream: stream.to_string(),
            expected,
            actual,
        })
    }
}

/// The earlier append `ids` retry, when the first id is in the window.
fn retried(
    idx: &PartIndex,
    partition: i32,
    stream: &str,
    ids: &[EventId],
) -> Result<Option<WriteResult>> {
    let Some(first_id) = ids.first() else {
        return Ok(None);
    };
    let Some(first) = idx.seen(first_id) else {
        return Ok(None);
    };
    let me = stream_hash(&idx.hasher, stream.as_bytes());
    let reused = |id: &EventId, reason: &str| Error::EventIdReused {
        stream: stream.to_string(),
        id: id.to_string(),
        reason: reason.to_string(),
    };
    if first.stream != me {
        return Err(reused(first_id, "it is an event of another stream"));
    }
    let mut last = first;
    for (i, id) in ids.iter().enumerate().skip(1) {
        match idx.seen(id) {
            Some(s) if s.stream == me && s.version == first.version + i as u64 => last = s,
            _ => {
                return Err(reused(
                    first_id,
                    "the append is not a retry of the earlier one: its other events differ",
                ));
            }
        }
    }
    Ok(Some(WriteResult {
        first_version: first.version,
        last_version: last.version,
        first_position: EventPosition {
            partition,
            offset: first.offset,
        },
        last_position: EventPosition {
            partition,
            offset: last.offset,
        },
    }))
}

/// What the guard decided, for the append loop.
enum Verdict {
    Undecided,
    /// The append broke the stream's expectation (the error says how).
    Refused,
    /// The stream moved since the batch was encoded (an `Any`/`StreamExists` append): encode
    /// again.
    Reencode,
    /// The partition has records the index has not seen.
    CatchUp,
    /// A retry of an append already in the log.
    Duplicate(WriteResult),
}

/// The per-stream check, run by the partition writer under its lock.
struct StreamGuard<'s> {
    index: &'s Mutex<PartIndex>,
    /// The index, held from a passed check until `settle`.
    held: Option<MutexGuard<'s, PartIndex>>,
    partition: i32,
    stream: &'s str,
    expected: ExpectedVersion,
    /// The version the batch's first event was encoded with.
    first: u64,
    ids: &'s [EventId],
    verdict: Verdict,
}

impl AppendGuard for StreamGuard<'_> {
    fn check(&mut self, base_offset: i64) -> Result<()> {
        let idx = self.index.lock();
        if idx.next != base_offset {
            self.verdict = Verdict::CatchUp;
            return Err(Error::EndOffsetMismatch {
                expected: idx.next,
                actual: base_offset,
            });
        }
        match retried(&idx, self.partition, self.stream, self.ids) {
            Ok(Some(done)) => {
                self.verdict = Verdict::Duplicate(done);
                return Err(Error::Closed {
                    what: "a retried append is already in the log",
                });
            }
            Ok(None) => {}
            Err(e) => {
                self.verdict = Verdict::Refused;
                return Err(e);
            }
        }
        let actual = idx.version(self.stream.as_bytes());
        if let Err(e) = check_expected(self.stream, self.expected, actual) {
            self.verdict = Verdict::Refused;
            return Err(e);
        }
        if actual.map_or(0, |v| v.saturating_add(1)) != self.first {
            self.verdict = Verdict::Reencode;
            return Err(Error::WrongExpectedVersion {
                stream: self.stream.to_string(),
                expected: self.expected,
                actual,
            });
        }
        self.held = Some(idx);
        Ok(())
    }

    fn settle(&mut self, outcome: std::result::Result<(AppendResult, BatchLocation), &Error>) {
        let Some(mut idx) = self.held.take() else {
            return;
        };
        let Ok((r, at)) = outcome else {
            return;
        };
        let added = idx.add_run(
            self.stream.as_bytes(),
            self.first,
            self.ids,
            r.base_offset,
            at,
        );
        if added.is_ok() {
            idx.next = r.last_offset + 1;
        }
        // Else the events are in the log and the index still ends where it did: the next
        // append finds the offsets it has not seen and catches up from the log (entries of
        // this batch that made it in are then duplicates it skips).
    }
}

/// Reads the events `entries` name (in order) into `out`: one engine call for all their
/// batches, each batch checked and decoded once.
fn load_events(part: &Part, stream: &str, entries: &[Entry], out: &mut StreamEvents) -> Result<()> {
    let p = part.handle.partition();
    let start = part.handle.log_start_offset();
    // Entries of one batch are adjacent (an append is one batch): one read per group.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut wanted = Vec::new();
    let mut i = 0;
    while let Some(first) = entries.get(i) {
        let mut j = i + 1;
        while entries.get(j).is_some_and(|e| e.location == first.location) {
            j += 1;
        }
        groups.push((i, j));
        wanted.push((first.location, first.offset));
        i = j;
    }
    let mut batches = Vec::with_capacity(wanted.len());
    part.handle.read_batches_at(&wanted, &mut batches)?;
    let mut shared = Shared::for_stream(stream);
    for ((i, j), batch) in groups.into_iter().zip(batches) {
        let group = entries.get(i..j).unwrap_or_default();
        let Some(first) = group.first() else { continue };
        if first.offset < start {
            out.removed_by_retention += group.iter().filter(|e| e.offset < start).count() as u64;
            continue;
        }
        // A location gone stale (the files were rewritten) is looked up by offset.
        let found = match batch {
            Some(b) => Some(b),
            None => batch_by_offset(&part.handle, first.offset)?,
        };
        let Some(batch) = found else {
            out.removed_by_retention += group.len() as u64;
            continue;
        };
        batch.verify_crc()?;
        let bytes = batch.as_bytes();
        let at = out.events.len();
        // What the batch holds must be the stream's event at that version: a location that
        // went stale could name another record.
        let mine = |ev: &RecordedEvent, e: &Entry| ev.version == e.version && ev.stream == stream;
        if let [only] = group {
            batch.for_each_record(|r| {
                if r.offset == only.offset
                    && let Some(ev) = recorded(&r, bytes, p, &mut shared)
                    && mine(&ev, only)
                {
                    out.events.push(ev);
                }
            })?;
        } else {
            batch.for_each_record(|r| {
                if let Some(e) = group.iter().find(|e| e.offset == r.offset)
                    && let Some(ev) = recorded(&r, bytes, p, &mut shared)
                    && mine(&ev, e)
                {
                    out.events.push(ev);
                }
            })?;
            // The batch holds them in log order; a backwards read wants them reversed.
            if group.first().map(|e| e.offset) > group.last().map(|e| e.offset)
                && let Some(mine) = out.events.get_mut(at..)
            {
                mine.reverse();
            }
        }
    }
    Ok(())
}

/// The batch holding `offset`, looked up by offset (when a location went stale).
fn batch_by_offset(handle: &PartitionHandle, offset: i64) -> Result<Option<Batch>> {
    match handle.read(offset, 1) {
        Ok(r) => Ok(r
            .batches
            .into_iter()
            .find(|b| b.base_offset() <= offset && offset <= b.last_offset())),
        Err(Error::OffsetOutOfRange { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
