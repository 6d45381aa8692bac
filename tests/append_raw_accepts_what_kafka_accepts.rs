//! `PartitionHandle::append_raw` accepts a client batch exactly when Kafka's broker does: a batch
//! without a producer id may carry any base sequence (default producers send 0), and one with a
//! producer id needs a sequence and an epoch.

mod common;
use common::*;
use topiclog::{BatchBuilder, Compression, Error};

/// A one-record batch with its producer fields set as a client would send them.
fn client_batch(producer_id: i64, epoch: i16, base_sequence: i32) -> TestResult<Vec<u8>> {
    let mut b = BatchBuilder::new(Compression::None);
    b.push(Some(b"k"), Some(b"v"), &[], 1_700_000_000_000)?;
    let mut bytes = b.finish()?.to_vec();
    let field = |bytes: &mut Vec<u8>, at: usize, v: &[u8]| -> TestResult {
        bytes
            .get_mut(at..at + v.len())
            .ok_or("batch shorter than its header")?
            .copy_from_slice(v);
        Ok(())
    };
    field(&mut bytes, 43, &producer_id.to_be_bytes())?;
    field(&mut bytes, 51, &epoch.to_be_bytes())?;
    field(&mut bytes, 53, &base_sequence.to_be_bytes())?;
    let crc = crc32c::crc32c(bytes.get(21..).ok_or("batch shorter than its header")?);
    field(&mut bytes, 17, &crc.to_be_bytes())?;
    Ok(bytes)
}

#[test]
fn a_batch_without_a_producer_id_is_stored_whatever_its_sequence() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    for (i, seq) in [0, 0, 5, -1].into_iter().enumerate() {
        let at = p.append_raw(&mut client_batch(-1, -1, seq)?)?;
        assert_eq!(at.base_offset, i as i64, "base sequence {seq}");
    }
    let read = p.read(0, 1 << 20)?;
    let seqs: Vec<i32> = read
        .batches
        .iter()
        .map(|b| b.header().base_sequence)
        .collect();
    assert_eq!(seqs, [0, 0, 5, -1], "stored as sent");
    Ok(())
}

#[test]
fn a_batch_with_a_producer_id_needs_a_sequence_and_an_epoch() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    for (epoch, seq) in [(0, -1), (-1, 0)] {
        let refused = p.append_raw(&mut client_batch(7, epoch, seq)?);
        assert!(
            matches!(refused, Err(Error::InvalidBatch { .. })),
            "epoch {epoch}, sequence {seq}: {refused:?}"
        );
    }
    assert_eq!(p.log_end_offset(), 0);
    let at = p.append_raw(&mut client_batch(7, 0, 0)?)?;
    assert_eq!(at.base_offset, 0);
    Ok(())
}
