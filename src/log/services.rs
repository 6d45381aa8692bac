//! The parts above the log that the log drives without naming them. The group coordinator
//! (and, later, a transaction coordinator) registers here when it starts; the flusher ticks
//! each registered service (session deadlines), the topic admin tells each of a topic that
//! appeared or grew, and a close wakes whatever waits on them. Code above the log finds its
//! own service by type.

use std::any::Any;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::Result;
use crate::partition::AppendResult;

/// A part above the log that the log drives.
pub(crate) trait Service: Any + Send + Sync {
    /// Called on each flusher tick: expire what passed its deadline.
    fn tick(&self);
    /// Called after `topic` was created or grew, once its new partitions are readable: a
    /// group subscribed to it rebalances, as Kafka's does when the metadata changes.
    fn topic_changed(&self, topic: &str) {
        let _ = topic;
    }
    /// Called for a transactional batch a client appends through
    /// `PartitionHandle::append_raw`: the service that runs transactions answers `Some`,
    /// running `append` (under its lock, so the transaction cannot end meanwhile) only when
    /// the producer's ongoing transaction holds the partition. Others answer `None`.
    fn append_transactional(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        append: &mut dyn FnMut() -> Result<AppendResult>,
    ) -> Option<Result<AppendResult>> {
        let _ = (topic, partition, producer_id, epoch, append);
        None
    }
    /// Called once when the log closes: wake every caller waiting on the service.
    fn close(&self);
}

/// The registered services of one log.
#[derive(Default)]
pub(crate) struct Services {
    list: RwLock<Vec<Arc<dyn Service>>>,
}

impl Services {
    /// The registered service of type `T`, registering `make()` first if there is none.
    pub(crate) fn get_or_register<T: Service>(&self, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(s) = self.get::<T>() {
            return s;
        }
        let mut list = self.list.write();
        // Registered by another thread between the two locks?
        if let Some(s) = find::<T>(&list) {
            return s;
        }
        let s = Arc::new(make());
        list.push(Arc::clone(&s) as Arc<dyn Service>);
        s
    }

    /// The registered service of type `T`.
    pub(crate) fn get<T: Service>(&self) -> Option<Arc<T>> {
        find::<T>(&self.list.read())
    }

    /// Ticks every service.
    pub(crate) fn tick_all(&self) {
        // Not under the list's lock: a tick may look a service up again.
        let list = self.list.read().clone();
        for s in list {
            s.tick();
        }
    }

    /// Tells every service that `topic` was created or grew.
    pub(crate) fn topic_changed(&self, topic: &str) {
        for s in self.list.read().iter() {
            s.topic_changed(topic);
        }
    }

    /// Appends a client's transactional batch through the service that runs transactions
    /// (see [`Service::append_transactional`]); `None` when no service does.
    pub(crate) fn append_transactional(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        append: &mut dyn FnMut() -> Result<AppendResult>,
    ) -> Option<Result<AppendResult>> {
        self.list
            .read()
            .iter()
            .find_map(|s| s.append_transactional(topic, partition, producer_id, epoch, append))
    }

    /// Tells every service the log is closing.
    pub(crate) fn close_all(&self) {
        for s in self.list.read().iter() {
            s.close();
        }
    }
}

fn find<T: Service>(list: &[Arc<dyn Service>]) -> Option<Arc<T>> {
    list.iter().find_map(|s| {
        (Arc::clone(s) as Arc<dyn Any + Send + Sync>)
            .downcast::<T>()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Default)]
    struct Counter {
        ticks: AtomicUsize,
        closes: AtomicUsize,
    }

    impl Service for Counter {
        fn tick(&self) {
            self.ticks.fetch_add(1, Ordering::Relaxed);
        }
        fn close(&self) {
            self.closes.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_service_registers_once_and_is_found_by_type() {
        let services = Services::default();
        assert!(services.get::<Counter>().is_none());
        let a = services.get_or_register(Counter::default);
        let b = services.get_or_register(|| unreachable!("already registered"));
        assert!(Arc::ptr_eq(&a, &b));
        services.tick_all();
        services.tick_all();
        services.close_all();
        assert_eq!(a.ticks.load(Ordering::Relaxed), 2);
        assert_eq!(a.closes.load(Ordering::Relaxed), 1);
    }
}
