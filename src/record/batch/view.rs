//! Zero-copy views of whole batches: [`Batch`] (owned `Bytes`), `BatchRef` (borrowed), the
//! record iterators over them, and [`Batches`], which splits concatenated batches.

use std::sync::OnceLock;

use bytes::Bytes;

use super::decoder::{Cursor, CursorState, field};
use super::header::{
    BATCH_HEADER_LEN, BatchHeader, MAX_DECOMPRESSED_BYTES, batch_crc, short_header,
};
use crate::error::{Error, Result};
use crate::record::codec::{self, Compression};
use crate::record::record::{Header, StoredRecord};
use crate::record::varint::read_varint;

/// One whole RecordBatch v2 held as `Bytes` (for batches read from disk, a view into the
/// mapped segment: no copy).
#[derive(Debug, Clone)]
pub struct Batch {
    header: BatchHeader,
    bytes: Bytes,
    /// A compressed batch's records, decompressed by the first [`Batch::records`], so the
    /// records it hands out can borrow from the batch.
    decompressed: OnceLock<Bytes>,
}

/// Equal when the bytes are (whether the records were decompressed yet does not matter).
impl PartialEq for Batch {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header && self.bytes == other.bytes
    }
}

impl Eq for Batch {}

impl Batch {
    /// Wraps `bytes`, which must hold exactly one batch. Checks the header and the length;
    /// call [`Batch::verify_crc`] to check the checksum.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] when the header is bad or the length does not match.
    pub fn new(bytes: Bytes) -> Result<Batch> {
        let header = BatchRef::new(&bytes)?.header;
        Ok(Batch::from_parts(header, bytes))
    }

    /// The same batch, borrowed (what the checks and the record scan work on).
    fn view(&self) -> BatchRef<'_> {
        BatchRef {
            header: self.header,
            bytes: &self.bytes,
        }
    }

    /// Builds from an already parsed header whose size matches `bytes` (internal fast path).
    pub(crate) fn from_parts(header: BatchHeader, bytes: Bytes) -> Batch {
        Batch {
            header,
            bytes,
            decompressed: OnceLock::new(),
        }
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, exactly as stored (Kafka wire and disk format).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Consumes the batch, returning its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a batch holds at least its header.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of records (may be 0 for batches emptied by compaction).
    pub fn record_count(&self) -> i32 {
        self.header.record_count
    }

    /// True when the stored CRC matches the bytes.
    pub fn crc_ok(&self) -> bool {
        batch_crc(&self.bytes) == self.header.crc
    }

    /// Checks the CRC-32C.
    ///
    /// # Errors
    /// [`Error::ChecksumMismatch`] on a mismatch.
    pub fn verify_crc(&self) -> Result<()> {
        self.view().verify_crc()
    }

    /// Iterates the records, borrowed from the batch: the fast decoder, no allocation and no
    /// reference count per record. A compressed batch's records are decompressed on the first
    /// call and kept with the batch. [`RecordRef::to_stored`] copies a record out;
    /// [`Batch::owned_records`] hands out records that share the batch's bytes instead.
    ///
    /// ```
    /// # use topiclog::{Batch, BatchBuilder, Compression};
    /// let mut b = BatchBuilder::new(Compression::Lz4);
    /// b.push(Some(b"k"), Some(b"v1"), &[], 1_700_000_000_000)?;
    /// b.push(Some(b"k"), Some(b"v2"), &[], 1_700_000_000_001)?;
    /// let batch = Batch::new(b.finish()?.to_vec().into())?;
    /// let values = batch
    ///     .records()?
    ///     .map(|r| r.map(|r| r.value))
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(values, [Some(&b"v1"[..]), Some(&b"v2"[..])]);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::UnsupportedCompression`] or [`Error::InvalidBatch`] when the records section
    /// cannot be decompressed; each record then yields its own decode result.
    pub fn records(&self) -> Result<Records<'_>> {
        Records::new(self.section()?, &self.header)
    }

    /// The records section: the bytes after the header, or their decompressed form.
    fn section(&self) -> Result<&[u8]> {
        let section = self.bytes.get(BATCH_HEADER_LEN..).unwrap_or(&[]);
        match self.header.compression()? {
            Compression::None => Ok(section),
            other => {
                if self.decompressed.get().is_none() {
                    let data = codec::decompress(other, section, MAX_DECOMPRESSED_BYTES)?;
                    // Another thread may have set it meanwhile: the same bytes.
                    let _ = self.decompressed.set(Bytes::from(data));
                }
                Ok(self.decompressed.get().map_or(&[], |b| &b[..]))
            }
        }
    }

    /// Iterates the records as [`StoredRecord`]s whose fields are `Bytes` views of this batch
    /// (or of its decompressed records): owned values that need no copy, at the price of a
    /// reference count per field. [`Batch::records`] is the faster scan.
    ///
    /// # Errors
    /// As [`Batch::records`].
    pub fn owned_records(&self) -> Result<RecordIter> {
        let data = if self.header.compression()? == Compression::None {
            self.bytes.slice(BATCH_HEADER_LEN..)
        } else {
            self.section()?;
            self.decompressed.get().cloned().unwrap_or_default()
        };
        let state = CursorState::new(&self.header)?;
        Ok(RecordIter { data, state })
    }

    /// Calls `f` with each record borrowed from the batch's bytes (decompressed first when
    /// the batch is compressed): no allocation and no reference counting per record, the
    /// fastest way to scan. Returns how many records were visited. Checks the same things
    /// as [`Batch::records`]; the CRC is [`Batch::verify_crc`]'s job.
    ///
    /// ```
    /// # use topiclog::{Batch, BatchBuilder, Compression};
    /// let mut b = BatchBuilder::new(Compression::None);
    /// b.push(Some(b"k"), Some(b"v"), &[], 1_700_000_000_000)?;
    /// let batch = Batch::new(b.finish()?.to_vec().into())?;
    /// let mut bytes = 0;
    /// batch.for_each_record(|r| bytes += r.value.map_or(0, <[u8]>::len))?;
    /// assert_eq!(bytes, 1);
    /// # Ok::<_, topiclog::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Batch::records`], for the first record that does not decode (records before it
    /// have been visited).
    pub fn for_each_record<F: FnMut(RecordRef<'_>)>(&self, f: F) -> Result<usize> {
        self.view().for_each_record(f)
    }
}

