//! Idempotent-producer state of one partition: per producer id, its epoch and the sequence and
//! offset ranges of its last batches (Kafka keeps 5). Checked and updated under the writer
//! lock; persisted in Kafka-style `.snapshot` files and rebuilt by replaying batch headers.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::IoContext;
use crate::error::{Error, Result};
use crate::layout::{self, FileKind, Transient};
use crate::record::BatchHeader;
use crate::segment::Segment;
use crate::segment::txn_index::AbortedTxn;

use super::Shared;

/// Batches remembered per producer (Kafka's `NUM_BATCHES_TO_RETAIN`).
const BATCHES_TO_RETAIN: usize = 5;
const SNAPSHOT_VERSION: i16 = 1;
/// Bytes of one snapshot entry (Kafka's ProducerSnapshot v1 entry layout).
const ENTRY_LEN: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

/// Metadata of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) first_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) timestamp: i64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    pub(crate) batches: VecDeque<BatchMeta>,
    /// The first offset of the producer's open transaction on this partition (Kafka's
    /// `CurrentTxnFirstOffset`).
    pub(crate) txn_first: Option<i64>,
}

/// Outcome of checking an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not idempotent, or the next batch in sequence: write it.
    Append,
    /// A retry of a batch already written: acknowledge with these offsets, write nothing.
    Duplicate(BatchMeta),
}

/// The sequence after `seq` (sequences wrap from `i32::MAX` to 0).
pub(crate) fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX { 0 } else { seq + 1 }
}

