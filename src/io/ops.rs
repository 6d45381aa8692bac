//! The engine's file mutations, in one place: create, write, truncate, sync, rename, remove,
//! directory sync, and the small whole-file reads of recovery and checkpoints.
//!
//! Each function is the plain system call. With the `sim` feature, a test may install a
//! `SimFs` (`io/sim.rs`) over a directory; calls on paths under it then go through the
//! simulation instead, which records what would survive a power loss and can inject faults.
//! Static dispatch rather than a `dyn` file-system handle threaded through every partition:
//! without the feature the check does not exist (the append path makes the same system calls
//! as before; `benches/append.rs` shows no change beyond noise), and with it and no simulation
//! installed it costs one relaxed atomic load per call.
//!
//! Reads of segment data and indexes go through memory maps and are not routed here.

// Without the simulation, the paths (and open flags) are only needed for error context.
#![cfg_attr(not(feature = "sim"), allow(unused_variables))]

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::Path;

#[cfg(feature = "sim")]
use crate::sim;

/// Runs `$sim` with the simulation owning `$path`, if one is installed.
macro_rules! simulated {
    ($path:expr, |$s:ident| $body:expr) => {
        #[cfg(feature = "sim")]
        if let Some($s) = sim::owner($path) {
            return $body;
        }
    };
}

/// `writev` until every buffer is written (`O_APPEND` files: at the end).
pub(crate) fn writev_all(file: &File, path: &Path, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    simulated!(path, |s| s.writev_all(file, path, bufs));
    let mut bufs = bufs;
    // Drops leading empty buffers: writing nothing is not a short write.
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        // One buffer (a single uncombined append): `write`, a little cheaper than `writev`.
        let written = match &*bufs {
            [one] => (&*file).write(one),
            _ => (&*file).write_vectored(bufs),
        };
        match written {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "write returned 0 bytes",
                ));
            }
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `write` until all of `buf` is written.
pub(crate) fn write_all(file: &File, path: &Path, buf: &[u8]) -> io::Result<()> {
    writev_all(file, path, &mut [IoSlice::new(buf)])
}

/// `pwrite` of all of `buf` at `pos` (a descriptor without `O_APPEND`: Linux's `pwrite`
/// ignores the position on one opened with it).
pub(crate) fn write_all_at(file: &File, path: &Path, pos: u64, buf: &[u8]) -> io::Result<()> {
    simulated!(path, |s| s.write_all_at(file, path, pos, buf));
    std::os::unix::fs::FileExt::write_all_at(file, buf, pos)
}

/// Opens an existing file for reading and positioned writes (no `O_APPEND`).
pub(crate) fn open_read_write(path: &Path) -> io::Result<File> {
    open(
        path,
        OpenOptions::new().read(true).write(true),
        false,
        false,
    )
}

/// `ftruncate`.
pub(crate) fn set_len(file: &File, path: &Path, len: u64) -> io::Result<()> {
    simulated!(path, |s| s.set_len(file, path, len));
    file.set_len(len)
}

/// `fallocate(fd, 0, 0, len)`: reserves the file's blocks up to `len` and extends its size to
/// `len` (zeros), so stores through a mapping below `len` cannot meet a full disk. A full disk
/// fails here, with `ENOSPC`. File systems (and platforms) without it give an error of kind
/// [`io::ErrorKind::Unsupported`]; see [`is_unsupported`].
pub(crate) fn allocate(file: &File, path: &Path, len: u64) -> io::Result<()> {
    simulated!(path, |s| s.allocate(file, path, len));
    fallocate(file, len)
}

/// The plain `fallocate` call, shared with the simulation (which performs it too). Not
/// `posix_fallocate`: where the file system cannot reserve blocks, glibc's emulation writes
/// zeros through the page cache, which reserves nothing on a copy-on-write file system; an
/// `EOPNOTSUPP` here sends the writer to the write path instead.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn fallocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length past off_t"))?;
    loop {
        // SAFETY: a plain system call on a descriptor `file` keeps open for the call; no
        // memory is passed, so nothing can be read or written out of bounds.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Without `fallocate` (not Linux), the write path is used.
#[cfg(not(target_os = "linux"))]
pub(crate) fn fallocate(_file: &File, _len: u64) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "fallocate is Linux-only",
    ))
}

