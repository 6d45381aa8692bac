//! Log compaction: keep the latest record for every key, never change offsets, never touch the
//! active segment, drop tombstones once their delete horizon has passed.
//!
//! Transactions, as Kafka's cleaner treats them: only segments below the last stable offset
//! are cleaned (a key's latest record in an open transaction may still be aborted); records of
//! aborted transactions are removed (and do not count as their key's latest); an end-transaction
//! marker stays while any batch of its transaction does, is stamped with a delete horizon on
//! the first pass that finds the transaction empty, and goes on a pass after that horizon. A
//! cleaned segment's `.txnindex` holds the aborted transactions of every segment it replaces.
//!
//! Crash safety. Cleaned segments are written as `<base>.log.cleaned` (plus indexes), fsynced,
//! renamed to `.swap`, then — under the writer lock — the segments they replace are deleted
//! and the `.swap` files renamed into place (`.log` last). At open, `.cleaned` files are
//! deleted and a `<b>.log.swap` completes its swap: segments with base offsets in `[b, end of
//! the swap)` are deleted and the swap files renamed. A crash at any point therefore leaves
//! either the old segments or the cleaned ones, never both and never neither.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, IoContext, Result};
use crate::io::{ops, sync_dir, write_synced};
use crate::layout::{self, FileKind, Transient};
use crate::partition::Partition;
use crate::partition::producer_state::marker_kind;
use crate::partition::read::aborted;
use crate::record::TimestampType;
use crate::record::batch::{
    BATCH_HEADER_LEN, BatchHeader, empty_batch, placeholder_batch, stamp_base_offset,
    stamp_log_append_time,
};
use crate::record::{Batch, BatchBuilder};
use crate::segment::txn_index::AbortedTxn;
use crate::segment::writer::{Accountant, IndexBytes};
use crate::segment::{Segment, SegmentState, TIME_ENTRY, swap};

/// What compacting one partition did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Compacted {
    pub(crate) segments_in: usize,
    pub(crate) segments_out: usize,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) records_removed: u64,
}

/// Where a test may stop a compaction to simulate a crash (exported with feature `sim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
// Each variant names the step of the swap it follows: "after" is the point of the name.
#[allow(clippy::enum_variant_names)]
pub enum CrashPoint {
    /// After writing the `.cleaned` files.
    AfterCleaned,
    /// After renaming them to `.swap`.
    AfterSwap,
    /// After deleting the first replaced segment.
    AfterFirstDelete,
    /// After renaming the swap's index files into place (the log still `.swap`).
    AfterIndexRename,
}

/// The share of cleanable bytes not yet compacted (Kafka's dirty ratio).
pub(crate) fn dirty_ratio(p: &Partition) -> f64 {
    let segs = p.segments();
    let cleanable = segs.len().saturating_sub(1);
    let clean_end = p.clean_end();
    let (mut dirty, mut total) = (0u64, 0u64);
    for s in segs.iter().take(cleanable) {
        total += s.size();
        if s.end_offset() > clean_end {
            dirty += s.size();
        }
    }
    // A ratio: f64's 52-bit mantissa is plenty for byte counts below 2^52.
    #[allow(clippy::cast_precision_loss)]
    if total == 0 {
        0.0
    } else {
        dirty as f64 / total as f64
    }
}

/// One retained or rewritten output batch.
struct OutBatch {
    bytes: Vec<u8>,
    header: BatchHeader,
}

