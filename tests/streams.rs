//! `topiclog::streams`: the DSL's operators (against a model), the test driver, stores
//! restored from their changelogs, two clients sharing the tasks, bad input, start errors,
//! and WordCount against a recount.
#![cfg(feature = "streams")]
#![allow(clippy::indexing_slicing, clippy::cast_precision_loss)]

mod common;
#[path = "../examples/wordcount/topology.rs"]
mod wordcount;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestResult, wait_for};
use proptest::prelude::*;
use topiclog::streams::{
    Consumed, DeserializationHandler, Grouped, Materialized, Produced, Repartitioned, Serdes,
    Streams, StreamsBuilder, StreamsConfig, StreamsState, ThreadErrorResponse, TopologyTestDriver,
};
use topiclog::{Error, IsolationLevel, Log, ProducerConfig, ProducerRecord};

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn stateless_operators_in_the_test_driver() -> TestResult {
    let builder = StreamsBuilder::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peeked = Arc::clone(&seen);
    let words = builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .filter_not(|_, v| v.is_empty())
        .peek(move |k, _| peeked.lock().expect("lock").push(k.clone()))
        .flat_map(|k: String, v: String| {
            v.split(',')
                .map(|w| (format!("{k}:{w}"), w.len() as i64))
                .collect::<Vec<_>>()
        });
    let other = builder
        .stream("in2", Consumed::with(Serdes::string(), Serdes::i64()))
        .map(|k, v| (k.to_uppercase(), v * 10));
    let merged = words.merge(&other).select_key(|k, _| k.to_lowercase());
    let branches = merged
        .named("sizes-")
        .split()
        .branch("big", |_, n| *n >= 10)
        .default_branch("small");
    for (name, stream) in branches {
        stream.to(&name, Produced::with(Serdes::string(), Serdes::i64()));
    }
    let topology = builder.build()?;
    let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("ops"))?;
    let (st, i) = (Serdes::string(), Serdes::i64());
    driver.pipe_input("in", &st, &st, &s("a"), &s("xy,zzz"), 1)?;
    driver.pipe_input("in", &st, &st, &s("b"), &s(""), 2)?;
    driver.pipe_input("in2", &st, &i, &s("Q"), &5, 3)?;
    driver.pipe_input("in2", &st, &i, &s("R"), &0, 4)?;
    assert_eq!(
        driver.read_output("sizes-small", &st, &i)?,
        [(s("a:xy"), 2), (s("a:zzz"), 3), (s("r"), 0)]
    );
    assert_eq!(driver.read_output("sizes-big", &st, &i)?, [(s("q"), 50)]);
    assert_eq!(*seen.lock().expect("lock"), [s("a")]);
    Ok(())
}

#[test]
fn a_sink_can_choose_its_topic_per_record_and_foreach_ends_a_stream() -> TestResult {
    let builder = StreamsBuilder::new();
    let all = Arc::new(Mutex::new(0));
    let count = Arc::clone(&all);
    let stream = builder.stream("in", Consumed::with(Serdes::string(), Serdes::string()));
    stream
        .clone()
        .foreach(move |_, _| *count.lock().expect("lock") += 1);
    stream.to_topic_of(|k, _| format!("user-{k}"), Produced::default());
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("route"))?;
    let st = Serdes::string();
    driver.pipe_input("in", &st, &st, &s("1"), &s("x"), 0)?;
    driver.pipe_input("in", &st, &st, &s("2"), &s("y"), 0)?;
    assert_eq!(driver.read_output("user-1", &st, &st)?, [(s("1"), s("x"))]);
    assert_eq!(driver.read_output("user-2", &st, &st)?, [(s("2"), s("y"))]);
    assert_eq!(*all.lock().expect("lock"), 2);
    Ok(())
}

