#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use crate::record::batch::batch_crc;
use crate::{BatchBuilder, Compression, Error, LogOptions, Record};

fn quiet(dir: &std::path::Path) -> crate::Log {
    LogOptions::new().flusher(None).open(dir).unwrap()
}

/// A one-record batch that claims `delta` as its last offset delta (as compacted batches may).
fn batch_with_delta(delta: i32) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(Some(b"k"), Some(b"v"), &[], 1).unwrap();
    let mut bytes = b.finish().unwrap().to_vec();
    bytes[23..27].copy_from_slice(&delta.to_be_bytes());
    let crc = batch_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

#[test]
fn rolls_before_relative_offsets_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let log = quiet(dir.path());
    log.create_topic("t", 1).unwrap();
    let h = log.partition("t", 0).unwrap();
    let p = h.inner();
    p.append_encoded(&mut batch_with_delta(0), None).unwrap();
    let at = p
        .append_encoded(&mut batch_with_delta(i32::MAX - 10), None)
        .unwrap();
    assert_eq!(at.last_offset, i64::from(i32::MAX) - 9);
    assert_eq!(p.segments().len(), 1);
    let at = p.append_encoded(&mut batch_with_delta(20), None).unwrap();
    assert_eq!(p.segments().len(), 2, "relative offset would overflow i32");
    assert_eq!(p.segments()[1].base_offset, at.base_offset);
    log.close().unwrap();
    let log = quiet(dir.path());
    assert_eq!(
        log.partition("t", 0).unwrap().log_end_offset(),
        at.last_offset + 1
    );
}

#[test]
fn a_poisoned_partition_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let log = quiet(dir.path());
    log.create_topic("t", 1).unwrap();
    let h = log.partition("t", 0).unwrap();
    h.append(&[Record::new("a")]).unwrap();
    h.inner().poison("fsync failed: EIO (injected)".into());
    match h.append(&[Record::new("b")]) {
        Err(Error::Poisoned { reason, .. }) => assert!(reason.contains("EIO")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(h.inner().sync_to(5), Err(Error::Poisoned { .. })));
    // Reads of what was acknowledged still work.
    assert_eq!(h.records(0, 1024).unwrap().len(), 1);
    assert!(log.close().is_err(), "close reports the poisoned partition");
    let log = quiet(dir.path());
    let h = log.partition("t", 0).unwrap();
    assert_eq!(h.log_end_offset(), 1);
    h.append(&[Record::new("c")]).unwrap();
}
