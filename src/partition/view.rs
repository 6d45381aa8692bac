//! Read-only views of a partition directory that another process may own and change.
//!
//! The owner changes a directory in these steps (see `ARCHITECTURE.md`):
//! - appends grow the active `.log` in place, and a roll creates the next segment's files;
//! - retention deletes the oldest segments first, each by renaming `<b>.log` to
//!   `<b>.log.deleted` and unlinking it (then its indexes), and syncs the directory;
//! - compaction writes `<b>.log.cleaned` (and indexes), fsyncs them, renames them to `.swap`
//!   and syncs the directory; then, under its writer lock, deletes the replaced segments in
//!   order (the first is `<b>` itself), renames the index `.swap` files and, last, the
//!   `<b>.log.swap` over `<b>.log`, and syncs the directory;
//! - truncation writes the kept prefix to a new file and renames it over the old one.
//!
//! So a name never comes back to an inode it once named, published bytes of an inode never
//! change, and a file that replaces a path is always a new inode. A view is therefore built
//! from inodes, not names: [`load`] opens every `.log` it lists before the loader reads them,
//! checks afterwards that each path still names the inode it opened (so the loader read that
//! inode), and pins a mapping of it in the segment. Nothing the owner renames or unlinks later
//! changes what the view reads; a deleted segment stays readable until the view is refreshed,
//! as Kafka delays unlinking for reads in progress.
//!
//! What the loader sees must also be a consistent set of names. One directory listing is not
//! enough: a file renamed while the listing runs can be missed under both names. Two listings
//! in a row that agree rule that out (a rename during the first changes the second), and a
//! `<b>.log.swap` without its `<b>.log` is a swap half done: the replaced segments are partly
//! deleted and the new one is not in place yet, so the view waits for the owner to finish.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Partition;
use super::read::ReadResult;
use super::recovery::{self, LoadParams, Loaded};
use crate::checkpoint::{self, CLEAN_SHUTDOWN_FILE, LOG_START_FILE, RECOVERY_POINT_FILE};
use crate::error::{Error, IoContext, Result};
use crate::io::map::Mapped;
use crate::segment;

/// Tries before giving up on a directory that keeps changing. The owner's changes are short
/// (a swap is a few renames under its writer lock), so with the waits below, about one
/// second in total, a live owner is always seen between two of them.
const ATTEMPTS: u32 = 12;

/// Why one attempt did not give a view.
enum Unsettled {
    /// The directory changed while the view was built: try again.
    Changed,
    /// A compaction swap is half done: try again once the owner has finished it.
    HalfSwapped(std::path::PathBuf),
}

/// Loads a read-only view of `p.dir` whose segments read the inodes the loader checked.
///
/// # Errors
/// What the loader returns for a directory that did not change meanwhile; an I/O error naming
/// the `.swap` file when a compaction swap stays half done (the owner stopped in the middle;
/// its next read-write open completes the swap).
pub(crate) fn load(p: &LoadParams<'_>) -> Result<Loaded> {
    let mut last = Unsettled::Changed;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(1 << (attempt - 1).min(8)));
        }
        match try_load(p)? {
            Ok(loaded) => return Ok(loaded),
            Err(why) => last = why,
        }
    }
    Err(match last {
        Unsettled::HalfSwapped(path) => Error::io(
            &path,
            std::io::Error::other(
                "a compaction swap is half done; the next read-write open completes it",
            ),
        ),
        Unsettled::Changed => Error::io(
            p.dir,
            std::io::Error::other("the partition directory kept changing while it was read"),
        ),
    })
}

