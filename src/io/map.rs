//! Memory maps of segment and index files: with `ops::fallocate`, the only `unsafe` code in
//! the crate. Readers get read-only maps; the one writable kind, [`WriteMap`], is the writer's
//! store path into an active segment's preallocated range (topic `preallocate=true`).
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
        // Published bytes are never written again: write(2) appends past them, and a
        // `WriteMap` stores only at or past the published end (see `WriteMap::store`). They
        // are never truncated in place, so the bytes cannot change or disappear while this
        // borrow (or a `Bytes` owning this mapping) lives.
        Some(unsafe { std::slice::from_raw_parts(self.raw.as_ptr().add(pos), len) })
    }

    /// The whole mapping as one `Bytes` that keeps it alive: views of it are
    /// [`Bytes::slice`]s, which count references instead of allocating an owner each.
    pub(crate) fn whole(self: &Arc<Self>) -> Bytes {
        let len = self.capacity();
        Bytes::from_owner(MapSlice {
            map: Arc::clone(self),
            pos: 0,
            len,
        })
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

/// A writable shared mapping of an active segment's `.log`, through which the writer stores
/// appended batches instead of calling write(2) for each: the pages are the file's page
/// cache pages, so readers' read-only maps of the file, `fdatasync` and the kernel's
/// writeback see the stores as they see written bytes.
///
/// Only ever stored into at positions the caller has allocated with `fallocate` (see
/// [`WriteMap::store`]), so no store can meet a hole or a full disk.
#[derive(Debug)]
pub(crate) struct WriteMap {
    raw: MmapRaw,
    len: usize,
}

impl WriteMap {
    /// Maps `len` bytes of `file` (opened for reading and writing) shared and writable. The
    /// file may be shorter: the caller stores only below what it has allocated.
    pub(crate) fn map(file: &File, len: usize) -> io::Result<WriteMap> {
        let len = len.max(1);
        let raw = MmapOptions::new().len(len).map_raw(file)?;
        Ok(WriteMap { raw, len })
    }

    /// Bytes the mapping covers.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Copies `data` to `pos`. Returns false, storing nothing, when the range passes the
    /// mapping.
    ///
    /// The caller's contract, which the writer keeps: `pos + data.len()` is at most the
    /// length the file has been extended to with `fallocate`, and `pos` is at or past the
    /// segment's published size; the caller holds the partition's writer lock.
    pub(crate) fn store(&self, pos: usize, data: &[u8]) -> bool {
        let Some(end) = pos.checked_add(data.len()) else {
            return false;
        };
        if end > self.len {
            return false;
        }
        // SAFETY: the argument that makes a writable mapping safe here, in full:
        // - bounds: `pos..end` lies inside the mapping (checked above);
        // - no SIGBUS: the caller only stores below the length it allocated with `fallocate`
        //   (mode 0: blocks reserved and the file size extended), so every page stored to is
        //   backed by allocated blocks of the file: a store meets neither a hole nor a full
        //   disk, and the file is never truncated below an allocated, unpublished byte while
        //   this mapping may store there (the writer drops the mapping before it trims);
        // - no data race: the single writer stores under the partition's writer lock, and
        //   only at or past the published size; readers slice their own maps only below the
        //   published size, which the writer stores with `Release` after these bytes and
        //   readers load with `Acquire`, so no byte is read while it is written and every
        //   byte read was written before its publication;
        // - aliasing: no `&[u8]` or `&mut [u8]` is made of the destination, only this raw
        //   copy, and `data` cannot overlap it (it is the caller's own buffer);
        // - writeback errors: a page the kernel fails to write back is reported by the next
        //   `fdatasync` of the file, which poisons the partition as for written bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.raw.as_mut_ptr().add(pos),
                data.len(),
            );
        }
        true
    }
}

/// Asks the CPU to bring the cache lines of `b` in, without waiting for them: a reader about
/// to visit scattered places in a mapping lets their misses overlap.
#[inline]
pub(crate) fn prefetch(b: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in b.chunks(64) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        #[allow(unsafe_code)]
        // SAFETY: a prefetch is a hint: it reads and writes nothing and cannot fault, whatever
        // the address; SSE, its feature, is part of every x86_64 CPU.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = b;
}
