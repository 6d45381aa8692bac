//! [`Log`]: a data directory holding topics. Owns the directory lock, the topic catalog,
//! checkpoints and the background flusher.
//!
//! - `open`: looking at the directory, settling what a crash left, loading every partition;
//! - `catalog`: topic metadata files and topic admin (create, alter, add partitions, delete);
//! - `background`: the flusher thread, maintenance (retention, compaction) and checkpoints;
//! - `producer_ids`: the producer-id registry;
//! - `report`: what an open found and did ([`RecoveryReport`]);
//! - `services`: the registration through which the log drives parts above it;
//! - `handle`: [`PartitionHandle`], the caller's entry point for appends and reads;
//! - `topic`: a topic's partitions and its default partitioner;
//! - `data_dir`: the data directory's identity and the folders it sets aside.

mod background;
mod catalog;
pub(crate) mod data_dir;
mod handle;
mod open;
mod producer_ids;
mod report;
pub(crate) mod services;
pub(crate) mod topic;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::config::LogOptions;
use crate::error::{Error, Result};
use crate::io::{ops, write_atomic};
use crate::layout::{
    CLEAN_SHUTDOWN_ASIDE, CLEAN_SHUTDOWN_FILE, OFFSETS_TOPIC, PRODUCER_IDS_FILE,
    TRANSACTION_STATE_TOPIC,
};
use crate::partition::read::ReadResult;
use crate::partition::{AppendResult, Partition, PartitionStats, Shared};
use crate::record::Record;
use crate::types::TopicPartition;
use background::FlusherCtl;
use catalog::offsets_topic_config;
pub use catalog::{PartitionDescription, TopicDescription};
pub use handle::PartitionHandle;
pub(crate) use handle::{Encodable, with_encoded};
use producer_ids::ProducerRegistry;
pub use report::{CommittedPastEnd, RecoveryReport, TxnCompleted};
use services::Services;
use topic::{Topic, partition_for_key};

/// An open data directory. `Send + Sync`: share it with `Arc` or hand out
/// [`PartitionHandle`]s. Dropping it closes it (best effort); call [`Log::close`] to see errors.
///
/// ```
/// use topiclog::{Log, Record};
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path())?;
/// log.create_topic("events", 3)?;
/// let p = log.partition("events", 0)?;
/// let at = p.append(&[Record::new("hello").key("k1")])?;
/// let got = p.records(at.base_offset, 1 << 20)?;
/// assert_eq!(got[0].value.as_deref(), Some(&b"hello"[..]));
/// log.close()?;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
pub struct Log {
    pub(crate) inner: Arc<LogInner>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.inner.dir)
            .field("read_only", &self.inner.shared.read_only)
            .finish_non_exhaustive()
    }
}

/// Counters for the whole log, from [`Log::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// One entry per partition.
    pub partitions: Vec<PartitionStats>,
    /// Write descriptors open now.
    pub open_files: usize,
    /// Segments mapped now.
    pub mapped_segments: usize,
}

pub(crate) struct LogInner {
    /// The parts above the log it drives without naming them (the group coordinator).
    pub(crate) services: Services,
    pub(crate) producer_ids: Mutex<ProducerRegistry>,
    pub(crate) dir: PathBuf,
    pub(crate) options: LogOptions,
    pub(crate) shared: Arc<Shared>,
    pub(crate) lock: Mutex<Option<File>>,
    pub(crate) topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes topic creation, deletion and config changes.
    pub(crate) catalog: Mutex<()>,
    pub(crate) closed: AtomicBool,
    pub(crate) flusher: Mutex<Option<(JoinHandle<()>, Arc<FlusherCtl>)>>,
    /// Set once the groups are loaded (it names groups whose offsets recovery affected).
    pub(crate) report: std::sync::OnceLock<RecoveryReport>,
    /// From `topiclog.properties`; `None` in a read-only open of a directory without one.
    pub(crate) directory_id: Option<String>,
    /// When the checkpoints were last written; held while they are written.
    pub(crate) last_checkpoint: Mutex<Instant>,
    pub(crate) last_maintenance: Mutex<Instant>,
}

