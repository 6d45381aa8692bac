//! What a poll returns: [`ConsumerRecords`], which hold the fetched batches themselves (one
//! reference count per run of batches, not per record), and the [`ConsumerRecord`] views the
//! iterators decode from them on demand. [`ConsumerRecord::to_owned`] makes an
//! [`OwnedConsumerRecord`] for records kept past the `ConsumerRecords`.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::TopicPartition;
use crate::error::Error;
use crate::group::offsets::OffsetAndMetadata;
use crate::record::batch::{BatchHeader, RecordCursor, records_section};
use crate::record::{Header, RecordRef, Records};

/// A record as a consumer receives it: a view into the batch it was fetched in, valid while
/// its [`ConsumerRecords`] lives. Nothing is copied or counted until [`ConsumerRecord::to_owned`].
#[derive(Clone, Copy)]
pub struct ConsumerRecord<'a> {
    part: &'a PartitionRecords,
    owner: &'a Bytes,
    record: RecordRef<'a>,
}

impl<'a> ConsumerRecord<'a> {
    /// Topic.
    pub fn topic(&self) -> &'a str {
        &self.part.tp.topic
    }
    /// Partition.
    pub fn partition(&self) -> i32 {
        self.part.tp.partition
    }
    /// Offset.
    pub fn offset(&self) -> i64 {
        self.record.offset
    }
    /// Timestamp (ms since the epoch).
    pub fn timestamp(&self) -> i64 {
        self.record.timestamp
    }
    /// Key (`None` for null).
    pub fn key(&self) -> Option<&'a [u8]> {
        self.record.key
    }
    /// Value (`None` for null: a tombstone).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.record.value
    }
    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.record.header_count()
    }
    /// The headers in order: key and value (`None` for a null value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + use<'a> {
        self.record.headers()
    }
    /// An owned record. Its key, value and header values are views of the same fetched bytes
    /// (a reference count each, no copy), so a kept record keeps those bytes alive.
    pub fn to_owned(&self) -> OwnedConsumerRecord {
        let bytes = |b: &[u8]| self.owner.slice_ref(b);
        OwnedConsumerRecord {
            topic: Arc::clone(&self.part.topic),
            partition: self.part.tp.partition,
            offset: self.record.offset,
            timestamp: self.record.timestamp,
            key: self.record.key.map(bytes),
            value: self.record.value.map(bytes),
            headers: self
                .record
                .headers()
                .map(|(key, value)| Header {
                    key: key.to_owned(),
                    value: value.map(bytes),
                })
                .collect(),
        }
    }
}

impl std::fmt::Debug for ConsumerRecord<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRecord")
            .field("topic", &self.topic())
            .field("partition", &self.partition())
            .field("offset", &self.offset())
            .field("timestamp", &self.timestamp())
            .field("key", &self.key())
            .field("value", &self.value())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for ConsumerRecord<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.part.tp == other.part.tp && self.record == other.record
    }
}

/// A record owned by the caller, from [`ConsumerRecord::to_owned`] or from iterating
/// [`ConsumerRecords`] by value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Key (`None` for null).
    pub key: Option<Bytes>,
    /// Value (`None` for null: a tombstone).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

/// Records returned by one [`Consumer::poll`](crate::Consumer::poll): in order within each
/// partition, partition after partition. They hold the fetched batches, not decoded records:
/// [`ConsumerRecords::iter`] decodes each record as it is reached, as a view into them.
///
/// A record that passed its batch's checksum but does not decode (bytes changed by something
/// other than topiclog, with a matching checksum) ends its partition's records in this
/// iteration, and the consumer's next `poll` returns the error with the partition's position
/// at that record, as Kafka's consumer stops at a corrupt record.
#[derive(Debug, Clone, Default)]
pub struct ConsumerRecords {
    pub(super) parts: Vec<PartitionRecords>,
    pub(super) len: usize,
    pub(super) faults: Option<Arc<Faults>>,
}

