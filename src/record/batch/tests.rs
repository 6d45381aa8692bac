#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::wildcard_imports
)]

use super::decoder::*;
use super::header::*;
use super::*;
use crate::error::Result;
use crate::record::codec::Compression;
use crate::record::{Header, StoredRecord};
use bytes::Bytes;
use proptest::prelude::*;

/// A two-record batch assembled byte by byte from Kafka's DefaultRecordBatch/DefaultRecord
/// layout, independently of the encoder.
fn hand_assembled() -> Vec<u8> {
    let records: Vec<u8> = vec![
        0x10, // record 0 length 8
        0x00, // attributes
        0x00, // timestampDelta 0
        0x00, // offsetDelta 0
        0x02, b'k', // key "k"
        0x02, b'v', // value "v"
        0x00, // no headers
        0x18, // record 1 length 12
        0x00, // attributes
        0x0a, // timestampDelta 5
        0x02, // offsetDelta 1
        0x01, // null key
        0x04, b'x', b'y', // value "xy"
        0x02, // one header
        0x02, b'h', // header key "h"
        0x02, b'1', // header value "1"
    ];
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes()); // batchLength
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&[0, 0, 0, 0]); // crc, filled below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&1i32.to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&1000i64.to_be_bytes()); // baseTimestamp
    b.extend_from_slice(&1005i64.to_be_bytes()); // maxTimestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producerId
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producerEpoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // baseSequence
    b.extend_from_slice(&2i32.to_be_bytes()); // recordsCount
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn encoder_matches_hand_assembled_batch() {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(Some(b"k"), Some(b"v"), &[], 1000).unwrap();
    builder
        .push(None, Some(b"xy"), &[Header::new("h", "1")], 1005)
        .unwrap();
    let encoded = builder.finish().unwrap().to_vec();
    assert_eq!(encoded, hand_assembled());
}

#[test]
fn decodes_hand_assembled_batch() {
    let batch = Batch::new(Bytes::from(hand_assembled())).unwrap();
    batch.verify_crc().unwrap();
    assert_eq!(batch.last_offset(), 1);
    let recs: Vec<_> = batch
        .owned_records()
        .unwrap()
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
    assert_eq!(recs[0].timestamp, 1000);
    assert_eq!(recs[1].key, None);
    assert_eq!(recs[1].offset, 1);
    assert_eq!(recs[1].timestamp, 1005);
    assert_eq!(recs[1].headers, vec![Header::new("h", "1")]);
}

#[test]
fn uncompressed_records_share_the_batch_buffer() {
    let bytes = Bytes::from(hand_assembled());
    let range = bytes.as_ptr_range();
    let batch = Batch::new(bytes.clone()).unwrap();
    let rec = batch.owned_records().unwrap().next().unwrap().unwrap();
    let v = rec.value.unwrap();
    assert!(
        range.contains(&v.as_ptr()),
        "value must be a view, not a copy"
    );
}

#[test]
fn every_flipped_byte_after_21_fails_the_crc() {
    let good = hand_assembled();
    for i in 21..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let batch = Batch::new(Bytes::from(bad)).unwrap();
        assert!(batch.verify_crc().is_err(), "flip at {i} not detected");
    }
}

#[test]
fn stamping_base_offset_keeps_the_crc_valid() {
    let mut b = hand_assembled();
    stamp_base_offset(&mut b, 42);
    let batch = Batch::new(Bytes::from(b)).unwrap();
    batch.verify_crc().unwrap();
    assert_eq!(batch.base_offset(), 42);
    assert_eq!(
        batch
            .owned_records()
            .unwrap()
            .nth(1)
            .unwrap()
            .unwrap()
            .offset,
        43
    );
}

#[test]
fn log_append_time_gives_every_record_the_batch_time() {
    let mut b = hand_assembled();
    stamp_log_append_time(&mut b, 9999);
    let batch = Batch::new(Bytes::from(b)).unwrap();
    batch.verify_crc().unwrap();
    assert_eq!(
        batch.header().timestamp_type(),
        TimestampType::LogAppendTime
    );
    for r in batch.owned_records().unwrap() {
        assert_eq!(r.unwrap().timestamp, 9999);
    }
}

