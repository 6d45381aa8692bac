//! topiclog side by side with peer crates, `commitlog` 0.2, `kafko` 0.3 and (single appends)
//! `wal-db` 1.1, on the same data in the same run, plus the machine's floor.
//!
//! Every store writes the same records: 8-byte big-endian sequence keys and the JSON-like values
//! of `support/values.rs` (100 B, 1 KiB and 10 KiB). Each crate is used through its natural API:
//!
//! - topiclog: one reused [`BatchBuilder`] per case, `push(Some(key), Some(value), &[], ts)`,
//!   then [`PartitionHandle::append_builder`]. Reads: [`PartitionHandle::read`] with a 1 MiB
//!   budget, [`Batch::verify_crc`] on every batch, then every record of [`Batch::records`]
//!   (values are views of the mapped segment, no copy).
//! - commitlog: a reused `MessageBuf`, `push_with_metadata(key, value)` (the key goes in the
//!   message's metadata), then `CommitLog::append`. Reads: `CommitLog::read` with a 1 MiB
//!   `ReadLimit`, which copies the range into a `Vec` and checks every message's CRC-32C,
//!   then every message's metadata and payload.
//! - kafko: `Producer::send` (one record) or `Producer::send_batch` (one atomic append of the
//!   whole batch) with `Bytes` keys and values (values are zero-copy slices of one pool), on a
//!   current-thread tokio runtime owned by the bench. Reads: a `Consumer` from offset 0 calling
//!   `next_record` once per record (each record's CRC-32 is checked).
//!
//! Groups (Throughput::Elements counts records, so criterion prints records per second):
//!
//! - `peers_append/<store>/<value>/batch<n>`: one iteration appends one batch of `n` records
//!   and returns once it is in the page cache (topiclog `FlushPolicy::Os`; the peers' appends
//!   do not sync). `floor` is a plain loop `write_all`-ing the bytes of topiclog's encoded,
//!   uncompressed batch of the same records to a `std::fs::File`, one call per batch: the 75%
//!   target of DESIGN §7 is measured against it. After about [`RESET_BYTES`] of batches each
//!   store is replaced by an empty one, untimed, so the log does not grow without bound.
//! - `peers_append_fsync/<store>/<value>/batch<n>`: the same, but each batch is durable on
//!   return: topiclog `FlushPolicy::EveryBatch` (one `fdatasync`), kafko `send_batch` followed
//!   by `Partition::sync` (`fdatasync` of the segment and its index), the floor `write_all`
//!   then `File::sync_data`. commitlog has no equivalent: its `flush` calls `File::flush`,
//!   which does nothing for a `std::fs::File`, plus an `msync` of the index, so its data is
//!   never synced; it is left out rather than shown with a sync it does not do.
//! - `peers_read/<store>/<value>`: one iteration reads the whole data set back in order. The
//!   data sets are built before timing and synced: topiclog and commitlog hold [`read_records`]
//!   records in batches of [`read_batch`] (1 MiB at most) in 1 GiB segments. kafko's
//!   `read_record_at` reads from the index entry before the wanted record to the end of its
//!   segment for every record, so its cost per record grows with the segment size (at its
//!   default 1 GiB a full scan is quadratic). It is therefore given 256 KiB segments and a
//!   smaller data set of [`KAFKO_READ_BYTES`], which favours it.
//!
//! - `peers_single/<store>/<value>/batch<n>`, `peers_single_fsync/...` and
//!   `peers_group_commit/<store>/100B/16` (the block at the end): topiclog's write path and its
//!   preallocated, mapped tail (`preallocate=true`) beside wal-db 1.1 (`Wal::append`, one
//!   `pwrite` per record; `append_and_sync` where each append is durable), commitlog and the
//!   floor: single appends, 100 B × 1000 as the A/B of batched appends, a sync per append, and
//!   16 threads each syncing every append.
//!
//! - `peers_read/topiclog-records/<value>` reads the same data set through the borrowed
//!   `Batch::records()` iterator, and `peers_read/topiclog-poll/<value>` through
//!   `Consumer::poll` (assigned, default `max_poll_records` of 500), every record's value
//!   visited. `peers_read_single/<store>/<value>` reads back a log written one record per
//!   append (each its own batch in topiclog, one message per append in commitlog).
//! - `peers_single/topiclog-append|topiclog-send/<value>/batch1` are the single-record calls
//!   applications make, `PartitionHandle::append(&[Record])` and `Producer::send` (idempotent,
//!   as by default), on the write path and, `-prealloc-`, on a `preallocate=true` topic.
//!
//! Run: `cargo bench --bench vs_peers -- --noplot` (about 2.5 minutes here, plus the build).
//! `python3 benches/plot_vs_peers.py` then prints the tables and writes `docs/vs_peers.svg`.

