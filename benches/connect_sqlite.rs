//! The SQLite connectors against a plain loop that copies the same rows between two SQLite
//! files with the same crate (`rusqlite`), same run, alternating:
//! - source: `JdbcSourceConnector` (incrementing mode, JsonConverter with schemas) reads a
//!   table of ROWS rows into a topic, until every row is committed;
//! - sink: `JdbcSinkConnector` (insert mode, `pk.mode=record_value`, `auto.create`) writes a
//!   topic of ROWS such records into a new table, until every row is there (defaults: its
//!   consumer reads `batch.size`, 3,000, records a poll, one transaction each);
//! - loop: `SELECT` from the source table, `INSERT` into a new table, in transactions of
//!   3,000 rows (the sink's default `batch.size`), WAL, `synchronous=FULL` as the sink.
//!
//! Rows: `TOPICLOG_SQLITE_BENCH_ROWS` (default 200,000).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::many_single_char_names
)]

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use topiclog::connect::{Connect, Properties};
use topiclog::{IsolationLevel, LogOptions};

fn rows() -> usize {
    std::env::var("TOPICLOG_SQLITE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn make_source(path: &Path, n: usize) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance REAL,
                                updated INTEGER);",
    )
    .unwrap();
    let tx = c.unchecked_transaction().unwrap();
    {
        let mut s = tx
            .prepare("INSERT INTO accounts VALUES (?1, ?2, ?3, ?4)")
            .unwrap();
        for i in 0..n as i64 {
            s.execute(rusqlite::params![
                i + 1,
                format!("account holder {i}"),
                i as f64 * 1.5,
                1_700_000_000_000 + i
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn worker() -> Properties {
    Properties::new()
        .with("key.converter", "JsonConverter")
        .with("value.converter", "JsonConverter")
        .with("offset.flush.interval.ms", "1000")
}

fn wait(mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_mins(10), "stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Source: the table into a topic. Returns the time and leaves the topic for the sink.
fn source(db: &Path, dir: &Path, n: usize) -> Duration {
    let log = LogOptions::new().open(dir).unwrap();
    log.create_topic("db-accounts", 1).unwrap();
    let connect = Connect::standalone(&log, worker()).unwrap();
    let h = log
        .partition("db-accounts", 0)
        .unwrap()
        .with_isolation_level(IsolationLevel::ReadCommitted);
    let t = Instant::now();
    connect
        .add(
            Properties::new()
                .with("name", "src")
                .with("connector.class", "JdbcSourceConnector")
                .with("connection.url", db.to_string_lossy())
                .with("mode", "incrementing")
                .with("incrementing.column.name", "id")
                .with("table.whitelist", "accounts")
                .with("topic.prefix", "db-")
                .with("batch.max.rows", "1000")
                .with("poll.interval.ms", "10"),
        )
        .unwrap();
    wait(|| {
        connect
            .status("src")
            .is_ok_and(|s| s.tasks.iter().all(|t| t.records >= n as u64))
            && h.last_stable_offset() >= n as i64
    });
    let took = t.elapsed();
    connect.close();
    log.close().unwrap();
    took
}

/// Sink: the topic `source` filled into a new database.
fn sink(dir: &Path, target: &Path, n: usize) -> Duration {
    let log = LogOptions::new().open(dir).unwrap();
    let connect = Connect::standalone(&log, worker()).unwrap();
    let t = Instant::now();
    connect
        .add(
            Properties::new()
                .with("name", format!("snk-{}", target.display()))
                .with("connector.class", "JdbcSinkConnector")
                .with("connection.url", target.to_string_lossy())
                .with("topics", "db-accounts")
                .with("pk.mode", "record_value")
                .with("pk.fields", "id")
                .with("auto.create", "true"),
        )
        .unwrap();
    let name = format!("snk-{}", target.display());
    wait(|| {
        connect
            .status(&name)
            .is_ok_and(|s| s.tasks.iter().all(|t| t.records >= n as u64))
    });
    let took = t.elapsed();
    connect.close();
    log.close().unwrap();
    let c = Connection::open(target).unwrap();
    let count: i64 = c
        .query_row("SELECT count(*) FROM \"db-accounts\"", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, n as i64);
    took
}

/// The plain loop: rows read from one file and inserted into another.
fn copy_loop(db: &Path, target: &Path, n: usize) -> Duration {
    let t = Instant::now();
    let src = Connection::open(db).unwrap();
    let dst = Connection::open(target).unwrap();
    dst.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE accounts (id INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
                                balance REAL, updated INTEGER);",
    )
    .unwrap();
    let mut read = src
        .prepare("SELECT id, name, balance, updated FROM accounts")
        .unwrap();
    let mut rows = read.query([]).unwrap();
    let mut done = 0;
    while done < n {
        let tx = dst.unchecked_transaction().unwrap();
        {
            let mut ins = tx
                .prepare_cached("INSERT INTO accounts VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            for _ in 0..3000 {
                let Some(r) = rows.next().unwrap() else { break };
                ins.execute(rusqlite::params![
                    r.get::<_, i64>(0).unwrap(),
                    r.get::<_, String>(1).unwrap(),
                    r.get::<_, f64>(2).unwrap(),
                    r.get::<_, i64>(3).unwrap()
                ])
                .unwrap();
                done += 1;
            }
        }
        tx.commit().unwrap();
    }
    t.elapsed()
}

fn main() {
    let n = rows();
    let scratch = tempfile::tempdir().unwrap();
    let db = scratch.path().join("source.db");
    make_source(&db, n);
    let (mut s, mut k, mut l) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..5 {
        let dir = scratch.path().join(format!("log{round}"));
        s.push(source(&db, &dir, n));
        k.push(sink(
            &dir,
            &scratch.path().join(format!("sink{round}.db")),
            n,
        ));
        l.push(copy_loop(
            &db,
            &scratch.path().join(format!("loop{round}.db")),
            n,
        ));
    }
    let ms = |v: &[Duration]| v.iter().map(Duration::as_millis).collect::<Vec<_>>();
    println!(
        "rounds (ms): source {:?}, sink {:?}, loop {:?}",
        ms(&s),
        ms(&k),
        ms(&l)
    );
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (s, k, l) = (med(&mut s), med(&mut k), med(&mut l));
    println!(
        "sqlite connectors, {n} rows, medians of 5 alternating rounds: source {:.0} rows/s, \
         sink {:.0} rows/s, plain copy loop {:.0} rows/s (source {:.2}x, sink {:.2}x)",
        rate(s),
        rate(k),
        rate(l),
        rate(s) / rate(l),
        rate(k) / rate(l)
    );
}
