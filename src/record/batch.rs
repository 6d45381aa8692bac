//! Kafka RecordBatch v2: the header, a zero-copy view of a whole batch ([`Batch`]), its record
//! iterator, and [`BatchBuilder`], which encodes records in place into a reused buffer.

use bytes::Bytes;

use super::codec::{self, Compression};
use super::record::{Header, Record, StoredRecord};
use super::varint::{put_varint, put_varlong, read_varint, read_varlong, varint_len, varlong_len};
use crate::config::TimestampType;
use crate::error::{Error, Result};

/// Size of the fixed RecordBatch v2 header (Kafka's `RECORD_BATCH_OVERHEAD`).
pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before and including `batchLength` (Kafka's `LOG_OVERHEAD`): a batch is
/// `batchLength + LOG_OVERHEAD` bytes long.
pub const LOG_OVERHEAD: usize = 12;
/// The only batch format topiclog reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Largest decompressed records section accepted when reading a compressed batch. A bound on
/// what a hostile batch can make us allocate; far above what Kafka producers emit
/// (`batch.size` defaults to 16 KiB before compression).
pub const MAX_DECOMPRESSED_BYTES: usize = 128 << 20;

// Field positions (Kafka's DefaultRecordBatch offsets).
const LENGTH_OFFSET: usize = 8;
const LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
/// The CRC-32C covers everything from here to the end of the batch.
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORD_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

#[inline]
fn be<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    // Callers check `buf.len() >= BATCH_HEADER_LEN` first; the fallback keeps this total.
    buf.get(at..at + N)
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

#[inline]
fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// The 61-byte header of a RecordBatch v2, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field; the batch is `batch_length + 12` bytes.
    pub batch_length: i32,
    /// Leader epoch stamped by a broker (-1 when unknown).
    pub partition_leader_epoch: i32,
    /// Format version; always 2 here.
    pub magic: i8,
    /// Stored CRC-32C of bytes 21 to the end.
    pub crc: u32,
    /// Attribute bits (codec, timestamp type, transactional, control, delete horizon).
    pub attributes: i16,
    /// Last offset minus base offset.
    pub last_offset_delta: i32,
    /// First record's timestamp (or the delete horizon when that attribute is set).
    pub base_timestamp: i64,
    /// Largest record timestamp (the append time under LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// First record's sequence number, -1 for none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`, checking the magic byte and that the declared
    /// length can hold a header. Does not check that `buf` holds the whole batch, nor the CRC.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] when `buf` is shorter than 61 bytes, the magic is not 2, or the
    /// declared length is too small.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(Error::invalid_batch(format!(
                "{} bytes cannot hold a 61-byte batch header",
                buf.len()
            )));
        }
        let magic = i8::from_be_bytes(be(buf, MAGIC_OFFSET));
        if magic != MAGIC_V2 {
            return Err(Error::invalid_batch(format!(
                "magic byte is {magic}; only RecordBatch v2 (magic 2) is supported"
            )));
        }
        let batch_length = i32::from_be_bytes(be(buf, LENGTH_OFFSET));
        if batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(Error::invalid_batch(format!(
                "declared batch length {batch_length} is below the 49-byte minimum"
            )));
        }
        Ok(BatchHeader {
            base_offset: i64::from_be_bytes(be(buf, 0)),
            batch_length,
            partition_leader_epoch: i32::from_be_bytes(be(buf, LEADER_EPOCH_OFFSET)),
            magic,
            crc: u32::from_be_bytes(be(buf, CRC_OFFSET)),
            attributes: i16::from_be_bytes(be(buf, ATTRIBUTES_OFFSET)),
            last_offset_delta: i32::from_be_bytes(be(buf, LAST_OFFSET_DELTA_OFFSET)),
            base_timestamp: i64::from_be_bytes(be(buf, BASE_TIMESTAMP_OFFSET)),
            max_timestamp: i64::from_be_bytes(be(buf, MAX_TIMESTAMP_OFFSET)),
            producer_id: i64::from_be_bytes(be(buf, PRODUCER_ID_OFFSET)),
            producer_epoch: i16::from_be_bytes(be(buf, PRODUCER_EPOCH_OFFSET)),
            base_sequence: i32::from_be_bytes(be(buf, BASE_SEQUENCE_OFFSET)),
            record_count: i32::from_be_bytes(be(buf, RECORD_COUNT_OFFSET)),
        })
    }

    /// Whole batch size in bytes (`batch_length + 12`).
    pub fn size(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Offset of the last record (`base_offset + last_offset_delta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The records section's codec.
    ///
    /// # Errors
    /// [`Error::UnsupportedCompression`] for ids 5-7.
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_id((self.attributes & COMPRESSION_MASK) as u8)
    }

    /// CreateTime or LogAppendTime (attribute bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Attribute bit 4.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Attribute bit 5: a transaction marker, not user data.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Attribute bit 6: `base_timestamp` holds the compaction delete horizon.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }
}

/// CRC-32C of a batch's bytes from attributes (byte 21) to the end.
pub(crate) fn batch_crc(batch: &[u8]) -> u32 {
    crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]))
}

/// CRC-32C (Castagnoli, Kafka's batch checksum; CRC-32/ISCSI in the catalogue). `crc-fast`
/// folds with carry-less multiplication (PCLMULQDQ, VPCLMULQDQ on AVX-512 machines) where
/// the CPU has it, about 1.5x the `crc32c` crate's speed on 100 B records and more on larger
/// batches; it detects the CPU at run time and falls back to portable code.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    // CRC-32 variants fit in 32 bits; the crate returns every width as u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// Overwrites the base offset of an encoded batch. The CRC does not cover it.
pub(crate) fn stamp_base_offset(batch: &mut [u8], base_offset: i64) {
    put(batch, 0, &base_offset.to_be_bytes());
}

/// Marks an encoded batch as LogAppendTime with `now` as its max timestamp, recomputing the
/// CRC (both fields are inside it), as Kafka's broker does.
pub(crate) fn stamp_log_append_time(batch: &mut [u8], now: i64) {
    let attrs = i16::from_be_bytes(be(batch, ATTRIBUTES_OFFSET)) | TIMESTAMP_TYPE_BIT;
    put(batch, ATTRIBUTES_OFFSET, &attrs.to_be_bytes());
    put(batch, MAX_TIMESTAMP_OFFSET, &now.to_be_bytes());
    let crc = batch_crc(batch);
    put(batch, CRC_OFFSET, &crc.to_be_bytes());
}

/// The header of `h` alone, as a batch with no records: offsets (base and last offset delta),
/// producer id, epoch and base sequence, timestamp type, transactional and control bits and
/// leader epoch are kept; both timestamps become the batch's max timestamp and the
/// compression and delete-horizon bits are cleared (there is nothing left to compress or
/// expire). This is the empty batch Kafka's cleaner writes (`writeEmptyHeader`), readable by
/// any Kafka client.
pub(crate) fn empty_batch(h: &BatchHeader) -> [u8; BATCH_HEADER_LEN] {
    let mut b = [0u8; BATCH_HEADER_LEN];
    let attributes = h.attributes & !(COMPRESSION_MASK | DELETE_HORIZON_BIT);
    put(&mut b, 0, &h.base_offset.to_be_bytes());
    let len = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
    put(&mut b, LENGTH_OFFSET, &len.to_be_bytes());
    put(
        &mut b,
        LEADER_EPOCH_OFFSET,
        &h.partition_leader_epoch.to_be_bytes(),
    );
    put(&mut b, MAGIC_OFFSET, &[MAGIC_V2 as u8]);
    put(&mut b, ATTRIBUTES_OFFSET, &attributes.to_be_bytes());
    put(
        &mut b,
        LAST_OFFSET_DELTA_OFFSET,
        &h.last_offset_delta.to_be_bytes(),
    );
    put(
        &mut b,
        BASE_TIMESTAMP_OFFSET,
        &h.max_timestamp.to_be_bytes(),
    );
    put(&mut b, MAX_TIMESTAMP_OFFSET, &h.max_timestamp.to_be_bytes());
    put(&mut b, PRODUCER_ID_OFFSET, &h.producer_id.to_be_bytes());
    put(
        &mut b,
        PRODUCER_EPOCH_OFFSET,
        &h.producer_epoch.to_be_bytes(),
    );
    put(&mut b, BASE_SEQUENCE_OFFSET, &h.base_sequence.to_be_bytes());
    put(&mut b, RECORD_COUNT_OFFSET, &0i32.to_be_bytes());
    let crc = batch_crc(&b);
    put(&mut b, CRC_OFFSET, &crc.to_be_bytes());
    b
}

/// An empty batch over the offsets of `h` that belongs to no producer and no transaction: it
/// only keeps a segment's end offset when compaction removed everything in its last batch.
pub(crate) fn placeholder_batch(h: &BatchHeader) -> [u8; BATCH_HEADER_LEN] {
    empty_batch(&BatchHeader {
        attributes: h.attributes & TIMESTAMP_TYPE_BIT,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        ..*h
    })
}

/// Sets the base sequence of an encoded batch and recomputes the CRC (the field is inside it).
pub(crate) fn stamp_base_sequence(batch: &mut [u8], seq: i32) {
    put(batch, BASE_SEQUENCE_OFFSET, &seq.to_be_bytes());
    let crc = batch_crc(batch);
    put(batch, CRC_OFFSET, &crc.to_be_bytes());
}

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
    /// # use topiclog::record::{Batch, BatchBuilder, Compression};
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
    headers: &'a [u8],
    header_count: usize,
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

/// Zigzag encoding of a signed value (Kafka's varints and varlongs).
#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// `v` (below 2^28) as a varint packed little-endian into a word, with its length in bytes.
#[allow(clippy::inline_always)]
#[inline(always)]
fn varint_word(v: u64) -> (u64, usize) {
    debug_assert!(v < 1 << 28);
    if v < 1 << 7 {
        return (v, 1);
    }
    let b0 = (v & 0x7f) | 0x80;
    if v < 1 << 14 {
        return (b0 | (v >> 7) << 8, 2);
    }
    let b1 = ((v >> 7) & 0x7f) | 0x80;
    if v < 1 << 21 {
        return (b0 | b1 << 8 | (v >> 14) << 16, 3);
    }
    let b2 = ((v >> 14) & 0x7f) | 0x80;
    (b0 | b1 << 8 | b2 << 16 | (v >> 21) << 24, 4)
}

/// An unsigned varint of at most `max` bytes at `w[*i]`, advancing `*i`; `None` when it is
/// longer or runs past `w`.
#[allow(clippy::inline_always)]
#[inline(always)]
fn small_uvarint<const N: usize>(w: &[u8; N], i: &mut usize, max: usize) -> Option<u64> {
    let mut value = 0u64;
    for k in 0..max {
        let b = *w.get(*i + k)?;
        value |= u64::from(b & 0x7f) << (7 * k);
        if b < 0x80 {
            *i += k + 1;
            return Some(value);
        }
    }
    None
}

/// Zigzag decoding (Kafka's varints and varlongs).
#[inline]
fn unzigzag(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// A field of zigzag length `raw` (1 for null) whose bytes start at `at`, with the position
/// after it; `None` for a negative length or one running past `data`.
#[allow(clippy::inline_always)]
#[inline(always)]
fn small_field(data: &[u8], at: usize, raw: u64) -> Option<(Option<&[u8]>, usize)> {
    if raw == 1 {
        return Some((None, at));
    }
    if raw & 1 != 0 {
        return None;
    }
    let end = at.checked_add((raw >> 1) as usize)?;
    Some((Some(data.get(at..end)?), end))
}

/// A length-prefixed field (varint length, -1 for null) at `pos`.
// Left out of line by the compiler otherwise, at ~10% of a 100 B record scan (callgrind).
#[allow(clippy::inline_always)]
#[inline(always)]
fn field<'a>(data: &'a [u8], pos: &mut usize, what: &str) -> Result<Option<&'a [u8]>> {
    let len = read_varint(data, pos)?;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len)
        .map_err(|_| Error::invalid_batch(format!("{what} length {len} is negative")))?;
    let end = pos
        .checked_add(len)
        .ok_or_else(|| Error::invalid_batch(format!("{what} runs past the record")))?;
    let out = data
        .get(*pos..end)
        .ok_or_else(|| Error::invalid_batch(format!("{what} runs past the record")))?;
    *pos = end;
    Ok(Some(out))
}

/// Where a scan of a records section stands.
#[derive(Debug, Clone, Copy)]
struct CursorState {
    pos: usize,
    remaining: usize,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    failed: bool,
}

impl CursorState {
    /// The start of a scan of `header`'s batch.
    fn new(header: &BatchHeader) -> Result<CursorState> {
        let remaining = usize::try_from(header.record_count).map_err(|_| {
            Error::invalid_batch(format!("negative record count {}", header.record_count))
        })?;
        Ok(CursorState {
            pos: 0,
            remaining,
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            log_append_time: (header.timestamp_type() == TimestampType::LogAppendTime)
                .then_some(header.max_timestamp),
            failed: false,
        })
    }
}

/// Decodes records from a records section, borrowing from it.
struct Cursor<'a> {
    data: &'a [u8],
    state: CursorState,
}

impl<'a> Cursor<'a> {
    /// The next record; after the declared number of records it checks that no bytes
    /// remain, as Kafka's reader does. Ends after the first error.
    #[inline]
    fn next_record(&mut self) -> Option<Result<RecordRef<'a>>> {
        self.next_record_with(true)
    }

    /// [`Cursor::next_record`], trying [`Cursor::decode_common`] first when `fast` (a caller
    /// that already tried it passes false).
    #[inline]
    fn next_record_with(&mut self, fast: bool) -> Option<Result<RecordRef<'a>>> {
        if self.state.failed {
            return None;
        }
        if self.state.remaining == 0 {
            if self.state.pos != self.data.len() {
                self.state.failed = true;
                return Some(Err(Error::invalid_batch(format!(
                    "{} bytes remain after the declared records",
                    self.data.len().saturating_sub(self.state.pos)
                ))));
            }
            return None;
        }
        self.state.remaining -= 1;
        if fast && let Some(r) = self.decode_common() {
            return Some(Ok(r));
        }
        let r = self.decode_one();
        if r.is_err() {
            self.state.failed = true;
        }
        Some(r)
    }

    /// Decodes the next record if it has the common shape (no headers, every varint of at
    /// most three bytes, a timestamp delta of at most four, at least 16 bytes left in the
    /// section) and is well formed; otherwise returns `None` having consumed nothing, and
    /// [`Cursor::decode_one`] decodes it or reports what is wrong. The header varints are
    /// read from one 16-byte window: a single bounds check on the section instead of one per
    /// byte, and no error values built or moved on this path.
    #[allow(clippy::inline_always)] // one call site per scan loop; measured with callgrind
    #[inline(always)]
    fn decode_common(&mut self) -> Option<RecordRef<'a>> {
        let data = self.data;
        let pos = self.state.pos;
        let head: &[u8; 16] = data.get(pos..pos.checked_add(16)?)?.try_into().ok()?;
        let mut i = 0;
        let len = small_uvarint(head, &mut i, 3)?;
        if len & 1 != 0 {
            return None; // negative
        }
        let end = (pos + i).checked_add((len >> 1) as usize)?;
        i += 1; // attributes: one byte, unused by Kafka
        let ts_delta = unzigzag(small_uvarint(head, &mut i, 4)?);
        let offset_delta = unzigzag(small_uvarint(head, &mut i, 3)?);
        let key_len = small_uvarint(head, &mut i, 3)?;
        let (key, at) = small_field(data, pos + i, key_len)?;
        let value_head: &[u8; 3] = data.get(at..at.checked_add(3)?)?.try_into().ok()?;
        let mut value_at = 0;
        let value_len = small_uvarint(value_head, &mut value_at, 3)?;
        let (value, at) = small_field(data, at + value_at, value_len)?;
        // No headers (a count of 0), and the record ends where its length said.
        if *data.get(at)? != 0 || at + 1 != end {
            return None;
        }
        self.state.pos = end;
        let st = &self.state;
        Some(RecordRef {
            offset: st.base_offset.wrapping_add(offset_delta),
            timestamp: match st.log_append_time {
                Some(time) => time,
                None => st.base_timestamp.wrapping_add(ts_delta),
            },
            key,
            value,
            headers: &[],
            header_count: 0,
        })
    }

    #[allow(clippy::inline_always)] // one call site per scan loop; measured with callgrind
    #[inline(always)]
    fn decode_one(&mut self) -> Result<RecordRef<'a>> {
        let data = self.data;
        let pos = &mut self.state.pos;
        let len = read_varint(data, pos)?;
        let len = usize::try_from(len)
            .map_err(|_| Error::invalid_batch(format!("record length {len} is negative")))?;
        let start = *pos;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| Error::invalid_batch("record runs past the end of its batch"))?;
        // Attributes: one byte, unused by Kafka.
        if data.get(*pos).is_none() {
            return Err(Error::invalid_batch("record ends before its attributes"));
        }
        *pos += 1;
        let ts_delta = read_varlong(data, pos)?;
        let offset_delta = read_varint(data, pos)?;
        let key = field(data, pos, "key")?;
        let value = field(data, pos, "value")?;
        let header_count = read_varint(data, pos)?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| Error::invalid_batch("negative header count"))?;
        // Each header takes at least two bytes.
        if header_count > (end.saturating_sub(*pos)) / 2 {
            return Err(Error::invalid_batch("header count exceeds the record size"));
        }
        let headers_start = *pos;
        for _ in 0..header_count {
            let key = field(data, pos, "header key")?
                .ok_or_else(|| Error::invalid_batch("header key is null"))?;
            if std::str::from_utf8(key).is_err() {
                return Err(Error::invalid_batch("header key is not UTF-8"));
            }
            field(data, pos, "header value")?;
        }
        if *pos != end {
            return Err(Error::invalid_batch(format!(
                "record declares {len} bytes but its fields take {}",
                pos.saturating_sub(start)
            )));
        }
        let st = &self.state;
        Ok(RecordRef {
            offset: st.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: match st.log_append_time {
                Some(t) => t,
                None => st.base_timestamp.wrapping_add(ts_delta),
            },
            key,
            value,
            headers: data.get(headers_start..end).unwrap_or(&[]),
            header_count,
        })
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

/// Encodes records into one RecordBatch v2, in place, in a buffer that is reused across
/// batches: no allocation per record. Used by [`crate::PartitionHandle::append_builder`] and
/// the producer.
///
/// ```
/// use topiclog::{BatchBuilder, Compression, Batch};
/// let mut b = BatchBuilder::new(Compression::None);
/// b.push(Some(b"k"), Some(b"v"), &[], 1_700_000_000_000)?;
/// let bytes = b.finish()?.to_vec();
/// let batch = Batch::new(bytes.into())?;
/// batch.verify_crc()?;
/// assert_eq!(batch.record_count(), 1);
/// # Ok::<_, topiclog::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    /// The batch is `buf[..len]`. What lies past `len` is room already initialised, reused
    /// from batch to batch, so a record is stored with plain moves and one length update.
    buf: Vec<u8>,
    len: usize,
    scratch: Vec<u8>,
    compression: Compression,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    null_key: bool,
    /// Offset delta of the last record pushed (-1 before the first).
    last_delta: i32,
    /// Forced lastOffsetDelta (compaction keeps the original batch's).
    last_delta_override: Option<i32>,
    /// Kafka's delete horizon (attribute bit 6): becomes the base timestamp.
    delete_horizon: Option<i64>,
    finished: bool,
}

impl BatchBuilder {
    /// An empty builder that will compress with `compression`.
    pub fn new(compression: Compression) -> BatchBuilder {
        BatchBuilder {
            buf: vec![0; BATCH_HEADER_LEN],
            len: BATCH_HEADER_LEN,
            scratch: Vec::new(),
            compression,
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            null_key: false,
            last_delta: -1,
            last_delta_override: None,
            delete_horizon: None,
            finished: false,
        }
    }

    /// True when a pushed record has a null key (refused by compacted topics).
    pub fn has_null_key(&self) -> bool {
        self.null_key
    }

    /// The codec this builder compresses with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Changes the codec for the next batch; clears the builder.
    pub fn set_compression(&mut self, compression: Compression) {
        self.compression = compression;
        self.clear();
    }

    /// Marks the batch as written by an idempotent producer.
    pub fn set_producer(&mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
    }

    /// Records pushed so far.
    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// True when no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes used so far (header plus uncompressed records).
    pub fn size(&self) -> usize {
        self.len
    }

    /// Empties the builder, keeping its buffers.
    pub fn clear(&mut self) {
        // The header is written whole when the batch is sealed.
        self.len = BATCH_HEADER_LEN;
        self.count = 0;
        self.base_timestamp = -1;
        self.max_timestamp = -1;
        self.producer_id = -1;
        self.producer_epoch = -1;
        self.base_sequence = -1;
        self.null_key = false;
        self.last_delta = -1;
        self.last_delta_override = None;
        self.delete_horizon = None;
        self.finished = false;
    }

    /// Sets Kafka's delete horizon (compaction): the base timestamp holds it and attribute bit
    /// 6 is set. Call before the first push.
    pub(crate) fn set_delete_horizon(&mut self, horizon: Option<i64>) {
        self.delete_horizon = horizon;
    }

    /// Keeps an original batch's lastOffsetDelta when compaction dropped its last records.
    pub(crate) fn set_last_offset_delta(&mut self, delta: i32) {
        self.last_delta_override = Some(delta);
    }

    /// Appends one record.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] when the batch would hold more than `i32::MAX` records or bytes,
    /// or a field is longer than `i32::MAX`.
    #[allow(clippy::inline_always)] // the per-record call in producers' loops (callgrind)
    #[inline(always)]
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        timestamp: i64,
    ) -> Result<()> {
        // The common case (a record without headers after the first, small fields) is encoded
        // here without a call; everything else takes the general path.
        if self.count > 0 && !self.finished && headers.is_empty() {
            let delta = self.last_delta.wrapping_add(1);
            let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
            if self.push_packed(ts_delta, delta, key, value) {
                self.count += 1;
                self.last_delta = delta;
                self.null_key |= key.is_none();
                self.max_timestamp = self.max_timestamp.max(timestamp);
                return Ok(());
            }
        }
        let delta = if self.finished {
            0
        } else {
            self.last_delta.saturating_add(1)
        };
        self.push_at(delta, key, value, headers, timestamp)
    }

    /// Appends one record at an explicit offset delta, above the previous one (compaction
    /// keeps the offsets of the records it retains, leaving gaps).
    pub(crate) fn push_at(
        &mut self,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        timestamp: i64,
    ) -> Result<()> {
        if self.finished {
            // A finished batch is compressed and checksummed; start a new one.
            self.clear();
        }
        if self.count == i32::MAX {
            return Err(Error::invalid_batch(
                "a batch holds at most i32::MAX records",
            ));
        }
        if offset_delta <= self.last_delta && self.count > 0 {
            return Err(Error::invalid_batch("offset deltas must increase"));
        }
        if self.count == 0 {
            self.base_timestamp = self.delete_horizon.unwrap_or(timestamp);
        }
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        if headers.is_empty() && self.push_packed(ts_delta, offset_delta, key, value) {
            self.count += 1;
            self.last_delta = offset_delta;
            self.null_key |= key.is_none();
            self.max_timestamp = if self.count == 1 {
                timestamp
            } else {
                self.max_timestamp.max(timestamp)
            };
            return Ok(());
        }
        let field_len = |b: Option<&[u8]>| -> Result<(i32, usize)> {
            match b {
                None => Ok((-1, 1)),
                Some(b) => {
                    let n = i32::try_from(b.len())
                        .map_err(|_| Error::invalid_batch("field longer than i32::MAX"))?;
                    Ok((n, varint_len(n) + b.len()))
                }
            }
        };
        let (key_len, key_size) = field_len(key)?;
        let (value_len, value_size) = field_len(value)?;
        let mut headers_size = varint_len(headers.len() as i32);
        for h in headers {
            headers_size += field_len(Some(h.key.as_bytes()))?.1;
            headers_size += field_len(h.value.as_deref())?.1;
        }
        let body = 1
            + varlong_len(ts_delta)
            + varint_len(offset_delta)
            + key_size
            + value_size
            + headers_size;
        let body_i32 =
            i32::try_from(body).map_err(|_| Error::invalid_batch("record larger than i32::MAX"))?;
        if self.len + body + 5 > i32::MAX as usize {
            return Err(Error::invalid_batch("batch larger than i32::MAX bytes"));
        }
        // The varints and headers are encoded in `scratch` (free until the batch is sealed);
        // key and value go straight to the batch.
        let mut enc = std::mem::take(&mut self.scratch);
        enc.clear();
        put_varint(&mut enc, body_i32);
        enc.push(0); // record attributes: unused
        put_varlong(&mut enc, ts_delta);
        put_varint(&mut enc, offset_delta);
        put_varint(&mut enc, key_len);
        self.append_bytes(&enc);
        if let Some(k) = key {
            self.append_bytes(k);
        }
        enc.clear();
        put_varint(&mut enc, value_len);
        self.append_bytes(&enc);
        if let Some(v) = value {
            self.append_bytes(v);
        }
        enc.clear();
        put_varint(&mut enc, headers.len() as i32);
        for h in headers {
            put_varint(&mut enc, h.key.len() as i32);
            enc.extend_from_slice(h.key.as_bytes());
            match &h.value {
                None => put_varint(&mut enc, -1),
                Some(v) => {
                    put_varint(&mut enc, v.len() as i32);
                    enc.extend_from_slice(v);
                }
            }
        }
        self.append_bytes(&enc);
        self.scratch = enc;
        self.count += 1;
        self.last_delta = offset_delta;
        self.null_key |= key.is_none();
        self.max_timestamp = if self.count == 1 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        Ok(())
    }

    /// Writes a record without headers whose fields are small (the common shape: key under
    /// 8 KiB, value under 1 MiB, offset delta under 2^20, timestamp delta within 2^27 ms) with
    /// its varints packed into machine words and stored in fixed-size moves, instead of a
    /// `Vec::push` per byte. Returns false, having written nothing, for any other record.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    fn push_packed(
        &mut self,
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> bool {
        let key_len = key.map_or(0, <[u8]>::len);
        let value_len = value.map_or(0, <[u8]>::len);
        let ts_zz = zigzag(ts_delta);
        if key_len >= 1 << 13
            || value_len >= 1 << 19
            || !(0..1 << 20).contains(&offset_delta)
            || ts_zz >= 1 << 28
        {
            return false;
        }
        // Zigzag of a length, -1 (null) being 1.
        let len_zz = |b: Option<&[u8]>, len: usize| if b.is_some() { 2 * len as u64 } else { 1 };
        let (ts, ts_n) = varint_word(ts_zz);
        let (off, off_n) = varint_word(2 * offset_delta as u64);
        let (kl, kl_n) = varint_word(len_zz(key, key_len));
        let (vl, vl_n) = varint_word(len_zz(value, value_len));
        // attributes + deltas + key length and key + value length and value + header count:
        // under 2^20, so its varint takes at most 3 bytes.
        let body = 1 + ts_n + off_n + kl_n + key_len + vl_n + value_len + 1;
        let (bl, bl_n) = varint_word(2 * body as u64);
        let total = bl_n + body;
        if self.len + total > i32::MAX as usize {
            return false; // the general path reports it
        }
        // The packed words are stored whole, up to 7 bytes past a field's end (the next field
        // overwrites them), so the room asked for is 8 bytes more than the record.
        let end = self.len + total + 8;
        if self.buf.len() < end {
            self.grow(end);
        }
        let Some(out) = self.buf.get_mut(self.len..end) else {
            return false;
        };
        // Length, attributes (0) and timestamp delta: at most 8 bytes.
        let mut at = 0;
        put(out, at, &(bl | ts << (8 * (bl_n + 1))).to_le_bytes());
        // Offset delta and key length: at most 5 bytes.
        at += bl_n + 1 + ts_n;
        put(out, at, &(off | kl << (8 * off_n)).to_le_bytes());
        at += off_n + kl_n;
        if let Some(k) = key {
            put(out, at, k);
        }
        at += key_len;
        put(out, at, &vl.to_le_bytes());
        at += vl_n;
        if let Some(v) = value {
            put(out, at, v);
        }
        at += value_len;
        put(out, at, &[0]); // no headers
        self.len += total;
        true
    }

    /// Appends `bytes` to the batch.
    fn append_bytes(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if self.buf.len() < end {
            self.grow(end);
        }
        put(&mut self.buf, self.len, bytes);
        self.len = end;
    }

    /// Grows the room to at least `end` bytes, at least doubling it.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, end: usize) {
        let to = end.max(self.buf.len() * 2).max(4096);
        self.buf.resize(to, 0);
    }

    /// Appends a [`Record`], using `default_timestamp` when it has none.
    ///
    /// # Errors
    /// As [`BatchBuilder::push`].
    pub fn push_record(&mut self, record: &Record, default_timestamp: i64) -> Result<()> {
        self.push(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            record.timestamp.unwrap_or(default_timestamp),
        )
    }

    /// Completes the batch (header, compression, CRC) and returns its bytes, base offset 0.
    /// Pushing after `finish` starts a new batch.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] for an empty builder; compression errors.
    pub fn finish(&mut self) -> Result<&mut [u8]> {
        if self.finished {
            return Ok(self.batch_mut());
        }
        if self.count == 0 {
            return Err(Error::invalid_batch("a batch needs at least one record"));
        }
        self.seal()
    }

    fn seal(&mut self) -> Result<&mut [u8]> {
        if self.compression != Compression::None {
            let mut packed = std::mem::take(&mut self.scratch);
            packed.clear();
            let records = self.buf.get(BATCH_HEADER_LEN..self.len).unwrap_or(&[]);
            let r = codec::compress(self.compression, records, &mut packed);
            if r.is_ok() {
                self.len = BATCH_HEADER_LEN;
                self.append_bytes(&packed);
            }
            self.scratch = packed;
            r?;
        }
        let len = i32::try_from(self.len - LOG_OVERHEAD)
            .map_err(|_| Error::invalid_batch("batch larger than i32::MAX bytes"))?;
        let mut attributes = i16::from(self.compression.id());
        if let Some(h) = self.delete_horizon {
            attributes |= DELETE_HORIZON_BIT;
            if self.count == 0 {
                self.base_timestamp = h;
            }
        }
        let last_delta = self
            .last_delta_override
            .unwrap_or(self.last_delta)
            .max(self.last_delta)
            .max(0);
        let h = self.buf.get_mut(..self.len).unwrap_or_default();
        put(h, 0, &0i64.to_be_bytes());
        put(h, LENGTH_OFFSET, &len.to_be_bytes());
        put(h, LEADER_EPOCH_OFFSET, &(-1i32).to_be_bytes());
        put(h, MAGIC_OFFSET, &[MAGIC_V2 as u8]);
        put(h, ATTRIBUTES_OFFSET, &attributes.to_be_bytes());
        put(h, LAST_OFFSET_DELTA_OFFSET, &last_delta.to_be_bytes());
        put(h, BASE_TIMESTAMP_OFFSET, &self.base_timestamp.to_be_bytes());
        put(h, MAX_TIMESTAMP_OFFSET, &self.max_timestamp.to_be_bytes());
        put(h, PRODUCER_ID_OFFSET, &self.producer_id.to_be_bytes());
        put(h, PRODUCER_EPOCH_OFFSET, &self.producer_epoch.to_be_bytes());
        put(h, BASE_SEQUENCE_OFFSET, &self.base_sequence.to_be_bytes());
        put(h, RECORD_COUNT_OFFSET, &self.count.to_be_bytes());
        let crc = batch_crc(h);
        put(h, CRC_OFFSET, &crc.to_be_bytes());
        self.finished = true;
        Ok(self.batch_mut())
    }

    fn batch_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
