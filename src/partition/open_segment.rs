//! How the open establishes one segment's batches: trusting its indexes after cheap checks,
//! resuming from the recovery point after a crash, or scanning it whole, and the index entries
//! a scan rebuilds through the segment writer's [`Accountant`]. Nothing here changes a file;
//! [`super::recovery::load`] writes rebuilt indexes and cuts logs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{IoContext, Result};
use crate::io::map::Mapped;
use crate::layout::{self, FileKind};
use crate::record::batch::{BATCH_HEADER_LEN, BatchHeader, batch_crc};
use crate::segment::SegmentState;
use crate::segment::index::{self, INDEX_ENTRY, IndexTracker, TIME_ENTRY};
use crate::segment::writer::{Accountant, IndexBytes};

use super::log_bytes::{LogBytes, PreadLog};

/// Result of reading a segment's batches.
pub(super) struct Scan {
    pub(super) valid_len: u64,
    pub(super) state: SegmentState,
    pub(super) index: Vec<u8>,
    pub(super) time: Vec<u8>,
    pub(super) tracker: IndexTracker,
    pub(super) problem: Option<String>,
}

/// How much of each batch a scan checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Header, length, offsets and the CRC over the whole batch.
    Crc,
    /// Header, length and offsets only: the batch's bytes are not read. For the tails of
    /// sealed segments a clean close left, which readers check batch by batch anyway.
    Headers,
}

/// Reads batches from `start` (which is `state.size`), checking each one's header, length,
/// offsets and (with [`Check::Crc`]) CRC, until the end or the first bad byte. Each batch is
/// accounted as the writer accounts it; with `build_index`, the index entries it adds are
/// collected, otherwise an entry the writer would have added means the index is missing
/// entries.
pub(super) fn scan<L: LogBytes + ?Sized>(
    log: &L,
    base: i64,
    start: u64,
    state: SegmentState,
    tracker: IndexTracker,
    build_index: bool,
    check: Check,
) -> Scan {
    let mut pos = start;
    let mut acct = Accountant::resume(base, state, tracker);
    let mut built = IndexBytes::default();
    let len = log.len();
    let problem = loop {
        if pos == len {
            break None;
        }
        let left = len.saturating_sub(pos);
        if left < BATCH_HEADER_LEN as u64 {
            break Some(format!("{left} stray bytes after the last whole batch"));
        }
        let Some(head) = log.bytes(pos, BATCH_HEADER_LEN) else {
            break Some(format!("the batch header at byte {pos} could not be read"));
        };
        let h = match BatchHeader::parse(&head) {
            Ok(h) => h,
            Err(e) => break Some(e.to_string()),
        };
        let size = h.size();
        if size as u64 > left {
            break Some(format!(
                "batch of {size} bytes runs past the end of the file ({left} left)"
            ));
        }
        if check == Check::Crc {
            let Some(bytes) = log.bytes(pos, size) else {
                break Some(format!("the batch at byte {pos} could not be read"));
            };
            if batch_crc(&bytes) != h.crc {
                break Some(format!("CRC mismatch in batch at offset {}", h.base_offset));
            }
        }
        let end_offset = acct.state().end_offset;
        if h.base_offset < end_offset
            || h.last_offset_delta < 0
            || h.base_offset < 0
            || h.last_offset() > crate::segment::MAX_OFFSET
        {
            break Some(format!(
                "batch offsets {}..={} do not follow {}",
                h.base_offset,
                h.last_offset(),
                end_offset
            ));
        }
        if h.last_offset().saturating_sub(base) > i64::from(i32::MAX) {
            break Some("batch offset overflows the segment's 32-bit relative offsets".into());
        }
        let before = acct;
        let entries = acct.account(size as u64, h.last_offset(), h.max_timestamp);
        if build_index {
            built.push(&entries);
        } else if entries.offset.is_some() {
            // The writer would have indexed this batch: the index is missing entries.
            acct = before;
            break Some("index is missing entries".into());
        }
        pos += size as u64;
    };
    Scan {
        valid_len: pos,
        state: *acct.state(),
        index: built.index,
        time: built.time,
        tracker: acct.tracker(),
        problem,
    }
}

impl Scan {
    /// Seals a rebuilt segment that is not the last one as the writer's roll sealed it: the
    /// final time entry it gets (none when its last entry holds its largest timestamp).
    pub(super) fn seal(&mut self, base: i64) -> Option<[u8; TIME_ENTRY]> {
        let mut acct = Accountant::resume(base, self.state, self.tracker);
        let e = acct.seal();
        self.tracker = acct.tracker();
        e
    }
}