/// One whole batch borrowed from a buffer: the checks and the record scan of [`Batch`],
/// for callers holding plain bytes (a client's batch about to be appended) that need no copy
/// into `Bytes`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRef<'a> {
    pub(crate) header: BatchHeader,
    bytes: &'a [u8],
}

impl<'a> BatchRef<'a> {
    /// Checks the header and that `bytes` is exactly one batch.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<BatchRef<'a>> {
        let Some(head) = bytes.first_chunk() else {
            return Err(short_header(bytes.len()));
        };
        let header = BatchHeader::read(head);
        header.validate()?;
        if header.size() != bytes.len() {
            return Err(Error::invalid_batch(format!(
                "batch declares {} bytes but {} were given",
                header.size(),
                bytes.len()
            )));
        }
        Ok(BatchRef { header, bytes })
    }

    /// See [`Batch::verify_crc`].
    pub(crate) fn verify_crc(&self) -> Result<()> {
        let actual = batch_crc(self.bytes);
        if actual == self.header.crc {
            Ok(())
        } else {
            Err(Error::ChecksumMismatch {
                base_offset: self.header.base_offset,
                stored: self.header.crc,
                computed: actual,
            })
        }
    }

    /// See [`Batch::for_each_record`].
    pub(crate) fn for_each_record<F: FnMut(RecordRef<'_>)>(&self, mut f: F) -> Result<usize> {
        let section = self.bytes.get(BATCH_HEADER_LEN..).unwrap_or(&[]);
        let decompressed;
        let data = match self.header.compression()? {
            Compression::None => section,
            other => {
                decompressed = codec::decompress(other, section, MAX_DECOMPRESSED_BYTES)?;
                decompressed.as_slice()
            }
        };
        let mut cursor = Cursor {
            data,
            state: CursorState::new(&self.header)?,
        };
        let mut n = 0;
        loop {
            // The common record straight to `f`; anything else through `next_record`.
            if cursor.state.remaining > 0
                && let Some(r) = cursor.decode_common()
            {
                cursor.state.remaining -= 1;
                f(r);
                n += 1;
                continue;
            }
            // `decode_common` declined it (or none remain): the general decoder.
            match cursor.next_record_with(false) {
                Some(r) => f(r?),
                None => return Ok(n),
            }
            n += 1;
        }
    }
}