impl Log {
    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// True when opened with [`LogOptions::read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.shared.read_only
    }

    /// What opening the directory found: per partition, what was scanned and cut; whether
    /// the directory was adopted; topics rebuilt and strays set aside. See
    /// [`RecoveryReport::notices`] for the same as lines for a person.
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.append("events", 0, &[Record::new("a")])?;
    /// log.abandon(); // as if the process had died
    /// let log = Log::open(dir.path())?;
    /// let report = log.recovery_report();
    /// assert!(!report.clean);
    /// for line in report.notices() {
    ///     eprintln!("{line}");
    /// }
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.inner.report.get_or_init(RecoveryReport::default)
    }

    /// The data directory's id (22 characters, Kafka's UUID text form), from its
    /// `topiclog.properties`; `None` in a read-only open of a directory written by a
    /// topiclog from before that file.
    pub fn directory_id(&self) -> Option<&str> {
        self.inner.directory_id.as_deref()
    }

    /// A fresh producer id (and epoch) for idempotent appends; with a name, the same id as
    /// before with the next epoch, fencing the older holder. Persisted (fsynced) before it
    /// is returned.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a name with whitespace; I/O errors; [`Error::ReadOnly`].
    pub fn init_producer_id(&self, name: Option<&str>) -> Result<(i64, i16)> {
        self.inner.check_writable()?;
        self.inner.init_producer_id(name)
    }

    /// A handle to one partition (cheap to clone, `Send + Sync`). Keep it for repeated use:
    /// it skips the topic lookup.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::PartitionNotFound`].
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 2)?;
    /// let p = log.partition("events", 1)?; // keep it: appends through it skip the lookup
    /// p.append(&[Record::new("first")])?;
    /// assert_eq!(p.log_end_offset(), 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn partition(&self, topic: &str, partition: i32) -> Result<PartitionHandle> {
        self.inner.check_open()?;
        let t = self.inner.topic(topic)?;
        Ok(PartitionHandle::new(
            Arc::clone(&self.inner),
            t.partition(partition)?,
        ))
    }

    /// Appends records to a partition as one atomic batch. See [`PartitionHandle::append`].
    ///
    /// # Errors
    /// As [`PartitionHandle::append`], plus topic and partition lookups.
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// let at = log.append("events", 0, &[Record::new("a").key("k"), Record::new("b")])?;
    /// assert_eq!((at.base_offset, at.last_offset), (0, 1));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn append(&self, topic: &str, partition: i32, records: &[Record]) -> Result<AppendResult> {
        self.partition(topic, partition)?.append(records)
    }

    /// Reads whole batches from `offset`. See [`PartitionHandle::read`].
    ///
    /// # Errors
    /// As [`PartitionHandle::read`].
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.append("events", 0, &[Record::new("a"), Record::new("b")])?;
    /// let got = log.read("events", 0, 0, 1 << 20)?;
    /// let values: Vec<_> = got.records_from(0)?.into_iter().map(|r| r.value).collect();
    /// assert_eq!(values.len(), 2);
    /// assert_eq!(got.next_offset(), Some(2));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        self.partition(topic, partition)?.read(offset, max_bytes)
    }

    /// The partition Kafka's default partitioner picks: murmur2 of the key for keyed records
    /// (the partition Kafka's Java client picks for the same key and partition count), sticky
    /// placement for keyless ones.
    ///
    /// `size` is the size in bytes of the record about to be sent, and matters only for keyless
    /// records: keyless records stick to one partition until about 16 KiB (Kafka's default
    /// `batch.size`) went there in total, then move to another partition at random, so batches
    /// fill before placement moves on. Pass the record's serialized size (key plus value is a
    /// fine estimate), or 0 to stay on the current partition. Keyed records ignore it.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`].
    ///
    /// ```
    /// use topiclog::{Log, partition_for_key};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("orders", 6)?;
    /// let p = log.partition_for("orders", Some(b"customer-7"), 0)?;
    /// assert_eq!(p, partition_for_key(b"customer-7", 6)); // stable for a key
    /// let keyless = log.partition_for("orders", None, 120)?; // a 120-byte record
    /// assert!((0..6).contains(&keyless));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn partition_for(&self, topic: &str, key: Option<&[u8]>, size: usize) -> Result<i32> {
        partition_for(&self.inner, topic, key, size)
    }

    /// Every partition of every topic.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        self.inner
            .all_partitions()
            .iter()
            .map(|p| TopicPartition::new(p.topic.as_ref(), p.id))
            .collect()
    }

    /// Syncs everything written so far to stable storage and writes checkpoints.
    ///
    /// # Errors
    /// The first fsync or checkpoint failure (the partition is then poisoned).
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?; // the default flush policy leaves syncing to the OS
    /// log.append("events", 0, &[Record::new("a")])?;
    /// log.flush()?; // now it survives a power loss too
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn flush(&self) -> Result<()> {
        self.inner.check_open()?;
        if self.inner.shared.read_only {
            return Ok(());
        }
        for p in self.inner.all_partitions() {
            p.flush()?;
        }
        self.inner.write_checkpoints()
    }

    /// Counters per partition.
    pub fn stats(&self) -> LogStats {
        LogStats {
            partitions: self
                .inner
                .all_partitions()
                .iter()
                .map(|p| p.stats())
                .collect(),
            open_files: self.inner.shared.fds.open(),
            mapped_segments: self.inner.shared.maps.count(),
        }
    }

    /// Closes the log: stops the flusher, syncs every partition, writes checkpoints and the
    /// clean-shutdown marker, and releases the lock. The next open then trusts the indexes and
    /// scans nothing but the active segments' last batches (see `docs/durability.md`).
    ///
    /// Handles that outlive the log (consumers, producers, partition handles) fail with
    /// [`Error::Closed`] from now on and write nothing. Close or drop producers first: records
    /// a live producer still has queued then fail rather than being stored.
    ///
    /// # Errors
    /// The first error; the marker is then not written, so the next open recovers.
    ///
    /// ```
    /// use topiclog::Log;
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("events", 1)?;
    /// log.close()?; // errors here mean the next open recovers
    /// assert!(Log::open(dir.path())?.recovery_report().clean);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn close(self) -> Result<()> {
        self.inner.close()
    }

    /// Drops the log as if the process had crashed: no sync, no checkpoint, no clean-shutdown
    /// marker; only the lock is released (as the kernel would). The next open recovers. For
    /// testing what recovery does with what reached the files.
    pub fn abandon(self) {
        self.inner.abandon();
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.inner.close();
    }
}

