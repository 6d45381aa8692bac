//! `topiclog::streams` windows and table joins: tumbling and hopping windowed aggregations
//! with out-of-order records and grace against a model, `suppress` (one final result per
//! window; time limits; full buffers), Kafka's windowed key format, timestamp extractors,
//! window stores on a log (their changelogs' settings, a restart), and table–table joins
//! (inner, left, outer) against a model.
#![cfg(feature = "streams")]
#![allow(clippy::indexing_slicing)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{TestResult, wait_for};
use proptest::prelude::*;
use topiclog::streams::{
    BufferConfig, Consumed, Grouped, Materialized, Produced, Serdes, Streams, StreamsBuilder,
    StreamsConfig, Suppressed, TimeWindows, TopologyTestDriver, Window, Windowed,
};
use topiclog::{CleanupPolicy, ProducerConfig, ProducerRecord};

/// Counts by (key, window start), and how many records were dropped.
type Counts = (BTreeMap<(String, i64), i64>, u64);

fn s(x: &str) -> String {
    x.to_string()
}

/// Windowed counts as Kafka computes them: stream time is the largest timestamp seen; a
/// record counts in each window holding it unless the window's end plus the grace is at or
/// before the stream time (then it is dropped, once per such window).
fn model(events: &[(u8, i64)], size: i64, advance: i64, grace: i64) -> Counts {
    let mut counts = BTreeMap::new();
    let mut dropped = 0;
    let mut stream_time = i64::MIN;
    for (k, ts) in events {
        stream_time = stream_time.max(*ts);
        let mut start = ((ts - size + advance).max(0) / advance) * advance;
        while start <= *ts {
            if start + size + grace <= stream_time {
                dropped += 1;
            } else {
                *counts.entry((format!("k{k}"), start)).or_insert(0) += 1;
            }
            start += advance;
        }
    }
    (counts, dropped)
}

fn windowed_count(windows: TimeWindows) -> TestResult<topiclog::streams::Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by(windows)
        .count(Materialized::named("counts"))
        .to_stream()
        .to("counts-out", Produced::default());
    Ok(builder.build()?)
}

fn run_driver(windows: TimeWindows, events: &[(u8, i64)]) -> TestResult<Counts> {
    let mut driver = TopologyTestDriver::new(&windowed_count(windows)?, StreamsConfig::new("w"))?;
    let st = Serdes::string();
    for (k, ts) in events {
        driver.pipe_input("events", &st, &st, &format!("k{k}"), &s("x"), *ts)?;
    }
    // Every update goes out (the driver commits after each record): the latest per window
    // is its count. The store keeps only the windows within its retention.
    let ks = Serdes::time_windowed(Serdes::string(), windows.size());
    let mut got = BTreeMap::new();
    for (w, n) in driver.read_output("counts-out", &ks, &Serdes::i64())? {
        got.insert((w.key, w.window.start), n);
    }
    let retained = driver.store_all::<Windowed<String>, i64>("counts")?;
    for (w, n) in retained {
        assert_eq!(got.get(&(w.key.clone(), w.window.start)), Some(&n), "{w:?}");
    }
    Ok((got, driver.dropped_records()))
}

/// Events with times that mostly rise but jump back by up to `jitter`.
fn events(jitter: i64) -> impl Strategy<Value = Vec<(u8, i64)>> {
    prop::collection::vec((0u8..4, 0i64..1000, any::<bool>()), 1..150).prop_map(move |v| {
        let mut t = 0i64;
        v.into_iter()
            .map(|(k, step, back)| {
                t += step % 60;
                let ts = if back {
                    (t - step % jitter.max(1)).max(0)
                } else {
                    t
                };
                (k, ts)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tumbling_windows_with_grace_agree_with_the_model(ev in events(300)) {
        let windows = TimeWindows::of_size_and_grace(
            Duration::from_millis(100),
            Duration::from_millis(50),
        );
        let (got, dropped) = run_driver(windows, &ev).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (want, want_dropped) = model(&ev, 100, 100, 50);
        prop_assert_eq!(got, want);
        prop_assert_eq!(dropped, want_dropped);
    }

    #[test]
    fn hopping_windows_agree_with_the_model(ev in events(200)) {
        let windows = TimeWindows::of_size_and_grace(
            Duration::from_millis(100),
            Duration::from_millis(20),
        )
        .advance_by(Duration::from_millis(30));
        let (got, dropped) = run_driver(windows, &ev).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (want, want_dropped) = model(&ev, 100, 30, 20);
        prop_assert_eq!(got, want);
        prop_assert_eq!(dropped, want_dropped);
    }

    /// `suppress(until_window_closes)` forwards each window once, with its final count,
    /// and only windows that closed.
    #[test]
    fn suppression_emits_one_final_result_per_closed_window(ev in events(150)) {
        let (size, grace) = (100, 40);
        let builder = StreamsBuilder::new();
        builder
            .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Grouped::default())
            .windowed_by(TimeWindows::of_size_and_grace(
                Duration::from_millis(100),
                Duration::from_millis(40),
            ))
            .count(Materialized::named("counts"))
            .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
            .to_stream()
            .to("finals", Produced::default());
        let topology = builder.build().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("w"))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let st = Serdes::string();
        for (k, ts) in &ev {
            driver
                .pipe_input("events", &st, &st, &format!("k{k}"), &s("x"), *ts)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let ks = Serdes::time_windowed(Serdes::string(), Duration::from_millis(100));
        let finals = driver
            .read_output("finals", &ks, &Serdes::i64())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (want, _) = model(&ev, size, size, grace);
        let stream_time = ev.iter().map(|(_, t)| *t).max().unwrap_or(0);
        let mut seen = BTreeMap::new();
        for (w, n) in finals {
            let at = (w.key.clone(), w.window.start);
            prop_assert!(seen.insert(at.clone(), n).is_none(), "{:?} emitted twice", at);
            prop_assert!(w.window.end + grace <= stream_time, "{:?} emitted before it closed", at);
            prop_assert_eq!(Some(&n), want.get(&at), "final count of {:?}", at);
        }
        for ((k, start), n) in &want {
            if start + size + grace <= stream_time {
                prop_assert_eq!(seen.get(&(k.clone(), *start)), Some(n), "window {} {} not emitted", k, start);
            }
        }
    }
}

#[test]
fn windowed_keys_go_out_in_kafkas_format_and_extractors_set_event_time() -> TestResult {
    let builder = StreamsBuilder::new();
    builder
        .stream(
            "views",
            Consumed::with(Serdes::string(), Serdes::i64())
                // The event time travels in the value.
                .with_timestamp_extractor(|_, at: &i64, _| *at),
        )
        .group_by_key(Grouped::default())
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_mins(1)))
        .count(Materialized::named("per-minute"))
        .to_stream()
        .to("views-per-minute", Produced::default());
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("v"))?;
    let (st, long) = (Serdes::string(), Serdes::i64());
    driver.pipe_input("views", &st, &long, &s("ann"), &61_000, 0)?;
    driver.pipe_input("views", &st, &long, &s("ann"), &119_999, 0)?;
    driver.pipe_input("views", &st, &long, &s("ann"), &120_000, 0)?;
    // Late: the 60 s window closed at 120 s with no grace.
    driver.pipe_input("views", &st, &long, &s("ann"), &30_000, 0)?;
    assert_eq!(driver.dropped_records(), 1);
    let raw = driver.read_raw_output("views-per-minute");
    let mut key = b"ann".to_vec();
    key.extend_from_slice(&60_000_i64.to_be_bytes());
    let first = raw.first().ok_or("no output")?;
    assert_eq!(first.0.as_deref(), Some(&key[..]));
    assert_eq!(first.1.as_deref(), Some(&1_i64.to_be_bytes()[..]));
    // Output records carry the event time.
    assert_eq!(first.2, 61_000);
    let windows: Vec<(Window, i64)> = raw
        .iter()
        .map(|(k, v, _)| -> TestResult<(Window, i64)> {
            let ks = Serdes::time_windowed(Serdes::string(), Duration::from_mins(1));
            let w = ks.deserialize("t", k.as_deref())?;
            let n = Serdes::i64().deserialize("t", v.as_deref())?;
            Ok((w.window, n))
        })
        .collect::<TestResult<_>>()?;
    let last_of = |start: i64| {
        windows
            .iter()
            .rev()
            .find(|(w, _)| w.start == start)
            .map(|(_, n)| *n)
    };
    assert_eq!(last_of(60_000), Some(2));
    assert_eq!(last_of(120_000), Some(1));
    assert_eq!(windows.first().map(|(w, _)| w.end), Some(120_000));
    Ok(())
}