#![allow(clippy::cast_precision_loss)]

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/scan.rs"]
mod scan;
use scan::{Visit, poll_partition, scan_partition};
// The generator picks hex digits by index into a 16-byte table, modulo 16.
#[allow(clippy::indexing_slicing)]
#[path = "support/values.rs"]
mod values;
use values::{POOL, value_pool};

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use topiclog::{
    BatchBuilder, Compression, ConsumerConfig, FlushPolicy, Log, LogOptions, PartitionHandle,
    TopicConfig, TopicPartition,
};

/// Value sizes in bytes.
const VALUE_SIZES: [usize; 3] = [100, 1024, 10 * 1024];
/// Value sizes of the fsync group (slow: one disk flush per batch).
const FSYNC_VALUE_SIZES: [usize; 2] = [100, 1024];
/// Records per batch (per append call).
const BATCH_SIZES: [usize; 2] = [1, 1000];
/// Record timestamp for topiclog (kafko stamps records itself; commitlog has none).
const TS: i64 = 1_700_000_000_000;
/// Bytes of batches a store takes before it is replaced by an empty one (untimed).
const RESET_BYTES: usize = 256 << 20;
/// Largest batch any store must accept: 1000 records of 10 KiB.
const MAX_BATCH_BYTES: usize = 16 << 20;
/// Bytes asked of each read call (topiclog and commitlog).
const READ_BYTES: usize = 1 << 20;
/// Segment size of kafko's read data set.
const KAFKO_READ_SEGMENT: u64 = 256 << 10;
/// About how many bytes of values kafko's read data set holds.
const KAFKO_READ_BYTES: usize = 1 << 20;

/// Records in the topiclog and commitlog read data sets: about 100-200 MB each.
fn read_records(size: usize) -> u64 {
    match size {
        0..=512 => 1_000_000,
        513..=4096 => 200_000,
        _ => 20_000,
    }
}

/// Records per batch in the read data sets: 1000, or fewer so a batch fits one 1 MiB read.
fn read_batch(size: usize) -> usize {
    1000.min((READ_BYTES - 4096) / (size + 16))
}

/// The values of one size, as zero-copy slices of one buffer.
struct Values {
    size: usize,
    all: Vec<Bytes>,
}

impl Values {
    fn new(size: usize) -> Values {
        let pool = Bytes::from(value_pool(size));
        let all = (0..pool.len() / size)
            .map(|i| pool.slice(i * size..(i + 1) * size))
            .collect();
        Values { size, all }
    }

    /// The value of record `seq`.
    fn get(&self, seq: u64) -> &Bytes {
        // POOL is a power of two: a mask, not a division, in every store's timed loop.
        self.all
            .get((seq % POOL as u64) as usize)
            .expect("index is reduced modulo the pool length")
    }
}

/// A store the append cases write to.
trait Sink {
    /// Appends records `*seq..*seq + count` as one batch (one call), advancing `*seq`.
    fn append(&mut self, values: &Values, count: usize, seq: &mut u64);
    /// Replaces the store with an empty one (untimed).
    fn reset(&mut self);
}

// ---------------------------------------------------------------------------------------------
// topiclog

fn topiclog_config(policy: FlushPolicy) -> TopicConfig {
    let mut config = TopicConfig::new();
    config.flush_policy = policy;
    config.compression = None;
    config.max_message_bytes = MAX_BATCH_BYTES as u32;
    config
}

struct TopiclogSink {
    // Dropped in this order: the log closes before its directory is removed.
    log: Log,
    handle: PartitionHandle,
    builder: BatchBuilder,
    topic: u32,
    config: TopicConfig,
    _dir: tempfile::TempDir,
}

impl TopiclogSink {
    fn new(policy: FlushPolicy) -> TopiclogSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogOptions::new().open(dir.path()).expect("open topiclog");
        let config = topiclog_config(policy);
        log.create_topic_with("bench-0", 1, config.clone())
            .expect("create topic");
        let handle = log.partition("bench-0", 0).expect("partition");
        TopiclogSink {
            log,
            handle,
            builder: BatchBuilder::new(Compression::None),
            topic: 0,
            config,
            _dir: dir,
        }
    }
}

/// Pushes records `*seq..*seq + count` into `builder`.
fn fill(builder: &mut BatchBuilder, values: &Values, count: usize, seq: &mut u64) {
    for _ in 0..count {
        builder
            .push(Some(&seq.to_be_bytes()), Some(values.get(*seq)), &[], TS)
            .expect("push");
        *seq += 1;
    }
}

impl Sink for TopiclogSink {
    fn append(&mut self, values: &Values, count: usize, seq: &mut u64) {
        fill(&mut self.builder, values, count, seq);
        black_box(
            self.handle
                .append_builder(&mut self.builder)
                .expect("topiclog append"),
        );
    }

