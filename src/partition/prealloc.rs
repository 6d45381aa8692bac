//! The active segment's preallocated tail (topic `preallocate=true`): the `.log` is extended
//! ahead of its data with `fallocate`, and appends are stored into a shared mapping of that
//! range instead of a `write(2)` each (batches of a page or more are written at their
//! position instead: see [`STORE_MAX`]).
//!
//! Why: a single small append through `write(2)` costs a system call and the file system's
//! size update per append; a store into a mapped, already allocated page costs a `memcpy`
//! (and a page fault once per page). The extension is what keeps the mapping safe (see
//! `io::map::WriteMap::store`): every page stored to has its blocks reserved, so a full disk
//! fails the `fallocate` of an append, as a typed error, never a store with `SIGBUS`.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::io::map::WriteMap;
use crate::io::ops;

/// At most this much is allocated ahead of the data of one active segment. Only writers whose
/// descriptors are open hold a reserved range (the descriptor budget's eviction cuts it), so
/// the bound is this times the open writers, not the partitions: 21 writers under
/// `max_open_files(64)`, however many partitions.
pub(crate) const MAX_AHEAD: u64 = 16 << 20;

/// The first extension, and the step a small segment grows by: the allocation ahead of the
/// data is the data's own size, between this and [`MAX_AHEAD`], so a small partition
/// reserves little while a busy one calls `fallocate` once per 16 MiB.
pub(crate) const MIN_AHEAD: u64 = 64 << 10;

/// Extension and map sizes are whole pages.
const PAGE: u64 = 4096;

/// Batches of at least this many bytes are written with `pwrite` at their position in the
/// allocated range instead of stored through the map. A store's cost is the page faults of
/// the pages it touches (the first store into a fresh page of a shared file map traps, the
/// kernel zero-fills the page and marks it dirty): about 4 µs a page on the VM of
/// `BENCHMARKS.md`, against about 1.5 µs for a system call that copies into the page cache
/// with no fault. Batches of 1000 records of 100 B (118 KiB) ran at 5.0 M records/s stored
/// and 13.6 M written; single records of 100 B and 1 KiB ran 4x and 1.8x faster stored.
const STORE_MAX: usize = PAGE as usize;

/// The writer's view of a preallocated `.log`: how far the file was extended, and its mapping.
#[derive(Debug)]
pub(crate) struct Tail {
    /// The file's length: the data plus the allocated, never-written range after it.
    pub(crate) allocated: u64,
    /// Mapped on the first store, dropped with the descriptors and before any trim.
    map: Option<WriteMap>,
}

/// Why storing a group failed.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// The file system cannot preallocate: nothing was changed; use the write path.
    Unsupported,
    /// `fallocate` (a full disk: `ENOSPC`), the mapping or a store failed. Bytes past the
    /// published end may have been stored: the caller zeroes them.
    Failed(io::Error),
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(PAGE).saturating_mul(PAGE)
}

impl Tail {
    /// The tail of a `.log` just opened at length `len`.
    pub(crate) fn opened(len: u64) -> Tail {
        Tail {
            allocated: len,
            map: None,
        }
    }

    /// Stores `batches` one after the other from `start` (the published size), extending the
    /// file first when they pass the allocated length. `segment_bytes` bounds the extension.
    pub(crate) fn store<'a>(
        &mut self,
        log: &File,
        path: &Path,
        start: u64,
        segment_bytes: u64,
        batches: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> Result<(), StoreError> {
        let total: u64 = batches.clone().map(|b| b.len() as u64).sum();
        let need = start + total;
        if need > self.allocated {
            // Ahead by the data's own size, within [MIN_AHEAD, MAX_AHEAD], and not past the
            // segment's roll size unless this group alone needs more.
            let ahead = need.clamp(MIN_AHEAD, MAX_AHEAD);
            let target = round_up(need + ahead).min(segment_bytes.max(need));
            match ops::allocate(log, path, target) {
                Ok(()) => self.allocated = target,
                Err(e) if ops::is_unsupported(&e) && start == self.allocated => {
                    return Err(StoreError::Unsupported);
                }
                Err(e) => return Err(StoreError::Failed(e)),
            }
        }
        let small = batches.clone().any(|b| b.len() < STORE_MAX);
        let map_len = segment_bytes.max(self.allocated);
        if small && self.map.as_ref().is_none_or(|m| (m.len() as u64) < need) {
            // Mapped once at the segment's roll size (address space only; pages appear as
            // the file grows), again only for a batch past it.
            self.map = None;
            let len = usize::try_from(round_up(map_len)).map_err(|_| {
                StoreError::Failed(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "segment larger than the address space",
                ))
            })?;
            self.map = Some(WriteMap::map(log, len).map_err(StoreError::Failed)?);
        }
        let mut pos = start;
        for b in batches {
            match &self.map {
                Some(map) if b.len() < STORE_MAX => ops::store(map, log, path, pos, b),
                _ => ops::write_all_at(log, path, pos, b),
            }
            .map_err(StoreError::Failed)?;
            pos += b.len() as u64;
        }
        Ok(())
    }

    /// Zeroes `from..to` after a failed group, so no whole batch that was refused can be found
    /// after the published end by a recovery. Stores below the allocated length only.
    pub(crate) fn zero(&self, log: &File, path: &Path, from: u64, to: u64) -> io::Result<()> {
        let to = to.min(self.allocated);
        if to <= from {
            return Ok(());
        }
        let zeros = vec![0u8; (to - from) as usize];
        ops::write_all_at(log, path, from, &zeros)
    }

    /// Cuts the never-written range after `size`: drops the mapping first, so nothing can
    /// store into what is cut. Readers' maps slice below the published size, which is `size`.
    pub(crate) fn trim(&mut self, log: &File, path: &Path, size: u64) -> io::Result<bool> {
        self.map = None;
        if self.allocated <= size {
            return Ok(false);
        }
        ops::set_len(log, path, size)?;
        self.allocated = size;
        Ok(true)
    }
}

/// Cuts a `.log` whose descriptor the writer gave up back to `size` when it is longer (the
/// allocated range of a preallocated segment), and with `sync` makes the cut durable.
/// Returns whether it cut.
pub(crate) fn trim_path(path: &Path, size: u64, sync: bool) -> io::Result<bool> {
    let f = ops::open_write(path)?;
    if f.metadata()?.len() <= size {
        return Ok(false);
    }
    ops::set_len(&f, path, size)?;
    if sync {
        ops::sync_data(&f, path)?;
    }
    Ok(true)
}
