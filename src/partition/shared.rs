//! What every partition of one `Log` shares: the read-only flag, the budget of write
//! descriptors (three per partition being written; idle ones give theirs up) and the segment
//! map budget.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::Partition;
use crate::segment::MapBudget;

/// State shared by every partition of one `Log`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) read_only: bool,
    pub(crate) maps: MapBudget,
    pub(crate) fds: FdBudget,
    generation: AtomicU64,
}

impl Shared {
    pub(crate) fn new(read_only: bool, max_mapped_segments: usize, max_open_files: usize) -> Self {
        Shared {
            read_only,
            maps: MapBudget::new(max_mapped_segments),
            fds: FdBudget::new(max_open_files),
            generation: AtomicU64::new(0),
        }
    }

    /// A process-unique number for a segment's identity in caches.
    pub(crate) fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Bounds the write descriptors held by active segments (three per partition being written).
/// Over the limit, idle partitions give theirs up, oldest first; they reopen on the next write.
#[derive(Debug)]
pub(crate) struct FdBudget {
    limit: usize,
    open: AtomicUsize,
    lru: Mutex<VecDeque<Weak<Partition>>>,
}

/// Descriptors an active segment holds: `.log`, `.index`, `.timeindex`.
const FILES_PER_WRITER: usize = 3;

impl FdBudget {
    pub(crate) fn new(limit: usize) -> Self {
        FdBudget {
            limit: limit.max(FILES_PER_WRITER + 1),
            open: AtomicUsize::new(0),
            lru: Mutex::new(VecDeque::new()),
        }
    }

    /// Descriptors held now.
    pub(crate) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Records that `p` opened its writer files; evicts idle writers beyond the limit.
    pub(crate) fn opened(&self, p: &Arc<Partition>) {
        self.open.fetch_add(FILES_PER_WRITER, Ordering::AcqRel);
        let candidates: Vec<Weak<Partition>> = {
            let mut q = self.lru.lock();
            q.push_back(Arc::downgrade(p));
            if self.open() <= self.limit {
                return;
            }
            q.drain(..).collect()
        };
        let mut keep = VecDeque::with_capacity(candidates.len());
        for w in candidates {
            let Some(other) = w.upgrade() else { continue };
            if self.open() <= self.limit || Arc::ptr_eq(&other, p) {
                keep.push_back(w);
                continue;
            }
            match other.release_idle_files() {
                Some(true) => self.closed(),
                Some(false) => {}
                None => keep.push_back(w),
            }
        }
        let mut q = self.lru.lock();
        // Entries pushed meanwhile go after the survivors.
        keep.extend(q.drain(..));
        *q = keep;
    }

    /// Records that a writer's files were closed.
    pub(crate) fn closed(&self) {
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(FILES_PER_WRITER))
            });
    }
}

/// A default descriptor budget: a quarter of the soft `RLIMIT_NOFILE`, at least 16.
pub(crate) fn default_fd_budget() -> usize {
    soft_nofile_limit().map_or(256, |n| (n / 4).max(16))
}

/// Reads the soft open-files limit from `/proc/self/limits` (Linux); `None` elsewhere.
fn soft_nofile_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(1 << 20)
    } else {
        soft.parse().ok()
    }
}