    fn reset(&mut self) {
        self.log
            .delete_topic(&format!("bench-{}", self.topic))
            .expect("delete topic");
        self.topic += 1;
        let name = format!("bench-{}", self.topic);
        self.log
            .create_topic_with(&name, 1, self.config.clone())
            .expect("create topic");
        self.handle = self.log.partition(&name, 0).expect("partition");
    }
}

// ---------------------------------------------------------------------------------------------
// commitlog

fn commitlog_open(dir: &tempfile::TempDir) -> commitlog::CommitLog {
    let mut opts = commitlog::LogOptions::new(dir.path());
    // Its default (1 MB) is below one batch of 1000 × 1 KiB.
    opts.message_max_bytes(MAX_BATCH_BYTES);
    commitlog::CommitLog::new(opts).expect("open commitlog")
}

struct CommitlogSink {
    // Dropped in this order: the log before its directory.
    log: commitlog::CommitLog,
    buf: commitlog::message::MessageBuf,
    dir: tempfile::TempDir,
}

impl CommitlogSink {
    fn new() -> CommitlogSink {
        let dir = tempfile::tempdir().expect("temp dir");
        CommitlogSink {
            log: commitlog_open(&dir),
            buf: commitlog::message::MessageBuf::default(),
            dir,
        }
    }
}

impl Sink for CommitlogSink {
    fn append(&mut self, values: &Values, count: usize, seq: &mut u64) {
        self.buf.clear();
        for _ in 0..count {
            self.buf
                .push_with_metadata(seq.to_be_bytes(), values.get(*seq))
                .expect("push");
            *seq += 1;
        }
        black_box(self.log.append(&mut self.buf).expect("commitlog append"));
    }

    fn reset(&mut self) {
        let dir = tempfile::tempdir().expect("temp dir");
        self.log = commitlog_open(&dir);
        // The old directory is removed here, after the old log was replaced (dropped).
        self.dir = dir;
    }
}

// ---------------------------------------------------------------------------------------------
// kafko

fn runtime() -> tokio::runtime::Runtime {
    // kafko's writer task runs a retention timer.
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

/// A kafko broker with one single-partition topic, driven from a current-thread runtime.
struct KafkoStore {
    rt: tokio::runtime::Runtime,
    broker: Option<kafko::Kafko>,
    producer: kafko::Producer,
    partition: Arc<kafko::Partition>,
    config: kafko::LogConfig,
    dir: tempfile::TempDir,
}

impl KafkoStore {
    fn open(
        rt: &tokio::runtime::Runtime,
        dir: &tempfile::TempDir,
        config: kafko::LogConfig,
    ) -> (kafko::Kafko, kafko::Producer, Arc<kafko::Partition>) {
        rt.block_on(async {
            let broker = kafko::Kafko::open_with_config(dir.path(), config)
                .await
                .expect("open kafko");
            broker.create_topic("bench").await.expect("create topic");
            let producer = broker.producer_for("bench").await.expect("producer");
            let topic = broker.topic("bench").await.expect("topic");
            let partition = Arc::clone(topic.partition(0).expect("partition 0"));
            (broker, producer, partition)
        })
    }

    fn new(config: kafko::LogConfig) -> KafkoStore {
        let rt = runtime();
        let dir = tempfile::tempdir().expect("temp dir");
        let (broker, producer, partition) = KafkoStore::open(&rt, &dir, config);
        KafkoStore {
            rt,
            broker: Some(broker),
            producer,
            partition,
            config,
            dir,
        }
    }

    fn shutdown(&mut self) {
        if let Some(b) = self.broker.take() {
            self.rt.block_on(b.shutdown()).expect("kafko shutdown");
        }
    }
}

impl Drop for KafkoStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct KafkoSink {
    store: KafkoStore,
    /// Call `Partition::sync` after each batch.
    sync: bool,
}

impl Sink for KafkoSink {
    fn append(&mut self, values: &Values, count: usize, seq: &mut u64) {
        let s = &self.store;
        s.rt.block_on(async {
            if count == 1 {
                let key = Bytes::copy_from_slice(&seq.to_be_bytes());
                let value = values.get(*seq).clone();
                *seq += 1;
                black_box(s.producer.send(Some(key), value).await.expect("kafko send"));
            } else {
                let items = (0..count)
                    .map(|_| {
                        let key = Bytes::copy_from_slice(&seq.to_be_bytes());
                        let value = values.get(*seq).clone();
                        *seq += 1;
                        (Some(key), value)
                    })
                    .collect();
                black_box(
                    s.producer
                        .send_batch(items)
                        .await
                        .expect("kafko send_batch"),
                );
            }
            if self.sync {
                s.partition.sync().await.expect("kafko sync");
            }
        });
    }

    fn reset(&mut self) {
        self.store.shutdown();
        let dir = tempfile::tempdir().expect("temp dir");
        let (broker, producer, partition) =
            KafkoStore::open(&self.store.rt, &dir, self.store.config);
        self.store.broker = Some(broker);
        self.store.producer = producer;
        self.store.partition = partition;
        self.store.dir = dir;
    }
}

// ---------------------------------------------------------------------------------------------
// floor

/// A plain file written with one `write_all` per batch, optionally followed by `sync_data`.
struct FloorSink {
    file: File,
    path: PathBuf,
    bytes: Vec<u8>,
    sync: bool,
    _dir: tempfile::TempDir,
}

impl FloorSink {
    fn open(path: &PathBuf) -> File {
        OpenOptions::new()
            .append(true)
            .create(true)
            .truncate(false)
            .open(path)
            .expect("open floor file")
    }

    /// `bytes`: topiclog's encoded, uncompressed batch of the same records.
    fn new(bytes: Vec<u8>, sync: bool) -> FloorSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("floor.log");
        FloorSink {
            file: FloorSink::open(&path),
            path,
            bytes,
            sync,
            _dir: dir,
        }
    }
}

