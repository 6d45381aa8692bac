//! Shared by the benches: a full in-order read of one partition.

use std::hint::black_box;

use topiclog::{Consumer, PartitionHandle, TopicPartition};

/// How records are visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each bench uses the visits it compares
pub enum Visit {
    /// `Batch::owned_records`: each record a `StoredRecord` of `Bytes` views.
    Owned,
    /// `Batch::for_each_record`: each record borrowed from the batch.
    Borrowed,
    /// `Batch::records`: an iterator of records borrowed from the batch.
    Records,
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
                    for r in b.owned_records().expect("records") {
                        let r = r.expect("record");
                        value_bytes += r.value.as_ref().map_or(0, bytes::Bytes::len);
                        records += 1;
                        black_box(&r);
                    }
                }
                Visit::Records => {
                    for r in b.records().expect("records") {
                        let r = r.expect("record");
                        value_bytes += r.value.map_or(0, <[u8]>::len);
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

/// Reads `records` records of partition 0 of `topic` from its start through `consumer`
/// (assigned to it), poll by poll, as an application reads; returns the number of records and
/// the sum of their value lengths.
#[allow(dead_code)] // each bench uses the visits it compares
pub fn poll_partition(consumer: &mut Consumer, topic: &str, records: u64) -> (u64, usize) {
    let tp = TopicPartition::new(topic, 0);
    consumer
        .seek_to_beginning(std::slice::from_ref(&tp))
        .expect("seek");
    let mut seen = 0u64;
    let mut value_bytes = 0usize;
    while seen < records {
        let polled = consumer
            .poll(std::time::Duration::from_secs(1))
            .expect("poll");
        assert!(!polled.is_empty(), "records remain");
        for r in &polled {
            value_bytes += r.value().map_or(0, <[u8]>::len);
            seen += 1;
            black_box(&r);
        }
    }
    (seen, value_bytes)
}