/// True when `e` says the file system cannot preallocate (`EOPNOTSUPP`, or no `fallocate`).
pub(crate) fn is_unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported || e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// Stores `data` at `pos` through the writer's mapping of `file` (see
/// [`WriteMap::store`](super::map::WriteMap::store) for the contract). Routed here so the
/// simulated disk records it as a write at `pos`.
pub(crate) fn store(
    map: &super::map::WriteMap,
    file: &File,
    path: &Path,
    pos: u64,
    data: &[u8],
) -> io::Result<()> {
    simulated!(path, |s| s.store(map, file, path, pos, data));
    store_in(map, pos, data)
}

/// The plain store, shared with the simulation.
pub(crate) fn store_in(map: &super::map::WriteMap, pos: u64, data: &[u8]) -> io::Result<()> {
    let stored = usize::try_from(pos).is_ok_and(|p| map.store(p, data));
    if stored {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "store past the writable mapping",
        ))
    }
}

/// `fdatasync`: the file's data and size reach stable storage.
pub(crate) fn sync_data(file: &File, path: &Path) -> io::Result<()> {
    simulated!(path, |s| s.sync(file, path));
    file.sync_data()
}

/// `fsync`.
pub(crate) fn sync_all(file: &File, path: &Path) -> io::Result<()> {
    simulated!(path, |s| s.sync(file, path));
    file.sync_all()
}

/// fsyncs a directory: creations, renames and removals in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    simulated!(dir, |s| s.sync_dir(dir));
    File::open(dir).and_then(|d| d.sync_all())
}

/// Opens `path` with `options` (which say whether it may be created or truncated).
fn open(path: &Path, options: &OpenOptions, create: bool, truncate: bool) -> io::Result<File> {
    simulated!(path, |s| s.open(path, options, create, truncate));
    options.open(path)
}

/// Opens a file for appending (and reading), creating it.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    open(
        path,
        OpenOptions::new().append(true).create(true).read(true),
        true,
        false,
    )
}

/// Opens `path` for reading and writing in place, creating it when missing.
pub(crate) fn open_create(path: &Path) -> io::Result<File> {
    open(
        path,
        OpenOptions::new().read(true).write(true).create(true),
        true,
        false,
    )
}

/// Creates `path`, or empties it if it exists, for writing.
pub(crate) fn create_truncate(path: &Path) -> io::Result<File> {
    open(
        path,
        OpenOptions::new().write(true).create(true).truncate(true),
        true,
        true,
    )
}

/// Opens an existing file for writing in place.
pub(crate) fn open_write(path: &Path) -> io::Result<File> {
    open(path, OpenOptions::new().write(true), false, false)
}

/// `rename(2)` of a file or directory.
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    simulated!(from, |s| s.rename(from, to));
    fs::rename(from, to)
}

/// `unlink(2)`.
pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    simulated!(path, |s| s.remove_file(path));
    fs::remove_file(path)
}

/// Creates a directory and its missing parents.
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
    simulated!(dir, |s| s.create_dir_all(dir));
    fs::create_dir_all(dir)
}

/// Removes a directory tree.
pub(crate) fn remove_dir_all(dir: &Path) -> io::Result<()> {
    simulated!(dir, |s| s.remove_dir_all(dir));
    fs::remove_dir_all(dir)
}

/// Reads a whole (small) file with `read(2)`: indexes at recovery, checkpoints, snapshots,
/// topic metadata, a compaction's swap file.
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    simulated!(path, |s| s.read(path));
    // One `read` of the size `fstat` gave, where `fs::read` reads again to see the end: an
    // open reads two index files per segment, and on a VM each system call counts. The files
    // read here only grow in place (anything else is replaced by a rename), so the first
    // `len` bytes are a consistent prefix even when a live writer appends meanwhile.
    let mut f = fs::File::open(path)?;
    let len = usize::try_from(f.metadata()?.len()).unwrap_or(usize::MAX);
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
    buf.resize(len, 0);
    io::Read::read_exact(&mut f, &mut buf)?;
    Ok(buf)
}

/// [`read`] as UTF-8.
pub(crate) fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