/// Decodes the records of one batch's records section (decompressed when the batch is
/// compressed) one at a time, borrowing from it: the decoder of
/// [`Batch::for_each_record`] as a pull cursor, for readers that hand records out one by one
/// (the consumer's `ConsumerRecords`). Its state is `Copy` and holds no borrow, so a reader
/// can keep it beside the bytes it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordCursor {
    state: CursorState,
}

impl RecordCursor {
    /// A cursor at the first record of `header`'s batch.
    #[inline]
    pub(crate) fn new(header: &BatchHeader) -> Result<RecordCursor> {
        Ok(RecordCursor {
            state: CursorState::new(header)?,
        })
    }

    /// The next record of `section` (the same section on every call), or `None` after the
    /// last; checks what [`Batch::records`] checks. Ends after the first error.
    #[inline]
    pub(crate) fn next<'a>(&mut self, section: &'a [u8]) -> Option<Result<RecordRef<'a>>> {
        let mut cursor = Cursor {
            data: section,
            state: self.state,
        };
        let r = cursor.next_record();
        self.state = cursor.state;
        r
    }

    /// Steps over the next `n` records of `section` reading only their lengths: how a reader
    /// that knows where the record it wants sits (a batch whose offsets are dense) gets there
    /// without decoding the records before it. They are decoded (and checked) by whoever
    /// reads them.
    pub(crate) fn skip(&mut self, section: &[u8], n: usize) -> Result<()> {
        for _ in 0..n.min(self.state.remaining) {
            let mut pos = self.state.pos;
            let len = read_varint(section, &mut pos)?;
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| pos.checked_add(len))
                .filter(|&end| end <= section.len())
                .ok_or_else(|| Error::invalid_batch("record runs past the end of its batch"))?;
            self.state.pos = end;
            self.state.remaining -= 1;
        }
        Ok(())
    }
}

/// The records section of a whole batch: the bytes after its header.
pub(crate) fn records_section(batch: &[u8]) -> &[u8] {
    batch.get(BATCH_HEADER_LEN..).unwrap_or(&[])
}

/// The records section of a whole batch, decompressed when the batch is compressed (`None`
/// when it is not: the section is then [`records_section`] of the batch itself).
pub(crate) fn decompressed_section(header: &BatchHeader, batch: &[u8]) -> Result<Option<Vec<u8>>> {
    match header.compression()? {
        Compression::None => Ok(None),
        other => Ok(Some(codec::decompress(
            other,
            records_section(batch),
            MAX_DECOMPRESSED_BYTES,
        )?)),
    }
}

/// One record borrowed from its batch, from [`Batch::for_each_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// The record's offset in its partition.
    pub offset: i64,
    /// Its timestamp in ms since the epoch (the batch's append time under LogAppendTime).
    pub timestamp: i64,
    /// The key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The value, `None` for a null value (tombstone).
    pub value: Option<&'a [u8]>,
    /// The encoded headers (already checked when the record was decoded).
    pub(super) headers: &'a [u8],
    pub(super) header_count: usize,
}

