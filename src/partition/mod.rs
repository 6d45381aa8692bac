//! A partition: one writer behind a mutex, lock-free readers over an immutable segment list
//! and atomically published ends.
//!
//! Write path (see `ARCHITECTURE.md`): batches are encoded and checksummed by the caller
//! outside any lock. The first sender to take the writer lock writes its batch and every batch
//! queued meanwhile in one `writev` (flat combining), stamps base offsets in place, appends
//! index entries with `write`, then publishes the new end. Under `EveryBatch` the senders then
//! share one `fdatasync` (group commit): a leader syncs up to the highest written offset while
//! followers wait; no fsync runs under the writer lock.

mod damage;
mod log_bytes;
mod open_segment;
mod prealloc;
pub(crate) mod producer_state;
pub(crate) mod read;
pub(crate) mod recovery;
mod shared;
mod shorten;
mod txn;
mod view;
mod writer;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::config::{FlushPolicy, TopicConfig};
use crate::error::{Error, IoContext, Result};

use crate::segment::{self, Segment};

pub use crate::segment::txn_index::AbortedTxn;
pub use damage::Damage;
pub use recovery::PartitionRecovery;
pub(crate) use shared::{Shared, default_fd_budget};
pub(crate) use writer::Writer;

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendResult {
    /// Offset of the first record of the batch.
    pub base_offset: i64,
    /// Offset of the last record of the batch.
    pub last_offset: i64,
    /// The batch's timestamp: its max CreateTime, or the append time under LogAppendTime.
    pub timestamp: i64,
    /// The partition's log start offset at the time of the append.
    pub log_start_offset: i64,
}

/// Where a batch sits in a partition's files: the base offset of the segment holding it and
/// its byte position in that segment's `.log`. Reported to an [`AppendGuard`] and by
/// [`ReadResult::locations`](crate::ReadResult::locations); read back with
/// [`PartitionHandle::read_at`](crate::PartitionHandle::read_at), which skips the offset index.
/// A location is a hint, not a name: truncation, retention and compaction move or remove
/// batches, and `read_at` then answers `None` rather than another batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchLocation {
    /// The base offset of the segment (its file name).
    pub segment: i64,
    /// The batch's byte position in the segment's `.log`.
    pub position: u32,
}

/// A check that runs under a partition's writer lock, for conditional appends whose condition
/// is the caller's own state (for example a stream version kept per key): see
/// [`PartitionHandle::append_guarded`](crate::PartitionHandle::append_guarded).
///
/// For each guarded batch the writer calls [`AppendGuard::check`] once, after every batch
/// before it is accounted and before the batch gets its offsets. If `check` returns `Ok`,
/// [`AppendGuard::settle`] follows exactly once with the batch's outcome, still under the
/// writer lock: no other batch is checked or written between them, so state that `check`
/// reads and `settle` updates moves in step with the log. Under
/// [`FlushPolicy::EveryBatch`] `settle` runs after the write and before the sync: the batch
/// is in the log but not yet acknowledged (a power loss may still take it).
pub trait AppendGuard {
    /// Decides whether the batch is written. `base_offset` is the offset its first record
    /// will get. An error refuses the batch and is what the append returns.
    ///
    /// # Errors
    /// The guard's own.
    fn check(&mut self, base_offset: i64) -> Result<()>;

    /// Reports the outcome of a batch `check` accepted: where it landed, or the error that
    /// kept it out of the log (nothing of it is readable then).
    fn settle(&mut self, outcome: std::result::Result<(AppendResult, BatchLocation), &Error>);
}

/// Counters for one partition, from [`crate::Log::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStats {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Records appended since open.
    pub records_appended: u64,
    /// Batch bytes appended since open.
    pub bytes_appended: u64,
    /// Batches returned by reads since open.
    pub batches_read: u64,
    /// Bytes returned by reads since open.
    pub bytes_read: u64,
    /// `fdatasync` calls on this partition's files.
    pub fsyncs: u64,
    /// Total time spent in them.
    pub fsync_time: Duration,
    /// The slowest one.
    pub fsync_max: Duration,
    /// What opening this partition found.
    pub last_recovery: Option<PartitionRecovery>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) records_appended: AtomicU64,
    pub(crate) bytes_appended: AtomicU64,
    pub(crate) batches_read: AtomicU64,
    pub(crate) bytes_read: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) fsync_nanos: AtomicU64,
    pub(crate) fsync_max_nanos: AtomicU64,
}

