//! What the paths applications call cost, in nanoseconds per record, for comparing two
//! revisions in one sitting: build this example from each, run them alternately, take the
//! median of each side (see BENCHMARKS.md, "Transactions").
//!
//! ```text
//! cargo run --release --example path_cost -- <path> [RECORDS] [BATCH] [ROUNDS]
//! ```
//!
//! `<path>`: `append` (`PartitionHandle::append`, one record each), `send` (`Producer::send`,
//! one record each), `poll` (`Consumer::poll` and each record's value), `poll-only`
//! (`Consumer::poll`), `records` (`PartitionHandle::read` and `Batch::records`), `es-append`
//! and `es-read` (the event store; see `event_store` below). The read paths
//! first write RECORDS records of 100 B in batches of BATCH (default 1,000,000 and 1000); the
//! write paths append RECORDS single records (use 200000). Each of ROUNDS rounds (default 3)
//! prints one line; take the fastest.

use std::hint::black_box;
use std::time::{Duration, Instant};

use topiclog::{
    BatchBuilder, Compression, ConsumerConfig, Log, ProducerConfig, ProducerRecord, Record,
    TopicConfig, TopicPartition,
};

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "poll".into());
    let n: u64 = arg(2, 1_000_000);
    let batch: u64 = arg(3, 1000);
    let rounds: usize = arg(4, 3);
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path())?;
    let config = TopicConfig::new().with("segment.bytes", "1073741824")?;
    log.create_topic_with("t", 1, config)?;
    let h = log.partition("t", 0)?;
    let value = bytes::Bytes::from(vec![b'v'; 100]);
    if path.starts_with("es-") {
        return event_store(&log, &path, n, rounds);
    }
    if path == "append" || path == "send" {
        let producer = log.producer(ProducerConfig::default())?;
        for _ in 0..rounds {
            let t = Instant::now();
            for i in 0..n {
                let key = i.to_be_bytes().to_vec();
                if path == "append" {
                    black_box(h.append(&[Record::new(value.clone()).key(key)])?);
                } else {
                    let r = ProducerRecord::new("t", value.clone())
                        .key(key)
                        .partition(0);
                    black_box(producer.send(r)?);
                }
            }
            report(&path, n, t.elapsed());
        }
        return Ok(());
    }
    let mut b = BatchBuilder::new(Compression::None);
    let mut seq = 0u64;
    while seq < n {
        for _ in 0..batch.min(n - seq) {
            b.push(
                Some(&seq.to_be_bytes()),
                Some(&value),
                &[],
                1_700_000_000_000,
            )?;
            seq += 1;
        }
        h.append_builder(&mut b)?;
    }
    let tp = TopicPartition::new("t", 0);
    let mut consumer = log.consumer(ConsumerConfig::default())?;
    consumer.assign(std::slice::from_ref(&tp))?;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut got = 0u64;
        match path.as_str() {
            "poll" | "poll-only" => {
                consumer.seek(&tp, 0)?;
                while got < n {
                    let polled = consumer.poll(Duration::from_secs(1))?;
                    if path == "poll" {
                        for r in &polled {
                            black_box(r.value());
                        }
                    }
                    got += polled.len() as u64;
                }
            }
            "records" => {
                let mut offset = 0;
                while offset < n as i64 {
                    let res = h.read(offset, 1 << 20)?;
                    for b in &res.batches {
                        b.verify_crc()?;
                        for r in b.records()? {
                            black_box(r?);
                            got += 1;
                        }
                    }
                    offset = res.next_offset().ok_or("nothing read")?;
                }
            }
            other => return Err(format!("unknown path {other:?}").into()),
        }
        report(&path, got, t.elapsed());
    }
    Ok(())
}

/// `es-append`: `EventStore::append` of one 200 B event with an exact expected version, to
/// 100,000 streams in turn. `es-read`: `EventStore::read_stream` of whole streams of 50 events
/// (RECORDS / 50 streams, written one event per append, round-robin).
fn event_store(
    log: &Log,
    path: &str,
    n: u64,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    use topiclog::ExpectedVersion;
    use topiclog::eventstore::{EventData, EventStore, EventStoreConfig, ReadDirection};
    let mut config = EventStoreConfig::default();
    if path == "es-append-durable" {
        config.topic_config.flush_policy = topiclog::FlushPolicy::EveryBatch;
    }
    if let Ok(v) = std::env::var("PREALLOCATE") {
        config.topic_config = config.topic_config.with("preallocate", &v)?;
    }
    if let Ok(v) = std::env::var("SEGMENT_BYTES") {
        config.topic_config = config.topic_config.with("segment.bytes", &v)?;
    }
    let store = EventStore::open(log, "es", &config)?;
    let data = vec![b'e'; 200];
    let streams: Vec<String> = (0..100_000).map(|i| format!("account-{i:07}")).collect();
    let mut versions: Vec<Option<u64>> = vec![None; streams.len()];
    let mut append = |i: usize| -> Result<(), topiclog::Error> {
        let (Some(version), Some(stream)) = (versions.get_mut(i), streams.get(i)) else {
            return Ok(());
        };
        let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let w = store.append(
            stream,
            expected,
            &[EventData::new("Deposited", data.clone())],
        )?;
        *version = Some(w.last_version);
        Ok(())
    };
    if path == "es-append" || path == "es-append-durable" {
        for _ in 0..rounds {
            let t = Instant::now();
            for i in 0..n {
                append(i as usize % streams.len())?;
            }
            report(path, n, t.elapsed());
        }
        return Ok(());
    }
    let count = (n / 50).clamp(1, streams.len() as u64) as usize;
    for _ in 0..50 {
        for i in 0..count {
            append(i)?;
        }
    }
    for _ in 0..rounds {
        let t = Instant::now();
        let mut got = 0u64;
        for i in 0..count {
            let Some(stream) = streams.get(i) else { break };
            let r = store.read_stream(stream, 0, ReadDirection::Forwards, 100)?;
            got += r.events.len() as u64;
            black_box(r);
        }
        report(path, got, t.elapsed());
    }
    Ok(())
}

fn report(path: &str, n: u64, took: Duration) {
    println!(
        "{path}: {n} records in {took:?} = {:.1} ns/record",
        took.as_secs_f64() * 1e9 / f64::from(u32::try_from(n.max(1)).unwrap_or(u32::MAX))
    );
}
