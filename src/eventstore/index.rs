//! The per-stream index of one partition: stream → version → (offset, batch location).
//!
//! In memory: one head per stream (its last version and its newest entry). On disk, in
//! `<partition>.entries`: one 32-byte entry per event, appended in log order, each pointing
//! to the stream's previous entry and to a farther one (skew-binary jump pointers), so finding
//! a version costs O(log n) entry reads and a stream's events are collected without touching
//! any other stream's. Entries are written with `pwrite` (a page at a time) and read through a
//! read-only map; the heads are written to `<partition>.heads` at a checkpoint, with the log
//! offset they cover. Nothing here is synced on the write path: the log is the truth, and an
//! open checks the checkpoint against the log and replays the log from it (or rebuilds the
//! partition's index from the log when the checkpoint does not match).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, IoContext, Result};
use crate::io::map::Mapped;
use crate::io::{self, ops};
use crate::log::PartitionHandle;
use crate::partition::BatchLocation;

use super::event::{EventId, event_meta};

/// Bytes of one entry.
const ENTRY: usize = 32;
/// The entries file grows in steps of this many bytes (sparse until written).
const GROW: u64 = 64 << 20;
/// Pending entries are written once they fill this many bytes.
const FLUSH_BYTES: usize = 16 << 10;
/// No entry.
pub(super) const NONE: u32 = u32::MAX;
/// The heads file's first bytes.
const MAGIC: &[u8; 8] = b"TLESIDX1";
/// Gaps an index report lists (more are not listed).
const MAX_GAPS: usize = 1000;
/// How many of the checkpoint's newest entries an open checks against the log.
const VERIFY_ENTRIES: u32 = 8;

/// One event in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) offset: i64,
    pub(super) version: u64,
    pub(super) location: BatchLocation,
    /// The stream's previous entry.
    pub(super) prev: u32,
    /// A farther entry of the stream (skew-binary), for seeking.
    pub(super) jump: u32,
}

impl Entry {
    fn encode(&self) -> [u8; ENTRY] {
        let mut b = [0u8; ENTRY];
        b[0..8].copy_from_slice(&self.offset.to_be_bytes());
        b[8..16].copy_from_slice(&self.version.to_be_bytes());
        // A batch's offsets sit within i32 of its segment's base (the segment rolls first).
        let delta = (self.offset - self.location.segment) as u32;
        b[16..20].copy_from_slice(&delta.to_be_bytes());
        b[20..24].copy_from_slice(&self.location.position.to_be_bytes());
        b[24..28].copy_from_slice(&self.prev.to_be_bytes());
        b[28..32].copy_from_slice(&self.jump.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        let b: &[u8; ENTRY] = b.get(..ENTRY)?.try_into().ok()?;
        let u32_at = |i: usize| {
            let mut w = [0u8; 4];
            if let Some(src) = b.get(i..i + 4) {
                w.copy_from_slice(src);
            }
            u32::from_be_bytes(w)
        };
        let mut o = [0u8; 8];
        o.copy_from_slice(&b[0..8]);
        let offset = i64::from_be_bytes(o);
        o.copy_from_slice(&b[8..16]);
        let version = u64::from_be_bytes(o);
        Some(Entry {
            offset,
            version,
            location: BatchLocation {
                segment: offset - i64::from(u32_at(16)),
                position: u32_at(20),
            },
            prev: u32_at(24),
            jump: u32_at(28),
        })
    }
}

/// The entries file: written in pages with `pwrite`, read through a map.
struct Entries {
    path: PathBuf,
    file: File,
    /// Entries in the index.
    count: u32,
    /// Entries written to the file (the rest are in `pending`).
    flushed: u32,
    pending: Vec<u8>,
    file_len: u64,
    map: Option<Arc<Mapped>>,
}

impl Entries {
    fn open(path: &Path, count: u32) -> Result<Entries> {
        let file = ops::open_create(path).at(path)?;
        let file_len = file.metadata().at(path)?.len();
        let count = if (u64::from(count) * ENTRY as u64) <= file_len {
            count
        } else {
            0
        };
        Ok(Entries {
            path: path.to_path_buf(),
            file,
            count,
            flushed: count,
            pending: Vec::with_capacity(FLUSH_BYTES),
            file_len,
            map: None,
        })
    }

