//! [`Log`]: a data directory holding topics. Owns the directory lock, the topic catalog,
//! checkpoints and the background flusher.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::checkpoint::{
    self, CLEAN_SHUTDOWN_ASIDE, CLEAN_SHUTDOWN_FILE, CLEANER_FILE, LOG_START_FILE,
    RECOVERY_POINT_FILE,
};
use crate::cleaner::{MaintenanceReport, compact, retention};
use crate::clock::now_ms;
use crate::config::{LogOptions, TopicConfig};
use crate::consumer::{Consumer, ConsumerConfig};
use crate::data_dir::{self, DirState, LOCK_FILE, TOPICS_DIR};
use crate::error::{Error, IoContext, Result};
use crate::group::coordinator::{Coordinator, GroupState, MemberDescription};
use crate::group::offsets::{OFFSETS_TOPIC, OffsetAndMetadata, OffsetStore};
use crate::handle::PartitionHandle;
use crate::io::{ops, sync_dir, write_atomic, write_atomic_via};
use crate::partition::read::ReadResult;
use crate::partition::{Partition, PartitionRecovery, PartitionStats};
use crate::partition::{Shared, default_fd_budget};
use crate::producer::{Producer, ProducerConfig};
use crate::record::Record;
use crate::recovery_report::CommittedPastEnd;
use crate::topic::{MAX_PARTITIONS, Topic, partition_for_key, validate_topic_name};
use crate::{AppendResult, TopicPartition};

/// Temp file for topic metadata writes (outside `.topics`, so it can never be taken for a
/// topic; writes are serialized by the catalog lock).
const TOPIC_TMP: &str = ".topic-metadata.tmp";
/// Folder of tombstones: a topic's metadata file moves here first when it is deleted, so an
/// open after a crash knows the partition directories left behind were being deleted (and
/// does not take them for a topic whose metadata file was lost).
const DELETING_DIR: &str = ".topics-deleting";

/// What `Log::open` found and did, partition by partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// True when the previous `Log` closed cleanly (indexes were trusted, nothing scanned).
    pub clean: bool,
    /// One entry per partition.
    pub partitions: Vec<PartitionRecovery>,
    /// True when this open adopted a data directory written by a topiclog from before the
    /// identity file (`topiclog.properties`), and wrote that file.
    pub adopted: bool,
    /// Topics whose metadata file (`.topics/<topic>`) was missing, rebuilt from partition
    /// directories contiguous from 0 with the default config, `cleanup.policy=delete` and
    /// unlimited retention, and marked `recovered=true` in the rebuilt file.
    pub topics_rebuilt: Vec<String>,
    /// Partition directories no topic owns (no metadata, not contiguous from partition 0, or
    /// past a topic's partition count), moved aside as `<topic>-<n>.<nonce>-stray`, as Kafka
    /// names stray partitions. Never deleted: move one back (renamed to `<topic>-<n>`) to
    /// recover it.
    pub strays: Vec<PathBuf>,
    /// Topics whose deletion a crash interrupted, finished by this open.
    pub deletes_completed: Vec<String>,
    /// Committed offsets past their partition's log end once everything was loaded (the
    /// unsynced tail an `Os` crash lost): those consumers reset per `auto.offset.reset`.
    pub committed_past_end: Vec<CommittedPastEnd>,
    /// Groups named by commits in a damaged part of `__consumer_offsets` (or in a batch whose
    /// checksum failed when the commits were loaded): their offsets may be
    /// older than what they last committed, or gone. Damage there with none named here means
    /// the commits lost cannot be attributed (see [`RecoveryReport::damage_lines`]).
    pub lost_commit_groups: Vec<String>,
}

impl RecoveryReport {
    /// Total bytes cut from torn or corrupt tails.
    pub fn truncated_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.truncated_bytes).sum()
    }

    /// Partitions where anything was cut, deleted or found damaged at rest.
    pub fn damaged(&self) -> impl Iterator<Item = &PartitionRecovery> {
        self.partitions
            .iter()
            .filter(|p| p.truncated_bytes > 0 || p.segments_deleted > 0 || !p.damage.is_empty())
    }

    /// What the open did to the directory, one line each, for a person (the CLI prints
    /// these on stderr): adoption, rebuilt topics, strays set aside, completed deletes, then
    /// [`RecoveryReport::damage_lines`]. Empty when there is nothing to tell.
    pub fn notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.adopted {
            out.push(format!(
                "adopted a data directory from an earlier topiclog (wrote {})",
                data_dir::IDENTITY_FILE
            ));
        }
        for t in &self.topics_rebuilt {
            out.push(format!(
                "topic '{t}': its metadata file was missing; rebuilt from its partition \
                 directories with the default config (cleanup.policy=delete, unlimited \
                 retention), marked recovered=true: check its config"
            ));
        }
        for s in &self.strays {
            out.push(format!(
                "stray partition directory moved aside, not deleted: {}",
                s.display()
            ));
        }
        for t in &self.deletes_completed {
            out.push(format!(
                "topic '{t}': finished its deletion, interrupted by a crash"
            ));
        }
        out.extend(self.damage_lines());
        out
    }
}