/// Compacts every sealed segment of `p` (up to the first one still inside
/// `min_compaction_lag_ms`). `crash` stops half-way, for tests.
#[allow(clippy::many_single_char_names)]
pub(crate) fn compact(
    p: &Arc<Partition>,
    now: i64,
    crash: Option<CrashPoint>,
) -> Result<Compacted> {
    let cfg = p.config();
    let segs = p.segments();
    let lag = cfg.min_compaction_lag_ms as i64;
    // Kafka's cleaner stops at the first unstable offset too: a record of an open transaction
    // taken as its key's latest would remove the key's committed one, and leave nothing if
    // the transaction then aborts.
    let stable = p.last_stable_offset();
    let cleanable: Vec<Arc<Segment>> = segs
        .iter()
        .take(segs.len().saturating_sub(1))
        .take_while(|s| {
            lag == 0 || s.max_timestamp() < 0 || now.saturating_sub(s.max_timestamp()) >= lag
        })
        .take_while(|s| s.end_offset() <= stable)
        .cloned()
        .collect();
    let mut out = Compacted::default();
    if cleanable.is_empty() {
        return Ok(out);
    }
    let start = cleanable.first().map_or(0, |s| s.base_offset);
    let end = cleanable.last().map_or(0, |s| s.end_offset());
    // Every transaction with records here has its marker written (all of it lies below the
    // last stable offset), so a transactional batch not in this list is committed.
    let aborted_txns = p.aborted_between(start, end);
    // Pass 1: the latest offset of every key in the cleanable range, aborted records aside.
    let mut latest: HashMap<Bytes, i64> = HashMap::new();
    for seg in &cleanable {
        for batch in batches(p, seg)? {
            if batch.header().is_control() || aborted(&aborted_txns, batch.header()) {
                continue;
            }
            for r in batch.owned_records()? {
                let r = r?;
                if let Some(k) = r.key {
                    latest.insert(k, r.offset);
                }
            }
        }
    }
    // Pass 2: rewrite the segments in order, merging adjacent ones while their output fits one
    // segment. Kafka groups by input size, so a first pass over full segments leaves one small
    // segment per input segment and only the next pass merges them; grouping by output does
    // it at once, and needs at most one segment of output in memory beyond the group's.
    let horizon = now.saturating_add(cfg.delete_retention_ms as i64);
    // Taken once: a producer's last batch only moves forward, into the active segment, which
    // this pass never reads, so a batch found last here can at worst be kept one pass too long.
    let producers_last = p.producer_last_offsets();
    let mut next_horizon: Option<i64> = None;
    // Per producer, whether its transaction in progress (since its last marker in this scan)
    // kept a batch: its marker must stay while one does.
    let mut txn_kept: HashMap<i64, bool> = HashMap::new();
    let mut group = Group::default();
    for seg in &cleanable {
        let mut kept = Vec::new();
        let mut removed = 0u64;
        let mut last = None;
        for batch in batches(p, seg)? {
            let h = *batch.header();
            // Kafka's cleaner (`LogCleaner.cleanInto`, its `checkBatchRetention`) keeps the
            // batch holding an active producer's last sequence even when compaction removes
            // all of its records (`BatchRetention.RETAIN_EMPTY`, written by
            // `MemoryRecords.filterTo` as a header with no records), and drops every other
            // batch left without records (`DELETE_EMPTY`), an empty one kept by an earlier pass
            // too once its producer has written again. The producer state is rebuilt from batch
            // headers when the `.snapshot` files are lost; without that header a retry of the
            // producer's last batch would be taken for a new one. No producer expires here
            // (Kafka's `producer.id.expiration.ms`), so every known producer counts as active.
            let last_of_producer =
                h.producer_id >= 0 && producers_last.get(&h.producer_id) == Some(&h.last_offset());
            let (b, r) = if h.is_control() {
                let txn_empty = !txn_kept.remove(&h.producer_id).unwrap_or(false);
                (rewrite_marker(&batch, txn_empty, now, horizon)?, 0)
            } else {
                let discard = aborted(&aborted_txns, &h);
                let out = rewrite(&batch, &latest, now, horizon, last_of_producer, discard)?;
                if h.is_transactional() {
                    *txn_kept.entry(h.producer_id).or_default() |= out.0.is_some();
                }
                out
            };
            removed += r;
            last = Some(h);
            if let Some(b) = b {
                if b.header.has_delete_horizon() {
                    let h = b.header.base_timestamp;
                    next_horizon = Some(next_horizon.map_or(h, |n: i64| n.min(h)));
                }
                kept.push(b);
            }
        }
        let kept_bytes: u64 = kept.iter().map(|b| b.bytes.len() as u64).sum();
        // Room for the group's output, a placeholder batch, index entries (as Kafka's grouping
        // also bounds the indexes by `segment_index_bytes`) and relative offsets.
        let fits = group.segments.first().is_none_or(|f| {
            let bytes = group.bytes + kept_bytes + BATCH_HEADER_LEN as u64;
            let entries = bytes / u64::from(cfg.index_interval_bytes.max(1)) + 2;
            bytes <= u64::from(cfg.segment_bytes)
                && entries * TIME_ENTRY as u64 <= u64::from(cfg.segment_index_bytes)
                && seg.end_offset() - f.base_offset < i64::from(i32::MAX)
        });
        if !fits && !clean_group(p, std::mem::take(&mut group), crash, &mut out)? {
            return Ok(out);
        }
        group.segments.push(Arc::clone(seg));
        group.batches.extend(kept);
        group.bytes += kept_bytes;
        group.removed += removed;
        if last.is_some() {
            group.last = last;
        }
    }
    if !clean_group(p, group, crash, &mut out)? {
        return Ok(out);
    }
    p.set_clean_end(end);
    p.note_horizon(next_horizon);
    Ok(out)
}

