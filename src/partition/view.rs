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
//! checks afterwards which inode the loader read (the one the path still names; for a sealed
//! segment replaced meanwhile, the one whose length is the loaded size, since compaction only
//! shrinks batches and keeps offsets), and pins a mapping of it in the segment. Nothing the
//! owner renames or unlinks later changes what the view reads; a deleted segment stays
//! readable until the view is refreshed, as Kafka delays unlinking for reads in progress.
//!
//! What the loader sees must also be a consistent set of names:
//! - a listing can miss a file renamed while it runs, under both names; a `.log` name that
//!   shows up later among the listed ones (a swap's last rename) means the attempt is retried;
//! - a `<b>.log.swap` without its `<b>.log` is a swap half done: the replaced segments are
//!   partly deleted and the new one is not in place yet, so the view waits for the owner;
//! - a listed segment the loader did not find must be gone for good (retention or a swap
//!   deleted it), not named again or about to be: deleted segments only ever leave the
//!   oldest end of the log or the inside of a swapped run, so the view stays gap-free;
//! - segments the loader found past the listed ones (rolled meanwhile) wait for the next
//!   refresh.
//!
//! An attempt that meets any of this is retried after a short wait; the owner's changes are
//! each a few renames, so a live owner is always caught between two of them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Partition;
use super::read::{ReadResult, ReadShape};
use super::recovery::{self, LoadParams, Loaded};
use crate::checkpoint;
use crate::error::{Error, IoContext, Result};
use crate::io::map::Mapped;
use crate::layout::{
    self, CLEAN_SHUTDOWN_FILE, FileKind, LOG_START_FILE, RECOVERY_POINT_FILE, SegmentFile,
    Transient,
};
use crate::segment::{self, Segment};

