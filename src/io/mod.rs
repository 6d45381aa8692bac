//! File helpers: memory maps, durable renames and directory syncs.

pub(crate) mod map;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// fsyncs a directory so that file creations and renames in it survive power loss.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Writes `contents` to `path` atomically: temp file `<name>.tmp` beside it, fsync, rename,
/// directory fsync.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    write_atomic_via(path, &path.with_file_name(name), contents)
}

/// [`write_atomic`] through an explicit temp path (which must be on the same file system).
pub(crate) fn write_atomic_via(path: &Path, tmp: &Path, contents: &[u8]) -> Result<()> {
    write_synced(tmp, contents)?;
    fs::rename(tmp, path).at(path)?;
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
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .at(path)?;
    f.write_all(contents).at(path)?;
    Ok(f)
}

/// Creates (or replaces) `path` with `contents` and fsyncs it; the caller renames it into place.
pub(crate) fn write_synced(path: &Path, contents: &[u8]) -> Result<()> {
    write_file(path, contents)?.sync_all().at(path)
}

/// Opens a file for appending, creating it.
pub(crate) fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .read(true)
        .open(path)
        .at(path)
}
