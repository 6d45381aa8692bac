//! A windowed count through `topiclog::streams` against a hand-written loop doing the same
//! work with `Consumer` + `HashMap` + `Producer`, same run, alternating rounds:
//! - streams: page views by user → `group_by_key` → one-minute tumbling windows with 10 s of
//!   grace → `count` → `views-out` (Kafka's windowed key: the user, then the window start),
//!   one stream thread, `commit.interval.ms=100`; done when every view is committed;
//! - loop: a consumer in a group reads the views, counts them in a `HashMap` by (user,
//!   window start), drops views for windows closed by the grace period as the streams do,
//!   and every 100 ms writes the counts that changed (same key format), flushes and commits;
//!   done when every view is committed.
//!
//! Views: `TOPICLOG_WINDOWED_BENCH_VIEWS` (default 1,000,000) from 10,000 users, 2 ms apart
//! with some out of order, one partition.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    clippy::many_single_char_names
)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use topiclog::streams::{
    Consumed, Grouped, Materialized, Produced, Serdes, Streams, StreamsBuilder, StreamsConfig,
    TimeWindows,
};
use topiclog::{
    ConsumerConfig, Log, LogOptions, ProducerConfig, ProducerRecord, Record, TopicPartition,
};

const COMMIT: Duration = Duration::from_millis(100);
const WINDOW: i64 = 60_000;
const GRACE: i64 = 10_000;

fn views() -> usize {
    std::env::var("TOPICLOG_WINDOWED_BENCH_VIEWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// (user, time): users skewed, times 2 ms apart, one in 20 up to 5 s early.
fn corpus(n: usize) -> Vec<(String, i64)> {
    let users: Vec<String> = (0..10_000).map(|i| format!("user{i}")).collect();
    let mut x: u64 = 7;
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let r = (x >> 33) as usize % 10_000;
            let mut at = 1_700_000_000_000 + 2 * i as i64;
            if (x >> 20).is_multiple_of(20) {
                at -= ((x >> 40) % 5_000) as i64;
            }
            (users[r * r / 10_000].clone(), at)
        })
        .collect()
}

fn open(dir: &Path) -> Log {
    LogOptions::new().open(dir).unwrap()
}

fn setup(dir: &Path, corpus: &[(String, i64)]) {
    let log = open(dir);
    log.create_topic("views", 1).unwrap();
    log.create_topic("views-out", 1).unwrap();
    let p = log.partition("views", 0).unwrap();
    for chunk in corpus.chunks(1000) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|(u, at)| Record::new("/page").key(u.clone()).timestamp(*at))
            .collect();
        p.append(&records).unwrap();
    }
    log.close().unwrap();
}

fn committed(log: &Log, group: &str) -> Option<i64> {
    let tp = TopicPartition::new("views", 0);
    log.committed_offsets(group, Some(std::slice::from_ref(&tp)))
        .first()
        .and_then(|(_, o)| o.as_ref().map(|o| o.offset))
}

fn wait(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_mins(10), "stalled");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn streams_round(dir: &Path) -> (Duration, u64) {
    let log = open(dir);
    let builder = StreamsBuilder::new();
    builder
        .stream("views", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_millis(WINDOW as u64),
            Duration::from_millis(GRACE as u64),
        ))
        .count(Materialized::named("per-minute"))
        .to_stream()
        .to("views-out", Produced::default());
    let config = StreamsConfig::new("wv").commit_interval(COMMIT);
    let mut streams = Streams::new(&log, builder.build().unwrap(), config);
    let end = log.partition("views", 0).unwrap().log_end_offset();
    let t = Instant::now();
    streams.start().unwrap();
    wait(|| committed(&log, "wv") == Some(end));
    let took = t.elapsed();
    let dropped = streams.dropped_records();
    streams.close().unwrap();
    log.close().unwrap();
    (took, dropped)
}

fn loop_round(dir: &Path) -> (Duration, u64) {
    let log = open(dir);
    let end = log.partition("views", 0).unwrap().log_end_offset();
    let t = Instant::now();
    let mut cc = ConsumerConfig::group("loop");
    cc.enable_auto_commit = false;
    cc.max_poll_records = 1000;
    let mut consumer = log.consumer(cc).unwrap();
    consumer.subscribe(&["views"]).unwrap();
    let producer = log.producer(ProducerConfig::default()).unwrap();
    let mut counts: HashMap<(String, i64), i64> = HashMap::new();
    let mut changed: HashSet<(String, i64)> = HashSet::new();
    let mut stream_time = i64::MIN;
    let mut dropped = 0;
    let mut last = Instant::now();
    let mut position = 0;
    loop {
        let polled = consumer.poll(Duration::from_millis(100)).unwrap();
        for r in &polled {
            let user = String::from_utf8_lossy(r.key().unwrap_or_default()).into_owned();
            let at = r.timestamp();
            stream_time = stream_time.max(at);
            let start = at - at.rem_euclid(WINDOW);
            if start + WINDOW + GRACE <= stream_time {
                dropped += 1;
            } else {
                *counts.entry((user.clone(), start)).or_insert(0) += 1;
                changed.insert((user, start));
            }
            position = r.offset() + 1;
        }
        let finished = position >= end;
        if last.elapsed() >= COMMIT || finished {
            for (user, start) in changed.drain() {
                let n = counts[&(user.clone(), start)];
                let mut key = user.into_bytes();
                key.extend_from_slice(&start.to_be_bytes());
                producer
                    .send_async(ProducerRecord::new("views-out", n.to_be_bytes().to_vec()).key(key))
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
    (took, dropped)
}

fn main() {
    let n = views();
    let views = corpus(n);
    let scratch = tempfile::tempdir().unwrap();
    let (mut s, mut l) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let a = scratch.path().join(format!("s{round}"));
        let b = scratch.path().join(format!("l{round}"));
        setup(&a, &views);
        setup(&b, &views);
        let (ts, ds) = streams_round(&a);
        let (tl, dl) = loop_round(&b);
        assert_eq!(ds, dl, "both drop the same late views");
        s.push(ts);
        l.push(tl);
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }
    let ms = |v: &[Duration]| v.iter().map(Duration::as_millis).collect::<Vec<_>>();
    println!("rounds (ms): streams {:?}; loop {:?}", ms(&s), ms(&l));
    s.sort();
    l.sort();
    let (s, l) = (s[2], l[2]);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "windowed count, {n} views, medians of 5 alternating rounds: streams {:.0} views/s \
         ({:.2}x), hand-written loop {:.0} views/s",
        rate(s),
        rate(s) / rate(l),
        rate(l)
    );
}