#[test]
fn tables_filter_map_and_join_and_the_serdes_are_kafkas() -> TestResult {
    let builder = StreamsBuilder::new();
    let prices = builder.table(
        "prices",
        Consumed::with(Serdes::string(), Serdes::i64()),
        Materialized::named("prices-store"),
    );
    let dear = prices
        .clone()
        .filter_materialized(|_, p| *p >= 100, Materialized::named("dear"))
        .map_values(|p| p as f64 / 100.0);
    dear.to_stream_with_tombstones().to(
        "dear-changes",
        Produced::with(Serdes::string(), Serdes::nullable(Serdes::f64())),
    );
    builder
        .stream("orders", Consumed::with(Serdes::string(), Serdes::i32()))
        .join(&prices, |qty: &i32, price: &i64| i64::from(*qty) * price)
        .to("totals", Produced::with(Serdes::string(), Serdes::i64()));
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("tables"))?;
    let (st, i, i32s) = (Serdes::string(), Serdes::i64(), Serdes::i32());
    driver.pipe_input("prices", &st, &i, &s("apple"), &120, 0)?;
    driver.pipe_input("orders", &st, &i32s, &s("apple"), &3, 1)?;
    driver.pipe_input("orders", &st, &i32s, &s("pear"), &1, 2)?;
    driver.pipe_input("prices", &st, &i, &s("apple"), &90, 3)?;
    // A null value deletes a row.
    driver.pipe_raw("prices", Some("pear".into()), None, 4)?;
    assert_eq!(driver.read_output("totals", &st, &i)?, [(s("apple"), 360)]);
    let changes = driver.read_output("dear-changes", &st, &Serdes::nullable(Serdes::f64()))?;
    assert_eq!(
        changes,
        [
            (s("apple"), Some(1.2)),
            (s("apple"), None),
            (s("pear"), None)
        ]
    );
    assert_eq!(driver.store_get::<String, i64>("dear", &s("apple"))?, None);
    assert_eq!(
        driver.store_get::<String, i64>("prices-store", &s("apple"))?,
        Some(90)
    );
    // Kafka's LongSerializer: 8 bytes big-endian.
    driver.pipe_input("orders", &st, &i32s, &s("apple"), &1, 5)?;
    let raw = driver.read_raw_output("totals");
    assert_eq!(raw[0].1.as_deref(), Some(&90_i64.to_be_bytes()[..]));
    Ok(())
}

#[test]
fn reduce_aggregate_and_an_explicit_repartition() -> TestResult {
    let builder = StreamsBuilder::new();
    let events = builder
        .stream("events", Consumed::with(Serdes::string(), Serdes::i64()))
        .repartition(Repartitioned::default().named("by-user"));
    events
        .clone()
        .group_by_key(Grouped::default())
        .reduce(std::cmp::Ord::max, Materialized::named("max"))
        .to_stream()
        .to("max-out", Produced::default());
    events
        .group_by(
            |_, v| *v % 2 == 0,
            Grouped::with(bool_serde(), Serdes::i64()),
        )
        .aggregate(
            Vec::new,
            |_, v, mut all: Vec<i64>| {
                all.push(v);
                all
            },
            Materialized::with(bool_serde(), list_serde()).with_caching_disabled(),
        )
        .to_stream()
        .to("by-parity", Produced::default());
    let topology = builder.build()?;
    let description = topology.describe();
    assert!(description.contains("by-user-repartition"), "{description}");
    let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("agg"))?;
    let (st, i) = (Serdes::string(), Serdes::i64());
    for (k, v) in [("a", 3), ("a", 8), ("b", 2), ("a", 5)] {
        driver.pipe_input("events", &st, &i, &s(k), &v, 0)?;
    }
    assert_eq!(driver.store_get::<String, i64>("max", &s("a"))?, Some(8));
    let parity = driver.read_output("by-parity", &bool_serde(), &list_serde())?;
    assert_eq!(parity.last(), Some(&(false, vec![3, 5])));
    assert_eq!(parity.len(), 4, "caching disabled: every update");
    Ok(())
}

