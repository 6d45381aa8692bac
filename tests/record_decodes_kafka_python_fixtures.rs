//! Batches written by an independent Kafka client (kafka-python) decode to the records its
//! manifest lists, for every codec, and any flipped byte after offset 21 fails the CRC.
#![allow(clippy::indexing_slicing)]

mod common;

use bytes::Bytes;
use common::TestResult;
use serde_json::Value;
use topiclog::{Batch, Compression, Error, Result, TimestampType};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/kafka-python");

fn bytes_field(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| s.as_bytes().to_vec())
}

#[test]
fn every_fixture_decodes_to_its_manifest() -> TestResult {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/manifest.json"))?)?;
    let files = manifest
        .as_object()
        .ok_or("the manifest is not an object")?;
    assert_eq!(files.len(), 5);
    for (file, want) in files {
        let raw = std::fs::read(format!("{DIR}/{file}"))?;
        let batch = Batch::new(Bytes::from(raw.clone()))?;
        batch.verify_crc()?;
        let h = batch.header();
        let codec: Compression = want["codec"]
            .as_str()
            .ok_or("not a string in the manifest")?
            .parse()?;
        assert_eq!(h.compression()?, codec, "{file}");
        assert_eq!(
            h.base_offset,
            want["base_offset"]
                .as_i64()
                .ok_or("not a number in the manifest")?
        );
        assert_eq!(
            h.producer_id,
            want["producer_id"]
                .as_i64()
                .ok_or("not a number in the manifest")?
        );
        assert_eq!(
            i64::from(h.producer_epoch),
            want["producer_epoch"]
                .as_i64()
                .ok_or("not a number in the manifest")?
        );
        assert_eq!(
            i64::from(h.base_sequence),
            want["base_sequence"]
                .as_i64()
                .ok_or("not a number in the manifest")?
        );
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        let records: Vec<_> = batch.owned_records()?.collect::<Result<_>>()?;
        let expected = want["records"]
            .as_array()
            .ok_or("not an array in the manifest")?;
        assert_eq!(records.len(), expected.len(), "{file}");
        for (r, e) in records.iter().zip(expected) {
            assert_eq!(
                r.offset,
                h.base_offset
                    + e["offset_delta"]
                        .as_i64()
                        .ok_or("not a number in the manifest")?
            );
            assert_eq!(
                r.timestamp,
                e["timestamp"]
                    .as_i64()
                    .ok_or("not a number in the manifest")?
            );
            assert_eq!(r.key.as_deref().map(<[u8]>::to_vec), bytes_field(&e["key"]));
            assert_eq!(
                r.value.as_deref().map(<[u8]>::to_vec),
                bytes_field(&e["value"])
            );
            let headers = e["headers"]
                .as_array()
                .ok_or("not an array in the manifest")?;
            assert_eq!(r.headers.len(), headers.len());
            for (h, eh) in r.headers.iter().zip(headers) {
                assert_eq!(h.key, eh[0].as_str().ok_or("not a string in the manifest")?);
                assert_eq!(h.value.as_deref().map(<[u8]>::to_vec), bytes_field(&eh[1]));
            }
        }
        // Flipping any byte the CRC covers is detected.
        for i in (21..raw.len()).step_by(7) {
            let mut bad = raw.clone();
            bad[i] ^= 0x40;
            let b = Batch::new(Bytes::from(bad))?;
            assert!(
                matches!(b.verify_crc(), Err(Error::ChecksumMismatch { .. })),
                "{file}: flip at {i} passed the CRC"
            );
        }
    }
    Ok(())
}