#[test]
fn time_limits_and_full_buffers() -> TestResult {
    // Until a time limit: a key's latest value 100 ms (stream time) after its first update.
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(Serdes::string(), Serdes::i64()),
            Materialized::named("prices"),
        )
        .suppress(Suppressed::until_time_limit(
            Duration::from_millis(100),
            BufferConfig::unbounded(),
        ))
        .to_stream()
        .to("settled", Produced::default());
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("p"))?;
    let (st, long) = (Serdes::string(), Serdes::i64());
    driver.pipe_input("prices", &st, &long, &s("a"), &1, 0)?;
    driver.pipe_input("prices", &st, &long, &s("a"), &2, 50)?;
    driver.pipe_input("prices", &st, &long, &s("b"), &7, 60)?;
    assert!(driver.read_output("settled", &st, &long)?.is_empty());
    driver.pipe_input("prices", &st, &long, &s("c"), &9, 100)?;
    assert_eq!(driver.read_output("settled", &st, &long)?, [(s("a"), 2)]);
    driver.pipe_input("prices", &st, &long, &s("c"), &10, 170)?;
    assert_eq!(driver.read_output("settled", &st, &long)?, [(s("b"), 7)]);

    // An update that is due at once goes out after the older ones due, in due order.
    driver.pipe_input("prices", &st, &long, &s("d"), &1, 300)?;
    driver.pipe_input("prices", &st, &long, &s("e"), &2, 310)?;
    driver.pipe_input("prices", &st, &long, &s("e"), &3, 450)?;
    assert_eq!(
        driver.read_output("settled", &st, &long)?,
        [(s("c"), 10), (s("d"), 1), (s("e"), 3)]
    );

    // A byte bound counts each key once, however often it is updated.
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(Serdes::string(), Serdes::i64()),
            Materialized::named("prices"),
        )
        .suppress(Suppressed::until_time_limit(
            Duration::from_hours(1),
            BufferConfig::max_bytes(100).shut_down_when_full(),
        ))
        .to_stream()
        .to("settled", Produced::default());
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("p"))?;
    for i in 0..50 {
        driver.pipe_input("prices", &st, &long, &s("a"), &i, i)?;
    }
    assert!(driver.read_output("settled", &st, &long)?.is_empty());

    // A buffer of 2 keys that emits early when full.
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(Serdes::string(), Serdes::i64()),
            Materialized::named("prices"),
        )
        .suppress(Suppressed::until_time_limit(
            Duration::from_hours(1),
            BufferConfig::max_records(2).emit_early_when_full(),
        ))
        .to_stream()
        .to("settled", Produced::default());
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("p"))?;
    for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
        driver.pipe_input("prices", &st, &long, &s(k), &(i as i64), i as i64)?;
    }
    assert_eq!(
        driver.read_output("settled", &st, &long)?,
        [(s("a"), 0), (s("b"), 1)]
    );

    // The same buffer set to shut down when full fails the topology.
    let builder = StreamsBuilder::new();
    builder
        .table(
            "prices",
            Consumed::with(Serdes::string(), Serdes::i64()),
            Materialized::named("prices"),
        )
        .suppress(Suppressed::until_time_limit(
            Duration::from_hours(1),
            BufferConfig::max_records(2).shut_down_when_full(),
        ))
        .to_stream()
        .to("settled", Produced::default());
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("p"))?;
    driver.pipe_input("prices", &st, &long, &s("a"), &0, 0)?;
    driver.pipe_input("prices", &st, &long, &s("b"), &0, 0)?;
    let e = driver
        .pipe_input("prices", &st, &long, &s("c"), &0, 0)
        .expect_err("a full buffer");
    assert!(e.to_string().contains("is full"), "{e}");

    // Final results cannot be emitted early, and need windows upstream.
    let builder = StreamsBuilder::new();
    let _final = builder
        .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(1)))
        .count(Materialized::named("c"))
        .suppress(Suppressed::until_window_closes(BufferConfig::max_records(
            10,
        )));
    let e = builder.build().expect_err("emit early");
    assert!(e.to_string().contains("cannot emit early"), "{e}");
    Ok(())
}

