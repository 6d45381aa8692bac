//! Shared by the benches: a full in-order read of one partition.

use std::hint::black_box;

use topiclog::PartitionHandle;

/// How records are visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// `Batch::records`: each record a `StoredRecord` of `Bytes` views.
    Owned,
    /// `Batch::for_each_record`: each record borrowed from the batch.
    Borrowed,
}

/// Reads the whole partition in order, `read_bytes` per read, checking every batch's CRC and
/// decoding every record; returns the number of records and the sum of their value lengths.
pub fn scan_partition(h: &PartitionHandle, read_bytes: usize, visit: Visit) -> (u64, usize) {
    let end = h.high_watermark();
    let mut offset = h.log_start_offset();
    let mut records = 0u64;
    let mut value_bytes = 0usize;
    while offset < end {
        let res = h.read(offset, read_bytes).expect("read");
        for b in &res.batches {
            b.verify_crc().expect("crc");
            match visit {
                Visit::Owned => {
                    for r in b.records().expect("records") {
                        let r = r.expect("record");
                        value_bytes += r.value.as_ref().map_or(0, bytes::Bytes::len);
                        records += 1;
                        black_box(&r);
                    }
                }
                Visit::Borrowed => {
                    let n = b
                        .for_each_record(|r| {
                            value_bytes += r.value.map_or(0, <[u8]>::len);
                            black_box(&r);
                        })
                        .expect("records");
                    records += n as u64;
                }
            }
        }
        offset = res.next_offset().expect("read returned no batch");
    }
    (records, value_bytes)
}
