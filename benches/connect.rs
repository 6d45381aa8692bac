//! Connect's file connectors against the CLI's `produce` and `consume` for the same data, in
//! one run (alternating):
//! - a file of LINES lines → a topic: `FileStreamSource` (StringConverter, each poll's
//!   records and offsets in one transaction) until every line is committed, against
//!   `topiclog produce TOPIC < file`;
//! - a topic of LINES records → a file: `FileStreamSink` (StringConverter) until the file
//!   holds every line, flushed and its offsets written, against
//!   `topiclog consume TOPIC --from-beginning --max LINES > file`.
//!
//! The sink syncs its file before it records its offsets (exactly-once through power loss),
//! which `consume` does not: the comparison is also made with `consume` followed by an
//! `fdatasync` of its file.
//!
//! Lines: `TOPICLOG_CONNECT_BENCH_LINES` (default 1,000,000 of 62 bytes). Each sample is one
//! whole transfer into a fresh directory; rates are lines per second.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::many_single_char_names,
    clippy::cast_precision_loss,
    clippy::format_push_string
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use topiclog::connect::{Connect, Properties};
use topiclog::{Log, LogOptions, ProducerConfig, ProducerRecord};

fn lines() -> usize {
    std::env::var("TOPICLOG_CONNECT_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn write_input(path: &Path, n: usize) {
    let mut text = String::with_capacity(n * 61);
    for i in 0..n {
        text.push_str(&format!("{i:010} {}\n", "abcdefghij".repeat(5)));
    }
    std::fs::write(path, text).unwrap();
}

fn worker() -> Properties {
    Properties::new()
        .with("key.converter", "StringConverter")
        .with("value.converter", "StringConverter")
        .with("offset.flush.interval.ms", "1000")
}

fn wait(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_mins(10),
            "the transfer stalled"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn source_connect(input: &Path, dir: &Path, n: usize) -> Duration {
    let log = LogOptions::new().open(dir).unwrap();
    log.create_topic("t", 1).unwrap();
    let connect = Connect::standalone(&log, worker()).unwrap();
    let h = log.partition("t", 0).unwrap();
    let t = Instant::now();
    connect
        .add(
            Properties::new()
                .with("name", "src")
                .with("connector.class", "FileStreamSource")
                .with("file", input.to_string_lossy())
                .with("topic", "t"),
        )
        .unwrap();
    // Every line committed: the log end counts the transaction markers too.
    wait(|| {
        h.last_stable_offset() >= n as i64
            && connect
                .status("src")
                .is_ok_and(|s| s.tasks.iter().all(|t| t.records >= n as u64))
    });
    let took = t.elapsed();
    connect.close();
    log.close().unwrap();
    took
}

fn source_cli(input: &Path, dir: &Path) -> Duration {
    let bin = env!("CARGO_BIN_EXE_topiclog");
    let d = dir.to_string_lossy().to_string();
    assert!(
        Command::new(bin)
            .args(["--dir", &d, "topics", "create", "t"])
            .status()
            .unwrap()
            .success()
    );
    let t = Instant::now();
    let status = Command::new(bin)
        .args(["--dir", &d, "produce", "t"])
        .stdin(std::fs::File::open(input).unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let took = t.elapsed();
    assert!(status.success());
    took
}

fn fill_topic(dir: &Path, n: usize) -> Log {
    let log = LogOptions::new().open(dir).unwrap();
    log.create_topic("t", 1).unwrap();
    let p = log.producer(ProducerConfig::default()).unwrap();
    for i in 0..n {
        p.send_async(ProducerRecord::new(
            "t",
            format!("{i:010} {}", "abcdefghij".repeat(5)),
        ))
        .unwrap();
    }
    p.flush().unwrap();
    log
}

fn sink_connect(dir: &Path, out: &Path, n: usize) -> Duration {
    let log = fill_topic(dir, n);
    let connect = Connect::standalone(&log, worker()).unwrap();
    let want = (n * 62) as u64;
    let t = Instant::now();
    connect
        .add(
            Properties::new()
                .with("name", "snk")
                .with("connector.class", "FileStreamSink")
                .with("file", out.to_string_lossy())
                .with("topics", "t"),
        )
        .unwrap();
    wait(|| {
        connect
            .status("snk")
            .is_ok_and(|s| s.tasks.iter().all(|t| t.records >= n as u64))
    });
    let moved = t.elapsed();
    // Closing flushes the file and writes its offsets.
    connect.close();
    let took = t.elapsed();
    if std::env::var("TOPICLOG_CONNECT_BENCH_SPLIT").is_ok() {
        eprintln!("sink: moved in {moved:?}, closed (synced) at {took:?}");
    }
    assert_eq!(std::fs::metadata(out).unwrap().len(), want);
    log.close().unwrap();
    took
}

fn sink_cli(dir: &Path, out: &Path, n: usize) -> Duration {
    sink_cli_then(dir, out, n, false)
}

/// `topiclog consume` to a file, then (with `sync`) `fdatasync` of the file: the same
/// durability as the sink, which syncs its file before it records its offsets.
fn sink_cli_then(dir: &Path, out: &Path, n: usize, sync: bool) -> Duration {
    fill_topic(dir, n).close().unwrap();
    let bin = env!("CARGO_BIN_EXE_topiclog");
    let d = dir.to_string_lossy().to_string();
    let t = Instant::now();
    let status = Command::new(bin)
        .args([
            "--dir",
            &d,
            "consume",
            "t",
            "--from-beginning",
            "--max",
            &n.to_string(),
        ])
        .stdout(std::fs::File::create(out).unwrap())
        .status()
        .unwrap();
    if sync {
        std::fs::File::open(out).unwrap().sync_data().unwrap();
    }
    let took = t.elapsed();
    assert!(status.success());
    assert_eq!(std::fs::metadata(out).unwrap().len(), (n * 62) as u64);
    took
}

fn bench(c: &mut Criterion) {
    let n = lines();
    let scratch = tempfile::tempdir().unwrap();
    let input = scratch.path().join("input.txt");
    write_input(&input, n);
    let mut g = c.benchmark_group("connect");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(n as u64));
    let mut round = 0;
    let mut fresh = || {
        round += 1;
        scratch.path().join(format!("d{round}"))
    };
    g.bench_function("file_source_to_topic", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| source_connect(&input, &fresh(), n))
                .sum()
        });
    });
    g.bench_function("cli_produce", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| source_cli(&input, &fresh())).sum());
    });
    g.bench_function("topic_to_file_sink", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let d = fresh();
                    sink_connect(&d, &d.with_extension("out"), n)
                })
                .sum()
        });
    });
    g.bench_function("cli_consume_then_fdatasync", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let d = fresh();
                    sink_cli_then(&d, &d.with_extension("out"), n, true)
                })
                .sum()
        });
    });
    g.bench_function("cli_consume", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let d = fresh();
                    sink_cli(&d, &d.with_extension("out"), n)
                })
                .sum()
        });
    });
    g.finish();
    // Alternating pairs, medians, for the comparison in BENCHMARKS.md.
    let (mut a, mut b, mut s, mut k, mut ks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(source_connect(&input, &fresh(), n));
        b.push(source_cli(&input, &fresh()));
        let d = fresh();
        s.push(sink_connect(&d, &d.with_extension("out"), n));
        let d = fresh();
        k.push(sink_cli(&d, &d.with_extension("out"), n));
        let d = fresh();
        ks.push(sink_cli_then(&d, &d.with_extension("out"), n, true));
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (a, b, s, k, ks) = (
        med(&mut a),
        med(&mut b),
        med(&mut s),
        med(&mut k),
        med(&mut ks),
    );
    println!(
        "connect {n} lines, medians of 5 alternating: file source -> topic {:.0} lines/s, \
         cli produce {:.0} ({:.2}x); topic -> file sink (synced) {:.0} lines/s, cli consume \
         {:.0} ({:.2}x), cli consume + fdatasync {:.0} ({:.2}x)",
        rate(a),
        rate(b),
        rate(a) / rate(b),
        rate(s),
        rate(k),
        rate(s) / rate(k),
        rate(ks),
        rate(s) / rate(ks)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