/// The names of segment files (any suffix) in `dir`, sorted.
fn list(dir: &Path) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        if let Some(name) = entry.file_name().to_str()
            && segment::parse_file_name(name).is_some()
        {
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

fn try_load(p: &LoadParams<'_>) -> Result<std::result::Result<Loaded, Unsettled>> {
    let dir = p.dir;
    let names = list(dir)?;
    if list(dir)? != names {
        return Ok(Err(Unsettled::Changed));
    }
    let mut bases = Vec::new();
    for name in &names {
        match segment::parse_file_name(name) {
            Some((base, "log")) if base <= segment::MAX_OFFSET => bases.push(base),
            Some((base, "log.swap")) if !names.contains(&segment::file_name(base, "log")) => {
                return Ok(Err(Unsettled::HalfSwapped(dir.join(name))));
            }
            _ => {}
        }
    }
    // Open every listed log before the loader reads it: while a descriptor is open, its inode
    // number cannot be given to another file, so "the path still names this inode" afterwards
    // means the loader read this inode.
    let mut held: BTreeMap<i64, File> = BTreeMap::new();
    for &base in &bases {
        let path = dir.join(segment::file_name(base, "log"));
        match File::open(&path) {
            Ok(f) => {
                held.insert(base, f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Err(Unsettled::Changed));
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    let mut loaded = match recovery::load(p) {
        Ok(l) => l,
        // A file listed a moment ago may be gone or replaced by the time the loader opens it;
        // a failure only counts when the directory did not change.
        Err(e) => {
            return if list(dir)? == names {
                Err(e)
            } else {
                Ok(Err(Unsettled::Changed))
            };
        }
    };
    if bases.is_empty() {
        // No segment yet: the loader stands in an empty one, which nothing reads. One it
        // found with data was created since the listing.
        return Ok(if loaded.segments.iter().all(|s| s.is_empty()) {
            Ok(loaded)
        } else {
            Err(Unsettled::Changed)
        });
    }
    // The loader lists the directory again. Segments it found after the listed ones were
    // rolled meanwhile: they are left for the next refresh, since no descriptor proves what
    // the loader read there. A listed segment it did not find, followed by one it did, was
    // renamed while it listed.
    let mut keep = 0;
    for (i, seg) in loaded.segments.iter().enumerate() {
        match bases.get(i) {
            Some(&b) if b == seg.base_offset => keep = i + 1,
            _ if bases.last().is_some_and(|&last| seg.base_offset > last) => break,
            _ => return Ok(Err(Unsettled::Changed)),
        }
    }
    loaded.segments.truncate(keep);
    if loaded.segments.is_empty() {
        return Ok(Err(Unsettled::Changed));
    }
    for seg in &loaded.segments {
        let Some(file) = held.get(&seg.base_offset) else {
            return Ok(Err(Unsettled::Changed));
        };
        let ours = file.metadata().at(&seg.log_path)?;
        let same = match fs::metadata(&seg.log_path) {
            Ok(now) => now.dev() == ours.dev() && now.ino() == ours.ino(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(&seg.log_path, e)),
        };
        if !same || ours.len() < seg.size() {
            return Ok(Err(Unsettled::Changed));
        }
        let map = Mapped::map(file, seg.size() as usize).at(&seg.log_path)?;
        seg.pin_log(map);
    }
    Ok(Ok(loaded))
}

impl Partition {
    /// How many times this read-only view was loaded again.
    pub(super) fn view_generation(&self) -> u64 {
        self.view_generation.load(Ordering::Acquire)
    }

    /// Errors a read of a stale view can meet: a segment file deleted or replaced since the
    /// view was loaded (only possible for a segment not pinned yet), or a position the owner
    /// has written past the view's end.
    pub(super) fn view_may_be_stale(e: &Error) -> bool {
        matches!(
            e,
            Error::Io { .. } | Error::Corrupt { .. } | Error::OffsetOutOfRange { .. }
        )
    }

    /// A read-only read: on the view as it is, and when that returns nothing or fails, once
    /// more on the directory as it is now. An empty answer is then the partition's end, an
    /// offset below the refreshed log start is `OffsetOutOfRange` (the consumer resets it per
    /// `auto_offset_reset`, as Kafka's does), and an error met on the refreshed view, whose
    /// files cannot change under it, is real.
    pub(super) fn read_refreshing(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let seen = self.view_generation();
        match self.read_view(offset, max_bytes) {
            Ok(r) if !r.batches.is_empty() => return Ok(r),
            // The log start only moves up: below the view's start is below the owner's.
            Err(e @ Error::OffsetOutOfRange { .. }) if offset < self.log_start() => {
                return Err(e);
            }
            Err(e) if !Self::view_may_be_stale(&e) => return Err(e),
            Ok(_) | Err(_) => {}
        }
        self.refresh(seen)?;
        self.read_view(offset, max_bytes)
    }

    /// Loads the view again from the directory, unless another reader did since generation
    /// `seen`, or nothing was appended, rolled or deleted since (the same `.log` names, the
    /// last one no longer than the view holds).
    pub(crate) fn refresh(&self, seen: u64) -> Result<()> {
        let _one = self.refreshing.lock();
        if self.view_generation() != seen || self.view_is_current()? {
            return Ok(());
        }
        let data_dir = self.dir.parent().unwrap_or(&self.dir);
        let key = (self.topic.to_string(), self.id);
        // Checkpoints before the listing: a log start read now is at most the owner's start
        // when the segments are listed, so the view never starts past its own segments.
        let clean = data_dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let recovery_point = checkpoint::read(&data_dir.join(RECOVERY_POINT_FILE))
            .get(&key)
            .copied();
        let log_start = checkpoint::read(&data_dir.join(LOG_START_FILE))
            .get(&key)
            .copied();
        let config = self.config();
        let params = |clean: bool, recovery_point: Option<i64>| LoadParams {
            dir: &self.dir,
            topic: &self.topic,
            partition: self.id,
            config: &config,
            clean,
            recovery_point,
            log_start,
            read_only: true,
            generation: self.next_generation(),
        };
        let loaded = match load(&params(clean, recovery_point)) {
            // As at open: trusted checks that were fooled; read every batch instead.
            Err(Error::Corrupt { .. }) => load(&params(false, Some(0)))?,
            other => other?,
        };
        let end = loaded
            .segments
            .last()
            .map_or(loaded.log_start, |s| s.end_offset());
        // Start first, then segments, then the end: a reader that takes the new segments
        // also sees the new start, so it never looks for an offset the new list lacks.
        self.log_start.store(loaded.log_start, Ordering::Release);
        self.set_segments(loaded.segments);
        self.log_end.store(end, Ordering::Release);
        self.high_watermark.store(end, Ordering::Release);
        self.view_generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// The directory holds the view's `.log` files and nothing past the view's end.
    fn view_is_current(&self) -> Result<bool> {
        let segs = self.segments();
        let mut listed = Vec::new();
        for name in list(&self.dir)? {
            if let Some((base, "log")) = segment::parse_file_name(&name) {
                listed.push(base);
            }
        }
        if !listed
            .iter()
            .copied()
            .eq(segs.iter().map(|s| s.base_offset))
        {
            return Ok(false);
        }
        let Some(last) = segs.last() else {
            return Ok(false);
        };
        Ok(match fs::metadata(&last.log_path) {
            Ok(m) => m.len() <= last.size(),
            Err(_) => false,
        })
    }
}
