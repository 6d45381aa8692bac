//! `topiclog::connect` through its public API: the file connectors, offsets written with the
//! records, converters on the way in and out, errors and the dead-letter topic, and the
//! runtime's add, pause, resume, restart and remove.

#![allow(clippy::format_collect)]

use std::path::Path;
use std::time::Duration;

use topiclog::connect::connector::OffsetReader;
use topiclog::connect::{
    Connect, ConnectRecord, Plugin, Properties, Schema, SchemaType, SourceConnector, SourceRecord,
    SourceTask, TaskState, Value,
};
use topiclog::{Error, IsolationLevel, Log, ProducerConfig, ProducerRecord, Record};

mod common;
use common::TestResult;

use common::wait_for;

/// Waits for a task of `name` to fail; its message.
fn failure(connect: &Connect<'_>, name: &str) -> TestResult<String> {
    let mut msg = None;
    wait_for("the task to fail", || {
        msg = connect.status(name).ok().and_then(|s| {
            s.tasks.into_iter().find_map(|t| match t.state {
                TaskState::Failed(m) => Some(m),
                _ => None,
            })
        });
        msg.is_some()
    })?;
    msg.ok_or_else(|| "a failed task".into())
}

fn worker(converter: &str, schemas: bool) -> Properties {
    Properties::new()
        .with("key.converter", converter)
        .with("value.converter", converter)
        .with("key.converter.schemas.enable", schemas.to_string())
        .with("value.converter.schemas.enable", schemas.to_string())
        .with("offset.flush.interval.ms", "10")
}

fn source(name: &str, file: &Path, topic: &str) -> Properties {
    Properties::new()
        .with("name", name)
        .with("connector.class", "FileStreamSource")
        .with("file", file.to_string_lossy())
        .with("topic", topic)
}

fn sink(name: &str, file: &Path, topics: &str) -> Properties {
    Properties::new()
        .with("name", name)
        .with(
            "connector.class",
            "org.apache.kafka.connect.file.FileStreamSinkConnector",
        )
        .with("file", file.to_string_lossy())
        .with("topics", topics)
}

/// The committed values of a topic's partition 0.
fn values(log: &Log, topic: &str) -> TestResult<Vec<String>> {
    let h = log
        .partition(topic, 0)?
        .with_isolation_level(IsolationLevel::ReadCommitted);
    let recs = h.records(h.log_start_offset(), 1 << 24)?;
    Ok(recs
        .into_iter()
        .filter(|r| r.offset < h.last_stable_offset())
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"null")).into_owned())
        .collect())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn the_quickstart_pipeline_moves_lines_and_follows_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    let input = dir.path().join("test.txt");
    let output = dir.path().join("test.sink.txt");
    std::fs::write(&input, "foo\nbar\n")?;
    let connect = Connect::standalone(
        &log,
        worker("org.apache.kafka.connect.json.JsonConverter", true),
    )?;
    connect.add(source("local-file-source", &input, "connect-test"))?;
    connect.add(sink("local-file-sink", &output, "connect-test"))?;
    wait_for("two lines in the sink", || read(&output) == "foo\nbar\n")?;
    // Lines appended while it runs arrive too.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .and_then(|mut f| std::io::Write::write_all(&mut f, "héllo wörld\r\nlast\n".as_bytes()))?;
    wait_for("the appended lines", || {
        read(&output) == "foo\nbar\nhéllo wörld\nlast\n"
    })?;
    // The topic holds JsonConverter's envelopes; the sink wrote the decoded values.
    let topic = values(&log, "connect-test")?;
    assert_eq!(
        topic.first().map(String::as_str),
        Some(r#"{"schema":{"type":"string","optional":false},"payload":"foo"}"#)
    );
    assert_eq!(topic.len(), 4);
    // The source offsets are Kafka's: key ["<connector>", {"filename": ...}], value {"position": n}.
    let h = log.partition("connect-offsets", 0)?;
    let offs = h.records(0, 1 << 20)?;
    let last = offs.last().ok_or("an offset record")?;
    let key: serde_json::Value = serde_json::from_slice(last.key.as_deref().ok_or("key")?)?;
    assert_eq!(
        key,
        serde_json::json!(["local-file-source", {"filename": input.to_string_lossy()}])
    );
    let value: serde_json::Value = serde_json::from_slice(last.value.as_deref().ok_or("value")?)?;
    let len = std::fs::metadata(&input)?.len();
    assert_eq!(value, serde_json::json!({"position": len}));
    let status = connect.status("local-file-sink")?;
    assert_eq!(status.tasks.first().map(|t| t.records), Some(4));
    connect.close();
    Ok(())
}

