//! File helpers: the routed file operations, memory maps, durable renames and directory syncs.

pub(crate) mod map;
pub(crate) mod ops;
#[cfg(feature = "sim")]
pub mod sim;

use std::fs::File;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::layout::{Transient, with_transient};

/// fsyncs a directory so that file creations and renames in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    ops::sync_dir(dir).at(dir)
}

/// Writes `contents` to `path` atomically: temp file `<name>.tmp` beside it, fsync, rename,
/// directory fsync. The temp suffix is layout's [`Transient::Tmp`], the one an open sweeps.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic_via(path, &with_transient(path, Transient::Tmp), contents)
}

/// [`write_atomic`] through an explicit temp path (which must be on the same file system).
pub(crate) fn write_atomic_via(path: &Path, tmp: &Path, contents: &[u8]) -> Result<()> {
    write_synced(tmp, contents)?;
    ops::rename(tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    if let Some(dir) = tmp.parent().filter(|d| Some(*d) != path.parent()) {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Creates (or replaces) `path` with `contents`, without syncing.
pub(crate) fn write_file(path: &Path, contents: &[u8]) -> Result<File> {
    let f = ops::create_truncate(path).at(path)?;
    ops::write_all(&f, path, contents).at(path)?;
    Ok(f)
}

/// Creates (or replaces) `path` with `contents` and fsyncs it; the caller renames it into place.
pub(crate) fn write_synced(path: &Path, contents: &[u8]) -> Result<()> {
    let f = write_file(path, contents)?;
    ops::sync_all(&f, path).at(path)
}

/// Opens a file for appending, creating it.
pub(crate) fn open_append(path: &Path) -> Result<File> {
    ops::open_append(path).at(path)
}
