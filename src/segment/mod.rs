//! Segments: one `.log` file of batches with its sparse `.index` and `.timeindex`, named by
//! base offset. A segment's state that readers need (published size, end offset, index entry
//! counts, timestamps) lives in atomics; the writer publishes with `Release`, readers load
//! with `Acquire`.

pub(crate) mod index;
mod map_budget;
pub(crate) mod swap;
pub(crate) mod txn_index;
pub(crate) mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, IoContext, Result};

use crate::io::map::Mapped;
use crate::layout::{FileKind, Transient, file_name, with_transient};
use crate::record::Batch;
use crate::record::batch::{BATCH_HEADER_LEN, BatchHeader};

pub(crate) use index::{INDEX_ENTRY, TIME_ENTRY};
pub(crate) use map_budget::MapBudget;

/// Largest offset a record may have: leaves room for relative offsets and the `+ 1` of an
/// end offset, so offset arithmetic never overflows.
pub(crate) const MAX_OFFSET: i64 = i64::MAX - (1 << 32);

/// Milliseconds since the epoch (0 for a time before it).
pub(crate) fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// When appends to the segment whose log is `log` began: the file's creation time, else its
/// last modification, else now (a `stat` that fails only costs the roll its head start).
fn appends_began(log: &Path) -> SystemTime {
    match std::fs::metadata(log) {
        Ok(m) => m
            .created()
            .or_else(|_| m.modified())
            .unwrap_or_else(|_| SystemTime::now()),
        Err(_) => SystemTime::now(),
    }
}

/// Maps of a segment's three files.
pub(crate) struct SegmentMaps {
    pub(crate) log: Arc<Mapped>,
    /// `log` as one `Bytes`: a batch handed out is a slice of it (no allocation per batch).
    log_bytes: Bytes,
    /// `None` when the file is missing (read-only opens cannot rebuild it): lookups then scan
    /// from the segment's start.
    pub(crate) index: Option<Arc<Mapped>>,
    pub(crate) time: Option<Arc<Mapped>>,
}

impl SegmentMaps {
    /// A view of `pos..pos + len` of the mapped `.log` that keeps the mapping alive: no copy,
    /// no allocation. `None` past the mapping.
    pub(crate) fn log_view(&self, pos: usize, len: usize) -> Option<Bytes> {
        let end = pos.checked_add(len)?;
        (end <= self.log_bytes.len()).then(|| self.log_bytes.slice(pos..end))
    }
}

impl std::fmt::Debug for SegmentMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentMaps")
            .field("log", &self.log)
            .field("index", &self.index)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

/// State a loader or a roll gives a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentState {
    pub(crate) size: u64,
    pub(crate) end_offset: i64,
    pub(crate) index_entries: u32,
    pub(crate) time_entries: u32,
    pub(crate) max_timestamp: i64,
    pub(crate) max_timestamp_offset: i64,
    pub(crate) first_batch_max_timestamp: i64,
}

impl SegmentState {
    pub(crate) fn empty(base_offset: i64) -> SegmentState {
        SegmentState {
            size: 0,
            end_offset: base_offset,
            index_entries: 0,
            time_entries: 0,
            max_timestamp: -1,
            max_timestamp_offset: base_offset,
            first_batch_max_timestamp: -1,
        }
    }
}

/// One segment. Immutable identity, atomically published state, lazily mapped files.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) log_path: PathBuf,
    pub(crate) index_path: PathBuf,
    pub(crate) time_path: PathBuf,
    size: AtomicU64,
    end_offset: AtomicI64,
    index_entries: AtomicU32,
    time_entries: AtomicU32,
    max_timestamp: AtomicI64,
    max_timestamp_offset: AtomicI64,
    first_batch_max_timestamp: AtomicI64,
    sealed: AtomicBool,
    /// Capacity to map the log at while active (the topic's `segment_bytes`).
    log_capacity: AtomicU64,
    index_capacity: usize,
    /// When appends to this segment began, for the `segment_ms` roll of a segment whose
    /// records carry no timestamps: the roll's time for a new segment; for the active segment
    /// found at open, its `.log` file's creation time (its modification time where the file
    /// system records no creation time: the last append, a lower bound of the age), so a
    /// reopen does not restart the clock.
    pub(crate) created: SystemTime,
    maps: Mutex<Option<Arc<SegmentMaps>>>,
    /// A read-only view's mapping of the `.log` it validated at load, taken through the
    /// descriptor it opened before loading. Reads use it instead of opening the path again:
    /// the owner may since have renamed a compacted file over that path or unlinked it, and
    /// the old inode stays readable through this mapping.
    pinned_log: std::sync::OnceLock<Arc<Mapped>>,
    /// A read-only view's `.log` length before the loader read it: bytes past this are the
    /// owner's news. (Past `size()` and below this lie bytes the view saw and did not take, a
    /// damaged or torn tail: no reason to look again.)
    listed_len: std::sync::atomic::AtomicU64,
    /// A read-only view found zeros right after the data it loaded (see `pin_log`).
    zeros_after: AtomicBool,
}