/// A `bool` as one byte.
fn bool_serde() -> topiclog::streams::SharedSerde<bool> {
    struct B;
    impl topiclog::streams::Serde<bool> for B {
        fn serialize(&self, _: &str, v: &bool) -> topiclog::Result<Option<bytes::Bytes>> {
            Ok(Some(bytes::Bytes::from(vec![u8::from(*v)])))
        }
        fn deserialize(&self, _: &str, d: Option<&[u8]>) -> topiclog::Result<bool> {
            Ok(d == Some(&[1][..]))
        }
    }
    Arc::new(B)
}

/// A list of `i64`s, 8 bytes each.
fn list_serde() -> topiclog::streams::SharedSerde<Vec<i64>> {
    struct L;
    impl topiclog::streams::Serde<Vec<i64>> for L {
        fn serialize(&self, _: &str, v: &Vec<i64>) -> topiclog::Result<Option<bytes::Bytes>> {
            Ok(Some(v.iter().flat_map(|x| x.to_be_bytes()).collect()))
        }
        fn deserialize(&self, _: &str, d: Option<&[u8]>) -> topiclog::Result<Vec<i64>> {
            Ok(d.unwrap_or_default()
                .chunks(8)
                .filter_map(|c| Some(i64::from_be_bytes(c.try_into().ok()?)))
                .collect())
        }
    }
    Arc::new(L)
}

#[test]
fn invalid_topologies_are_errors_when_built() {
    // A grouping after a key change needs serdes for its repartition topic.
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .map_values(|v: String| v.len() as i64)
        .group_by(|_, n| *n, Grouped::default())
        .count(Materialized::default());
    let e = builder.build().expect_err("no serdes");
    assert!(matches!(e, Error::Streams { .. }), "{e}");
    assert!(e.to_string().contains("serde"), "{e}");
    // Nothing at all.
    assert!(StreamsBuilder::new().build().is_err());
    // Two processors of one name.
    let builder = StreamsBuilder::new();
    let a = builder.stream("in", Consumed::with(Serdes::string(), Serdes::string()));
    let _ = a.clone().named("x").filter(|_, _| true);
    let _ = a.named("x").filter(|_, _| true);
    assert!(builder.build().is_err());
}

