//! Read-only memory maps of segment and index files: the only `unsafe` code in the crate.
//!
//! A file is mapped once at a fixed capacity that may exceed its current length (Linux lets a
//! mapping extend past the end of the file; pages appear as the file grows). Readers only
//! touch bytes below a length the writer has published, which the file always holds:
//! published bytes are never cut in place (truncation copies the prefix to a new file and
//! renames it; only never-published bytes are cut), and deleted files stay valid while mapped.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{MmapOptions, MmapRaw};

/// A read-only mapping of `capacity` bytes of a file.
#[derive(Debug)]
pub(crate) struct Mapped {
    raw: MmapRaw,
    capacity: usize,
}

impl Mapped {
    /// Maps `capacity` bytes of `file` (at least one page is mapped even for 0).
    pub(crate) fn map(file: &File, capacity: usize) -> io::Result<Arc<Mapped>> {
        let len = capacity.max(1);
        let raw = MmapOptions::new()
            .len(len)
            .map_raw_read_only(file)
            .map_err(|e| {
                // Mapping a directory fails with ENODEV, "No such device": say what is wrong.
                if file.metadata().is_ok_and(|m| m.is_dir()) {
                    io::Error::new(io::ErrorKind::IsADirectory, "is a directory, not a file")
                } else {
                    e
                }
            })?;
        Ok(Arc::new(Mapped { raw, capacity }))
    }

    /// Tells the kernel how the mapping will be read: `sparse` (a few scattered headers, as a
    /// clean open reads) maps one page per fault instead of a 64 KiB window around it, which
    /// also makes the unmapping cheaper; otherwise the default read-around. Advice only: a
    /// refusal changes nothing, so it is ignored.
    pub(crate) fn expect_sparse_reads(&self, sparse: bool) {
        let advice = if sparse {
            memmap2::Advice::Random
        } else {
            memmap2::Advice::Normal
        };
        let _ = self.raw.advise(advice);
    }

    /// Bytes the mapping covers.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The bytes `pos..pos + len`, or `None` past the capacity.
    ///
    /// Callers pass only ranges below the file's published length.
    pub(crate) fn slice(&self, pos: usize, len: usize) -> Option<&[u8]> {
        let end = pos.checked_add(len)?;
        if end > self.capacity {
            return None;
        }
        // SAFETY: `pos..end` lies inside the mapping (checked above) and, by the callers'
        // contract, below the file's published length, so the pages are backed by file data.
        // No one writes through a mapping (index and log bytes are appended with write(2)),
        // and published bytes are never truncated in place, so the bytes cannot change or
        // disappear while this borrow (or a `Bytes` owning this mapping) lives.
        Some(unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(pos), len) })
    }

    /// A `Bytes` view of `pos..pos + len` that keeps the mapping alive: no copy.
    pub(crate) fn bytes(self: &Arc<Self>, pos: usize, len: usize) -> Option<Bytes> {
        self.slice(pos, len)?;
        Some(Bytes::from_owner(MapSlice {
            map: Arc::clone(self),
            pos,
            len,
        }))
    }
}

// SAFETY: the mapping is read-only and never mutated through; sharing its address across
// threads is as safe as sharing a `&[u8]`.
unsafe impl Send for Mapped {}
// SAFETY: as above.
unsafe impl Sync for Mapped {}

/// Owner of a `Bytes` view into a mapping.
struct MapSlice {
    map: Arc<Mapped>,
    pos: usize,
    len: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        // The range was checked when the view was made.
        self.map.slice(self.pos, self.len).unwrap_or(&[])
    }
}
