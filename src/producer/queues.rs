//! The producer's accumulator: batches per partition and the accounting that bounds them
//! (`batch.size`, `buffer.memory`) and reports on them (`flush`'s failures).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use super::{ProducerConfig, Slot};
use crate::error::{Error, Result};
use crate::record::Record;

/// Bytes a record is counted for in `batch.size` and `buffer.memory`: its payload plus the
/// most its varint framing takes, so a batch's estimate never falls short of its size
/// uncompressed.
pub(super) fn estimate(r: &Record) -> usize {
    // Length, attributes, timestamp delta, offset delta, key and value lengths, header
    // count: varints of at most 5, 1, 10, 5, 5, 5 and 5 bytes; a header's two lengths 5 each.
    const RECORD_OVERHEAD: usize = 36;
    const HEADER_OVERHEAD: usize = 10;
    r.key.as_ref().map_or(0, Bytes::len)
        + r.value.as_ref().map_or(0, Bytes::len)
        + r.headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Bytes::len) + HEADER_OVERHEAD)
            .sum::<usize>()
        + RECORD_OVERHEAD
}

/// One queued record's bookkeeping beside the record itself.
pub(super) struct Entry {
    pub(super) slot: Slot,
    pub(super) size: usize,
    /// Counted in the next `flush`'s failures (`send_async`); `send` reports its own.
    pub(super) report: bool,
}

/// One batch being filled: closed once the next record would take it past `batch.size`.
pub(super) struct Batch {
    pub(super) records: Vec<Record>,
    pub(super) entries: Vec<Entry>,
    pub(super) bytes: usize,
    pub(super) since: Instant,
}

impl Batch {
    pub(super) fn new() -> Batch {
        Batch {
            records: Vec::new(),
            entries: Vec::new(),
            bytes: crate::record::batch::BATCH_HEADER_LEN,
            since: Instant::now(),
        }
    }
}

/// A topic and partition.
pub(super) type Key = (String, i32);

#[derive(Default)]
pub(super) struct Queues {
    /// Batches per partition, oldest first; only the last one takes more records.
    pub(super) batches: BTreeMap<Key, VecDeque<Batch>>,
    /// Records queued or being sent, per partition: a `send` to a partition with any goes
    /// behind them.
    pub(super) pending: HashMap<Key, usize>,
    /// Records queued or being sent, all partitions.
    pub(super) in_flight: usize,
    /// Their estimated bytes, bounded by `buffer.memory`.
    pub(super) held: usize,
    /// Callers in `flush` or `close`: every batch is due.
    pub(super) flushing: usize,
    /// Callers waiting for `buffer.memory`: every batch is due, as Kafka's accumulator counts
    /// an exhausted buffer.
    pub(super) blocked: usize,
    /// Partitions a `send` waits on: due now.
    pub(super) urgent: BTreeSet<Key>,
    /// `send_async` records failed since the last `flush` or `close` took them.
    pub(super) failed: usize,
    pub(super) first_failure: Option<Error>,
    /// `close` ran or the last handle went: sends are refused and the sender exits once the
    /// queues are empty.
    pub(super) closed: bool,
}

impl Queues {
    pub(super) fn is_due(
        &self,
        key: &Key,
        batches: &VecDeque<Batch>,
        cfg: &ProducerConfig,
    ) -> bool {
        if self.closed || self.flushing > 0 || self.blocked > 0 || self.urgent.contains(key) {
            return true;
        }
        batches.len() > 1
            || batches
                .front()
                .is_some_and(|b| b.bytes >= cfg.batch_size || b.since.elapsed() >= cfg.linger)
    }

    /// The failures since the last call, as one error.
    pub(super) fn take_failures(&mut self) -> Result<()> {
        let failed = std::mem::take(&mut self.failed);
        match self.first_failure.take() {
            Some(first) if failed > 0 => Err(Error::SendFailed {
                failed,
                first: Box::new(first),
            }),
            _ => Ok(()),
        }
    }
}
