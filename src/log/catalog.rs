//! The topic catalog: one metadata file per topic in `.topics/`, written before the topic's
//! partition directories exist, and the topic admin calls that change it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::open::{remove_dir_durably, set_aside};
use super::topic::{MAX_PARTITIONS, Topic};
use super::{Log, LogInner, is_internal_topic};
use crate::checkpoint;
use crate::config::TopicConfig;
use crate::error::{Error, IoContext, Result};
use crate::io::{ops, sync_dir, write_atomic_via};
use crate::layout::{
    self, CLEANER_FILE, DELETING_DIR, LOG_START_FILE, RECOVERY_POINT_FILE, SetAside, TOPIC_TMP,
    TOPICS_DIR, validate_topic_name,
};
use crate::partition::Partition;

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
    /// with. See [`RecoveryReport::topics_rebuilt`](crate::RecoveryReport::topics_rebuilt).
    pub recovered: bool,
}

/// A topic's metadata as its file holds it.
pub(super) struct TopicMeta {
    pub(super) partitions: i32,
    pub(super) config: TopicConfig,
    /// Rebuilt by an open that found the file missing (`recovered=true`).
    pub(super) recovered: bool,
}

/// Reads a topic metadata file: partition count and config.
pub(super) fn read_topic_file(path: &Path) -> Result<TopicMeta> {
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

pub(super) fn write_topic_file(dir: &Path, name: &str, meta: &TopicMeta) -> Result<()> {
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
        &layout::topic_file(dir, name),
        &dir.join(TOPIC_TMP),
        text.as_bytes(),
    )
}

/// `__consumer_offsets`' config: compacted, small segments, every commit synced.
pub(crate) fn offsets_topic_config() -> Result<TopicConfig> {
    TopicConfig::new()
        .with("cleanup.policy", "compact")?
        .with("segment.bytes", "4194304")?
        .with("flush.policy", "every-batch")
}

/// The transaction log's config: compacted (the latest state of each transactional id), and
/// `os`: the coordinator syncs a state record itself when a transaction's partitions sync
/// each batch, so a transaction over `os` topics adds no fsync.
pub(crate) fn transaction_state_topic_config() -> Result<TopicConfig> {
    TopicConfig::new()
        .with("cleanup.policy", "compact")?
        .with("segment.bytes", "4194304")?
        .with("flush.policy", "os")
}

impl Log {
    /// The config new topics get unless one is given (see
    /// [`LogOptions::default_topic_config`](crate::LogOptions::default_topic_config)); a base for [`Log::create_topic_with`].
    pub fn default_topic_config(&self) -> TopicConfig {
        self.inner.options.default_topic_config.clone()
    }