/// The model: a filter, a value map and a count per key, as a plain loop does them.
fn model(records: &[(u8, String)]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for (k, v) in records {
        if !v.len().is_multiple_of(3) {
            *counts.entry(format!("k{k}-{}", v.len() % 2)).or_insert(0) += 1;
        }
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn operators_agree_with_a_model(
        records in proptest::collection::vec((0u8..6, "[a-d]{0,7}"), 0..60),
        caching in any::<bool>(),
    ) {
        let builder = StreamsBuilder::new();
        builder
            .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
            .filter(|_, v: &String| !v.len().is_multiple_of(3))
            .map(|k: String, v: String| (format!("{k}-{}", v.len() % 2), v))
            .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
            .count(Materialized::named("counts"))
            .to_stream()
            .to("out", Produced::default());
        let config = StreamsConfig::new("model").cache_max_bytes(if caching { 1 << 20 } else { 0 });
        let mut driver = TopologyTestDriver::new(&builder.build().expect("topology"), config)
            .expect("driver");
        let st = Serdes::string();
        for (k, v) in &records {
            driver.pipe_input("in", &st, &st, &format!("k{k}"), v, 0).expect("pipe");
        }
        let want = model(&records);
        let mut got: BTreeMap<String, i64> = BTreeMap::new();
        for (k, n) in driver.read_output("out", &st, &Serdes::i64()).expect("out") {
            // Each key's updates arrive in order: the last is its count.
            got.insert(k, n);
        }
        prop_assert_eq!(&got, &want);
        let stored: BTreeMap<String, i64> = driver
            .store_all::<String, i64>("counts")
            .expect("store")
            .into_iter()
            .collect();
        prop_assert_eq!(stored, want);
    }
}

// ---- Running on a log ----

fn wc_topology(input: &str, output: &str) -> TestResult<topiclog::streams::Topology> {
    Ok(wordcount::wordcount(input, output)?)
}

/// The latest count of each word written to `topic` (committed records).
fn latest_counts(log: &Log, topic: &str, partitions: i32) -> TestResult<HashMap<String, i64>> {
    let mut out = HashMap::new();
    for p in 0..partitions {
        let h = log
            .partition(topic, p)?
            .with_isolation_level(IsolationLevel::ReadCommitted);
        for r in h.records(0, 1 << 30)? {
            let k = String::from_utf8(r.key.as_deref().unwrap_or_default().to_vec())?;
            let v: [u8; 8] = r.value.as_deref().unwrap_or_default().try_into()?;
            out.insert(k, i64::from_be_bytes(v));
        }
    }
    Ok(out)
}

fn recount(lines: &[String]) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for l in lines {
        for w in l.to_lowercase().split(' ').filter(|w| !w.is_empty()) {
            *counts.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

fn corpus(n: usize, seed: u64) -> Vec<String> {
    let words = [
        "kafka",
        "streams",
        "log",
        "topic",
        "Partition",
        "offset",
        "commit",
        "record",
        "batch",
        "segment",
        "index",
        "group",
        "task",
        "store",
        "changelog",
    ];
    let mut x = seed;
    (0..n)
        .map(|_| {
            let len = 1 + (x % 7) as usize;
            (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    words[(x >> 33) as usize % words.len()]
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn send_lines(log: &Log, topic: &str, lines: &[String]) -> TestResult {
    let p = log.producer(ProducerConfig::default())?;
    for l in lines {
        p.send_async(ProducerRecord::new(topic, l.clone()))?;
    }
    p.flush()?;
    Ok(())
}

#[test]
fn wordcount_on_a_log_equals_a_recount_and_restores_its_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("lines", 3)?;
    log.create_topic("words", 3)?;
    let first = corpus(600, 7);
    send_lines(&log, "lines", &first)?;
    let config = StreamsConfig::new("wc")
        .commit_interval(Duration::from_millis(50))
        .num_stream_threads(2);
    let mut streams = Streams::new(&log, wc_topology("lines", "words")?, config.clone());
    let states = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&states);
    streams.set_state_listener(move |_, new| seen.lock().expect("lock").push(new));
    streams.start()?;
    wait_for("running", || streams.state() == StreamsState::Running)?;
    let want = recount(&first);
    wait_for("the first counts", || {
        latest_counts(&log, "words", 3).is_ok_and(|c| c == want)
    })
    .map_err(|e| {
        format!(
            "{e}: state {:?}, failure {:?}, counts {:?}",
            streams.state(),
            streams.failure(),
            latest_counts(&log, "words", 3).map(|c| c.len())
        )
    })?;
    streams.close()?;
    let states = states.lock().expect("lock").clone();
    assert!(states.contains(&StreamsState::Running), "{states:?}");
    assert_eq!(states.last(), Some(&StreamsState::NotRunning));
    // Internal topics are named as Kafka names them.
    let topics = log.topics();
    assert!(topics.contains(&s("wc-counts-changelog")), "{topics:?}");
    assert!(topics.contains(&s("wc-counts-repartition")), "{topics:?}");
    // A new client restores the counts from the changelog and counts on.
    let second = corpus(300, 99);
    send_lines(&log, "lines", &second)?;
    let mut streams = Streams::new(&log, wc_topology("lines", "words")?, config);
    streams.start()?;
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let want = recount(&all);
    wait_for("the counts of both rounds", || {
        latest_counts(&log, "words", 3).is_ok_and(|c| c == want)
    })?;
    streams.close()?;
    Ok(())
}

#[test]
fn two_clients_share_the_tasks_and_hand_them_over() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("lines", 4)?;
    log.create_topic("words", 4)?;
    let config = StreamsConfig::new("pair").commit_interval(Duration::from_millis(50));
    let mut a = Streams::new(&log, wc_topology("lines", "words")?, config.clone());
    a.start()?;
    let first = corpus(400, 3);
    send_lines(&log, "lines", &first)?;
    wait_for("a's counts", || {
        latest_counts(&log, "words", 4).is_ok_and(|c| c == recount(&first))
    })?;
    let mut b = Streams::new(&log, wc_topology("lines", "words")?, config);
    b.start()?;
    wait_for("both running", || {
        a.state() == StreamsState::Running && b.state() == StreamsState::Running
    })?;
    let second = corpus(400, 4);
    send_lines(&log, "lines", &second)?;
    let both: Vec<String> = first.iter().chain(&second).cloned().collect();
    wait_for("the counts with two clients", || {
        latest_counts(&log, "words", 4).is_ok_and(|c| c == recount(&both))
    })?;
    // a leaves: b takes its tasks over, restoring their stores; nothing is counted twice.
    a.close()?;
    let third = corpus(200, 5);
    send_lines(&log, "lines", &third)?;
    let all: Vec<String> = both.iter().chain(&third).cloned().collect();
    wait_for("the counts after the hand-over", || {
        latest_counts(&log, "words", 4).is_ok_and(|c| c == recount(&all))
    })?;
    b.close()?;
    Ok(())
}

#[test]
fn start_refuses_missing_topics_and_inputs_that_are_not_co_partitioned() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    let mut streams = Streams::new(&log, wc_topology("absent", "out")?, StreamsConfig::new("m"));
    let e = streams.start().expect_err("missing topic");
    assert!(
        e.to_string().contains("missing source topics: absent"),
        "{e}"
    );
    log.create_topic("users", 2)?;
    log.create_topic("clicks", 3)?;
    let builder = StreamsBuilder::new();
    let users = builder.table(
        "users",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::default(),
    );
    builder
        .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
        .join(&users, |c: &String, u: &String| format!("{u}{c}"))
        .to("out", Produced::with(Serdes::string(), Serdes::string()));
    let mut streams = Streams::new(&log, builder.build()?, StreamsConfig::new("cp"));
    let e = streams.start().expect_err("not co-partitioned");
    assert!(e.to_string().contains("co-partitioned"), "{e}");
    assert_eq!(streams.state(), StreamsState::Created);
    Ok(())
}

#[test]
fn records_that_do_not_deserialize_fail_the_client_or_go_to_the_dead_letter_topic() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("nums", 1)?;
    log.create_topic("doubled", 1)?;
    let topology = || -> TestResult<topiclog::streams::Topology> {
        let builder = StreamsBuilder::new();
        builder
            .stream("nums", Consumed::with(Serdes::unit(), Serdes::i64()))
            .map_values(|v| v * 2)
            .to("doubled", Produced::default());
        Ok(builder.build()?)
    };
    let p = log.producer(ProducerConfig::default())?;
    p.send(ProducerRecord::new("nums", 21_i64.to_be_bytes().to_vec()))?;
    p.send(ProducerRecord::new("nums", "not eight bytes"))?;
    p.send(ProducerRecord::new("nums", 5_i64.to_be_bytes().to_vec()))?;
    // LogAndFail (the default): the client shuts down with the error.
    let mut streams = Streams::new(
        &log,
        topology()?,
        StreamsConfig::new("fail").commit_interval(Duration::from_millis(20)),
    );
    streams.start()?;
    wait_for("the failure", || {
        streams.state() == StreamsState::PendingError || streams.state() == StreamsState::Error
    })?;
    let e = streams.close().expect_err("failed");
    assert!(e.to_string().contains("offset 1"), "{e}");
    assert_eq!(streams.state(), StreamsState::Error);
    // LogAndContinue with a dead-letter topic.
    let mut streams = Streams::new(
        &log,
        topology()?,
        StreamsConfig::new("skip")
            .commit_interval(Duration::from_millis(20))
            .deserialization_handler(DeserializationHandler::LogAndContinue)
            .dead_letter_topic("nums-dlq"),
    );
    streams.start()?;
    wait_for("the doubled values and the dead letter", || {
        log.partition("doubled", 0)
            .is_ok_and(|h| common::record_count(&h) >= 2)
            && log
                .partition("nums-dlq", 0)
                .is_ok_and(|h| common::record_count(&h) == 1)
    })?;
    streams.close()?;
    let out: Vec<i64> = log
        .partition("doubled", 0)?
        .records(0, 1 << 20)?
        .iter()
        .filter_map(|r| Some(i64::from_be_bytes(r.value.as_deref()?.try_into().ok()?)))
        .collect();
    // The first client failed before its outputs were written and committed nothing; the
    // second did all it could.
    assert_eq!(out, [42, 10]);
    let dead = log.partition("nums-dlq", 0)?.records(0, 1 << 20)?;
    assert_eq!(dead[0].value.as_deref(), Some(&b"not eight bytes"[..]));
    assert!(
        dead[0]
            .headers
            .iter()
            .any(|h| h.key == "__streams.errors.offset" && h.value.as_deref() == Some(&b"1"[..]))
    );
    Ok(())
}

#[test]
fn a_thread_that_panics_is_replaced_and_the_new_one_processes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in", 1)?;
    log.create_topic("out", 1)?;
    let builder = StreamsBuilder::new();
    let failures = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&failures);
    let once = Arc::new(std::sync::atomic::AtomicBool::new(true));
    builder
        .stream("in", Consumed::with(Serdes::unit(), Serdes::string()))
        .map_values(move |v: String| {
            assert!(
                !once.swap(false, std::sync::atomic::Ordering::SeqCst),
                "a processor that fails once"
            );
            v.to_uppercase()
        })
        .to("out", Produced::default());
    let mut streams = Streams::new(
        &log,
        builder.build()?,
        StreamsConfig::new("replace").commit_interval(Duration::from_millis(20)),
    );
    streams.set_uncaught_exception_handler(move |e| {
        assert!(e.to_string().contains("panicked"), "{e}");
        *counted.lock().expect("lock") += 1;
        ThreadErrorResponse::ReplaceThread
    });
    streams.start()?;
    log.producer(ProducerConfig::default())?
        .send(ProducerRecord::new("in", "again"))?;
    wait_for("the output of the new thread", || {
        log.partition("out", 0)
            .is_ok_and(|h| common::record_count(&h) == 1)
    })?;
    assert_eq!(*failures.lock().expect("lock"), 1);
    assert_eq!(
        log.partition("out", 0)?.records(0, 1 << 20)?[0]
            .value
            .as_deref(),
        Some(&b"AGAIN"[..])
    );
    streams.close()?;
    Ok(())
}

