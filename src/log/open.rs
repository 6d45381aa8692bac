//! Opening a data directory, up to the point where the services above the log start: looking
//! at the directory before anything is written, taking the lock, moving the clean-shutdown
//! marker aside, finishing interrupted deletes, accounting for every partition directory
//! (rebuilding topics whose metadata was lost, setting strays aside) and loading each
//! partition.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use super::background::start_flusher;
use super::catalog::transaction_state_topic_config;
use super::catalog::{TopicMeta, read_topic_file, write_topic_file};
use super::data_dir::{self, DirState};
use super::producer_ids::ProducerRegistry;
use super::services::Services;
use super::topic::Topic;
use super::{Log, LogInner, RecoveryReport, is_internal_topic, offsets_topic_config};
use crate::checkpoint;
use crate::clock::now_ms;
use crate::config::{LogOptions, TopicConfig};
use crate::error::{Error, IoContext, Result};
use crate::io::{ops, sync_dir};
use crate::layout::{
    self, CLEAN_SHUTDOWN_ASIDE, CLEAN_SHUTDOWN_FILE, CLEANER_FILE, DELETING_DIR, LOCK_FILE,
    LOG_START_FILE, OFFSETS_TOPIC, PRODUCER_IDS_FILE, RECOVERY_POINT_FILE, SetAside, TOPICS_DIR,
    TRANSACTION_STATE_TOPIC, validate_topic_name,
};
use crate::partition::{Partition, Shared, default_fd_budget};

impl Log {
    /// The log layer's part of an open: everything up to the services above it. Returns the
    /// log (its report not yet kept, no flusher yet) and what the open found so far.
    pub(crate) fn open_storage(dir: &Path, options: LogOptions) -> Result<(Log, RecoveryReport)> {
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
            let meta = read_topic_file(&layout::topic_file(&dir, &name))?;
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
                    layout::partition_dir(&dir, &name, p),
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
            services: Services::default(),
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
        if !read_only && !log.inner.topics.read().contains_key(OFFSETS_TOPIC) {
            log.create_topic_unchecked(OFFSETS_TOPIC, 1, offsets_topic_config()?)?;
        }
        if !read_only
            && !log
                .inner
                .topics
                .read()
                .contains_key(TRANSACTION_STATE_TOPIC)
        {
            log.create_topic_unchecked(
                TRANSACTION_STATE_TOPIC,
                1,
                transaction_state_topic_config()?,
            )?;
        }
        Ok((log, report))
    }

    /// Ends an open once the services above the log have started (and added what they found
    /// to `report`): keeps the report, writes checkpoints and starts the flusher.
    pub(crate) fn finish_open(self, report: RecoveryReport) -> Result<Log> {
        let _ = self.inner.report.set(report);
        if !self.inner.shared.read_only {
            self.inner.write_checkpoints()?;
            if let Some(tick) = self.inner.options.flusher_tick {
                start_flusher(&self.inner, tick);
            }
        }
        Ok(self)
    }
}

/// Renames a partition directory to `<topic>-<p>.<nonce>-<kind>` (a free name) and syncs
/// the data directory. Returns the new path.
pub(super) fn set_aside(
    root: &Path,
    pdir: &Path,
    topic: &str,
    partition: i32,
    kind: SetAside,
) -> Result<PathBuf> {
    let nonce = u64::try_from(now_ms()).unwrap_or(0);
    let target = data_dir::free_set_aside_path(root, topic, partition, nonce, kind);
    ops::rename(pdir, &target).at(pdir)?;
    sync_dir(root)?;
    Ok(target)
}

/// Renames a partition directory to `<topic>-<p>.<nonce>-delete` (topic part shortened so
/// the name fits in 255 bytes, as Kafka does) and removes it.
pub(super) fn remove_dir_durably(
    root: &Path,
    pdir: &Path,
    topic: &str,
    partition: i32,
) -> Result<()> {
    let target = set_aside(root, pdir, topic, partition, SetAside::Delete)?;
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
        if layout::is_set_aside(name, SetAside::Delete) {
            let path = dir.join(name);
            fs::remove_dir_all(&path).at(&path)?;
        }
    }
    for topic in tombstones {
        // A live metadata file wins: the topic was created again after the delete.
        if !layout::topic_file(dir, &topic).exists() {
            for name in &entries {
                if let Some((t, p)) = layout::parse_partition_dir(name)
                    && t == topic
                {
                    remove_dir_durably(dir, &dir.join(name), t, p)?;
                }
            }
            let index = layout::event_store_dir(dir, &topic);
            if index.is_dir() {
                ops::remove_dir_all(&index).at(&index)?;
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
        let Some((topic, p)) = name.to_str().and_then(layout::parse_partition_dir) else {
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
        let rebuildable = if topic == OFFSETS_TOPIC || topic == TRANSACTION_STATE_TOPIC {
            ids == [0]
        } else {
            contiguous && !is_internal_topic(&topic)
        };
        if rebuildable && !metas.contains_key(&topic) {
            // The offsets topic gets its own config back: compacted, synced per batch.
            let config = if topic == OFFSETS_TOPIC {
                offsets_topic_config()?
            } else if topic == TRANSACTION_STATE_TOPIC {
                transaction_state_topic_config()?
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
            let from = layout::partition_dir(dir, &topic, p);
            report
                .strays
                .push(set_aside(dir, &from, &topic, p, SetAside::Stray)?);
        }
    }
    Ok(())
}
