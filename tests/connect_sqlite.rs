//! The SQLite source and sink (the JDBC connectors' model) against real SQLite files: each
//! source mode with inserts and updates while it runs, the sink's inserts and upserts, its
//! refusals, and its offsets kept with its rows.
#![cfg(feature = "sqlite")]
#![allow(clippy::indexing_slicing)]

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use topiclog::connect::{Connect, Properties, TaskState};
use topiclog::{IsolationLevel, Log, ProducerConfig, ProducerRecord};

mod common;
use common::TestResult;

use common::wait_for;

fn worker() -> Properties {
    Properties::new()
        .with("key.converter", "JsonConverter")
        .with("value.converter", "JsonConverter")
        .with("offset.flush.interval.ms", "10")
}

/// The committed values of a topic, as JSON.
fn values(log: &Log, topic: &str) -> Vec<serde_json::Value> {
    let Ok(h) = log.partition(topic, 0) else {
        return Vec::new();
    };
    let h = h.with_isolation_level(IsolationLevel::ReadCommitted);
    let end = h.last_stable_offset();
    h.records(h.log_start_offset(), 1 << 24)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.offset < end)
        .filter_map(|r| serde_json::from_slice(r.value.as_deref()?).ok())
        .collect()
}

fn payloads(log: &Log, topic: &str) -> Vec<serde_json::Value> {
    values(log, topic)
        .into_iter()
        .map(|v| v["payload"].clone())
        .collect()
}

fn source(db: &Path, mode: &str) -> Properties {
    Properties::new()
        .with("name", format!("src-{mode}"))
        .with(
            "connector.class",
            "io.confluent.connect.jdbc.JdbcSourceConnector",
        )
        .with("connection.url", format!("jdbc:sqlite:{}", db.display()))
        .with("mode", mode)
        .with("table.whitelist", "accounts")
        .with("topic.prefix", "db-")
        .with("poll.interval.ms", "50")
}

fn setup(db: &Path, ts_type: &str) -> TestResult<Connection> {
    let c = Connection::open(db)?;
    c.execute_batch(&format!(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, balance REAL,
                                updated {ts_type});"
    ))?;
    Ok(c)
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(0)
}

#[test]
fn incrementing_mode_reads_new_rows_once_with_a_schema_of_the_columns() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("src.db");
    let c = setup(&db, "INTEGER")?;
    for i in 1..=3 {
        c.execute(
            "INSERT INTO accounts (id, name, balance, updated) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![i, format!("a{i}"), 10.5 * f64::from(i), now_ms()],
        )?;
    }
    let log = common::open(&dir.path().join("data"))?;
    let connect = Connect::standalone(&log, worker())?;
    connect.add(source(&db, "incrementing").with("incrementing.column.name", "id"))?;
    wait_for("three rows", || payloads(&log, "db-accounts").len() == 3)?;
    let first = &values(&log, "db-accounts")[0];
    assert_eq!(first["schema"]["type"], "struct");
    assert_eq!(first["schema"]["name"], "accounts");
    assert_eq!(
        first["schema"]["fields"][1],
        serde_json::json!({"type": "string", "optional": false, "field": "name"})
    );
    assert_eq!(first["schema"]["fields"][2]["type"], "double");
    assert_eq!(first["payload"]["name"], "a1");
    // Inserts while it runs arrive; an update does not (incrementing mode sees new ids only).
    c.execute("UPDATE accounts SET balance = 0 WHERE id = 1", [])?;
    c.execute(
        "INSERT INTO accounts (id, name) VALUES (4, 'a4'), (5, 'a5')",
        [],
    )?;
    wait_for("five rows", || payloads(&log, "db-accounts").len() == 5)?;
    std::thread::sleep(Duration::from_millis(200));
    let ids: Vec<i64> = payloads(&log, "db-accounts")
        .iter()
        .filter_map(|p| p["id"].as_i64())
        .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    connect.close();
    // The offsets are the JDBC connector's.
    let h = log.partition("connect-offsets", 0)?;
    let last = h.records(0, 1 << 20)?.pop().ok_or("an offset")?;
    let key: serde_json::Value = serde_json::from_slice(last.key.as_deref().ok_or("key")?)?;
    assert_eq!(
        key,
        serde_json::json!(["src-incrementing", {"protocol": "1", "table": "accounts"}])
    );
    let value: serde_json::Value = serde_json::from_slice(last.value.as_deref().ok_or("v")?)?;
    assert_eq!(value, serde_json::json!({"incrementing": 5}));
    Ok(())
}