impl Sink for FloorSink {
    fn append(&mut self, _values: &Values, _count: usize, _seq: &mut u64) {
        self.file.write_all(black_box(&self.bytes)).expect("write");
        if self.sync {
            self.file.sync_data().expect("sync_data");
        }
    }

    fn reset(&mut self) {
        std::fs::remove_file(&self.path).expect("remove floor file");
        self.file = FloorSink::open(&self.path);
    }
}

/// The bytes of topiclog's encoded, uncompressed batch of `records` values.
fn plain_batch(values: &Values, records: usize) -> Vec<u8> {
    let mut b = BatchBuilder::new(Compression::None);
    let mut seq = 0;
    fill(&mut b, values, records, &mut seq);
    b.finish().expect("encode").to_vec()
}

// ---------------------------------------------------------------------------------------------
// append cases

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    g
}

/// Times one batch append per iteration on `sink`, replacing the store every `per_reset`
/// batches outside the timed stretches.
fn bench_sink(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    sink: &mut dyn Sink,
    values: &Values,
    batch: usize,
    per_reset: u64,
) {
    let mut seq = 0u64;
    let mut since_reset = 0u64;
    g.bench_function(id, |b| {
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
                    sink.append(values, batch, &mut seq);
                }
                elapsed += start.elapsed();
                since_reset += n;
                left -= n;
            }
            elapsed
        });
    });
}

/// The append cases of one group: every store, every value size in `sizes`, every batch size.
fn append_group(c: &mut Criterion, group: &str, sizes: &[usize], durable: bool) {
    let mut g = configure(c, group);
    for &size in sizes {
        let values = Values::new(size);
        for batch in BATCH_SIZES {
            let param = format!("{size}B/batch{batch}");
            g.throughput(Throughput::Elements(batch as u64));
            let plain = plain_batch(&values, batch);
            let per_reset = (RESET_BYTES / plain.len()).max(1) as u64;

            let policy = if durable {
                FlushPolicy::EveryBatch
            } else {
                FlushPolicy::Os
            };
            let mut sink = TopiclogSink::new(policy);
            bench_sink(
                &mut g,
                BenchmarkId::new("topiclog", &param),
                &mut sink,
                &values,
                batch,
                per_reset,
            );
            drop(sink);

            if !durable {
                let mut sink = CommitlogSink::new();
                bench_sink(
                    &mut g,
                    BenchmarkId::new("commitlog", &param),
                    &mut sink,
                    &values,
                    batch,
                    per_reset,
                );
                drop(sink);
            }

            let config = kafko::LogConfig {
                // Room for one batch of 1000 × 10 KiB without a roll.
                segment_size_threshold: 1 << 30,
                ..kafko::LogConfig::default()
            };
            let mut sink = KafkoSink {
                store: KafkoStore::new(config),
                sync: durable,
            };
            bench_sink(
                &mut g,
                BenchmarkId::new("kafko", &param),
                &mut sink,
                &values,
                batch,
                per_reset,
            );
            drop(sink);

            let mut sink = FloorSink::new(plain, durable);
            bench_sink(
                &mut g,
                BenchmarkId::new("floor", &param),
                &mut sink,
                &values,
                batch,
                per_reset,
            );
        }
    }
    g.finish();
}

fn append(c: &mut Criterion) {
    append_group(c, "peers_append", &VALUE_SIZES, false);
}

fn append_fsync(c: &mut Criterion) {
    append_group(c, "peers_append_fsync", &FSYNC_VALUE_SIZES, true);
}

// ---------------------------------------------------------------------------------------------
// read cases