#[test]
fn compressed_round_trip_each_codec() {
    for codec in Compression::ALL {
        if !codec.is_available() {
            continue;
        }
        let mut builder = BatchBuilder::new(codec);
        for i in 0..500u32 {
            let v = format!("value-{i}-{}", "abc".repeat(10));
            builder
                .push(
                    Some(&i.to_be_bytes()),
                    Some(v.as_bytes()),
                    &[],
                    1_000 + i64::from(i),
                )
                .unwrap();
        }
        let bytes = builder.finish().unwrap().to_vec();
        let batch = Batch::new(Bytes::from(bytes)).unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(batch.header().compression().unwrap(), codec);
        let recs: Vec<_> = batch
            .owned_records()
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(recs.len(), 500);
        assert_eq!(recs[499].offset, 499);
        assert_eq!(recs[499].timestamp, 1499);
        assert_eq!(batch.header().max_timestamp, 1499);
    }
}

#[test]
fn trailing_bytes_after_declared_records_are_an_error() {
    let mut b = hand_assembled();
    // Declare one record where two are stored.
    b[57..61].copy_from_slice(&1i32.to_be_bytes());
    let batch = Batch::new(Bytes::from(b)).unwrap();
    let results: Vec<_> = batch.owned_records().unwrap().collect();
    assert!(results.iter().any(Result::is_err));
}

#[test]
fn batches_iterator_stops_at_a_partial_batch() {
    let one = hand_assembled();
    let mut two = one.clone();
    two.extend_from_slice(&one);
    two.extend_from_slice(&one[..30]);
    let got: Vec<_> = Batches::new(Bytes::from(two))
        .collect::<Result<_>>()
        .unwrap();
    assert_eq!(got.len(), 2);
}

#[test]
fn bad_magic_and_short_input_are_errors() {
    let mut b = hand_assembled();
    b[16] = 1;
    assert!(Batch::new(Bytes::from(b)).is_err());
    assert!(Batch::new(Bytes::from_static(b"short")).is_err());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let bytes = Bytes::from(bytes);
        for batch in Batches::new(bytes.clone()).flatten() {
            let _ = batch.verify_crc();
            if let Ok(records) = batch.owned_records() {
                for r in records { let _ = r; }
            }
        }
        if let Ok(batch) = Batch::new(bytes)
            && let Ok(records) = batch.owned_records() {
                for r in records { let _ = r; }
            }
    }

    #[test]
    fn mutated_valid_batches_never_panic(idx in 0usize..83, val: u8) {
        let mut b = hand_assembled();
        let i = idx % b.len();
        b[i] = val;
        if let Ok(batch) = Batch::new(Bytes::from(b))
            && let Ok(records) = batch.owned_records() {
                for r in records { let _ = r; }
            }
    }
}

#[test]
fn borrowed_scan_matches_owned_records_for_every_codec() {
    for codec in [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        #[cfg(feature = "gzip")]
        Compression::Gzip,
        #[cfg(feature = "snappy")]
        Compression::Snappy,
    ] {
        let mut b = BatchBuilder::new(codec);
        for i in 0..50u32 {
            let headers = [Header::new("h", format!("{i}")), Header::null("n")];
            let key = (i % 3 != 0).then(|| i.to_be_bytes());
            let value = "v".repeat(i as usize * 7);
            b.push(
                key.as_ref().map(|k| &k[..]),
                (i % 5 != 0).then_some(value.as_bytes()),
                if i % 2 == 0 { &headers[..] } else { &[] },
                1_700_000_000_000 + i64::from(i),
            )
            .unwrap();
        }
        let batch = Batch::new(Bytes::copy_from_slice(b.finish().unwrap())).unwrap();
        let owned: Vec<StoredRecord> = batch.owned_records().unwrap().map(Result::unwrap).collect();
        let mut borrowed = Vec::new();
        let n = batch
            .for_each_record(|r| borrowed.push(r.to_stored()))
            .unwrap();
        assert_eq!(n, 50);
        assert_eq!(borrowed, owned, "{codec:?}");
        assert_eq!(owned[2].headers.len(), 2);
    }
}

