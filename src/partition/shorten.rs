//! Shortening a partition's log: deleting its oldest segments (retention, delete-records)
//! and truncating it to an offset.

use std::sync::Arc;

use super::recovery;
use super::{Partition, Writer};
use crate::error::{Error, IoContext, Result};
use crate::io::{ops, sync_dir};
use crate::layout::{self, Transient};

impl Partition {
    /// Removes the oldest `count` segments (never the active one) and advances the log start
    /// offset to the first survivor. Returns (segments, bytes) removed.
    pub(crate) fn delete_oldest(self: &Arc<Self>, count: usize) -> Result<(usize, u64)> {
        let w = self.writer.lock();
        let segs = self.segments();
        let count = count.min(segs.len().saturating_sub(1));
        if count == 0 {
            return Ok((0, 0));
        }
        let (gone, keep) = segs.split_at(count);
        let new_start = keep.first().map_or(w.next_offset(), |s| s.base_offset);
        self.log_start
            .fetch_max(new_start, std::sync::atomic::Ordering::AcqRel);
        self.set_segments(keep.to_vec());
        self.forget_aborted_below(keep.first().map_or(new_start, |s| s.base_offset));
        drop(w);
        let mut bytes = 0;
        for s in gone {
            bytes += s.size();
            s.delete_files()?;
            s.unmap();
        }
        sync_dir(&self.dir)?;
        Ok((gone.len(), bytes))
    }

    /// Cuts the log so that it ends before `offset`; the batch holding `offset` goes too
    /// (batches are atomic), as in Kafka. Returns the new end offset.
    pub(crate) fn truncate_to(self: &Arc<Self>, offset: i64) -> Result<i64> {
        self.check_writable()?;
        let mut w = self.writer.lock();
        let start = self.log_start();
        let end = w.next_offset();
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                start,
                end,
            });
        }
        if offset == end {
            return Ok(end);
        }
        let segs = self.segments();
        let k = segs
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let Some(seg) = segs.get(k).cloned() else {
            return Ok(end);
        };
        // Find the first batch that reaches `offset`.
        let maps = seg.maps(&self.shared.maps)?;
        let size = seg.size();
        let mut pos = seg.position_for(&maps, offset);
        let mut new_end = seg.end_offset();
        while pos < size {
            let h = seg.header_at(&maps, pos, size)?;
            if h.last_offset() >= offset {
                new_end = h.base_offset;
                break;
            }
            pos += h.size() as u64;
        }
        let cut = pos.min(size);
        // Copy the prefix to a new file and rename it over the old one: readers holding the
        // old mapping keep valid pages (never shrink a mapped file in place).
        let tmp = layout::with_transient(&seg.log_path, Transient::Truncating);
        crate::io::write_synced(&tmp, maps.log.slice(0, cut as usize).unwrap_or(&[]))?;
        drop(maps);
        w.drop_files();
        self.shared.fds.closed();
        ops::rename(&tmp, &seg.log_path).at(&seg.log_path)?;
        for later in segs.iter().skip(k + 1) {
            later.delete_files()?;
        }
        // Rebuild the kept segment's indexes from its (valid) prefix.
        let cfg = self.config();
        let loaded = recovery::load(&recovery::LoadParams {
            dir: &self.dir,
            topic: &self.topic,
            partition: self.id,
            config: &cfg,
            clean: false,
            recovery_point: Some(seg.base_offset),
            // The segments before the cut are the live log's (gaps between them included),
            // and an explicit truncation hands the cut offsets out again, as in Kafka.
            durable: i64::MAX,
            end_floor: 0,
            log_start: Some(start.min(new_end)),
            read_only: false,
            generation: self.next_generation(),
        })?;
        sync_dir(&self.dir)?;
        let active = loaded
            .segments
            .last()
            .cloned()
            .ok_or_else(|| Error::Corrupt {
                path: self.dir.clone(),
                position: 0,
                reason: "no segment after truncation".into(),
            })?;
        let new_end = active.end_offset();
        let mut report = super::PartitionRecovery::default();
        let txns = super::txn::load(
            &self.shared,
            &self.dir,
            &loaded.segments,
            new_end,
            Some(seg.base_offset),
            &mut report,
        )?;
        *w = Writer::new(active, loaded.tracker, &cfg);
        let first_unstable = txns.producers.first_unstable();
        w.producers = txns.producers;
        self.set_txn_state(txns.aborted, first_unstable);
        self.set_segments(loaded.segments);
        if new_end < start {
            self.log_start
                .store(new_end, std::sync::atomic::Ordering::Release);
        }
        self.log_end
            .store(new_end, std::sync::atomic::Ordering::Release);
        self.high_watermark
            .fetch_min(new_end, std::sync::atomic::Ordering::AcqRel);
        {
            let mut st = self.sync_state();
            st.synced = st.synced.min(new_end);
        }
        Ok(new_end)
    }
}