/// A topiclog data set of `n` records in batches of `batch`, synced.
struct TopiclogData {
    log: Log,
    handle: PartitionHandle,
    _dir: tempfile::TempDir,
}

impl TopiclogData {
    /// A consumer assigned to the data set's partition (no group: positions kept by hand).
    fn consumer(&self) -> topiclog::Consumer {
        let mut c = self
            .log
            .consumer(ConsumerConfig::default())
            .expect("consumer");
        c.assign(&[TopicPartition::new("bench", 0)])
            .expect("assign");
        c
    }
}

fn topiclog_data(values: &Values, n: u64, batch: usize) -> TopiclogData {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = LogOptions::new().open(dir.path()).expect("open topiclog");
    log.create_topic_with("bench", 1, topiclog_config(FlushPolicy::Os))
        .expect("create topic");
    let handle = log.partition("bench", 0).expect("partition");
    let mut builder = BatchBuilder::new(Compression::None);
    let mut seq = 0u64;
    while seq < n {
        let count = batch.min((n - seq) as usize);
        fill(&mut builder, values, count, &mut seq);
        handle.append_builder(&mut builder).expect("append");
    }
    log.flush().expect("flush");
    TopiclogData {
        log,
        handle,
        _dir: dir,
    }
}

struct CommitlogData {
    log: commitlog::CommitLog,
    _dir: tempfile::TempDir,
}

fn commitlog_data(values: &Values, n: u64, batch: usize) -> CommitlogData {
    let mut sink = CommitlogSink::new();
    let mut seq = 0u64;
    while seq < n {
        let count = batch.min((n - seq) as usize);
        sink.append(values, count, &mut seq);
    }
    sink.log.flush().expect("flush");
    // commitlog's flush does not sync the segment: sync the files so writeback does not run
    // while timing (as `Log::flush` does for topiclog).
    sync_dir(sink.dir.path());
    let CommitlogSink { log, dir, .. } = sink;
    CommitlogData { log, _dir: dir }
}

fn sync_dir(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        if path.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .expect("sync file");
        }
    }
}

fn commitlog_scan(log: &commitlog::CommitLog) -> (u64, usize) {
    use commitlog::message::MessageSet;
    let mut offset = 0u64;
    let mut records = 0u64;
    let mut value_bytes = 0usize;
    loop {
        // `read` copies the range into a Vec and checks every message's CRC.
        let buf = log
            .read(offset, commitlog::ReadLimit::max_bytes(READ_BYTES))
            .expect("read");
        let mut last = None;
        for m in buf.iter() {
            value_bytes += m.payload().len();
            records += 1;
            black_box(m.metadata());
            last = Some(m.offset());
        }
        match last {
            Some(o) => offset = o + 1,
            None => break,
        }
    }
    (records, value_bytes)
}

struct KafkoData {
    store: KafkoStore,
    records: u64,
}

fn kafko_data(values: &Values, n: u64) -> KafkoData {
    // Batches small enough that segments keep to their size.
    let batch = (KAFKO_READ_SEGMENT as usize / (values.size + 64)).clamp(1, 1000);
    let config = kafko::LogConfig {
        segment_size_threshold: KAFKO_READ_SEGMENT,
        ..kafko::LogConfig::default()
    };
    let mut sink = KafkoSink {
        store: KafkoStore::new(config),
        sync: false,
    };
    let mut seq = 0u64;
    while seq < n {
        let count = batch.min((n - seq) as usize);
        sink.append(values, count, &mut seq);
    }
    let s = &sink.store;
    s.rt.block_on(s.partition.sync()).expect("sync");
    sync_dir(&s.dir.path().join("bench"));
    KafkoData {
        store: sink.store,
        records: n,
    }
}

