//! The write side of a partition: combined appends, roll, truncate and segment deletion.

use std::fs::File;
use std::io::{self, IoSlice};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::prealloc::{StoreError, Tail, trim_path};
use super::producer_state::{Check, ProducerState, Undo};
use super::{AppendGuard, AppendResult, BatchLocation, Partition};
use crate::clock::now_ms;
use crate::config::{FlushPolicy, TopicConfig};
use crate::error::{Error, IoContext, Result};
use crate::io::{open_append, ops};
use crate::record::TimestampType;
use crate::record::batch::{
    BatchHeader, BatchRef, stamp_base_offset, stamp_base_sequence, stamp_log_append_time,
};
use crate::segment::index::{INDEX_ENTRY, IndexTracker, TIME_ENTRY};
use crate::segment::writer::{Accountant, IndexBytes, RollLimits};
use crate::segment::{Segment, SegmentState};

/// The topic settings the write path reads, copied from its config: the writer reads them
/// under its own lock, with no lock or reference count of the config's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteLimits {
    max_message_bytes: u32,
    timestamp_type: TimestampType,
    flush_policy: FlushPolicy,
    segment_bytes: u32,
    segment_ms: u64,
    /// How far before and after the clock CreateTime timestamps may lie, when bounded.
    create_time_window: Option<(Option<u64>, Option<u64>)>,
    /// Topic `preallocate`: appends are stored into a preallocated, mapped tail.
    preallocate: bool,
}

impl WriteLimits {
    pub(crate) fn of(c: &TopicConfig) -> WriteLimits {
        WriteLimits {
            max_message_bytes: c.max_message_bytes,
            timestamp_type: c.timestamp_type,
            flush_policy: c.flush_policy,
            segment_bytes: c.segment_bytes,
            segment_ms: c.segment_ms,
            create_time_window: c.create_time_window(),
            preallocate: c.preallocate(),
        }
    }

    /// Checks a batch's size, stamps the append time when the topic asks for it, and reads
    /// its header. Only the coordinator's path (`control`) writes control batches.
    fn prepare(self, data: &mut [u8], control: bool) -> Result<BatchHeader> {
        if data.len() > self.max_message_bytes as usize {
            return Err(Error::RecordTooLarge {
                size: data.len(),
                max: self.max_message_bytes as usize,
            });
        }
        if self.timestamp_type == TimestampType::LogAppendTime {
            stamp_log_append_time(data, now_ms());
        }
        let header = BatchHeader::parse(data)?;
        if header.is_control() != control {
            return Err(Error::invalid_batch(if control {
                "a transaction marker must be a control batch"
            } else {
                "control batches are written by the transaction coordinator, not appended"
            }));
        }
        if let Some((before, after)) = self.create_time_window {
            check_create_times(data, &header, before, after)?;
        }
        Ok(header)
    }
}

/// Refuses a batch with a record timestamp more than `before` ms before the clock or more
/// than `after` ms after it (Kafka's `INVALID_TIMESTAMP`); records without a timestamp (-1)
/// pass, as in Kafka. The header's maximum settles the upper bound at once; the lower bound
/// needs each record (a batch's first timestamp is not its smallest), so a bounded topic
/// decodes every batch it is given, as Kafka's validation does. Unbounded topics never get
/// here.
fn check_create_times(
    data: &[u8],
    header: &BatchHeader,
    before: Option<u64>,
    after: Option<u64>,
) -> Result<()> {
    let now = now_ms();
    let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let earliest = before.map_or(i64::MIN, |b| now.saturating_sub(ms(b)));
    let latest = after.map_or(i64::MAX, |a| now.saturating_add(ms(a)));
    let refuse = |timestamp: i64| Error::InvalidTimestamp {
        timestamp,
        earliest,
        latest,
    };
    if header.max_timestamp > latest {
        return Err(refuse(header.max_timestamp));
    }
    if before.is_none() {
        return Ok(());
    }
    let mut bad = None;
    BatchRef::new(data)?.for_each_record(|r| {
        if r.timestamp >= 0 && (r.timestamp < earliest || r.timestamp > latest) {
            bad.get_or_insert(r.timestamp);
        }
    })?;
    match bad {
        Some(t) => Err(refuse(t)),
        None => Ok(()),
    }
}

/// Whether a marker batch (stamped, whole) is a COMMIT or an ABORT; `None` for another control
/// record.
fn marker_commits(data: &[u8]) -> Option<bool> {
    let batch = crate::record::Batch::new(bytes::Bytes::copy_from_slice(data)).ok()?;
    super::producer_state::marker_kind(&batch)
}

/// Open descriptors of the active segment.
#[derive(Debug)]
struct WriterFiles {
    log: Arc<File>,
    index: Arc<File>,
    time: Arc<File>,
    /// The preallocated tail, when appends to this segment are stored through a mapping
    /// (decided when the files are opened: a config change applies from the next opening).
    tail: Option<Tail>,
}

type SyncList = Vec<(Arc<File>, PathBuf)>;