/// Last sequence of a batch starting at `first` with `count - 1 = delta`.
pub(crate) fn last_seq(first: i32, delta: i32) -> i32 {
    ((i64::from(first) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
}

/// Hashes producer ids with one multiplication (Fibonacci hashing): an idempotent append
/// looks its producer up three times, and SipHash took a tenth of a single send's time. The
/// ids are the engine's own (or a client's, whose only gain from colliding would be slowing
/// its own partition). A producer's cache of partition handles hashes its topic names with
/// it too, a multiplication a byte (the names are the application's own).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        self.0 = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// How to take back one [`ProducerState::update_undoable`].
#[derive(Debug)]
pub(crate) struct Undo {
    producer_id: i64,
    change: Change,
    txn: TxnChange,
}

/// What an update did to the producer's open transaction.
#[derive(Debug, Clone, Copy)]
enum TxnChange {
    None,
    /// The batch opened a transaction at this offset: close it.
    Started(i64),
    /// A marker closed the transaction that began at this offset: reopen it.
    Ended(i64),
}

#[derive(Debug)]
enum Change {
    /// The producer was new: remove it.
    Inserted,
    /// A batch was pushed (and the oldest retained one dropped): pop it, restore the dropped.
    Pushed { dropped: Option<BatchMeta> },
    /// A new epoch replaced the producer's batches: restore them.
    NewEpoch {
        epoch: i16,
        batches: VecDeque<BatchMeta>,
    },
    /// A marker changed nothing but (maybe) the transaction.
    Nothing,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerState {
    producers: HashMap<i64, ProducerEntry, BuildHasherDefault<IdHasher>>,
    /// Open transactions by first offset: the smallest bounds the last stable offset.
    ongoing: BTreeSet<(i64, i64)>,
}

impl ProducerState {
    /// Checks a batch with `producer_id >= 0` against the state (Kafka's rules).
    pub(crate) fn check(&self, h: &BatchHeader, topic: &str, partition: i32) -> Result<Check> {
        if h.producer_id < 0 {
            return Ok(Check::Append);
        }
        let first = h.base_sequence;
        if first < 0 {
            return Err(Error::invalid_batch(
                "a batch with a producer id needs a base sequence >= 0",
            ));
        }
        let last = last_seq(first, h.last_offset_delta);
        let out_of_order = |expected: i32| Error::OutOfOrderSequence {
            topic: topic.to_string(),
            partition,
            producer_id: h.producer_id,
            expected,
            received: first,
        };
        let Some(e) = self.producers.get(&h.producer_id) else {
            // A producer this partition has not seen starts at 0.
            return if first == 0 {
                Ok(Check::Append)
            } else {
                Err(out_of_order(0))
            };
        };
        if h.producer_epoch < e.epoch {
            return Err(Error::Fenced {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current_epoch: e.epoch,
            });
        }
        if h.producer_epoch > e.epoch {
            // A new epoch starts its sequences over.
            return if first == 0 {
                Ok(Check::Append)
            } else {
                Err(out_of_order(0))
            };
        }
        // The next batch in sequence, as nearly every batch is, cannot also be a retained
        // one (those end before it): no search of them.
        let expected = e.batches.back().map_or(0, |b| next_seq(b.last_seq));
        if first == expected {
            return Ok(Check::Append);
        }
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == first && b.last_seq == last)
        {
            return Ok(Check::Duplicate(*b));
        }
        Err(out_of_order(expected))
    }

    /// The base sequence the writer assigns to a batch of `h`'s producer and epoch: the next
    /// of that epoch on this partition, 0 for a producer or epoch it has not seen. Such a batch
    /// is in sequence by construction (it cannot be a retry), so the only check left is the
    /// fence: an epoch older than the partition's fails. One lookup, where assigning the
    /// sequence and then [`ProducerState::check`] took two.
    ///
    /// # Errors
    /// [`Error::Fenced`].
    pub(crate) fn assign_sequence(&self, h: &BatchHeader) -> Result<i32> {
        match self.producers.get(&h.producer_id) {
            Some(e) if h.producer_epoch < e.epoch => Err(Error::Fenced {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current_epoch: e.epoch,
            }),
            Some(e) if h.producer_epoch == e.epoch => {
                Ok(e.batches.back().map_or(0, |b| next_seq(b.last_seq)))
            }
            _ => Ok(0),
        }
    }

    /// The last offset of every producer's last batch: the batch compaction keeps (empty if
    /// need be) so that this state can be rebuilt from the log alone.
    pub(crate) fn last_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(&id, e)| Some((id, e.batches.back()?.last_offset)))
            .collect()
    }

    /// Records a written batch.
    pub(crate) fn update(&mut self, h: &BatchHeader, first_offset: i64) {
        let _ = self.update_undoable(h, first_offset);
    }

    /// Records a batch about to be written, returning how to take it back if the write fails:
    /// the writer updates the state in place, with no copy of it per append.
    #[inline]
    pub(crate) fn update_undoable(&mut self, h: &BatchHeader, first_offset: i64) -> Option<Undo> {
        if h.producer_id < 0 {
            return None;
        }
        let mut undo = Undo {
            producer_id: h.producer_id,
            change: Change::Pushed { dropped: None },
            txn: TxnChange::None,
        };
        let e = match self.producers.entry(h.producer_id) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                undo.change = Change::Inserted;
                v.insert(ProducerEntry {
                    epoch: h.producer_epoch,
                    batches: VecDeque::with_capacity(BATCHES_TO_RETAIN + 1),
                    txn_first: None,
                })
            }
        };
        if h.is_transactional() && e.txn_first.is_none() {
            e.txn_first = Some(first_offset);
            self.ongoing.insert((first_offset, h.producer_id));
            undo.txn = TxnChange::Started(first_offset);
        }
        if h.producer_epoch != e.epoch {
            undo.change = Change::NewEpoch {
                epoch: e.epoch,
                batches: std::mem::take(&mut e.batches),
            };
            e.epoch = h.producer_epoch;
        }
        e.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: last_seq(h.base_sequence, h.last_offset_delta),
            first_offset,
            last_offset: first_offset + i64::from(h.last_offset_delta),
            timestamp: h.max_timestamp,
        });
        while e.batches.len() > BATCHES_TO_RETAIN {
            let dropped = e.batches.pop_front();
            if let Change::Pushed { dropped: d } = &mut undo.change {
                *d = dropped;
            }
        }
        Some(undo)
    }

    /// Checks an end-transaction marker of `h`'s producer against the state: an epoch older
    /// than the partition's is fenced.
    ///
    /// # Errors
    /// [`Error::Fenced`].
    pub(crate) fn check_marker(&self, h: &BatchHeader) -> Result<()> {
        match self.producers.get(&h.producer_id) {
            Some(e) if h.producer_epoch < e.epoch => Err(Error::Fenced {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current_epoch: e.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Records an end-transaction marker at `offset`: the producer's open transaction (if
    /// any) ends; a marker of a newer epoch moves the producer to it. Returns how to take it
    /// back, and for an ABORT that ended a transaction, its `.txnindex` entry.
    pub(crate) fn end_txn(
        &mut self,
        h: &BatchHeader,
        offset: i64,
        commit: bool,
    ) -> (Undo, Option<AbortedTxn>) {
        let mut undo = Undo {
            producer_id: h.producer_id,
            change: Change::Nothing,
            txn: TxnChange::None,
        };
        let e = match self.producers.entry(h.producer_id) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                undo.change = Change::Inserted;
                v.insert(ProducerEntry {
                    epoch: h.producer_epoch,
                    batches: VecDeque::new(),
                    txn_first: None,
                })
            }
        };
        if h.producer_epoch > e.epoch {
            undo.change = Change::NewEpoch {
                epoch: e.epoch,
                batches: std::mem::take(&mut e.batches),
            };
            e.epoch = h.producer_epoch;
        }
        let Some(first) = e.txn_first.take() else {
            return (undo, None);
        };
        self.ongoing.remove(&(first, h.producer_id));
        undo.txn = TxnChange::Ended(first);
        if commit {
            return (undo, None);
        }
        let lso = self.ongoing.first().map_or(offset + 1, |&(f, _)| f);
        (
            undo,
            Some(AbortedTxn::new(h.producer_id, first, offset, lso)),
        )
    }

    /// The first offset of the oldest open transaction, if any: the last stable offset
    /// cannot pass it.
    pub(crate) fn first_unstable(&self) -> Option<i64> {
        self.ongoing.first().map(|&(f, _)| f)
    }

    /// Open transactions: (producer id, epoch, first offset).
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.ongoing
            .iter()
            .filter_map(|&(f, id)| Some((id, self.producers.get(&id)?.epoch, f)))
            .collect()
    }

    /// Takes back an update (the latest not yet taken back first).
    pub(crate) fn undo(&mut self, undo: Undo) {
        match undo.txn {
            TxnChange::None => {}
            TxnChange::Started(first) => {
                self.ongoing.remove(&(first, undo.producer_id));
                if let Some(e) = self.producers.get_mut(&undo.producer_id) {
                    e.txn_first = None;
                }
            }
            TxnChange::Ended(first) => {
                self.ongoing.insert((first, undo.producer_id));
                if let Some(e) = self.producers.get_mut(&undo.producer_id) {
                    e.txn_first = Some(first);
                }
            }
        }
        match undo.change {
            Change::Nothing => {}
            Change::Inserted => {
                self.producers.remove(&undo.producer_id);
            }
            Change::Pushed { dropped } => {
                if let Some(e) = self.producers.get_mut(&undo.producer_id) {
                    e.batches.pop_back();
                    if let Some(d) = dropped {
                        e.batches.push_front(d);
                    }
                }
            }
            Change::NewEpoch { epoch, batches } => {
                if let Some(e) = self.producers.get_mut(&undo.producer_id) {
                    e.epoch = epoch;
                    e.batches = batches;
                }
            }
        }
    }

    /// Kafka's ProducerSnapshot v1: version i16, crc u32 (CRC-32C of what follows), entry count
    /// i32, then per producer: id i64, epoch i16, last sequence i32, last offset i64, offset
    /// delta i32, timestamp i64, coordinator epoch i32, current txn first offset i64.
    pub(crate) fn encode_snapshot(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * ENTRY_LEN);
        let count = self
            .producers
            .values()
            .filter(|e| !e.batches.is_empty() || e.txn_first.is_some() || e.epoch > 0)
            .count();
        body.extend_from_slice(&(count as i32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(e) = self.producers.get(&id) else {
                continue;
            };
            if e.batches.is_empty() && e.txn_first.is_none() && e.epoch <= 0 {
                continue;
            }
            // A producer known only by a marker (its epoch, maybe an open transaction) has
            // no batch: sequence and offset -1, as Kafka writes an empty entry.
            let (last_seq, last_offset, delta, timestamp) = match e.batches.back() {
                Some(b) => (
                    b.last_seq,
                    b.last_offset,
                    (b.last_offset - b.first_offset) as i32,
                    b.timestamp,
                ),
                None => (-1, -1, 0, -1),
            };
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&last_seq.to_be_bytes());
            body.extend_from_slice(&last_offset.to_be_bytes());
            body.extend_from_slice(&delta.to_be_bytes());
            body.extend_from_slice(&timestamp.to_be_bytes());
            body.extend_from_slice(&(-1i32).to_be_bytes());
            body.extend_from_slice(&e.txn_first.unwrap_or(-1).to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crate::record::batch::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot; `None` when it is damaged (the caller then replays more log).
    pub(crate) fn decode_snapshot(bytes: &[u8]) -> Option<ProducerState> {
        let (head, body) = bytes.split_at_checked(6)?;
        let version = i16::from_be_bytes(head.get(..2)?.try_into().ok()?);
        let crc = u32::from_be_bytes(head.get(2..6)?.try_into().ok()?);
        if version != SNAPSHOT_VERSION || crate::record::batch::crc32c(body) != crc {
            return None;
        }
        let count = i32::from_be_bytes(body.get(..4)?.try_into().ok()?);
        let count = usize::try_from(count).ok()?;
        let entries = body.get(4..)?;
        if entries.len() != count.checked_mul(ENTRY_LEN)? {
            return None;
        }
        let mut state = ProducerState::default();
        for e in entries.chunks_exact(ENTRY_LEN) {
            let id = i64::from_be_bytes(e.get(0..8)?.try_into().ok()?);
            let epoch = i16::from_be_bytes(e.get(8..10)?.try_into().ok()?);
            let last_seq = i32::from_be_bytes(e.get(10..14)?.try_into().ok()?);
            let last_offset = i64::from_be_bytes(e.get(14..22)?.try_into().ok()?);
            let delta = i32::from_be_bytes(e.get(22..26)?.try_into().ok()?);
            let timestamp = i64::from_be_bytes(e.get(26..34)?.try_into().ok()?);
            let txn_first = i64::from_be_bytes(e.get(38..46)?.try_into().ok()?);
            let first_seq = last_seq.wrapping_sub(delta).max(0);
            let mut batches = VecDeque::new();
            if last_offset >= 0 {
                batches.push_back(BatchMeta {
                    first_seq,
                    last_seq,
                    first_offset: last_offset - i64::from(delta),
                    last_offset,
                    timestamp,
                });
            }
            let txn_first = (txn_first >= 0).then_some(txn_first);
            if let Some(f) = txn_first {
                state.ongoing.insert((f, id));
            }
            state.producers.insert(
                id,
                ProducerEntry {
                    epoch,
                    batches,
                    txn_first,
                },
            );
        }
        Some(state)
    }
}

/// `<20-digit offset>.snapshot`: the state of every batch below `offset`.
pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(layout::file_name(offset, FileKind::Snapshot))
}

/// Writes a snapshot of `state` covering offsets below `end`, and removes older snapshots
/// except the previous one.
///
/// Not fsynced: a snapshot only saves replay work. One lost or torn by a power cut fails its
/// CRC and the loader falls back to an older snapshot plus a longer replay of batch headers
/// (the log itself is the source of truth), so the cost of two fsyncs per partition at every
/// roll and close buys nothing.
pub(crate) fn write_snapshot(dir: &Path, state: &ProducerState, end: i64) -> Result<()> {
    let path = snapshot_path(dir, end);
    let tmp = dir.join(layout::transient_name(
        end,
        FileKind::Snapshot,
        Transient::Tmp,
    ));
    crate::io::write_file(&tmp, &state.encode_snapshot())?;
    crate::io::ops::rename(&tmp, &path).at(&path)?;
    let mut older = list_snapshots(dir);
    older.retain(|&o| o < end);
    older.sort_unstable();
    older.pop();
    for o in older {
        let _ = crate::io::ops::remove_file(&snapshot_path(dir, o));
    }
    Ok(())
}

/// Offsets of the snapshot files in `dir`.
pub(crate) fn list_snapshots(dir: &Path) -> Vec<i64> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let name = e.ok()?.file_name();
        layout::parse_plain(name.to_str()?, FileKind::Snapshot)
    })
    .collect()
}

