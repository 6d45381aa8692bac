//! WordCount through `topiclog::streams` against a hand-written loop doing the same work
//! with `Consumer` + `HashMap` + `Producer`, same run, alternating rounds:
//! - streams: the seed's topology (lines → lowercase, split on spaces → group by word →
//!   count → `counts-out`), `commit.interval.ms=100`, under `exactly_once_v2` (the default)
//!   and under `at_least_once`, each with one stream thread and with two
//!   (Kafka's `num.stream.threads`: the two sub-topologies' tasks then run side by side);
//!   done when every line and every repartitioned word is committed (so every count was
//!   written);
//! - loop: a consumer in a group reads the lines, counts words in a `HashMap`, and every
//!   100 ms writes the counts that changed to `counts-out` (8-byte big-endian values), flushes
//!   and commits; done when every line is committed.
//!
//! Lines: `TOPICLOG_STREAMS_BENCH_LINES` (default 1,000,000: a round long enough that the
//! wait for the last commit interval, up to 100 ms, is a small part of it), one partition.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::many_single_char_names
)]

#[path = "../examples/wordcount/topology.rs"]
mod wordcount;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use topiclog::streams::{ProcessingGuarantee, Streams, StreamsConfig};
use topiclog::{
    ConsumerConfig, Log, LogOptions, ProducerConfig, ProducerRecord, Record, TopicPartition,
};

const COMMIT: Duration = Duration::from_millis(100);