#[test]
fn a_failure_commits_nothing_whose_outputs_were_not_written() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in", 2)?;
    log.create_topic("out", 1)?;
    let topology = || -> TestResult<topiclog::streams::Topology> {
        let builder = StreamsBuilder::new();
        builder
            .stream("in", Consumed::with(Serdes::unit(), Serdes::string()))
            .to("out", Produced::default());
        Ok(builder.build()?)
    };
    let p = log.producer(ProducerConfig::default())?;
    for i in 0..50 {
        p.send(ProducerRecord::new("in", format!("ok {i}")).partition(0))?;
    }
    p.send(ProducerRecord::new("in", vec![0xff_u8]).partition(1))?;
    // One poll holds both partitions; partition 1's bad record fails the thread.
    let mut streams = Streams::new(&log, topology()?, StreamsConfig::new("tear"));
    streams.start()?;
    wait_for("the failure", || {
        matches!(
            streams.state(),
            StreamsState::PendingError | StreamsState::Error
        )
    })?;
    assert!(streams.close().is_err());
    // Nothing of partition 0 was committed without its output: a second client that skips
    // the bad record writes every good one.
    let mut streams = Streams::new(
        &log,
        topology()?,
        StreamsConfig::new("tear")
            .commit_interval(Duration::from_millis(20))
            .deserialization_handler(DeserializationHandler::LogAndContinue),
    );
    streams.start()?;
    wait_for("every good record", || {
        log.partition("out", 0)
            .is_ok_and(|h| common::record_count(&h) >= 50)
    })?;
    streams.close()?;
    Ok(())
}

