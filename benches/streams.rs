//! WordCount through `topiclog::streams` against a hand-written loop doing the same work
//! with `Consumer` + `HashMap` + `Producer`, same run, alternating rounds:
//! - streams: the seed's topology (lines → lowercase, split on spaces → group by word →
//!   count → `counts-out`), `commit.interval.ms=100`, with one stream thread and with two
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

use topiclog::streams::{Streams, StreamsConfig};
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

fn wait(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_mins(10), "stalled");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn streams_round(dir: &Path, threads: usize) -> Duration {
    let log = open(dir);
    let config = StreamsConfig::new("wc")
        .commit_interval(COMMIT)
        .num_stream_threads(threads);
    let topology = wordcount::wordcount("lines", "counts-out").unwrap();
    let mut streams = Streams::new(&log, topology, config);
    let lines_end = end(&log, "lines");
    let t = Instant::now();
    streams.start().unwrap();
    wait(|| committed(&log, "wc", "lines") == Some(lines_end));
    let repartition_end = end(&log, "wc-counts-repartition");
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
    let (mut s1, mut s2, mut l) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..5 {
        let a = scratch.path().join(format!("s{round}"));
        let b = scratch.path().join(format!("t{round}"));
        let c = scratch.path().join(format!("l{round}"));
        for d in [&a, &b, &c] {
            setup(d, &lines);
        }
        s1.push(streams_round(&a, 1));
        s2.push(streams_round(&b, 2));
        l.push(loop_round(&c));
        for d in [&a, &b, &c] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
    let ms = |v: &[Duration]| v.iter().map(Duration::as_millis).collect::<Vec<_>>();
    println!(
        "rounds (ms): streams, 1 thread {:?}; 2 threads {:?}; loop {:?}",
        ms(&s1),
        ms(&s2),
        ms(&l)
    );
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (s1, s2, l) = (median(&mut s1), median(&mut s2), median(&mut l));
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "wordcount, {n} lines ({words} words), medians of 5 alternating rounds: streams \
         {:.0} lines/s with 1 thread ({:.2}x), {:.0} lines/s with 2 threads ({:.2}x); \
         hand-written loop {:.0} lines/s",
        rate(s1),
        rate(s1) / rate(l),
        rate(s2),
        rate(s2) / rate(l),
        rate(l)
    );
}
