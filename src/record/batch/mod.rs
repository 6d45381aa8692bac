//! Kafka RecordBatch v2: the header and its checksum (`header`), zero-copy views of whole
//! batches and their records (`view`), the record decoder (`decoder`) and [`BatchBuilder`],
//! which encodes records in place into a reused buffer (`builder`).

mod builder;
mod decoder;
mod header;
mod view;

pub use builder::BatchBuilder;
pub(crate) use header::BATCH_HEADER_LEN;
pub use header::{BatchHeader, TimestampType};
pub(crate) use header::{
    batch_crc, crc32c, empty_batch, placeholder_batch, stamp_base_offset, stamp_base_sequence,
    stamp_log_append_time,
};
pub use view::{Batch, Batches, RecordIter, RecordRef, Records};
pub(crate) use view::{BatchRef, RecordCursor, decompressed_section, records_section};

#[cfg(test)]
mod tests;