/// Per-partition bounds and size, from [`Log::describe_topic`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionDescription {
    /// Partition number.
    pub partition: i32,
    /// First readable offset.
    pub log_start_offset: i64,
    /// Next offset to be written.
    pub log_end_offset: i64,
    /// End visible to readers (below `log_end_offset` only under `EveryBatch` while a sync is
    /// in flight).
    pub high_watermark: i64,
    /// Bytes on disk in segment logs.
    pub size_bytes: u64,
    /// Number of segments.
    pub segments: usize,
}

/// A topic's config and partitions, from [`Log::describe_topic`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Its config.
    pub config: TopicConfig,
    /// Its partitions in order.
    pub partitions: Vec<PartitionDescription>,
    /// True when an open rebuilt its metadata from its partition directories (the metadata
    /// file was missing): the config is the default, not necessarily the one it was created
    /// with. See [`RecoveryReport::topics_rebuilt`].
    pub recovered: bool,
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

struct FlusherCtl {
    stop: AtomicBool,
}

pub(crate) struct LogInner {
    coordinator: std::sync::OnceLock<Coordinator>,
    producer_ids: Mutex<ProducerRegistry>,
    dir: PathBuf,
    options: LogOptions,
    pub(crate) shared: Arc<Shared>,
    lock: Mutex<Option<File>>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serializes topic creation, deletion and config changes.
    catalog: Mutex<()>,
    closed: AtomicBool,
    flusher: Mutex<Option<(JoinHandle<()>, Arc<FlusherCtl>)>>,
    /// Set once the groups are loaded (it names groups whose offsets recovery affected).
    report: std::sync::OnceLock<RecoveryReport>,
    /// From `topiclog.properties`; `None` in a read-only open of a directory without one.
    directory_id: Option<String>,
    /// When the checkpoints were last written; held while they are written.
    last_checkpoint: Mutex<Instant>,
    last_maintenance: Mutex<Instant>,
}

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

fn topic_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(TOPICS_DIR).join(name)
}

/// A topic's metadata as its file holds it.
struct TopicMeta {
    partitions: i32,
    config: TopicConfig,
    /// Rebuilt by an open that found the file missing (`recovered=true`).
    recovered: bool,
}

fn partition_dir(dir: &Path, topic: &str, p: i32) -> PathBuf {
    dir.join(format!("{topic}-{p}"))
}

/// Reads a topic metadata file: partition count and config.
fn read_topic_file(path: &Path) -> Result<TopicMeta> {
    let text = ops::read_to_string(path).at(path)?;
    let mut config = TopicConfig::default();
    let mut partitions = None;
    let mut recovered = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                position: 0,
                reason: format!("line '{line}' is not key=value"),
            });
        };
        if k == "partitions" {
            partitions = v.trim().parse::<i32>().ok();
        } else if k == "recovered" {
            recovered = v.trim() == "true";
        } else {
            config.set(k, v).map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                position: 0,
                reason: e.to_string(),
            })?;
        }
    }
    let partitions = partitions
        .filter(|&n| n > 0)
        .ok_or_else(|| Error::Corrupt {
            path: path.to_path_buf(),
            position: 0,
            reason: "missing or invalid partitions=".into(),
        })?;
    Ok(TopicMeta {
        partitions,
        config,
        recovered,
    })
}

fn write_topic_file(dir: &Path, name: &str, meta: &TopicMeta) -> Result<()> {
    let TopicMeta {
        partitions,
        config,
        recovered,
    } = meta;
    let mut text = format!("# topiclog topic {name}\npartitions={partitions}\n");
    if *recovered {
        text.push_str(
            "# Rebuilt from its partition directories: the metadata file was missing.\n\
             recovered=true\n",
        );
    }
    for (k, v) in config.to_properties() {
        text.push_str(k);
        text.push('=');
        text.push_str(&v);
        text.push('\n');
    }
    write_atomic_via(
        &topic_file(dir, name),
        &dir.join(TOPIC_TMP),
        text.as_bytes(),
    )
}

impl Log {
    /// Opens (creating if needed) a data directory with default options: an exclusive lock,
    /// recovery of every partition, and a background flusher.
    ///
    /// # Errors
    /// [`Error::AlreadyLocked`] when another `Log` (in this or another process) owns the
    /// directory; I/O errors; [`Error::Corrupt`] for unreadable topic metadata.
    pub fn open(dir: impl AsRef<Path>) -> Result<Log> {
        LogOptions::default().open(dir)
    }

