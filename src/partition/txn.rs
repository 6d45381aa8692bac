//! Transactions in one partition: the last stable offset (LSO) readers at `read_committed`
//! stop at, the aborted transactions they skip (kept in memory, stored in each segment's
//! `.txnindex`), the end-transaction markers the coordinator appends, and rebuilding all of
//! it at open.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::producer_state::{ProducerState, rebuild_producers};
use super::{AppendResult, Partition, PartitionRecovery, Shared};
use crate::clock::now_ms;
use crate::error::Result;
use crate::record::EndTxnMarker;
use crate::segment::Segment;
use crate::segment::txn_index::{self, AbortedTxn, Loaded};

/// A partition's aborted transactions in marker order, and the widest of them (offsets from
/// first to marker): a lookup for a range stops once markers lie that far past its end.
#[derive(Debug, Default, Clone)]
pub(crate) struct AbortedList {
    pub(crate) list: Vec<AbortedTxn>,
    pub(crate) max_span: i64,
}

impl AbortedList {
    pub(crate) fn new(list: Vec<AbortedTxn>) -> AbortedList {
        let max_span = list
            .iter()
            .map(|t| t.last_offset - t.first_offset)
            .max()
            .unwrap_or(0);
        AbortedList { list, max_span }
    }

    /// The aborted transactions with records in `from..to`.
    pub(crate) fn between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.list.partition_point(|t| t.last_offset < from);
        self.list
            .iter()
            .skip(start)
            .take_while(|t| t.last_offset.saturating_sub(self.max_span) < to)
            .filter(|t| t.first_offset < to)
            .copied()
            .collect()
    }
}

/// What the open rebuilt of a partition's transactions.
pub(crate) struct TxnLoaded {
    pub(crate) producers: ProducerState,
    pub(crate) aborted: AbortedList,
}

/// Rebuilds the producer state and the aborted transactions below `end`. `replay_below` is
/// `None` after a clean close with no damage: every `.txnindex` and snapshot was synced and is
/// trusted. Otherwise (the recovery point after a crash, the start of damage found at rest)
/// the replay of batch headers starts at or below the segment holding that offset, and below
/// any segment whose `.txnindex` is torn; the indexes of the segments it replays are written
/// again when they differ from what the batches say.
pub(crate) fn load(
    shared: &Shared,
    dir: &Path,
    segments: &[Arc<Segment>],
    end: i64,
    replay_below: Option<i64>,
    report: &mut PartitionRecovery,
) -> Result<TxnLoaded> {
    let mut on_disk: Vec<Option<Vec<AbortedTxn>>> = Vec::with_capacity(segments.len());
    let mut floor = match replay_below {
        None => end,
        Some(rp) => segments
            .iter()
            .rev()
            .find(|s| s.base_offset <= rp)
            .map_or(i64::MIN, |s| s.base_offset),
    };
    for (i, seg) in segments.iter().enumerate() {
        let seg_end = segments.get(i + 1).map_or(end, |n| n.base_offset);
        match txn_index::load(dir, seg.base_offset, seg_end.max(seg.base_offset)) {
            Loaded::Absent => on_disk.push(Some(Vec::new())),
            Loaded::Entries(e) => on_disk.push(Some(e)),
            Loaded::Damaged => {
                floor = floor.min(seg.base_offset);
                on_disk.push(None);
            }
        }
    }
    let replayed = rebuild_producers(shared, dir, segments, end, floor)?;
    let mut all = Vec::new();
    for (seg, disk) in segments.iter().zip(on_disk) {
        let seg_end = seg.end_offset();
        if seg_end <= replayed.from && replayed.from != i64::MIN {
            all.extend(disk.unwrap_or_default());
            continue;
        }
        // Entries whose markers lie before the replay's start stay as the file has them;
        // the replay decides the rest.
        let mut entries: Vec<AbortedTxn> = disk
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| replayed.from != i64::MIN && t.last_offset < replayed.from)
            .collect();
        entries.extend(
            replayed
                .aborted
                .iter()
                .filter(|(base, _)| *base == seg.base_offset)
                .map(|(_, t)| *t),
        );
        if disk.as_ref() != Some(&entries) && !shared.read_only {
            txn_index::rewrite(dir, seg.base_offset, &entries)?;
            report.txn_indexes_rebuilt += 1;
        }
        all.extend(entries);
    }
    report.open_transactions = replayed.state.open_transactions().len();
    Ok(TxnLoaded {
        producers: replayed.state,
        aborted: AbortedList::new(all),
    })
}