fn kafko_scan(data: &KafkoData) -> (u64, usize) {
    let s = &data.store;
    let broker = s.broker.as_ref().expect("open broker");
    s.rt.block_on(async {
        let mut consumer = broker.consumer_for("bench").await.expect("consumer");
        consumer.seek_all(0);
        let mut value_bytes = 0usize;
        for _ in 0..data.records {
            let r = consumer.next_record().await.expect("next_record");
            value_bytes += r.value().len();
            black_box(&r);
        }
        (data.records, value_bytes)
    })
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_read");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        // One iteration is a whole scan (ms to s): the same count per sample.
        .sampling_mode(SamplingMode::Flat);
    for size in VALUE_SIZES {
        let values = Values::new(size);
        let n = read_records(size);
        let batch = read_batch(size);
        let param = format!("{size}B");
        g.throughput(Throughput::Elements(n));

        // Each data set is built on first use (untimed), so a filtered run builds only what it
        // measures; criterion calls the closure again after the warm-up.
        let mut data: Option<TopiclogData> = None;
        g.bench_function(BenchmarkId::new("topiclog", &param), |b| {
            let d = data.get_or_insert_with(|| {
                let d = topiclog_data(&values, n, batch);
                assert_eq!(
                    scan_partition(&d.handle, READ_BYTES, Visit::Owned),
                    (n, n as usize * size)
                );
                d
            });
            b.iter(|| scan_partition(&d.handle, READ_BYTES, Visit::Owned));
            if size > 0 {
                assert_eq!(
                    scan_partition(&d.handle, READ_BYTES, Visit::Borrowed),
                    (n, n as usize * size)
                );
            }
        });
        g.bench_function(BenchmarkId::new("topiclog-borrowed", &param), |b| {
            let d = data.get_or_insert_with(|| topiclog_data(&values, n, batch));
            b.iter(|| scan_partition(&d.handle, READ_BYTES, Visit::Borrowed));
        });
        g.bench_function(BenchmarkId::new("topiclog-records", &param), |b| {
            let d = data.get_or_insert_with(|| topiclog_data(&values, n, batch));
            assert_eq!(
                scan_partition(&d.handle, READ_BYTES, Visit::Records),
                (n, n as usize * size)
            );
            b.iter(|| scan_partition(&d.handle, READ_BYTES, Visit::Records));
        });
        bench_poll(&mut g, &param, &mut data, &values, n, batch);
        drop(data);

        let mut data: Option<CommitlogData> = None;
        g.bench_function(BenchmarkId::new("commitlog", &param), |b| {
            let d = data.get_or_insert_with(|| {
                let d = commitlog_data(&values, n, batch);
                assert_eq!(commitlog_scan(&d.log), (n, n as usize * size));
                d
            });
            b.iter(|| commitlog_scan(&d.log));
        });
        drop(data);

        let kn = (KAFKO_READ_BYTES / values.size) as u64;
        g.throughput(Throughput::Elements(kn));
        let mut data: Option<KafkoData> = None;
        g.bench_function(BenchmarkId::new("kafko", &param), |b| {
            let d = data.get_or_insert_with(|| {
                let d = kafko_data(&values, kn);
                assert_eq!(kafko_scan(&d), (kn, kn as usize * size));
                d
            });
            b.iter(|| kafko_scan(d));
        });
        drop(data);
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// single appends: the preallocated, mapped tail beside the write path and wal-db

/// Threads of the group-commit case.
const COMMIT_THREADS: usize = 16;
/// Records each thread appends per timed round of the group-commit case.
const COMMIT_ROUND: u64 = 50;

/// `topiclog_config(policy)` with Kafka's `preallocate` set as given.
fn topiclog_config_prealloc(policy: FlushPolicy, preallocate: bool) -> TopicConfig {
    topiclog_config(policy)
        .with("preallocate", if preallocate { "true" } else { "false" })
        .expect("preallocate")
}

impl TopiclogSink {
    fn with_config(config: TopicConfig) -> TopiclogSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogOptions::new().open(dir.path()).expect("open topiclog");
        log.create_topic_with("bench-0", 1, config.clone())
            .expect("create topic");
        let handle = log.partition("bench-0", 0).expect("partition");
        TopiclogSink {
            log,
            handle,
            builder: BatchBuilder::new(Compression::None),
            topic: 0,
            config,
            _dir: dir,
        }
    }
}

/// The single-record calls applications make: `PartitionHandle::append(&[Record])` or
/// `Producer::send(ProducerRecord)` (idempotent, as by default), one record per call.
struct UserSink {
    _log: Log,
    handle: PartitionHandle,
    producer: Option<topiclog::Producer>,
    config: TopicConfig,
    _dir: tempfile::TempDir,
}

impl UserSink {
    fn new(config: TopicConfig, send: bool) -> UserSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogOptions::new().open(dir.path()).expect("open topiclog");
        log.create_topic_with("bench", 1, config.clone())
            .expect("create topic");
        let handle = log.partition("bench", 0).expect("partition");
        let producer = send.then(|| {
            log.producer(topiclog::ProducerConfig::default())
                .expect("producer")
        });
        UserSink {
            _log: log,
            handle,
            producer,
            config,
            _dir: dir,
        }
    }
}

impl Sink for UserSink {
    fn append(&mut self, values: &Values, count: usize, seq: &mut u64) {
        for _ in 0..count {
            let record = topiclog::Record::new(values.get(*seq).clone())
                .key(Bytes::copy_from_slice(&seq.to_be_bytes()))
                .timestamp(TS);
            *seq += 1;
            match &self.producer {
                Some(p) => {
                    let r = topiclog::ProducerRecord {
                        topic: "bench".into(),
                        partition: Some(0),
                        record,
                    };
                    black_box(p.send(r).expect("send"));
                }
                None => {
                    black_box(self.handle.append(&[record]).expect("append"));
                }
            }
        }
    }