/// The log position of the last entry of a kept index prefix (where a resumed scan began).
pub(super) fn s_start(index: &[u8]) -> u64 {
    index
        .len()
        .checked_div(INDEX_ENTRY)
        .and_then(|n| n.checked_sub(1))
        .and_then(|last| index::offset_entry(index, last))
        .map_or(0, |(_, pos)| u64::try_from(pos).unwrap_or(0))
}

/// The header of the batch whose last offset is `offset`, scanning from `pos`.
pub(super) fn batch_ending_at<L: LogBytes + ?Sized>(
    log: &L,
    mut pos: usize,
    offset: i64,
) -> Option<BatchHeader> {
    loop {
        let h = BatchHeader::parse(&log.bytes(pos as u64, BATCH_HEADER_LEN)?).ok()?;
        match h.last_offset().cmp(&offset) {
            std::cmp::Ordering::Less => pos = pos.checked_add(h.size())?,
            std::cmp::Ordering::Equal => return Some(h),
            std::cmp::Ordering::Greater => return None,
        }
    }
}

/// Reads a whole file through a mapping (no copy); empty files give an empty slice.
pub(super) fn map_whole(path: &Path) -> Result<(Option<Arc<Mapped>>, u64)> {
    let f = File::open(path).at(path)?;
    let len = f.metadata().at(path)?.len();
    if len == 0 {
        return Ok((None, 0));
    }
    Ok((Some(Mapped::map(&f, len as usize).at(path)?), len))
}

pub(super) fn read_small(path: &Path) -> Option<Vec<u8>> {
    crate::io::ops::read(path).ok()
}

/// Checks `index` and `time` (a segment's index files, or prefixes of them) against the log as
/// the trusted path does: whole entries that pass `index::entries_sane`, the last offset entry
/// naming a batch that ends at its offset, the last time entry naming a batch that ends at its
/// offset with exactly its timestamp. Returns the segment's state just before the last
/// indexed batch (where a scan resumes; the start of the segment without entries) and the
/// last time entry's timestamp (-1 without one).
pub(super) fn indexed_state<L: LogBytes + ?Sized>(
    log: &L,
    base: i64,
    index: &[u8],
    time: &[u8],
) -> Option<(SegmentState, i64)> {
    if !index.len().is_multiple_of(INDEX_ENTRY) || !time.len().is_multiple_of(TIME_ENTRY) {
        return None;
    }
    let n = index.len() / INDEX_ENTRY;
    let m = time.len() / TIME_ENTRY;
    if !index::entries_sane(index, time, log.len()) {
        return None;
    }
    let mut state = SegmentState::empty(base);
    if let Some(first) = log.bytes(0, BATCH_HEADER_LEN) {
        state.first_batch_max_timestamp = BatchHeader::parse(&first).ok()?.max_timestamp;
    }
    if n > 0 {
        let (rel, pos) = index::offset_entry(index, n - 1)?;
        let h = BatchHeader::parse(&log.bytes(u64::try_from(pos).ok()?, BATCH_HEADER_LEN)?).ok()?;
        if h.last_offset().checked_sub(base)? != i64::from(rel) || rel < 0 || h.base_offset < base {
            return None;
        }
        // Offsets before this batch: all below its base.
        state.end_offset = h.base_offset;
        state.size = u64::try_from(pos).ok()?;
    }
    if n > 0 && m == 0 {
        // The writer adds a time entry with the first offset entry (timestamps are >= 0):
        // an empty time index here lost its entries, and the largest timestamp is unknown.
        return None;
    }
    let mut last_time = -1;
    if m > 0 {
        let (ts, rel) = index::time_entry(time, m - 1)?;
        if rel < 0 {
            return None;
        }
        let offset = base.checked_add(i64::from(rel))?;
        // The entry must name a batch that ends at `offset` with exactly that timestamp.
        let from = index::floor_in(index, n, base, offset);
        if batch_ending_at(log, from, offset)?.max_timestamp != ts {
            return None;
        }
        state.max_timestamp = ts;
        state.max_timestamp_offset = offset;
        last_time = ts;
    }
    Some((state, last_time))
}

/// Cheap checks of a segment's indexes (Kafka's sanity checks, see [`indexed_state`]), then a
/// read of the tail after the last entry (at most about one index interval plus one batch),
/// checked as `check` says.
pub(super) fn try_trusted<L: LogBytes + ?Sized>(
    log: &L,
    base: i64,
    dir_seg: &SegPaths,
    interval: u32,
    check: Check,
) -> Option<Scan> {
    let index = read_small(&dir_seg.index)?;
    let time = read_small(&dir_seg.time)?;
    let (state, last_time) = indexed_state(log, base, &index, &time)?;
    let tracker = IndexTracker::resume(interval, 0, last_time);
    let mut s = scan(log, base, state.size, state, tracker, false, check);
    if s.problem.is_some() {
        return None;
    }
    s.state.index_entries = (index.len() / INDEX_ENTRY) as u32;
    s.state.time_entries = (time.len() / TIME_ENTRY) as u32;
    Some(s)
}