    pub(crate) fn open_with(dir: &Path, options: LogOptions) -> Result<Log> {
        options.validate()?;
        let read_only = options.read_only;
        let dir = dir.to_path_buf();
        // Looked at before anything is written: a folder that is not a data directory is
        // refused without so much as a lock file left in it.
        let mut state = data_dir::inspect(&dir)?;
        let lock = if read_only {
            if matches!(state, DirState::Missing) {
                return Err(Error::io(
                    &dir,
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no such data directory"),
                ));
            }
            None
        } else {
            fs::create_dir_all(&dir).at(&dir)?;
            let path = dir.join(LOCK_FILE);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .at(&path)?;
            match f.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(Error::AlreadyLocked { path: dir.clone() });
                }
                Err(fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            if !matches!(state, DirState::Identified(_)) {
                // Another process may have made it a data directory before we held the lock.
                state = data_dir::inspect(&dir)?;
            }
            Some(f)
        };
        let mut report = RecoveryReport::default();
        let directory_id = match state {
            DirState::Identified(id) if id.directory_id.is_empty() && !read_only => {
                Some(data_dir::write_identity(&dir)?.directory_id)
            }
            DirState::Identified(id) => Some(id.directory_id).filter(|i| !i.is_empty()),
            // Read-only opens never write the identity.
            _ if read_only => None,
            DirState::Missing | DirState::Empty => {
                Some(data_dir::write_identity(&dir)?.directory_id)
            }
            DirState::Legacy => {
                report.adopted = true;
                Some(data_dir::write_identity(&dir)?.directory_id)
            }
        };
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        if clean && !read_only {
            // Take the marker away before loading: a crash while loading counts as unclean.
            // It is moved aside rather than deleted: deleting frees its data block, and on a
            // file system mounted with `discard` the unlink then waits for the device, behind
            // whatever writeback is in progress (most of a clean open's time after a large
            // write). The next clean close deletes it.
            let aside = dir.join(CLEAN_SHUTDOWN_ASIDE);
            if ops::rename(&marker, &aside).is_err() {
                // Something in the way (a directory by that name): delete the marker instead.
                ops::remove_file(&marker).at(&marker)?;
            }
            sync_dir(&dir)?;
        }
        if clean && !read_only {
            for name in [RECOVERY_POINT_FILE, LOG_START_FILE, CLEANER_FILE] {
                checkpoint::mark_durable(&dir.join(name));
            }
        }
        let recovery_points = checkpoint::read(&dir.join(RECOVERY_POINT_FILE));
        let log_starts = checkpoint::read(&dir.join(LOG_START_FILE));
        let clean_ends = checkpoint::read(&dir.join(CLEANER_FILE));
        let max_files = options.max_open_files.unwrap_or_else(default_fd_budget);
        let shared = Arc::new(Shared::new(
            read_only,
            options.max_mapped_segments,
            max_files,
        ));
        let topics_dir = dir.join(TOPICS_DIR);
        if !read_only && !topics_dir.is_dir() {
            fs::create_dir_all(&topics_dir).at(&topics_dir)?;
        }
        report.clean = clean;
        if !read_only {
            finish_deletes(&dir, &mut report)?;
        }
        let mut topics = BTreeMap::new();
        let mut names = Vec::new();
        if topics_dir.is_dir() {
            for entry in fs::read_dir(&topics_dir).at(&topics_dir)? {
                let entry = entry.at(&topics_dir)?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if validate_topic_name(name).is_ok() {
                    names.push(name.to_string());
                }
            }
        }
        let mut metas = BTreeMap::new();
        for name in names {
            let meta = read_topic_file(&topic_file(&dir, &name))?;
            metas.insert(name, meta);
        }
        if !read_only {
            settle_partition_dirs(&dir, &mut metas, &mut report)?;
        }
        for (name, meta) in metas {
            let count = meta.partitions;
            let config = Arc::new(meta.config);
            let tname: Arc<str> = Arc::from(name.as_str());
            let mut parts = Vec::with_capacity(count as usize);
            for p in 0..count {
                let key = (name.clone(), p);
                let part = Partition::open(
                    &shared,
                    &tname,
                    p,
                    partition_dir(&dir, &name, p),
                    Arc::clone(&config),
                    clean,
                    (
                        recovery_points.get(&key).copied(),
                        log_starts.get(&key).copied(),
                    ),
                )?;
                if let Some(r) = part.recovery_report() {
                    report.partitions.push(r);
                }
                if let Some(&c) = clean_ends.get(&key) {
                    part.set_clean_end(c.min(part.log_end()));
                }
                parts.push(part);
            }
            let mut topic = Topic::new(tname, config, parts);
            topic.recovered = meta.recovered;
            topics.insert(name, Arc::new(topic));
        }
        let producer_ids = ProducerRegistry::load(&dir.join(PRODUCER_IDS_FILE));
        let inner = Arc::new(LogInner {
            coordinator: std::sync::OnceLock::new(),
            producer_ids: Mutex::new(producer_ids),
            dir,
            options,
            shared,
            lock: Mutex::new(lock),
            topics: RwLock::new(topics),
            catalog: Mutex::new(()),
            closed: AtomicBool::new(false),
            flusher: Mutex::new(None),
            report: std::sync::OnceLock::new(),
            directory_id,
            last_checkpoint: Mutex::new(Instant::now()),
            last_maintenance: Mutex::new(Instant::now()),
        });
        let log = Log { inner };
        log.start_groups()?;
        crate::recovery_report::check_commits(&log.inner, &mut report)?;
        let _ = log.inner.report.set(report);
        if !read_only {
            log.inner.write_checkpoints()?;
            if let Some(tick) = log.inner.options.flusher_tick {
                start_flusher(&log.inner, tick);
            }
        }
        Ok(log)
    }

