//! The memory-map budget: at most so many segments mapped at once, so a store with many
//! thousands of partitions stays within the process's address space and map count.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::Segment;

/// Keeps at most `limit` segments mapped, unmapping the least recently mapped first. A view
/// handed to a reader keeps its own mapping alive, so unmapping never invalidates a read.
#[derive(Debug)]
pub(crate) struct MapBudget {
    limit: usize,
    lru: Mutex<VecDeque<Weak<Segment>>>,
}

impl MapBudget {
    pub(crate) fn new(limit: usize) -> Self {
        MapBudget {
            limit: limit.max(1),
            lru: Mutex::new(VecDeque::new()),
        }
    }

    /// Records that `seg` was mapped; unmaps the oldest beyond the limit.
    pub(crate) fn mapped(&self, seg: &Arc<Segment>) {
        let mut evict = Vec::new();
        {
            let mut q = self.lru.lock();
            q.push_back(Arc::downgrade(seg));
            if q.len() > self.limit {
                q.retain(|w| w.strong_count() > 0);
            }
            while q.len() > self.limit {
                if let Some(w) = q.pop_front() {
                    evict.push(w);
                }
            }
        }
        // Unmap outside the budget lock (the segment's own lock is taken there).
        for w in evict {
            if let Some(s) = w.upgrade() {
                s.unmap();
            }
        }
    }

    /// Segments currently counted as mapped (for stats and tests).
    pub(crate) fn count(&self) -> usize {
        self.lru
            .lock()
            .iter()
            .filter(|w| w.upgrade().is_some_and(|s| s.is_mapped()))
            .count()
    }
}
