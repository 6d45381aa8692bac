//! Kafka's RecordBatch v2 format: varints, records, batches and compression codecs.

pub(crate) mod batch;
pub(crate) mod codec;
pub(crate) mod control;
#[allow(clippy::module_inception)]
pub(crate) mod record;
pub(crate) mod varint;

pub use batch::{
    Batch, BatchBuilder, BatchHeader, Batches, RecordIter, RecordRef, Records, TimestampType,
};
pub use codec::Compression;
pub use control::{ControlRecord, EndTxnMarker};
pub use record::{Header, Record, StoredRecord};
