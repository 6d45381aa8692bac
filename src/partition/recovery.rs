//! Loading a partition directory: trusting indexes after a clean shutdown, scanning and
//! truncating the torn tail after a crash, rebuilding missing or damaged indexes.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::TopicConfig;
use crate::error::{IoContext, Result};
use crate::io::map::Mapped;
use crate::io::{sync_dir, write_file};
use crate::layout::{self, FileKind, SegmentFile, Transient};
use crate::record::batch::{BATCH_HEADER_LEN, BatchHeader, batch_crc};
use crate::segment::index::{self, INDEX_ENTRY, IndexTracker, TIME_ENTRY};
use crate::segment::writer::{Accountant, IndexBytes};
use crate::segment::{self, Segment, SegmentState};

use super::damage::{Damage, cut_log, move_aside, preserve};
use super::log_bytes::{LogBytes, PreadLog};

/// What opening one partition found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionRecovery {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// True when the log was closed cleanly and indexes were trusted.
    pub clean: bool,
    /// Segments whose indexes passed the cheap checks and were trusted.
    pub segments_trusted: usize,
    /// Segments read batch by batch (length and CRC checked).
    pub segments_scanned: usize,
    /// Bytes read by those scans.
    pub bytes_scanned: u64,
    /// Index file pairs rebuilt from the log.
    pub indexes_rebuilt: usize,
    /// Bytes cut from the end of the log (a torn or corrupt tail).
    pub truncated_bytes: u64,
    /// Whole segments deleted because they followed the cut.
    pub segments_deleted: usize,
    /// Why the log was cut, when it was.
    pub reason: Option<String>,
    /// The log end offset after recovery.
    pub end_offset: i64,
    /// Damage at rest: found below the recovery point, or anywhere after a clean close, in
    /// data that had been synced and handed out. Nothing of it is deleted: see [`Damage`].
    pub damage: Vec<Damage>,
    /// Gaps in the offsets between segments that were kept as they are: a compacted log has
    /// them, and readers step over them.
    pub offset_gaps: usize,
    /// Where appends continue when damage at rest left the log end below an offset a group
    /// had committed: the end was moved up to it, so that offset is not handed out again.
    pub end_raised_to: Option<i64>,
}

/// What the loader hands to the partition.
pub(crate) struct Loaded {
    pub(crate) segments: Vec<Arc<Segment>>,
    pub(crate) tracker: IndexTracker,
    pub(crate) log_start: i64,
    pub(crate) recovery_point: i64,
    pub(crate) report: PartitionRecovery,
}

pub(crate) struct LoadParams<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) config: &'a TopicConfig,
    pub(crate) clean: bool,
    pub(crate) recovery_point: Option<i64>,
    /// Offsets below this were synced and handed out before this open (`i64::MAX` after a
    /// clean close and for the reload after an explicit truncation, the checkpointed recovery
    /// point after a crash): bad bytes below it are damage at rest, kept and reported, not a
    /// torn tail, and a gap between segments below it is normal.
    pub(crate) durable: i64,
    /// The log end never falls below this (the checkpointed recovery point): offsets once
    /// handed out are not handed out again.
    pub(crate) end_floor: i64,
    pub(crate) log_start: Option<i64>,
    pub(crate) read_only: bool,
    pub(crate) generation: u64,
}

/// `LoadParams::durable` and `LoadParams::end_floor` for an open that found the directory
/// `clean` (or not) with `recovery_point` checkpointed. No log reaches past `MAX_OFFSET`
/// (appends stop there, and the loader ignores segments named above it), so a checkpoint
/// that says more is not believed as a floor.
pub(crate) fn durable_and_floor(clean: bool, recovery_point: Option<i64>) -> (i64, i64) {
    let rp = recovery_point.unwrap_or(0);
    let durable = if clean { i64::MAX } else { rp };
    (durable, rp.min(crate::segment::MAX_OFFSET))
}

/// Result of reading a segment's batches.
struct Scan {
    valid_len: u64,
    state: SegmentState,
    index: Vec<u8>,
    time: Vec<u8>,
    tracker: IndexTracker,
    problem: Option<String>,
}

/// How much of each batch a scan checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
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
fn scan<L: LogBytes + ?Sized>(
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
    fn seal(&mut self, base: i64) -> Option<[u8; TIME_ENTRY]> {
        let mut acct = Accountant::resume(base, self.state, self.tracker);
        let e = acct.seal();
        self.tracker = acct.tracker();
        e
    }
}

