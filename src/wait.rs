//! Wake-ups: a reader blocked waiting for data registers a [`Notifier`] with the partitions it
//! reads; appends (and high-watermark advances, deletes and poisoning) notify them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// A one-shot, re-armable wake-up flag shared between waiters and notifiers. A notification
/// sent before the wait starts is not lost: the flag stays set until the waiter consumes it.
#[derive(Debug, Default)]
pub struct Notifier {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Notifier {
    /// A new, unset notifier.
    pub fn new() -> Arc<Notifier> {
        Arc::new(Notifier::default())
    }

    /// Sets the flag and wakes the waiter.
    pub fn notify(&self) {
        *self.woken.lock() = true;
        self.cv.notify_all();
    }

    /// Waits until notified or `deadline`; returns whether it was notified, and clears the flag.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let mut w = self.woken.lock();
        while !*w {
            if self.cv.wait_until(&mut w, deadline).timed_out() {
                break;
            }
        }
        std::mem::replace(&mut *w, false)
    }

    /// Clears the flag without waiting.
    pub fn reset(&self) {
        *self.woken.lock() = false;
    }
}

/// The notifiers registered with one partition.
#[derive(Debug, Default)]
pub(crate) struct WaiterSet {
    count: AtomicUsize,
    list: Mutex<Vec<Weak<Notifier>>>,
}

impl WaiterSet {
    pub(crate) fn register(&self, n: &Arc<Notifier>) {
        let mut l = self.list.lock();
        l.retain(|w| w.strong_count() > 0);
        l.push(Arc::downgrade(n));
        self.count.store(l.len(), Ordering::Release);
    }

    pub(crate) fn unregister(&self, n: &Arc<Notifier>) {
        let mut l = self.list.lock();
        l.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(n)));
        self.count.store(l.len(), Ordering::Release);
    }

    /// Wakes every registered waiter; one atomic load when there are none.
    pub(crate) fn wake_all(&self) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        // Notify outside the list lock: a woken waiter unregistering must not wait for us.
        let live: Vec<Arc<Notifier>> = self.list.lock().iter().filter_map(Weak::upgrade).collect();
        for n in live {
            n.notify();
        }
    }
}