/// Adjacent segments being merged into one cleaned segment, with their output so far.
#[derive(Default)]
struct Group {
    segments: Vec<Arc<Segment>>,
    batches: Vec<OutBatch>,
    /// Bytes of `batches`.
    bytes: u64,
    removed: u64,
    /// The last batch read from the segments, kept or not: the group ends at its last offset.
    last: Option<BatchHeader>,
}

/// Writes `group`'s cleaned segment and swaps it in for the group's segments. Returns false
/// when `crash` stopped it.
fn clean_group(
    p: &Arc<Partition>,
    group: Group,
    crash: Option<CrashPoint>,
    out: &mut Compacted,
) -> Result<bool> {
    let Some(first) = group.segments.first() else {
        return Ok(true);
    };
    let mut batches = group.batches;
    // The one place this keeps more than Kafka: when the group's last batch lost all its
    // records, an empty batch in its place (without its producer: it is not that producer's
    // last batch) so that the cleaned segment still ends where the next one starts. Kafka
    // leaves a gap there, but the open here still takes a gap between segments for batches
    // lost to a power cut and cuts the log at it; and the swap's recovery deletes the
    // segments up to the end of the `.swap` log, which must cover the whole group.
    if let Some(last) = group.last
        && batches.last().map(|b| b.header.last_offset()) != Some(last.last_offset())
    {
        let bytes = placeholder_batch(&last).to_vec();
        let header = BatchHeader::parse(&bytes)?;
        batches.push(OutBatch { bytes, header });
    }
    // The aborted transactions whose markers lie in the group: Kafka keeps them in the cleaned
    // segment's `.txnindex` (even once compaction removed a marker), and the open trusts the
    // indexes of segments below its recovery point, so they are not found again from the
    // batches.
    let group_end = group
        .segments
        .last()
        .map_or(first.base_offset, |s| s.end_offset());
    let txns: Vec<AbortedTxn> = p
        .aborted_between(first.base_offset, group_end)
        .into_iter()
        .filter(|t| t.last_offset >= first.base_offset && t.last_offset < group_end)
        .collect();
    let cfg = p.config();
    let new = write_cleaned(
        p,
        first.base_offset,
        &batches,
        &txns,
        cfg.index_interval_bytes,
    )?;
    if let Some(last) = group.segments.last() {
        let cleaned = p.dir.join(layout::transient_name(
            first.base_offset,
            FileKind::Log,
            Transient::Cleaned,
        ));
        keep_modified(&last.log_path, &cleaned)?;
    }
    if crash == Some(CrashPoint::AfterCleaned) {
        return Ok(false);
    }
    swap_in(p, &group.segments, new, crash)?;
    if crash.is_some() {
        return Ok(false);
    }
    out.segments_in += group.segments.len();
    out.segments_out += 1;
    out.bytes_in += group.segments.iter().map(|s| s.size()).sum::<u64>();
    out.bytes_out += batches.iter().map(|b| b.bytes.len() as u64).sum::<u64>();
    out.records_removed += group.removed;
    Ok(true)
}

fn batches(p: &Partition, seg: &Arc<Segment>) -> Result<Vec<Batch>> {
    let maps = seg.maps(&p.shared.maps)?;
    let size = seg.size();
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < size {
        let h = seg.header_at(&maps, pos, size)?;
        out.push(seg.batch_at(&maps, pos, h)?);
        pos += h.size() as u64;
    }
    Ok(out)
}