/// On a log: the window store's changelog is `compact,delete`, kept for the store's
/// retention plus a day; a new client restores the windows and counts on; records for
/// closed windows are dropped and counted.
#[test]
fn window_stores_on_a_log_restore_and_their_changelogs_expire() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("events", 2)?;
    log.create_topic("counts-out", 2)?;
    let producer = log.producer(ProducerConfig::default())?;
    let send = |k: &str, ts: i64| -> TestResult {
        producer.send(
            ProducerRecord::new("events", "x")
                .key(k.to_string())
                .timestamp(ts),
        )?;
        Ok(())
    };
    let windows = TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(5));
    for ts in [1_000, 2_000, 12_000] {
        send("a", ts)?;
        send("b", ts)?;
    }
    let config = StreamsConfig::new("win").commit_interval(Duration::from_millis(20));
    let mut streams = Streams::new(&log, windowed_count(windows)?, config.clone());
    streams.start()?;
    let changelog = "win-counts-changelog";
    wait_for("the changelog", || {
        log.partition(changelog, 0)
            .is_ok_and(|p| p.log_end_offset() > 0)
            || log
                .partition(changelog, 1)
                .is_ok_and(|p| p.log_end_offset() > 0)
    })?;
    streams.close()?;
    let cfg = log.describe_topic(changelog)?.config;
    assert_eq!(cfg.cleanup_policy, CleanupPolicy::CompactDelete);
    assert_eq!(cfg.retention_ms, Some(15_000 + 24 * 3600 * 1000));
    // Restart: the windows come back from the changelog; a record inside the grace of
    // window [0, 10 s) counts on from 2, one after it is dropped.
    send("a", 14_000)?;
    send("a", 3_000)?;
    send("a", 30_000)?;
    send("a", 4_000)?;
    let mut streams = Streams::new(&log, windowed_count(windows)?, config.clone());
    streams.start()?;
    let ks = Serdes::time_windowed(Serdes::string(), Duration::from_secs(10));
    let latest = || -> TestResult<BTreeMap<(String, i64), i64>> {
        let mut out = BTreeMap::new();
        for p in 0..2 {
            for r in log.partition("counts-out", p)?.records(0, 1 << 20)? {
                let w = ks.deserialize("counts-out", r.key.as_deref())?;
                let n = Serdes::i64().deserialize("counts-out", r.value.as_deref())?;
                out.insert((w.key, w.window.start), n);
            }
        }
        Ok(out)
    };
    let waited = wait_for("the late count", || {
        latest().is_ok_and(|c| c.get(&(s("a"), 0)) == Some(&3) && c.contains_key(&(s("a"), 30_000)))
    });
    if waited.is_err() {
        return Err(format!(
            "{:?} dropped {} failure {:?}",
            latest()?,
            streams.dropped_records(),
            streams.failure()
        )
        .into());
    }
    wait_for("the dropped record counted", || {
        streams.dropped_records() == 1
    })?;
    streams.close()?;
    let c = latest()?;
    assert_eq!(c.get(&(s("a"), 10_000)), Some(&2));
    assert_eq!(c.get(&(s("b"), 0)), Some(&2));
    // Once more: the stream time comes back with the store, so a record for a window that
    // closed before the restart stays dropped.
    send("a", 5_000)?;
    send("a", 31_000)?;
    let mut streams = Streams::new(&log, windowed_count(windows)?, config);
    streams.start()?;
    wait_for("the next count", || {
        latest().is_ok_and(|c| c.get(&(s("a"), 30_000)) == Some(&2))
    })?;
    wait_for("the dropped record counted", || {
        streams.dropped_records() == 1
    })?;
    streams.close()?;
    assert_eq!(latest()?.get(&(s("a"), 0)), Some(&3));
    Ok(())
}

/// The join of two tables' rows for one key, as each join type defines it.
fn join_model(kind: u8, a: Option<&String>, b: Option<&String>) -> Option<String> {
    let show = |v: Option<&String>| v.map_or("-".to_string(), Clone::clone);
    match (kind, a, b) {
        (0, Some(a), Some(b)) => Some(format!("{a}+{b}")),
        (1, Some(a), b) => Some(format!("{a}+{}", show(b))),
        (2, a, b) if a.is_some() || b.is_some() => Some(format!("{}+{}", show(a), show(b))),
        _ => None,
    }
}

fn table_join_topology(kind: u8) -> TestResult<topiclog::streams::Topology> {
    let builder = StreamsBuilder::new();
    let consumed = || Consumed::with(Serdes::string(), Serdes::string());
    let left = builder.table("left", consumed(), Materialized::named("left"));
    let right = builder.table("right", consumed(), Materialized::named("right"));
    let show = |v: Option<&String>| v.map_or("-".to_string(), Clone::clone);
    let joined = match kind {
        0 => left.join(&right, |a: &String, b: &String| format!("{a}+{b}")),
        1 => left.left_join(&right, move |a: &String, b: Option<&String>| {
            format!("{a}+{}", show(b))
        }),
        _ => left.outer_join(&right, move |a: Option<&String>, b: Option<&String>| {
            format!("{}+{}", show(a), show(b))
        }),
    };
    joined.to_stream_with_tombstones().to(
        "joined",
        Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())),
    );
    Ok(builder.build()?)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Each update of either table forwards the join's row for its key as the model has
    /// it at that moment (a delete when there is none).
    #[test]
    fn table_table_joins_agree_with_a_model(
        kind in 0u8..3,
        updates in prop::collection::vec((any::<bool>(), 0u8..4, prop::option::of(0u8..5)), 1..60),
    ) {
        let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
        let topology = table_join_topology(kind).map_err(|e| fail(&e))?;
        let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("tj"))
            .map_err(|e| fail(&e))?;
        let (mut left, mut right) = (BTreeMap::new(), BTreeMap::new());
        let nullable = Serdes::nullable(Serdes::string());
        for (i, (is_left, k, v)) in updates.iter().enumerate() {
            let key = format!("k{k}");
            let value = v.map(|v| format!("v{v}"));
            let (topic, side) = if *is_left { ("left", &mut left) } else { ("right", &mut right) };
            match &value {
                Some(v) => side.insert(key.clone(), v.clone()),
                None => side.remove(&key),
            };
            driver
                .pipe_raw(
                    topic,
                    Some(bytes::Bytes::from(key.clone())),
                    value.clone().map(bytes::Bytes::from),
                    i64::try_from(i).unwrap_or(0),
                )
                .map_err(|e| fail(&e))?;
            let out = driver
                .read_output("joined", &Serdes::string(), &nullable)
                .map_err(|e| fail(&e))?;
            let want = join_model(kind, left.get(&key), right.get(&key));
            prop_assert_eq!(out, vec![(key.clone(), want)], "update {} of kind {}", i, kind);
        }
    }
}