    /// Creates `__consumer_offsets` if needed and loads committed offsets from it.
    fn start_groups(&self) -> Result<()> {
        if !self.inner.shared.read_only && !self.inner.topics.read().contains_key(OFFSETS_TOPIC) {
            self.create_topic_unchecked(OFFSETS_TOPIC, 1, offsets_topic_config()?)?;
        }
        let partition = self
            .inner
            .topics
            .read()
            .get(OFFSETS_TOPIC)
            .and_then(|t| t.partition(0).ok());
        let store = OffsetStore::load(partition)?;
        let _ = self.inner.coordinator.set(Coordinator::new(store));
        Ok(())
    }

    /// A producer. See [`ProducerConfig`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`]; I/O errors persisting a producer id; [`Error::ReadOnly`].
    pub fn producer(&self, config: ProducerConfig) -> Result<Producer> {
        self.inner.check_writable()?;
        Producer::new(Arc::clone(&self.inner), config)
    }

    /// A consumer. See [`ConsumerConfig`].
    ///
    /// # Errors
    /// [`Error::InvalidConfig`].
    pub fn consumer(&self, config: ConsumerConfig) -> Result<Consumer> {
        Consumer::new(Arc::clone(&self.inner), config)
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
    pub fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        if !self.list_groups().iter().any(|g| g == group) {
            return Err(Error::GroupNotFound {
                group: group.to_string(),
            });
        }
        let c = self.inner.coordinator();
        let (state, generation, protocol, members) = c.describe(group);
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
            state,
            generation,
            protocol,
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

    /// Deletes a group's committed offsets (and its generation record), while it has no
    /// active member. Returns how many offsets were deleted.
    ///
    /// # Errors
    /// [`Error::GroupNotEmpty`]; [`Error::GroupNotFound`]; I/O errors.
    pub fn delete_group(&self, group: &str) -> Result<usize> {
        self.inner.check_writable()?;
        if !self.list_groups().iter().any(|g| g == group) {
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
    pub fn recovery_report(&self) -> &RecoveryReport {
        self.inner.report.get_or_init(RecoveryReport::default)
    }

    /// The data directory's id (22 characters, Kafka's UUID text form), from its
    /// `topiclog.properties`; `None` in a read-only open of a directory written by a
    /// topiclog from before that file.
    pub fn directory_id(&self) -> Option<&str> {
        self.inner.directory_id.as_deref()
    }

    /// The config new topics get unless one is given (see
    /// [`LogOptions::default_topic_config`]); a base for [`Log::create_topic_with`].
    pub fn default_topic_config(&self) -> TopicConfig {
        self.inner.options.default_topic_config.clone()
    }

    /// Creates a topic with `partitions` partitions and the log's default topic config.
    ///
    /// # Errors
    /// [`Error::InvalidTopicName`], [`Error::TopicAlreadyExists`], [`Error::InvalidConfig`]
    /// (partitions outside 1..=[`MAX_PARTITIONS`]), [`Error::ReadOnly`], I/O errors.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let config = self.inner.options.default_topic_config.clone();
        self.create_topic_with(name, partitions, config)
    }

    /// Creates a topic with an explicit config (validated here).
    ///
    /// # Errors
    /// As [`Log::create_topic`]; [`Error::InternalTopic`] for a name topiclog keeps for
    /// itself (`__consumer_offsets`, `__transaction_state`).
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<()> {
        if is_internal_topic(name) {
            return Err(Error::InternalTopic {
                topic: name.to_string(),
                operation: "create",
            });
        }
        self.create_topic_unchecked(name, partitions, config)
    }

    /// Creates a topic, internal names included.
    fn create_topic_unchecked(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<()> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        validate_topic_name(name)?;
        config.validate()?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(Error::invalid_config(
                "partitions",
                format!("must be 1 to {MAX_PARTITIONS}, not {partitions}"),
            ));
        }
        let _g = self.inner.catalog.lock();
        if self.inner.topics.read().contains_key(name) {
            return Err(Error::TopicAlreadyExists {
                topic: name.to_string(),
            });
        }
        let meta = TopicMeta {
            partitions,
            config,
            recovered: false,
        };
        // Metadata first: after a crash, an open finds the topic and creates the partition
        // directories it lacks, instead of finding directories without metadata.
        write_topic_file(&self.inner.dir, name, &meta)?;
        let config = Arc::new(meta.config);
        let tname: Arc<str> = Arc::from(name);
        let opened = open_new_partitions(&self.inner, &tname, 0..partitions, &config);
        let parts = match opened {
            Ok(parts) => parts,
            Err(e) => {
                // Undo: the topic does not exist. Its new directories are topiclog's own and
                // empty; they are removed with the metadata.
                let meta_path = topic_file(&self.inner.dir, name);
                let _ = ops::remove_file(&meta_path);
                for p in 0..partitions {
                    let pdir = partition_dir(&self.inner.dir, name, p);
                    if pdir.is_dir() {
                        let _ = remove_dir_durably(&self.inner.dir, &pdir, name, p);
                    }
                }
                return Err(e);
            }
        };
        // Makes the new partition directories durable.
        sync_dir(&self.inner.dir)?;
        self.inner
            .topics
            .write()
            .insert(name.to_string(), Arc::new(Topic::new(tname, config, parts)));
        Ok(())
    }

    /// Topic names, sorted, without internal topics (as Kafka's admin client lists them).
    pub fn topics(&self) -> Vec<String> {
        self.inner
            .topics
            .read()
            .keys()
            .filter(|t| !is_internal_topic(t))
            .cloned()
            .collect()
    }

    /// Every topic name, internal ones (`__consumer_offsets`) included, sorted.
    pub fn all_topics(&self) -> Vec<String> {
        self.inner.topics.read().keys().cloned().collect()
    }

    /// Config, partitions and per-partition bounds of a topic.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`].
    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let t = self.inner.topic(name)?;
        let partitions = t
            .partitions
            .read()
            .iter()
            .map(|p| PartitionDescription {
                partition: p.id,
                log_start_offset: p.log_start(),
                log_end_offset: p.log_end(),
                high_watermark: p.high_watermark(),
                size_bytes: p.size_bytes(),
                segments: p.segments().len(),
            })
            .collect();
        Ok(TopicDescription {
            name: name.to_string(),
            config: t.config.read().as_ref().clone(),
            partitions,
            recovered: t.recovered,
        })
    }