impl<'a> RecordRef<'a> {
    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// The headers in order: key and value (`None` for a null value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + use<'a> {
        let mut pos = 0;
        let data = self.headers;
        (0..self.header_count).map_while(move |_| {
            // Checked while decoding the record: these reads cannot fail.
            let key = field(data, &mut pos, "header key").ok()??;
            let key = std::str::from_utf8(key).ok()?;
            let value = field(data, &mut pos, "header value").ok()?;
            Some((key, value))
        })
    }

    /// The headers in order as bytes, keys not checked again as UTF-8 (they were when the
    /// record decoded): for readers that match keys against known byte strings.
    pub fn raw_headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + use<'a> {
        let mut pos = 0;
        let data = self.headers;
        (0..self.header_count).map_while(move |_| {
            let key = field(data, &mut pos, "header key").ok()??;
            let value = field(data, &mut pos, "header value").ok()?;
            Some((key, value))
        })
    }

    /// An owned copy.
    pub fn to_stored(&self) -> StoredRecord {
        self.stored_with(Bytes::copy_from_slice)
    }

    /// A `StoredRecord` whose byte fields `bytes` makes from the borrowed slices.
    fn stored_with(&self, bytes: impl Fn(&[u8]) -> Bytes) -> StoredRecord {
        StoredRecord {
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.map(&bytes),
            value: self.value.map(&bytes),
            headers: self
                .headers()
                .map(|(k, v)| Header {
                    key: k.to_owned(),
                    value: v.map(&bytes),
                })
                .collect(),
        }
    }
}

/// Iterator over the records of one batch borrowed from it, from [`Batch::records`]. After the
/// declared number of records it checks that no bytes remain, as Kafka's reader does; it ends
/// after the first error.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    // The cursor itself, not a copy of its state: the scan position stays in registers
    // across `next` calls once inlined (copying the state in and out cost the iterator about
    // twice the callback scan's time per record).
    cursor: Cursor<'a>,
}

impl<'a> Records<'a> {
    /// The records of `section` (a batch's records section, decompressed when the batch is)
    /// of the batch `header` describes.
    pub(crate) fn new(section: &'a [u8], header: &BatchHeader) -> Result<Records<'a>> {
        Ok(Records::resume(section, RecordCursor::new(header)?))
    }

    /// Where the iteration stands, to [`Records::resume`] later on the same section.
    pub(crate) fn position(&self) -> RecordCursor {
        RecordCursor {
            state: self.cursor.state,
        }
    }

    /// True when every declared record was handed out.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.cursor.state.remaining == 0
    }

    /// The records of `section` from where `cursor` stands.
    pub(crate) fn resume(section: &'a [u8], cursor: RecordCursor) -> Records<'a> {
        Records {
            cursor: Cursor {
                data: section,
                state: cursor.state,
            },
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordRef<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next_record()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.cursor.state.remaining))
    }
}

/// Iterator over the records of one batch, yielding `Result<StoredRecord>` whose fields are
/// `Bytes` views of the batch (or of its decompressed records). After the declared number
/// of records it checks that no bytes remain, as Kafka's reader does.
#[derive(Debug)]
pub struct RecordIter {
    data: Bytes,
    state: CursorState,
}

impl Iterator for RecordIter {
    type Item = Result<StoredRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut cursor = Cursor {
            data: &self.data,
            state: self.state,
        };
        let r = cursor.next_record();
        self.state = cursor.state;
        // Views of the batch (or of its decompressed records), not copies.
        r.map(|r| r.map(|r| r.stored_with(|b| self.data.slice_ref(b))))
    }
}

/// Splits a buffer of concatenated batches (a segment slice or a fetch response) into
/// [`Batch`]es. A trailing incomplete batch ends the iteration, as Kafka consumers treat a
/// fetch cut at the byte limit; a bad header yields an error and ends it.
#[derive(Debug, Clone)]
pub struct Batches {
    bytes: Bytes,
    pos: usize,
    failed: bool,
}

impl Batches {
    /// Iterates the batches in `bytes`.
    pub fn new(bytes: Bytes) -> Batches {
        Batches {
            bytes,
            pos: 0,
            failed: false,
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let rest = self.bytes.get(self.pos..)?;
        let h = BatchHeader::read(rest.first_chunk()?);
        match h.validate() {
            Ok(()) if h.size() <= rest.len() => {
                let b = self.bytes.slice(self.pos..self.pos + h.size());
                self.pos += h.size();
                Some(Ok(Batch::from_parts(h, b)))
            }
            Ok(()) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