/// A stream–stream join as defined: stream time is the largest time seen on either side; a
/// record whose window ended more than the grace before it is dropped; a record joins the
/// other side's kept records of its key within its reach (left: `before` earlier to `after`
/// later; right: the reverse), each pair once at the later time; a record no record can
/// join any more (older than the stream time less before + after + grace) is dropped from
/// the stores, and, for a side whose records go out alone, forwarded with `-` if it never
/// joined.
fn stream_join_model(
    kind: u8,
    events: &[(bool, u8, i64)],
    (before, after, grace): (i64, i64, i64),
) -> Vec<(String, String, i64)> {
    struct Kept {
        key: u8,
        at: i64,
        name: String,
        joined: bool,
    }
    let forwards = |left: bool| match kind {
        1 => left,
        2 => true,
        _ => false,
    };
    let mut sides: [Vec<Kept>; 2] = [Vec::new(), Vec::new()];
    let mut out: Vec<(String, String, i64)> = Vec::new();
    let mut st = i64::MIN;
    for (i, (left, key, at)) in events.iter().enumerate() {
        let (earlier, later) = if *left {
            (before, after)
        } else {
            (after, before)
        };
        st = st.max(*at);
        if at + later + grace < st {
            continue;
        }
        let name = format!("{}{i}", if *left { "l" } else { "r" });
        let (me, them) = if *left { (0, 1) } else { (1, 0) };
        let mut joined = false;
        for other in &mut sides[them] {
            if other.key == *key && other.at >= at - earlier && other.at <= at + later {
                other.joined = true;
                joined = true;
                let value = if *left {
                    format!("{name}+{}", other.name)
                } else {
                    format!("{}+{name}", other.name)
                };
                out.push((format!("k{key}"), value, (*at).max(other.at)));
            }
        }
        sides[me].push(Kept {
            key: *key,
            at: *at,
            name,
            joined,
        });
        let horizon = st - (before + after + grace);
        for (s, is_left) in [(0, true), (1, false)] {
            for k in sides[s].iter().filter(|k| k.at < horizon) {
                if forwards(is_left) && !k.joined {
                    let value = if is_left {
                        format!("{}+-", k.name)
                    } else {
                        format!("-+{}", k.name)
                    };
                    out.push((format!("k{}", k.key), value, k.at));
                }
            }
            sides[s].retain(|k| k.at >= horizon);
        }
    }
    out.sort();
    out
}

