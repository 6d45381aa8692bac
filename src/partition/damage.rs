//! Damage at rest found by the open: what is reported, and how a damaged file is kept aside
//! (never deleted) before its segment is cut to its valid prefix.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::io::sync_dir;
use crate::layout::{self, Transient};

/// One piece of damage at rest in a partition, and what the open did about it. The segments
/// after it are kept, a damaged segment keeps its valid prefix, the file as found is kept
/// beside it (never deleted), and offsets are not reused: readers skip from `lost_from` to
/// `lost_to` as over any gap.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// The segment log the damage was found in.
    pub file: PathBuf,
    /// Byte position in that file where the damage starts.
    pub position: u64,
    /// The first offset that no longer reads back.
    pub lost_from: i64,
    /// The offset where reading resumes: the next segment's base, or where appends continue.
    pub lost_to: i64,
    /// The whole file as it was found, kept aside under a name the open ignores.
    pub preserved: Option<PathBuf>,
    /// What was wrong.
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at byte {}: {}",
            self.file.display(),
            self.position,
            self.reason
        )?;
        if self.lost_to > self.lost_from {
            write!(
                f,
                "; offsets {}..{} no longer read back",
                self.lost_from, self.lost_to
            )?;
        }
        if let Some(p) = &self.preserved {
            write!(f, "; the file as found is kept as {}", p.display())?;
        }
        Ok(())
    }
}

/// Cuts a segment log to `len` bytes, synced.
pub(crate) fn cut_log(path: &Path, len: u64) -> Result<()> {
    let f = crate::io::ops::open_write(path).at(path)?;
    crate::io::ops::set_len(&f, path, len).at(path)?;
    crate::io::ops::sync_all(&f, path).at(path)
}

/// A name beside `log` for keeping it aside, not taken by an earlier one. The open ignores
/// such files (`layout::damaged_copy`) and nothing deletes them: they go with the partition
/// only.
fn aside_name(log: &Path) -> PathBuf {
    let mut n = 0u32;
    loop {
        let candidate = layout::damaged_copy(log, n);
        if !candidate.exists() {
            return candidate;
        }
        n += 1;
    }
}

/// Copies a damaged segment log, as found, to a name beside it: a copy synced under a
/// temporary name (swept as a leftover if the open dies here) and renamed into place, so the
/// original is only cut once the copy is durable.
pub(crate) fn preserve(log: &Path) -> Result<PathBuf> {
    let to = aside_name(log);
    let tmp = layout::with_transient(&to, Transient::Tmp);
    fs::copy(log, &tmp).at(&tmp)?;
    let f = crate::io::ops::open_write(&tmp).at(&tmp)?;
    crate::io::ops::sync_all(&f, &tmp).at(&tmp)?;
    drop(f);
    crate::io::ops::rename(&tmp, &to).at(&to)?;
    sync_dir(log.parent().unwrap_or(Path::new(".")))?;
    Ok(to)
}

/// Moves a segment log that cannot be kept live (it overlaps the segment before it) aside
/// whole, under a name the open ignores.
pub(crate) fn move_aside(log: &Path) -> Result<PathBuf> {
    let to = aside_name(log);
    crate::io::ops::rename(log, &to).at(log)?;
    Ok(to)
}