/// Whether a control batch is a transaction's COMMIT (`Some(true)`) or ABORT (`Some(false)`);
/// `None` for another control record or one that does not decode (it ends nothing).
pub(crate) fn marker_kind(batch: &crate::record::Batch) -> Option<bool> {
    match batch.control_record()? {
        Ok(crate::record::ControlRecord::EndTxn(m)) => Some(m.commit),
        _ => None,
    }
}

/// What replaying the log rebuilt: the producer state, where the replay began, and the
/// aborted transactions whose markers it passed, with the base of the segment holding each.
pub(crate) struct Replayed {
    pub(crate) state: ProducerState,
    pub(crate) from: i64,
    pub(crate) aborted: Vec<(i64, AbortedTxn)>,
}

/// Producer state below `end`: the newest readable snapshot at or below `floor` (and `end`),
/// plus the batch headers written after it. Snapshots past `end` (cut by recovery or
/// truncation) are removed. The replay also passes every end-transaction marker after the
/// snapshot, so it rebuilds the `.txnindex` entries of that range.
pub(crate) fn rebuild_producers(
    shared: &Shared,
    dir: &Path,
    segments: &[Arc<Segment>],
    end: i64,
    floor: i64,
) -> Result<Replayed> {
    let mut snaps = list_snapshots(dir);
    snaps.sort_unstable();
    if !shared.read_only && snaps.iter().any(|&o| o > end) {
        // Snapshots of a cut-off tail must never be taken for the regrown log: remove them
        // durably.
        for &o in snaps.iter().filter(|&&o| o > end) {
            let p = snapshot_path(dir, o);
            crate::io::ops::remove_file(&p).at(&p)?;
        }
        crate::io::sync_dir(dir)?;
    }
    snaps.retain(|&o| o <= end && o <= floor);
    let (mut state, from) = loop {
        match snaps.pop() {
            Some(o) => {
                let decoded = crate::io::ops::read(&snapshot_path(dir, o))
                    .ok()
                    .and_then(|b| ProducerState::decode_snapshot(&b));
                if let Some(st) = decoded {
                    break (st, o);
                }
            }
            None => break (ProducerState::default(), i64::MIN),
        }
    };
    let mut aborted = Vec::new();
    for seg in segments {
        if seg.end_offset() <= from || seg.is_empty() {
            continue;
        }
        let maps = seg.maps(&shared.maps)?;
        let size = seg.size();
        let mut pos = if from == i64::MIN {
            0
        } else {
            seg.position_for(&maps, from)
        };
        while pos < size {
            let h = seg.header_at(&maps, pos, size)?;
            if h.base_offset >= from && h.producer_id >= 0 {
                if h.is_control() {
                    let batch = seg.batch_at(&maps, pos, h)?;
                    if let Some(commit) = marker_kind(&batch) {
                        let (_, entry) = state.end_txn(&h, h.base_offset, commit);
                        aborted.extend(entry.map(|e| (seg.base_offset, e)));
                    }
                } else {
                    state.update(&h, h.base_offset);
                }
            }
            pos += h.size() as u64;
        }
    }
    Ok(Replayed {
        state,
        from,
        aborted,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, delta: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 49,
            partition_leader_epoch: -1,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: delta,
            base_timestamp: 1,
            max_timestamp: 1,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: delta + 1,
        }
    }

    #[test]
    fn sequence_rules() {
        let mut s = ProducerState::default();
        assert_eq!(s.check(&header(7, 0, 0, 2), "t", 0).unwrap(), Check::Append);
        s.update(&header(7, 0, 0, 2), 10);
        // Retry of the same batch.
        match s.check(&header(7, 0, 0, 2), "t", 0).unwrap() {
            Check::Duplicate(b) => assert_eq!((b.first_offset, b.last_offset), (10, 12)),
            Check::Append => panic!("duplicate not detected"),
        }
        assert_eq!(s.check(&header(7, 0, 3, 0), "t", 0).unwrap(), Check::Append);
        assert!(matches!(
            s.check(&header(7, 0, 5, 0), "t", 0),
            Err(Error::OutOfOrderSequence { expected: 3, .. })
        ));
        // A newer epoch starts at 0; an older one is fenced.
        assert_eq!(s.check(&header(7, 1, 0, 0), "t", 0).unwrap(), Check::Append);
        s.update(&header(7, 1, 0, 0), 13);
        assert!(matches!(
            s.check(&header(7, 0, 3, 0), "t", 0),
            Err(Error::Fenced { .. })
        ));
        assert!(matches!(
            s.check(&header(8, 0, 4, 0), "t", 0),
            Err(Error::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut s = ProducerState::default();
        s.update(&header(7, 2, 0, 4), 100);
        s.update(&header(9, 0, 0, 0), 105);
        let bytes = s.encode_snapshot();
        let back = ProducerState::decode_snapshot(&bytes).unwrap();
        assert!(matches!(
            back.check(&header(7, 2, 0, 4), "t", 0).unwrap(),
            Check::Duplicate(BatchMeta {
                first_offset: 100,
                last_offset: 104,
                ..
            })
        ));
        assert_eq!(
            back.check(&header(7, 2, 5, 0), "t", 0).unwrap(),
            Check::Append
        );
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(ProducerState::decode_snapshot(&bad).is_none() || i < 2);
            assert!(ProducerState::decode_snapshot(&bytes[..i]).is_none());
        }
    }

    /// Kafka's `CurrentTxnFirstOffset` survives a snapshot: an open transaction's first offset,
    /// and a producer known only by a marker (its epoch, no batch).
    #[test]
    fn snapshot_keeps_open_transactions() {
        let mut s = ProducerState::default();
        let mut txn = header(7, 1, 0, 2);
        txn.attributes = 0x10;
        s.update(&txn, 40);
        let mut marker = header(9, 4, -1, 0);
        marker.attributes = 0x30;
        let _ = s.end_txn(&marker, 43, false);
        assert_eq!(s.first_unstable(), Some(40));
        let bytes = s.encode_snapshot();
        let back = ProducerState::decode_snapshot(&bytes).unwrap();
        assert_eq!(back.first_unstable(), Some(40));
        assert_eq!(back.open_transactions(), vec![(7, 1, 40)]);
        assert_eq!(back.encode_snapshot(), bytes);
        // The marker-only producer keeps its epoch: an older one is fenced.
        assert!(back.check_marker(&header(9, 3, -1, 0)).is_err());
        // An ABORT ends the transaction and gives its index entry.
        let mut back = back;
        let mut abort = header(7, 1, -1, 0);
        abort.attributes = 0x30;
        let (_, entry) = back.end_txn(&abort, 50, false);
        assert_eq!(entry, Some(AbortedTxn::new(7, 40, 50, 51)));
        assert_eq!(back.first_unstable(), None);
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(next_seq(i32::MAX), 0);
        assert_eq!(last_seq(i32::MAX - 1, 3), 1);
    }

    /// What a failed write's undo must restore: every kind of update (a new producer, a batch
    /// pushed with the oldest retained one dropped, a new epoch), taken back latest first,
    /// leaves the state as it was.
    #[test]
    fn undo_restores_the_state_before_the_updates() {
        let mut state = ProducerState::default();
        let mut offset = 0;
        for seq in 0..BATCHES_TO_RETAIN as i32 {
            state.update(&header(7, 0, seq * 2, 1), offset);
            offset += 2;
        }
        let before = state.encode_snapshot();
        let before_batches: Vec<BatchMeta> = state.producers[&7].batches.iter().copied().collect();
        let mut undo = Vec::new();
        let seq = state.assign_sequence(&header(7, 0, 0, 0)).unwrap();
        undo.extend(state.update_undoable(&header(7, 0, seq, 0), offset));
        undo.extend(state.update_undoable(&header(9, 3, 0, 4), offset + 1));
        undo.extend(state.update_undoable(&header(7, 1, 0, 0), offset + 6));
        assert_eq!(undo.len(), 3);
        assert_ne!(state.encode_snapshot(), before);
        while let Some(u) = undo.pop() {
            state.undo(u);
        }
        assert_eq!(state.encode_snapshot(), before);
        let after: Vec<BatchMeta> = state.producers[&7].batches.iter().copied().collect();
        assert_eq!(after, before_batches);
        assert!(!state.producers.contains_key(&9));
        assert_eq!(state.assign_sequence(&header(7, 0, 0, 0)).unwrap(), seq);
    }
}