#[test]
fn borrowed_scan_stops_at_the_first_bad_record() {
    let mut bytes = hand_assembled();
    // Cut the second record's value short: the first record is visited, then the error.
    let last = bytes.len() - 1;
    bytes.truncate(last);
    let len = (bytes.len() - 12) as i32;
    bytes[8..12].copy_from_slice(&len.to_be_bytes());
    let batch = Batch::new(Bytes::from(bytes)).unwrap();
    let mut seen = 0;
    assert!(batch.for_each_record(|_| seen += 1).is_err());
    assert_eq!(seen, 1);
}

/// Key, value and timestamp of a record without headers.
type Plain = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

/// Kafka's record layout written the slow, obvious way: a reference for the packed encoder.
fn reference_records(records: &[Plain], base_ts: i64) -> Vec<u8> {
    fn uvarint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn zz(v: i64) -> u64 {
        ((v << 1) ^ (v >> 63)) as u64
    }
    let mut out = Vec::new();
    for (i, (k, v, ts)) in records.iter().enumerate() {
        let mut body = vec![0u8];
        uvarint(&mut body, zz(ts.wrapping_sub(base_ts)));
        uvarint(&mut body, zz(i as i64));
        for f in [k, v] {
            match f {
                None => uvarint(&mut body, zz(-1)),
                Some(b) => {
                    uvarint(&mut body, zz(b.len() as i64));
                    body.extend_from_slice(b);
                }
            }
        }
        uvarint(&mut body, 0);
        uvarint(&mut out, zz(body.len() as i64));
        out.extend_from_slice(&body);
    }
    out
}

proptest! {
    #[test]
    fn packed_encoding_matches_the_reference(
        records in proptest::collection::vec(
            (
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..9000)),
                proptest::option::of(prop_oneof![
                    8 => proptest::collection::vec(any::<u8>(), 0..300),
                    // Around the packed encoder's value limit (2^19 bytes).
                    1 => ((1usize << 19) - 2..(1 << 19) + 2).prop_map(|n| vec![7u8; n]),
                ]),
                prop_oneof![
                    any::<i64>(),
                    0i64..100_000,
                    // Around the packed encoder's timestamp-delta limits (±2^27 ms).
                    (1i64 << 27) - 2..(1 << 27) + 2,
                    -(1i64 << 27) - 2..-(1 << 27) + 2,
                    Just(i64::MIN),
                    Just(i64::MAX)
                ],
            ),
            1..6,
        ),
        // An earlier batch in the same builder leaves its bytes past the new batch's end.
        earlier in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..700), any::<bool>()),
            0..4,
        ),
        via_clear: bool,
    ) {
        let mut b = BatchBuilder::new(Compression::None);
        if !earlier.is_empty() {
            for (v, with_header) in &earlier {
                let headers = [Header::new("h", Bytes::copy_from_slice(&v[..v.len().min(9)]))];
                let headers: &[Header] = if *with_header { &headers } else { &[] };
                b.push(Some(v), Some(v), headers, 5).unwrap();
            }
            b.finish().unwrap();
            if via_clear {
                b.clear();
            }
        }
        for (k, v, ts) in &records {
            b.push(k.as_deref(), v.as_deref(), &[], *ts).unwrap();
        }
        let bytes = b.finish().unwrap().to_vec();
        let expected = reference_records(&records, records[0].2);
        prop_assert_eq!(&bytes[BATCH_HEADER_LEN..], &expected[..]);
        let mut fresh = BatchBuilder::new(Compression::None);
        for (k, v, ts) in &records {
            fresh.push(k.as_deref(), v.as_deref(), &[], *ts).unwrap();
        }
        prop_assert_eq!(&bytes[..], &fresh.finish().unwrap()[..]);
    }
}

/// Runs the fast decoder and the general one from the same position of `data` and checks
/// they agree wherever the fast one accepts: same record, same next position.
fn fast_agrees_with_general(data: &[u8], log_append_time: Option<i64>) -> usize {
    let state = CursorState {
        pos: 0,
        remaining: usize::MAX,
        base_offset: 1000,
        base_timestamp: 1_700_000_000_000,
        log_append_time,
        failed: false,
    };
    let mut fast = Cursor { data, state };
    let mut accepted = 0;
    while fast.state.pos < data.len() {
        let before = fast.state.pos;
        let mut general = Cursor {
            data,
            state: fast.state,
        };
        let expected = general.decode_one();
        if let Some(r) = fast.decode_common() {
            assert_eq!(expected.ok(), Some(r), "at {before}");
            assert_eq!(fast.state.pos, general.state.pos);
            accepted += 1;
            continue;
        }
        // Declined: nothing consumed. A valid record (headers, long varints, near the end)
        // is stepped over; an invalid one ends the scan.
        assert_eq!(fast.state.pos, before);
        if expected.is_err() {
            break;
        }
        fast.state.pos = general.state.pos;
    }
    accepted
}

