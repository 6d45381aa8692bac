//! Transaction markers in Kafka's format: a control batch of one COMMIT or ABORT record (key
//! `version 0, type`, 0 = ABORT and 1 = COMMIT; value `version 0, coordinator epoch`), with the
//! transactional and control attribute bits. An independent Kafka-format decoder reads the
//! batches topiclog builds, topiclog reads the ones it encodes, and `topiclog dump-log` shows
//! both bits and the marker, as Kafka's DumpLogSegments does.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;
use common::*;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KTimestampType,
};
use topiclog::{Batch, BatchBuilder, Compression, ControlRecord, EndTxnMarker};

const PRODUCER: i64 = 4242;
const EPOCH: i16 = 3;
const TS: i64 = 1_700_000_000_000;

/// A transactional batch of `n` records at `base`, as a transactional producer writes it.
fn transactional_batch(base: i64, n: usize) -> TestResult<Vec<u8>> {
    let mut b = BatchBuilder::new(Compression::None);
    b.set_producer(PRODUCER, EPOCH, 0);
    b.set_transactional(true);
    for i in 0..n {
        b.push(Some(b"k"), Some(format!("v{i}").as_bytes()), &[], TS)?;
    }
    let mut bytes = b.finish()?.to_vec();
    bytes[..8].copy_from_slice(&base.to_be_bytes());
    Ok(bytes)
}

/// The marker batch for `marker` at `base` (the base offset lies outside the CRC).
fn marker_batch(marker: EndTxnMarker, base: i64) -> TestResult<Vec<u8>> {
    let mut bytes = marker.batch(PRODUCER, EPOCH, TS + 1)?;
    bytes[..8].copy_from_slice(&base.to_be_bytes());
    Ok(bytes)
}

#[test]
fn an_independent_decoder_reads_topiclogs_markers() -> TestResult {
    for commit in [true, false] {
        let marker = EndTxnMarker {
            commit,
            coordinator_epoch: 9,
        };
        let mut buf = Bytes::from(marker_batch(marker, 17)?);
        let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| e.to_string())?;
        assert_eq!(set.records.len(), 1);
        let r = &set.records[0];
        assert!(r.control && r.transactional);
        assert_eq!(
            (r.producer_id, r.producer_epoch, r.sequence),
            (PRODUCER, EPOCH, -1)
        );
        assert_eq!(r.offset, 17);
        assert_eq!(r.key.as_deref(), Some(&[0, 0, 0, u8::from(commit)][..]));
        assert_eq!(r.value.as_deref(), Some(&[0, 0, 0, 0, 0, 9][..]));
    }
    // A transactional data batch carries bit 4 and not bit 5.
    let mut buf = Bytes::from(transactional_batch(0, 3)?);
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| e.to_string())?;
    assert!(set.records.iter().all(|r| r.transactional && !r.control));
    Ok(())
}

#[test]
fn topiclog_reads_markers_another_encoder_wrote() -> TestResult {
    for (kind, commit) in [(0u8, false), (1u8, true)] {
        let record = KRecord {
            transactional: true,
            control: true,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: PRODUCER,
            producer_epoch: EPOCH,
            timestamp_type: KTimestampType::Creation,
            offset: 5,
            sequence: -1,
            timestamp: TS,
            key: Some(Bytes::from(vec![0, 0, 0, kind])),
            value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 2])),
            headers: IndexMap::new(),
        };
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            [&record],
            &RecordEncodeOptions {
                version: 2,
                compression: KCompression::None,
            },
        )
        .map_err(|e| e.to_string())?;
        let batch = Batch::new(buf.freeze())?;
        batch.verify_crc()?;
        assert!(batch.header().is_control() && batch.header().is_transactional());
        assert_eq!(
            batch.control_record().transpose()?,
            Some(ControlRecord::EndTxn(EndTxnMarker {
                commit,
                coordinator_epoch: 2
            }))
        );
    }
    // A batch of application records has no control record.
    let data = Batch::new(transactional_batch(0, 1)?.into())?;
    assert!(data.control_record().is_none());
    Ok(())
}

#[cfg(feature = "cli")]
#[test]
fn dump_log_shows_the_transaction_bits_and_markers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let seg = dir.path().join("00000000000000000000.log");
    let mut file = transactional_batch(0, 2)?;
    file.extend(marker_batch(
        EndTxnMarker {
            commit: true,
            coordinator_epoch: 0,
        },
        2,
    )?);
    file.extend(transactional_batch(3, 1)?);
    file.extend(marker_batch(
        EndTxnMarker {
            commit: false,
            coordinator_epoch: 0,
        },
        4,
    )?);
    std::fs::write(&seg, &file)?;
    let path = seg.to_str().ok_or("a path that is not UTF-8")?;
    let out = run_cli(dir.path(), &["dump-log", path], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 4, "{text}");
    // Columns 11 and 12: transactional, control.
    let bits: Vec<(&str, &str)> = rows.iter().map(|r| (r[10], r[11])).collect();
    assert_eq!(
        bits,
        [
            ("transactional", "-"),
            ("transactional", "control"),
            ("transactional", "-"),
            ("transactional", "control"),
        ]
    );
    assert!(rows.iter().all(|r| r[9] == "crc-ok"), "{text}");
    let out = run_cli(dir.path(), &["dump-log", path, "--records"], b"");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.contains("\t2\t1700000000001\tendTxnMarker: COMMIT coordinatorEpoch: 0\n"),
        "{text}"
    );
    assert!(
        text.contains("\t4\t1700000000001\tendTxnMarker: ABORT coordinatorEpoch: 0\n"),
        "{text}"
    );
    Ok(())
}