    /// Number of partitions of a topic.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`].
    pub fn partition_count(&self, topic: &str) -> Result<i32> {
        Ok(self.inner.topic(topic)?.partition_count())
    }

    /// Replaces a topic's config (validated first) and persists it. Changes apply to later
    /// appends and rolls.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::InvalidConfig`], [`Error::ReadOnly`], I/O errors.
    pub fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        config.validate()?;
        let _g = self.inner.catalog.lock();
        let t = self.inner.topic(name)?;
        let config = Arc::new(config);
        write_topic_file(
            &self.inner.dir,
            name,
            &TopicMeta {
                partitions: t.partition_count(),
                config: config.as_ref().clone(),
                recovered: t.recovered,
            },
        )?;
        for p in t.partitions.read().iter() {
            p.set_config(Arc::clone(&config));
        }
        *t.config.write() = config;
        Ok(())
    }

    /// Grows a topic to `total` partitions (partitions are never removed).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `total` is not larger than the current count;
    /// [`Error::TopicNotFound`], [`Error::ReadOnly`], I/O errors.
    pub fn add_partitions(&self, name: &str, total: i32) -> Result<()> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        if is_internal_topic(name) {
            return Err(Error::InternalTopic {
                topic: name.to_string(),
                operation: "add partitions",
            });
        }
        let _g = self.inner.catalog.lock();
        let t = self.inner.topic(name)?;
        let current = t.partition_count();
        if total > MAX_PARTITIONS {
            return Err(Error::invalid_config(
                "partitions",
                format!("a topic has at most {MAX_PARTITIONS} partitions, not {total}"),
            ));
        }
        if total <= current {
            return Err(Error::invalid_config(
                "partitions",
                format!("{total} does not grow the topic's {current} partitions"),
            ));
        }
        let config = Arc::clone(&t.config.read());
        let new = open_new_partitions(&self.inner, &t.name, current..total, &config)?;
        sync_dir(&self.inner.dir)?;
        write_topic_file(
            &self.inner.dir,
            name,
            &TopicMeta {
                partitions: total,
                config: (*config).clone(),
                recovered: t.recovered,
            },
        )?;
        t.partitions.write().extend(new);
        Ok(())
    }

    /// Deletes a topic and its data. Handles to it fail with [`Error::Closed`] afterwards; a
    /// topic created later under the same name starts empty.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::ReadOnly`], I/O errors.
    pub fn delete_topic(&self, name: &str) -> Result<()> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        if is_internal_topic(name) {
            return Err(Error::InternalTopic {
                topic: name.to_string(),
                operation: "delete",
            });
        }
        let _g = self.inner.catalog.lock();
        let t = self.inner.topic(name)?;
        // The metadata moves to a tombstone first: after a crash, the open finds the
        // tombstone and finishes the delete, instead of finding partition directories
        // without metadata (which it keeps, taking them for a lost metadata file).
        let meta = topic_file(&self.inner.dir, name);
        let deleting = self.inner.dir.join(DELETING_DIR);
        ops::create_dir_all(&deleting).at(&deleting)?;
        let tombstone = deleting.join(name);
        ops::rename(&meta, &tombstone).at(&meta)?;
        sync_dir(&self.inner.dir.join(TOPICS_DIR))?;
        sync_dir(&deleting)?;
        sync_dir(&self.inner.dir)?;
        self.inner.topics.write().remove(name);
        for p in t.partitions.read().iter() {
            p.mark_deleted();
            if p.release_idle_files() == Some(true) {
                self.inner.shared.fds.closed();
            }
            remove_dir_durably(&self.inner.dir, &p.dir, name, p.id)?;
        }
        ops::remove_file(&tombstone).at(&tombstone)?;
        Ok(())
    }

    /// A handle to one partition (cheap to clone, `Send + Sync`). Keep it for repeated use:
    /// it skips the topic lookup.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::PartitionNotFound`].
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
    pub fn append(&self, topic: &str, partition: i32, records: &[Record]) -> Result<AppendResult> {
        self.partition(topic, partition)?.append(records)
    }

    /// Reads whole batches from `offset`. See [`PartitionHandle::read`].
    ///
    /// # Errors
    /// As [`PartitionHandle::read`].
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        self.partition(topic, partition)?.read(offset, max_bytes)
    }

    /// The partition Kafka's default partitioner picks: murmur2 of the key for keyed records,
    /// sticky placement for keyless ones.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`].
    pub fn partition_for(&self, topic: &str, key: Option<&[u8]>, size: usize) -> Result<i32> {
        let t = self.inner.topic(topic)?;
        let n = t.partition_count();
        Ok(match key {
            Some(k) => partition_for_key(k, n),
            None => t.sticky.partition(n, size),
        })
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

    /// Runs maintenance now: retention on every partition, compaction where the dirty ratio
    /// (or a passed delete horizon) calls for it, and checkpoint writes. The background thread
    /// runs the same every `maintenance_interval`.
    ///
    /// # Errors
    /// [`Error::ReadOnly`]; the first I/O error.
    pub fn maintain(&self) -> Result<MaintenanceReport> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        self.inner.maintain()
    }

    /// Compacts every partition of a compacted topic now, whatever its dirty ratio, and
    /// reports what it removed.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the topic is not compacted; [`Error::ReadOnly`]; I/O.
    pub fn compact(&self, topic: &str) -> Result<MaintenanceReport> {
        self.compact_until(topic, None)
    }

    /// Test hook: compaction stopped at `crash` as if the process died there.
    #[doc(hidden)]
    pub fn compact_until(
        &self,
        topic: &str,
        crash: Option<compact::CrashPoint>,
    ) -> Result<MaintenanceReport> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        let t = self.inner.topic(topic)?;
        if !t.config.read().cleanup_policy.compacts() {
            return Err(Error::invalid_config(
                "cleanup.policy",
                format!("topic '{topic}' is not compacted"),
            ));
        }
        let mut report = MaintenanceReport::default();
        let now = now_ms();
        for p in t.partitions.read().iter() {
            LogInner::compact_partition(p, now, crash, &mut report)?;
        }
        self.inner.write_checkpoints()?;
        Ok(report)
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
    pub(crate) fn coordinator(&self) -> &Coordinator {
        self.coordinator
            .get_or_init(|| Coordinator::new(OffsetStore::empty()))
    }

    pub(crate) fn init_producer_id(&self, name: Option<&str>) -> Result<(i64, i16)> {
        let mut reg = self.producer_ids.lock();
        let out = reg.next(name)?;
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

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.read().clone())
            .collect()
    }

    /// Writes the recovery-point and log-start checkpoints for every partition.
    pub(crate) fn write_checkpoints(&self) -> Result<()> {
        if self.shared.read_only {
            return Ok(());
        }
        // Writers share each checkpoint's temp file, so they take turns: otherwise one could
        // rename the temp file away while another is still writing it. Taking the snapshot
        // inside the turn also keeps an older snapshot from landing after a newer one.
        let mut last = self.last_checkpoint.lock();
        let parts = self.all_partitions();
        let rp: Vec<_> = parts
            .iter()
            .map(|p| (p.topic.to_string(), p.id, p.recovery_point()))
            .collect();
        let ls: Vec<_> = parts
            .iter()
            .map(|p| (p.topic.to_string(), p.id, p.log_start()))
            .collect();
        let ce: Vec<_> = parts
            .iter()
            .filter(|p| p.clean_end() > 0)
            .map(|p| (p.topic.to_string(), p.id, p.clean_end()))
            .collect();
        checkpoint::write(&self.dir.join(RECOVERY_POINT_FILE), &rp)?;
        checkpoint::write(&self.dir.join(LOG_START_FILE), &ls)?;
        checkpoint::write(&self.dir.join(CLEANER_FILE), &ce)?;
        *last = Instant::now();
        Ok(())
    }

    /// Compacts one partition now, after any pass of it already running.
    fn compact_partition(
        p: &Arc<Partition>,
        now: i64,
        crash: Option<compact::CrashPoint>,
        report: &mut MaintenanceReport,
    ) -> Result<()> {
        // Wait for a pass already running (the background thread's, say) rather than skip:
        // a caller of `maintain` or `compact` expects the segments sealed by now to be done.
        let _running = p.compacting.lock();
        let c = compact::compact(p, now, crash)?;
        if c.segments_in > 0 {
            report.segments_deleted += c.segments_in - c.segments_out;
            report.bytes_reclaimed += c.bytes_in.saturating_sub(c.bytes_out);
            report.records_removed += c.records_removed;
            report.partitions_touched += 1;
        }
        Ok(())
    }

    pub(crate) fn maintain(&self) -> Result<MaintenanceReport> {
        let mut report = MaintenanceReport::default();
        let now = now_ms();
        for p in self.all_partitions() {
            if p.is_deleted() {
                continue;
            }
            let cfg = p.config();
            if cfg.cleanup_policy.compacts()
                && (compact::dirty_ratio(&p) > cfg.min_cleanable_dirty_ratio
                    || now >= p.next_horizon())
            {
                Self::compact_partition(&p, now, None, &mut report)?;
            }
            let (segments, bytes) = retention::apply(&p, now, retention::Rules::All)?;
            if segments > 0 {
                report.segments_deleted += segments;
                report.bytes_reclaimed += bytes;
                report.partitions_touched += 1;
            }
        }
        *self.last_maintenance.lock() = Instant::now();
        self.write_checkpoints()?;
        Ok(report)
    }

    fn flusher_tick(&self) {
        self.coordinator().tick();
        for p in self.all_partitions() {
            // A failure poisons the partition; writers see it.
            let _ = p.flush_tick();
        }
        let due = self.last_checkpoint.lock().elapsed() >= self.options.checkpoint_interval;
        if due {
            let _ = self.write_checkpoints();
        }
        if let Some(every) = self.options.maintenance_interval
            && self.last_maintenance.lock().elapsed() >= every
        {
            let _ = self.maintain();
        }
    }

    fn stop_flusher(&self) {
        if let Some((handle, ctl)) = self.flusher.lock().take() {
            ctl.stop.store(true, Ordering::Release);
            handle.thread().unpark();
            let _ = handle.join();
        }
    }

    fn abandon(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stop_flusher();
        for p in self.all_partitions() {
            p.abandon();
        }
        self.lock.lock().take();
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.stop_flusher();
        if self.shared.read_only {
            return Ok(());
        }
        self.coordinator().wake_all();
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

/// Kafka's transaction log topic: reserved, as in Kafka.
pub(crate) const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

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
    /// The assignor in use.
    pub protocol: Option<String>,
    /// Live members.
    pub members: Vec<MemberDescription>,
    /// Committed offsets, ends and lag per partition.
    pub offsets: Vec<GroupOffset>,
}

