//! Kafka's transaction index (`.txnindex`): one 34-byte entry per aborted transaction whose
//! ABORT marker lies in the segment (version i16 = 0, producer id i64, first offset i64, last
//! offset i64, last stable offset i64, big-endian). A segment without an aborted transaction
//! has no file. The index is derived data: recovery rebuilds it from the batches.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::layout::{FileKind, file_name};

/// Bytes of one entry.
pub(crate) const ENTRY: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction of one producer on one partition: its records lie in
/// `first_offset..=last_offset` (the ABORT marker is at `last_offset`) and a `read_committed`
/// reader skips that producer's batches there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AbortedTxn {
    /// The producer that aborted.
    pub producer_id: i64,
    /// The transaction's first offset on this partition.
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset once the abort completed.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub(crate) fn new(
        producer_id: i64,
        first_offset: i64,
        last_offset: i64,
        last_stable_offset: i64,
    ) -> AbortedTxn {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset,
        }
    }

    /// The entry's 34 bytes.
    pub fn encode(&self) -> [u8; ENTRY] {
        let mut out = [0u8; ENTRY];
        let fields = VERSION
            .to_be_bytes()
            .into_iter()
            .chain(self.producer_id.to_be_bytes())
            .chain(self.first_offset.to_be_bytes())
            .chain(self.last_offset.to_be_bytes())
            .chain(self.last_stable_offset.to_be_bytes());
        for (o, b) in out.iter_mut().zip(fields) {
            *o = b;
        }
        out
    }

    /// An entry from its bytes; `None` for a short slice or another version.
    pub fn decode(bytes: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| -> Option<i64> {
            Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let version = i16::from_be_bytes(bytes.get(..2)?.try_into().ok()?);
        if version != VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

/// The `.txnindex` path of the segment at `base`.
pub(crate) fn path(dir: &Path, base: i64) -> PathBuf {
    dir.join(file_name(base, FileKind::TxnIndex))
}

/// What a segment's `.txnindex` holds.
#[derive(Debug)]
pub(crate) enum Loaded {
    /// No file: no aborted transaction ends in the segment (or the file was lost).
    Absent,
    /// Every entry whole and within the segment's offsets.
    Entries(Vec<AbortedTxn>),
    /// Torn or not ours: rebuild it from the batches.
    Damaged,
}

/// Reads the `.txnindex` of the segment whose markers lie in `base..end`.
pub(crate) fn load(dir: &Path, base: i64, end: i64) -> Loaded {
    let p = path(dir, base);
    let bytes = match crate::io::ops::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Absent,
        Err(_) => return Loaded::Damaged,
    };
    if bytes.len() % ENTRY != 0 {
        return Loaded::Damaged;
    }
    let mut out = Vec::with_capacity(bytes.len() / ENTRY);
    for e in bytes.chunks_exact(ENTRY) {
        match AbortedTxn::decode(e) {
            Some(t)
                if t.producer_id >= 0
                    && t.first_offset <= t.last_offset
                    && t.last_offset >= base
                    && t.last_offset < end
                    && out
                        .last()
                        .is_none_or(|p: &AbortedTxn| p.last_offset < t.last_offset) =>
            {
                out.push(t);
            }
            _ => return Loaded::Damaged,
        }
    }
    Loaded::Entries(out)
}

/// Appends entries to the segment's index (creating it), synced when `sync`.
pub(crate) fn append(dir: &Path, base: i64, entries: &[AbortedTxn], sync: bool) -> Result<()> {
    let p = path(dir, base);
    let f = crate::io::open_append(&p)?;
    let bytes: Vec<u8> = entries.iter().flat_map(AbortedTxn::encode).collect();
    crate::io::ops::write_all(&f, &p, &bytes).at(&p)?;
    if sync {
        crate::io::ops::sync_data(&f, &p).at(&p)?;
    }
    Ok(())
}

/// Replaces the segment's index with exactly `entries` (none: no file), atomically.
pub(crate) fn rewrite(dir: &Path, base: i64, entries: &[AbortedTxn]) -> Result<()> {
    let p = path(dir, base);
    if entries.is_empty() {
        return match crate::io::ops::remove_file(&p) {
            Ok(()) => crate::io::sync_dir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at(&p),
        };
    }
    let bytes: Vec<u8> = entries.iter().flat_map(AbortedTxn::encode).collect();
    crate::io::write_atomic(&p, &bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_kafkas_34_bytes() {
        let t = AbortedTxn::new(0x0102, 10, 20, 21);
        let b = t.encode();
        assert_eq!(&b[..2], &[0, 0]);
        assert_eq!(&b[2..10], &0x0102i64.to_be_bytes());
        assert_eq!(&b[10..18], &10i64.to_be_bytes());
        assert_eq!(&b[18..26], &20i64.to_be_bytes());
        assert_eq!(&b[26..34], &21i64.to_be_bytes());
        assert_eq!(AbortedTxn::decode(&b), Some(t));
        assert_eq!(AbortedTxn::decode(&b[..33]), None);
    }

    #[test]
    fn a_torn_or_foreign_index_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path(), 0, 100), Loaded::Absent));
        append(dir.path(), 0, &[AbortedTxn::new(1, 3, 9, 10)], false).unwrap();
        assert!(matches!(load(dir.path(), 0, 100), Loaded::Entries(e) if e.len() == 1));
        // An entry past the segment's end is not this segment's.
        assert!(matches!(load(dir.path(), 0, 9), Loaded::Damaged));
        let p = path(dir.path(), 0);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.push(0);
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(load(dir.path(), 0, 100), Loaded::Damaged));
        rewrite(dir.path(), 0, &[]).unwrap();
        assert!(!p.exists());
    }
}