impl Segment {
    pub(crate) fn new(
        dir: &Path,
        base_offset: i64,
        _generation: u64,
        state: SegmentState,
        log_capacity: u64,
        index_capacity: usize,
        sealed: bool,
    ) -> Segment {
        Segment {
            base_offset,
            log_path: dir.join(file_name(base_offset, FileKind::Log)),
            index_path: dir.join(file_name(base_offset, FileKind::Index)),
            time_path: dir.join(file_name(base_offset, FileKind::TimeIndex)),
            size: AtomicU64::new(state.size),
            end_offset: AtomicI64::new(state.end_offset),
            index_entries: AtomicU32::new(state.index_entries),
            time_entries: AtomicU32::new(state.time_entries),
            max_timestamp: AtomicI64::new(state.max_timestamp),
            max_timestamp_offset: AtomicI64::new(state.max_timestamp_offset),
            first_batch_max_timestamp: AtomicI64::new(state.first_batch_max_timestamp),
            sealed: AtomicBool::new(sealed),
            log_capacity: AtomicU64::new(log_capacity),
            index_capacity,
            created: if sealed || state.size == 0 {
                SystemTime::now()
            } else {
                appends_began(&dir.join(file_name(base_offset, FileKind::Log)))
            },
            maps: Mutex::new(None),
            pinned_log: std::sync::OnceLock::new(),
            listed_len: std::sync::atomic::AtomicU64::new(0),
            zeros_after: AtomicBool::new(false),
        }
    }

    /// The `.log` file's last modification, in milliseconds since the epoch.
    ///
    /// # Errors
    /// I/O errors from `stat`.
    pub(crate) fn last_modified_ms(&self) -> Result<i64> {
        let modified = std::fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .at(&self.log_path)?;
        Ok(epoch_ms(modified))
    }

    /// The time retention ages this segment from (Kafka's `LogSegment.largestTimestamp`): its
    /// largest record timestamp, or when no record carries one, its `.log` file's last
    /// modification, the time of its last append. Not the time this process loaded it: that
    /// would let retention delete a segment written a second earlier and let every reopen
    /// restart the age of old ones.
    ///
    /// # Errors
    /// I/O errors from `stat` (only read when there is no record timestamp).
    pub(crate) fn largest_timestamp(&self) -> Result<i64> {
        let ts = self.max_timestamp();
        if ts >= 0 {
            Ok(ts)
        } else {
            self.last_modified_ms()
        }
    }

    /// Makes reads use `log` (a mapping of this segment's `.log` inode, at least `size()`
    /// bytes) instead of whatever the path names later. Read-only views only: their segment
    /// state never grows, so the mapping never needs to.
    ///
    /// `zeros_after`: the file held zeros right after `size()` when the view loaded it (a
    /// `preallocate=true` segment's unwritten range), where the owner's next append lands
    /// without making the file longer.
    pub(crate) fn pin_log(&self, log: Arc<Mapped>, listed_len: u64, zeros_after: bool) {
        self.listed_len
            .store(listed_len, std::sync::atomic::Ordering::Release);
        self.zeros_after
            .store(zeros_after, std::sync::atomic::Ordering::Release);
        let _ = self.pinned_log.set(log);
        // Maps taken before the pin came from the path; drop them.
        self.maps.lock().take();
    }

