//! A persistent state store's restart: from its local checkpoint against a full changelog
//! replay, same run, alternating rounds.
//!
//! The store is a table's (`builder.table("updates", ..)` materialized as a persistent
//! store `state`), its changelog `restore-state-changelog` filled beforehand with
//! `TOPICLOG_RESTORE_BENCH_UPDATES` updates (default 10,000,000) of
//! `TOPICLOG_RESTORE_BENCH_KEYS` keys (default 1,000,000), 8-byte values. A round starts the
//! application and stops the clock when it is running (its task restored):
//! - full replay: the store's file deleted first (a new machine, or lost state), every
//!   update replayed into the file;
//! - checkpoint: the file kept from the round before (a restart): only the changelog's tail
//!   after the file's checkpoint (here none) is replayed.
//!
//! Background maintenance is off so that compaction does not shorten the changelog between
//! rounds.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::{Duration, Instant};

use topiclog::streams::{
    Consumed, Materialized, Serdes, StoreType, Streams, StreamsBuilder, StreamsConfig, StreamsState,
};
use topiclog::{Log, LogOptions, Record, TopicConfig};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn open(dir: &Path) -> Log {
    LogOptions::new()
        .maintenance_interval(None)
        .open(dir)
        .unwrap()
}

fn setup(dir: &Path, keys: u64, updates: u64) {
    let log = open(dir);
    log.create_topic("updates", 1).unwrap();
    let config = TopicConfig::default()
        .with("cleanup.policy", "compact")
        .unwrap();
    log.create_topic_with("restore-state-changelog", 1, config)
        .unwrap();
    let p = log.partition("restore-state-changelog", 0).unwrap();
    let mut x: u64 = 7;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..updates {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("key-{:08}", x % keys);
        batch.push(Record::new(i.to_be_bytes().to_vec()).key(key));
        if batch.len() == 10_000 {
            p.append(&batch).unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        p.append(&batch).unwrap();
    }
    log.close().unwrap();
}

/// Starts the application and returns how long it took to be running (restored).
fn round(dir: &Path) -> Duration {
    let log = open(dir);
    let builder = StreamsBuilder::new();
    builder.table(
        "updates",
        Consumed::with(Serdes::string(), Serdes::i64()),
        Materialized::named("state").with_store_type(StoreType::Persistent),
    );
    let mut streams = Streams::new(
        &log,
        builder.build().unwrap(),
        StreamsConfig::new("restore"),
    );
    let t = Instant::now();
    streams.start().unwrap();
    while streams.state() != StreamsState::Running {
        assert!(t.elapsed() < Duration::from_mins(10), "stalled");
        assert!(streams.failure().is_none(), "{:?}", streams.failure());
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = t.elapsed();
    let n = streams
        .store::<String, i64>("state")
        .unwrap()
        .approximate_num_entries()
        .unwrap();
    assert!(n > 0, "the store is empty");
    streams.close().unwrap();
    log.close().unwrap();
    took
}

fn main() {
    let keys = env("TOPICLOG_RESTORE_BENCH_KEYS", 1_000_000);
    let updates = env("TOPICLOG_RESTORE_BENCH_UPDATES", 10_000_000);
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("log");
    let t = Instant::now();
    setup(&dir, keys, updates);
    println!(
        "changelog of {updates} updates of {keys} keys written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let state = dir.join(".streams-state").join("restore");
    let (mut full, mut ckpt) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let _ = std::fs::remove_dir_all(&state);
        full.push(round(&dir));
        ckpt.push(round(&dir));
    }
    let ms = |v: &[Duration]| v.iter().map(Duration::as_millis).collect::<Vec<_>>();
    println!(
        "rounds (ms): full replay {:?}; from the checkpoint {:?}",
        ms(&full),
        ms(&ckpt)
    );
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (f, c) = (median(&mut full), median(&mut ckpt));
    println!(
        "persistent store restart, {keys} keys, {updates} changelog updates, medians of 5 \
         alternating rounds: full replay {:.0} ms, from the checkpoint {:.1} ms ({:.0}x faster)",
        f.as_secs_f64() * 1000.0,
        c.as_secs_f64() * 1000.0,
        f.as_secs_f64() / c.as_secs_f64()
    );
}