fn lines() -> usize {
    std::env::var("TOPICLOG_STREAMS_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn corpus(n: usize) -> Vec<String> {
    let words: Vec<String> = (0..5000).map(|i| format!("Word{i}")).collect();
    let mut x: u64 = 42;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = 1 + (x >> 60) as usize % 8;
            (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    // Skewed: low word numbers are common, as in text.
                    let r = (x >> 33) as usize % 5000;
                    words[r * r / 5000].as_str()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn open(dir: &Path) -> Log {
    LogOptions::new().open(dir).unwrap()
}

fn setup(dir: &Path, corpus: &[String]) {
    let log = open(dir);
    log.create_topic("lines", 1).unwrap();
    log.create_topic("counts-out", 1).unwrap();
    let p = log.partition("lines", 0).unwrap();
    for chunk in corpus.chunks(1000) {
        let records: Vec<Record> = chunk.iter().map(|l| Record::new(l.clone())).collect();
        p.append(&records).unwrap();
    }
    log.close().unwrap();
}

fn committed(log: &Log, group: &str, topic: &str) -> Option<i64> {
    let tp = TopicPartition::new(topic, 0);
    log.committed_offsets(group, Some(std::slice::from_ref(&tp)))
        .first()
        .and_then(|(_, o)| o.as_ref().map(|o| o.offset))
}

fn end(log: &Log, topic: &str) -> i64 {
    log.partition(topic, 0).map_or(0, |h| h.log_end_offset())
}

/// One past the last record that is not a transaction marker (what a consumer that read
/// everything commits).
fn data_end(log: &Log, topic: &str) -> i64 {
    let Ok(h) = log.partition(topic, 0) else {
        return 0;
    };
    let leo = h.log_end_offset();
    let mut from = leo;
    while from > h.log_start_offset() {
        from = (from - 64).max(h.log_start_offset());
        if let Some(r) = h.records(from, 1 << 20).unwrap().last() {
            return r.offset + 1;
        }
    }
    from
}

fn wait(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_mins(10), "stalled");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn streams_round(dir: &Path, threads: usize, guarantee: ProcessingGuarantee) -> Duration {
    let log = open(dir);
    let config = StreamsConfig::new("wc")
        .commit_interval(COMMIT)
        .num_stream_threads(threads)
        .processing_guarantee(guarantee);
    let topology = wordcount::wordcount("lines", "counts-out").unwrap();
    let mut streams = Streams::new(&log, topology, config);
    let lines_end = end(&log, "lines");
    let t = Instant::now();
    streams.start().unwrap();
    wait(|| committed(&log, "wc", "lines") == Some(lines_end));
    let repartition_end = data_end(&log, "wc-counts-repartition");
    wait(|| committed(&log, "wc", "wc-counts-repartition") == Some(repartition_end));
    let took = t.elapsed();
    streams.close().unwrap();
    log.close().unwrap();
    took
}

fn loop_round(dir: &Path) -> Duration {
    let log = open(dir);
    let lines_end = end(&log, "lines");
    let t = Instant::now();
    let mut cc = ConsumerConfig::group("loop");
    cc.enable_auto_commit = false;
    cc.max_poll_records = 1000;
    let mut consumer = log.consumer(cc).unwrap();
    consumer.subscribe(&["lines"]).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let mut counts: HashMap<String, i64> = HashMap::new();
    let mut changed: HashSet<String> = HashSet::new();
    let mut last = Instant::now();
    let mut position = 0;
    loop {
        let polled = consumer.poll(Duration::from_millis(100)).unwrap();
        for r in &polled {
            let line = String::from_utf8_lossy(r.value().unwrap_or_default()).to_lowercase();
            for w in line.split(' ').filter(|w| !w.is_empty()) {
                *counts.entry(w.to_string()).or_insert(0) += 1;
                changed.insert(w.to_string());
            }
            position = r.offset() + 1;
        }
        let finished = position >= lines_end;
        if last.elapsed() >= COMMIT || finished {
            for w in changed.drain() {
                let n = counts[&w];
                producer
                    .send_async(ProducerRecord::new("counts-out", n.to_be_bytes().to_vec()).key(w))
                    .unwrap();
            }
            producer.flush().unwrap();
            consumer.commit().unwrap();
            last = Instant::now();
        }
        if finished {
            break;
        }
    }
    let took = t.elapsed();
    consumer.close().unwrap();
    log.close().unwrap();
    took
}

fn main() {
    let n = lines();
    let lines = corpus(n);
    let words: usize = lines.iter().map(|l| l.split(' ').count()).sum();
    let scratch = tempfile::tempdir().unwrap();
    let eos = ProcessingGuarantee::ExactlyOnceV2;
    let alos = ProcessingGuarantee::AtLeastOnce;
    // Streams with 1 and 2 threads under exactly-once (the default) and at-least-once, and
    // the loop: each round runs all five, one after another.
    let mut runs: Vec<Vec<Duration>> = vec![Vec::new(); 5];
    for round in 0..5 {
        let dirs: Vec<_> = (0..5)
            .map(|i| scratch.path().join(format!("r{round}-{i}")))
            .collect();
        for d in &dirs {
            setup(d, &lines);
        }
        runs[0].push(streams_round(&dirs[0], 1, eos));
        runs[1].push(streams_round(&dirs[1], 1, alos));
        runs[2].push(streams_round(&dirs[2], 2, eos));
        runs[3].push(streams_round(&dirs[3], 2, alos));
        runs[4].push(loop_round(&dirs[4]));
        for d in &dirs {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    let ms = |v: &[Duration]| v.iter().map(Duration::as_millis).collect::<Vec<_>>();
    println!(
        "rounds (ms): streams exactly-once 1 thread {:?}, at-least-once 1 thread {:?}; \
         exactly-once 2 threads {:?}, at-least-once 2 threads {:?}; loop {:?}",
        ms(&runs[0]),
        ms(&runs[1]),
        ms(&runs[2]),
        ms(&runs[3]),
        ms(&runs[4])
    );
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let m: Vec<Duration> = runs.iter_mut().map(median).collect();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let l = rate(m[4]);
    println!(
        "wordcount, {n} lines ({words} words), medians of 5 alternating rounds, \
         commit.interval.ms=100:"
    );
    for (i, what) in [
        "streams, exactly_once_v2, 1 thread ",
        "streams, at_least_once,   1 thread ",
        "streams, exactly_once_v2, 2 threads",
        "streams, at_least_once,   2 threads",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "  {what}: {:>9.0} lines/s ({:.2}x the loop)",
            rate(m[i]),
            rate(m[i]) / l
        );
    }
    println!("  hand-written loop                  : {l:>9.0} lines/s");
    println!(
        "  exactly-once / at-least-once: {:.3} (1 thread), {:.3} (2 threads)",
        rate(m[0]) / rate(m[1]),
        rate(m[2]) / rate(m[3])
    );
}
