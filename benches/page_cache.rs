//! Where the plain-`write` floor of `vs_peers` spends its time, and what the ways around it
//! cost: the ground for what limits the append target of DESIGN §7 (2x `commitlog` for 100 B
//! values in batches of 1000). No topiclog code runs while timing; every case moves the bytes
//! of 1000 records of 100 B per iteration, so criterion prints records per second, comparable
//! with `peers_append/*/100B/batch1000`.
//!
//! - `write_new_pages`: the floor. `write_all` of topiclog's encoded batch of the 1000 records
//!   (one call) at the end of a growing file: the kernel allocates fresh page-cache pages and
//!   copies into them.
//! - `write_cached_pages`: the same call, but over a part of the file written before (pages
//!   already in the page cache: dirty, or cleaned by writeback since): the kernel's copy
//!   without the page allocation.
//! - `copy_to_buffer`: what encoding must add at the least: copying each record's 12 header
//!   bytes and its 100 B value (from the pool of 4096 values every bench uses) into one buffer.
//! - `crc_of_batch`: the other pass every append makes over its bytes: the batch's CRC-32C,
//!   checked with [`Batch::verify_crc`] over topiclog's encoded batch.
//! - `writev_values_in_place`: no user-space copy at all: one `writev` entry per record header
//!   and one per value, pointing into the pool (two calls: at most 1024 entries each). Building
//!   the list of entries is timed with the calls: it is part of what this way costs.
//! - `store_into_mapping`: encoding straight into the page cache: copying the batch into a
//!   shared writable mapping of a sparse file, whose pages are allocated by page faults.
//!
//! After about [`RESET_BYTES`] a case's file is replaced, untimed. This file measures the
//! machine rather than a topiclog component: the floor the append benches compare against.
//!
//! Run: `cargo bench --bench page_cache -- --noplot`.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/values.rs"]
mod values;
use values::{POOL, value_pool};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use topiclog::{Batch, BatchBuilder, Compression};

/// Records per iteration.
const RECORDS: usize = 1000;
/// Value size in bytes.
const VALUE: usize = 100;
/// Header bytes per record in the copy and `writev` cases (about a record's framing: length,
/// attributes, deltas, key length, an 8-byte key, value length, header count).
const HEADER: usize = 12;
/// Bytes a case writes to one file before it is replaced (untimed).
const RESET_BYTES: usize = 256 << 20;
/// Most entries one `writev` call takes (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// topiclog's encoded, uncompressed batch of records `0..RECORDS`.
fn encoded_batch(pool: &[u8]) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..RECORDS {
        let v = &pool[(i % POOL) * VALUE..][..VALUE];
        let key = (i as u64).to_be_bytes();
        b.push(Some(&key), Some(v), &[], 1_700_000_000_000).unwrap();
    }
    b.finish().unwrap().to_vec()
}

fn create(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap()
}

/// A file a case writes, replaced after [`RESET_BYTES`].
struct Target {
    _dir: tempfile::TempDir,
    path: PathBuf,
    file: File,
    written: usize,
}

impl Target {
    fn new() -> Target {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let file = create(&path);
        Target {
            _dir: dir,
            path,
            file,
            written: 0,
        }
    }

    /// Replaces the file by an empty one when `next` more bytes would pass [`RESET_BYTES`]
    /// (untimed by the callers); true when it did.
    fn make_room(&mut self, next: usize) -> bool {
        if self.written + next <= RESET_BYTES {
            return false;
        }
        std::fs::remove_file(&self.path).unwrap();
        self.file = create(&self.path);
        self.written = 0;
        true
    }
}

fn page_cache(c: &mut Criterion) {
    let pool = value_pool(VALUE);
    let batch = encoded_batch(&pool);
    let headers = vec![0x11u8; RECORDS * HEADER];
    let mut g = c.benchmark_group("page_cache");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(RECORDS as u64));

    g.bench_function("write_new_pages", |b| {
        let mut t = Target::new();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                t.make_room(batch.len());
                let start = Instant::now();
                t.file.write_all(black_box(&batch)).unwrap();
                total += start.elapsed();
                t.written += batch.len();
            }
            total
        });
    });

    // One pass over the file first (untimed, on first use: a filtered run skips it), so every
    // timed write lands on cached pages.
    let span = RESET_BYTES / batch.len() * batch.len();
    let mut cached: Option<Target> = None;
    let mut at = 0;
    g.bench_function("write_cached_pages", |b| {
        let t = cached.get_or_insert_with(|| {
            let t = Target::new();
            for at in (0..span).step_by(batch.len()) {
                t.file.write_all_at(&batch, at as u64).unwrap();
            }
            t
        });
        b.iter(|| {
            t.file.write_all_at(black_box(&batch), at as u64).unwrap();
            at = (at + batch.len()) % span;
        });
    });

    g.bench_function("copy_to_buffer", |b| {
        let mut out = vec![0u8; RECORDS * (HEADER + VALUE)];
        let mut first = 0;
        b.iter(|| {
            for (i, rec) in out.chunks_exact_mut(HEADER + VALUE).enumerate() {
                let (h, v) = rec.split_at_mut(HEADER);
                h.copy_from_slice(&headers[i * HEADER..][..HEADER]);
                v.copy_from_slice(&pool[((first + i) % POOL) * VALUE..][..VALUE]);
            }
            first = (first + RECORDS) % POOL;
            black_box(&out);
        });
    });

    let parsed = Batch::new(Bytes::from(batch.clone())).unwrap();
    g.bench_function("crc_of_batch", |b| {
        b.iter(|| black_box(&parsed).verify_crc().unwrap());
    });

    g.bench_function("writev_values_in_place", |b| {
        let mut t = Target::new();
        let mut first = 0;
        let bytes = RECORDS * (HEADER + VALUE);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                t.make_room(bytes);
                let start = Instant::now();
                let mut slices: Vec<IoSlice<'_>> = (0..RECORDS)
                    .flat_map(|i| {
                        [
                            IoSlice::new(&headers[i * HEADER..][..HEADER]),
                            IoSlice::new(&pool[((first + i) % POOL) * VALUE..][..VALUE]),
                        ]
                    })
                    .collect();
                let mut rest = &mut slices[..];
                while !rest.is_empty() {
                    let upto = rest.len().min(IOV_MAX);
                    let n = t.file.write_vectored(&rest[..upto]).unwrap();
                    IoSlice::advance_slices(&mut rest, n);
                }
                total += start.elapsed();
                first = (first + RECORDS) % POOL;
                t.written += bytes;
            }
            total
        });
    });

    g.bench_function("store_into_mapping", |b| {
        let mut t = Target::new();
        let mut map: Option<memmap2::MmapMut> = None;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if map.is_none() || t.make_room(batch.len()) {
                    map = None;
                    t.file.set_len(RESET_BYTES as u64).unwrap();
                    // SAFETY: the file is this bench's own, in its own temporary directory;
                    // nothing truncates it while it is mapped.
                    #[allow(unsafe_code)]
                    let m = unsafe { memmap2::MmapMut::map_mut(&t.file) }.unwrap();
                    map = Some(m);
                }
                let Some(m) = map.as_mut() else { break };
                let start = Instant::now();
                m[t.written..t.written + batch.len()].copy_from_slice(black_box(&batch));
                total += start.elapsed();
                t.written += batch.len();
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, page_cache);
criterion_main!(benches);
