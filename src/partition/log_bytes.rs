//! How recovery reads a segment's log: through the mapping of the whole file, or with
//! `pread` of the few headers a trusted sealed segment's check needs.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// A segment's log as recovery reads it: the mapping of the whole file, or, for a sealed
/// segment that a clean open checks by a few headers, those headers read with `pread`.
/// Touching three scattered pages of a mapped 256 MiB file and unmapping it took about 40 µs
/// on a VM (page tables for each page, then their teardown), most of what each sealed segment
/// added to a clean open; the `pread`s take a few µs.
pub(super) trait LogBytes {
    /// The file's length.
    fn len(&self) -> u64;
    /// `len` bytes at `pos`; `None` past the end (or when the read fails).
    fn bytes(&self, pos: u64, len: usize) -> Option<Cow<'_, [u8]>>;
}

impl LogBytes for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn bytes(&self, pos: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let from = usize::try_from(pos).ok()?;
        self.get(from..from.checked_add(len)?).map(Cow::Borrowed)
    }
}

/// A log file read with `pread` (see [`LogBytes`]).
pub(super) struct PreadLog {
    pub(super) file: File,
    pub(super) len: u64,
}

// These reads bypass `io::ops` (the simulated disk of the power-loss tests sees only file
// mutations; segment data is read through maps there too), and any failure only sends the
// segment to the mapped path.
impl LogBytes for PreadLog {
    fn len(&self) -> u64 {
        self.len
    }

    fn bytes(&self, pos: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        if pos.checked_add(len as u64)? > self.len {
            return None;
        }
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, pos).ok()?;
        Some(Cow::Owned(buf))
    }
}