#[test]
fn a_restarted_runtime_resumes_without_duplicates_on_either_side() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    let lines: String = (0..500).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &lines)?;
    {
        let log = common::open(&data)?;
        let connect = Connect::standalone(&log, worker("StringConverter", false))?;
        connect.add(source("src", &input, "t").with("batch.size", "7"))?;
        connect.add(sink("snk", &output, "t"))?;
        wait_for("all lines", || read(&output) == lines)?;
        connect.close();
        log.close()?;
    }
    let more: String = (500..600).map(|i| format!("line {i}\n")).collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .and_then(|mut f| std::io::Write::write_all(&mut f, more.as_bytes()))?;
    let log = common::open(&data)?;
    let connect = Connect::standalone(&log, worker("StringConverter", false))?;
    connect.add(source("src", &input, "t"))?;
    connect.add(sink("snk", &output, "t"))?;
    let all = format!("{lines}{more}");
    wait_for("the new lines", || read(&output) == all)?;
    let topic = values(&log, "t")?;
    assert_eq!(topic.len(), 600, "each line once in the topic");
    assert_eq!(topic.last().map(String::as_str), Some("line 599"));
    connect.close();
    Ok(())
}

#[test]
fn a_sink_sends_what_it_cannot_convert_to_the_dead_letter_topic_with_context() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    let good = r#"{"schema":{"type":"string","optional":false},"payload":"ok"}"#;
    p.send(ProducerRecord::new("in", good))?;
    let key = r#"{"schema":null,"payload":"k1"}"#;
    p.send(ProducerRecord::new("in", "not json").key(key))?;
    p.send(ProducerRecord::new("in", good))?;
    let output = dir.path().join("out.txt");
    let connect = Connect::standalone(&log, worker("JsonConverter", true))?;
    connect.add(
        sink("snk", &output, "in")
            .with("errors.tolerance", "all")
            .with("errors.deadletterqueue.topic.name", "dlq")
            .with("errors.deadletterqueue.context.headers.enable", "true"),
    )?;
    wait_for("two good lines", || read(&output) == "ok\nok\n")?;
    wait_for("the dead letter", || {
        log.partition("dlq", 0)
            .is_ok_and(|h| h.records(0, 1 << 20).is_ok_and(|r| r.len() == 1))
    })?;
    let dead = log.partition("dlq", 0)?.records(0, 1 << 20)?;
    let d = dead.first().ok_or("a dead letter")?;
    assert_eq!(d.value.as_deref(), Some(&b"not json"[..]));
    assert_eq!(d.key.as_deref(), Some(key.as_bytes()));
    let header = |k: &str| {
        d.headers
            .iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert_eq!(header("__connect.errors.topic").as_deref(), Some("in"));
    assert_eq!(header("__connect.errors.partition").as_deref(), Some("0"));
    assert_eq!(header("__connect.errors.offset").as_deref(), Some("1"));
    assert_eq!(
        header("__connect.errors.stage").as_deref(),
        Some("VALUE_CONVERTER")
    );
    assert_eq!(
        header("__connect.errors.connector.name").as_deref(),
        Some("snk")
    );
    assert_eq!(
        header("__connect.errors.exception.class.name").as_deref(),
        Some("org.apache.kafka.connect.errors.DataException")
    );
    assert!(
        header("__connect.errors.exception.message")
            .is_some_and(|m| m.contains("serialization error"))
    );
    let status = connect.status("snk")?;
    assert_eq!(status.tasks.first().map(|t| t.skipped), Some(1));
    connect.close();
    Ok(())
}

#[test]
fn without_tolerance_a_bad_record_fails_the_task_and_restart_retries_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    p.send(ProducerRecord::new("in", "plain text"))?;
    let output = dir.path().join("out.txt");
    let connect = Connect::standalone(&log, worker("JsonConverter", false))?;
    connect.add(sink("snk", &output, "in"))?;
    let msg = failure(&connect, "snk")?;
    assert!(msg.contains("serialization error"), "{msg}");
    assert_eq!(read(&output), "");
    // A restart meets the same record and fails again: nothing is skipped silently.
    connect.restart("snk")?;
    failure(&connect, "snk")?;
    connect.close();
    Ok(())
}