#[test]
fn a_join_after_a_key_change_repartitions_to_the_tables_partitions() -> TestResult {
    let topology = || -> TestResult<topiclog::streams::Topology> {
        let builder = StreamsBuilder::new();
        let names = builder.table(
            "names",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::named("names"),
        );
        builder
            .stream("visits", Consumed::with(Serdes::unit(), Serdes::string()))
            .select_key(|(), user: &String| user.clone())
            .join(&names, |user: &String, name: &String| {
                format!("{name} ({user})")
            })
            .to(
                "named-visits",
                Produced::with(Serdes::string(), Serdes::string()),
            );
        Ok(builder.build()?)
    };
    let mut driver = TopologyTestDriver::new(&topology()?, StreamsConfig::new("kj"))?;
    let (u, st) = (Serdes::unit(), Serdes::string());
    driver.pipe_input("names", &st, &st, &s("u7"), &s("Ann"), 0)?;
    driver.pipe_input("visits", &u, &st, &(), &s("u7"), 1)?;
    assert_eq!(
        driver.read_output("named-visits", &st, &st)?,
        [(s("u7"), s("Ann (u7)"))]
    );
    // On a log: the repartition topic takes the table's partition count.
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("names", 3)?;
    log.create_topic("visits", 2)?;
    log.create_topic("named-visits", 1)?;
    let mut streams = Streams::new(&log, topology()?, StreamsConfig::new("kj"));
    streams.start()?;
    let repartition = log
        .topics()
        .into_iter()
        .find(|t| t.ends_with("-left-repartition"))
        .ok_or("no repartition topic")?;
    assert_eq!(log.partition_count(&repartition)?, 3);
    streams.close()?;
    // A topic read by two sources is refused.
    let builder = StreamsBuilder::new();
    builder
        .stream("a", Consumed::with(Serdes::unit(), Serdes::string()))
        .to("b", Produced::default());
    builder
        .stream("a", Consumed::with(Serdes::unit(), Serdes::string()))
        .to("c", Produced::default());
    let e = builder.build().expect_err("read twice");
    assert!(e.to_string().contains("read by two sources"), "{e}");
    Ok(())
}