    /// The `.log` length a read-only view listed before loading (see `pin_log`).
    pub(crate) fn listed_len(&self) -> u64 {
        self.listed_len.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A read-only view found zeros after the data it loaded (see `pin_log`).
    pub(crate) fn zeros_after(&self) -> bool {
        self.zeros_after.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The segment's `.txnindex` (present only when an aborted transaction ends in it).
    pub(crate) fn txn_index_path(&self) -> PathBuf {
        self.log_path
            .with_file_name(file_name(self.base_offset, FileKind::TxnIndex))
    }

    /// Creates the three empty files of a new segment. The caller fsyncs the directory.
    pub(crate) fn create_files(dir: &Path, base_offset: i64) -> Result<()> {
        for kind in FileKind::SEGMENT {
            let p = dir.join(file_name(base_offset, kind));
            crate::io::ops::create_truncate(&p).at(&p)?;
        }
        Ok(())
    }

    /// Renames the segment's files to `.deleted` and unlinks them (a crash in between leaves
    /// `.deleted` files that the next open sweeps away). Live mappings stay valid on Linux.
    pub(crate) fn delete_files(&self) -> Result<()> {
        let txn = self.txn_index_path();
        for p in [&self.log_path, &self.index_path, &self.time_path, &txn] {
            let gone = with_transient(p, Transient::Deleted);
            match crate::io::ops::rename(p, &gone) {
                Ok(()) => crate::io::ops::remove_file(&gone).at(&gone)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(p, e)),
            }
        }
        Ok(())
    }

    /// Published bytes of the log.
    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Next offset after the last published batch (the base offset when empty).
    pub(crate) fn end_offset(&self) -> i64 {
        self.end_offset.load(Ordering::Acquire)
    }

    pub(crate) fn index_entries(&self) -> u32 {
        self.index_entries.load(Ordering::Acquire)
    }

    pub(crate) fn time_entries(&self) -> u32 {
        self.time_entries.load(Ordering::Acquire)
    }

    /// Largest record timestamp, -1 when none.
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn max_timestamp_offset(&self) -> i64 {
        self.max_timestamp_offset.load(Ordering::Acquire)
    }

    pub(crate) fn first_batch_max_timestamp(&self) -> i64 {
        self.first_batch_max_timestamp.load(Ordering::Acquire)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size() == 0
    }

    pub(crate) fn seal(&self) {
        self.sealed.store(true, Ordering::Release);
    }

    pub(crate) fn max_index_entries(&self) -> u32 {
        (self.index_capacity / INDEX_ENTRY) as u32
    }

    /// The time index counts as full one entry early, so a final entry can always be forced
    /// at roll (Kafka's rule).
    pub(crate) fn max_time_entries(&self) -> u32 {
        ((self.index_capacity / TIME_ENTRY) as u32).saturating_sub(1)
    }

    /// Publishes what the writer appended (called with the writer lock held). Order matters:
    /// index counts and timestamps first, then size and end offset, all with `Release`.
    pub(crate) fn publish(&self, s: &SegmentState) {
        self.index_entries.store(s.index_entries, Ordering::Release);
        self.time_entries.store(s.time_entries, Ordering::Release);
        self.max_timestamp.store(s.max_timestamp, Ordering::Release);
        self.max_timestamp_offset
            .store(s.max_timestamp_offset, Ordering::Release);
        self.first_batch_max_timestamp
            .store(s.first_batch_max_timestamp, Ordering::Release);
        self.size.store(s.size, Ordering::Release);
        self.end_offset.store(s.end_offset, Ordering::Release);
    }

    /// A snapshot of the published state.
    pub(crate) fn state(&self) -> SegmentState {
        SegmentState {
            size: self.size(),
            end_offset: self.end_offset(),
            index_entries: self.index_entries(),
            time_entries: self.time_entries(),
            max_timestamp: self.max_timestamp(),
            max_timestamp_offset: self.max_timestamp_offset(),
            first_batch_max_timestamp: self.first_batch_max_timestamp(),
        }
    }

    /// The segment's maps, mapping the files on first use (or again when the log has grown
    /// past the mapped capacity). The budget may later unmap an idle segment; live `Bytes`
    /// views keep their mapping alive.
    pub(crate) fn maps(self: &Arc<Self>, budget: &MapBudget) -> Result<Arc<SegmentMaps>> {
        let size = self.size();
        let mut guard = self.maps.lock();
        if let Some(m) = guard.as_ref()
            && m.log.capacity() as u64 >= size
            && m.index.as_ref().map_or(0, |i| i.capacity())
                >= self.index_entries() as usize * INDEX_ENTRY
            && m.time.as_ref().map_or(0, |t| t.capacity())
                >= self.time_entries() as usize * TIME_ENTRY
        {
            return Ok(Arc::clone(m));
        }
        let log_cap = if self.sealed.load(Ordering::Acquire) {
            size
        } else {
            self.log_capacity.load(Ordering::Acquire).max(size)
        };
        let map_file = |path: &Path, cap: usize| -> Result<Arc<Mapped>> {
            let f = File::open(path).at(path)?;
            Mapped::map(&f, cap).at(path)
        };
        let map_index = |path: &Path| -> Result<Option<Arc<Mapped>>> {
            match File::open(path) {
                Ok(f) => Ok(Some(Mapped::map(&f, self.index_capacity).at(path)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(path, e)),
            }
        };
        let log = match self.pinned_log.get() {
            Some(pinned) => Arc::clone(pinned),
            None => map_file(&self.log_path, log_cap as usize)?,
        };
        let maps = Arc::new(SegmentMaps {
            log_bytes: log.whole(),
            log,
            index: map_index(&self.index_path)?,
            time: map_index(&self.time_path)?,
        });
        let fresh = guard.is_none();
        *guard = Some(Arc::clone(&maps));
        drop(guard);
        if fresh {
            budget.mapped(self);
        }
        Ok(maps)
    }

    /// Drops this segment's maps (the budget evicting it); readers holding views keep theirs.
    pub(crate) fn unmap(&self) {
        self.maps.lock().take();
    }

    pub(crate) fn is_mapped(&self) -> bool {
        self.maps.lock().is_some()
    }

    /// Parses the batch header at `pos`, which must lie below the published size.
    pub(crate) fn header_at(&self, maps: &SegmentMaps, pos: u64, size: u64) -> Result<BatchHeader> {
        let corrupt = |reason: String| Error::Corrupt {
            path: self.log_path.clone(),
            position: pos,
            reason,
        };
        if pos + BATCH_HEADER_LEN as u64 > size {
            return Err(corrupt(format!(
                "batch header runs past the published end {size}"
            )));
        }
        let buf = maps
            .log
            .slice(pos as usize, BATCH_HEADER_LEN)
            .ok_or_else(|| corrupt("position outside the mapping".into()))?;
        let h = BatchHeader::parse(buf).map_err(|e| corrupt(e.to_string()))?;
        if h.last_offset_delta < 0 || h.base_offset < self.base_offset {
            return Err(corrupt(format!(
                "batch offsets {}..={} are not valid in segment {}",
                h.base_offset,
                h.last_offset(),
                self.base_offset
            )));
        }
        if pos + h.size() as u64 > size {
            return Err(corrupt(format!(
                "batch of {} bytes runs past the published end {size}",
                h.size()
            )));
        }
        Ok(h)
    }

    /// The batch whose header `h` was read at `pos`, as a zero-copy view of the mapping.
    pub(crate) fn batch_at(&self, maps: &SegmentMaps, pos: u64, h: BatchHeader) -> Result<Batch> {
        let bytes = maps
            .log_view(pos as usize, h.size())
            .ok_or_else(|| Error::Corrupt {
                path: self.log_path.clone(),
                position: pos,
                reason: "batch outside the mapping".into(),
            })?;
        Ok(Batch::from_parts(h, bytes))
    }

    /// File position of a batch at or before the one holding `target`: the offset index's
    /// floor entry, checked against the log (it must point at a batch header below the
    /// published size that starts at or before `target`), else 0. A damaged index therefore
    /// costs a longer scan, never a wrong answer.
    pub(crate) fn position_for(&self, maps: &SegmentMaps, target: i64) -> u64 {
        let pos = match &maps.index {
            Some(ix) => index::floor_position(ix, self.index_entries(), self.base_offset, target),
            None => 0,
        };
        if pos == 0 {
            return 0;
        }
        match self.header_at(maps, pos, self.size()) {
            Ok(h) if h.base_offset <= target && h.base_offset >= self.base_offset => pos,
            _ => 0,
        }
    }

    /// File position from which to scan for the first record with timestamp >= `ts`: the
    /// batch named by the time index's floor entry, if that batch really ends at the entry's
    /// offset with the entry's timestamp; else 0 (a damaged entry costs a longer scan, never
    /// a wrong answer).
    pub(crate) fn position_for_time(&self, maps: &SegmentMaps, ts: i64) -> u64 {
        let Some(time) = &maps.time else { return 0 };
        let Some((entry_ts, offset)) =
            index::time_floor_entry(time, self.time_entries(), self.base_offset, ts)
        else {
            return 0;
        };
        let size = self.size();
        let mut pos = self.position_for(maps, offset);
        while pos < size {
            let Ok(h) = self.header_at(maps, pos, size) else {
                return 0;
            };
            match h.last_offset().cmp(&offset) {
                std::cmp::Ordering::Less => pos += h.size() as u64,
                std::cmp::Ordering::Equal if h.max_timestamp == entry_ts => return pos,
                _ => return 0,
            }
        }
        0
    }
}
