//! The one segment writer's bookkeeping: how a batch is accounted into a segment (its state,
//! and the exact `.index` / `.timeindex` entries it adds), when a segment must roll, and the
//! entry a segment gets when it is sealed. The live writer, compaction's rewrite and the
//! open's index rebuild all account batches through [`Accountant`], so "indexes are rebuilt
//! as the writer would have built them" is a property of the code. Callers write the bytes:
//! the live writer appends the entries with `write` after the `writev` of its batches,
//! compaction and recovery write whole files ([`IndexBytes`]).
//!
//! The rules (the live writer's, Kafka's `LogSegment.append`):
//! - the largest timestamp and its offset move when a batch's max timestamp is strictly
//!   larger; the offset is the batch's last offset;
//! - a batch gets index entries when more than `index.interval.bytes` bytes precede it since
//!   the last entry (so the first batch never does): an offset entry (batch's last offset −
//!   base, batch position), and a time entry (largest timestamp so far, its offset − base)
//!   when that timestamp is larger than the last time entry's;
//! - sealing (a roll) adds a final time entry holding the segment's largest timestamp, when
//!   the last entry does not already hold it.

use super::SegmentState;
use super::index::{IndexTracker, NewEntries, TIME_ENTRY};

/// Accounts batches into one segment. `Copy`, so a writer can account a group of batches
/// tentatively and keep the result only once their bytes are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accountant {
    base: i64,
    state: SegmentState,
    tracker: IndexTracker,
}

/// Limits that make a segment roll before a batch (the topic's `segment.bytes`, and the
/// entry capacity of its `segment.index.bytes`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RollLimits {
    pub(crate) segment_bytes: u32,
    pub(crate) max_index_entries: u32,
    /// One below the time index's capacity, so the seal's entry always fits.
    pub(crate) max_time_entries: u32,
}

impl Accountant {
    /// An empty segment at `base`, indexed every `interval` bytes.
    pub(crate) fn new(base: i64, interval: u32) -> Accountant {
        Accountant {
            base,
            state: SegmentState::empty(base),
            tracker: IndexTracker::new(interval),
        }
    }

    /// Continues a segment whose state and index cadence were loaded.
    pub(crate) fn resume(base: i64, state: SegmentState, tracker: IndexTracker) -> Accountant {
        Accountant {
            base,
            state,
            tracker,
        }
    }

    /// The base offset of the segment being accounted.
    pub(crate) fn base(&self) -> i64 {
        self.base
    }

    /// The segment's state as accounted so far.
    pub(crate) fn state(&self) -> &SegmentState {
        &self.state
    }

    /// The index cadence (where the next entry falls).
    pub(crate) fn tracker(&self) -> IndexTracker {
        self.tracker
    }

    pub(crate) fn set_interval(&mut self, interval: u32) {
        self.tracker.set_interval(interval);
    }

    /// Whether a batch of `size` bytes ending at `last_offset` must start a new segment: this
    /// one holds data and the batch would pass `segment_bytes`, an index is full, or its
    /// relative offset would overflow `i32`. (The live writer adds its `segment.ms` rule.)
    pub(crate) fn must_roll(&self, size: u64, last_offset: i64, limits: RollLimits) -> bool {
        let st = &self.state;
        st.size > 0
            && (st.size + size > u64::from(limits.segment_bytes)
                || st.index_entries >= limits.max_index_entries
                || st.time_entries >= limits.max_time_entries
                || last_offset - self.base > i64::from(i32::MAX))
    }

    /// Accounts a batch of `size` bytes with last offset `last_offset` and max timestamp
    /// `max_timestamp`, appended at the segment's current end; returns the index entries it
    /// adds (already counted in the state).
    pub(crate) fn account(
        &mut self,
        size: u64,
        last_offset: i64,
        max_timestamp: i64,
    ) -> NewEntries {
        let st = &mut self.state;
        if max_timestamp > st.max_timestamp {
            st.max_timestamp = max_timestamp;
            st.max_timestamp_offset = last_offset;
        }
        if st.size == 0 {
            st.first_batch_max_timestamp = max_timestamp;
        }
        let entries = self.tracker.on_batch(
            self.base,
            st.size,
            size,
            last_offset,
            st.max_timestamp,
            st.max_timestamp_offset,
        );
        st.index_entries += u32::from(entries.offset.is_some());
        st.time_entries += u32::from(entries.time.is_some());
        st.size += size;
        st.end_offset = last_offset + 1;
        entries
    }

    /// Seals the segment: the final time entry, when the last one does not hold the largest
    /// timestamp (already counted in the state).
    pub(crate) fn seal(&mut self) -> Option<[u8; TIME_ENTRY]> {
        let e = self.tracker.final_time_entry(
            self.base,
            self.state.max_timestamp,
            self.state.max_timestamp_offset,
        )?;
        self.state.time_entries += 1;
        Some(e)
    }
}

/// A segment's index files built in memory (a compaction rewrite, a rebuild at open).
#[derive(Debug, Default, Clone)]
pub(crate) struct IndexBytes {
    pub(crate) index: Vec<u8>,
    pub(crate) time: Vec<u8>,
}

impl IndexBytes {
    /// Appends the entries a batch added.
    pub(crate) fn push(&mut self, e: &NewEntries) {
        if let Some(e) = e.offset {
            self.index.extend_from_slice(&e);
        }
        self.push_time(e.time);
    }

    /// Appends a time entry (the seal's).
    pub(crate) fn push_time(&mut self, e: Option<[u8; TIME_ENTRY]>) {
        if let Some(e) = e {
            self.time.extend_from_slice(&e);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.time.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.index.is_empty() && self.time.is_empty()
    }
}