#[test]
fn bad_configurations_are_refused_naming_the_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    let connect = Connect::standalone(&log, worker("StringConverter", false))?;
    let f = dir.path().join("f.txt");
    let key_of = |e: Error| match e {
        Error::InvalidConfig { field, .. } => field,
        other => format!("not InvalidConfig: {other}"),
    };
    let no_topic = source("a", &f, "t").with("topic", "");
    assert_eq!(
        key_of(connect.add(no_topic).expect_err("no topic")),
        "topic"
    );
    let unknown = source("b", &f, "t").with("connector.class", "MongoSourceConnector");
    assert_eq!(
        key_of(connect.add(unknown).expect_err("unknown")),
        "connector.class"
    );
    let zero = source("c", &f, "t").with("tasks.max", "0");
    assert_eq!(key_of(connect.add(zero).expect_err("zero")), "tasks.max");
    let tolerance = sink("d", &f, "t").with("errors.tolerance", "some");
    assert_eq!(
        key_of(connect.add(tolerance).expect_err("tol")),
        "errors.tolerance"
    );
    let conv = sink("e", &f, "t").with("value.converter", "AvroConverter");
    assert_eq!(
        key_of(connect.add(conv).expect_err("conv")),
        "value.converter"
    );
    let dlq = source("g", &f, "t").with("errors.deadletterqueue.topic.name", "x");
    assert_eq!(
        key_of(connect.add(dlq).expect_err("dlq on a source")),
        "errors.deadletterqueue.topic.name"
    );
    let no_topics = sink("h", &f, "").with("topics", "");
    assert_eq!(
        key_of(connect.add(no_topics).expect_err("no topics")),
        "topics"
    );
    connect.add(source("ok", &f, "t"))?;
    assert_eq!(
        key_of(connect.add(source("ok", &f, "t")).expect_err("twice")),
        "name"
    );
    assert_eq!(connect.connectors(), ["ok"]);
    connect.remove("ok")?;
    assert!(connect.connectors().is_empty());
    assert_eq!(key_of(connect.pause("ok").expect_err("gone")), "name");
    connect.close();
    Ok(())
}

#[test]
fn a_paused_connector_moves_nothing_until_resumed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    let input = dir.path().join("in.txt");
    let output = dir.path().join("out.txt");
    std::fs::write(&input, "a\n")?;
    let connect = Connect::standalone(&log, worker("StringConverter", false))?;
    connect.add(source("src", &input, "t"))?;
    connect.add(sink("snk", &output, "t"))?;
    wait_for("the first line", || read(&output) == "a\n")?;
    connect.pause("src")?;
    wait_for("the pause", || {
        connect
            .status("src")
            .is_ok_and(|s| s.paused && s.tasks.iter().all(|t| t.state == TaskState::Paused))
    })?;
    std::fs::write(&input, "a\nb\n")?;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(values(&log, "t")?, ["a"], "nothing moves while paused");
    connect.resume("src")?;
    wait_for("the second line", || read(&output) == "a\nb\n")?;
    connect.close();
    Ok(())
}

/// A source of your own: counts up, one record per poll, resuming from its offset.
struct Counter;

struct CounterTask {
    next: i64,
}

impl SourceConnector for Counter {
    fn validate(&self, _config: &Properties) -> topiclog::Result<()> {
        Ok(())
    }

    fn task(&self) -> Box<dyn SourceTask> {
        Box::new(CounterTask { next: 0 })
    }
}

fn counter_partition() -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("counter".into(), "c".into());
    m
}

