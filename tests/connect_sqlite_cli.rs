//! A SQLite → topic → SQLite pipeline through `topiclog connect standalone`, killed with
//! SIGKILL at random points while rows are added: after a last run, the target table equals
//! the source table, each row once (the target's primary key would refuse a second copy).
#![cfg(all(feature = "cli", feature = "sqlite"))]
#![allow(clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;

mod common;
use common::TestResult;

/// The worker's settings, with the sinks' flush (and group commit) interval.
fn write_worker(dir: &Path, flush_ms: u64) -> TestResult {
    std::fs::write(
        dir.join("worker.properties"),
        format!(
            "key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.flush.interval.ms={flush_ms}\n"
        ),
    )?;
    Ok(())
}

fn write_configs(dir: &Path) -> TestResult {
    write_worker(dir, 20)?;
    std::fs::write(
        dir.join("source.properties"),
        "name=db-source\n\
         connector.class=io.confluent.connect.jdbc.JdbcSourceConnector\n\
         connection.url=jdbc:sqlite:source.db\n\
         mode=incrementing\n\
         incrementing.column.name=id\n\
         table.whitelist=events\n\
         topic.prefix=copy-\n\
         poll.interval.ms=20\n\
         batch.max.rows=500\n",
    )?;
    std::fs::write(
        dir.join("sink.properties"),
        "name=db-sink\n\
         connector.class=io.confluent.connect.jdbc.JdbcSinkConnector\n\
         connection.url=target.db\n\
         topics=copy-events\n\
         insert.mode=insert\n\
         pk.mode=record_value\n\
         pk.fields=id\n\
         auto.create=true\n\
         table.name.format=events\n",
    )?;
    Ok(())
}

fn start(dir: &Path) -> TestResult<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_topiclog"))
        .current_dir(dir)
        .args([
            "--dir",
            "data",
            "connect",
            "standalone",
            "worker.properties",
            "source.properties",
            "sink.properties",
            "--progress",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?)
}

fn rows(db: &Path) -> Vec<(i64, String)> {
    Connection::open(db)
        .and_then(|c| {
            let mut s = c.prepare("SELECT id, payload FROM events ORDER BY id")?;
            let r = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            r.collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_database_pipeline_killed_at_random_points_copies_each_row_once() -> TestResult {
    let rounds = common::env_rounds("TOPICLOG_SQLITE_KILL_ROUNDS", 20);
    let dir = tempfile::tempdir()?;
    write_configs(dir.path())?;
    let source = Connection::open(dir.path().join("source.db"))?;
    source.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);",
    )?;
    let mut seed = 0x5eed_u64 ^ rounds;
    let mut rng = move || common::xorshift(&mut seed);
    let mut next_id = 1i64;
    for round in 0..rounds {
        let tx = source.unchecked_transaction()?;
        for _ in 0..rng() % 2000 {
            let payload = format!("event {next_id} {}", "é".repeat((rng() % 40) as usize));
            tx.execute(
                "INSERT INTO events (id, payload) VALUES (?1, ?2)",
                rusqlite::params![next_id, payload],
            )?;
            next_id += 1;
        }
        tx.commit()?;
        // A long interval leaves the group's offsets behind the rows the sink wrote, so a
        // kill then rewinds the consumer over them: only the offsets kept in the target
        // database stop a second insert (which its primary key would refuse).
        write_worker(dir.path(), [1, 20, 300, 5000][(rng() % 4) as usize])?;
        let mut child = start(dir.path())?;
        std::thread::sleep(Duration::from_millis(50 + rng() % 700));
        child.kill()?;
        child.wait()?;
        let got = rows(&dir.path().join("target.db"));
        let want = rows(&dir.path().join("source.db"));
        assert!(
            got.len() <= want.len() && got.iter().zip(&want).all(|(a, b)| a == b),
            "round {round}: the target is not a prefix of the source"
        );
    }
    // A last run to the end, stopped cleanly.
    write_worker(dir.path(), 20)?;
    let child = start(dir.path())?;
    std::thread::sleep(Duration::from_secs(1));
    let want = rows(&dir.path().join("source.db"));
    let started = Instant::now();
    while rows(&dir.path().join("target.db")).len() < want.len() {
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "the target did not catch up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(sent.success());
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "topiclog connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        rows(&dir.path().join("target.db")) == want,
        "the target table differs from the source table"
    );
    Ok(())
}