const PRODUCER_IDS_FILE: &str = "producer-ids";

/// Persisted producer ids: the next id to hand out, and stable names with their id and epoch.
#[derive(Debug, Default)]
struct ProducerRegistry {
    next_id: i64,
    names: BTreeMap<String, (i64, i16)>,
}

impl ProducerRegistry {
    fn load(path: &Path) -> ProducerRegistry {
        let mut r = ProducerRegistry::default();
        let Ok(text) = fs::read_to_string(path) else {
            return r;
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["next_id", n] => r.next_id = n.parse().unwrap_or(0),
                ["name", name, id, epoch] => {
                    if let (Ok(id), Ok(epoch)) = (id.parse(), epoch.parse()) {
                        r.names.insert((*name).to_string(), (id, epoch));
                    }
                }
                _ => {}
            }
        }
        // Never hand out an id at or below one already named.
        let max_named = r.names.values().map(|(id, _)| *id + 1).max().unwrap_or(0);
        r.next_id = r.next_id.max(max_named);
        r
    }

    fn next(&mut self, name: Option<&str>) -> Result<(i64, i16)> {
        if let Some(n) = name {
            if n.is_empty() || n.chars().any(char::is_whitespace) {
                return Err(Error::invalid_config(
                    "name",
                    "a producer name is non-empty with no whitespace",
                ));
            }
            if let Some((id, epoch)) = self.names.get_mut(n) {
                if *epoch == i16::MAX {
                    // Out of epochs: a new id starts over, as Kafka does.
                    *id = self.next_id;
                    self.next_id += 1;
                    *epoch = 0;
                } else {
                    *epoch += 1;
                }
                return Ok((*id, *epoch));
            }
            let id = self.next_id;
            self.next_id += 1;
            self.names.insert(n.to_string(), (id, 0));
            return Ok((id, 0));
        }
        let id = self.next_id;
        self.next_id += 1;
        Ok((id, 0))
    }

    fn save(&self, path: &Path) -> Result<()> {
        let mut text = format!("next_id {}\n", self.next_id);
        for (name, (id, epoch)) in &self.names {
            let _ = writeln!(text, "name {name} {id} {epoch}");
        }
        write_atomic(path, text.as_bytes())
    }
}

