//! The file steps of replacing segments with a rewritten one (compaction's swap), shared by
//! the cleaner that performs a swap and the open that completes one a crash interrupted.
//!
//! The protocol: the new segment is written as `<base>.{log,index,timeindex}.cleaned` and
//! synced (with a `.txnindex` when the segment holds aborted transactions); renamed to
//! `.swap`, indexes first and the log last (a `<base>.log.swap` is what
//! an open acts on, so it must be the last to appear); then the replaced segments are deleted
//! and the `.swap` files renamed into place, again indexes first and the log last. A crash at
//! any point leaves either the old segments or the new one: before the `.log.swap` exists an
//! open sweeps `.cleaned` files as leftovers, after it the open completes the swap
//! ([`finish_swaps`]).

use std::fs;
use std::path::Path;

use bytes::Bytes;

use crate::error::{Error, IoContext, Result};
use crate::io::{ops, sync_dir};
use crate::layout::{self, FileKind, SegmentFile, Transient, with_transient};

/// Renames segment `base`'s `.cleaned` files to `.swap`, indexes first and the log last. The
/// caller syncs the directory.
///
/// # Errors
/// I/O errors from the renames.
pub(crate) fn cleaned_to_swap(dir: &Path, base: i64) -> Result<()> {
    for kind in FileKind::INDEXES_THEN_LOG {
        let f = dir.join(layout::file_name(base, kind));
        let from = with_transient(&f, Transient::Cleaned);
        optional(
            kind,
            ops::rename(&from, &with_transient(&f, Transient::Swap)),
        )
        .at(&f)?;
    }
    Ok(())
}

/// A file operation's result, with a missing `.txnindex` taken as done: a segment without
/// aborted transactions has none.
fn optional(kind: FileKind, r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if kind == FileKind::TxnIndex && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Renames segment `base`'s `.swap` files of `kinds` into place, in the order given (callers
/// pass the indexes before the log: see the module docs).
///
/// # Errors
/// I/O errors from the renames.
pub(crate) fn swap_into_place(dir: &Path, base: i64, kinds: &[FileKind]) -> Result<()> {
    for &kind in kinds {
        let f = dir.join(layout::file_name(base, kind));
        optional(kind, ops::rename(&with_transient(&f, Transient::Swap), &f)).at(&f)?;
    }
    Ok(())
}

/// Removes segment `base`'s `.swap` files (a swap given up before any of them was renamed
/// into place). The caller syncs the directory.
///
/// # Errors
/// I/O errors from the removals.
pub(crate) fn remove_swap(dir: &Path, base: i64) -> Result<()> {
    for kind in FileKind::INDEXES_THEN_LOG {
        let f = dir.join(layout::transient_name(base, kind, Transient::Swap));
        optional(kind, ops::remove_file(&f)).at(&f)?;
    }
    Ok(())
}

/// Completes interrupted swaps in a partition directory (the loader calls it before it lists
/// segments): for each `<b>.log.swap`, deletes the segments whose base offsets lie in `[b, end
/// of the swap's log)` and renames the swap's files into place, indexes first. Index `.swap`
/// files without their log's are removed: the log is renamed to `.swap` last and into place
/// last, so they are the start of a swap that never committed (the old segments are whole)
/// or, were the order broken, indexes rebuilt from the new log instead. Returns whether
/// there was anything to do.
///
/// # Errors
/// I/O errors from listing, reading, removing and renaming.
pub(crate) fn finish_swaps(dir: &Path) -> Result<bool> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    let mut orphans = Vec::new();
    for e in fs::read_dir(dir).at(dir)? {
        let e = e.at(dir)?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        match layout::parse_file_name(name) {
            Some(SegmentFile {
                base,
                kind,
                transient: Some(Transient::Swap),
            }) => {
                if kind == FileKind::Log {
                    swaps.push(base);
                } else {
                    orphans.push(e.path());
                }
            }
            Some(SegmentFile {
                base,
                kind: FileKind::Log,
                transient: None,
            }) => logs.push(base),
            _ => {}
        }
    }
    if swaps.is_empty() && orphans.is_empty() {
        return Ok(false);
    }
    swaps.sort_unstable();
    for &b in &swaps {
        let swap_log = dir.join(layout::transient_name(b, FileKind::Log, Transient::Swap));
        let bytes = Bytes::from(ops::read(&swap_log).at(&swap_log)?);
        let end = crate::record::Batches::new(bytes)
            .filter_map(Result::ok)
            .last()
            .map_or(b, |x| x.last_offset() + 1);
        for &old in logs.iter().filter(|&&o| o >= b && o < end.max(b + 1)) {
            // The replaced segments' `.txnindex` files too: the swap's own holds their entries.
            for kind in FileKind::SEGMENT.into_iter().chain([FileKind::TxnIndex]) {
                let p = dir.join(layout::file_name(old, kind));
                match ops::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
            }
        }
        for kind in FileKind::INDEXES_THEN_LOG {
            let f = dir.join(layout::file_name(b, kind));
            let s = with_transient(&f, Transient::Swap);
            if s.exists() {
                ops::rename(&s, &f).at(&f)?;
            }
        }
    }
    for o in orphans {
        if o.exists() {
            ops::remove_file(&o).at(&o)?;
        }
    }
    sync_dir(dir)?;
    Ok(true)
}