impl Partition {
    /// The last stable offset: the first offset of the oldest open transaction, or the high
    /// watermark when none is open. `read_committed` readers stop here.
    pub(crate) fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        hw.min(self.first_unstable.load(Ordering::Acquire))
    }

    /// The aborted transactions with records in `from..to` (none, with no lock taken, in a
    /// partition that never had one).
    pub(crate) fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        if !self.has_aborted.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.aborted.read().between(from, to)
    }

    /// Appends a COMMIT or ABORT marker for `producer_id` at `epoch`, ending its open
    /// transaction here (a marker for a producer with none open ends nothing, and still
    /// fences its older epochs). Acknowledged under the topic's flush policy.
    ///
    /// # Errors
    /// [`crate::Error::Fenced`] for an epoch older than the partition's; write errors.
    pub(crate) fn write_marker(
        self: &Arc<Self>,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<AppendResult> {
        let marker = EndTxnMarker {
            commit,
            coordinator_epoch: 0,
        };
        let mut data = marker.batch(producer_id, epoch, now_ms())?;
        self.append_control(&mut data)
    }

    /// Open transactions of this partition: (producer id, epoch, first offset).
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.writer.lock().producers.open_transactions()
    }

    /// Records aborted transactions the writer just stored.
    pub(super) fn add_aborted(&self, entries: &[AbortedTxn]) {
        if entries.is_empty() {
            return;
        }
        let mut a = self.aborted.write();
        let mut list = std::mem::take(&mut a.list);
        list.extend_from_slice(entries);
        *a = AbortedList::new(list);
        self.has_aborted.store(true, Ordering::Release);
    }

    /// Replaces the aborted transactions (open, truncation) and the first unstable offset.
    pub(super) fn set_txn_state(&self, aborted: AbortedList, first_unstable: Option<i64>) {
        self.has_aborted
            .store(!aborted.list.is_empty(), Ordering::Release);
        *self.aborted.write() = aborted;
        self.first_unstable
            .store(first_unstable.unwrap_or(i64::MAX), Ordering::Release);
    }

    /// Drops aborted transactions whose markers lie below `start` (their segments are gone).
    pub(crate) fn forget_aborted_below(&self, start: i64) {
        if !self.has_aborted.load(Ordering::Acquire) {
            return;
        }
        let mut a = self.aborted.write();
        if a.list.first().is_some_and(|t| t.last_offset < start) {
            let list: Vec<AbortedTxn> = a
                .list
                .iter()
                .filter(|t| t.last_offset >= start)
                .copied()
                .collect();
            *a = AbortedList::new(list);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_range_finds_the_transactions_with_records_in_it() {
        let a = AbortedList::new(vec![
            AbortedTxn::new(1, 0, 10, 11),
            AbortedTxn::new(2, 5, 20, 21),
            AbortedTxn::new(3, 30, 31, 32),
        ]);
        let ids = |from, to| -> Vec<i64> {
            a.between(from, to)
                .into_iter()
                .map(|t| t.producer_id)
                .collect()
        };
        assert_eq!(ids(0, 5), vec![1]);
        assert_eq!(ids(11, 25), vec![2]);
        assert_eq!(ids(0, 100), vec![1, 2, 3]);
        assert_eq!(ids(21, 30), Vec::<i64>::new());
        assert_eq!(ids(31, 32), vec![3]);
    }
}
