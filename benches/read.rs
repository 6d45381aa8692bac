//! Sequential read throughput: records per second consumed in order from one partition, with
//! every batch's CRC-32C checked and every record decoded.
//!
//! Before each case (untimed) a fresh log in a temporary directory gets [`RECORDS`] records
//! (8-byte keys, values of 100 B or 1 KiB) appended in batches of 1000 with codec none, lz4 or
//! zstd, in 256 MiB segments, then [`Log::flush`] syncs it so no background writeback runs
//! while timing. One iteration reads the whole partition back from its start:
//! [`PartitionHandle::read`] with a 1 MiB budget, [`Batch::verify_crc`] on each batch, and
//! each record of [`Batch::records`] decoded (uncompressed values are views of the mapped
//! segment; compressed batches are decompressed first). The `<codec>-borrowed` cases scan with
//! [`Batch::for_each_record`] instead: records borrowed from the batch, no reference counting.
//!
//! Values look like small JSON events (`{"seq":..,"type":..,"customer":..,"payload":"<hex>"}`)
//! drawn from a pool of 4096 distinct ones, as in the append bench.
//!
//! Run: `cargo bench --bench read -- --noplot`.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::hint::black_box;
use std::time::Duration;

#[path = "support/scan.rs"]
mod scan;
use scan::{Visit, scan_partition};
#[path = "support/values.rs"]
mod values;
use values::{POOL, value_pool};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use topiclog::{
    BatchBuilder, Compression, FlushPolicy, Log, LogOptions, PartitionHandle, TopicConfig,
};

/// Records in each data set.
const RECORDS: u64 = 1_000_000;
/// Records per stored batch.
const BATCH: usize = 1000;
/// Value sizes in bytes.
const VALUE_SIZES: [usize; 2] = [100, 1024];
/// Codecs the batches are written with.
const CODECS: [Compression; 3] = [Compression::None, Compression::Lz4, Compression::Zstd];
/// Record timestamp.
const TS: i64 = 1_700_000_000_000;
/// Bytes asked of each `read` call.
const READ_BYTES: usize = 1 << 20;

/// A log in a temporary directory holding one written partition.
struct Dataset {
    // Dropped in this order: the log closes before its directory is removed.
    _log: Log,
    handle: PartitionHandle,
    _dir: tempfile::TempDir,
}

fn build(size: usize, codec: Compression) -> Dataset {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new().open(dir.path()).unwrap();
    let mut config = TopicConfig::new();
    config.flush_policy = FlushPolicy::Os;
    config.segment_bytes = 256 << 20;
    log.create_topic_with("bench", 1, config).unwrap();
    let handle = log.partition("bench", 0).unwrap();
    let pool = value_pool(size);
    let mut builder = BatchBuilder::new(codec);
    let mut seq = 0u64;
    while seq < RECORDS {
        for _ in 0..BATCH {
            let i = (seq as usize) % POOL;
            builder
                .push(
                    Some(&seq.to_be_bytes()),
                    Some(&pool[i * size..(i + 1) * size]),
                    &[],
                    TS,
                )
                .unwrap();
            seq += 1;
        }
        handle.append_builder(&mut builder).unwrap();
    }
    log.flush().unwrap();
    let d = log.describe_topic("bench").unwrap();
    let p = &d.partitions[0];
    eprintln!(
        "data set {codec} {size}B: {} records, {} bytes in {} segments ({:.1} B/record)",
        p.log_end_offset,
        p.size_bytes,
        p.segments,
        p.size_bytes as f64 / p.log_end_offset as f64
    );
    Dataset {
        _log: log,
        handle,
        _dir: dir,
    }
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(10)
        .measurement_time(Duration::from_millis(2500))
        .warm_up_time(Duration::from_secs(1))
        // One iteration is a whole scan (tens of ms to seconds): the same count per sample.
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(RECORDS));
    for size in VALUE_SIZES {
        for codec in CODECS {
            // Built on first use (untimed), so a filtered run builds only what it measures;
            // criterion calls this closure again for the measurement after the warm-up.
            let mut data: Option<Dataset> = None;
            g.bench_function(
                BenchmarkId::new(codec.name(), format!("{size}B/{RECORDS}")),
                |b| {
                    let data = data.get_or_insert_with(|| {
                        let d = build(size, codec);
                        let (n, bytes) = scan_partition(&d.handle, READ_BYTES, Visit::Owned);
                        assert_eq!(n, RECORDS);
                        assert_eq!(bytes, RECORDS as usize * size);
                        d
                    });
                    b.iter(|| black_box(scan_partition(&data.handle, READ_BYTES, Visit::Owned)));
                },
            );
            g.bench_function(
                BenchmarkId::new(
                    format!("{}-borrowed", codec.name()),
                    format!("{size}B/{RECORDS}"),
                ),
                |b| {
                    let data = data.get_or_insert_with(|| build(size, codec));
                    assert_eq!(
                        scan_partition(&data.handle, READ_BYTES, Visit::Borrowed).0,
                        RECORDS
                    );
                    b.iter(|| black_box(scan_partition(&data.handle, READ_BYTES, Visit::Borrowed)));
                },
            );
            drop(data);
        }
    }
    g.finish();
}

criterion_group!(benches, read);
criterion_main!(benches);