fn stream_join_topology(
    kind: u8,
    windows: topiclog::streams::JoinWindows,
) -> TestResult<topiclog::streams::Topology> {
    use topiclog::streams::StreamJoined;
    let builder = StreamsBuilder::new();
    let consumed = || Consumed::with(Serdes::string(), Serdes::string());
    let left = builder.stream("left", consumed());
    let right = builder.stream("right", consumed());
    let show = |v: Option<&String>| v.map_or("-".to_string(), Clone::clone);
    let joined = match kind {
        0 => left.join_windowed(
            &right,
            |a: &String, b: &String| format!("{a}+{b}"),
            windows,
            StreamJoined::default(),
        ),
        1 => left.left_join_windowed(
            &right,
            move |a: &String, b: Option<&String>| format!("{a}+{}", show(b)),
            windows,
            StreamJoined::default(),
        ),
        _ => left.outer_join_windowed(
            &right,
            move |a: Option<&String>, b: Option<&String>| format!("{}+{}", show(a), show(b)),
            windows,
            StreamJoined::default(),
        ),
    };
    joined.to("joined", Produced::with(Serdes::string(), Serdes::string()));
    Ok(builder.build()?)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stream_stream_joins_agree_with_a_model(
        kind in 0u8..3,
        (before, after, grace) in (0i64..30, 0i64..30, 0i64..20),
        raw in prop::collection::vec((any::<bool>(), 0u8..3, 0i64..40, any::<bool>()), 1..80),
    ) {
        let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
        let mut t = 0i64;
        let events: Vec<(bool, u8, i64)> = raw
            .into_iter()
            .map(|(left, key, step, back)| {
                t += step % 15;
                (left, key, if back { (t - step).max(0) } else { t })
            })
            .collect();
        let windows = topiclog::streams::JoinWindows::of_time_difference_and_grace(
            Duration::from_millis(before as u64),
            Duration::from_millis(grace as u64),
        )
        .after(Duration::from_millis(after as u64));
        let topology = stream_join_topology(kind, windows).map_err(|e| fail(&e))?;
        let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("sj"))
            .map_err(|e| fail(&e))?;
        let st = Serdes::string();
        for (i, (left, key, at)) in events.iter().enumerate() {
            let name = format!("{}{i}", if *left { "l" } else { "r" });
            let topic = if *left { "left" } else { "right" };
            driver
                .pipe_input(topic, &st, &st, &format!("k{key}"), &name, *at)
                .map_err(|e| fail(&e))?;
        }
        let mut got: Vec<(String, String, i64)> = driver
            .read_raw_output("joined")
            .into_iter()
            .map(|(k, v, at)| {
                let k = String::from_utf8(k.unwrap_or_default().to_vec()).unwrap_or_default();
                let v = String::from_utf8(v.unwrap_or_default().to_vec()).unwrap_or_default();
                (k, v, at)
            })
            .collect();
        got.sort();
        let want = stream_join_model(kind, &events, (before, after, grace));
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_left_join_of_two_streams_forwards_the_unjoined_once_their_window_closed() -> TestResult {
    use topiclog::streams::JoinWindows;
    let windows = JoinWindows::of_time_difference_with_no_grace(Duration::from_millis(10));
    let mut driver =
        TopologyTestDriver::new(&stream_join_topology(1, windows)?, StreamsConfig::new("sj"))?;
    let st = Serdes::string();
    driver.pipe_input("left", &st, &st, &s("a"), &s("l0"), 0)?;
    driver.pipe_input("right", &st, &st, &s("a"), &s("r1"), 5)?;
    driver.pipe_input("left", &st, &st, &s("b"), &s("l2"), 10)?;
    // Nothing for l2 yet: a right record up to 20 could still join it.
    assert_eq!(
        driver.read_output("joined", &st, &st)?,
        [(s("a"), s("l0+r1"))]
    );
    driver.pipe_input("right", &st, &st, &s("c"), &s("r3"), 100)?;
    assert_eq!(
        driver.read_output("joined", &st, &st)?,
        [(s("b"), s("l2+-"))]
    );
    // Late: its window ended before the stream time (no grace).
    driver.pipe_input("left", &st, &st, &s("c"), &s("l4"), 50)?;
    assert_eq!(driver.dropped_records(), 1);
    assert!(driver.read_output("joined", &st, &st)?.is_empty());
    Ok(())
}

/// On a log: a stream–stream join keeps both sides in stores with `compact,delete`
/// changelogs, and a client started again joins new records with those kept before.
#[test]
fn a_stream_join_on_a_log_restores_its_stores() -> TestResult {
    use topiclog::streams::JoinWindows;
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    for t in ["left", "right", "joined"] {
        log.create_topic(t, 1)?;
    }
    let producer = log.producer(ProducerConfig::default())?;
    let send = |topic: &str, k: &str, v: &str, ts: i64| -> TestResult {
        producer.send(
            ProducerRecord::new(topic, v.to_string())
                .key(k.to_string())
                .timestamp(ts),
        )?;
        Ok(())
    };
    let windows =
        JoinWindows::of_time_difference_and_grace(Duration::from_secs(10), Duration::from_secs(1));
    let config = StreamsConfig::new("sjl").commit_interval(Duration::from_millis(20));
    let out = log.partition("joined", 0)?;
    send("left", "a", "l0", 1_000)?;
    send("right", "a", "r1", 2_000)?;
    let mut streams = Streams::new(&log, stream_join_topology(0, windows)?, config.clone());
    streams.start()?;
    wait_for("the first join", || common::record_count(&out) == 1)?;
    streams.close()?;
    let names = log.topics();
    let this = names
        .iter()
        .find(|t| t.starts_with("sjl-KSTREAM-JOINTHIS-") && t.ends_with("-store-changelog"))
        .ok_or(format!("no join store changelog in {names:?}"))?;
    let cfg = log.describe_topic(this)?.config;
    assert_eq!(cfg.cleanup_policy, CleanupPolicy::CompactDelete);
    assert_eq!(cfg.retention_ms, Some(21_000 + 24 * 3600 * 1000));
    // The right side's r3 joins l0, kept from before the restart.
    send("right", "a", "r3", 5_000)?;
    let mut streams = Streams::new(&log, stream_join_topology(0, windows)?, config);
    streams.start()?;
    wait_for("the join with a restored record", || {
        common::record_count(&out) == 2
    })?;
    streams.close()?;
    let values: Vec<String> = out
        .records(0, 1 << 20)?
        .into_iter()
        .filter_map(|r| String::from_utf8(r.value?.to_vec()).ok())
        .collect();
    assert_eq!(values, ["l0+r1", "l0+r3"]);
    Ok(())
}

/// A left join restarted after some of its records went out alone: the stream time comes
/// back with the stores, so records late before the restart stay late, and records kept
/// unjoined go out once, after the restart.
#[test]
fn a_left_join_restarted_keeps_its_stream_time_and_unjoined_records() -> TestResult {
    use topiclog::streams::JoinWindows;
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    for t in ["left", "right", "joined"] {
        log.create_topic(t, 1)?;
    }
    let producer = log.producer(ProducerConfig::default())?;
    let send = |topic: &str, k: &str, v: &str, ts: i64| -> TestResult {
        producer.send(
            ProducerRecord::new(topic, v.to_string())
                .key(k.to_string())
                .timestamp(ts),
        )?;
        Ok(())
    };
    let windows = JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(10));
    let config = StreamsConfig::new("lj").commit_interval(Duration::from_millis(20));
    let out = log.partition("joined", 0)?;
    let values = || -> TestResult<Vec<String>> {
        Ok(out
            .records(0, 1 << 20)?
            .into_iter()
            .filter_map(|r| String::from_utf8(r.value?.to_vec()).ok())
            .collect())
    };
    send("left", "a", "l0", 1_000)?;
    send("right", "b", "r1", 2_000)?;
    send("left", "c", "l2", 40_000)?;
    let mut streams = Streams::new(&log, stream_join_topology(1, windows)?, config.clone());
    streams.start()?;
    wait_for("l0 alone", || common::record_count(&out) == 1)?;
    // Let the commit write the stores' changelogs.
    std::thread::sleep(Duration::from_millis(100));
    streams.close()?;
    // Late by the stream time (40 s) the stores bring back: both dropped.
    send("right", "a", "r3", 5_000)?;
    send("left", "d", "l4", 6_000)?;
    send("left", "e", "l5", 41_000)?;
    send("right", "e", "r6", 41_500)?;
    send("left", "z", "l7", 70_000)?;
    let mut streams = Streams::new(&log, stream_join_topology(1, windows)?, config);
    streams.start()?;
    wait_for("l2 alone", || {
        values().is_ok_and(|v| v.contains(&s("l2+-")))
    })?;
    let dropped = streams.dropped_records();
    streams.close()?;
    assert_eq!(values()?, ["l0+-", "l5+r6", "l2+-"]);
    assert_eq!(dropped, 2);
    Ok(())
}