proptest! {
    #[test]
    fn fast_record_decode_matches_the_general_decoder(
        records in proptest::collection::vec(
            (
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
                prop_oneof![0i64..100_000, any::<i64>()],
                any::<bool>(),
            ),
            1..8,
        ),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        append_time in any::<bool>(),
    ) {
        let mut b = BatchBuilder::new(Compression::None);
        for (k, v, ts, with_header) in &records {
            let headers = if *with_header {
                vec![Header { key: "h".into(), value: Some(Bytes::from_static(b"v")) }]
            } else {
                Vec::new()
            };
            b.push(k.as_deref(), v.as_deref(), &headers, *ts).unwrap();
        }
        let mut data = b.finish().unwrap()[BATCH_HEADER_LEN..].to_vec();
        let valid = flips.is_empty();
        for (at, byte) in flips {
            let at = at % data.len();
            data[at] = byte;
        }
        let time = append_time.then_some(42);
        let accepted = fast_agrees_with_general(&data, time);
        if valid && records.len() >= 2 && !records[0].3 && data.len() >= 16 {
            // A first record without headers, with a record after it, takes the fast path.
            prop_assert!(accepted >= 1);
        }
    }

    #[test]
    fn fast_record_decode_matches_on_arbitrary_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        fast_agrees_with_general(&data, None);
    }
}

proptest! {
    /// The engine's CRC-32C (the CPU's CRC instruction for small inputs, `crc-fast`'s SIMD
    /// folding for larger ones) agrees with an independent implementation (the `crc32c`
    /// crate) at every length, across the SIMD block sizes.
    #[test]
    fn crc32c_matches_an_independent_implementation(
        data in proptest::collection::vec(any::<u8>(), 0..5000),
        start in 0usize..64,
    ) {
        let data = data.get(start.min(data.len())..).unwrap();
        prop_assert_eq!(crc32c(data), crc32c::crc32c(data));
    }
}

/// Every length on both sides of the small-input path's limit, at every alignment.
#[test]
fn crc32c_matches_at_every_small_length_and_alignment() {
    let data: Vec<u8> = (0..600u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for start in 0..8 {
        for len in 0..=(data.len() - 8) {
            let slice = data.get(start..start + len).unwrap();
            assert_eq!(
                crc32c(slice),
                crc32c::crc32c(slice),
                "start {start} len {len}"
            );
        }
    }
}

#[test]
fn crc32c_known_value() {
    // The CRC-32/ISCSI check value.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

#[test]
fn empty_batch_keeps_the_header_without_records() {
    // lz4 is always compiled in (gzip and snappy are optional features).
    let mut b = BatchBuilder::new(Compression::Lz4);
    b.push(Some(b"k"), Some(b"v"), &[], 5).unwrap();
    b.push(Some(b"k"), None, &[], 9).unwrap();
    b.set_producer(42, 3, 17);
    let data = b.finish().unwrap();
    stamp_base_offset(data, 1000);
    stamp_log_append_time(data, 77);
    let h = BatchHeader::parse(data).unwrap();
    let bytes = empty_batch(&h);
    let batch = Batch::new(Bytes::copy_from_slice(&bytes)).unwrap();
    batch.verify_crc().unwrap();
    let e = batch.header();
    assert_eq!((e.base_offset, e.last_offset()), (1000, 1001));
    assert_eq!(
        (e.producer_id, e.producer_epoch, e.base_sequence),
        (42, 3, 17)
    );
    assert_eq!((e.base_timestamp, e.max_timestamp), (77, 77));
    assert_eq!(e.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(e.compression().unwrap(), Compression::None);
    assert_eq!(e.record_count, 0);
    assert_eq!(batch.owned_records().unwrap().count(), 0);
}
