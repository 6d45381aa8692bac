//! Kafka's sparse `.index` (8-byte entries: i32 relative offset, i32 position) and
//! `.timeindex` (12-byte entries: i64 timestamp, i32 relative offset), big-endian.
//!
//! An offset entry is `(lastOffset of a batch − base, position of that batch)`; a time entry
//! is `(max timestamp so far, lastOffset − base of the batch that first reached it)`, added only
//! when the timestamp strictly grows. Entries are added about every `index_interval_bytes`.

use crate::io::map::Mapped;

/// Size of one `.index` entry.
pub(crate) const INDEX_ENTRY: usize = 8;
/// Size of one `.timeindex` entry.
pub(crate) const TIME_ENTRY: usize = 12;

/// Reads offset-index entry `i`: (relative offset, position).
pub(crate) fn offset_entry(bytes: &[u8], i: usize) -> Option<(i32, i32)> {
    let e = bytes.get(i * INDEX_ENTRY..(i + 1) * INDEX_ENTRY)?;
    let (rel, pos) = e.split_at_checked(4)?;
    Some((
        i32::from_be_bytes(rel.try_into().ok()?),
        i32::from_be_bytes(pos.try_into().ok()?),
    ))
}

/// Reads time-index entry `i`: (timestamp, relative offset).
pub(crate) fn time_entry(bytes: &[u8], i: usize) -> Option<(i64, i32)> {
    let e = bytes.get(i * TIME_ENTRY..(i + 1) * TIME_ENTRY)?;
    let (ts, rel) = e.split_at_checked(8)?;
    Some((
        i64::from_be_bytes(ts.try_into().ok()?),
        i32::from_be_bytes(rel.try_into().ok()?),
    ))
}

pub(crate) fn encode_offset_entry(rel: i32, pos: i32) -> [u8; INDEX_ENTRY] {
    let mut e = [0u8; INDEX_ENTRY];
    let (a, b) = e.split_at_mut(4);
    a.copy_from_slice(&rel.to_be_bytes());
    b.copy_from_slice(&pos.to_be_bytes());
    e
}

pub(crate) fn encode_time_entry(ts: i64, rel: i32) -> [u8; TIME_ENTRY] {
    let mut e = [0u8; TIME_ENTRY];
    let (a, b) = e.split_at_mut(8);
    a.copy_from_slice(&ts.to_be_bytes());
    b.copy_from_slice(&rel.to_be_bytes());
    e
}

/// Position of the last indexed batch whose last offset is <= `target`, or 0.
pub(crate) fn floor_position(map: &Mapped, entries: u32, base: i64, target: i64) -> u64 {
    let Some(bytes) = map.slice(0, entries as usize * INDEX_ENTRY) else {
        return 0;
    };
    let rel_target = target.saturating_sub(base);
    // Binary search for the first entry past the target, then step back one.
    let (mut lo, mut hi) = (0usize, entries as usize);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match offset_entry(bytes, mid) {
            Some((rel, _)) if i64::from(rel) <= rel_target => lo = mid + 1,
            _ => hi = mid,
        }
    }
    match lo.checked_sub(1).and_then(|i| offset_entry(bytes, i)) {
        Some((_, pos)) if pos >= 0 => pos as u64,
        _ => 0,
    }
}

/// Whole-file sanity checks of a segment's indexes before they are trusted (a memory scan
/// of both files, about 2 MB per GiB of log): offset entries strictly increasing in offset
/// and position, positions inside the log; time entries strictly increasing in timestamp,
/// never decreasing in offset, and within the offset index's range. Binary searches over a
/// damaged index would otherwise give answers that depend on which entries they happen to
/// visit.
pub(crate) fn entries_sane(index: &[u8], time: &[u8], log_len: u64) -> bool {
    let mut prev: Option<(i32, i32)> = None;
    for i in 0..index.len() / INDEX_ENTRY {
        let Some((rel, pos)) = offset_entry(index, i) else {
            return false;
        };
        if rel < 0 || pos < 0 || pos as u64 >= log_len {
            return false;
        }
        if let Some((pr, pp)) = prev
            && (rel <= pr || pos <= pp)
        {
            return false;
        }
        prev = Some((rel, pos));
    }
    let mut prev_t: Option<(i64, i32)> = None;
    for i in 0..time.len() / TIME_ENTRY {
        let Some((ts, rel)) = time_entry(time, i) else {
            return false;
        };
        if rel < 0 {
            return false;
        }
        if let Some((pt, pr)) = prev_t
            && (ts <= pt || rel < pr)
        {
            return false;
        }
        prev_t = Some((ts, rel));
    }
    true
}