/// The records one poll took from one partition.
#[derive(Debug, Clone)]
pub(super) struct PartitionRecords {
    pub(super) tp: TopicPartition,
    pub(super) topic: Arc<str>,
    pub(super) sections: Vec<Section>,
    pub(super) len: usize,
    /// Stored bytes of the batches these records came from (for the consumer's metrics).
    pub(super) bytes: usize,
    /// The partition's seek count when these records were fetched (see `Fault::seeks`).
    pub(super) seeks: u64,
    /// The partition's position after this fetch: past its last record and any markers or
    /// aborted records after it that the fetch stepped over.
    pub(super) next_offset: i64,
}

/// A run of records to hand out: whole stored batches (uncompressed, adjacent in their
/// segment), or the decompressed records of one compressed batch.
#[derive(Debug, Clone)]
pub(super) struct Section {
    pub(super) data: Bytes,
    pub(super) layout: Layout,
    /// Records before this offset are skipped (a batch that is not dense may hold some).
    pub(super) from: i64,
    /// How many records (at or after `from`) this section hands out.
    pub(super) take: usize,
}

/// What a section's bytes are.
#[derive(Debug, Clone, Copy)]
pub(super) enum Layout {
    /// Whole stored batches, headers included: the iteration reads each header as it reaches
    /// the batch (the fetch checked them; nothing per batch is kept between the two). `first`
    /// is the cursor at the first record to hand out of the section's first batch when that
    /// batch starts before the position (stepped into, or where the last poll stopped).
    Batches { first: Option<RecordCursor> },
    /// The decompressed records of one batch, its base offset and CRC, and the cursor at the
    /// first record to hand out.
    Records {
        base_offset: i64,
        crc: u32,
        cursor: RecordCursor,
    },
}

/// What iterations tell the consumer's next poll: a record that does not decode, and where
/// in its batch a poll that `max_poll_records` cut stopped.
#[derive(Debug, Default)]
pub(super) struct Faults {
    first: Mutex<Option<Fault>>,
    cuts: Mutex<Vec<Cut>>,
}

/// Where the iteration of a poll cut inside a batch stopped: the next poll of the partition
/// starts in the same batch and resumes the cursor there, instead of stepping over the
/// records already handed out.
#[derive(Debug)]
pub(super) struct Cut {
    pub(super) tp: TopicPartition,
    pub(super) seeks: u64,
    pub(super) base_offset: i64,
    pub(super) crc: u32,
    /// The offset of the next record, and the cursor at it.
    pub(super) next_offset: i64,
    pub(super) cursor: RecordCursor,
}

/// A record that did not decode: the partition, the offset to resume at, and why.
#[derive(Debug)]
pub(super) struct Fault {
    pub(super) tp: TopicPartition,
    pub(super) offset: i64,
    pub(super) error: Error,
    /// The partition's seek count when the records were fetched: a seek since then (the
    /// application moving past the record, or elsewhere) makes the fault moot.
    pub(super) seeks: u64,
}

impl Faults {
    fn report(&self, fault: Fault) {
        let mut first = self.first.lock();
        if first.is_none() {
            *first = Some(fault);
        }
    }

    pub(super) fn take(&self) -> Option<Fault> {
        self.first.lock().take()
    }

    fn cut(&self, cut: Cut) {
        let mut cuts = self.cuts.lock();
        cuts.retain(|c| c.tp != cut.tp);
        cuts.push(cut);
    }

    /// The cursor where an iteration left `tp`'s batch `base_offset` (with `crc`) at
    /// `next_offset`, if one did since the last seek.
    pub(super) fn take_cut(
        &self,
        tp: &TopicPartition,
        seeks: u64,
        base_offset: i64,
        crc: u32,
        next_offset: i64,
    ) -> Option<RecordCursor> {
        let mut cuts = self.cuts.lock();
        let i = cuts.iter().position(|c| &c.tp == tp)?;
        let c = cuts.swap_remove(i);
        (c.seeks == seeks
            && c.base_offset == base_offset
            && c.crc == crc
            && c.next_offset == next_offset)
            .then_some(c.cursor)
    }
}