/// State owned by the writer lock.
#[derive(Debug)]
pub(crate) struct Writer {
    active: Arc<Segment>,
    /// The active segment's state as written (equal to what is published between appends)
    /// and its index cadence.
    acct: Accountant,
    files: Option<WriterFiles>,
    next_offset: i64,
    /// Files of rolled segments awaiting their post-roll sync, and the offset they end at.
    rolled: SyncList,
    rolled_end: i64,
    /// Files of older rolled segments awaiting that sync whose descriptors were given up
    /// (beyond [`ROLLED_OPEN`] segments); the sync reopens them.
    rolled_closed: Vec<PathBuf>,
    /// Index entries were appended since the last sync of the index files.
    index_dirty: bool,
    /// The active `.log` may be longer than its data (a preallocated tail), also while its
    /// descriptors are closed: a roll or a clean close cuts it.
    extended: bool,
    /// The file system refused `fallocate`: this partition appends with `write(2)`.
    no_fallocate: bool,
    /// Idempotent producers seen by this partition.
    pub(crate) producers: ProducerState,
    /// `.txnindex` files written since their last sync: the post-roll sync or the next
    /// flush syncs them (under `Os`; other policies sync each entry as it is written).
    txn_unsynced: Vec<PathBuf>,
    /// Buffers of `write_items`, kept between appends so an append allocates nothing.
    scratch: Scratch,
    limits: WriteLimits,
}

/// `write_items`' working buffers (empty between calls).
#[derive(Debug, Default)]
struct Scratch {
    results: Vec<Result<AppendResult>>,
    group: Vec<usize>,
    entries: IndexBytes,
    undo: Vec<Undo>,
    /// Aborted transactions whose markers are in the group being written.
    aborts: Vec<crate::segment::txn_index::AbortedTxn>,
}

/// Takes back the producer-state updates of batches whose write failed, latest first.
fn undo_all(producers: &mut ProducerState, undo: &mut Vec<Undo>) {
    while let Some(u) = undo.pop() {
        producers.undo(u);
    }
}

/// A batch queued by a sender that found the writer busy.
pub(crate) struct Pending {
    data: Vec<u8>,
    header: BatchHeader,
    expected_end: Option<i64>,
    assign_seq: bool,
    slot: Arc<Slot>,
}

/// Where a queued batch's result is delivered; its sender waits on `ready`.
#[derive(Default)]
pub(crate) struct Slot {
    result: Mutex<Option<Result<AppendResult>>>,
    ready: Condvar,
}

/// How long a queued sender waits for its result before checking whether the writer is free
/// (a combiner that took the queue just before this sender's batch arrived never delivers it).
const QUEUED_RECHECK: Duration = Duration::from_micros(50);

/// Rolled segments whose descriptors are kept for their post-roll sync. Without a flusher
/// (or with one far behind fast rolls) more wait; they wait as paths, so a partition holds
/// at most this many segments' descriptors besides its active segment's.
const ROLLED_OPEN: usize = 2;

/// Times a queued sender yields, checking for its result, before it sleeps.
const QUEUED_SPINS: u32 = 20;

/// One batch in a combined write.
struct Item<'a> {
    data: &'a mut [u8],
    header: BatchHeader,
    expected_end: Option<i64>,
    /// The writer picks the base sequence (the next one of the batch's producer).
    assign_seq: bool,
    /// The caller's condition, checked under the writer lock (never on a queued batch).
    guard: Option<&'a mut (dyn AppendGuard + 'a)>,
}

impl Item<'_> {
    /// The same batch, borrowed for a shorter time.
    fn reborrow<'b>(item: &'b mut Item<'_>) -> Item<'b> {
        Item {
            data: &mut *item.data,
            header: item.header,
            expected_end: item.expected_end,
            assign_seq: item.assign_seq,
            guard: match &mut item.guard {
                Some(g) => Some(&mut **g),
                None => None,
            },
        }
    }
}

impl Writer {
    pub(crate) fn new(active: Arc<Segment>, tracker: IndexTracker, config: &TopicConfig) -> Writer {
        let state = active.state();
        Writer {
            next_offset: state.end_offset,
            acct: Accountant::resume(active.base_offset, state, tracker),
            active,
            files: None,
            rolled: Vec::new(),
            rolled_end: 0,
            rolled_closed: Vec::new(),
            index_dirty: false,
            extended: false,
            no_fallocate: false,
            producers: ProducerState::default(),
            txn_unsynced: Vec::new(),
            scratch: Scratch::default(),
            limits: WriteLimits::of(config),
        }
    }

    pub(crate) fn set_config(&mut self, config: &TopicConfig) {
        self.acct.set_interval(config.index_interval_bytes);
        self.limits = WriteLimits::of(config);
    }