#[test]
fn timestamp_modes_read_updates_and_rows_sharing_a_time() -> TestResult {
    for (mode, ts_type) in [("timestamp", "INTEGER"), ("timestamp+incrementing", "TEXT")] {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("src.db");
        let c = setup(&db, ts_type)?;
        let at = |ms: i64| -> rusqlite::types::Value {
            if ts_type == "TEXT" {
                // ISO-8601 text, read as UTC.
                let secs = ms / 1000;
                rusqlite::types::Value::Text(
                    Connection::open_in_memory()
                        .and_then(|m| {
                            m.query_row(
                                "SELECT strftime('%Y-%m-%d %H:%M:%f', ?1, 'unixepoch')",
                                [secs],
                                |r| r.get::<_, String>(0),
                            )
                        })
                        .unwrap_or_default(),
                )
            } else {
                rusqlite::types::Value::Integer(ms)
            }
        };
        let t0 = (now_ms() / 1000 - 100) * 1000;
        // Five rows sharing one time, more than a batch of two holds.
        for i in 1..=5 {
            c.execute(
                "INSERT INTO accounts (id, name, updated) VALUES (?1, ?2, ?3)",
                rusqlite::params![i, format!("a{i}"), at(t0)],
            )?;
        }
        let log = common::open(&dir.path().join("data"))?;
        let connect = Connect::standalone(&log, worker())?;
        connect.add(
            source(&db, mode)
                .with("timestamp.column.name", "updated")
                .with("incrementing.column.name", "id")
                .with("batch.max.rows", "2"),
        )?;
        wait_for("five rows", || payloads(&log, "db-accounts").len() == 5)?;
        // An update moves a row's time on: it is read again, as the JDBC source does.
        c.execute(
            "UPDATE accounts SET name = 'renamed', updated = ?1 WHERE id = 2",
            [at(t0 + 50_000)],
        )?;
        wait_for("the update", || payloads(&log, "db-accounts").len() == 6)?;
        std::thread::sleep(Duration::from_millis(200));
        let got = payloads(&log, "db-accounts");
        assert_eq!(got.len(), 6, "{mode}: each row once, then the update");
        assert_eq!(got[5]["name"], "renamed", "{mode}");
        let mut ids: Vec<i64> = got[..5].iter().filter_map(|p| p["id"].as_i64()).collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3, 4, 5], "{mode}");
        connect.close();
    }
    Ok(())
}

#[test]
fn bulk_mode_reads_the_whole_table_each_interval() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("src.db");
    let c = setup(&db, "INTEGER")?;
    c.execute(
        "INSERT INTO accounts (id, name) VALUES (1, 'a'), (2, 'b')",
        [],
    )?;
    let log = common::open(&dir.path().join("data"))?;
    let connect = Connect::standalone(&log, worker())?;
    connect.add(source(&db, "bulk"))?;
    wait_for("two copies of the table", || {
        payloads(&log, "db-accounts").len() >= 4
    })?;
    connect.close();
    let got = payloads(&log, "db-accounts");
    assert_eq!(got.len() % 2, 0, "whole tables only");
    assert_eq!(got[2]["name"], "a");
    Ok(())
}

fn sink(db: &Path) -> Properties {
    Properties::new()
        .with("name", "snk")
        .with(
            "connector.class",
            "io.confluent.connect.jdbc.JdbcSinkConnector",
        )
        .with("connection.url", db.to_string_lossy())
        .with("topics", "people")
        .with("insert.mode", "upsert")
        .with("pk.mode", "record_value")
        .with("pk.fields", "id")
        .with("auto.create", "true")
}

fn person(id: i64, name: &str) -> String {
    serde_json::json!({
        "schema": {"type": "struct", "name": "person", "optional": false, "fields": [
            {"type": "int64", "optional": false, "field": "id"},
            {"type": "string", "optional": true, "field": "name"}]},
        "payload": {"id": id, "name": name}
    })
    .to_string()
}