impl ConsumerRecords {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when the poll returned nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Iterates the records: partition after partition, in offset order within each.
    pub fn iter(&self) -> ConsumerRecordIter<'_> {
        ConsumerRecordIter::new(&self.parts, self.faults.as_deref())
    }
    /// The records of one partition, in offset order (none when the poll returned none of it).
    pub fn records(&self, tp: &TopicPartition) -> ConsumerRecordIter<'_> {
        match self.parts.iter().position(|p| &p.tp == tp) {
            Some(i) => {
                let one = self.parts.get(i..=i).unwrap_or(&[]);
                ConsumerRecordIter::new(one, self.faults.as_deref())
            }
            None => ConsumerRecordIter::new(&[], None),
        }
    }
    /// The partitions with records in this batch.
    pub fn partitions(&self) -> BTreeSet<TopicPartition> {
        self.parts.iter().map(|p| p.tp.clone()).collect()
    }
    /// Number of records of one partition.
    pub fn count(&self, tp: &TopicPartition) -> usize {
        self.parts.iter().find(|p| &p.tp == tp).map_or(0, |p| p.len)
    }

    /// For each partition with records here, the offset to commit once they are processed:
    /// the consumer's position after this poll (past the last record, and past any
    /// transaction marker or aborted record the poll stepped over after it). What
    /// [`Producer::send_offsets_to_transaction`](crate::Producer::send_offsets_to_transaction)
    /// takes in a consume-transform-produce loop, and what `commit_offsets` takes.
    pub fn next_offsets(&self) -> Vec<(TopicPartition, OffsetAndMetadata)> {
        self.parts
            .iter()
            .map(|p| (p.tp.clone(), OffsetAndMetadata::new(p.next_offset)))
            .collect()
    }
}

impl<'a> IntoIterator for &'a ConsumerRecords {
    type Item = ConsumerRecord<'a>;
    type IntoIter = ConsumerRecordIter<'a>;
    fn into_iter(self) -> ConsumerRecordIter<'a> {
        self.iter()
    }
}

/// Iterating by value hands out owned records (each a view of the fetched bytes: no copy).
impl IntoIterator for ConsumerRecords {
    type Item = OwnedConsumerRecord;
    type IntoIter = std::vec::IntoIter<OwnedConsumerRecord>;
    fn into_iter(self) -> Self::IntoIter {
        let owned: Vec<OwnedConsumerRecord> = self.iter().map(|r| r.to_owned()).collect();
        owned.into_iter()
    }
}

/// Iterator over [`ConsumerRecords`], decoding each record in place as it is reached.
pub struct ConsumerRecordIter<'a> {
    parts: std::slice::Iter<'a, PartitionRecords>,
    part: Option<&'a PartitionRecords>,
    sections: std::slice::Iter<'a, Section>,
    section: Option<&'a Section>,
    /// Records the current section still hands out.
    left: usize,
    /// Where the current section's next batch starts in its bytes.
    at: usize,
    /// True until the current section's first batch is reached.
    fresh: bool,
    /// The records of the current batch.
    cursor: Option<Records<'a>>,
    /// The current batch's base offset and CRC (which batch a cut poll stopped in).
    batch: (i64, u32),
    /// The last offset handed out from the current partition.
    last: Option<i64>,
    faults: Option<&'a Faults>,
}