    fn clear(&mut self) {
        self.count = 0;
        self.flushed = 0;
        self.pending.clear();
    }

    fn push(&mut self, e: &Entry) -> Result<u32> {
        if self.count == NONE - 1 {
            return Err(Error::invalid_config(
                "event store",
                "a partition's index holds at most 4,294,967,293 events",
            ));
        }
        self.pending.extend_from_slice(&e.encode());
        let at = self.count;
        self.count += 1;
        if self.pending.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(at)
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pos = u64::from(self.flushed) * ENTRY as u64;
        let end = pos + self.pending.len() as u64;
        if end > self.file_len {
            let len = end.div_ceil(GROW) * GROW;
            ops::set_len(&self.file, &self.path, len).at(&self.path)?;
            self.file_len = len;
        }
        ops::write_all_at(&self.file, &self.path, pos, &self.pending).at(&self.path)?;
        self.flushed = self.count;
        self.pending.clear();
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<Entry> {
        let bad = || Error::Corrupt {
            path: self.path.clone(),
            position: u64::from(i) * ENTRY as u64,
            reason: format!("entry {i} is outside the index"),
        };
        if i >= self.count {
            return Err(bad());
        }
        if i >= self.flushed {
            let at = (i - self.flushed) as usize * ENTRY;
            return self
                .pending
                .get(at..)
                .and_then(Entry::decode)
                .ok_or_else(bad);
        }
        let pos = i as usize * ENTRY;
        let mapped = self.map.as_ref().map_or(0, |m| m.capacity());
        if pos + ENTRY > mapped {
            // Written entries are below `file_len`, which only grows while the file is open.
            let m = Mapped::map(&self.file, self.file_len as usize).at(&self.path)?;
            m.expect_sparse_reads(true);
            self.map = Some(m);
        }
        self.map
            .as_ref()
            .and_then(|m| m.slice(pos, ENTRY))
            .and_then(Entry::decode)
            .ok_or_else(bad)
    }
}

/// A checkpoint ready to be made durable.
pub(super) struct PendingCheckpoint {
    file: File,
    entries_path: PathBuf,
    heads_path: PathBuf,
    heads: Vec<u8>,
}

impl PendingCheckpoint {
    /// Syncs the entries the heads name, then writes the heads atomically.
    pub(super) fn write(self) -> Result<()> {
        ops::sync_data(&self.file, &self.entries_path).at(&self.entries_path)?;
        io::write_atomic(&self.heads_path, &self.heads)
    }
}

/// A stream's newest event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    pub(super) last: u64,
    pub(super) entry: u32,
}

/// An event id seen recently, for idempotent retries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub(super) stream: u64,
    pub(super) version: u64,
    pub(super) offset: i64,
}

/// The ids of the last events of a partition.
struct IdWindow {
    cap: usize,
    order: VecDeque<(EventId, i64)>,
    map: HashMap<EventId, Seen>,
}

impl IdWindow {
    fn push(&mut self, id: EventId, seen: Seen) {
        if self.cap == 0 {
            return;
        }
        self.map.insert(id, seen);
        self.order.push_back((id, seen.offset));
        while self.order.len() > self.cap {
            if let Some((old, offset)) = self.order.pop_front()
                && self.map.get(&old).is_some_and(|s| s.offset == offset)
            {
                self.map.remove(&old);
            }
        }
    }
}

/// Versions missing from a stream: the log has the event after them but not them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGap {
    /// The stream.
    pub stream: String,
    /// The partition.
    pub partition: i32,
    /// The first missing version.
    pub first_missing: u64,
    /// The last missing version.
    pub last_missing: u64,
    /// The offset of the event after the gap.
    pub offset: i64,
}

/// A hash of a stream id for the id window (not stored: process-local keys).
pub(super) fn stream_hash(state: &std::collections::hash_map::RandomState, key: &[u8]) -> u64 {
    state.hash_one(key)
}