impl SourceTask for CounterTask {
    fn start(&mut self, _config: &Properties, offsets: &OffsetReader) -> topiclog::Result<()> {
        self.next = offsets
            .offset(&counter_partition())
            .and_then(|o| o.get("n"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        Ok(())
    }

    fn poll(&mut self) -> topiclog::Result<Vec<SourceRecord>> {
        if self.next >= 10 {
            std::thread::sleep(Duration::from_millis(5));
            return Ok(Vec::new());
        }
        let mut offset = serde_json::Map::new();
        offset.insert("n".into(), (self.next + 1).into());
        let mut record = ConnectRecord::new(
            "numbers",
            Some(Schema::of(SchemaType::Int64)),
            Value::Int(self.next),
        );
        record.key = Value::String(format!("k{}", self.next));
        record.key_schema = Some(Schema::of(SchemaType::String).into());
        self.next += 1;
        Ok(vec![SourceRecord {
            source_partition: counter_partition(),
            source_offset: offset,
            record,
        }])
    }
}

#[test]
fn a_source_of_your_own_runs_with_transforms_and_resumes_from_its_offsets() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = Properties::new()
        .with("name", "counter")
        .with("transforms", "route")
        .with(
            "transforms.route.type",
            "org.apache.kafka.connect.transforms.RegexRouter",
        )
        .with("transforms.route.regex", "(.*)")
        .with("transforms.route.replacement", "$1-copy");
    for _ in 0..2 {
        let log = common::open(&data)?;
        let connect = Connect::standalone(&log, worker("JsonConverter", false))?;
        connect.add_plugin(config.clone(), Plugin::Source(Box::new(Counter)))?;
        wait_for("ten numbers", || {
            values(&log, "numbers-copy").is_ok_and(|v| v.len() >= 10)
        })?;
        std::thread::sleep(Duration::from_millis(50));
        connect.close();
        let got = values(&log, "numbers-copy")?;
        let want: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(got, want, "each number once, across restarts");
        log.close()?;
    }
    Ok(())
}

#[test]
fn the_file_sink_keeps_its_offsets_beside_its_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    p.send(ProducerRecord {
        topic: "in".into(),
        partition: None,
        record: Record::new("v1").key("k").timestamp(1_700_000_000_000),
    })?;
    let output = dir.path().join("out.txt");
    let connect = Connect::standalone(&log, worker("StringConverter", false))?;
    connect.add(sink("snk", &output, "in").with(
        "value.converter",
        "org.apache.kafka.connect.converters.ByteArrayConverter",
    ))?;
    wait_for("the value", || read(&output) == "v1\n")?;
    connect.close();
    let state = std::fs::read_to_string(dir.path().join("out.txt.offsets"))?;
    assert!(state.contains(r#"["in",0,1]"#), "{state}");
    Ok(())
}

#[test]
fn a_source_file_truncated_under_it_fails_the_task_saying_so() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(&dir.path().join("data"))?;
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "one\ntwo\nthree\n")?;
    let connect = Connect::standalone(&log, worker("StringConverter", false))?;
    connect.add(source("src", &input, "t"))?;
    wait_for("three lines", || {
        values(&log, "t").is_ok_and(|v| v.len() == 3)
    })?;
    std::fs::write(&input, "x\n")?;
    let msg = failure(&connect, "src")?;
    assert!(msg.contains("truncated or replaced"), "{msg}");
    assert_eq!(
        values(&log, "t")?,
        ["one", "two", "three"],
        "nothing read twice"
    );
    connect.close();
    Ok(())
}

#[test]
fn a_sink_restarted_while_paused_stays_paused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    p.send(ProducerRecord::new("in", "a"))?;
    let output = dir.path().join("out.txt");
    let connect = Connect::standalone(&log, worker("StringConverter", false))?;
    connect.add(sink("snk", &output, "in"))?;
    wait_for("the first line", || read(&output) == "a\n")?;
    connect.pause("snk")?;
    connect.restart("snk")?;
    p.send(ProducerRecord::new("in", "b"))?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        read(&output),
        "a\n",
        "a paused sink writes nothing, restarted or not"
    );
    connect.resume("snk")?;
    wait_for("the second line", || read(&output) == "a\nb\n")?;
    connect.close();
    Ok(())
}

#[test]
fn a_pattern_sink_takes_up_new_topics_and_a_rebalance_writes_nothing_twice() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in-a", 1)?;
    let p = log.producer(ProducerConfig::default())?;
    for i in 0..50 {
        p.send(ProducerRecord::new("in-a", format!("a{i}")))?;
    }
    let output = dir.path().join("out.txt");
    // A long flush interval: the group's offsets stay behind what the file holds, so the
    // rebalance below rewinds the consumer over records already written.
    let connect = Connect::standalone(
        &log,
        worker("StringConverter", false).with("offset.flush.interval.ms", "600000"),
    )?;
    connect.add(
        Properties::new()
            .with("name", "snk")
            .with("connector.class", "FileStreamSink")
            .with("file", output.to_string_lossy())
            .with("topics.regex", "in-.*"),
    )?;
    wait_for("in-a's lines", || read(&output).lines().count() == 50)?;
    log.create_topic("in-b", 1)?;
    for i in 0..50 {
        p.send(ProducerRecord::new("in-b", format!("b{i}")))?;
        p.send(ProducerRecord::new("in-a", format!("a{}", 50 + i)))?;
    }
    wait_for("both topics' lines", || {
        read(&output).lines().count() >= 150
    })?;
    std::thread::sleep(Duration::from_millis(300));
    connect.close();
    let text = read(&output);
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 150, "each record once");
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), 150, "no record twice");
    Ok(())
}
