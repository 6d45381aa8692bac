//! The read side of a partition: lock-free reads of whole batches as `Bytes` views of the
//! mapped segments, and timestamp lookups.

use std::sync::atomic::Ordering;

use super::Partition;
use crate::error::{Error, Result};
use crate::record::Batch;

/// What a read returns: whole batches starting with the one that holds the requested offset
/// (its first records may precede that offset), plus the partition's bounds at read time.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReadResult {
    /// Whole batches in offset order; empty when the offset is the high watermark.
    pub batches: Vec<Batch>,
    /// The first offset readable at the time of the read.
    pub log_start_offset: i64,
    /// The offset below which records are readable (the end visible to readers).
    pub high_watermark: i64,
    /// The last stable offset at read time: the first offset of the oldest open
    /// transaction, or the high watermark. A `read_committed` read stops here.
    pub last_stable_offset: i64,
    /// For a `read_committed` read, the aborted transactions with records in the batches
    /// returned (as Kafka's fetch response lists them): [`ReadResult::records_from`] skips
    /// their producers' batches in their ranges. Empty for `read_uncommitted`.
    pub aborted_transactions: Vec<crate::AbortedTxn>,
    /// The same bytes as `batches`, as runs of adjacent batches (one per segment).
    spans: Vec<bytes::Bytes>,
    /// Where each of `batches` sits.
    locations: Vec<crate::BatchLocation>,
}

impl ReadResult {
    /// Where each of [`ReadResult::batches`] sits in the partition's files, in the same order:
    /// what [`PartitionHandle::read_at`](crate::PartitionHandle::read_at) takes. Empty after a
    /// read that returns no batch views.
    pub fn locations(&self) -> &[crate::BatchLocation] {
        &self.locations
    }

    /// Total bytes of the batches.
    pub fn size(&self) -> usize {
        self.batches.iter().map(Batch::len).sum()
    }

