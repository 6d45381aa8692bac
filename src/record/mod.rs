//! Kafka's RecordBatch v2 format: varints, records, batches and compression codecs.

pub mod batch;
pub mod codec;
#[allow(clippy::module_inception)]
pub mod record;
mod varint;

pub use batch::{Batch, BatchBuilder, BatchHeader, Batches, RecordIter, RecordRef};
pub use codec::Compression;
pub use record::{Header, Record, StoredRecord};
