//! Compaction throughput: MB/s of log cleaned by `Log::compact`, for 100 B values with few
//! and many distinct keys (how much survives changes the write side of the work).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use topiclog::{BatchBuilder, CleanupPolicy, Compression, LogOptions, TopicConfig};

const RECORDS: u64 = 400_000;
const VALUE: usize = 100;

/// A log with `RECORDS` records over `keys` distinct keys, all in sealed segments.
fn build(keys: u64) -> (tempfile::TempDir, topiclog::Log, u64) {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new()
        .flusher(None)
        .maintenance_interval(None)
        .open(dir.path())
        .unwrap();
    let mut cfg = TopicConfig::new();
    cfg.cleanup_policy = CleanupPolicy::Compact;
    cfg.segment_bytes = 8 << 20;
    log.create_topic_with("c", 1, cfg).unwrap();
    let p = log.partition("c", 0).unwrap();
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; VALUE];
    for i in 0..RECORDS {
        let key = format!("key-{:08}", i % keys);
        b.push(Some(key.as_bytes()), Some(&value), &[], 1_700_000_000_000)
            .unwrap();
        if b.count() == 1000 {
            p.append_builder(&mut b).unwrap();
        }
    }
    // One more segment so that everything above is sealed and cleanable.
    let big = vec![b'x'; 9 << 20];
    let mut cfg2 = log.describe_topic("c").unwrap().config;
    cfg2.max_message_bytes = 16 << 20;
    log.alter_topic_config("c", cfg2).unwrap();
    b.push(Some(b"roll"), Some(&big), &[], 1).unwrap();
    p.append_builder(&mut b).unwrap();
    let sealed: u64 = {
        let d = log.describe_topic("c").unwrap();
        d.partitions[0].size_bytes - (big.len() as u64 + 100)
    };
    (dir, log, sealed)
}

fn compaction(c: &mut Criterion) {
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for keys in [1_000u64, 100_000] {
        let (_d, _l, sealed) = build(keys);
        g.throughput(Throughput::Bytes(sealed));
        g.bench_function(BenchmarkId::new("100B", format!("{keys}-keys")), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (dir, log, _) = build(keys);
                    let t = Instant::now();
                    let report = log.compact("c").unwrap();
                    total += t.elapsed();
                    black_box(report);
                    drop(log);
                    drop(dir);
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group!(benches, compaction);
criterion_main!(benches);