    /// Creates a topic with `partitions` partitions and the log's default topic config.
    ///
    /// # Errors
    /// [`Error::InvalidTopicName`], [`Error::TopicAlreadyExists`], [`Error::InvalidConfig`]
    /// (partitions outside 1..=[`MAX_PARTITIONS`]), [`Error::ReadOnly`], I/O errors.
    ///
    /// ```
    /// use topiclog::{Error, Log};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("orders", 3)?;
    /// assert_eq!(log.partition_count("orders")?, 3);
    /// assert!(matches!(log.create_topic("orders", 3), Err(Error::TopicAlreadyExists { .. })));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        let config = self.inner.options.default_topic_config.clone();
        self.create_topic_with(name, partitions, config)
    }

    /// Creates a topic with an explicit config (validated here).
    ///
    /// # Errors
    /// As [`Log::create_topic`]; [`Error::InternalTopic`] for a name topiclog keeps for
    /// itself (`__consumer_offsets`, `__transaction_state`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use topiclog::{CleanupPolicy, FlushPolicy, Log, TopicConfig};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// // By Kafka's names, checked as they are set:
    /// let audit = TopicConfig::new()
    ///     .with("retention.ms", "604800000")?
    ///     .with("segment.bytes", "67108864")?;
    /// log.create_topic_with("audit", 1, audit)?;
    /// // Or by field:
    /// let mut latest = TopicConfig::new();
    /// latest.cleanup_policy = CleanupPolicy::Compact;
    /// latest.flush_policy = FlushPolicy::Interval(Duration::from_millis(100));
    /// log.create_topic_with("profiles", 4, latest)?;
    /// assert_eq!(log.describe_topic("audit")?.config.segment_bytes, 64 << 20);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
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
    pub(super) fn create_topic_unchecked(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<()> {
        self.inner.create_topic_unchecked(name, partitions, config)
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
    ///
    /// ```
    /// use topiclog::{Log, Record};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("orders", 2)?;
    /// log.append("orders", 1, &[Record::new("a"), Record::new("b")])?;
    /// let d = log.describe_topic("orders")?;
    /// assert_eq!(d.partitions.len(), 2);
    /// assert_eq!(d.partitions[1].log_end_offset, 2);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
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
    /// appends and rolls. An event topic (one an event store keeps an index of) refuses
    /// `cleanup.policy=compact`.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::InvalidConfig`], [`Error::ReadOnly`], I/O errors.
    pub fn alter_topic_config(&self, name: &str, config: TopicConfig) -> Result<()> {
        self.inner.check_open()?;
        self.inner.check_writable()?;
        config.validate()?;
        if config.cleanup_policy.compacts()
            && crate::layout::event_store_dir(&self.inner.dir, name).is_dir()
        {
            return Err(Error::invalid_config(
                "cleanup.policy",
                format!(
                    "'{name}' is an event topic (an event store keeps its index): compaction \
                     would delete all but the last event of each stream"
                ),
            ));
        }
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

    /// Grows a topic to `total` partitions (partitions are never removed). Consumer groups
    /// subscribed to the topic rebalance at once, so their members read the new partitions
    /// from their next poll on (from where their `auto_offset_reset` says, as for any
    /// partition without a committed offset).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `total` is not larger than the current count, or for an
    /// event topic (its streams would move to other partitions);
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
        if crate::layout::event_store_dir(&self.inner.dir, name).is_dir() {
            return Err(Error::invalid_config(
                "partitions",
                format!(
                    "'{name}' is an event topic: more partitions would move streams to other \
                     partitions (murmur2 of the key) and split their versions"
                ),
            ));
        }
        let catalog = self.inner.catalog.lock();
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
        drop(catalog);
        // The new partitions are in the topic before the groups hear of it, so a leader that
        // assigns after this reads the new count.
        self.inner.services.topic_changed(name);
        Ok(())
    }

    /// Deletes a topic and its data. Handles to it fail with [`Error::Closed`] afterwards; a
    /// topic created later under the same name starts empty.
    ///
    /// # Errors
    /// [`Error::TopicNotFound`], [`Error::ReadOnly`], I/O errors.
    ///
    /// ```
    /// use topiclog::{Error, Log};
    /// let dir = tempfile::tempdir().expect("a temporary directory");
    /// let log = Log::open(dir.path())?;
    /// log.create_topic("scratch", 1)?;
    /// log.delete_topic("scratch")?;
    /// assert!(matches!(log.describe_topic("scratch"), Err(Error::TopicNotFound { .. })));
    /// # Ok::<_, topiclog::Error>(())
    /// ```
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
        let meta = layout::topic_file(&self.inner.dir, name);
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
        // An event store's index of the topic is derived from the topic: it goes with it.
        let index = crate::layout::event_store_dir(&self.inner.dir, name);
        if index.is_dir() {
            ops::remove_dir_all(&index).at(&index)?;
        }
        ops::remove_file(&tombstone).at(&tombstone)?;
        Ok(())
    }
}

impl LogInner {
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
        let pdir = layout::partition_dir(&inner.dir, topic, p);
        if pdir.exists() {
            set_aside(&inner.dir, &pdir, topic, p, SetAside::Stray)?;
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

impl LogInner {
    /// Creates a topic, internal names included.
    pub(crate) fn create_topic_unchecked(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<()> {
        self.check_open()?;
        self.check_writable()?;
        validate_topic_name(name)?;
        config.validate()?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(Error::invalid_config(
                "partitions",
                format!("must be 1 to {MAX_PARTITIONS}, not {partitions}"),
            ));
        }
        let catalog = self.catalog.lock();
        if self.topics.read().contains_key(name) {
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
        write_topic_file(&self.dir, name, &meta)?;
        let config = Arc::new(meta.config);
        let tname: Arc<str> = Arc::from(name);
        let opened = open_new_partitions(self, &tname, 0..partitions, &config);
        let parts = match opened {
            Ok(parts) => parts,
            Err(e) => {
                // Undo: the topic does not exist. Its new directories are topiclog's own and
                // empty; they are removed with the metadata.
                let meta_path = layout::topic_file(&self.dir, name);
                let _ = ops::remove_file(&meta_path);
                for p in 0..partitions {
                    let pdir = layout::partition_dir(&self.dir, name, p);
                    if pdir.is_dir() {
                        let _ = remove_dir_durably(&self.dir, &pdir, name, p);
                    }
                }
                return Err(e);
            }
        };
        // Makes the new partition directories durable.
        sync_dir(&self.dir)?;
        self.topics
            .write()
            .insert(name.to_string(), Arc::new(Topic::new(tname, config, parts)));
        drop(catalog);
        // After the catalog lock: the services take their own locks, and a group that
        // subscribed to the name before the topic existed rebalances to read it.
        self.services.topic_changed(name);
        Ok(())
    }
}