fn start_flusher(inner: &Arc<LogInner>, tick: Duration) {
    let ctl = Arc::new(FlusherCtl {
        stop: AtomicBool::new(false),
    });
    let weak: Weak<LogInner> = Arc::downgrade(inner);
    let c = Arc::clone(&ctl);
    let spawned = std::thread::Builder::new()
        .name("topiclog-flusher".into())
        .spawn(move || {
            while !c.stop.load(Ordering::Acquire) {
                std::thread::park_timeout(tick);
                if c.stop.load(Ordering::Acquire) {
                    break;
                }
                let Some(inner) = weak.upgrade() else { break };
                inner.flusher_tick();
            }
        });
    if let Ok(handle) = spawned {
        *inner.flusher.lock() = Some((handle, ctl));
    }
}

/// `__consumer_offsets`' config: compacted, small segments, every commit synced.
fn offsets_topic_config() -> Result<TopicConfig> {
    TopicConfig::new()
        .with("cleanup.policy", "compact")?
        .with("segment.bytes", "4194304")?
        .with("flush.policy", "every-batch")
}

/// Opens (creating) new partitions `ids` of a topic. A directory already at one of their
/// paths is not topiclog's to delete: it is moved aside as a stray first.
fn open_new_partitions(
    inner: &LogInner,
    topic: &Arc<str>,
    ids: std::ops::Range<i32>,
    config: &Arc<TopicConfig>,
) -> Result<Vec<Arc<Partition>>> {
    let mut parts = Vec::with_capacity(ids.len());
    for p in ids {
        let pdir = partition_dir(&inner.dir, topic, p);
        if pdir.exists() {
            set_aside(&inner.dir, &pdir, topic, p, "stray")?;
        }
        parts.push(Partition::open(
            &inner.shared,
            topic,
            p,
            pdir,
            Arc::clone(config),
            true,
            (None, None),
        )?);
    }
    Ok(parts)
}