/// A processor that keeps the largest value per key in a store, forwards a key only when its
/// value grows, reports the number of keys every 10 s of stream time, and says "tick" on
/// the wall clock every second.
struct MaxTracker {
    report: Option<topiclog::streams::ScheduleId>,
    tick: Option<topiclog::streams::ScheduleId>,
}

impl topiclog::streams::Processor<String, i64, String, i64> for MaxTracker {
    fn init(
        &mut self,
        ctx: &mut topiclog::streams::ProcessorContext<'_, '_, String, i64>,
    ) -> topiclog::Result<()> {
        use topiclog::streams::PunctuationType;
        self.report = Some(ctx.schedule(Duration::from_secs(10), PunctuationType::StreamTime));
        self.tick = Some(ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime));
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut topiclog::streams::ProcessorContext<'_, '_, String, i64>,
        key: String,
        value: i64,
    ) -> topiclog::Result<()> {
        let mut store = ctx.key_value_store::<String, i64>("max")?;
        if store.get(&key)?.is_some_and(|m| m >= value) {
            return Ok(());
        }
        store.put(&key, value)?;
        ctx.forward(key, value)
    }

    fn punctuate(
        &mut self,
        ctx: &mut topiclog::streams::ProcessorContext<'_, '_, String, i64>,
        schedule: topiclog::streams::ScheduleId,
        time: i64,
    ) -> topiclog::Result<()> {
        if Some(schedule) == self.report {
            let n = ctx.key_value_store::<String, i64>("max")?.all()?.len();
            ctx.forward_at(s("keys"), i64::try_from(n).unwrap_or(0), time)
        } else {
            ctx.forward(s("tick"), time)
        }
    }
}

fn max_tracker() -> TestResult<topiclog::streams::Topology> {
    use topiclog::streams::StoreBuilder;
    let builder = StreamsBuilder::new();
    builder.add_state_store(StoreBuilder::key_value(
        "max",
        Serdes::string(),
        Serdes::i64(),
    ));
    builder
        .stream("readings", Consumed::with(Serdes::string(), Serdes::i64()))
        .process(
            || MaxTracker {
                report: None,
                tick: None,
            },
            &["max"],
        )
        .to("maxima", Produced::with(Serdes::string(), Serdes::i64()));
    Ok(builder.build()?)
}

/// A processor that forwards from `init` (refused).
struct Bad;
impl topiclog::streams::Processor<String, i64, String, i64> for Bad {
    fn init(
        &mut self,
        ctx: &mut topiclog::streams::ProcessorContext<'_, '_, String, i64>,
    ) -> topiclog::Result<()> {
        ctx.forward(s("x"), 1)
    }

    fn process(
        &mut self,
        _: &mut topiclog::streams::ProcessorContext<'_, '_, String, i64>,
        _: String,
        _: i64,
    ) -> topiclog::Result<()> {
        Ok(())
    }
}

#[test]
fn processors_keep_state_forward_and_punctuate_by_stream_time_and_wall_clock() -> TestResult {
    let mut driver = TopologyTestDriver::new(&max_tracker()?, StreamsConfig::new("mx"))?;
    let (st, long) = (Serdes::string(), Serdes::i64());
    driver.pipe_input("readings", &st, &long, &s("a"), &5, 1_000)?;
    driver.pipe_input("readings", &st, &long, &s("a"), &3, 2_000)?;
    driver.pipe_input("readings", &st, &long, &s("b"), &1, 5_000)?;
    driver.pipe_input("readings", &st, &long, &s("a"), &9, 6_000)?;
    // The stream-time report runs on the first record, then at multiples of 10 s.
    assert_eq!(
        driver.read_output("maxima", &st, &long)?,
        [(s("a"), 5), (s("keys"), 1), (s("b"), 1), (s("a"), 9)]
    );
    assert_eq!(driver.store_get::<String, i64>("max", &s("a"))?, Some(9));
    // Stream time reaches 10 s: one report; 25 s runs it once more (20 s), not twice.
    driver.pipe_input("readings", &st, &long, &s("c"), &2, 11_000)?;
    driver.pipe_input("readings", &st, &long, &s("c"), &1, 25_000)?;
    driver.pipe_input("readings", &st, &long, &s("c"), &0, 29_000)?;
    assert_eq!(
        driver.read_output("maxima", &st, &long)?,
        [(s("c"), 2), (s("keys"), 3), (s("keys"), 3)]
    );
    // The wall clock: nothing until it moves a second.
    driver.advance_wall_clock_time(Duration::from_millis(999))?;
    assert!(driver.read_output("maxima", &st, &long)?.is_empty());
    driver.advance_wall_clock_time(Duration::from_millis(1))?;
    assert_eq!(
        driver.read_output("maxima", &st, &long)?,
        [(s("tick"), 1_000)]
    );
    // Two processors of one store share its task: one sub-topology.
    let builder = StreamsBuilder::new();
    builder.add_state_store(topiclog::streams::StoreBuilder::key_value(
        "max",
        Serdes::string(),
        Serdes::i64(),
    ));
    for topic in ["readings", "more-readings"] {
        builder
            .stream(topic, Consumed::with(Serdes::string(), Serdes::i64()))
            .process(
                || MaxTracker {
                    report: None,
                    tick: None,
                },
                &["max"],
            )
            .to("maxima", Produced::with(Serdes::string(), Serdes::i64()));
    }
    let described = builder.build()?.describe();
    assert!(!described.contains("Sub-topology: 1"), "{described}");
    // A store that is not connected is an error, as is forwarding from init.
    let builder = StreamsBuilder::new();
    builder
        .stream("readings", Consumed::with(Serdes::string(), Serdes::i64()))
        .process(|| Bad, &[])
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let e = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("bad"))
        .expect_err("forward from init");
    assert!(e.to_string().contains("init"), "{e}");
    let builder = StreamsBuilder::new();
    builder
        .stream("readings", Consumed::with(Serdes::string(), Serdes::i64()))
        .process(|| Bad, &["nowhere"])
        .to("out", Produced::with(Serdes::string(), Serdes::i64()));
    let e = builder.build().expect_err("no such store");
    assert!(e.to_string().contains("nowhere"), "{e}");
    Ok(())
}

