//! Loading a partition directory: trusting indexes after a clean shutdown, scanning and
//! truncating the torn tail after a crash, rebuilding missing or damaged indexes.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use crate::config::TopicConfig;
use crate::error::{IoContext, Result};
use crate::io::{sync_dir, write_file};
use crate::layout::{self, FileKind, SegmentFile, Transient};
use crate::segment::index::{self, INDEX_ENTRY, IndexTracker, TIME_ENTRY};
use crate::segment::writer::Accountant;
use crate::segment::{self, Segment, SegmentState};

use super::damage::{Damage, cut_log, move_aside, preserve};
use super::open_segment::{
    OpenAt, Opened, SegPaths, open_mapped, read_small, s_start, try_trusted_unmapped,
};

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
    /// Bytes of zeros cut after the data of a preallocated `.log` (topic `preallocate=true`)
    /// after an unclean shutdown: the allocated range no append had reached. Not data, not
    /// damage; counted apart from `truncated_bytes`.
    pub preallocated_bytes_trimmed: u64,
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
    /// `.txnindex` files written again from the batches: the replay after an unclean
    /// shutdown found them missing, torn or behind the markers in the log.
    pub txn_indexes_rebuilt: usize,
    /// Transactions open in this partition when it loaded (their producers' markers were not
    /// written yet); the transaction coordinator completes them before the open returns.
    pub open_transactions: usize,
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
                kind: FileKind::Index | FileKind::TimeIndex | FileKind::TxnIndex,
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
        let (opened, last, file_len, zero_tail) = match unmapped {
            Some((s, file_len)) => (Opened::Trusted(s), false, file_len, false),
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
        if s.valid_len < file_len && zero_tail && s.state.end_offset >= p.durable {
            // A preallocated segment's never-written range, found after a crash above the
            // recovery point: the end of the data, in the last segment, or in a sealed one
            // whose trim at roll did not reach the disk (the next segment's records follow
            // and are kept). Below the recovery point, or after a clean close (which trims),
            // zeros are damage at rest, as the next branch says.
            report.preallocated_bytes_trimmed += file_len - s.valid_len;
            if !p.read_only {
                cut_log(&paths.log, s.valid_len)?;
            }
        } else if s.valid_len < file_len && s.state.end_offset < p.durable {
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
        || report.preallocated_bytes_trimmed > 0
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