impl std::fmt::Debug for ConsumerRecordIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRecordIter")
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<'a> ConsumerRecordIter<'a> {
    fn new(parts: &'a [PartitionRecords], faults: Option<&'a Faults>) -> ConsumerRecordIter<'a> {
        ConsumerRecordIter {
            parts: parts.iter(),
            part: None,
            sections: [].iter(),
            section: None,
            left: 0,
            at: 0,
            fresh: false,
            cursor: None,
            batch: (0, 0),
            last: None,
            faults,
        }
    }

    /// Moves to the next batch of the current section; false at its end. A batch whose header
    /// no longer reads (the mapped bytes changed since the fetch checked them) ends the
    /// partition's records as a record that does not decode does ([`Self::fail`]).
    #[inline]
    fn next_batch(&mut self) -> bool {
        match self.batch_after() {
            Ok(found) => found,
            Err(e) => {
                self.fail(e);
                true
            }
        }
    }

    #[inline]
    fn batch_after(&mut self) -> Result<bool, Error> {
        let Some(section) = self.section else {
            return Ok(false);
        };
        let mut first = std::mem::replace(&mut self.fresh, false);
        match section.layout {
            Layout::Records {
                base_offset,
                crc,
                cursor,
            } => {
                if !first {
                    return Ok(false);
                }
                self.batch = (base_offset, crc);
                self.cursor = Some(Records::resume(&section.data, cursor));
                Ok(true)
            }
            Layout::Batches { first: start } => loop {
                let Some(rest) = section.data.get(self.at..).filter(|r| !r.is_empty()) else {
                    return Ok(false);
                };
                let Some(head) = rest.first_chunk() else {
                    return Err(Error::invalid_batch(
                        "a batch header runs past its fetched bytes",
                    ));
                };
                let h = BatchHeader::read(head);
                h.validate()?;
                let Some(batch) = rest.get(..h.size()) else {
                    return Err(Error::invalid_batch("a batch runs past its fetched bytes"));
                };
                self.at += batch.len();
                // The batches the fetch stepped over (see `fetch_partition`).
                if h.is_control() || h.record_count <= 0 || h.last_offset() < section.from {
                    first = false;
                    continue;
                }
                let cursor = match start {
                    Some(cursor) if first => cursor,
                    _ => RecordCursor::new(&h)?,
                };
                self.batch = (h.base_offset, h.crc);
                self.cursor = Some(Records::resume(records_section(batch), cursor));
                return Ok(true);
            },
        }
    }

    /// The section ended inside a batch (a poll cut by `max_poll_records`): tells the consumer
    /// where, so its next poll resumes there.
    fn note_cut(&mut self, next_offset: i64) {
        let (Some(faults), Some(part), Some(cursor)) =
            (self.faults, self.part, self.cursor.as_ref())
        else {
            return;
        };
        if cursor.is_exhausted() {
            return;
        }
        faults.cut(Cut {
            tp: part.tp.clone(),
            seeks: part.seeks,
            base_offset: self.batch.0,
            crc: self.batch.1,
            next_offset,
            cursor: cursor.position(),
        });
    }

    /// Stops handing out the current partition's records and reports why to the consumer.
    #[cold]
    fn fail(&mut self, error: Error) {
        if let (Some(faults), Some(part), Some(section)) = (self.faults, self.part, self.section) {
            faults.report(Fault {
                tp: part.tp.clone(),
                offset: self.last.map_or(section.from, |o| o + 1),
                error,
                seeks: part.seeks,
            });
        }
        self.left = 0;
        self.cursor = None;
        self.sections = [].iter();
    }
}

impl<'a> Iterator for ConsumerRecordIter<'a> {
    type Item = ConsumerRecord<'a>;

    #[inline]
    fn next(&mut self) -> Option<ConsumerRecord<'a>> {
        loop {
            if self.left > 0 {
                if let Some(cursor) = self.cursor.as_mut() {
                    match cursor.next() {
                        Some(Ok(record)) => {
                            // Set together with `left`: both are `Some` here.
                            let (Some(part), Some(section)) = (self.part, self.section) else {
                                return None;
                            };
                            if record.offset < section.from {
                                continue;
                            }
                            self.left -= 1;
                            self.last = Some(record.offset);
                            if self.left == 0 {
                                self.note_cut(record.offset + 1);
                            }
                            return Some(ConsumerRecord {
                                part,
                                owner: &section.data,
                                record,
                            });
                        }
                        Some(Err(e)) => {
                            self.fail(e);
                            continue;
                        }
                        None => self.cursor = None,
                    }
                }
                if !self.next_batch() {
                    // Fewer records than the batch headers declare.
                    self.fail(Error::invalid_batch(format!(
                        "{} fewer records than their batch headers declare",
                        self.left
                    )));
                }
                continue;
            }
            if let Some(section) = self.sections.next() {
                self.section = Some(section);
                self.left = section.take;
                self.at = 0;
                self.fresh = true;
                self.cursor = None;
                continue;
            }
            let part = self.parts.next()?;
            self.part = Some(part);
            self.last = None;
            self.sections = part.sections.iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Counted when asked, not kept up per record.
        let sections: usize = self.sections.as_slice().iter().map(|s| s.take).sum();
        let parts: usize = self.parts.as_slice().iter().map(|p| p.len).sum();
        (0, Some(self.left + sections + parts))
    }
}