    fn reset(&mut self) {
        let send = self.producer.is_some();
        self.producer = None;
        *self = UserSink::new(self.config.clone(), send);
    }
}

/// wal-db 1.1: one record per append (the 8-byte key then the value, one `pwrite`), and with
/// `sync` `append_and_sync` (its group-committed `fdatasync`).
struct WalDbSink {
    wal: wal_db::Wal,
    sync: bool,
    buf: Vec<u8>,
    dir: tempfile::TempDir,
}

impl WalDbSink {
    fn open(dir: &tempfile::TempDir) -> wal_db::Wal {
        wal_db::Wal::open(dir.path().join("bench.wal")).expect("open wal-db")
    }

    fn new(sync: bool) -> WalDbSink {
        let dir = tempfile::tempdir().expect("temp dir");
        WalDbSink {
            wal: WalDbSink::open(&dir),
            sync,
            buf: Vec::new(),
            dir,
        }
    }
}

impl Sink for WalDbSink {
    fn append(&mut self, values: &Values, count: usize, seq: &mut u64) {
        for _ in 0..count {
            self.buf.clear();
            self.buf.extend_from_slice(&seq.to_be_bytes());
            self.buf.extend_from_slice(values.get(*seq));
            *seq += 1;
            let lsn = if self.sync {
                self.wal.append_and_sync(&self.buf)
            } else {
                self.wal.append(&self.buf)
            };
            let _ = black_box(lsn.expect("wal-db append"));
        }
    }

    fn reset(&mut self) {
        let dir = tempfile::tempdir().expect("temp dir");
        self.wal = WalDbSink::open(&dir);
        self.dir = dir;
    }
}

/// `peers_single/<store>/<value>/batch<n>` and `peers_single_fsync/...`: topiclog's write path
/// (`topiclog`) and its preallocated, mapped tail (`topiclog-prealloc`, topic
/// `preallocate=true`) in the same run, beside wal-db, commitlog (page cache only) and the
/// floor. Batches of 1000 are the A/B check that batched appends lose nothing on the mapped
/// path.
fn single_group(c: &mut Criterion, group: &str, cases: &[(usize, usize)], durable: bool) {
    let mut g = configure(c, group);
    let policy = if durable {
        FlushPolicy::EveryBatch
    } else {
        FlushPolicy::Os
    };
    for &(size, batch) in cases {
        let values = Values::new(size);
        let param = format!("{size}B/batch{batch}");
        g.throughput(Throughput::Elements(batch as u64));
        let plain = plain_batch(&values, batch);
        let per_reset = (RESET_BYTES / plain.len()).max(1) as u64;
        for (name, prealloc) in [("topiclog", false), ("topiclog-prealloc", true)] {
            let mut sink = TopiclogSink::with_config(topiclog_config_prealloc(policy, prealloc));
            let id = BenchmarkId::new(name, &param);
            bench_sink(&mut g, id, &mut sink, &values, batch, per_reset);
        }
        if batch == 1 {
            // The calls applications make, on both paths: `append(&[Record])` and `send`.
            for (name, prealloc, send) in [
                ("topiclog-append", false, false),
                ("topiclog-send", false, true),
                ("topiclog-prealloc-append", true, false),
                ("topiclog-prealloc-send", true, true),
            ] {
                let mut sink = UserSink::new(topiclog_config_prealloc(policy, prealloc), send);
                let id = BenchmarkId::new(name, &param);
                bench_sink(&mut g, id, &mut sink, &values, batch, per_reset);
            }
        }
        let mut sink = WalDbSink::new(durable);
        let id = BenchmarkId::new("wal-db", &param);
        bench_sink(&mut g, id, &mut sink, &values, batch, per_reset);
        if !durable {
            let mut sink = CommitlogSink::new();
            let id = BenchmarkId::new("commitlog", &param);
            bench_sink(&mut g, id, &mut sink, &values, batch, per_reset);
        }
        let mut sink = FloorSink::new(plain, durable);
        let id = BenchmarkId::new("floor", &param);
        bench_sink(&mut g, id, &mut sink, &values, batch, per_reset);
    }
    g.finish();
}

/// `<group>/topiclog-poll/<param>`: the data set (built on first use, `n` records in batches
/// of `batch`) read through `Consumer::poll`, every value checked once before timing.
fn bench_poll(
    g: &mut BenchmarkGroup<'_, WallTime>,
    param: &str,
    data: &mut Option<TopiclogData>,
    values: &Values,
    n: u64,
    batch: usize,
) {
    g.bench_function(BenchmarkId::new("topiclog-poll", param), |b| {
        let d = data.get_or_insert_with(|| topiclog_data(values, n, batch));
        let mut consumer = d.consumer();
        assert_eq!(
            poll_partition(&mut consumer, "bench", n),
            (n, n as usize * values.size)
        );
        b.iter(|| poll_partition(&mut consumer, "bench", n));
    });
}

