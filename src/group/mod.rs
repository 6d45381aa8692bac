//! Consumer groups: Kafka's classic group protocol run by an in-process coordinator,
//! Kafka's consumer-protocol encodings and assignors, and committed offsets kept in the
//! internal `__consumer_offsets` topic.

pub mod assignor;
pub(crate) mod coordinator;
pub(crate) mod membership;
pub(crate) mod offsets;
pub mod offsets_codec;
pub mod protocol;
