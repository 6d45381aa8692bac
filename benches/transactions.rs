//! Transactions, side by side with the same work without them, in one run.
//!
//! - `txn_send`: 100 records of 100 B over 3 partitions (`Os`), sent with `send_async`, then
//!   `commit_transaction` (`transaction`) against the same records sent with `send_async` then
//!   `flush` by an idempotent producer (`no-transaction`). One iteration is the 100 records and
//!   the commit or flush; a transaction adds the partitions joining it (three records in
//!   `__transaction_state`), the prepare and complete records, and three markers.
//! - `txn_read`: 1,000,000 records of 100 B written in 200 committed transactions (no abort),
//!   read back whole through a `Consumer` at `read_committed` and at `read_uncommitted`.
//!
//! Run: `cargo bench --bench transactions -- --noplot`.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

#[path = "support/values.rs"]
mod values;
use values::{POOL, value_pool};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use topiclog::{
    ConsumerConfig, FlushPolicy, IsolationLevel, Log, LogOptions, ProducerConfig, ProducerRecord,
    TopicConfig, TopicPartition,
};

const SIZE: usize = 100;
const PER_TXN: usize = 100;
const READ_RECORDS: usize = 1_000_000;
const READ_TXNS: usize = 200;

fn open(partitions: i32) -> (Log, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let log = LogOptions::new().open(dir.path()).unwrap();
    let mut config = TopicConfig::new();
    config.flush_policy = FlushPolicy::Os;
    config.segment_bytes = 256 << 20;
    log.create_topic_with("bench", partitions, config).unwrap();
    (log, dir)
}

fn records(pool: &[u8], from: usize, n: usize) -> Vec<ProducerRecord> {
    (from..from + n)
        .map(|i| {
            let j = i % POOL;
            ProducerRecord::new(
                "bench",
                Bytes::copy_from_slice(&pool[j * SIZE..(j + 1) * SIZE]),
            )
            .partition((i % 3) as i32)
        })
        .collect()
}

fn send(c: &mut Criterion) {
    let pool = value_pool(SIZE);
    let mut g = c.benchmark_group("txn_send");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(PER_TXN as u64));
    {
        let (log, _dir) = open(3);
        let p = log
            .producer(ProducerConfig::transactional("bench"))
            .unwrap();
        p.init_transactions().unwrap();
        let mut at = 0;
        g.bench_function(BenchmarkId::from_parameter("transaction"), |b| {
            b.iter(|| {
                p.begin_transaction().unwrap();
                for r in records(&pool, at, PER_TXN) {
                    black_box(p.send_async(r).unwrap());
                }
                p.commit_transaction().unwrap();
                at += PER_TXN;
            });
        });
    }
    {
        let (log, _dir) = open(3);
        let p = log.producer(ProducerConfig::default()).unwrap();
        let mut at = 0;
        g.bench_function(BenchmarkId::from_parameter("no-transaction"), |b| {
            b.iter(|| {
                for r in records(&pool, at, PER_TXN) {
                    black_box(p.send_async(r).unwrap());
                }
                p.flush().unwrap();
                at += PER_TXN;
            });
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let pool = value_pool(SIZE);
    let (log, _dir) = open(1);
    let p = log
        .producer(ProducerConfig::transactional("writer"))
        .unwrap();
    p.init_transactions().unwrap();
    let per = READ_RECORDS / READ_TXNS;
    for t in 0..READ_TXNS {
        p.begin_transaction().unwrap();
        for mut r in records(&pool, t * per, per) {
            r.partition = Some(0);
            p.send_async(r).unwrap();
        }
        p.commit_transaction().unwrap();
    }
    drop(p);
    log.flush().unwrap();
    let tp = TopicPartition::new("bench", 0);
    let mut g = c.benchmark_group("txn_read");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(READ_RECORDS as u64));
    for level in [
        IsolationLevel::ReadCommitted,
        IsolationLevel::ReadUncommitted,
    ] {
        let mut consumer = log
            .consumer(ConsumerConfig::default().isolation_level(level))
            .unwrap();
        consumer.assign(std::slice::from_ref(&tp)).unwrap();
        g.bench_function(BenchmarkId::from_parameter(level.as_str()), |b| {
            b.iter(|| {
                consumer
                    .seek_to_beginning(std::slice::from_ref(&tp))
                    .unwrap();
                let mut n = 0;
                while n < READ_RECORDS {
                    let polled = consumer.poll(Duration::from_secs(1)).unwrap();
                    for r in &polled {
                        black_box(r.value());
                    }
                    n += polled.len();
                }
                assert_eq!(n, READ_RECORDS);
            });
        });
    }
    g.finish();
}

criterion_group!(benches, send, read);
criterion_main!(benches);