/// The log position of the last entry of a kept index prefix (where a resumed scan began).
fn s_start(index: &[u8]) -> u64 {
    index
        .len()
        .checked_div(INDEX_ENTRY)
        .and_then(|n| n.checked_sub(1))
        .and_then(|last| index::offset_entry(index, last))
        .map_or(0, |(_, pos)| u64::try_from(pos).unwrap_or(0))
}

/// The header of the batch whose last offset is `offset`, scanning from `pos`.
fn batch_ending_at<L: LogBytes + ?Sized>(
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
fn map_whole(path: &Path) -> Result<(Option<Arc<Mapped>>, u64)> {
    let f = File::open(path).at(path)?;
    let len = f.metadata().at(path)?.len();
    if len == 0 {
        return Ok((None, 0));
    }
    Ok((Some(Mapped::map(&f, len as usize).at(path)?), len))
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    crate::io::ops::read(path).ok()
}

/// Checks `index` and `time` (a segment's index files, or prefixes of them) against the log as
/// the trusted path does: whole entries that pass `index::entries_sane`, the last offset entry
/// naming a batch that ends at its offset, the last time entry naming a batch that ends at its
/// offset with exactly its timestamp. Returns the segment's state just before the last
/// indexed batch (where a scan resumes; the start of the segment without entries) and the
/// last time entry's timestamp (-1 without one).
fn indexed_state<L: LogBytes + ?Sized>(
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
fn try_trusted<L: LogBytes + ?Sized>(
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
fn try_trusted_unmapped(
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
    (!ends_up_last(&s, len, Some(next), durable)).then_some((s, len))
}

/// Appends continue in a segment when no segment after it is kept: it is the last one, or it
/// holds a torn tail (bad bytes at or above `durable`: the unsynced part a crash may tear, cut
/// with every later segment). Damage below `durable` and gaps before the next segment keep the
/// segments after them.
fn ends_up_last(s: &Scan, file_len: u64, next: Option<i64>, durable: i64) -> bool {
    next.is_none_or(|_| s.valid_len < file_len && s.state.end_offset >= durable)
}

/// Opens a segment through the mapping of its log, as [`open_segment`] decides, and returns
/// what it found, whether appends continue in it, and the log's length. A sealed segment that
/// turns out to be the last one is opened again with CRCs checked (see the caller).
fn open_mapped(
    paths: &SegPaths,
    base: i64,
    next: Option<i64>,
    at: OpenAt,
) -> Result<(Opened, bool, u64)> {
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
        let last = ends_up_last(opened.scan(), file_len, next, at.durable);
        if last && check == Check::Headers && matches!(opened, Opened::Trusted(_)) {
            check = Check::Crc;
            continue;
        }
        return Ok((opened, last, file_len));
    }
}

/// After a crash, for the segment holding the recovery point (its log was synced up to
/// there): the prefix of its indexes up to the last offset entry at or below the recovery
/// point, when that prefix passes the trusted path's checks, and the scan of the log from that
/// entry's batch on, with index entries built for what follows. The scan then costs the
/// unsynced tail plus at most one index interval, instead of the whole segment.
/// Returns the scan with the kept index and time-index prefixes.
fn try_resume(
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

struct SegPaths {
    log: PathBuf,
    index: PathBuf,
    time: PathBuf,
}

impl SegPaths {
    fn new(dir: &Path, base: i64) -> SegPaths {
        SegPaths {
            log: dir.join(layout::file_name(base, FileKind::Log)),
            index: dir.join(layout::file_name(base, FileKind::Index)),
            time: dir.join(layout::file_name(base, FileKind::TimeIndex)),
        }
    }

    fn remove(&self) -> Result<()> {
        remove_files(&[&self.log, &self.index, &self.time])
    }

    fn remove_indexes(&self) -> Result<()> {
        remove_files(&[&self.index, &self.time])
    }
}

/// Removes files; one already gone is fine.
fn remove_files(paths: &[&PathBuf]) -> Result<()> {
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
enum Opened {
    /// Its indexes passed the cheap checks; only the tail after the last entry was read.
    Trusted(Scan),
    /// After a crash: its index prefix up to the recovery point was kept (the two prefixes
    /// here) and the log was scanned from there.
    Resumed(Scan, Vec<u8>, Vec<u8>),
    /// The whole log was scanned.
    Scanned(Scan),
}

impl Opened {
    fn scan(&self) -> &Scan {
        match self {
            Opened::Trusted(s) | Opened::Resumed(s, ..) | Opened::Scanned(s) => s,
        }
    }
}

/// Which ways of opening a segment [`open_segment`] may take.
#[derive(Clone, Copy)]
struct OpenAt {
    /// The segment lies before the recovery point (or the log was closed cleanly).
    trusted: bool,
    /// The segment holds the recovery point after a crash, and the open may rewrite its
    /// indexes.
    resume: bool,
    interval: u32,
    recovery_point: i64,
    durable: i64,
}

/// Establishes a segment's batches (trusting its indexes, resuming from the recovery point or
/// scanning it whole, in that order of preference) without touching its files; the caller
/// writes rebuilt indexes and cuts the log.
fn open_segment(
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

/// Seals the segment appends were to continue in, as the writer's roll does before a new
/// segment starts: the final time entry is appended to its time index.
fn seal_on_disk(seg: &Segment, tracker: IndexTracker) -> Result<()> {
    let mut acct = Accountant::resume(seg.base_offset, seg.state(), tracker);
    if let Some(e) = acct.seal() {
        let f = crate::io::open_append(&seg.time_path)?;
        crate::io::ops::write_all(&f, &seg.time_path, &e).at(&seg.time_path)?;
        seg.publish(acct.state());
    }
    Ok(())
}

/// Loads (and unless read-only, recovers) one partition directory.
#[allow(clippy::too_many_lines)]
pub(crate) fn load(p: &LoadParams<'_>) -> Result<Loaded> {
    let dir = p.dir;
    let mut report = PartitionRecovery {
        topic: p.topic.to_string(),
        partition: p.partition,
        clean: p.clean,
        ..PartitionRecovery::default()
    };
    if !p.read_only {
        segment::swap::finish_swaps(dir)?;
    }
    let mut bases = Vec::new();
    let mut index_files = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Files left behind by an interrupted delete, compaction, truncation or write (a
        // damaged copy's `.damaged.tmp` included).
        if Transient::LEFTOVERS
            .iter()
            .any(|t| name.ends_with(t.suffix()))
        {
            if !p.read_only {
                crate::io::ops::remove_file(&entry.path()).at(entry.path())?;
            }
            continue;
        }
        match layout::parse_file_name(name) {
            // Bases beyond the offset space cannot hold a batch: not ours, left alone.
            Some(SegmentFile {
                base,
                kind: FileKind::Log,
                transient: None,
            }) if base <= segment::MAX_OFFSET => bases.push(base),
            Some(SegmentFile {
                base,
                kind: FileKind::Index | FileKind::TimeIndex,
                transient: None,
            }) => index_files.push((base, entry.path())),
            _ => {}
        }
    }
    bases.sort_unstable();
    if !p.read_only {
        // Index files without a log belong to a segment that was deleted.
        for (base, path) in &index_files {
            if bases.binary_search(base).is_err() {
                crate::io::ops::remove_file(path).at(path)?;
            }
        }
    }
    let checkpoint_start = p.log_start.unwrap_or(0).max(0);
    let recovery_point = if p.clean {
        i64::MAX
    } else {
        p.recovery_point.unwrap_or(0)
    };
    // Segments before the one holding the recovery point were synced: trust their indexes.
    let first_unclean = if p.clean {
        bases.len()
    } else {
        bases
            .iter()
            .rposition(|&b| b <= recovery_point)
            .unwrap_or(0)
    };
    let index_cap = p.config.segment_index_bytes as usize;
    let seg_cap = u64::from(p.config.segment_bytes);
    let interval = p.config.index_interval_bytes;
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
    let mut tracker = IndexTracker::new(interval);
    let mut prev_end = i64::MIN;
    let mut cut = false;
    // The last segment kept was opened as a sealed one (segments followed it, and all of them
    // were then set aside): its tail's CRCs were not read.
    let mut left_sealed = false;
    for (i, &base) in bases.iter().enumerate() {
        let paths = SegPaths::new(dir, base);
        if cut {
            if !p.read_only {
                paths.remove()?;
                report.segments_deleted += 1;
            }
            continue;
        }
        if base < prev_end {
            // No crash makes segments overlap: this is damage at rest. Which copy of the
            // offsets is right cannot be known, so the later segment is set aside whole (its
            // indexes are derived data) and the next segments are judged against the kept one.
            let preserved = if p.read_only {
                None
            } else {
                let to = move_aside(&paths.log)?;
                // Its indexes are derived data, swept as orphans by the next open anyway.
                paths.remove_indexes()?;
                Some(to)
            };
            report.damage.push(Damage {
                file: paths.log.clone(),
                position: 0,
                lost_from: prev_end,
                lost_to: prev_end,
                preserved,
                reason: format!(
                    "segment {base} starts below the previous segment's end {prev_end}"
                ),
            });
            continue;
        }
        let next = bases.get(i + 1).copied();
        // A trusted sealed segment is first checked by the few headers it needs, read with
        // `pread` instead of mapping its log (see `LogBytes`). When that check passes and the
        // segment stays sealed, the mapped path would reach the same result from the same
        // bytes; anything else takes the mapped path, which decides what to check again and
        // what to cut.
        let unmapped = next
            .filter(|_| i < first_unclean)
            .and_then(|n| try_trusted_unmapped(&paths, base, interval, n, p.durable));
        // The last segment is the one appends continue: its tail's CRCs are checked. A sealed
        // segment's are left to readers, so a clean open does not read a batch's worth of
        // every segment (the cost that made open time grow with the data). A segment that
        // turns out to be the last one (it holds a torn tail, cut with the segments after it)
        // is opened again with CRCs checked: appends must not go on after a batch that the
        // next open, finding it last, would cut off with them.
        let (opened, last, file_len) = match unmapped {
            Some((s, file_len)) => (Opened::Trusted(s), false, file_len),
            None => open_mapped(
                &paths,
                base,
                next,
                OpenAt {
                    trusted: i < first_unclean,
                    resume: i == first_unclean && !p.clean && !p.read_only,
                    interval,
                    recovery_point,
                    durable: p.durable,
                },
            )?,
        };
        let s = match opened {
            Opened::Trusted(s) => {
                report.segments_trusted += 1;
                s
            }
            Opened::Resumed(mut s, mut index, mut time) => {
                report.segments_scanned += 1;
                report.bytes_scanned += s.valid_len.saturating_sub(s_start(&index));
                index.extend_from_slice(&s.index);
                time.extend_from_slice(&s.time);
                if !last {
                    time.extend(s.seal(base).into_iter().flatten());
                }
                write_file(&paths.index, &index)?;
                write_file(&paths.time, &time)?;
                report.indexes_rebuilt += 1;
                s.state.index_entries = (index.len() / INDEX_ENTRY) as u32;
                s.state.time_entries = (time.len() / TIME_ENTRY) as u32;
                s
            }
            Opened::Scanned(mut s) => {
                report.segments_scanned += 1;
                report.bytes_scanned += s.valid_len;
                if p.read_only {
                    // Indexes on disk cannot be trusted and cannot be rewritten: scan instead.
                    s.state.index_entries = 0;
                    s.state.time_entries = 0;
                } else {
                    if !last {
                        let e = s.seal(base);
                        s.time.extend(e.into_iter().flatten());
                    }
                    write_file(&paths.index, &s.index)?;
                    write_file(&paths.time, &s.time)?;
                    report.indexes_rebuilt += 1;
                    s.state.index_entries = (s.index.len() / INDEX_ENTRY) as u32;
                    s.state.time_entries = (s.time.len() / TIME_ENTRY) as u32;
                }
                s
            }
        };
        if s.valid_len < file_len && s.state.end_offset < p.durable {
            // Damage at rest: these bytes were synced and handed out. Keep the valid prefix
            // live and the file as found beside it; the segments after it stay.
            let preserved = if p.read_only {
                None
            } else {
                let aside = preserve(&paths.log)?;
                cut_log(&paths.log, s.valid_len)?;
                Some(aside)
            };
            report.damage.push(Damage {
                file: paths.log.clone(),
                position: s.valid_len,
                lost_from: s.state.end_offset,
                lost_to: next.unwrap_or(p.end_floor).max(s.state.end_offset),
                preserved,
                reason: s.problem.clone().unwrap_or_default(),
            });
        } else if s.valid_len < file_len {
            cut = true;
            report.truncated_bytes += file_len - s.valid_len;
            report.reason.clone_from(&s.problem);
            if !p.read_only {
                cut_log(&paths.log, s.valid_len)?;
            }
        }
        if let Some(next) = next
            && !cut
            && s.state.end_offset < next
        {
            // Kafka's cleaner leaves such gaps, and readers step over them. Above the recovery
            // point after a crash a gap may also be a rolled segment's unsynced data lost with
            // the power (the next segment's creation reached the disk): what the next segment
            // holds is intact (its batches are checked like any), so it is kept too, as Kafka
            // keeps it, rather than deleted for what another file lost. Cutting there would
            // also destroy compacted segments whose recovery point was not yet checkpointed.
            report.offset_gaps += 1;
        }
        prev_end = s.state.end_offset;
        left_sealed = !last;
        tracker = s.tracker;
        let seg = Segment::new(
            dir,
            base,
            p.generation,
            s.state,
            if last {
                seg_cap.max(s.state.size)
            } else {
                s.state.size
            },
            index_cap,
            !last,
        );
        segments.push(Arc::new(seg));
    }
    // Segments wholly below the log start offset (a delete interrupted by a crash).
    let mut log_start = checkpoint_start;
    if !p.read_only {
        let end = segments.last().map_or(log_start, |s| s.end_offset());
        if end < log_start {
            // Everything below the checkpointed start: drop it all and start empty there.
            for s in segments.drain(..) {
                SegPaths::new(dir, s.base_offset).remove()?;
                report.segments_deleted += 1;
            }
        } else {
            while segments.len() > 1
                && segments
                    .get(1)
                    .is_some_and(|next| next.base_offset <= log_start)
            {
                let s = segments.remove(0);
                SegPaths::new(dir, s.base_offset).remove()?;
                report.segments_deleted += 1;
            }
        }
    }
    // An empty segment for appends to continue in (its files made durable, unless read-only).
    let new_segment = |base: i64| -> Result<Arc<Segment>> {
        if !p.read_only {
            Segment::create_files(dir, base)?;
            sync_dir(dir)?;
        }
        Ok(Arc::new(Segment::new(
            dir,
            base,
            p.generation,
            SegmentState::empty(base),
            seg_cap,
            index_cap,
            false,
        )))
    };
    // Offsets below the floor were handed out (synced, and after a clean close the whole
    // log): when the files end below it, the end was lost at rest, and appends continue at
    // the floor in a new segment rather than hand those offsets out again.
    let end = segments.last().map_or(log_start, |s| s.end_offset());
    if !p.read_only && end < p.end_floor && p.end_floor > log_start {
        if report.damage.last().is_none_or(|d| d.lost_to < p.end_floor) {
            let (file, position) = segments.last().map_or_else(
                || (dir.to_path_buf(), 0),
                |s| (s.log_path.clone(), s.size()),
            );
            report.damage.push(Damage {
                file,
                position,
                lost_from: end,
                lost_to: p.end_floor,
                preserved: None,
                reason: format!(
                    "the log ends at offset {end}, below its recovery point {}",
                    p.end_floor
                ),
            });
        }
        left_sealed = false;
        if let Some(last) = segments.last() {
            seal_on_disk(last, tracker)?;
            last.seal();
            tracker = IndexTracker::new(interval);
            segments.push(new_segment(p.end_floor)?);
        } else {
            log_start = p.end_floor;
        }
    }
    // Appends must not go on after bytes whose CRCs were not read (the next open, finding
    // them last and bad, would set the appended records aside with them): they continue in a
    // new segment at its end.
    if let Some(last) = segments.last().filter(|s| left_sealed && s.size() > 0)
        && !p.read_only
    {
        let base = last.end_offset();
        tracker = IndexTracker::new(interval);
        segments.push(new_segment(base)?);
    }
    if segments.is_empty() {
        tracker = IndexTracker::new(interval);
        segments.push(new_segment(log_start)?);
    } else if (report.segments_deleted > 0
        || report.truncated_bytes > 0
        || report.indexes_rebuilt > 0
        || !report.damage.is_empty())
        && !p.read_only
    {
        sync_dir(dir)?;
    }
    if let Some(first) = segments.first() {
        log_start = log_start.max(first.base_offset);
    }
    let end = segments.last().map_or(log_start, |s| s.end_offset());
    report.end_offset = end;
    let recovery_point = if p.clean {
        end
    } else {
        recovery_point.min(end)
    };
    if let Some(active) = segments.last() {
        // Resume the index cadence where the last entry left it.
        let st = active.state();
        let since = if st.index_entries == 0 {
            st.size
        } else {
            let ix = read_small(&active.index_path).unwrap_or_default();
            index::offset_entry(&ix, st.index_entries as usize - 1)
                .map_or(st.size, |(_, pos)| st.size.saturating_sub(pos as u64))
        };
        let last_time = if st.time_entries == 0 {
            -1
        } else {
            let t = read_small(&active.time_path).unwrap_or_default();
            index::time_entry(&t, st.time_entries as usize - 1).map_or(-1, |(ts, _)| ts)
        };
        tracker = IndexTracker::resume(interval, since, last_time);
    }
    Ok(Loaded {
        segments,
        tracker,
        log_start,
        recovery_point,
        report,
    })
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