/// An end-transaction marker's fate (Kafka's cleaner piggy-backs it on the tombstones' delete
/// horizon): kept as it is while a batch of its transaction remains (`txn_empty` false), since
/// a replay of the batch headers would otherwise take that batch's transaction as never ended;
/// the first pass that finds the transaction empty stamps it with the horizon; a pass past that
/// horizon removes it. (A marker is never its producer's last batch in the sense that keeps a
/// batch: the producer state remembers data batches only, as Kafka's does.) Other control
/// batches stay.
///
/// Kafka stamps one pass later: its cleaner keeps a marker on the pass that removes the last
/// batches of its transaction. Stamping on that pass is as safe, because the batches' removal
/// reaches the disk no later than the stamp (their segments are swapped in first, or with it),
/// and the marker still waits a whole `delete.retention.ms` after it.
fn rewrite_marker(
    batch: &Batch,
    txn_empty: bool,
    now: i64,
    horizon: i64,
) -> Result<Option<OutBatch>> {
    let h = *batch.header();
    let original = || OutBatch {
        bytes: batch.as_bytes().to_vec(),
        header: h,
    };
    if !txn_empty || marker_kind(batch).is_none() {
        return Ok(Some(original()));
    }
    if h.has_delete_horizon() {
        return Ok((now < h.base_timestamp).then(original));
    }
    let records = batch.owned_records()?.collect::<Result<Vec<_>>>()?;
    rebuild(&h, &records, Some(horizon)).map(Some)
}

/// Keeps a batch's latest-per-key records (and live tombstones); none when `discard` (a batch
/// of an aborted transaction). Returns the output batch (the original bytes when nothing
/// changes; its header alone when no record is left and `keep_empty` is set; none when no
/// record is left otherwise) and how many records were removed.
fn rewrite(
    batch: &Batch,
    latest: &HashMap<Bytes, i64>,
    now: i64,
    horizon: i64,
    keep_empty: bool,
    discard: bool,
) -> Result<(Option<OutBatch>, u64)> {
    let h = *batch.header();
    let existing_horizon = h.has_delete_horizon().then_some(h.base_timestamp);
    let mut kept = Vec::new();
    let mut removed = 0u64;
    let mut tombstones = false;
    for r in batch.owned_records()? {
        let r = r?;
        let is_latest = r
            .key
            .as_ref()
            .is_some_and(|k| latest.get(k) == Some(&r.offset));
        let expired_tombstone = r.value.is_none() && existing_horizon.is_some_and(|hz| now >= hz);
        if is_latest && !expired_tombstone && !discard {
            tombstones |= r.value.is_none();
            kept.push(r);
        } else {
            removed += 1;
        }
    }
    let needs_horizon = tombstones && existing_horizon.is_none();
    if kept.is_empty() {
        if !keep_empty {
            return Ok((None, removed));
        }
        if h.record_count == 0 {
            return Ok((
                Some(OutBatch {
                    bytes: batch.as_bytes().to_vec(),
                    header: h,
                }),
                0,
            ));
        }
        let bytes = empty_batch(&h).to_vec();
        let header = BatchHeader::parse(&bytes)?;
        return Ok((Some(OutBatch { bytes, header }), removed));
    }
    if removed == 0 && !needs_horizon {
        return Ok((
            Some(OutBatch {
                bytes: batch.as_bytes().to_vec(),
                header: h,
            }),
            0,
        ));
    }
    let horizon = if tombstones {
        existing_horizon.or(Some(horizon))
    } else {
        None
    };
    Ok((Some(rebuild(&h, &kept, horizon)?), removed))
}