#[test]
fn the_sink_upserts_rows_and_keeps_its_offsets_with_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    log.create_topic("people", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    p.send(ProducerRecord::new("people", person(1, "ann")))?;
    p.send(ProducerRecord::new("people", person(2, "bob")))?;
    p.send(ProducerRecord::new("people", person(1, "anne")))?;
    let db = dir.path().join("target.db");
    let connect = Connect::standalone(&log, worker())?;
    connect.add(sink(&db))?;
    let rows = |db: &Path| -> Vec<(i64, String)> {
        Connection::open(db)
            .and_then(|c| {
                let mut s = c.prepare("SELECT id, name FROM people ORDER BY id")?;
                let r = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                r.collect()
            })
            .unwrap_or_default()
    };
    wait_for("the upsert", || {
        rows(&db) == [(1, "anne".to_string()), (2, "bob".to_string())]
    })?;
    connect.close();
    let c = Connection::open(&db)?;
    let next: i64 = c.query_row(
        "SELECT next_offset FROM __topiclog_connect_offsets WHERE connector = 'snk'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(next, 3);
    // A restart reads on from the offsets in the database, not again from the start.
    c.execute("UPDATE people SET name = 'edited' WHERE id = 2", [])?;
    let connect = Connect::standalone(&log, worker())?;
    connect.add(sink(&db))?;
    p.send(ProducerRecord::new("people", person(3, "cy")))?;
    wait_for("the third row", || rows(&db).len() == 3)?;
    assert_eq!(
        rows(&db)[1],
        (2, "edited".to_string()),
        "nothing written twice"
    );
    connect.close();
    Ok(())
}

#[test]
fn the_sink_refuses_values_without_fields_clearly_or_sends_them_to_the_dead_letter_topic()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    log.create_topic("people", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    p.send(ProducerRecord::new(
        "people",
        r#"{"schema":{"type":"string","optional":false},"payload":"just text"}"#,
    ))?;
    let db = dir.path().join("target.db");
    let connect = Connect::standalone(&log, worker())?;
    connect.add(sink(&db))?;
    let mut msg = String::new();
    wait_for("the task to fail", || {
        if let Ok(s) = connect.status("snk")
            && let Some(TaskState::Failed(m)) = s.tasks.first().map(|t| t.state.clone())
        {
            msg = m;
            return true;
        }
        false
    })?;
    assert!(msg.contains("not a struct or a JSON object"), "{msg}");
    connect.remove("snk")?;
    connect.add(
        sink(&db)
            .with("name", "snk2")
            .with("errors.tolerance", "all")
            .with("errors.deadletterqueue.topic.name", "people-dlq"),
    )?;
    p.send(ProducerRecord::new("people", person(7, "ok")))?;
    wait_for("the dead letter", || {
        log.partition("people-dlq", 0)
            .is_ok_and(|h| h.records(0, 1 << 20).is_ok_and(|r| r.len() == 1))
    })?;
    let n: i64 =
        Connection::open(&db)?.query_row("SELECT count(*) FROM people", [], |r| r.get(0))?;
    assert_eq!(n, 1);
    connect.close();
    Ok(())
}

#[test]
fn a_record_with_a_column_the_table_lacks_goes_to_the_dead_letter_topic_under_tolerance()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    log.create_topic("people", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    // Schemaless JSON objects: the table is made from the first; the second has a column
    // more (the sink does not add columns), the third fits again.
    p.send(ProducerRecord::new("people", r#"{"id":1,"name":"ann"}"#))?;
    p.send(ProducerRecord::new(
        "people",
        r#"{"id":2,"name":"bob","email":"b@example.com"}"#,
    ))?;
    p.send(ProducerRecord::new("people", r#"{"id":3,"Name":"cy"}"#))?;
    let db = dir.path().join("target.db");
    let connect = Connect::standalone(
        &log,
        worker()
            .with("value.converter.schemas.enable", "false")
            .with("key.converter.schemas.enable", "false"),
    )?;
    connect.add(
        sink(&db)
            .with("errors.tolerance", "all")
            .with("errors.deadletterqueue.topic.name", "people-dlq")
            .with("errors.deadletterqueue.context.headers.enable", "true"),
    )?;
    let count = || -> i64 {
        Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM people", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    wait_for("two rows and a dead letter", || {
        count() == 2
            && log
                .partition("people-dlq", 0)
                .is_ok_and(|h| h.records(0, 1 << 20).is_ok_and(|r| r.len() == 1))
    })?;
    let status = connect.status("snk")?;
    assert!(
        status
            .tasks
            .iter()
            .all(|t| matches!(t.state, TaskState::Running)),
        "{status:?}"
    );
    let dead = log.partition("people-dlq", 0)?.records(0, 1 << 20)?;
    let message = dead
        .first()
        .and_then(|r| {
            r.headers
                .iter()
                .find(|h| h.key == "__connect.errors.exception.message")
        })
        .and_then(|h| h.value.clone())
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    assert!(message.contains("no column 'email'"), "{message}");
    connect.close();
    Ok(())
}

#[test]
fn a_sink_whose_database_another_writer_holds_retries_until_it_is_free() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    log.create_topic("people", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    let db = dir.path().join("target.db");
    let connect = Connect::standalone(&log, worker())?;
    connect.add(sink(&db))?;
    p.send(ProducerRecord::new("people", person(1, "ann")))?;
    let count = || -> i64 {
        Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM people", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    wait_for("the first row", || count() == 1)?;
    // Another connection holds the write lock for longer than the sink's busy timeout (5 s):
    // its write fails as busy, which is retried, not a failed task.
    let other = Connection::open(&db)?;
    other.execute_batch("BEGIN IMMEDIATE")?;
    p.send(ProducerRecord::new("people", person(2, "bob")))?;
    std::thread::sleep(Duration::from_secs(7));
    let status = connect.status("snk")?;
    assert!(
        status
            .tasks
            .iter()
            .all(|t| matches!(t.state, TaskState::Running)),
        "{status:?}"
    );
    other.execute_batch("ROLLBACK")?;
    wait_for("the second row", || count() == 2)?;
    connect.close();
    Ok(())
}

#[test]
fn the_sink_writes_kafkas_logical_types_as_numbers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    log.create_topic("people", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    // 123.45 as a Decimal of scale 2 (unscaled 12345 = 0x3039), 2026-12-06 as a Date
    // (20,428 days), a Timestamp in ms.
    let record = serde_json::json!({
        "schema": {"type": "struct", "optional": false, "fields": [
            {"type": "int64", "optional": false, "field": "id"},
            {"type": "bytes", "optional": false, "field": "price",
             "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
             "parameters": {"scale": "2"}},
            {"type": "int32", "optional": false, "field": "day",
             "name": "org.apache.kafka.connect.data.Date", "version": 1},
            {"type": "int64", "optional": false, "field": "at",
             "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}]},
        "payload": {"id": 1, "price": "MDk=", "day": 20428, "at": 1_765_000_000_123_i64}
    });
    p.send(ProducerRecord::new("people", record.to_string()))?;
    let db = dir.path().join("target.db");
    let connect = Connect::standalone(&log, worker())?;
    connect.add(sink(&db))?;
    let row = || -> Option<(f64, i64, i64)> {
        Connection::open(&db)
            .and_then(|c| {
                c.query_row("SELECT price, day, at FROM people", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
            })
            .ok()
    };
    wait_for("the row", || row().is_some())?;
    assert_eq!(row(), Some((123.45, 20428 * 86_400_000, 1_765_000_000_123)));
    let types: Vec<String> = {
        let c = Connection::open(&db)?;
        let mut s = c.prepare("SELECT type FROM pragma_table_info('people') ORDER BY cid")?;
        s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    assert_eq!(types, ["INTEGER", "NUMERIC", "NUMERIC", "NUMERIC"]);
    connect.close();
    Ok(())
}

#[test]
fn bad_sqlite_configurations_name_their_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("src.db");
    setup(&db, "INTEGER")?;
    let log = common::open(&dir.path().join("data"))?;
    let connect = Connect::standalone(&log, worker())?;
    let key_of = |e: topiclog::Error| match e {
        topiclog::Error::InvalidConfig { field, .. } => field,
        other => format!("not InvalidConfig: {other}"),
    };
    let no_col = source(&db, "incrementing");
    assert_eq!(
        key_of(connect.add(no_col).expect_err("column")),
        "incrementing.column.name"
    );
    let bad_mode = source(&db, "sometimes");
    assert_eq!(key_of(connect.add(bad_mode).expect_err("mode")), "mode");
    let no_table = source(&db, "bulk").with("table.whitelist", "nope");
    assert_eq!(
        key_of(connect.add(no_table).expect_err("table")),
        "table.whitelist"
    );
    let upsert = sink(&db).with("pk.mode", "none");
    assert_eq!(key_of(connect.add(upsert).expect_err("pk")), "pk.mode");
    connect.close();
    Ok(())
}

#[test]
fn the_sink_keeps_offsets_by_the_topic_it_read_even_when_a_transform_renames_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    log.create_topic("db-people", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    p.send(ProducerRecord::new("db-people", person(1, "ann")))?;
    let db = dir.path().join("target.db");
    let connect = Connect::standalone(&log, worker())?;
    connect.add(
        sink(&db)
            .with("topics", "db-people")
            .with("transforms", "route")
            .with("transforms.route.type", "RegexRouter")
            .with("transforms.route.regex", "db-(.*)")
            .with("transforms.route.replacement", "$1"),
    )?;
    let count = |db: &Path| -> i64 {
        Connection::open(db)
            .and_then(|c| c.query_row("SELECT count(*) FROM people", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    wait_for("the row", || count(&db) == 1)?;
    connect.close();
    let c = Connection::open(&db)?;
    let (topic, next): (String, i64) = c.query_row(
        "SELECT topic, next_offset FROM __topiclog_connect_offsets",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!(
        (topic.as_str(), next),
        ("db-people", 1),
        "the topic it read, not the table's"
    );
    Ok(())
}

#[test]
fn source_column_names_are_checked_and_matched_without_case() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("src.db");
    let c = setup(&db, "DATETIME")?;
    c.execute(
        "INSERT INTO accounts (id, name, updated) VALUES (1, 'a', '2024-01-02 03:04:05')",
        [],
    )?;
    let log = common::open(&dir.path().join("data"))?;
    let connect = Connect::standalone(&log, worker())?;
    // `ID` is the column `id`: read once, not over and over.
    connect.add(source(&db, "incrementing").with("incrementing.column.name", "ID"))?;
    wait_for("the row", || payloads(&log, "db-accounts").len() == 1)?;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(payloads(&log, "db-accounts").len(), 1, "each row once");
    // A DATETIME column is text in the record.
    assert_eq!(
        payloads(&log, "db-accounts")[0]["updated"],
        "2024-01-02 03:04:05"
    );
    connect.remove("src-incrementing")?;
    // A name that is no column fails the task, naming it.
    connect.add(
        source(&db, "incrementing")
            .with("name", "typo")
            .with("incrementing.column.name", "idd"),
    )?;
    let mut msg = String::new();
    wait_for("the task to fail", || {
        if let Ok(s) = connect.status("typo")
            && let Some(TaskState::Failed(m)) = s.tasks.first().map(|t| t.state.clone())
        {
            msg = m;
            return true;
        }
        false
    })?;
    assert!(msg.contains("no column 'idd'"), "{msg}");
    connect.close();
    Ok(())
}

#[test]
fn columns_without_a_declared_type_take_the_type_of_their_values() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("src.db");
    let c = Connection::open(&db)?;
    c.execute_batch(
        "CREATE TABLE things (id INTEGER PRIMARY KEY, label, amount, raw, count INTEGER);
         INSERT INTO things VALUES (1, 'a', 5, NULL, 1), (2, 'b', 2.5, x'00ff', 2);",
    )?;
    let log = common::open(&dir.path().join("data"))?;
    let connect = Connect::standalone(&log, worker())?;
    connect.add(
        source(&db, "incrementing")
            .with("table.whitelist", "things")
            .with("incrementing.column.name", "id"),
    )?;
    wait_for("the rows", || values(&log, "db-things").len() == 2)?;
    let got = values(&log, "db-things");
    let types: Vec<(String, String)> = got[0]["schema"]["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    (
                        f["field"].as_str().unwrap_or_default().to_string(),
                        f["type"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let want = [
        ("id", "int64"),
        ("label", "string"),
        ("amount", "double"),
        ("raw", "bytes"),
        ("count", "int64"),
    ];
    assert_eq!(
        types,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    assert_eq!(got[0]["payload"]["amount"], 5.0);
    assert_eq!(got[1]["payload"]["raw"], "AP8=");
    // A query's expressions have no declared type either.
    connect.add(
        source(&db, "incrementing")
            .with("name", "q")
            .with("table.whitelist", "")
            .with(
                "query",
                "SELECT id, label || '!' AS shout, length(label) AS n FROM things",
            )
            .with("topic.prefix", "shouts")
            .with("incrementing.column.name", "id"),
    )?;
    wait_for("the query's rows", || values(&log, "shouts").len() == 2)?;
    let q = values(&log, "shouts");
    assert_eq!(q[0]["payload"]["shout"], "a!");
    assert_eq!(q[0]["payload"]["n"], 1);
    // A value that does not fit its declared type fails the task, naming the column.
    c.execute("INSERT INTO things VALUES (3, 'c', 1, NULL, 'many')", [])?;
    let mut msg = String::new();
    wait_for("the task to fail", || {
        if let Ok(s) = connect.status("src-incrementing")
            && let Some(TaskState::Failed(m)) = s.tasks.first().map(|t| t.state.clone())
        {
            msg = m;
            return true;
        }
        false
    })?;
    assert!(
        msg.contains("column 'count'") && msg.contains("'many'"),
        "{msg}"
    );
    connect.close();
    Ok(())
}
