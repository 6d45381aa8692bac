//! Zero-copy views of whole batches: [`Batch`] (owned `Bytes`), `BatchRef` (borrowed), the
//! record iterators over them, and [`Batches`], which splits concatenated batches.

use bytes::Bytes;

use super::decoder::{Cursor, CursorState, field};
use super::header::{BATCH_HEADER_LEN, BatchHeader, MAX_DECOMPRESSED_BYTES, batch_crc};
use crate::error::{Error, Result};
use crate::record::codec::{self, Compression};
use crate::record::record::{Header, StoredRecord};

/// One whole RecordBatch v2 held as `Bytes` (for batches read from disk, a view into the
/// mapped segment: no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    header: BatchHeader,
    bytes: Bytes,
}

impl Batch {
    /// Wraps `bytes`, which must hold exactly one batch. Checks the header and the length;
    /// call [`Batch::verify_crc`] to check the checksum.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] when the header is bad or the length does not match.
    pub fn new(bytes: Bytes) -> Result<Batch> {
        let header = BatchRef::new(&bytes)?.header;
        Ok(Batch { header, bytes })
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
        Batch { header, bytes }
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

    /// Iterates the records, decompressing the records section first when the batch is
    /// compressed. Uncompressed records are `Bytes` views into this batch's bytes.
    ///
    /// # Errors
    /// [`Error::UnsupportedCompression`] or [`Error::InvalidBatch`] when the records section
    /// cannot be decompressed; each record then yields its own decode result.
    pub fn records(&self) -> Result<RecordIter> {
        let section = self.bytes.slice(BATCH_HEADER_LEN..);
        let data = match self.header.compression()? {
            Compression::None => section,
            other => Bytes::from(codec::decompress(other, &section, MAX_DECOMPRESSED_BYTES)?),
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
        let header = BatchHeader::parse(bytes)?;
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
        if rest.len() < BATCH_HEADER_LEN {
            return None;
        }
        match BatchHeader::parse(rest) {
            Ok(h) if h.size() <= rest.len() => {
                let b = self.bytes.slice(self.pos..self.pos + h.size());
                self.pos += h.size();
                Some(Ok(Batch::from_parts(h, b)))
            }
            Ok(_) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
