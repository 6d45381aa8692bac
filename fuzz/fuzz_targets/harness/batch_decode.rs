//! Decodes arbitrary bytes as Kafka RecordBatch v2 data through every public entry point:
//! `BatchHeader::parse`, `Batch::new`, `Batch::verify_crc`, `Batch::records` (all codecs: the
//! attribute bits pick none/gzip/snappy/lz4/zstd or an unknown id) and the `Batches` splitter.
//!
//! Properties checked besides "never panics":
//! - a batch that `Batches` cuts out is accepted by `Batch::new` unchanged, with the same header;
//! - records that decode re-encode with `BatchBuilder` into a batch with a valid CRC that decodes
//!   to the same keys, values, headers and timestamps.
//!
//! No libfuzzer dependency: `fuzz_targets/batch_decode.rs` calls [`run`], and a regression test
//! can include this file with `#[path]` (see `tests/fuzz_regressions.rs` in the main crate).

use bytes::Bytes;
use topiclog::{Batch, BatchBuilder, BatchHeader, Batches, Compression, StoredRecord};

/// Re-encodes at most this many decoded records (keeps each run fast).
const MAX_ROUNDTRIP: usize = 256;

fn exercise_header(h: &BatchHeader) {
    let _ = h.size();
    let _ = h.last_offset();
    let _ = h.compression();
    let _ = h.timestamp_type();
    let _ = h.is_transactional();
    let _ = h.is_control();
    let _ = h.has_delete_horizon();
}

fn decode(batch: &Batch) {
    exercise_header(batch.header());
    assert_eq!(batch.len(), batch.header().size());
    assert!(!batch.is_empty());
    let _ = batch.base_offset();
    let _ = batch.last_offset();
    let _ = batch.record_count();
    let crc_ok = batch.crc_ok();
    assert_eq!(
        crc_ok,
        batch.verify_crc().is_ok(),
        "crc_ok and verify_crc disagree"
    );

    let Ok(iter) = batch.owned_records() else {
        return;
    };
    let mut decoded: Vec<StoredRecord> = Vec::new();
    let mut all_ok = true;
    // Iterate to the end: the iterator must stop by itself after an error.
    for r in iter {
        match r {
            Ok(r) => decoded.push(r),
            Err(_) => all_ok = false,
        }
    }
    // The borrowing scan must see the same records and fail exactly where the owned one does.
    let mut borrowed: Vec<StoredRecord> = Vec::new();
    let scan = batch.for_each_record(|r| borrowed.push(r.to_stored()));
    assert_eq!(
        scan.is_ok(),
        all_ok,
        "for_each_record and records disagree on errors"
    );
    assert_eq!(
        borrowed, decoded,
        "for_each_record and records disagree on contents"
    );
    if all_ok && !decoded.is_empty() && decoded.len() <= MAX_ROUNDTRIP {
        roundtrip(&decoded);
    }
}

/// Encodes `records` again (uncompressed) and checks they decode to the same contents.
fn roundtrip(records: &[StoredRecord]) {
    let mut b = BatchBuilder::new(Compression::None);
    for r in records {
        if b.push(
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
            r.timestamp,
        )
        .is_err()
        {
            return;
        }
    }
    let Ok(bytes) = b.finish() else { return };
    let bytes = Bytes::copy_from_slice(bytes);
    let batch = Batch::new(bytes).expect("BatchBuilder output must parse");
    batch
        .verify_crc()
        .expect("BatchBuilder output must have a valid CRC");
    let again: Vec<StoredRecord> = batch
        .owned_records()
        .expect("BatchBuilder output must decode")
        .collect::<Result<_, _>>()
        .expect("every re-encoded record must decode");
    assert_eq!(again.len(), records.len());
    for (i, (a, r)) in again.iter().zip(records).enumerate() {
        assert_eq!(a.offset, i as i64, "re-encoded offsets count from 0");
        assert_eq!(a.timestamp, r.timestamp, "timestamp of record {i}");
        assert_eq!(a.key, r.key, "key of record {i}");
        assert_eq!(a.value, r.value, "value of record {i}");
        assert_eq!(a.headers, r.headers, "headers of record {i}");
    }
}

/// One run on `data`; panics on any failed check.
pub fn run(data: &[u8]) {
    if let Ok(h) = BatchHeader::parse(data) {
        exercise_header(&h);
    }

    let bytes = Bytes::copy_from_slice(data);

    // The whole input as exactly one batch.
    if let Ok(batch) = Batch::new(bytes.clone()) {
        decode(&batch);
    }

    // The input as a run of concatenated batches (a segment slice or a fetch response).
    for batch in Batches::new(bytes).flatten() {
        let again = Batch::new(batch.as_bytes().clone())
            .expect("a batch cut out by Batches must be accepted by Batch::new");
        assert_eq!(again.header(), batch.header());
        decode(&batch);
    }
}