/// [`try_trusted`] with [`Check::Headers`] on a sealed segment's log read with `pread`:
/// `Some` (with the file's length) only when the check passes and the segment ends exactly
/// where the next one, `next`, starts.
pub(super) fn try_trusted_unmapped(
    paths: &SegPaths,
    base: i64,
    interval: u32,
    next: i64,
    durable: i64,
) -> Option<(Scan, u64)> {
    let file = File::open(&paths.log).ok()?;
    let len = file.metadata().ok()?.len();
    let log = PreadLog { file, len };
    let s = try_trusted(&log, base, paths, interval, Check::Headers)?;
    // Bytes after the valid ones (damage, a torn tail, a preallocated zero tail) are judged
    // on the mapped path, which reads them.
    (s.valid_len == len && !ends_up_last(&s, len, Some(next), durable, false)).then_some((s, len))
}

/// Appends continue in a segment when no segment after it is kept: it is the last one, or it
/// holds a torn tail (bad bytes at or above `durable`: the unsynced part a crash may tear, cut
/// with every later segment). Damage below `durable` and gaps before the next segment keep the
/// segments after them, and so does a `zero_tail` (the bytes after the valid ones are all
/// zero): a preallocated segment's never-written range, which a crash between a roll and the
/// durable trim of the sealed segment leaves before the next segment.
pub(super) fn ends_up_last(
    s: &Scan,
    file_len: u64,
    next: Option<i64>,
    durable: i64,
    zero_tail: bool,
) -> bool {
    next.is_none_or(|_| s.valid_len < file_len && !zero_tail && s.state.end_offset >= durable)
}

/// Whether the bytes of `log` from `from` on are all zero (and there are some): a
/// preallocated `.log`'s never-written tail.
pub(super) fn is_zero_tail(log: &[u8], from: u64) -> bool {
    usize::try_from(from)
        .ok()
        .and_then(|f| log.get(f..))
        .is_some_and(|t| !t.is_empty() && t.iter().all(|&b| b == 0))
}

/// Opens a segment through the mapping of its log, as [`open_segment`] decides, and returns
/// what it found, whether appends continue in it, the log's length, and whether the bytes
/// after the valid ones are a zero tail ([`is_zero_tail`]). A sealed segment that turns out to
/// be the last one is opened again with CRCs checked (see the caller).
pub(super) fn open_mapped(
    paths: &SegPaths,
    base: i64,
    next: Option<i64>,
    at: OpenAt,
) -> Result<(Opened, bool, u64, bool)> {
    let (map, file_len) = map_whole(&paths.log)?;
    let log: &[u8] = map
        .as_ref()
        .and_then(|m| m.slice(0, file_len as usize))
        .unwrap_or(&[]);
    let mut check = if next.is_none() {
        Check::Crc
    } else {
        Check::Headers
    };
    loop {
        let opened = open_segment(log, base, paths, map.as_deref(), check, at);
        let zero_tail = is_zero_tail(log, opened.scan().valid_len);
        let last = ends_up_last(opened.scan(), file_len, next, at.durable, zero_tail);
        if last && check == Check::Headers && matches!(opened, Opened::Trusted(_)) {
            check = Check::Crc;
            continue;
        }
        return Ok((opened, last, file_len, zero_tail));
    }
}

/// After a crash, for the segment holding the recovery point (its log was synced up to
/// there): the prefix of its indexes up to the last offset entry at or below the recovery
/// point, when that prefix passes the trusted path's checks, and the scan of the log from that
/// entry's batch on, with index entries built for what follows. The scan then costs the
/// unsynced tail plus at most one index interval, instead of the whole segment.
/// Returns the scan with the kept index and time-index prefixes.
pub(super) fn try_resume(
    log: &[u8],
    base: i64,
    dir_seg: &SegPaths,
    interval: u32,
    recovery_point: i64,
) -> Option<(Scan, Vec<u8>, Vec<u8>)> {
    let index = read_small(&dir_seg.index)?;
    let time = read_small(&dir_seg.time)?;
    // Offset entries at or below the recovery point (entries ascend; the checks reject a
    // prefix that does not).
    let mut n = 0;
    let mut last_rel = 0;
    while let Some((rel, _)) = index::offset_entry(&index, n) {
        if base.checked_add(i64::from(rel))? > recovery_point {
            break;
        }
        last_rel = rel;
        n += 1;
    }
    // Time entries written up to that entry's batch: those naming an offset at or below its
    // last offset (the entry's own, once checked).
    let mut m = 0;
    while index::time_entry(&time, m).is_some_and(|(_, rel)| rel <= last_rel) {
        m += 1;
    }
    if n == 0 || m == 0 {
        return None;
    }
    let index = index.get(..n * INDEX_ENTRY)?.to_vec();
    let time = time.get(..m * TIME_ENTRY)?.to_vec();
    let (state, last_time) = indexed_state(log, base, &index, &time)?;
    // A time index that lost entries at its end (while the offset index kept its own) leaves
    // a batch before the resume point with a larger timestamp than the last time entry, and
    // resuming would drop it from timestamp lookups. Walk the headers from the last time
    // entry's batch to the resume point; any such batch means a full scan instead.
    let (_, rel) = index::time_entry(&time, m - 1)?;
    let mut pos = index::floor_in(&index, n, base, base.checked_add(i64::from(rel))?);
    while (pos as u64) < state.size {
        let h = BatchHeader::parse(log.get(pos..)?).ok()?;
        if h.max_timestamp > last_time {
            return None;
        }
        pos = pos.checked_add(h.size())?;
    }
    let tracker = IndexTracker::resume(interval, 0, last_time);
    let s = scan(log, base, state.size, state, tracker, true, Check::Crc);
    Some((s, index, time))
}

