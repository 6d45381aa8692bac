//! Consumer groups: Kafka's classic group protocol run by an in-process coordinator,
//! Kafka's consumer-protocol encodings and assignors, and committed offsets kept in the
//! internal `__consumer_offsets` topic. The coordinator is a service of the log
//! (`log::services`): the log ticks its deadlines and wakes its waiters on close without
//! naming it.

mod admin;
pub(crate) mod assignor;
pub(crate) mod coordinator;
pub(crate) mod membership;
pub(crate) mod offsets;
mod offsets_codec;
pub(crate) mod protocol;
mod start;
pub(crate) mod task_assignor;

pub use admin::{GroupDescription, GroupOffset, OffsetSpec};
pub(crate) use start::start;

impl crate::log::services::Service for coordinator::Coordinator {
    fn tick(&self) {
        coordinator::Coordinator::tick(self);
    }

    fn topic_changed(&self, topic: &str) {
        coordinator::Coordinator::topic_changed(self, topic);
    }

    fn close(&self) {
        self.wake_all();
    }
}