    /// The records at or after `offset` in these batches, decoded, with every CRC checked
    /// (the first batch may start before `offset`). Control records (transaction markers)
    /// are never returned, and after a `read_committed` read neither are the records of
    /// aborted transactions.
    ///
    /// # Errors
    /// [`Error::ChecksumMismatch`] for a batch that fails its CRC; [`Error::InvalidBatch`]
    /// for one that does not decode.
    pub fn records_from(&self, offset: i64) -> Result<Vec<crate::StoredRecord>> {
        let mut out = Vec::new();
        for b in &self.batches {
            let h = b.header();
            if h.is_control() || aborted(&self.aborted_transactions, h) {
                continue;
            }
            b.verify_crc()?;
            for r in b.owned_records()? {
                let r = r?;
                if r.offset >= offset {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// The returned batches as runs of contiguous bytes, one per segment read, each a view
    /// of the mapped file: what a network adapter sends to a Kafka client, with no copy and
    /// no per-batch bookkeeping.
    pub fn contiguous(&self) -> &[bytes::Bytes] {
        &self.spans
    }

    /// Offset to read next: one past the last batch returned (or the requested offset's
    /// successor position when nothing was returned).
    pub fn next_offset(&self) -> Option<i64> {
        self.batches.last().map(|b| b.last_offset() + 1)
    }
}

/// Whether the batch with header `h` belongs to one of the `aborted` transactions.
#[inline]
pub(crate) fn aborted(aborted: &[crate::AbortedTxn], h: &crate::BatchHeader) -> bool {
    !aborted.is_empty()
        && h.is_transactional()
        && aborted.iter().any(|t| {
            t.producer_id == h.producer_id
                && t.first_offset <= h.base_offset
                && h.base_offset <= t.last_offset
        })
}

/// How much a read returns, and in which form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadShape {
    /// About this many bytes of batches (at least one batch when any is readable).
    pub(crate) max_bytes: usize,
    /// Also hand out each batch as a [`Batch`] (one reference count each); without it only the
    /// contiguous spans are returned, which is all a consumer or a network fetch needs.
    pub(crate) batches: bool,
    /// Cut the read at whole batches, walking every header. Without it the read is one span
    /// of one segment from the batch holding the offset, about `max_bytes` long (never less
    /// than that first batch), which may end inside a batch and run past the high watermark:
    /// for a reader that walks the batches itself (the consumer), which then reads each
    /// header once instead of twice.
    pub(crate) whole_batches: bool,
    /// Stop at the last stable offset and list the aborted transactions (`read_committed`).
    pub(crate) committed: bool,
}

impl ReadShape {
    /// Whole batches up to about `max_bytes`, each as a [`Batch`].
    pub(crate) fn batches(max_bytes: usize) -> ReadShape {
        ReadShape {
            max_bytes,
            batches: true,
            whole_batches: true,
            committed: false,
        }
    }
}

impl Partition {
    /// Reads whole batches from the one holding `offset`, up to about `max_bytes` (at least one
    /// batch is returned when any is readable, even if larger), stopping at the high watermark.
    /// A read-only view that finds nothing there, or fails, looks at the directory again
    /// first (see `view.rs`).
    pub(crate) fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        self.read_shaped(offset, ReadShape::batches(max_bytes))
    }

    /// [`Partition::read`], with a record limit and without the per-batch views when `shape`
    /// says so.
    pub(crate) fn read_shaped(&self, offset: i64, shape: ReadShape) -> Result<ReadResult> {
        if self.shared.read_only {
            return self.read_refreshing(offset, shape);
        }
        self.read_view(offset, shape)
    }

    /// [`Partition::read_shaped`] over the segments as they are now, without refreshing.
    pub(super) fn read_view(&self, offset: i64, shape: ReadShape) -> Result<ReadResult> {
        let max_bytes = shape.max_bytes;
        // The stable offset first: it never passes the high watermark read after it.
        let lso = self.last_stable_offset();
        let hw = self.high_watermark();
        let segs = self.segments();
        let start = self.log_start();
        if offset < start || offset > hw {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                start,
                end: hw,
            });
        }
        let mut out = ReadResult {
            batches: Vec::new(),
            log_start_offset: start,
            high_watermark: hw,
            last_stable_offset: lso,
            aborted_transactions: Vec::new(),
            spans: Vec::new(),
            locations: Vec::new(),
        };
        // Where this read stops: a `read_committed` one at the stable offset.
        let hw = if shape.committed { lso } else { hw };
        if offset >= hw {
            return Ok(out);
        }
        let first = segs
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let mut total = 0usize;
        let mut batches = 0u64;
        let mut prev_end = i64::MIN;
        for seg in segs.iter().skip(first) {
            if seg.base_offset >= hw {
                break;
            }
            let size = seg.size();
            if size == 0 {
                continue;
            }
            let maps = seg.maps(&self.shared.maps)?;
            let mut pos = seg.position_for(&maps, offset);
            // File positions of the batches returned from this segment (they are adjacent).
            let mut run: Option<(u64, u64)> = None;
            let mut stop = false;
            while pos < size {
                let h = seg.header_at(&maps, pos, size)?;
                if h.base_offset >= hw {
                    stop = true;
                    break;
                }
                if h.base_offset < prev_end {
                    return Err(Error::Corrupt {
                        path: seg.log_path.clone(),
                        position: pos,
                        reason: format!(
                            "batch at offset {} does not follow offset {}",
                            h.base_offset,
                            prev_end - 1
                        ),
                    });
                }
                prev_end = h.last_offset() + 1;
                let len = h.size();
                if !shape.whole_batches && h.last_offset() >= offset {
                    let end = size.min(pos + len.max(max_bytes) as u64);
                    run = Some((pos, end));
                    batches += 1;
                    total += (end - pos) as usize;
                    stop = true;
                    break;
                }
                if h.last_offset() >= offset {
                    if batches > 0 && total + len > max_bytes {
                        stop = true;
                        break;
                    }
                    if shape.batches {
                        out.batches.push(seg.batch_at(&maps, pos, h)?);
                        out.locations.push(crate::BatchLocation {
                            segment: seg.base_offset,
                            position: pos as u32,
                        });
                    }
                    batches += 1;
                    run = Some((run.map_or(pos, |(start, _)| start), pos + len as u64));
                    total += len;
                    if total >= max_bytes {
                        stop = true;
                        break;
                    }
                }
                pos += len as u64;
            }
            if let Some((start, end)) = run {
                let span = maps
                    .log_view(start as usize, (end - start) as usize)
                    .ok_or_else(|| Error::Corrupt {
                        path: seg.log_path.clone(),
                        position: start,
                        reason: "batches outside the mapping".into(),
                    })?;
                out.spans.push(span);
            }
            if stop {
                break;
            }
        }
        if shape.committed {
            out.aborted_transactions = self.aborted_between(offset, hw);
        }
        self.counters
            .batches_read
            .fetch_add(batches, Ordering::Relaxed);
        self.counters
            .bytes_read
            .fetch_add(total as u64, Ordering::Relaxed);
        Ok(out)
    }