pub(super) struct SegPaths {
    pub(super) log: PathBuf,
    pub(super) index: PathBuf,
    pub(super) time: PathBuf,
    pub(super) txn: PathBuf,
}

impl SegPaths {
    pub(super) fn new(dir: &Path, base: i64) -> SegPaths {
        SegPaths {
            log: dir.join(layout::file_name(base, FileKind::Log)),
            index: dir.join(layout::file_name(base, FileKind::Index)),
            time: dir.join(layout::file_name(base, FileKind::TimeIndex)),
            txn: dir.join(layout::file_name(base, FileKind::TxnIndex)),
        }
    }

    pub(super) fn remove(&self) -> Result<()> {
        remove_files(&[&self.log, &self.index, &self.time, &self.txn])
    }

    pub(super) fn remove_indexes(&self) -> Result<()> {
        remove_files(&[&self.index, &self.time, &self.txn])
    }
}

/// Removes files; one already gone is fine.
pub(super) fn remove_files(paths: &[&PathBuf]) -> Result<()> {
    for &p in paths {
        match crate::io::ops::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::Error::io(p, e)),
        }
    }
    Ok(())
}

/// How one segment's batches were established at open.
pub(super) enum Opened {
    /// Its indexes passed the cheap checks; only the tail after the last entry was read.
    Trusted(Scan),
    /// After a crash: its index prefix up to the recovery point was kept (the two prefixes
    /// here) and the log was scanned from there.
    Resumed(Scan, Vec<u8>, Vec<u8>),
    /// The whole log was scanned.
    Scanned(Scan),
}

impl Opened {
    pub(super) fn scan(&self) -> &Scan {
        match self {
            Opened::Trusted(s) | Opened::Resumed(s, ..) | Opened::Scanned(s) => s,
        }
    }
}

/// Which ways of opening a segment [`open_segment`] may take.
#[derive(Clone, Copy)]
pub(super) struct OpenAt {
    /// The segment lies before the recovery point (or the log was closed cleanly).
    pub(super) trusted: bool,
    /// The segment holds the recovery point after a crash, and the open may rewrite its
    /// indexes.
    pub(super) resume: bool,
    pub(super) interval: u32,
    pub(super) recovery_point: i64,
    pub(super) durable: i64,
}

/// Establishes a segment's batches (trusting its indexes, resuming from the recovery point or
/// scanning it whole, in that order of preference) without touching its files; the caller
/// writes rebuilt indexes and cuts the log.
pub(super) fn open_segment(
    log: &[u8],
    base: i64,
    paths: &SegPaths,
    map: Option<&Mapped>,
    check: Check,
    at: OpenAt,
) -> Opened {
    // A sealed segment's trusted open reads a few headers: no read-around for them.
    let sparse = at.trusted && check == Check::Headers;
    if let Some(m) = map.filter(|_| sparse) {
        m.expect_sparse_reads(true);
    }
    if at.trusted
        && let Some(s) = try_trusted(log, base, paths, at.interval, check)
    {
        return Opened::Trusted(s);
    }
    if let Some(m) = map.filter(|_| sparse) {
        m.expect_sparse_reads(false); // it is scanned instead
    }
    if at.resume
        && let Some((s, index, time)) = try_resume(log, base, paths, at.interval, at.recovery_point)
    {
        return Opened::Resumed(s, index, time);
    }
    Opened::Scanned(scan(
        log,
        base,
        0,
        SegmentState::empty(base),
        IndexTracker::new(at.interval),
        true,
        Check::Crc,
    ))
}
