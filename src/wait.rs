//! Wake-ups: a reader blocked waiting for data registers a [`Notifier`] with the partitions it
//! reads; appends (and high-watermark advances, deletes and poisoning) notify them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// A one-shot, re-armable wake-up flag shared between waiters and notifiers. A notification
/// sent before the wait starts is not lost: the flag stays set until the waiter consumes it.
///
/// The flag is an atomic, so a waiter can also spin on it ([`Notifier::spin_until`]) before it
/// parks; parking and waking go through a mutex and condition variable.
#[derive(Debug, Default)]
pub struct Notifier {
    woken: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Notifier {
    /// A new, unset notifier.
    pub fn new() -> Arc<Notifier> {
        Arc::new(Notifier::default())
    }

    /// Sets the flag and wakes the waiter.
    pub fn notify(&self) {
        self.woken.store(true, Ordering::Release);
        // Under the lock: a waiter that saw the flag unset (under the same lock) is parked by
        // now, so this wakes it; one that looks later sees the flag.
        let _guard = self.lock.lock();
        self.cv.notify_all();
    }

    /// Waits until notified or `deadline`; returns whether it was notified, and clears the flag.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        if self.woken.swap(false, Ordering::AcqRel) {
            return true;
        }
        let mut guard = self.lock.lock();
        while !self.woken.load(Ordering::Acquire) {
            if self.cv.wait_until(&mut guard, deadline).timed_out() {
                break;
            }
        }
        drop(guard);
        self.woken.swap(false, Ordering::AcqRel)
    }

    /// Spins on the flag until notified or `deadline`, without parking the thread; returns
    /// whether it was notified, and clears the flag. The lowest wake-up latency, for a core
    /// given to the waiter: see `ConsumerConfig::busy_poll`.
    pub fn spin_until(&self, deadline: Instant) -> bool {
        loop {
            // A clock read costs tens of nanoseconds: look at the flag many times per read.
            for _ in 0..SPINS_PER_CLOCK_READ {
                if self.woken.load(Ordering::Relaxed) && self.woken.swap(false, Ordering::AcqRel) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= deadline {
                return self.woken.swap(false, Ordering::AcqRel);
            }
        }
    }

    /// Clears the flag without waiting.
    pub fn reset(&self) {
        self.woken.store(false, Ordering::Release);
    }
}

/// Looks at a spinning waiter's flag between clock reads: about a microsecond of spinning.
const SPINS_PER_CLOCK_READ: u32 = 64;

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