    /// For each `(location, offset)`, the readable batch there when it holds `offset`; `None`
    /// when nothing readable is there (the segment is gone, the position is past the
    /// segment's end or the high watermark, or the batch there holds other offsets). One look
    /// at the segment list and one map lookup per segment for the whole slice.
    pub(crate) fn read_batches_at(
        &self,
        wanted: &[(crate::BatchLocation, i64)],
        out: &mut Vec<Option<Batch>>,
    ) -> Result<()> {
        let from = out.len();
        if self.shared.read_only {
            let seen = self.view_generation();
            self.read_batches_at_view(wanted, out)?;
            if out
                .get(from..)
                .is_some_and(|got| got.iter().any(Option::is_none))
            {
                out.truncate(from);
                self.refresh(seen)?;
                self.read_batches_at_view(wanted, out)?;
            }
            return Ok(());
        }
        self.read_batches_at_view(wanted, out)
    }

    fn read_batches_at_view(
        &self,
        wanted: &[(crate::BatchLocation, i64)],
        out: &mut Vec<Option<Batch>>,
    ) -> Result<()> {
        let hw = self.high_watermark();
        let start = self.log_start();
        let segs = self.segments();
        // Each segment the locations name, with its maps, looked up once; `slot[i]` is the
        // index in `found` of `wanted[i]`'s segment.
        let mut found: Vec<(i64, Option<(&std::sync::Arc<crate::segment::Segment>, _)>)> =
            Vec::new();
        let mut slot = Vec::with_capacity(wanted.len());
        for &(at, _) in wanted {
            let i = if let Some(i) = found.iter().rposition(|f| f.0 == at.segment) {
                i
            } else {
                let seg = segs
                    .binary_search_by_key(&at.segment, |s| s.base_offset)
                    .ok()
                    .and_then(|i| segs.get(i));
                let entry = match seg {
                    Some(seg) => Some((seg, seg.maps(&self.shared.maps)?)),
                    None => None,
                };
                found.push((at.segment, entry));
                found.len() - 1
            };
            slot.push(i);
        }
        // First touch every batch's first bytes and ask for the rest of its lines, independently
        // of each other, so the cache and TLB misses of scattered batches overlap instead of
        // following one another.
        let mut touched = 0u8;
        for (&(at, _), &i) in wanted.iter().zip(&slot) {
            if let Some((_, Some((seg, maps)))) = found.get(i)
                && u64::from(at.position) < seg.size()
            {
                let len = (seg.size() - u64::from(at.position)).min(TOUCH_BYTES) as usize;
                if let Some(b) = maps.log.slice(at.position as usize, len) {
                    touched ^= b.first().copied().unwrap_or(0);
                    crate::io::map::prefetch(b.get(64..).unwrap_or_default());
                }
            }
        }
        std::hint::black_box(touched);
        for (&(at, offset), &i) in wanted.iter().zip(&slot) {
            if offset >= hw || offset < start {
                out.push(None);
                continue;
            }
            let Some((_, Some((seg, maps)))) = found.get(i) else {
                out.push(None);
                continue;
            };
            let size = seg.size();
            let pos = u64::from(at.position);
            let batch = match seg.header_at(maps, pos, size) {
                Ok(h)
                    if pos < size
                        && h.base_offset <= offset
                        && h.last_offset() >= offset
                        && h.last_offset() < hw =>
                {
                    Some(seg.batch_at(maps, pos, h)?)
                }
                _ => None,
            };
            out.push(batch);
        }
        Ok(())
    }