/// The longest a group-commit leader waits for appenders to come back (see
/// `Partition::gather`); otherwise half its last fdatasync.
const GATHER_MAX: Duration = Duration::from_micros(500);

/// Group-commit state.
#[derive(Debug)]
pub(crate) struct SyncState {
    /// Every offset below this is on stable storage (the recovery point).
    synced: i64,
    /// A leader is running fdatasync right now.
    syncing: bool,
    last_sync: Instant,
    /// How long the last leader's fdatasync took.
    last_sync_took: Duration,
    /// The running sync's leader has read the end it syncs to.
    end_taken: bool,
    /// Syncs finished (numbers the rounds).
    round: u64,
    /// Callers waiting for a leader's sync to finish.
    waiting: usize,
    /// Of them, those that started waiting after the running sync took its end: it does not
    /// cover them.
    late: usize,
    /// Callers the last sync released: its leader and the waiters it covered.
    served: usize,
}

impl SyncState {
    fn new(synced: i64) -> SyncState {
        SyncState {
            synced,
            syncing: false,
            last_sync: Instant::now(),
            last_sync_took: Duration::ZERO,
            end_taken: false,
            round: 0,
            waiting: 0,
            late: 0,
            served: 1,
        }
    }
}

/// One partition of a topic.
pub(crate) struct Partition {
    pub(crate) topic: Arc<str>,
    pub(crate) id: i32,
    pub(crate) dir: PathBuf,
    pub(crate) config: RwLock<Arc<TopicConfig>>,
    pub(crate) shared: Arc<Shared>,
    writer: Mutex<Writer>,
    queue: Mutex<Vec<writer::Pending>>,
    /// `queue` may be non-empty (set under its lock by a sender, cleared by the writer).
    queued: AtomicBool,
    segments: RwLock<Arc<Vec<Arc<Segment>>>>,
    log_start: AtomicI64,
    /// Next offset to be written, as published (the written end).
    log_end: AtomicI64,
    /// What readers may see: `log_end` under `Os`/`Interval`, the synced end under `EveryBatch`.
    high_watermark: AtomicI64,
    /// Group commit. These are std's lock and condition variable, not parking_lot's:
    /// parking_lot's `notify_all` wakes one waiter and requeues the rest on the mutex, so they
    /// wake one after another, each woken by the unlock of the one before. With 16 appenders
    /// waiting on one fdatasync, that chain of wake-ups took about as long as the next
    /// fdatasync on this VM, and half the appenders missed it. std's `notify_all` wakes them
    /// all with one system call.
    sync: std::sync::Mutex<SyncState>,
    sync_done: std::sync::Condvar,
    /// Rolls so far, and how many of them have their new segment's name synced in the
    /// partition directory.
    pub(crate) rolls: AtomicU64,
    rolls_synced: AtomicU64,
    /// Callers that needed a sync since the last one finished (changed under `sync`; read
    /// without it by a gathering leader).
    sync_arrivals: AtomicUsize,
    poisoned: Mutex<Option<String>>,
    is_poisoned: AtomicBool,
    deleted: AtomicBool,
    /// Set by the log's close or abandon: a handle that outlives its `Log` must not reopen
    /// the files, which a successor `Log` on the same directory may own by then.
    closed: AtomicBool,
    pub(crate) counters: Counters,
    recovery: Mutex<Option<PartitionRecovery>>,
    generation: AtomicU64,
    pub(crate) waiters: crate::wait::WaiterSet,
    /// Offsets below this have been compacted (Kafka's cleaner checkpoint).
    clean_end: AtomicI64,
    /// Earliest delete horizon written by compaction (i64::MAX when none is pending).
    next_horizon: AtomicI64,
    /// One compaction at a time.
    pub(crate) compacting: Mutex<()>,
    /// Read-only views: how many times the view was loaded again, and one reload at a time.
    view_generation: AtomicU64,
    refreshing: Mutex<()>,
    /// `aborted` is not empty: a read finds that out without its lock.
    has_aborted: AtomicBool,
    /// The aborted transactions of the live segments (see `txn.rs`).
    aborted: RwLock<txn::AbortedList>,
    /// The first offset of the oldest open transaction (`i64::MAX` when none): the last
    /// stable offset is the smaller of it and the high watermark.
    first_unstable: AtomicI64,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partition")
            .field("topic", &self.topic)
            .field("id", &self.id)
            .field("log_start", &self.log_start.load(Ordering::Relaxed))
            .field("log_end", &self.log_end.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Partition {
    /// Opens (and recovers) a partition directory, creating it when `create` is set.
    pub(crate) fn open(
        shared: &Arc<Shared>,
        topic: &Arc<str>,
        id: i32,
        dir: PathBuf,
        config: Arc<TopicConfig>,
        clean: bool,
        checkpoints: (Option<i64>, Option<i64>),
    ) -> Result<Arc<Partition>> {
        if !shared.read_only && !dir.exists() {
            // The caller syncs the data directory once for all new partitions.
            crate::io::ops::create_dir_all(&dir).at(&dir)?;
        }
        let generation = shared.next_generation();
        // Kept when the first attempt falls back to a full scan: what was synced before this
        // open does not change with how the files are read.
        let (durable, end_floor) = recovery::durable_and_floor(clean, checkpoints.0);
        let attempt = |clean: bool,
                       recovery_point: Option<i64>|
         -> Result<(recovery::Loaded, Arc<Segment>, txn::TxnLoaded)> {
            let params = recovery::LoadParams {
                dir: &dir,
                topic,
                partition: id,
                config: &config,
                clean,
                recovery_point,
                durable,
                end_floor,
                log_start: checkpoints.1,
                read_only: shared.read_only,
                generation,
            };
            let mut loaded = if shared.read_only {
                view::load(&params)?
            } else {
                recovery::load(&params)?
            };
            let active = loaded
                .segments
                .last()
                .cloned()
                .ok_or_else(|| Error::Corrupt {
                    path: dir.clone(),
                    position: 0,
                    reason: "partition has no segment after loading".into(),
                })?;
            // The replay of producer state and markers starts at or below the recovery point
            // after a crash, and below any damage found at rest: a snapshot or `.txnindex`
            // written before the damage may speak of batches that are gone.
            let damaged_from = loaded.report.damage.iter().map(|d| d.lost_from).min();
            let replay_below = match (clean, damaged_from) {
                (true, d) => d,
                (false, d) => {
                    Some(d.map_or(loaded.recovery_point, |d| d.min(loaded.recovery_point)))
                }
            };
            let txns = txn::load(
                shared,
                &dir,
                &loaded.segments,
                active.end_offset(),
                replay_below,
                &mut loaded.report,
            )?;
            Ok((loaded, active, txns))
        };
        let (loaded, active, txns) = match attempt(clean, checkpoints.0) {
            // Replaying producer state walks the batch headers of trusted segments; damage
            // found there means the cheap checks were fooled. Recover the partition as after a
            // crash (scan everything, cut at the first bad batch) instead of failing the open.
            Err(Error::Corrupt { .. }) => attempt(false, Some(0))?,
            other => other?,
        };
        let end = active.end_offset();
        let mut writer = Writer::new(active, loaded.tracker, &config);
        let first_unstable = txns.producers.first_unstable().unwrap_or(i64::MAX);
        writer.producers = txns.producers;
        let p = Arc::new(Partition {
            topic: Arc::clone(topic),
            id,
            dir,
            config: RwLock::new(config),
            shared: Arc::clone(shared),
            writer: Mutex::new(writer),
            queue: Mutex::new(Vec::new()),
            queued: AtomicBool::new(false),
            segments: RwLock::new(Arc::new(loaded.segments)),
            log_start: AtomicI64::new(loaded.log_start),
            log_end: AtomicI64::new(end),
            high_watermark: AtomicI64::new(end),
            sync: std::sync::Mutex::new(SyncState::new(loaded.recovery_point)),
            sync_done: std::sync::Condvar::new(),
            sync_arrivals: AtomicUsize::new(0),
            rolls: AtomicU64::new(0),
            rolls_synced: AtomicU64::new(0),
            poisoned: Mutex::new(None),
            is_poisoned: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
            recovery: Mutex::new(Some(loaded.report)),
            generation: AtomicU64::new(generation),
            waiters: crate::wait::WaiterSet::default(),
            clean_end: AtomicI64::new(0),
            next_horizon: AtomicI64::new(i64::MAX),
            compacting: Mutex::new(()),
            view_generation: AtomicU64::new(0),
            refreshing: Mutex::new(()),
            has_aborted: AtomicBool::new(!txns.aborted.list.is_empty()),
            aborted: RwLock::new(txns.aborted),
            first_unstable: AtomicI64::new(first_unstable),
        });
        Ok(p)
    }

    pub(crate) fn config(&self) -> Arc<TopicConfig> {
        Arc::clone(&self.config.read())
    }

    pub(crate) fn set_config(&self, config: Arc<TopicConfig>) {
        // Under the writer lock: an append sees the old settings or the new, whole.
        let mut w = self.writer.lock();
        w.set_config(&config);
        *self.config.write() = config;
    }

    /// The topic compacts (its records need keys); reads the config without cloning it.
    pub(crate) fn compacts(&self) -> bool {
        self.config.read().cleanup_policy.compacts()
    }

    pub(crate) fn segments(&self) -> Arc<Vec<Arc<Segment>>> {
        Arc::clone(&self.segments.read())
    }

    fn set_segments(&self, segs: Vec<Arc<Segment>>) {
        *self.segments.write() = Arc::new(segs);
    }

    pub(crate) fn log_start(&self) -> i64 {
        self.log_start.load(Ordering::Acquire)
    }

    pub(crate) fn log_end(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    pub(crate) fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub(crate) fn recovery_point(&self) -> i64 {
        self.sync_state().synced
    }

    pub(crate) fn recovery_report(&self) -> Option<PartitionRecovery> {
        self.recovery.lock().clone()
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        self.waiters.wake_all();
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// True once the log that owns this partition closed or was abandoned.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.shared.read_only {
            return Err(Error::ReadOnly);
        }
        if self.is_closed() {
            return Err(Error::Closed { what: "the log" });
        }
        if self.is_deleted() {
            return Err(Error::Closed {
                what: "the topic was deleted",
            });
        }
        if self.is_poisoned.load(Ordering::Acquire) {
            return Err(self.poison_error());
        }
        Ok(())
    }

    fn poison_error(&self) -> Error {
        Error::Poisoned {
            topic: self.topic.to_string(),
            partition: self.id,
            reason: self
                .poisoned
                .lock()
                .clone()
                .unwrap_or_else(|| "fsync failed".into()),
        }
    }

    /// Refuses all later writes: after a failed fsync the kernel may have dropped dirty pages,
    /// so nothing written since the last good sync can be trusted to reach the disk.
    pub(crate) fn poison(&self, reason: String) {
        let mut p = self.poisoned.lock();
        if p.is_none() {
            *p = Some(reason);
        }
        self.is_poisoned.store(true, Ordering::Release);
        self.waiters.wake_all();
    }

    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Publishes a new written end; under `Os`/`Interval` readers see it at once.
    fn publish_end(&self, end: i64, policy: FlushPolicy) {
        self.log_end.store(end, Ordering::Release);
        if !policy.syncs_each_batch() {
            self.high_watermark.store(end, Ordering::Release);
            self.waiters.wake_all();
        }
    }

    fn record_fsync(&self, took: Duration) {
        let nanos = took.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .fsync_nanos
            .fetch_add(nanos, Ordering::Relaxed);
        self.counters
            .fsync_max_nanos
            .fetch_max(nanos, Ordering::Relaxed);
    }

    fn timed_sync(&self, file: &File, path: &std::path::Path) -> Result<()> {
        let t = Instant::now();
        let r = crate::io::ops::sync_data(file, path).at(path);
        self.record_fsync(t.elapsed());
        r
    }

    /// Syncs the partition directory if the new segment names of the first `rolls` rolls
    /// are not yet known durable, then fdatasyncs `files`. Read `rolls` under the writer lock
    /// with the files, so that it counts every roll before the data being synced: once a
    /// segment file's sync returns, its name is durable too.
    fn sync_files(&self, files: &[(Arc<File>, PathBuf)], rolls: u64) -> Result<()> {
        if rolls > self.rolls_synced.load(Ordering::Acquire) {
            crate::io::sync_dir(&self.dir)?;
            self.rolls_synced.fetch_max(rolls, Ordering::AcqRel);
        }
        for (file, path) in files {
            self.timed_sync(file, path)?;
        }
        Ok(())
    }

    /// The group-commit state (a panic while it was held leaves it consistent: every
    /// change to it is a single assignment).
    pub(crate) fn sync_state(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes every offset below `target` durable, sharing one fdatasync among concurrent
    /// callers (group commit). Under `EveryBatch` it also advances the high watermark.
    pub(crate) fn sync_to(&self, target: i64) -> Result<()> {
        let mut st = self.sync_state();
        let mut arrived = false;
        let mut late_in = None;
        loop {
            if st.synced >= target {
                return Ok(());
            }
            if self.is_poisoned.load(Ordering::Acquire) {
                return Err(self.poison_error());
            }
            if !arrived {
                arrived = true;
                self.sync_arrivals.fetch_add(1, Ordering::Relaxed);
            }
            if !st.syncing {
                st.syncing = true;
                break;
            }
            if st.end_taken && late_in != Some(st.round) {
                late_in = Some(st.round);
                st.late += 1;
            }
            st.waiting += 1;
            st = self
                .sync_done
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            st.waiting -= 1;
        }
        let (served, max) = (st.served, (st.last_sync_took / 2).min(GATHER_MAX));
        drop(st);
        self.gather(served, max);
        // Leader: take what to sync under the writer lock (cheap), sync outside it.
        let (files, end) = {
            let mut w = self.writer.lock();
            let end = self.log_end();
            // Under the writer lock: an append past `end` reaches `sync_to` after this.
            self.sync_state().end_taken = true;
            let rolls = self.rolls.load(Ordering::Acquire);
            (w.files_to_sync(false).map(|f| (f, rolls)), end)
        };
        let started = Instant::now();
        let result = files.and_then(|(files, rolls)| self.sync_files(&files, rolls));
        let mut st = self.sync_state();
        st.syncing = false;
        st.end_taken = false;
        st.last_sync = Instant::now();
        st.last_sync_took = st.last_sync - started;
        st.served = (st.waiting + 1).saturating_sub(st.late);
        st.late = 0;
        st.round += 1;
        self.sync_arrivals.store(0, Ordering::Relaxed);
        let out = match result {
            Ok(()) => {
                if end > st.synced {
                    st.synced = end;
                }
                if self.config.read().flush_policy.syncs_each_batch() {
                    self.high_watermark.fetch_max(end, Ordering::AcqRel);
                    self.waiters.wake_all();
                }
                if st.synced >= target {
                    Ok(())
                } else {
                    // A write landed after the leader read the end; sync again for it.
                    drop(st);
                    self.sync_done.notify_all();
                    return self.sync_to(target);
                }
            }
            Err(e) => {
                self.poison(e.to_string());
                Err(e)
            }
        };
        drop(st);
        self.sync_done.notify_all();
        out
    }

    /// Before a leader reads what to sync: until as many callers have come for a sync as the
    /// last one released, lets them append again (yielding the CPU to them), for at most
    /// `max`. Without this, appenders split into two cohorts, each fdatasync serving the half
    /// that arrived while the one before ran. A lone appender never waits.
    fn gather(&self, served: usize, max: Duration) {
        if served <= 1 {
            return;
        }
        let deadline = Instant::now() + max;
        while self.sync_arrivals.load(Ordering::Relaxed) < served && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    /// Periodic work for the flusher: sync segments that rolled, and the active segment when an
    /// `Interval` policy is due.
    pub(crate) fn flush_tick(&self) -> Result<()> {
        if self.shared.read_only || self.is_deleted() || self.is_poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let policy = self.config.read().flush_policy;
        let (rolled, rolls) = {
            let mut w = self.writer.lock();
            (w.take_rolled()?, self.rolls.load(Ordering::Acquire))
        };
        let files = rolled.as_ref().map_or(&[][..], |(f, _)| f.as_slice());
        if let Err(e) = self.sync_files(files, rolls) {
            self.poison(e.to_string());
            return Err(e);
        }
        if let Some((_, end)) = rolled {
            let mut st = self.sync_state();
            st.synced = st.synced.max(end);
        }
        if let FlushPolicy::Interval(every) = policy {
            let due = {
                let st = self.sync_state();
                st.last_sync.elapsed() >= every && st.synced < self.log_end()
            };
            if due {
                self.sync_to(self.log_end())?;
            }
        }
        Ok(())
    }

    /// Syncs everything written so far (used by `Log::flush` and clean close).
    pub(crate) fn flush(&self) -> Result<()> {
        if self.shared.read_only || self.is_deleted() {
            return Ok(());
        }
        self.flush_tick()?;
        let end = self.log_end();
        self.sync_to(end)?;
        // Group commits skip the index files; a flush makes them durable too.
        let (files, rolls) = {
            let mut w = self.writer.lock();
            (w.files_to_sync(true)?, self.rolls.load(Ordering::Acquire))
        };
        if let Err(e) = self.sync_files(&files, rolls) {
            self.poison(e.to_string());
            return Err(e);
        }
        Ok(())
    }

    /// Clean-close work: sync everything written. (The active segment's largest timestamp is
    /// recomputed at open from its last index entries and tail, so no final entry is forced.)
    pub(crate) fn close(&self) -> Result<()> {
        let synced = self.sync_for_close();
        let mut w = self.writer.lock();
        // Under the writer lock, and on every path: an append that passed `check_writable`
        // before this finds the flag when it asks for the files, and writes nothing.
        self.closed.store(true, Ordering::Release);
        // After the flag, so no append extends the file again: a clean close leaves files
        // exactly Kafka's, and the next open takes a zero tail for damage.
        let trimmed = if synced.is_ok() {
            w.trim_active(true).map(|_| ())
        } else {
            Ok(())
        };
        w.close_files();
        synced.and(trimmed)
    }

    fn sync_for_close(&self) -> Result<()> {
        if self.shared.read_only || self.is_deleted() {
            return Ok(());
        }
        if self.is_poisoned.load(Ordering::Acquire) {
            return Err(self.poison_error());
        }
        self.flush()?;
        self.snapshot_producers()
    }

    pub(crate) fn clean_end(&self) -> i64 {
        self.clean_end.load(Ordering::Acquire)
    }

    pub(crate) fn set_clean_end(&self, end: i64) {
        self.clean_end.store(end, Ordering::Release);
    }

    pub(crate) fn next_horizon(&self) -> i64 {
        self.next_horizon.load(Ordering::Acquire)
    }

    pub(crate) fn note_horizon(&self, h: Option<i64>) {
        self.next_horizon
            .store(h.unwrap_or(i64::MAX), Ordering::Release);
    }

    /// Replaces the adjacent segments `group` by one cleaned segment under the writer lock.
    /// `swap` performs the file operations and returns the new segment's state, or `None` to
    /// stop (crash tests). Returns false, touching nothing, when `group` is no longer in the
    /// list (retention or truncation got there first).
    pub(crate) fn replace_segments(
        &self,
        group: &[Arc<Segment>],
        swap: impl FnOnce(&std::path::Path) -> Result<Option<segment::SegmentState>>,
    ) -> Result<bool> {
        let w = self.writer.lock();
        let segs = self.segments();
        let Some(first) = group.first() else {
            return Ok(false);
        };
        let Some(start) = segs.iter().position(|s| Arc::ptr_eq(s, first)) else {
            return Ok(false);
        };
        let present = group
            .iter()
            .enumerate()
            .all(|(i, g)| segs.get(start + i).is_some_and(|s| Arc::ptr_eq(s, g)));
        // Never the active segment.
        if !present || start + group.len() >= segs.len() {
            return Ok(false);
        }
        let Some(st) = swap(&self.dir)? else {
            return Ok(true);
        };
        let cfg = self.config();
        let new = Arc::new(Segment::new(
            &self.dir,
            first.base_offset,
            self.next_generation(),
            st,
            st.size,
            cfg.segment_index_bytes as usize,
            true,
        ));
        let mut list: Vec<Arc<Segment>> = segs.iter().take(start).cloned().collect();
        list.push(new);
        list.extend(segs.iter().skip(start + group.len()).cloned());
        self.set_segments(list);
        drop(w);
        for g in group {
            g.unmap();
        }
        Ok(true)
    }

    /// Drops the read maps of every segment (readers holding views keep theirs): after a
    /// scan of the whole partition, so its pages stop counting in the process's memory.
    pub(crate) fn release_maps(&self) {
        for seg in self.segments().iter() {
            seg.unmap();
        }
    }

    /// Crash simulation: drop descriptors without syncing anything.
    pub(crate) fn abandon(&self) {
        let mut w = self.writer.lock();
        self.closed.store(true, Ordering::Release);
        w.close_files();
        drop(w);
        self.waiters.wake_all();
    }

    /// Per producer id, the last offset of its last batch (see `ProducerState::last_offsets`).
    pub(crate) fn producer_last_offsets(&self) -> std::collections::HashMap<i64, i64> {
        self.writer.lock().producers.last_offsets()
    }

    /// Writes a producer-state snapshot covering everything below the end (clean close).
    pub(crate) fn snapshot_producers(&self) -> Result<()> {
        let w = self.writer.lock();
        producer_state::write_snapshot(&self.dir, &w.producers, w.next_offset())
    }

    /// Gives up this partition's write descriptors if no one is writing (fd budget eviction).
    /// Under fsync policies the files are synced first, so a writeback error is not lost
    /// with the descriptor.
    /// `None` when the writer is busy, else whether descriptors were released.
    pub(crate) fn release_idle_files(&self) -> Option<bool> {
        let mut w = self.writer.try_lock()?;
        let policy = self.config.read().flush_policy;
        Some(match w.release_files(policy) {
            Ok(released) => released,
            Err(e) => {
                self.poison(e.to_string());
                true
            }
        })
    }

    /// Advances the log start offset (Kafka's delete-records). Returns the new start.
    pub(crate) fn delete_records(&self, offset: i64) -> Result<i64> {
        self.check_writable()?;
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                start: self.log_start(),
                end: hw,
            });
        }
        let new = self
            .log_start
            .fetch_max(target, Ordering::AcqRel)
            .max(target);
        Ok(new)
    }

    /// Stats snapshot.
    pub(crate) fn stats(&self) -> PartitionStats {
        let c = &self.counters;
        PartitionStats {
            topic: self.topic.to_string(),
            partition: self.id,
            records_appended: c.records_appended.load(Ordering::Relaxed),
            bytes_appended: c.bytes_appended.load(Ordering::Relaxed),
            batches_read: c.batches_read.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            fsync_time: Duration::from_nanos(c.fsync_nanos.load(Ordering::Relaxed)),
            fsync_max: Duration::from_nanos(c.fsync_max_nanos.load(Ordering::Relaxed)),
            last_recovery: self.recovery_report(),
        }
    }

    /// Bytes on disk (published) over all segments.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments().iter().map(|s| s.size()).sum()
    }
}