/// On a log: the processor's store is restored when a client starts again, and wall-clock
/// punctuations run on the stream thread.
#[test]
fn a_processor_on_a_log_restores_its_store_and_ticks() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("readings", 1)?;
    log.create_topic("maxima", 1)?;
    let producer = log.producer(ProducerConfig::default())?;
    let send = |k: &str, v: i64| -> TestResult {
        producer
            .send(ProducerRecord::new("readings", v.to_be_bytes().to_vec()).key(k.to_string()))?;
        Ok(())
    };
    let config = StreamsConfig::new("mxl").commit_interval(Duration::from_millis(20));
    let out = log.partition("maxima", 0)?;
    let values = || -> TestResult<Vec<(String, i64)>> {
        let mut v = Vec::new();
        for r in out.records(0, 1 << 20)? {
            let k = String::from_utf8(r.key.unwrap_or_default().to_vec())?;
            let n: [u8; 8] = r.value.as_deref().unwrap_or_default().try_into()?;
            v.push((k, i64::from_be_bytes(n)));
        }
        Ok(v)
    };
    send("a", 5)?;
    let mut streams = Streams::new(&log, max_tracker()?, config.clone());
    streams.start()?;
    wait_for("a tick", || {
        values().is_ok_and(|v| v.iter().any(|(k, _)| k == "tick"))
    })?;
    streams.close()?;
    // The store came back: 4 is not a new maximum for a, 6 is.
    send("a", 4)?;
    send("a", 6)?;
    let mut streams = Streams::new(&log, max_tracker()?, config);
    streams.start()?;
    wait_for("a's new maximum", || {
        values().is_ok_and(|v| v.contains(&(s("a"), 6)))
    })?;
    streams.close()?;
    let maxima: Vec<(String, i64)> = values()?.into_iter().filter(|(k, _)| k == "a").collect();
    assert_eq!(maxima, [(s("a"), 5), (s("a"), 6)]);
    Ok(())
}

/// Session counts as defined: a record's session is its key's sessions within the gap of
/// its time, merged; dropped if the record is more than the gap and the grace behind the
/// stream time;
/// sessions that ended before the stream time less twice the gap and the grace are forgotten (checked
/// when the stream time has moved a tenth of that, or a second, since the last time).
fn session_model(events: &[(u8, i64)], gap: i64, grace: i64) -> Counts {
    let mut sessions: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    let mut out: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let (mut st, mut dropped, mut expired_before) = (i64::MIN, 0, i64::MIN);
    let retention = 2 * gap + grace;
    for (k, ts) in events {
        let key = format!("k{k}");
        st = st.max(*ts);
        let close = st - grace - gap;
        if *ts < close {
            dropped += 1;
            continue;
        }
        let horizon = st - retention;
        let found: Vec<(i64, (i64, i64))> = sessions
            .iter()
            .filter(|((kk, _), (end, _))| *kk == key && *end >= (ts - gap).max(horizon))
            .filter(|((_, start), _)| *start <= ts + gap)
            .map(|((_, start), v)| (*start, *v))
            .collect();
        let start = found.iter().map(|(s, _)| *s).fold(*ts, i64::min);
        let end = found.iter().map(|(_, (e, _))| *e).fold(*ts, i64::max);
        let count = found.iter().map(|(_, (_, c))| *c).sum::<i64>() + 1;
        for (s, (e, _)) in &found {
            sessions.remove(&(key.clone(), *s));
            out.remove(&(key.clone(), *s * 1_000_000 + e));
        }
        sessions.insert((key.clone(), start), (end, count));
        out.insert((key.clone(), start * 1_000_000 + end), count);
        let cutoff = st - retention;
        if cutoff >= expired_before.saturating_add((retention / 10).max(1000)) {
            expired_before = cutoff;
            sessions.retain(|_, (e, _)| *e >= cutoff);
        }
    }
    (out, dropped)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn session_windows_agree_with_the_model(
        ev in events(400),
        gap in 1i64..80,
        grace in 0i64..100,
    ) {
        let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
        let builder = StreamsBuilder::new();
        builder
            .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Grouped::default())
            .windowed_by_session(topiclog::streams::SessionWindows::of_inactivity_gap_and_grace(
                Duration::from_millis(gap as u64),
                Duration::from_millis(grace as u64),
            ))
            .count(Materialized::named("sessions"))
            .to_stream_with_tombstones()
            .to(
                "sessions-out",
                Produced::with(
                    Serdes::session_windowed(Serdes::string()),
                    Serdes::nullable(Serdes::i64()),
                ),
            );
        let topology = builder.build().map_err(|e| fail(&e))?;
        let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("sw"))
            .map_err(|e| fail(&e))?;
        let st = Serdes::string();
        for (k, ts) in &ev {
            driver
                .pipe_input("events", &st, &st, &format!("k{k}"), &s("x"), *ts)
                .map_err(|e| fail(&e))?;
        }
        let ks = Serdes::session_windowed(Serdes::string());
        let mut got = BTreeMap::new();
        for (w, n) in driver
            .read_output("sessions-out", &ks, &Serdes::nullable(Serdes::i64()))
            .map_err(|e| fail(&e))?
        {
            let at = (w.key, w.window.start * 1_000_000 + w.window.end);
            match n {
                Some(n) => got.insert(at, n),
                None => got.remove(&at),
            };
        }
        let (want, want_dropped) = session_model(&ev, gap, grace);
        prop_assert_eq!(got, want);
        prop_assert_eq!(driver.dropped_records(), want_dropped);
    }
}