/// Tries before giving up on a directory that keeps changing: with the waits between them
/// (1 ms doubling to 64 ms), about one second: far longer than the owner's longest change.
const ATTEMPTS: u32 = 20;

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
            std::thread::sleep(Duration::from_millis(1 << (attempt - 1).min(6)));
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
            && layout::parse_file_name(name).is_some()
        {
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

fn try_load(p: &LoadParams<'_>) -> Result<std::result::Result<Loaded, Unsettled>> {
    let dir = p.dir;
    let names = list(dir)?;
    let mut bases = Vec::new();
    for name in &names {
        match layout::parse_file_name(name) {
            Some(SegmentFile {
                base,
                kind: FileKind::Log,
                transient: None,
            }) if base <= segment::MAX_OFFSET => bases.push(base),
            Some(SegmentFile {
                base,
                kind: FileKind::Log,
                transient: Some(Transient::Swap),
            }) if !names.contains(&layout::file_name(base, FileKind::Log)) => {
                return Ok(Err(Unsettled::HalfSwapped(dir.join(name))));
            }
            _ => {}
        }
    }
    // Open every listed log before the loader reads it: while a descriptor is open, its inode
    // number cannot be given to another file, so "the path still names this inode" afterwards
    // means the loader read this inode. A log deleted since the listing has no descriptor.
    let mut held: BTreeMap<i64, File> = BTreeMap::new();
    let mut listed_len: BTreeMap<i64, u64> = BTreeMap::new();
    for &base in &bases {
        let path = dir.join(layout::file_name(base, FileKind::Log));
        match File::open(&path) {
            Ok(f) => {
                // Before the loader reads it: what the owner appends later is past this.
                listed_len.insert(base, f.metadata().at(&path)?.len());
                held.insert(base, f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    let mut loaded = match recovery::load(p) {
        Ok(l) => l,
        // A file listed a moment ago may be gone or replaced by the time the loader opens it
        // (a swap puts a new file under the same name): a failure only counts when every name
        // is still there and names the same inode.
        Err(e) => {
            return if list(dir)? == names && same_inodes(dir, &held)? {
                Err(e)
            } else {
                Ok(Err(Unsettled::Changed))
            };
        }
    };
    // A listing can miss a file renamed while it runs, under both names: the new name is
    // then in a later listing. A `.log` name that appeared at or below the listed ones since
    // is such a file, or a swap that completed meanwhile; either way this listing is not one
    // to build on. (Names past the listed ones are rolls, handled below.)
    let last_listed = bases.last().copied().unwrap_or(i64::MIN);
    for name in list(dir)?.difference(&names) {
        if let Some(b) = layout::parse_plain(name, FileKind::Log)
            && b <= last_listed
        {
            return Ok(Err(Unsettled::Changed));
        }
    }
    if bases.is_empty() {
        // No segment yet: the loader stands in an empty one, which nothing reads. One it
        // found with data was created since the listing.
        return Ok(if loaded.segments.iter().all(|s| s.is_empty()) {
            Ok(loaded)
        } else {
            Err(Unsettled::Changed)
        });
    }
    // The loader lists the directory again, after this listing. Segments it found past the
    // listed ones were rolled meanwhile: they are left for the next refresh, since no
    // descriptor proves what the loader read there. Listed segments it did not find were
    // deleted meanwhile (retention, oldest first; or a swap, which replaces a run of segments
    // by one named after the first), or renamed while it listed: a deleted name never comes
    // back, so each must be gone now, and no swap may be about to bring it back.
    let mut keep = 0;
    let mut next_listed = 0;
    for seg in &loaded.segments {
        if seg.base_offset > last_listed {
            break;
        }
        let Some(at) = bases
            .iter()
            .skip(next_listed)
            .position(|&b| b == seg.base_offset)
        else {
            return Ok(Err(Unsettled::Changed));
        };
        if bases
            .iter()
            .skip(next_listed)
            .take(at)
            .any(|&gone| named_now(dir, gone))
        {
            return Ok(Err(Unsettled::Changed));
        }
        next_listed += at + 1;
        keep += 1;
    }
    // Listed segments after the last one loaded: the loader stopped before them (damage, or
    // a gap), or it listed the directory in the middle of a swap. Only a directory that did
    // not change tells the first apart.
    let trailing_present = bases.iter().skip(next_listed).any(|&b| named_now(dir, b));
    if trailing_present && !(list(dir)? == names && same_inodes(dir, &held)?) {
        return Ok(Err(Unsettled::Changed));
    }
    loaded.segments.truncate(keep);
    if loaded.segments.is_empty() {
        return Ok(Err(Unsettled::Changed));
    }
    let last = loaded.segments.len() - 1;
    for (i, seg) in loaded.segments.iter().enumerate() {
        let Some(file) = read_by_loader(seg, held.get(&seg.base_offset), i == last)? else {
            return Ok(Err(Unsettled::Changed));
        };
        let map = Mapped::map(&file, seg.size() as usize).at(&seg.log_path)?;
        let listed = listed_len.get(&seg.base_offset).copied().unwrap_or(0);
        let zeros_after = i == last && zeros_at(&file, seg.size());
        seg.pin_log(map, listed, zeros_after);
    }
    Ok(Ok(loaded))
}

/// Whether `file` holds a zeroed batch-header start at `pos` (a `preallocate=true` segment's
/// unwritten range: the owner's next batch lands there without the file growing). Only the
/// offset and length fields are read: no batch starts with both zero lengths.
fn zeros_at(file: &File, pos: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 12];
    file.read_exact_at(&mut head, pos).is_ok() && head.iter().all(|&b| b == 0)
}

/// `<base>.log` exists, or a `<base>.log.swap` that will become it.
fn named_now(dir: &Path, base: i64) -> bool {
    dir.join(layout::file_name(base, FileKind::Log)).exists()
        || dir
            .join(layout::transient_name(base, FileKind::Log, Transient::Swap))
            .exists()
}

/// Every held descriptor's path still names its inode.
fn same_inodes(dir: &Path, held: &BTreeMap<i64, File>) -> Result<bool> {
    for (&base, file) in held {
        let path = dir.join(layout::file_name(base, FileKind::Log));
        let ours = file.metadata().at(&path)?;
        match fs::metadata(&path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(true)
}

/// A descriptor of the inode whose bytes the loader checked for `seg`, or `None` when that
/// cannot be told.
///
/// If the path still names the held inode, the loader read it. Otherwise the owner replaced or
/// deleted the file while the loader ran. The last segment was active when listed and is not
/// compacted, so that is not worth telling apart: the caller tries again. A sealed segment's
/// loaded size is its file's whole length (a sealed log has no torn tail), and compaction only
/// shrinks batches, keeping every offset: so the candidate (the held inode, then the one the
/// path names now) whose length is the loaded size holds batches exactly where the loader
/// found them, with the same offsets, whichever inode it was.
fn read_by_loader(seg: &Segment, held: Option<&File>, last: bool) -> Result<Option<File>> {
    let now = match File::open(&seg.log_path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(&seg.log_path, e)),
    };
    let meta = |f: &File| f.metadata().at(&seg.log_path);
    if let (Some(h), Some(n)) = (held, &now) {
        let (hm, nm) = (meta(h)?, meta(n)?);
        if hm.dev() == nm.dev() && hm.ino() == nm.ino() {
            return (hm.len() >= seg.size())
                .then(|| h.try_clone())
                .transpose()
                .at(&seg.log_path);
        }
    }
    if last {
        return Ok(None);
    }
    for f in held.into_iter().chain(now.as_ref()) {
        if meta(f)?.len() == seg.size() {
            return Ok(Some(f.try_clone().at(&seg.log_path)?));
        }
    }
    Ok(None)
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
    pub(super) fn read_refreshing(&self, offset: i64, shape: ReadShape) -> Result<ReadResult> {
        let seen = self.view_generation();
        match self.read_view(offset, shape) {
            Ok(r) if !r.contiguous().is_empty() => return Ok(r),
            // The log start only moves up: below the view's start is below the owner's.
            Err(e @ Error::OffsetOutOfRange { .. }) if offset < self.log_start() => {
                return Err(e);
            }
            Err(e) if !Self::view_may_be_stale(&e) => return Err(e),
            Ok(_) | Err(_) => {}
        }
        self.refresh(seen)?;
        self.read_view(offset, shape)
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
        // As `Partition::open` sets them, and kept when the first attempt falls back to a full
        // scan: a read-only view writes nothing, but judges damage against the same point.
        let (durable, end_floor) = recovery::durable_and_floor(clean, recovery_point);
        let params = |clean: bool, recovery_point: Option<i64>| LoadParams {
            dir: &self.dir,
            topic: &self.topic,
            partition: self.id,
            config: &config,
            clean,
            recovery_point,
            durable,
            end_floor,
            log_start,
            read_only: true,
            generation: self.next_generation(),
        };
        // As at open (`Partition::open`): replaying producer state walks the batch headers of
        // trusted segments, and damage found there or by the loader means the cheap checks
        // were fooled: read every batch instead. Without the replay a refresh could trust
        // what the open did not, and the view would change with no change on disk.
        let attempt =
            |clean: bool, recovery_point: Option<i64>| -> Result<(Loaded, super::txn::TxnLoaded)> {
                let loaded = load(&params(clean, recovery_point))?;
                let end = loaded
                    .segments
                    .last()
                    .map_or(loaded.log_start, |s| s.end_offset());
                let mut report = super::PartitionRecovery::default();
                let txns = super::txn::load(
                    &self.shared,
                    &self.dir,
                    &loaded.segments,
                    end,
                    None,
                    &mut report,
                )?;
                Ok((loaded, txns))
            };
        let (loaded, txns) = match attempt(clean, recovery_point) {
            Err(Error::Corrupt { .. }) => attempt(false, Some(0))?,
            other => other?,
        };
        self.set_txn_state(txns.aborted, txns.producers.first_unstable());
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
            if let Some(base) = layout::parse_plain(&name, FileKind::Log) {
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
        // A last file longer than the view only matters past what was listed: bytes below
        // that were read and left out (a damaged or torn tail the view does not cut).
        // A preallocated last segment is written in place: it is current while the bytes
        // after its data are still zeros.
        if last.zeros_after() {
            return Ok(File::open(&last.log_path).is_ok_and(|f| zeros_at(&f, last.size())));
        }
        Ok(match fs::metadata(&last.log_path) {
            Ok(m) => m.len() <= last.size().max(last.listed_len()),
            Err(_) => false,
        })
    }
}