    fn files(&mut self, p: &Arc<Partition>) -> Result<&WriterFiles> {
        if self.files.is_none() {
            // A closed log's files may belong to a successor `Log` by now: never reopen them.
            if p.is_closed() {
                return Err(Error::Closed { what: "the log" });
            }
            let a = &self.active;
            let mapped = self.limits.preallocate && !self.no_fallocate;
            // A preallocated log is written at positions inside its allocated range: not
            // `O_APPEND`, which would put every write after the zeros.
            let log = if mapped {
                ops::open_read_write(&a.log_path).at(&a.log_path)?
            } else {
                open_append(&a.log_path)?
            };
            let size = self.acct.state().size;
            // One `fstat` per opening: a preallocated tail left by an earlier opening (the
            // descriptor budget closed it, or `preallocate` was turned off since) is reused,
            // or cut before `O_APPEND` writes could land after it.
            let len = log.metadata().at(&a.log_path)?.len();
            let tail = if mapped {
                Some(Tail::opened(len.max(size)))
            } else {
                if len > size {
                    ops::set_len(&log, &a.log_path, size).at(&a.log_path)?;
                }
                None
            };
            self.extended = tail.as_ref().is_some_and(|t| t.allocated > size);
            let files = WriterFiles {
                log: Arc::new(log),
                index: Arc::new(open_append(&a.index_path)?),
                time: Arc::new(open_append(&a.time_path)?),
                tail,
            };
            self.files = Some(files);
            p.shared.fds.opened(p);
        }
        // A match, not `ok_or`: that builds (and drops) the error on every append.
        match self.files.as_ref() {
            Some(f) => Ok(f),
            None => Err(Error::Closed {
                what: "segment files",
            }),
        }
    }