#[test]
fn a_failing_thread_can_be_replaced() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("in", 1)?;
    log.create_topic("out", 1)?;
    let builder = StreamsBuilder::new();
    let failures = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&failures);
    builder
        .stream("in", Consumed::with(Serdes::unit(), Serdes::string()))
        .to("out", Produced::default());
    let mut streams = Streams::new(
        &log,
        builder.build()?,
        StreamsConfig::new("replace").commit_interval(Duration::from_millis(20)),
    );
    streams.set_uncaught_exception_handler(move |_| {
        *counted.lock().expect("lock") += 1;
        ThreadErrorResponse::ReplaceThread
    });
    streams.start()?;
    // A value that is not UTF-8 fails the thread; the new thread fails on it too, and so on:
    // the handler sees each failure while the client keeps running.
    log.producer(ProducerConfig::default())?
        .send(ProducerRecord::new("in", vec![0xff_u8]))?;
    wait_for("two failures", || *failures.lock().expect("lock") >= 2)?;
    assert!(!matches!(
        streams.state(),
        StreamsState::Error | StreamsState::PendingError
    ));
    streams.close()?;
    Ok(())
}

/// A stream–table join on a log reads its two partitions in timestamp order: each click
/// joins the name its user had at the click's time, although every record was written
/// before the application started (the consumer hands them over a topic at a time).
#[test]
fn a_join_reads_its_table_and_stream_in_timestamp_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    // "clicks" sorts before "names": a poll returns the clicks first.
    log.create_topic("clicks", 1)?;
    log.create_topic("names", 1)?;
    log.create_topic("named-clicks", 1)?;
    let producer = log.producer(ProducerConfig::default())?;
    let n = 300_i64;
    for i in 0..n {
        // user i's name changes at 10i (to "a{i}") and 10i + 5 (to "b{i}"); clicks at
        // 10i + 2 and 10i + 7.
        for (at, name) in [(10 * i, format!("a{i}")), (10 * i + 5, format!("b{i}"))] {
            let r = ProducerRecord::new("names", name).key(format!("u{i}"));
            producer.send(r.timestamp(at))?;
        }
        for at in [10 * i + 2, 10 * i + 7] {
            let r = ProducerRecord::new("clicks", format!("c{at}")).key(format!("u{i}"));
            producer.send(r.timestamp(at))?;
        }
    }
    let topology = || -> TestResult<topiclog::streams::Topology> {
        let builder = StreamsBuilder::new();
        let names = builder.table(
            "names",
            Consumed::with(Serdes::string(), Serdes::string()),
            Materialized::named("names"),
        );
        builder
            .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
            .left_join(&names, |click: &String, name: Option<&String>| {
                format!("{click}:{}", name.map_or("-", String::as_str))
            })
            .to(
                "named-clicks",
                Produced::with(Serdes::string(), Serdes::string()),
            );
        Ok(builder.build()?)
    };
    // With Kafka's 1000 records held per partition, and with 7: the partition ahead is
    // paused and resumed again and again.
    let mut runs = Vec::new();
    for (app, held) in [("order", "1000"), ("order-small", "7")] {
        let config = StreamsConfig::new(app).set("buffered.records.per.partition", held)?;
        let out = log.partition("named-clicks", 0)?;
        let start = common::record_count(&out);
        let mut streams = Streams::new(&log, topology()?, config);
        streams.start()?;
        wait_for("every click joined", || {
            common::record_count(&out) >= start + 2 * n
        })?;
        streams.close()?;
        let joined: Vec<String> = out
            .records(start, 1 << 20)?
            .into_iter()
            .filter_map(|r| String::from_utf8(r.value?.to_vec()).ok())
            .collect();
        runs.push(joined);
    }
    let expected: Vec<String> = (0..n)
        .flat_map(|i| {
            [
                format!("c{}:a{i}", 10 * i + 2),
                format!("c{}:b{i}", 10 * i + 7),
            ]
        })
        .collect();
    for joined in runs {
        assert_eq!(joined, expected);
    }
    Ok(())
}