/// [`floor_position`] over index bytes held in memory (recovery), as a `usize`.
pub(crate) fn floor_in(index: &[u8], entries: usize, base: i64, target: i64) -> usize {
    let rel_target = target.saturating_sub(base);
    let (mut lo, mut hi) = (0usize, entries);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match offset_entry(index, mid) {
            Some((rel, _)) if i64::from(rel) <= rel_target => lo = mid + 1,
            _ => hi = mid,
        }
    }
    match lo.checked_sub(1).and_then(|i| offset_entry(index, i)) {
        Some((_, pos)) if pos >= 0 => pos as usize,
        _ => 0,
    }
}

/// The last time entry whose timestamp is strictly below `ts`, as (timestamp, offset): every
/// record up to the batch holding that offset is older than `ts`, so a scan may start there.
pub(crate) fn time_floor_entry(
    map: &Mapped,
    entries: u32,
    base: i64,
    ts: i64,
) -> Option<(i64, i64)> {
    let bytes = map.slice(0, entries as usize * TIME_ENTRY)?;
    let (mut lo, mut hi) = (0usize, entries as usize);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match time_entry(bytes, mid) {
            Some((t, _)) if t < ts => lo = mid + 1,
            _ => hi = mid,
        }
    }
    let (t, rel) = time_entry(bytes, lo.checked_sub(1)?)?;
    Some((t, base.checked_add(i64::from(rel))?))
}

/// Decides when a batch gets index entries; shared by the writer and recovery so both build
/// identical indexes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexTracker {
    interval: u64,
    bytes_since_entry: u64,
    /// Timestamp of the last time-index entry (-1 when none).
    last_time_entry: i64,
}

/// Entries a batch adds.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NewEntries {
    pub(crate) offset: Option<[u8; INDEX_ENTRY]>,
    pub(crate) time: Option<[u8; TIME_ENTRY]>,
}

impl IndexTracker {
    pub(crate) fn new(interval: u32) -> IndexTracker {
        IndexTracker {
            interval: u64::from(interval),
            bytes_since_entry: 0,
            last_time_entry: -1,
        }
    }

    /// Continues a segment whose index was loaded: `bytes_since_entry` log bytes follow its
    /// last entry and the last time entry holds `last_time_entry`.
    pub(crate) fn resume(interval: u32, bytes_since_entry: u64, last_time_entry: i64) -> Self {
        IndexTracker {
            interval: u64::from(interval),
            bytes_since_entry,
            last_time_entry,
        }
    }

    pub(crate) fn set_interval(&mut self, interval: u32) {
        self.interval = u64::from(interval);
    }

    /// Called for each appended batch, before its bytes count: Kafka adds an entry when more
    /// than `interval` bytes precede the batch since the last entry.
    pub(crate) fn on_batch(
        &mut self,
        base: i64,
        position: u64,
        size: u64,
        last_offset: i64,
        max_ts_so_far: i64,
        max_ts_offset: i64,
    ) -> NewEntries {
        let mut out = NewEntries::default();
        if self.bytes_since_entry > self.interval {
            out.offset = Some(encode_offset_entry(
                (last_offset - base) as i32,
                position as i32,
            ));
            if max_ts_so_far > self.last_time_entry {
                out.time = Some(encode_time_entry(
                    max_ts_so_far,
                    (max_ts_offset - base) as i32,
                ));
                self.last_time_entry = max_ts_so_far;
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += size;
        out
    }

    /// The final time entry forced when a segment rolls or closes, so the last time entry
    /// always holds the segment's largest timestamp (read back at open for retention).
    pub(crate) fn final_time_entry(
        &mut self,
        base: i64,
        max_ts: i64,
        max_ts_offset: i64,
    ) -> Option<[u8; TIME_ENTRY]> {
        if max_ts > self.last_time_entry {
            self.last_time_entry = max_ts;
            Some(encode_time_entry(max_ts, (max_ts_offset - base) as i32))
        } else {
            None
        }
    }
}