    /// The first offset whose record timestamp is >= `timestamp`, with that timestamp; `None`
    /// when no readable record is that recent. Exact even for out-of-order CreateTime: the time
    /// index only picks where to start, then records are compared one by one.
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        if !self.shared.read_only {
            return self.offset_for_timestamp_view(timestamp);
        }
        let seen = self.view_generation();
        match self.offset_for_timestamp_view(timestamp) {
            Ok(Some(found)) => return Ok(Some(found)),
            Err(e) if !Self::view_may_be_stale(&e) => return Err(e),
            Ok(None) | Err(_) => {}
        }
        self.refresh(seen)?;
        self.offset_for_timestamp_view(timestamp)
    }

    /// Kafka's offset lookup before 0.10.1 (ListOffsets v0, `UnifiedLog.legacyFetchOffsetsBefore`
    /// capped at the high watermark as for a consumer): see `PartitionHandle::offsets_before`.
    pub(crate) fn offsets_before(&self, timestamp: i64, max_offsets: usize) -> Result<Vec<i64>> {
        let start = self.log_start();
        let segs = self.segments();
        // (offset, time) points: each segment's first readable offset with its last
        // modification, then the log end stamped now when the last segment holds data.
        let mut points = Vec::with_capacity(segs.len() + 1);
        for seg in segs.iter() {
            points.push((seg.base_offset.max(start), seg.last_modified_ms()?));
        }
        if segs.last().is_some_and(|s| s.size() > 0) {
            points.push((self.log_end(), crate::clock::now_ms()));
        }
        let upto = match timestamp {
            -1 => points.len(),
            -2 => points.len().min(1),
            t => points
                .iter()
                .rposition(|&(_, time)| time <= t)
                .map_or(0, |i| i + 1),
        };
        let mut offsets: Vec<i64> = points
            .iter()
            .take(upto)
            .rev()
            .take(max_offsets)
            .map(|&(offset, _)| offset)
            .collect();
        let hw = self.high_watermark();
        if offsets.iter().any(|&o| o > hw) {
            offsets.retain(|&o| o <= hw);
            offsets.insert(0, hw);
        }
        Ok(offsets)
    }

    /// The readable record with the largest timestamp, the first of them when several share
    /// it, as `(offset, timestamp)`; `None` when nothing is readable (Kafka's ListOffsets
    /// `MAX_TIMESTAMP`). Each segment keeps its largest timestamp, so the answer is a lookup
    /// of that timestamp, as Kafka's; only when it belongs to no readable record (below a
    /// log start moved inside its segment, or past the high watermark) are the readable
    /// records scanned.
    pub(crate) fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>> {
        if !self.shared.read_only {
            return self.max_timestamp_offset_view();
        }
        let seen = self.view_generation();
        match self.max_timestamp_offset_view() {
            Ok(Some(found)) => return Ok(Some(found)),
            Err(e) if !Self::view_may_be_stale(&e) => return Err(e),
            Ok(None) | Err(_) => {}
        }
        self.refresh(seen)?;
        self.max_timestamp_offset_view()
    }

    fn max_timestamp_offset_view(&self) -> Result<Option<(i64, i64)>> {
        let hw = self.high_watermark();
        let start = self.log_start();
        let newest = self
            .segments()
            .iter()
            .filter(|s| s.base_offset < hw && s.end_offset() > start)
            .map(|s| s.max_timestamp())
            .max();
        let Some(newest) = newest else {
            return Ok(None);
        };
        if let Some(found) = self.offset_for_timestamp_view(newest)? {
            return Ok(Some(found));
        }
        let mut best: Option<(i64, i64)> = None;
        let mut offset = start;
        while offset < hw {
            let res = self.read(offset, 1 << 20)?;
            let Some(next) = res.next_offset() else { break };
            for b in &res.batches {
                for r in b.owned_records()? {
                    let r = r?;
                    if r.offset >= start
                        && r.offset < hw
                        && best.is_none_or(|(_, ts)| r.timestamp > ts)
                    {
                        best = Some((r.offset, r.timestamp));
                    }
                }
            }
            offset = next;
        }
        Ok(best)
    }

    fn offset_for_timestamp_view(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        let hw = self.high_watermark();
        let start = self.log_start();
        let segs = self.segments();
        for seg in segs.iter() {
            if seg.base_offset >= hw {
                break;
            }
            if seg.max_timestamp() < timestamp || seg.end_offset() <= start {
                continue;
            }
            let size = seg.size();
            let maps = seg.maps(&self.shared.maps)?;
            let mut pos = seg.position_for_time(&maps, timestamp);
            while pos < size {
                let h = seg.header_at(&maps, pos, size)?;
                if h.base_offset >= hw {
                    return Ok(None);
                }
                let len = h.size();
                if h.max_timestamp >= timestamp && h.last_offset() >= start {
                    let batch = seg.batch_at(&maps, pos, h)?;
                    for r in batch.owned_records()? {
                        let r = r?;
                        if r.timestamp >= timestamp && r.offset >= start && r.offset < hw {
                            return Ok(Some((r.offset, r.timestamp)));
                        }
                    }
                }
                pos += len as u64;
            }
        }
        Ok(None)
    }
}

/// Bytes of each batch a located read asks the CPU to fetch ahead.
const TOUCH_BYTES: u64 = 512;
