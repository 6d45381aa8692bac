//! [`BatchBuilder`]: encodes records into one RecordBatch v2 in place, in a reused buffer.

use super::header::{
    ATTRIBUTES_OFFSET, BASE_SEQUENCE_OFFSET, BASE_TIMESTAMP_OFFSET, BATCH_HEADER_LEN, CONTROL_BIT,
    CRC_OFFSET, DELETE_HORIZON_BIT, LAST_OFFSET_DELTA_OFFSET, LEADER_EPOCH_OFFSET, LENGTH_OFFSET,
    LOG_OVERHEAD, MAGIC_OFFSET, MAGIC_V2, MAX_TIMESTAMP_OFFSET, PRODUCER_EPOCH_OFFSET,
    PRODUCER_ID_OFFSET, RECORD_COUNT_OFFSET, TRANSACTIONAL_BIT, batch_crc, put,
};
use crate::error::{Error, Result};
use crate::record::codec::{self, Compression};
use crate::record::record::{Header, Record};
use crate::record::varint::{
    put_varint, put_varlong, varint_len, varint_word, varlong_len, zigzag,
};

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
    /// Finished without its CRC ([`BatchBuilder::finish_unchecked`]).
    crc_pending: bool,
    /// Attribute bits set by the caller: 4 (written inside a transaction) and 5 (a control
    /// batch, not application data).
    flags: i16,
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
            crc_pending: false,
            flags: 0,
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

    /// Marks the batch as written inside a transaction (attribute bit 4), as a transactional
    /// producer's batches are. Kept for the next batches until set again.
    pub fn set_transactional(&mut self, transactional: bool) {
        self.set_flag(TRANSACTIONAL_BIT, transactional);
    }

    /// Marks the batch as a control batch (attribute bit 5): its one record is a
    /// [`ControlRecord`](crate::ControlRecord), such as a transaction's end marker, which
    /// readers never hand to applications. Kept for the next batches until set again.
    /// [`EndTxnMarker::batch`](crate::EndTxnMarker::batch) builds a whole marker batch.
    pub fn set_control(&mut self, control: bool) {
        self.set_flag(CONTROL_BIT, control);
    }

    fn set_flag(&mut self, bit: i16, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
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
        self.crc_pending = false;
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
            if self.crc_pending {
                let h = self.batch_mut();
                let crc = batch_crc(h);
                put(h, CRC_OFFSET, &crc.to_be_bytes());
                self.crc_pending = false;
            }
            return Ok(self.batch_mut());
        }
        if self.count == 0 {
            return Err(Error::invalid_batch("a batch needs at least one record"));
        }
        self.seal(true)
    }

    /// [`BatchBuilder::finish`] without the CRC, for a writer that stamps a field inside it
    /// (the producer's base sequence) and computes it then: once per batch, not twice. A later
    /// `finish` adds it.
    pub(crate) fn finish_unchecked(&mut self) -> Result<&mut [u8]> {
        if self.finished {
            return Ok(self.batch_mut());
        }
        if self.count == 0 {
            return Err(Error::invalid_batch("a batch needs at least one record"));
        }
        self.seal(false)
    }

    fn seal(&mut self, crc: bool) -> Result<&mut [u8]> {
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
        let mut attributes = i16::from(self.compression.id()) | self.flags;
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
        if crc {
            let crc = batch_crc(h);
            put(h, CRC_OFFSET, &crc.to_be_bytes());
        }
        self.crc_pending = !crc;
        self.finished = true;
        Ok(self.batch_mut())
    }

    fn batch_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(..self.len).unwrap_or_default()
    }
}