/// Renames a partition directory to `<topic>-<p>.<nonce>-<kind>` (a free name) and syncs
/// the data directory. Returns the new path.
fn set_aside(root: &Path, pdir: &Path, topic: &str, partition: i32, kind: &str) -> Result<PathBuf> {
    let nonce = u64::try_from(now_ms()).unwrap_or(0);
    let target = data_dir::free_set_aside_path(root, topic, partition, nonce, kind);
    ops::rename(pdir, &target).at(pdir)?;
    sync_dir(root)?;
    Ok(target)
}

/// Renames a partition directory to `<topic>-<p>.<nonce>-delete` (topic part shortened so
/// the name fits in 255 bytes, as Kafka does) and removes it.
fn remove_dir_durably(root: &Path, pdir: &Path, topic: &str, partition: i32) -> Result<()> {
    let target = set_aside(root, pdir, topic, partition, "delete")?;
    ops::remove_dir_all(&target).at(&target)
}

/// Finishes deletes a crash interrupted: the partition directories of every topic with a
/// tombstone in `.topics-deleting/` and no live metadata, and `*-delete` directories that
/// topiclog named (only names of exactly that form: a user's `backup-delete` stays).
fn finish_deletes(dir: &Path, report: &mut RecoveryReport) -> Result<()> {
    let deleting = dir.join(DELETING_DIR);
    let mut tombstones = Vec::new();
    if deleting.is_dir() {
        for entry in fs::read_dir(&deleting).at(&deleting)? {
            let entry = entry.at(&deleting)?;
            let name = entry.file_name();
            if let Some(name) = name.to_str().filter(|n| validate_topic_name(n).is_ok()) {
                tombstones.push(name.to_string());
            }
        }
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if entry.file_type().at(entry.path())?.is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            entries.push(name.to_string());
        }
    }
    for name in &entries {
        if data_dir::is_set_aside(name, "delete") {
            let path = dir.join(name);
            fs::remove_dir_all(&path).at(&path)?;
        }
    }
    for topic in tombstones {
        // A live metadata file wins: the topic was created again after the delete.
        if !topic_file(dir, &topic).exists() {
            for name in &entries {
                if let Some((t, p)) = data_dir::parse_partition_dir(name)
                    && t == topic
                {
                    remove_dir_durably(dir, &dir.join(name), t, p)?;
                }
            }
            report.deletes_completed.push(topic.clone());
        }
        let tombstone = deleting.join(&topic);
        ops::remove_file(&tombstone).at(&tombstone)?;
    }
    Ok(())
}

/// Partition directories the catalog does not account for. Nothing is deleted: a topic whose
/// metadata file is gone is rebuilt when its directories run from partition 0 without a
/// hole (default config, delete policy, unlimited retention, marked recovered); any other
/// partition directory no topic owns is moved aside as a stray. Both are reported.
fn settle_partition_dirs(
    dir: &Path,
    metas: &mut BTreeMap<String, TopicMeta>,
    report: &mut RecoveryReport,
) -> Result<()> {
    let mut unowned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if !entry.file_type().at(entry.path())?.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let Some((topic, p)) = name.to_str().and_then(data_dir::parse_partition_dir) else {
            continue;
        };
        let owned = metas.get(topic).is_some_and(|m| p < m.partitions);
        if !owned {
            unowned.entry(topic.to_string()).or_default().push(p);
        }
    }
    for (topic, mut ids) in unowned {
        ids.sort_unstable();
        let contiguous = ids.iter().enumerate().all(|(i, &p)| p == i as i32);
        let rebuildable = if topic == OFFSETS_TOPIC {
            ids == [0]
        } else {
            contiguous && !is_internal_topic(&topic)
        };
        if rebuildable && !metas.contains_key(&topic) {
            // The offsets topic gets its own config back: compacted, synced per batch.
            let config = if topic == OFFSETS_TOPIC {
                offsets_topic_config()?
            } else {
                TopicConfig::default()
                    .with("cleanup.policy", "delete")?
                    .with("retention.ms", "-1")?
                    .with("retention.bytes", "-1")?
            };
            let meta = TopicMeta {
                partitions: ids.len() as i32,
                config,
                recovered: true,
            };
            write_topic_file(dir, &topic, &meta)?;
            report.topics_rebuilt.push(topic.clone());
            metas.insert(topic, meta);
            continue;
        }
        for p in ids {
            let from = partition_dir(dir, &topic, p);
            report
                .strays
                .push(set_aside(dir, &from, &topic, p, "stray")?);
        }
    }
    Ok(())
}