/// What happened to one partition's index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionIndexReport {
    /// The partition.
    pub partition: i32,
    /// Whether the index started from its checkpoint.
    pub from_checkpoint: bool,
    /// Why the checkpoint was not used, when one existed.
    pub rebuilt: Option<String>,
    /// Records read from the log to catch up.
    pub records_replayed: u64,
    /// Versions missing from streams (damage, or writes outside the store).
    pub gaps: Vec<StreamGap>,
    /// Records with a version at or below their stream's last (not indexed, not returned by
    /// stream reads).
    pub duplicate_versions: u64,
    /// Keyed records without the store's version header (not events of the store).
    pub foreign_records: u64,
}

/// One partition's index.
pub(super) struct PartIndex {
    partition: i32,
    dir: PathBuf,
    pub(super) heads: HashMap<Box<[u8]>, Head>,
    entries: Entries,
    /// Offsets below this are indexed.
    pub(super) next: i64,
    window: IdWindow,
    pub(super) hasher: std::collections::hash_map::RandomState,
    pub(super) report: PartitionIndexReport,
}

impl PartIndex {
    fn heads_path(dir: &Path, partition: i32) -> PathBuf {
        dir.join(format!("{partition}.heads"))
    }

    /// Opens the index of `handle`'s partition under `dir`, from its checkpoint when that
    /// matches the log, then catches up with the log.
    pub(super) fn open(dir: &Path, handle: &PartitionHandle, window: usize) -> Result<PartIndex> {
        let partition = handle.partition();
        let entries_path = dir.join(format!("{partition}.entries"));
        let mut index = PartIndex {
            partition,
            dir: dir.to_path_buf(),
            heads: HashMap::new(),
            entries: Entries::open(&entries_path, 0)?,
            next: handle.log_start_offset(),
            window: IdWindow {
                cap: window,
                order: VecDeque::new(),
                map: HashMap::new(),
            },
            hasher: std::collections::hash_map::RandomState::new(),
            report: PartitionIndexReport {
                partition,
                ..PartitionIndexReport::default()
            },
        };
        let heads_path = Self::heads_path(dir, partition);
        match ops::read(&heads_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&heads_path, e)),
            Ok(bytes) => match index.load(&bytes, handle) {
                Ok(()) => index.report.from_checkpoint = true,
                Err(reason) => {
                    index.heads.clear();
                    index.entries.clear();
                    index.next = handle.log_start_offset();
                    index.report.rebuilt = Some(reason);
                }
            },
        }
        if index.report.from_checkpoint {
            // The id window gets the last offsets the checkpoint covered first, then what the
            // catch-up reads after them (the newest ids last, so the newest stay).
            let from = index.next;
            let start = from
                .saturating_sub(window as i64)
                .max(handle.log_start_offset());
            index.refill_window(handle, start, from)?;
        }
        index.catch_up(handle)?;
        if index.report.records_replayed > 0 {
            handle.release_maps();
        }
        Ok(index)
    }

    /// Loads the checkpoint in `bytes`; the reason it does not match the log otherwise.
    fn load(&mut self, bytes: &[u8], handle: &PartitionHandle) -> std::result::Result<(), String> {
        let body_len = bytes
            .len()
            .checked_sub(4)
            .ok_or("the checkpoint is truncated")?;
        let (body, crc) = bytes.split_at(body_len);
        let want = u32::from_be_bytes(crc.try_into().map_err(|_| "no checksum")?);
        if crate::record::batch::crc32c(body) != want {
            return Err("the checkpoint fails its checksum".into());
        }
        let mut r = Reader { b: body };
        if r.take(8)? != MAGIC {
            return Err("the checkpoint has an unknown format".into());
        }
        let next = r.i64()?;
        let count = r.u32()?;
        let streams = r.u32()?;
        let end = handle.log_end_offset();
        if next > end {
            return Err(format!(
                "the checkpoint covers offsets to {next} but the log ends at {end} (its tail \
                 was lost)"
            ));
        }
        if next < handle.log_start_offset() && count > 0 {
            // Retention passed the checkpoint: entries below the start are harmless (reads
            // report them removed), and catching up starts at the log start.
        }
        let mut heads = HashMap::with_capacity(streams as usize);
        for _ in 0..streams {
            let len = r.u32()? as usize;
            let key: Box<[u8]> = r.take(len)?.into();
            let last = r.u64()?;
            let entry = r.u32()?;
            if entry >= count {
                return Err(format!("a stream's head names entry {entry} of {count}"));
            }
            heads.insert(key, Head { last, entry });
        }
        self.entries = Entries::open(&self.entries.path, count).map_err(|e| e.to_string())?;
        if self.entries.count != count {
            return Err(format!(
                "the entries file holds fewer than the checkpoint's {count} entries"
            ));
        }
        // The newest entries must be where the log has them.
        for i in (count.saturating_sub(VERIFY_ENTRIES)..count).rev() {
            let e = self.entries.get(i).map_err(|e| e.to_string())?;
            if e.offset < handle.log_start_offset() {
                break;
            }
            if !entry_matches(handle, &e).map_err(|e| e.to_string())? {
                return Err(format!(
                    "entry {i} (offset {}, version {}) does not match the log",
                    e.offset, e.version
                ));
            }
        }
        self.heads = heads;
        self.next = next.max(handle.log_start_offset());
        Ok(())
    }

    /// Writes the checkpoint: entries synced first, then the heads (atomically).
    pub(super) fn checkpoint(&mut self) -> Result<()> {
        self.prepare_checkpoint()?.write()
    }

    /// The part of a checkpoint that needs the index: pending entries written (not synced),
    /// the heads serialized. [`PendingCheckpoint::write`] does the syncs, without the index
    /// (whose lock appends take under the writer lock).
    pub(super) fn prepare_checkpoint(&mut self) -> Result<PendingCheckpoint> {
        self.entries.flush()?;
        let file = self.entries.file.try_clone().at(&self.entries.path)?;
        let mut out = Vec::with_capacity(32 + self.heads.len() * 40);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.next.to_be_bytes());
        out.extend_from_slice(&self.entries.count.to_be_bytes());
        out.extend_from_slice(&(self.heads.len() as u32).to_be_bytes());
        for (key, h) in &self.heads {
            out.extend_from_slice(&(key.len() as u32).to_be_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&h.last.to_be_bytes());
            out.extend_from_slice(&h.entry.to_be_bytes());
        }
        let crc = crate::record::batch::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        Ok(PendingCheckpoint {
            file,
            entries_path: self.entries.path.clone(),
            heads_path: Self::heads_path(&self.dir, self.partition),
            heads: out,
        })
    }

    /// The current version of a stream.
    pub(super) fn version(&self, stream: &[u8]) -> Option<u64> {
        self.heads.get(stream).map(|h| h.last)
    }

    /// The event an id names, when the id is in the window.
    pub(super) fn seen(&self, id: &EventId) -> Option<Seen> {
        self.window.map.get(id).copied()
    }

    /// Adds an event at `offset` in the batch at `location`.
    pub(super) fn add(
        &mut self,
        stream: &[u8],
        version: u64,
        id: Option<EventId>,
        offset: i64,
        location: BatchLocation,
    ) -> Result<()> {
        if version == u64::MAX {
            // No event can follow it: not an event the store wrote.
            self.report.duplicate_versions += 1;
            return Ok(());
        }
        let head = self.heads.get(stream).copied();
        if let Some(h) = head {
            if version <= h.last {
                self.report.duplicate_versions += 1;
                return Ok(());
            }
            if version > h.last + 1 && self.report.gaps.len() < MAX_GAPS {
                self.report.gaps.push(StreamGap {
                    stream: String::from_utf8_lossy(stream).into_owned(),
                    partition: self.partition,
                    first_missing: h.last + 1,
                    last_missing: version - 1,
                    offset,
                });
            }
        }
        let at = self.push_after(head, offset, version, location)?;
        match self.heads.get_mut(stream) {
            Some(h) => {
                h.last = version;
                h.entry = at;
            }
            None => {
                self.heads.insert(
                    stream.into(),
                    Head {
                        last: version,
                        entry: at,
                    },
                );
            }
        }
        if let Some(id) = id {
            let s = stream_hash(&self.hasher, stream);
            self.window.push(
                id,
                Seen {
                    stream: s,
                    version,
                    offset,
                },
            );
        }
        Ok(())
    }

    /// Appends the entry of an event whose stream's newest entry is `head`'s.
    fn push_after(
        &mut self,
        head: Option<Head>,
        offset: i64,
        version: u64,
        location: BatchLocation,
    ) -> Result<u32> {
        let (prev, jump) = match head {
            None => (NONE, NONE),
            Some(h) => (h.entry, jump_for(&mut self.entries, h.entry)?),
        };
        self.entries.push(&Entry {
            offset,
            version,
            location,
            prev,
            jump,
        })
    }

    /// Adds the events of one append: `ids.len()` events of `stream` from version `first` at
    /// offsets from `base`, all in the batch at `location` (the stream's check passed, so the
    /// versions follow its last).
    pub(super) fn add_run(
        &mut self,
        stream: &[u8],
        first: u64,
        ids: &[EventId],
        base: i64,
        location: BatchLocation,
    ) -> Result<()> {
        let hash = stream_hash(&self.hasher, stream);
        let mut head = self.heads.get(stream).copied();
        for (i, id) in ids.iter().enumerate() {
            let version = first + i as u64;
            let offset = base + i as i64;
            let entry = self.push_after(head, offset, version, location)?;
            head = Some(Head {
                last: version,
                entry,
            });
            self.window.push(
                *id,
                Seen {
                    stream: hash,
                    version,
                    offset,
                },
            );
        }
        if let Some(h) = head {
            match self.heads.get_mut(stream) {
                Some(slot) => *slot = h,
                None => {
                    self.heads.insert(stream.into(), h);
                }
            }
        }
        Ok(())
    }

    /// The newest entry of `stream` with a version at or below `version`.
    fn seek(&mut self, head: Head, version: u64) -> Result<Option<(u32, Entry)>> {
        let mut x = head.entry;
        loop {
            let e = self.entries.get(x)?;
            if e.version <= version {
                return Ok(Some((x, e)));
            }
            if e.jump != NONE {
                let j = self.entries.get(e.jump)?;
                if j.version >= version {
                    x = e.jump;
                    continue;
                }
            }
            if e.prev == NONE {
                return Ok(None);
            }
            x = e.prev;
        }
    }

    /// The entry of `stream`'s event at `version`, if the index has it.
    pub(super) fn entry_of(&mut self, stream: &[u8], version: u64) -> Result<Option<Entry>> {
        let Some(head) = self.heads.get(stream).copied() else {
            return Ok(None);
        };
        Ok(self
            .seek(head, version)?
            .map(|(_, e)| e)
            .filter(|e| e.version == version))
    }

    /// Entries of `stream` from `from` (inclusive) upwards, at most `max`, oldest first; or
    /// from `from` downwards, newest first.
    pub(super) fn collect(
        &mut self,
        stream: &[u8],
        from: u64,
        forwards: bool,
        max: usize,
        out: &mut Vec<Entry>,
    ) -> Result<()> {
        let Some(head) = self.heads.get(stream).copied() else {
            return Ok(());
        };
        if max == 0 {
            return Ok(());
        }
        let top = if forwards {
            from.saturating_add(max as u64 - 1)
        } else {
            from
        };
        let Some((_, mut e)) = self.seek(head, top)? else {
            return Ok(());
        };
        let start = out.len();
        loop {
            if forwards && e.version < from {
                break;
            }
            out.push(e);
            if out.len() - start >= max || e.prev == NONE {
                break;
            }
            e = self.entries.get(e.prev)?;
        }
        if forwards && let Some(mine) = out.get_mut(start..) {
            mine.reverse();
        }
        Ok(())
    }

    /// Indexes what the log holds past `next`, up to its high watermark.
    pub(super) fn catch_up(&mut self, handle: &PartitionHandle) -> Result<()> {
        if self.next > handle.log_end_offset() {
            // The log lost offsets the index covers (cut under it): start again from the log.
            self.heads.clear();
            self.entries.clear();
            self.window.order.clear();
            self.window.map.clear();
            self.next = handle.log_start_offset();
            self.report.rebuilt = Some(format!(
                "the log ends at {} below the offsets the index covered",
                handle.log_end_offset()
            ));
        }
        loop {
            let start = handle.log_start_offset();
            if self.next < start {
                self.next = start;
            }
            if self.next >= handle.high_watermark() {
                return Ok(());
            }
            let got = match handle.read(self.next, 1 << 20) {
                Ok(r) => r,
                Err(Error::OffsetOutOfRange { .. }) => continue,
                Err(e) => return Err(e),
            };
            if got.batches.is_empty() {
                // No batch from here to the high watermark: offsets the log skips (an end
                // raised over damage). Nothing to index there.
                self.next = self.next.max(got.high_watermark);
                return Ok(());
            }
            let locations = got.locations().to_vec();
            for (batch, at) in got.batches.iter().zip(locations) {
                let h = batch.header();
                if h.is_control() || h.is_transactional() {
                    self.next = batch.last_offset() + 1;
                    continue;
                }
                batch.verify_crc()?;
                let mut found = Vec::new();
                let next = self.next;
                let mut foreign = 0u64;
                batch.for_each_record(|r| {
                    if r.offset < next {
                        return;
                    }
                    let Some(key) = r.key else { return };
                    match event_meta(&r) {
                        Some(m) => found.push((key.to_vec(), m.version, m.id, r.offset)),
                        None => foreign += 1,
                    }
                })?;
                self.report.foreign_records += foreign;
                self.report.records_replayed += found.len() as u64 + foreign;
                for (key, version, id, offset) in found {
                    self.add(&key, version, id, offset, at)?;
                }
                self.next = batch.last_offset() + 1;
            }
        }
    }

    /// Puts the ids of events at offsets `from..to` in the id window.
    fn refill_window(&mut self, handle: &PartitionHandle, from: i64, to: i64) -> Result<()> {
        let mut at = from;
        while at < to {
            let got = match handle.read(at, 1 << 20) {
                Ok(r) => r,
                Err(Error::OffsetOutOfRange { .. }) => return Ok(()),
                Err(e) => return Err(e),
            };
            if got.batches.is_empty() {
                return Ok(());
            }
            for batch in &got.batches {
                if batch.header().is_control() || batch.header().is_transactional() {
                    at = batch.last_offset() + 1;
                    continue;
                }
                let mut ids = Vec::new();
                batch.for_each_record(|r| {
                    if r.offset < at || r.offset >= to {
                        return;
                    }
                    if let (Some(key), Some(m)) = (r.key, event_meta(&r))
                        && let Some(id) = m.id
                    {
                        ids.push((stream_hash(&self.hasher, key), m.version, id, r.offset));
                    }
                })?;
                for (stream, version, id, offset) in ids {
                    self.window.push(
                        id,
                        Seen {
                            stream,
                            version,
                            offset,
                        },
                    );
                }
                at = batch.last_offset() + 1;
            }
        }
        Ok(())
    }

    /// Events in the index.
    pub(super) fn events(&self) -> u32 {
        self.entries.count
    }

    /// Streams in the index.
    pub(super) fn streams(&self) -> usize {
        self.heads.len()
    }
}