#[test]
fn sessions_merge_from_the_initializer_and_suppression_emits_each_final_session_once() -> TestResult
{
    use topiclog::streams::SessionWindows;
    let windows = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10));
    let builder = StreamsBuilder::new();
    let sessions = builder
        .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by_session(windows);
    sessions
        .aggregate(
            || 1000_i64,
            |_: &String, _: String, n: i64| n + 1,
            |_: &String, a: i64, b: i64| a + b,
            Materialized::named("sums").with_value_serde(Serdes::i64()),
        )
        .to_stream()
        .to(
            "sums",
            Produced::with(Serdes::session_windowed(Serdes::string()), Serdes::i64()),
        );
    let builder_finals = StreamsBuilder::new();
    builder_finals
        .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by_session(windows)
        .count(Materialized::named("counts"))
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        .to_stream()
        .to(
            "finals",
            Produced::with(Serdes::session_windowed(Serdes::string()), Serdes::i64()),
        );
    let ks = Serdes::session_windowed(Serdes::string());
    let st = Serdes::string();
    for (topology, topic) in [
        (builder.build()?, "sums"),
        (builder_finals.build()?, "finals"),
    ] {
        let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("ss"))?;
        // [0, 5] and [20, 20], then 12 bridges them into [0, 20]; 50 closes it.
        for at in [0, 5, 20, 12, 50] {
            driver.pipe_input("events", &st, &st, &s("a"), &s("x"), at)?;
        }
        let raw = driver.read_raw_output(topic);
        let out: Vec<(Window, i64, i64)> = raw
            .iter()
            .map(|(k, v, at)| -> TestResult<(Window, i64, i64)> {
                let w = ks.deserialize(topic, k.as_deref())?;
                let n = Serdes::i64().deserialize(topic, v.as_deref())?;
                Ok((w.window, n, *at))
            })
            .collect::<TestResult<_>>()?;
        let merged = Window { start: 0, end: 20 };
        if topic == "sums" {
            // Kafka's merge starts from the initializer, even for one session: [0, 5] is
            // 1000 + 1001 + 1; [0, 20] is 1000 + 2002 + 1001 + 1.
            let last = out.iter().rev().find(|(w, _, _)| *w == merged);
            assert_eq!(
                last.map(|(_, n, at)| (*n, *at)),
                Some((4004, 20)),
                "{out:?}"
            );
        } else {
            // One final result: the merged session, at its end; no deleted sessions.
            assert_eq!(out, [(merged, 4, 20)]);
        }
    }
    Ok(())
}

/// Sliding windows by brute force: after each record kept (one is dropped when the last
/// window it defines has closed: its time plus the difference, 1 ms and the grace is
/// before the stream time, as Kafka's), every window the records define (ending at a record;
/// starting just after a record when a later record falls in it) that holds the record, or
/// starts just after it, and is still open goes out with the number of records it holds,
/// in order of start.
fn sliding_model(events: &[(u8, i64)], d: i64, grace: i64) -> (Vec<(String, i64, i64)>, u64) {
    let mut kept: Vec<(u8, i64)> = Vec::new();
    let (mut out, mut dropped, mut st) = (Vec::new(), 0, i64::MIN);
    for (k, t) in events {
        st = st.max(*t);
        if t + d + 1 + grace < st {
            dropped += 1;
            continue;
        }
        kept.push((*k, *t));
        let mine: Vec<i64> = kept
            .iter()
            .filter(|(kk, _)| kk == k)
            .map(|(_, t)| *t)
            .collect();
        let mut starts = BTreeSet::new();
        for x in &mine {
            starts.insert(x - d);
            if mine.iter().any(|y| y > x && *y <= x + 1 + d) {
                starts.insert(x + 1);
            }
        }
        for s in starts {
            let e = s + d;
            // Those that hold it, and the one it starts just after it (new with it).
            if ((s <= *t && *t <= e) || s == t + 1) && e + grace >= st {
                let n = mine.iter().filter(|y| **y >= s && **y <= e).count();
                out.push((format!("k{k}"), s, i64::try_from(n).unwrap_or(0)));
            }
        }
    }
    (out, dropped)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sliding_windows_agree_with_brute_force(
        ev in events(200),
        d in 1i64..60,
        grace in 0i64..60,
    ) {
        let fail = |e: &dyn std::fmt::Display| TestCaseError::fail(e.to_string());
        let windows = topiclog::streams::SlidingWindows::of_time_difference_and_grace(
            Duration::from_millis(d as u64),
            Duration::from_millis(grace as u64),
        );
        let builder = StreamsBuilder::new();
        builder
            .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Grouped::default())
            .windowed_by_sliding(windows)
            .count(Materialized::named("sliding"))
            .to_stream()
            .to("sliding-out", Produced::default());
        let topology = builder.build().map_err(|e| fail(&e))?;
        let mut driver = TopologyTestDriver::new(&topology, StreamsConfig::new("sl"))
            .map_err(|e| fail(&e))?;
        let st = Serdes::string();
        for (k, ts) in &ev {
            driver
                .pipe_input("events", &st, &st, &format!("k{k}"), &s("x"), *ts)
                .map_err(|e| fail(&e))?;
        }
        let ks = Serdes::time_windowed(Serdes::string(), windows.size());
        let got: Vec<(String, i64, i64)> = driver
            .read_output("sliding-out", &ks, &Serdes::i64())
            .map_err(|e| fail(&e))?
            .into_iter()
            .map(|(w, n)| (w.key, w.window.start, n))
            .collect();
        let (want, want_dropped) = sliding_model(&ev, d, grace);
        prop_assert_eq!(got, want);
        prop_assert_eq!(driver.dropped_records(), want_dropped);
    }
}

#[test]
fn a_sliding_window_without_grace_emits_the_newest_records_window() -> TestResult {
    let windows = topiclog::streams::SlidingWindows::of_time_difference_with_no_grace(
        Duration::from_millis(10),
    );
    let builder = StreamsBuilder::new();
    builder
        .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by_sliding(windows)
        .count(Materialized::named("sliding"))
        .to_stream()
        .to("sliding-out", Produced::default());
    let mut driver = TopologyTestDriver::new(&builder.build()?, StreamsConfig::new("sl"))?;
    let st = Serdes::string();
    driver.pipe_input("events", &st, &st, &s("a"), &s("x"), 10)?;
    driver.pipe_input("events", &st, &st, &s("a"), &s("x"), 15)?;
    let ks = Serdes::time_windowed(Serdes::string(), windows.size());
    let out: Vec<(i64, i64)> = driver
        .read_output("sliding-out", &ks, &Serdes::i64())?
        .into_iter()
        .map(|(w, n)| (w.window.start, n))
        .collect();
    // [0, 10]; then [5, 15] with both, and [11, 21] (just after 10) with 15.
    assert_eq!(out, [(0, 1), (5, 2), (11, 1)]);
    Ok(())
}