    /// What a group-commit leader must sync: rolled segments and the active log. With
    /// `indexes`, the active segment's index files too (clean close and `Log::flush`). A group
    /// commit leaves them out: recovery after a crash rescans the segment holding the recovery
    /// point and rebuilds its indexes, so syncing them per commit would buy nothing and cost
    /// two more fsyncs per round.
    pub(crate) fn files_to_sync(&mut self, indexes: bool) -> Result<SyncList> {
        let mut out = self.take_rolled_files()?;
        if indexes {
            for path in std::mem::take(&mut self.txn_unsynced) {
                match File::open(&path) {
                    Ok(f) => out.push((Arc::new(f), path)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
        }
        let with_indexes = indexes && std::mem::take(&mut self.index_dirty);
        let a = &self.active;
        if let Some(f) = &self.files {
            out.push((Arc::clone(&f.log), a.log_path.clone()));
            if with_indexes {
                out.push((Arc::clone(&f.index), a.index_path.clone()));
                out.push((Arc::clone(&f.time), a.time_path.clone()));
            }
        } else {
            // Evicted (and, under fsync policies, synced then); reopen to sync the tail.
            let mut paths = vec![&a.log_path];
            if with_indexes {
                paths.push(&a.index_path);
                paths.push(&a.time_path);
            }
            for path in paths {
                let f = File::open(path).at(path)?;
                out.push((Arc::new(f), path.clone()));
            }
        }
        Ok(out)
    }

    /// Rolled segments' files for the flusher's post-roll sync.
    pub(crate) fn take_rolled(&mut self) -> Result<Option<(SyncList, i64)>> {
        if self.rolled.is_empty() && self.rolled_closed.is_empty() {
            return Ok(None);
        }
        Ok(Some((self.take_rolled_files()?, self.rolled_end)))
    }

    /// Every rolled segment file awaiting its sync, reopening those whose descriptors were
    /// given up (one that retention deleted meanwhile needs no sync). When a reopen fails,
    /// nothing is taken.
    fn take_rolled_files(&mut self) -> Result<SyncList> {
        let mut out = Vec::with_capacity(self.rolled_closed.len() + self.rolled.len());
        for path in &self.rolled_closed {
            match File::open(path) {
                Ok(f) => out.push((Arc::new(f), path.clone())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        self.rolled_closed.clear();
        out.append(&mut self.rolled);
        Ok(out)
    }

    /// Drops the descriptors (fd budget). Under fsync policies, syncs them first. A
    /// preallocated tail is cut first: disk reserved ahead of the data is then held only by
    /// the partitions the budget keeps open, however many partitions there are, and the
    /// mapping goes with the descriptor, so writable maps are bounded by the same budget.
    pub(crate) fn release_files(&mut self, policy: FlushPolicy) -> Result<bool> {
        if self.files.is_none() {
            return Ok(false);
        }
        // A failed cut costs only the reserved blocks until the roll, the clean close (which
        // cut by path, as `extended` stays set) or a recovery cuts them: the release goes on.
        let _ = self.trim_active(false);
        let Some(f) = self.files.take() else {
            return Ok(false);
        };
        if policy != FlushPolicy::Os {
            let a = &self.active;
            ops::sync_data(&f.log, &a.log_path).at(&a.log_path)?;
            ops::sync_data(&f.index, &a.index_path).at(&a.index_path)?;
            ops::sync_data(&f.time, &a.time_path).at(&a.time_path)?;
        }
        Ok(true)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Drops the active segment's descriptors (a truncation replaced its log).
    pub(super) fn drop_files(&mut self) {
        self.files = None;
        // The replacement is a copy of the data, without a preallocated tail.
        self.extended = false;
    }

    /// Cuts the active `.log`'s preallocated tail back to its data (a roll before the sealed
    /// segment's post-roll sync, a clean close), dropping the writer's mapping first. With
    /// `sync`, the cut is made durable here. Returns whether anything was cut.
    pub(crate) fn trim_active(&mut self, sync: bool) -> Result<bool> {
        if !self.extended {
            return Ok(false);
        }
        let size = self.acct.state().size;
        let path = &self.active.log_path;
        let cut = match self.files.as_mut() {
            Some(f) => match f.tail.as_mut() {
                Some(t) => {
                    let cut = t.trim(&f.log, path, size).at(path)?;
                    if cut && sync {
                        ops::sync_data(&f.log, path).at(path)?;
                    }
                    cut
                }
                None => false,
            },
            None => trim_path(path, size, sync).at(path)?,
        };
        self.extended = false;
        Ok(cut)
    }

    pub(crate) fn close_files(&mut self) {
        self.files = None;
        self.rolled.clear();
        self.rolled_closed.clear();
    }
}

impl Partition {
    /// Appends one encoded batch (base offset 0, CRC set) and returns where it landed, once it
    /// is acknowledged under the topic's flush policy. `expected_end` makes it conditional.
    pub(crate) fn append_encoded(
        self: &Arc<Self>,
        data: &mut [u8],
        expected_end: Option<i64>,
    ) -> Result<AppendResult> {
        self.append_with(data, expected_end, false, false, None)
    }

    /// Appends one encoded batch if `guard` accepts it under the writer lock (see
    /// [`AppendGuard`]).
    pub(crate) fn append_guarded(
        self: &Arc<Self>,
        data: &mut [u8],
        guard: &mut dyn AppendGuard,
    ) -> Result<AppendResult> {
        self.append_with(data, None, false, false, Some(guard))
    }

    /// Appends a control batch (a transaction marker; see `txn.rs`).
    pub(super) fn append_control(self: &Arc<Self>, data: &mut [u8]) -> Result<AppendResult> {
        self.append_with(data, None, false, true, None)
    }

    /// Appends an idempotent batch whose base sequence the writer assigns: the next sequence
    /// of the batch's producer id and epoch on this partition (0 for a new epoch). Used by
    /// [`crate::Producer`], whose concurrent sends may reach the writer in any order.
    pub(crate) fn append_sequenced(self: &Arc<Self>, data: &mut [u8]) -> Result<AppendResult> {
        self.append_with(data, None, true, false, None)
    }

    fn append_with<'a>(
        self: &Arc<Self>,
        data: &'a mut [u8],
        expected_end: Option<i64>,
        assign_seq: bool,
        control: bool,
        guard: Option<&'a mut dyn AppendGuard>,
    ) -> Result<AppendResult> {
        self.check_writable()?;
        // A guarded batch waits for the writer rather than queue: its guard is the caller's
        // borrowed state, which a combiner on another thread could not call.
        let locked = if guard.is_some() {
            Some(self.writer.lock())
        } else {
            self.writer.try_lock()
        };
        let (result, policy) = if let Some(mut w) = locked {
            // Uncontended: write straight from the caller's buffer, plus anything queued.
            let limits = w.limits;
            let mut own = Item {
                header: limits.prepare(data, control)?,
                data,
                expected_end,
                assign_seq,
                guard,
            };
            let r = self.write_with_queue(&mut w, Some(&mut own));
            drop(w);
            (r, limits.flush_policy)
        } else {
            let limits = WriteLimits::of(&self.config.read());
            let header = limits.prepare(data, control)?;
            // Flat combining: queue the batch; whoever holds the writer writes it with its own
            // and wakes us. Waiting on our slot, not on the writer lock, lets one combiner
            // answer every waiter without a lock handoff per waiter.
            let slot = Arc::new(Slot::default());
            {
                let mut queue = self.queue.lock();
                queue.push(Pending {
                    data: data.to_vec(),
                    header,
                    expected_end,
                    assign_seq,
                    slot: Arc::clone(&slot),
                });
                self.queued.store(true, Ordering::Release);
            }
            let mut spins = 0;
            let r = loop {
                if let Some(r) = slot.result.lock().take() {
                    break r;
                }
                if spins < QUEUED_SPINS {
                    // The combiner usually answers within one write: yield the CPU to it
                    // rather than sleep, since a sleeping thread's wake-up costs more than
                    // the write on a VM.
                    spins += 1;
                    std::thread::yield_now();
                    continue;
                }
                if let Some(mut w) = self.writer.try_lock() {
                    if slot.result.lock().is_none() {
                        // Our result (and the others') goes to the slots.
                        let _ = self.write_with_queue(&mut w, None);
                    }
                    drop(w);
                    // Holding the writer, we wrote whatever was queued; a combiner that took
                    // our batch earlier delivered before letting go of the writer.
                    break match slot.result.lock().take() {
                        Some(r) => r,
                        None => Err(Error::Closed {
                            what: "append lost its writer",
                        }),
                    };
                }
                let mut r = slot.result.lock();
                if r.is_none() {
                    let _ = slot.ready.wait_for(&mut r, QUEUED_RECHECK);
                }
                if let Some(r) = r.take() {
                    break r;
                }
            };
            (r, limits.flush_policy)
        };
        let r = result?;
        if policy.syncs_each_batch() {
            self.sync_to(r.last_offset + 1)?;
        }
        Ok(r)
    }

    /// Writes `own` (the caller's batch) and everything queued, delivering queued results
    /// to their slots. Returns the result of the caller's batch.
    fn write_with_queue(
        self: &Arc<Self>,
        w: &mut Writer,
        own: Option<&mut Item<'_>>,
    ) -> Result<AppendResult> {
        let mut results = std::mem::take(&mut w.scratch.results);
        let own_len = usize::from(own.is_some());
        // The flag spares the uncontended append the queue's lock. A batch queued just after
        // this load is written by its sender once the writer is free (see `append_with`).
        let mut queued = if self.queued.load(Ordering::Acquire) {
            let mut queue = self.queue.lock();
            self.queued.store(false, Ordering::Release);
            std::mem::take(&mut *queue)
        } else {
            Vec::new()
        };
        match own {
            Some(own) if queued.is_empty() => {
                self.write_items(w, std::slice::from_mut(own), &mut results);
            }
            _ => {
                let mut items: Vec<Item<'_>> = own.into_iter().map(Item::reborrow).collect();
                items.extend(queued.iter_mut().map(|q| Item {
                    data: &mut q.data,
                    header: q.header,
                    expected_end: q.expected_end,
                    assign_seq: q.assign_seq,
                    guard: None,
                }));
                self.write_items(w, &mut items, &mut results);
            }
        }
        let mut drained = results.drain(..);
        let first = if own_len > 0 { drained.next() } else { None };
        for (q, r) in queued.iter().zip(drained) {
            *q.slot.result.lock() = Some(r);
            q.slot.ready.notify_one();
        }
        w.scratch.results = results;
        match first {
            Some(r) => r,
            None => Err(Error::Closed {
                what: "no batch to append",
            }),
        }
    }

    /// Writes items in order, rolling as needed, in as few `writev` calls as possible; one
    /// result per item goes to `results`.
    fn write_items(
        self: &Arc<Self>,
        w: &mut Writer,
        items: &mut [Item<'_>],
        results: &mut Vec<Result<AppendResult>>,
    ) {
        let cfg = w.limits;
        let Scratch {
            mut group,
            mut entries,
            mut undo,
            ..
        } = std::mem::take(&mut w.scratch);
        let mut acct = w.acct;
        let mut next = w.next_offset;
        let mut failed: Option<Error> = None;
        // Guarded items whose check passed, with where they were placed.
        let mut guarded: Vec<(usize, Option<BatchLocation>)> = Vec::new();
        let log_start = self.log_start();
        // The producer state is updated in place as batches are accounted; `undo` takes back
        // what a failed write did not store.
        for i in 0..items.len() {
            if let Some(e) = &failed {
                results.push(Err(e.duplicate()));
                continue;
            }
            if let Err(e) = self.check_writable() {
                results.push(Err(e));
                continue;
            }
            let Some(item) = items.get(i) else { break };
            if let Some(expected) = item.expected_end
                && expected != next
            {
                results.push(Err(Error::EndOffsetMismatch {
                    expected,
                    actual: next,
                }));
                continue;
            }
            if let Some(g) = items.get_mut(i).and_then(|item| item.guard.as_deref_mut()) {
                if let Err(e) = g.check(next) {
                    results.push(Err(e));
                    continue;
                }
                guarded.push((i, None));
            }
            let control = items.get(i).is_some_and(|item| item.header.is_control());
            if control {
                let Some(item) = items.get(i) else { break };
                if let Err(e) = w.producers.check_marker(&item.header) {
                    results.push(Err(e));
                    continue;
                }
            } else if items
                .get(i)
                .is_some_and(|item| item.header.producer_id >= 0)
            {
                let Some(item) = items.get_mut(i) else { break };
                let checked = if item.assign_seq {
                    // The producer's batch comes without a CRC: it is computed once, here,
                    // with the sequence in place.
                    w.producers.assign_sequence(&item.header).map(|seq| {
                        item.header.crc = stamp_base_sequence(item.data, seq);
                        item.header.base_sequence = seq;
                        Check::Append
                    })
                } else {
                    w.producers.check(&item.header, &self.topic, self.id)
                };
                match checked {
                    Ok(Check::Append) => {}
                    Ok(Check::Duplicate(b)) => {
                        results.push(Ok(AppendResult {
                            base_offset: b.first_offset,
                            last_offset: b.last_offset,
                            timestamp: b.timestamp,
                            log_start_offset: log_start,
                        }));
                        continue;
                    }
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                }
            }
            let Some(item) = items.get(i) else { break };
            let size = item.data.len() as u64;
            let delta = i64::from(item.header.last_offset_delta.max(0));
            if next
                .checked_add(delta)
                .is_none_or(|l| l > crate::segment::MAX_OFFSET)
            {
                results.push(Err(Error::invalid_batch(format!(
                    "offsets past {next} would overflow the 63-bit offset space"
                ))));
                continue;
            }
            let ts = item.header.max_timestamp;
            let st = acct.state();
            let aged = if st.first_batch_max_timestamp >= 0 && ts >= 0 {
                ts - st.first_batch_max_timestamp > cfg.segment_ms as i64
            } else {
                w.active
                    .created
                    .elapsed()
                    .is_ok_and(|e| e.as_millis() > u128::from(cfg.segment_ms))
            };
            let limits = RollLimits {
                segment_bytes: cfg.segment_bytes,
                max_index_entries: w.active.max_index_entries(),
                max_time_entries: w.active.max_time_entries(),
            };
            let need_roll = acct.must_roll(size, next + delta, limits) || (st.size > 0 && aged);
            if need_roll {
                let flushed = self.flush_group(w, items, &group, acct, &entries);
                match &flushed {
                    // What the group stored stays; later updates are undone on their own.
                    Ok(()) => undo.clear(),
                    Err(_) => undo_all(&mut w.producers, &mut undo),
                }
                let stored = flushed.is_ok();
                if let Err(e) = flushed.and_then(|()| self.roll(w)) {
                    // A group that was written and published keeps its results: only the
                    // batches after it failed (the roll they needed).
                    if !stored {
                        for &g in &group {
                            if let Some(r) = results.get_mut(g) {
                                *r = Err(e.duplicate());
                            }
                        }
                    }
                    group.clear();
                    results.push(Err(e.duplicate()));
                    failed = Some(e);
                    continue;
                }
                group.clear();
                entries.clear();
                acct = w.acct;
            }
            let Some(item) = items.get_mut(i) else { break };
            stamp_base_offset(item.data, next);
            if control {
                if let Some(commit) = marker_commits(item.data) {
                    let (u, aborted) = w.producers.end_txn(&item.header, next, commit);
                    undo.push(u);
                    w.scratch.aborts.extend(aborted);
                }
            } else if let Some(u) = w.producers.update_undoable(&item.header, next) {
                undo.push(u);
            }
            let last = next + delta;
            if let Some(g) = guarded.last_mut().filter(|g| g.0 == i) {
                g.1 = Some(BatchLocation {
                    segment: acct.base(),
                    position: acct.state().size as u32,
                });
            }
            entries.push(&acct.account(size, last, ts));
            results.push(Ok(AppendResult {
                base_offset: next,
                last_offset: last,
                timestamp: ts,
                log_start_offset: log_start,
            }));
            group.push(i);
            next = last + 1;
        }
        if failed.is_none() && !group.is_empty() {
            if let Err(e) = self.flush_group(w, items, &group, acct, &entries) {
                undo_all(&mut w.producers, &mut undo);
                for &g in &group {
                    if let Some(r) = results.get_mut(g) {
                        *r = Err(e.duplicate());
                    }
                }
            }
        } else if failed.is_some() {
            undo_all(&mut w.producers, &mut undo);
        }
        for (i, at) in guarded {
            let (Some(item), Some(r)) = (items.get_mut(i), results.get(i)) else {
                continue;
            };
            let Some(g) = item.guard.as_deref_mut() else {
                continue;
            };
            match (r, at) {
                (Ok(r), Some(at)) => g.settle(Ok((*r, at))),
                (Err(e), _) => g.settle(Err(e)),
                (Ok(_), None) => g.settle(Err(&Error::Closed {
                    what: "a guarded batch was not placed",
                })),
            }
        }
        undo.clear();
        group.clear();
        entries.clear();
        w.scratch.aborts.clear();
        w.scratch.group = group;
        w.scratch.entries = entries;
        w.scratch.undo = undo;
    }

    /// Writes a group of stamped batches and their index entries, then publishes them. On
    /// failure cuts whatever part reached the files (none of it was published).
    fn flush_group(
        self: &Arc<Self>,
        w: &mut Writer,
        items: &[Item<'_>],
        group: &[usize],
        acct: Accountant,
        entries: &IndexBytes,
    ) -> Result<()> {
        if group.is_empty() {
            return Ok(());
        }
        let (index_buf, time_buf) = (&entries.index[..], &entries.time[..]);
        let st = *acct.state();
        let published = *w.acct.state();
        w.files(self)?;
        let segment_bytes = u64::from(w.limits.segment_bytes);
        let (Some(files), a) = (&mut w.files, &w.active) else {
            return Err(Error::Closed {
                what: "segment files",
            });
        };
        let batches = group
            .iter()
            .filter_map(|&i| items.get(i))
            .map(|it| &*it.data);
        let mut fell_back = false;
        let mut r = match files.tail.as_mut() {
            Some(tail) => {
                match tail.store(
                    &files.log,
                    &a.log_path,
                    published.size,
                    segment_bytes,
                    batches,
                ) {
                    Ok(()) => {
                        w.extended |= tail.allocated > st.size;
                        Ok(())
                    }
                    Err(StoreError::Unsupported) => {
                        // No `fallocate` here: this partition appends with `O_APPEND`
                        // writes from now on (nothing was allocated: the file ends at the
                        // published size).
                        files.tail = None;
                        fell_back = true;
                        open_append(&a.log_path).map(|f| files.log = Arc::new(f))
                    }
                    Err(StoreError::Failed(e)) => Err(e).at(&a.log_path),
                }
            }
            None => Ok(()),
        };
        if fell_back {
            w.no_fallocate = true;
        }
        let (log, index, time) = (&*files.log, &*files.index, &*files.time);
        // Not after a failed reopen for the write path: that descriptor is not `O_APPEND`.
        if r.is_ok() && files.tail.is_none() {
            // A single batch needs no slice list.
            r = if let [one] = group {
                let data = items.get(*one).map_or(&[][..], |it| &*it.data);
                ops::write_all(log, &a.log_path, data)
            } else {
                let mut slices: Vec<IoSlice<'_>> = group
                    .iter()
                    .filter_map(|&i| items.get(i))
                    .map(|it| IoSlice::new(it.data))
                    .collect();
                ops::writev_all(log, &a.log_path, &mut slices)
            }
            .at(&a.log_path);
        }
        if r.is_ok() && !index_buf.is_empty() {
            r = ops::write_all(index, &a.index_path, index_buf).at(&a.index_path);
        }
        if r.is_ok() && !time_buf.is_empty() {
            r = ops::write_all(time, &a.time_path, time_buf).at(&a.time_path);
        }
        if let Err(e) = r {
            // Cut the unpublished bytes so the files end where readers think they do; a
            // preallocated log keeps its length and has them zeroed instead, so no refused
            // batch lies whole after the published end for a recovery to find.
            let index_len = u64::from(published.index_entries) * INDEX_ENTRY as u64;
            let time_len = u64::from(published.time_entries) * TIME_ENTRY as u64;
            let cut_log = match &files.tail {
                Some(tail) => tail.zero(log, &a.log_path, published.size, st.size),
                None => ops::set_len(log, &a.log_path, published.size),
            };
            let cut = cut_log
                .and_then(|()| ops::set_len(index, &a.index_path, index_len))
                .and_then(|()| ops::set_len(time, &a.time_path, time_len));
            if let Err(cut_err) = cut {
                // The files may now hold bytes past the published end; recovery at the next
                // open cuts them. Refuse writes until then.
                self.poison(format!("could not cut a failed write: {cut_err}"));
            }
            w.files = None;
            return Err(e);
        }
        let records: u64 = group
            .iter()
            .filter_map(|&i| items.get(i))
            .map(|it| u64::from(it.header.record_count.max(0) as u32))
            .sum();
        // Only the writer (under its lock) changes these: a load and a store, no locked add.
        let c = &self.counters;
        c.records_appended.store(
            c.records_appended.load(Ordering::Relaxed) + records,
            Ordering::Relaxed,
        );
        c.bytes_appended.store(
            c.bytes_appended.load(Ordering::Relaxed) + (st.size - published.size),
            Ordering::Relaxed,
        );
        w.acct = acct;
        w.next_offset = st.end_offset;
        w.index_dirty |= !entries.is_empty();
        // Before the end moves, and in this order: an aborted transaction's entry is in the
        // readers' list before the last stable offset moves past its records, and a reader
        // never sees a transaction's first batch without the last stable offset held below it.
        if !w.scratch.aborts.is_empty() {
            self.store_aborts(w);
        }
        self.first_unstable.store(
            w.producers.first_unstable().unwrap_or(i64::MAX),
            Ordering::Release,
        );
        w.active.publish(&st);
        self.publish_end(st.end_offset, w.limits.flush_policy);
        Ok(())
    }

    /// Stores the aborted transactions of a group just written: in memory for readers, and in
    /// the active segment's `.txnindex` (synced now unless the policy is `Os`; under `Os` the
    /// next flush or the post-roll sync does it). A failed index write poisons the partition:
    /// the marker is in the log, and the open that follows rebuilds the index from it.
    fn store_aborts(&self, w: &mut Writer) {
        let aborts = std::mem::take(&mut w.scratch.aborts);
        self.add_aborted(&aborts);
        let base = w.active.base_offset;
        let os = w.limits.flush_policy == FlushPolicy::Os;
        match crate::segment::txn_index::append(&self.dir, base, &aborts, !os) {
            Ok(()) => {
                let path = w.active.txn_index_path();
                if os && !w.txn_unsynced.contains(&path) {
                    w.txn_unsynced.push(path);
                }
                if !os {
                    // A new file's name must survive too.
                    if let Err(e) = crate::io::sync_dir(&self.dir) {
                        self.poison(format!("could not sync a transaction index: {e}"));
                    }
                }
            }
            Err(e) => self.poison(format!("could not write a transaction index: {e}")),
        }
        w.scratch.aborts = aborts;
        w.scratch.aborts.clear();
    }

    /// Closes the active segment and starts a new one at the next offset.
    pub(crate) fn roll(self: &Arc<Self>, w: &mut Writer) -> Result<()> {
        let old = Arc::clone(&w.active);
        // Final time entry so the sealed segment's last entry holds its largest timestamp.
        let mut sealed = w.acct;
        if let Some(e) = sealed.seal() {
            let time = Arc::clone(&w.files(self)?.time);
            if let Err(err) = ops::write_all(&time, &old.time_path, &e) {
                // Cut a partial entry (the index holds whole entries); the roll is retried
                // with the next append.
                let whole = u64::from(w.acct.state().time_entries) * TIME_ENTRY as u64;
                if let Err(cut_err) = ops::set_len(&time, &old.time_path, whole) {
                    self.poison(format!("could not cut a failed write: {cut_err}"));
                }
                return Err(Error::io(&old.time_path, err));
            }
            w.acct = sealed;
            old.publish(w.acct.state());
        }
        // The sealed segment's allocated, never-written tail is cut now, before its post-roll
        // sync makes that durable, so a sealed segment at rest is exactly Kafka's. A crash
        // before that sync may leave the tail, with the next segment after it: recovery reads
        // a zero tail above the recovery point as the end of the data and keeps every segment.
        w.trim_active(false)?;
        let base = w.next_offset;
        Segment::create_files(&self.dir, base)?;
        // The directory's fsync is left to the next sync of the partition (`sync_files`):
        // nothing is promised durable before one, and an append under `Os` does not wait for
        // a directory fsync per roll.
        self.rolls.fetch_add(1, Ordering::AcqRel);
        let cfg = self.config();
        let seg = Arc::new(Segment::new(
            &self.dir,
            base,
            self.next_generation(),
            SegmentState::empty(base),
            u64::from(cfg.segment_bytes),
            cfg.segment_index_bytes as usize,
            false,
        ));
        old.seal();
        if let Some(f) = w.files.take() {
            w.rolled.push((f.log, old.log_path.clone()));
            w.rolled.push((f.index, old.index_path.clone()));
            w.rolled.push((f.time, old.time_path.clone()));
            self.shared.fds.closed();
        } else {
            // The descriptor budget closed them (under `Os`, unsynced): the sync reopens them.
            // Without this nothing would sync the sealed segment.
            for path in [&old.log_path, &old.index_path, &old.time_path] {
                w.rolled_closed.push(path.clone());
            }
        }
        // The sealed segment's transaction index, if written since its last sync.
        w.rolled_closed.append(&mut w.txn_unsynced);
        // Bound the descriptors waiting for post-roll syncs: beyond `ROLLED_OPEN` segments,
        // the oldest wait as paths.
        let excess = w.rolled.len().saturating_sub(ROLLED_OPEN * 3);
        w.rolled_closed
            .extend(w.rolled.drain(..excess).map(|(_, path)| path));
        w.rolled_end = base;
        let mut segs: Vec<Arc<Segment>> = self.segments().as_ref().clone();
        segs.push(Arc::clone(&seg));
        self.set_segments(segs);
        w.active = seg;
        w.index_dirty = false;
        w.acct = Accountant::new(base, cfg.index_interval_bytes);
        // Recovery after a crash replays producer state from here, not from the log start.
        super::producer_state::write_snapshot(&self.dir, &w.producers, base)?;
        Ok(())
    }

    /// Rolls the active segment if it holds data (used by retention before deleting it).
    pub(crate) fn roll_if_not_empty(self: &Arc<Self>) -> Result<()> {
        let mut w = self.writer.lock();
        if w.acct.state().size > 0 {
            self.roll(&mut w)?;
        }
        Ok(())
    }

    /// Moves the log end up to `offset`, when it is below, by starting a new segment there, and
    /// syncs it: the offsets between are a gap that readers step over. Used at open when damage
    /// at rest left the end below an offset a group committed, so that offset is not handed
    /// out again (its consumers would skip the new records).
    pub(crate) fn skip_to(self: &Arc<Self>, offset: i64) -> Result<()> {
        self.check_writable()?;
        // A committed offset past what any log can hold is reported, not followed.
        let offset = offset.min(crate::segment::MAX_OFFSET);
        {
            let mut w = self.writer.lock();
            if w.next_offset >= offset {
                return Ok(());
            }
            w.next_offset = offset;
            self.roll(&mut w)?;
            self.log_end.store(offset, Ordering::Release);
            self.high_watermark.store(offset, Ordering::Release);
        }
        // Synced now: the recovery point then covers the gap, and a crash before the next sync
        // cannot take the new segment for a torn tail and hand the offsets out again.
        self.flush()
    }
}
