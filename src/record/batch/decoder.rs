//! The record decoder: walks a records section record by record, borrowing from it.

use super::header::{BatchHeader, TimestampType};
use super::view::RecordRef;
use crate::error::{Error, Result};
use crate::record::varint::{read_varint, read_varlong, small_field, small_uvarint, unzigzag};

/// A length-prefixed field (varint length, -1 for null) at `pos`.
// Left out of line by the compiler otherwise, at ~10% of a 100 B record scan (callgrind).
#[allow(clippy::inline_always)]
#[inline(always)]
pub(super) fn field<'a>(data: &'a [u8], pos: &mut usize, what: &str) -> Result<Option<&'a [u8]>> {
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
pub(super) struct CursorState {
    pub(super) pos: usize,
    pub(super) remaining: usize,
    pub(super) base_offset: i64,
    pub(super) base_timestamp: i64,
    pub(super) log_append_time: Option<i64>,
    pub(super) failed: bool,
}

impl CursorState {
    /// The start of a scan of `header`'s batch.
    #[inline]
    pub(super) fn new(header: &BatchHeader) -> Result<CursorState> {
        let Ok(remaining) = usize::try_from(header.record_count) else {
            return Err(negative_count(header.record_count));
        };
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

/// The error for a batch that declares fewer than no records.
#[cold]
fn negative_count(count: i32) -> Error {
    Error::invalid_batch(format!("negative record count {count}"))
}

/// Decodes records from a records section, borrowing from it.
#[derive(Debug, Clone)]
pub(super) struct Cursor<'a> {
    pub(super) data: &'a [u8],
    pub(super) state: CursorState,
}

impl<'a> Cursor<'a> {
    /// The next record; after the declared number of records it checks that no bytes
    /// remain, as Kafka's reader does. Ends after the first error.
    #[inline]
    pub(super) fn next_record(&mut self) -> Option<Result<RecordRef<'a>>> {
        self.next_record_with(true)
    }

    /// [`Cursor::next_record`], trying [`Cursor::decode_common`] first when `fast` (a caller
    /// that already tried it passes false).
    // Inlined into the record iterators' `next`, so the record's fields stay in registers
    // (callgrind: the out-of-line call cost the iterators 2x the callback scan's time).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub(super) fn next_record_with(&mut self, fast: bool) -> Option<Result<RecordRef<'a>>> {
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
    pub(super) fn decode_common(&mut self) -> Option<RecordRef<'a>> {
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
    pub(super) fn decode_one(&mut self) -> Result<RecordRef<'a>> {
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
