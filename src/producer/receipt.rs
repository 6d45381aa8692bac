//! What a send gives back: [`RecordMetadata`], and the [`Receipt`] of a queued record.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::Result;

/// Where a record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp stored (the append time under LogAppendTime).
    pub timestamp: i64,
}

/// Where the sender puts a queued record's result, and the condition its [`Receipt`] waits on.
pub(crate) type Slot = Arc<(Mutex<Option<Result<RecordMetadata>>>, Condvar)>;

/// The pending result of [`Producer::send_async`](crate::Producer::send_async).
#[derive(Debug)]
pub struct Receipt {
    pub(super) slot: Slot,
}

impl Receipt {
    /// Blocks until the record is acknowledged (or failed).
    ///
    /// # Errors
    /// The send's error.
    pub fn wait(self) -> Result<RecordMetadata> {
        let (m, cv) = &*self.slot;
        let mut g = m.lock();
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            cv.wait(&mut g);
        }
    }

    /// The result if it is already known.
    pub fn try_result(&self) -> Option<Result<RecordMetadata>> {
        self.slot.0.lock().take()
    }
}

pub(super) fn fill(slot: &Slot, r: Result<RecordMetadata>) {
    *slot.0.lock() = Some(r);
    slot.1.notify_all();
}