/// Repartition topics are purged below the offsets committed for them (Kafka's
/// `repartition.purge.interval.ms`), and a client started again counts on from there.
#[test]
fn repartition_topics_are_purged_below_their_committed_offsets() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("lines", 1)?;
    log.create_topic("words", 1)?;
    let first = corpus(400, 3);
    send_lines(&log, "lines", &first)?;
    let config = StreamsConfig::new("purge")
        .commit_interval(Duration::from_millis(20))
        .repartition_purge_interval(Duration::ZERO);
    let mut streams = Streams::new(&log, wc_topology("lines", "words")?, config.clone());
    streams.start()?;
    let want = recount(&first);
    wait_for("the counts", || {
        latest_counts(&log, "words", 1).is_ok_and(|c| c == want)
    })?;
    let repartition = log.partition("purge-counts-repartition", 0)?;
    let end = repartition.log_end_offset();
    assert!(end > 0);
    // Purged up to the last record read (under exactly-once, the commit marker after it
    // stays: a consumer's committed offset is past the records, not the marker).
    wait_for("the repartition topic purged", || {
        let start = repartition.log_start_offset();
        start > 0
            && repartition
                .records(start, 1 << 20)
                .is_ok_and(|r| r.is_empty())
    })?;
    streams.close()?;
    let second = corpus(100, 4);
    send_lines(&log, "lines", &second)?;
    let mut streams = Streams::new(&log, wc_topology("lines", "words")?, config);
    streams.start()?;
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let want = recount(&all);
    wait_for("the counts of both rounds", || {
        latest_counts(&log, "words", 1).is_ok_and(|c| c == want)
    })?;
    streams.close()?;
    Ok(())
}
