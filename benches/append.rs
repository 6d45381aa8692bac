//! Append throughput: records per second appended to one partition of a fresh topic in a
//! temporary directory, under [`FlushPolicy::Os`] (acknowledged once written to the page
//! cache), through the allocation-free path: one reused [`BatchBuilder`] filled with
//! `push(Some(key), Some(value), &[], ts)` and handed to [`PartitionHandle::append_builder`].
//!
//! Cases: values of 100 B and 1 KiB (8-byte keys), batches of 1 and 1000 records, codecs none,
//! lz4 and zstd. Beside them:
//!
//! - `floor`: the machine's floor, a plain loop `write_all`-ing the same encoded batch bytes
//!   (an uncompressed batch of the same shape) to a `std::fs::File` opened for append, one
//!   call per batch. DESIGN §7 asks topiclog's 100 B × 1000 append for >= 75% of it.
//! - group `encode`: the builder alone (push + finish: encode, compress, CRC), no I/O, to split
//!   an append's cost into encoding and writing.
//!
//! The log must not grow without bound across criterion's iterations: every case counts what
//! it wrote and, between timed stretches, deletes its topic and creates a fresh one after
//! about [`RESET_BYTES`] of uncompressed batches (the floor removes and recreates its file).
//! Resets are not timed. Segments are 1 GiB (the default), so no roll happens while timing.
//!
//! Values look like small JSON events (`{"seq":..,"type":..,"customer":..,"payload":"<hex>"}`)
//! drawn from a pool of 4096 distinct ones, so the codecs see realistic, not degenerate, data.
//!
//! Run: `cargo bench --bench append -- --noplot`.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[path = "support/values.rs"]
mod values;
use values::{POOL, value_pool};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use topiclog::{
    BatchBuilder, Compression, FlushPolicy, Log, LogOptions, PartitionHandle, TopicConfig,
};

/// Value sizes in bytes.
const VALUE_SIZES: [usize; 2] = [100, 1024];
/// Records per batch (per append call).
const BATCH_SIZES: [usize; 2] = [1, 1000];
/// Codecs the batches are compressed with.
const CODECS: [Compression; 3] = [Compression::None, Compression::Lz4, Compression::Zstd];
/// Record timestamp (constant: no time-based roll while timing).
const TS: i64 = 1_700_000_000_000;
/// Uncompressed bytes a case writes before its topic (or file) is replaced, untimed.
const RESET_BYTES: usize = 256 << 20;

/// Fills `builder` with `count` records starting at sequence number `*seq`.
#[inline]
fn fill(builder: &mut BatchBuilder, pool: &[u8], size: usize, count: usize, seq: &mut u64) {
    for _ in 0..count {
        let i = (*seq as usize) % POOL;
        let key = seq.to_be_bytes();
        builder
            .push(Some(&key), Some(&pool[i * size..(i + 1) * size]), &[], TS)
            .unwrap();
        *seq += 1;
    }
}

/// A log in a temporary directory with one single-partition topic that is replaced when full.
struct Sink {
    // Dropped in this order: the log closes before its directory is removed.
    log: Log,
    handle: PartitionHandle,
    topic: u32,
    config: TopicConfig,
    _dir: tempfile::TempDir,
}

impl Sink {
    fn new() -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let log = LogOptions::new().open(dir.path()).unwrap();
        let mut config = TopicConfig::new();
        config.flush_policy = FlushPolicy::Os;
        // The builder's codec is kept (`producer`), so one topic config serves every case.
        config.compression = None;
        log.create_topic_with("bench-0", 1, config.clone()).unwrap();
        let handle = log.partition("bench-0", 0).unwrap();
        Sink {
            log,
            handle,
            topic: 0,
            config,
            _dir: dir,
        }
    }

    /// Deletes the topic and starts a fresh one (untimed).
    fn reset(&mut self) {
        self.log
            .delete_topic(&format!("bench-{}", self.topic))
            .unwrap();
        self.topic += 1;
        let name = format!("bench-{}", self.topic);
        self.log
            .create_topic_with(&name, 1, self.config.clone())
            .unwrap();
        self.handle = self.log.partition(&name, 0).unwrap();
    }
}