impl LogInner {
    pub(crate) fn init_producer_id(&self, name: Option<&str>) -> Result<(i64, i16)> {
        self.init_producer_id_of(name, false)
    }

    /// The next epoch of a producer name or (with `transactional`) a transactional id,
    /// persisted: the older holders are fenced.
    pub(crate) fn init_producer_id_of(
        &self,
        name: Option<&str>,
        transactional: bool,
    ) -> Result<(i64, i16)> {
        let mut reg = self.producer_ids.lock();
        let out = reg.next_of(name, transactional)?;
        reg.save(&self.dir.join(PRODUCER_IDS_FILE))?;
        Ok(out)
    }

    /// Fails with [`Error::Fenced`] when a newer instance of the named producer exists.
    pub(crate) fn check_epoch(
        &self,
        name: Option<&str>,
        producer_id: i64,
        epoch: i16,
    ) -> Result<()> {
        let Some(name) = name else { return Ok(()) };
        match self.producer_ids.lock().names.get(name) {
            Some(&(id, current)) if id == producer_id && current > epoch => Err(Error::Fenced {
                producer_id,
                epoch,
                current_epoch: current,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed { what: "the log" })
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.shared.read_only {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.topics
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TopicNotFound {
                topic: name.to_string(),
            })
    }

    pub(crate) fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.read().clone())
            .collect()
    }

    pub(crate) fn abandon(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stop_flusher();
        for p in self.all_partitions() {
            p.abandon();
        }
        self.lock.lock().take();
    }

    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_flusher();
        if self.shared.read_only {
            return Ok(());
        }
        self.services.close_all();
        let parts = self.all_partitions();
        let mut first_err = None;
        for p in &parts {
            if let Err(e) = p.close() {
                first_err.get_or_insert(e);
            }
            p.waiters.wake_all();
        }
        if let Err(e) = self.write_checkpoints() {
            first_err.get_or_insert(e);
        }
        if let Some(e) = first_err {
            self.lock.lock().take();
            return Err(e);
        }
        // The marker the open moved aside goes now, off the open's path: left in place, the
        // next open's rename onto it would delete it there. Best effort: nothing depends on
        // it, and a failure must not cost the next open its clean start.
        let _ = ops::remove_file(&self.dir.join(CLEAN_SHUTDOWN_ASIDE));
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        let written = write_atomic(&marker, b"{\"version\":0,\"brokerEpoch\":0}");
        self.lock.lock().take();
        written
    }

    /// Registered partitions of a topic, for handles.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// True for Kafka's internal topics, `__consumer_offsets` and `__transaction_state`: only
/// topiclog writes them. Public handles, producers and adapters get
/// [`Error::InternalTopic`] when they append to, delete or repartition one.
pub fn is_internal_topic(name: &str) -> bool {
    name == OFFSETS_TOPIC || name == TRANSACTION_STATE_TOPIC
}

/// A partition handle by name (for producers and consumers).
pub(crate) fn handle_for(
    log: &Arc<LogInner>,
    topic: &str,
    partition: i32,
) -> Result<PartitionHandle> {
    log.check_open()?;
    let t = log.topic(topic)?;
    Ok(PartitionHandle::new(
        Arc::clone(log),
        t.partition(partition)?,
    ))
}

/// Kafka's default partitioner over a topic by name.
pub(crate) fn partition_for(
    log: &LogInner,
    topic: &str,
    key: Option<&[u8]>,
    size: usize,
) -> Result<i32> {
    let t = log.topic(topic)?;
    let n = t.partition_count();
    Ok(match key {
        Some(k) => partition_for_key(k, n),
        None => t.sticky.partition(n, size),
    })
}

/// Partitions of a topic by name.
pub(crate) fn partition_count(log: &LogInner, topic: &str) -> Result<i32> {
    Ok(log.topic(topic)?.partition_count())
}

/// Partition behaviour seen through a whole log (rolls, poisoning), with the partition's
/// internals at hand.
#[cfg(test)]
mod partition_tests;