/// A batch like `h` (producer, transactional and control bits, offsets, timestamp type) holding
/// only `kept`, at their original offsets, with delete horizon `horizon`.
fn rebuild(
    h: &BatchHeader,
    kept: &[crate::record::StoredRecord],
    horizon: Option<i64>,
) -> Result<OutBatch> {
    let mut b = BatchBuilder::new(h.compression()?);
    b.set_delete_horizon(horizon);
    b.set_transactional(h.is_transactional());
    b.set_control(h.is_control());
    for r in kept {
        let delta = i32::try_from(r.offset - h.base_offset)
            .map_err(|_| Error::invalid_batch("record offset outside its batch"))?;
        b.push_at(
            delta,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
            r.timestamp,
        )?;
    }
    b.set_producer(h.producer_id, h.producer_epoch, h.base_sequence);
    b.set_last_offset_delta(h.last_offset_delta);
    let data = b.finish()?;
    stamp_base_offset(data, h.base_offset);
    if h.timestamp_type() == TimestampType::LogAppendTime {
        stamp_log_append_time(data, h.max_timestamp);
    }
    let header = BatchHeader::parse(data)?;
    Ok(OutBatch {
        bytes: data.to_vec(),
        header,
    })
}

/// Gives the cleaned log `to` the modification time of `from`, the last segment it replaces,
/// as Kafka's cleaner does: retention ages a segment without record timestamps by that time,
/// and a rewrite must not make old records look new. (The time is not fsynced: lost to a power
/// cut, the segment looks younger and is kept longer, never deleted early.)
fn keep_modified(from: &Path, to: &Path) -> Result<()> {
    let modified = fs::metadata(from).and_then(|m| m.modified()).at(from)?;
    ops::open_write(to)
        .and_then(|f| f.set_modified(modified))
        .at(to)
}

/// Writes `<base>.log.cleaned` and its indexes (a `.txnindex` holding `txns`, when there are
/// any), fsynced; returns the new segment's state.
fn write_cleaned(
    p: &Partition,
    base: i64,
    batches: &[OutBatch],
    txns: &[AbortedTxn],
    interval: u32,
) -> Result<SegmentState> {
    let mut log = Vec::with_capacity(batches.iter().map(|b| b.bytes.len()).sum());
    // Accounted as the live writer accounts appends, and sealed as its roll seals a segment:
    // the rewrite's indexes are the ones the writer would have made for these batches.
    let mut acct = Accountant::new(base, interval);
    let mut entries = IndexBytes::default();
    for b in batches {
        let h = &b.header;
        entries.push(&acct.account(b.bytes.len() as u64, h.last_offset(), h.max_timestamp));
        log.extend_from_slice(&b.bytes);
    }
    entries.push_time(acct.seal());
    let (index, time) = (entries.index, entries.time);
    let txn: Vec<u8> = txns.iter().flat_map(AbortedTxn::encode).collect();
    let dir = &p.dir;
    for (kind, bytes) in [
        (FileKind::Log, &log),
        (FileKind::Index, &index),
        (FileKind::TimeIndex, &time),
        (FileKind::TxnIndex, &txn),
    ] {
        if kind == FileKind::TxnIndex && bytes.is_empty() {
            continue;
        }
        let path = dir.join(layout::transient_name(base, kind, Transient::Cleaned));
        write_synced(&path, bytes)?;
    }
    Ok(*acct.state())
}

/// Renames the cleaned files to `.swap`, then under the writer lock replaces `group` by them.
fn swap_in(
    p: &Arc<Partition>,
    group: &[Arc<Segment>],
    st: SegmentState,
    crash: Option<CrashPoint>,
) -> Result<()> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let base = first.base_offset;
    let dir = p.dir.clone();
    // Index files first, the log last: the `.log.swap` is what recovery acts on.
    swap::cleaned_to_swap(&dir, base)?;
    sync_dir(&dir)?;
    if crash == Some(CrashPoint::AfterSwap) {
        return Ok(());
    }
    let replaced = p.replace_segments(group, |w_dir| {
        for (i, old) in group.iter().enumerate() {
            old.delete_files()?;
            if i == 0 && crash == Some(CrashPoint::AfterFirstDelete) {
                return Ok(None);
            }
        }
        swap::swap_into_place(
            &dir,
            base,
            &[FileKind::Index, FileKind::TimeIndex, FileKind::TxnIndex],
        )?;
        if crash == Some(CrashPoint::AfterIndexRename) {
            return Ok(None);
        }
        swap::swap_into_place(&dir, base, &[FileKind::Log])?;
        sync_dir(w_dir)?;
        Ok(Some(st))
    })?;
    if !replaced {
        // The segments changed meanwhile: drop this round's output.
        swap::remove_swap(&dir, base)?;
        sync_dir(&dir)?;
    }
    Ok(())
}