/// Records in the read-back data sets of single-record batches.
fn single_read_records(size: usize) -> u64 {
    match size {
        0..=512 => 500_000,
        _ => 100_000,
    }
}

/// Reading back a log written one record per append (each append its own batch in topiclog;
/// one message per append in commitlog).
fn read_single(c: &mut Criterion) {
    let mut g = c.benchmark_group("peers_read_single");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sampling_mode(SamplingMode::Flat);
    for size in [100, 1024] {
        let values = Values::new(size);
        let n = single_read_records(size);
        let param = format!("{size}B");
        g.throughput(Throughput::Elements(n));
        let mut data: Option<TopiclogData> = None;
        g.bench_function(BenchmarkId::new("topiclog-borrowed", &param), |b| {
            let d = data.get_or_insert_with(|| {
                let d = topiclog_data(&values, n, 1);
                assert_eq!(
                    scan_partition(&d.handle, READ_BYTES, Visit::Borrowed),
                    (n, n as usize * size)
                );
                d
            });
            b.iter(|| scan_partition(&d.handle, READ_BYTES, Visit::Borrowed));
        });
        bench_poll(&mut g, &param, &mut data, &values, n, 1);
        drop(data);
        let mut data: Option<CommitlogData> = None;
        g.bench_function(BenchmarkId::new("commitlog", &param), |b| {
            let d = data.get_or_insert_with(|| {
                let d = commitlog_data(&values, n, 1);
                assert_eq!(commitlog_scan(&d.log), (n, n as usize * size));
                d
            });
            b.iter(|| commitlog_scan(&d.log));
        });
        drop(data);
    }
    g.finish();
}

fn single(c: &mut Criterion) {
    single_group(
        c,
        "peers_single",
        &[(100, 1), (1024, 1), (100, 1000)],
        false,
    );
}

fn single_fsync(c: &mut Criterion) {
    single_group(c, "peers_single_fsync", &[(100, 1)], true);
}

/// `peers_group_commit/<store>/100B/16`: 16 threads each append single 100 B records, each
/// durable before the next (topiclog `EveryBatch`, wal-db `append_and_sync`); concurrent
/// syncs share one `fdatasync` in both. One iteration is one round of [`COMMIT_ROUND`]
/// records per thread; Throughput::Elements counts every thread's records.
fn group_commit(c: &mut Criterion) {
    let mut g = configure(c, "peers_group_commit");
    let values = Arc::new(Values::new(100));
    let param = format!("100B/{COMMIT_THREADS}");
    g.throughput(Throughput::Elements(COMMIT_ROUND * COMMIT_THREADS as u64));
    for (name, prealloc) in [("topiclog", false), ("topiclog-prealloc", true)] {
        let sink =
            TopiclogSink::with_config(topiclog_config_prealloc(FlushPolicy::EveryBatch, prealloc));
        let handle = sink.handle.clone();
        g.bench_function(BenchmarkId::new(name, &param), |b| {
            b.iter_custom(|iters| {
                run_commit_threads(iters, &values, |values, seq| {
                    let mut builder = BatchBuilder::new(Compression::None);
                    let mut s = seq;
                    fill(&mut builder, values, 1, &mut s);
                    black_box(handle.append_builder(&mut builder).expect("append"));
                })
            });
        });
        drop(sink);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let wal = WalDbSink::open(&dir);
    g.bench_function(BenchmarkId::new("wal-db", &param), |b| {
        b.iter_custom(|iters| {
            run_commit_threads(iters, &values, |values, seq| {
                let mut rec = seq.to_be_bytes().to_vec();
                rec.extend_from_slice(values.get(seq));
                let _ = black_box(wal.append_and_sync(&rec).expect("wal-db append"));
            })
        });
    });
    g.finish();
}

/// Runs `iters` rounds of [`COMMIT_ROUND`] calls of `append` on each of [`COMMIT_THREADS`]
/// threads, all started together; returns the wall time from the start to the last return.
fn run_commit_threads(
    iters: u64,
    values: &Arc<Values>,
    append: impl Fn(&Values, u64) + Sync,
) -> Duration {
    let n = iters * COMMIT_ROUND;
    let barrier = std::sync::Barrier::new(COMMIT_THREADS + 1);
    std::thread::scope(|s| {
        for t in 0..COMMIT_THREADS as u64 {
            let (barrier, append, values) = (&barrier, &append, &**values);
            s.spawn(move || {
                barrier.wait();
                for i in 0..n {
                    append(values, t * n + i);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every thread before it returns.
        start
    })
    .elapsed()
}

criterion_group!(
    benches,
    append,
    append_fsync,
    read,
    read_single,
    single,
    single_fsync,
    group_commit
);
criterion_main!(benches);