/// A plain file for the floor, replaced when full (untimed).
struct FloorFile {
    file: File,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl FloorFile {
    fn open(path: &PathBuf) -> File {
        OpenOptions::new()
            .append(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    fn new() -> FloorFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor.log");
        FloorFile {
            file: Self::open(&path),
            path,
            _dir: dir,
        }
    }

    fn reset(&mut self) {
        std::fs::remove_file(&self.path).unwrap();
        self.file = Self::open(&self.path);
    }
}

/// The bytes of one encoded, uncompressed batch of `records` values of `size` bytes.
fn plain_batch(pool: &[u8], size: usize, records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    let mut seq = 0;
    fill(&mut b, pool, size, records, &mut seq);
    b.finish().unwrap().to_vec()
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .measurement_time(Duration::from_millis(2500))
        .warm_up_time(Duration::from_secs(1));
    g
}

fn append(c: &mut Criterion) {
    let mut g = configure(c, "append");
    for size in VALUE_SIZES {
        let pool = value_pool(size);
        for batch in BATCH_SIZES {
            let param = format!("{size}B/batch{batch}");
            g.throughput(Throughput::Elements(batch as u64));
            let plain = plain_batch(&pool, size, batch);
            // Batches per topic (or file) before it is replaced.
            let per_reset = (RESET_BYTES / plain.len()).max(1) as u64;

            for codec in CODECS {
                let mut sink = Sink::new();
                let mut builder = BatchBuilder::new(codec);
                let mut seq = 0u64;
                let mut since_reset = 0u64;
                g.bench_function(BenchmarkId::new(codec.name(), &param), |b| {
                    b.iter_custom(|iters| {
                        let mut elapsed = Duration::ZERO;
                        let mut left = iters;
                        while left > 0 {
                            if since_reset >= per_reset {
                                sink.reset();
                                since_reset = 0;
                            }
                            let n = left.min(per_reset - since_reset);
                            let start = Instant::now();
                            for _ in 0..n {
                                fill(&mut builder, &pool, size, batch, &mut seq);
                                black_box(sink.handle.append_builder(&mut builder).unwrap());
                            }
                            elapsed += start.elapsed();
                            since_reset += n;
                            left -= n;
                        }
                        elapsed
                    });
                });
                drop(sink);
            }

            let mut floor = FloorFile::new();
            let mut since_reset = 0u64;
            g.bench_function(BenchmarkId::new("floor", &param), |b| {
                b.iter_custom(|iters| {
                    let mut elapsed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        if since_reset >= per_reset {
                            floor.reset();
                            since_reset = 0;
                        }
                        let n = left.min(per_reset - since_reset);
                        let start = Instant::now();
                        for _ in 0..n {
                            floor.file.write_all(black_box(&plain)).unwrap();
                        }
                        elapsed += start.elapsed();
                        since_reset += n;
                        left -= n;
                    }
                    elapsed
                });
            });
        }
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = configure(c, "encode");
    for size in VALUE_SIZES {
        let pool = value_pool(size);
        for batch in BATCH_SIZES {
            let param = format!("{size}B/batch{batch}");
            g.throughput(Throughput::Elements(batch as u64));
            for codec in CODECS {
                let mut builder = BatchBuilder::new(codec);
                let mut seq = 0u64;
                let mut reported = false;
                g.bench_function(BenchmarkId::new(codec.name(), &param), |b| {
                    if !reported {
                        // Once, and only for cases that run (criterion calls this again).
                        fill(&mut builder, &pool, size, batch, &mut seq);
                        let bytes = builder.finish().unwrap().len();
                        eprintln!(
                            "encoded batch {codec} {param}: {bytes} bytes, {:.1} B/record",
                            bytes as f64 / batch as f64
                        );
                        reported = true;
                    }
                    b.iter(|| {
                        fill(&mut builder, &pool, size, batch, &mut seq);
                        black_box(builder.finish().unwrap().len())
                    });
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, append, encode);
criterion_main!(benches);