/// The jump pointer of a new entry whose previous entry is `p`: `p`'s jump's jump when the two
/// spans below `p` are equal, else `p` (Myers' skew-binary random-access lists).
fn jump_for(entries: &mut Entries, p: u32) -> Result<u32> {
    let pe = entries.get(p)?;
    if pe.jump == NONE {
        return Ok(p);
    }
    let j = entries.get(pe.jump)?;
    if j.jump == NONE {
        return Ok(p);
    }
    let jj = entries.get(j.jump)?;
    if pe.version - j.version == j.version - jj.version {
        Ok(j.jump)
    } else {
        Ok(p)
    }
}

/// Whether the log holds, at `e`'s location, an event at `e`'s offset with `e`'s version.
pub(super) fn entry_matches(handle: &PartitionHandle, e: &Entry) -> Result<bool> {
    let Some(batch) = handle.read_at(e.location, e.offset)? else {
        return Ok(false);
    };
    if !batch.crc_ok() {
        return Ok(false);
    }
    let mut ok = false;
    batch.for_each_record(|r| {
        if r.offset == e.offset {
            ok = event_meta(&r).is_some_and(|m| m.version == e.version);
        }
    })?;
    Ok(ok)
}

/// A cursor over a checkpoint's bytes.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err("the checkpoint is truncated".into());
        }
        let (a, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(a)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        let mut w = [0u8; 4];
        w.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(w))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        let mut w = [0u8; 8];
        w.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(w))
    }

    fn i64(&mut self) -> std::result::Result<i64, String> {
        Ok(self.u64()? as i64)
    }
}
