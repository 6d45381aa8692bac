//! `topiclog::streams` part 3: exactly-once (a thread's outputs, changelogs and offsets in
//! one transaction), persistent stores with a local checkpoint, interactive queries, and
//! WordCount in a child process killed with SIGKILL at random points: under exactly-once the
//! final counts equal a recount and no count is emitted twice; under at-least-once counts
//! may go over, never under.
#![cfg(feature = "streams")]
#![allow(clippy::indexing_slicing)]

mod common;
#[path = "../examples/wordcount/topology.rs"]
mod wordcount;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestResult, wait_for};
use topiclog::streams::{
    Consumed, Grouped, Materialized, ProcessingGuarantee, Produced, Serdes, StoreType, Streams,
    StreamsBuilder, StreamsConfig, StreamsState, ThreadErrorResponse, TimeWindows,
};
use topiclog::{IsolationLevel, Log, ProducerConfig, ProducerRecord, TopicPartition};

const WORDS: [&str; 12] = [
    "kafka",
    "streams",
    "log",
    "topic",
    "offset",
    "commit",
    "record",
    "batch",
    "segment",
    "group",
    "store",
    "Changelog",
];

fn corpus(n: usize, seed: u64) -> Vec<String> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            let len = 1 + (common::xorshift(&mut x) % 6) as usize;
            (0..len)
                .map(|_| WORDS[(common::xorshift(&mut x) % WORDS.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn recount(lines: &[String]) -> BTreeMap<String, i64> {
    let mut counts = BTreeMap::new();
    for l in lines {
        for w in l.to_lowercase().split(' ').filter(|w| !w.is_empty()) {
            *counts.entry(w.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

fn send_lines(log: &Log, lines: &[String]) -> TestResult {
    let p = log.producer(ProducerConfig::default())?;
    for l in lines {
        p.send_async(ProducerRecord::new("lines", l.clone()))?;
    }
    p.flush()?;
    Ok(())
}

/// Every count emitted, per word in order.
type Emitted = BTreeMap<String, Vec<i64>>;

/// Every count written to `counts`, read_committed, per word in order.
fn emitted(log: &Log, partitions: i32) -> TestResult<BTreeMap<String, Vec<i64>>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for p in 0..partitions {
        let h = log
            .partition("counts", p)?
            .with_isolation_level(IsolationLevel::ReadCommitted);
        for r in h.records(0, 1 << 30)? {
            let k = String::from_utf8(r.key.as_deref().unwrap_or_default().to_vec())?;
            let v: [u8; 8] = r.value.as_deref().unwrap_or_default().try_into()?;
            out.entry(k).or_default().push(i64::from_be_bytes(v));
        }
    }
    Ok(out)
}

fn latest(emitted: &BTreeMap<String, Vec<i64>>) -> BTreeMap<String, i64> {
    emitted
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), *v.last()?)))
        .collect()
}

fn config(app: &str, guarantee: ProcessingGuarantee, store: StoreType) -> StreamsConfig {
    StreamsConfig::new(app)
        .processing_guarantee(guarantee)
        .default_dsl_store(store)
        .num_stream_threads(2)
        .commit_interval(Duration::from_millis(30))
}

/// Whether the group committed every record of `topic` (up to its last record that is not a
/// transaction marker).
fn consumed(log: &Log, group: &str, topic: &str) -> TestResult<bool> {
    let n = log.describe_topic(topic)?.partitions.len() as i32;
    for p in 0..n {
        let h = log.partition(topic, p)?;
        let records = h.records(h.log_start_offset(), 1 << 30)?;
        let Some(last) = records.last() else {
            continue;
        };
        let tp = TopicPartition::new(topic, p);
        let committed = log
            .committed_offsets(group, Some(std::slice::from_ref(&tp)))
            .first()
            .and_then(|(_, o)| o.as_ref().map(|o| o.offset));
        if committed.is_none_or(|c| c <= last.offset) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[test]
fn exactly_once_is_the_default_and_its_commit_interval_is_100_ms() -> TestResult {
    let c = StreamsConfig::new("a");
    assert_eq!(c.processing_guarantee, ProcessingGuarantee::ExactlyOnceV2);
    assert_eq!(c.effective_commit_interval(), Duration::from_millis(100));
    let c = c.set("processing.guarantee", "at_least_once")?;
    assert_eq!(c.effective_commit_interval(), Duration::from_secs(30));
    let c = c.set("commit.interval.ms", "250")?;
    assert_eq!(c.effective_commit_interval(), Duration::from_millis(250));
    let c = c.set("processing.guarantee", "exactly_once_v2")?;
    assert_eq!(c.processing_guarantee, ProcessingGuarantee::ExactlyOnceV2);
    assert_eq!(c.effective_commit_interval(), Duration::from_millis(250));
    assert!(
        StreamsConfig::new("a")
            .set("processing.guarantee", "twice")
            .is_err()
    );
    let c = StreamsConfig::new("a").set("default.dsl.store", "rocksDB")?;
    assert_eq!(c.default_dsl_store, StoreType::Persistent);
    Ok(())
}

/// A thread fails in the middle of a transaction: its outputs are aborted, the thread that
/// replaces it starts from the last committed state, and read_committed readers see each
/// count once.
#[test]
fn a_failed_transaction_is_aborted_and_the_replacement_counts_each_record_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("lines", 1)?;
    log.create_topic("counts", 1)?;
    let lines = corpus(400, 5);
    send_lines(&log, &lines)?;
    let failed = Arc::new(AtomicBool::new(false));
    let fail_once = Arc::clone(&failed);
    let builder = StreamsBuilder::new();
    builder
        .stream("lines", Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| {
            line.to_lowercase()
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .map_values(move |w: String| {
            // The 300th word (in the second or a later poll) fails the thread once.
            static SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            if SEEN.fetch_add(1, Ordering::Relaxed) == 300
                && !fail_once.swap(true, Ordering::AcqRel)
            {
                panic!("a processor fails once");
            }
            w
        })
        .group_by(
            |(), w: &String| w.clone(),
            Grouped::with(Serdes::string(), Serdes::string()),
        )
        .count(Materialized::named("counts").with_key_serde(Serdes::string()))
        .to_stream()
        .to("counts", Produced::with(Serdes::string(), Serdes::i64()));
    // 50 lines a poll: the failure comes in a later poll than the first, after the
    // transaction has outputs, repartition and changelog records written.
    let config = StreamsConfig::new("eos-fail")
        .num_stream_threads(1)
        .commit_interval(Duration::from_mins(1))
        .set("max.poll.records", "50")?;
    let mut streams = Streams::new(&log, builder.build()?, config);
    streams.set_uncaught_exception_handler(|_| ThreadErrorResponse::ReplaceThread);
    streams.start()?;
    let want = recount(&lines);
    wait_for("the counts", || {
        emitted(&log, 1).is_ok_and(|e| latest(&e) == want)
    })?;
    streams.close()?;
    assert!(failed.load(Ordering::Acquire));
    // Each count was emitted at most once per commit and never repeated: the aborted
    // transaction's outputs are not read.
    for (word, values) in emitted(&log, 1)? {
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{word}: {values:?}");
    }
    Ok(())
}

#[test]
fn a_persistent_store_restarts_from_its_checkpoint_and_not_from_the_changelog() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    log.create_topic("lines", 2)?;
    log.create_topic("counts", 2)?;
    let first = corpus(500, 11);
    send_lines(&log, &first)?;
    let cfg = config(
        "ckpt",
        ProcessingGuarantee::ExactlyOnceV2,
        StoreType::Persistent,
    );
    let mut streams = Streams::new(&log, wordcount::wordcount("lines", "counts")?, cfg.clone());
    streams.start()?;
    let want = recount(&first);
    wait_for("the first counts", || {
        emitted(&log, 2).is_ok_and(|e| latest(&e) == want)
    })?;
    streams.close()?;
    // The files, one per task, named as Kafka names task directories.
    let state = dir.path().join(".streams-state").join("ckpt");
    assert!(state.join("1_0").join("counts.redb").exists());
    assert!(state.join("1_1").join("counts.redb").exists());
    // The changelog's records below its end are deleted: only the checkpoint can give the
    // counts back (an in-memory store would restart from nothing).
    for p in 0..2 {
        let h = log.partition("ckpt-counts-changelog", p)?;
        h.delete_records(h.log_end_offset())?;
    }
    let second = corpus(200, 12);
    send_lines(&log, &second)?;
    let mut streams = Streams::new(&log, wordcount::wordcount("lines", "counts")?, cfg.clone());
    streams.start()?;
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let want = recount(&all);
    wait_for("the counts of both rounds", || {
        emitted(&log, 2).is_ok_and(|e| latest(&e) == want)
    })?;
    // Queries read the files and memory together.
    let store = streams.store::<String, i64>("counts")?;
    let all_entries: BTreeMap<String, i64> = store.all()?.into_iter().collect();
    assert_eq!(all_entries, want);
    streams.close()?;
    Ok(())
}

/// Makes the one-partition topics `lines` and `counts`, sends `lines`, and runs WordCount
/// under `cfg` until its counts equal a recount of them, then closes it.
fn count_once(log: &Log, lines: &[String], cfg: &StreamsConfig) -> TestResult {
    log.create_topic("lines", 1)?;
    log.create_topic("counts", 1)?;
    send_lines(log, lines)?;
    let mut streams = Streams::new(log, wordcount::wordcount("lines", "counts")?, cfg.clone());
    streams.start()?;
    let want = recount(lines);
    wait_for("the counts", || {
        emitted(log, 1).is_ok_and(|e| latest(&e) == want)
    })?;
    streams.close()?;
    Ok(())
}

#[test]
fn a_checkpoint_the_changelog_cannot_continue_from_is_dropped_and_the_store_rebuilt() -> TestResult
{
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    let cfg = config(
        "gone",
        ProcessingGuarantee::AtLeastOnce,
        StoreType::Persistent,
    )
    .num_stream_threads(1);
    count_once(&log, &corpus(300, 21), &cfg)?;
    // The changelog is emptied and made again (a reset): the file's checkpoint is past its
    // end, so the file is wiped and the store rebuilt from what the changelog holds (nothing).
    log.delete_topic("gone-counts-changelog")?;
    let mut streams = Streams::new(&log, wordcount::wordcount("lines", "counts")?, cfg);
    streams.start()?;
    wait_for("running", || streams.state() == StreamsState::Running)?;
    let store = streams.store::<String, i64>("counts")?;
    assert_eq!(store.all()?, []);
    assert_eq!(store.get(&"kafka".to_string())?, None);
    streams.close()?;
    Ok(())
}

#[test]
fn a_store_file_that_does_not_open_is_kept_aside_and_the_store_rebuilt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    let cfg = config(
        "dmg",
        ProcessingGuarantee::ExactlyOnceV2,
        StoreType::Persistent,
    )
    .num_stream_threads(1);
    let lines = corpus(200, 41);
    count_once(&log, &lines, &cfg)?;
    let want = recount(&lines);
    let file = dir
        .path()
        .join(".streams-state")
        .join("dmg")
        .join("1_0")
        .join("counts.redb");
    std::fs::write(&file, b"not a database file, damaged on purpose")?;
    let mut streams = Streams::new(&log, wordcount::wordcount("lines", "counts")?, cfg);
    streams.start()?;
    wait_for("running", || streams.state() == StreamsState::Running)?;
    let store = streams.store::<String, i64>("counts")?;
    assert_eq!(store.all()?.into_iter().collect::<BTreeMap<_, _>>(), want);
    streams.close()?;
    // The damaged file is kept, beside the new one.
    assert_eq!(
        std::fs::read(file.with_extension("redb.damaged"))?,
        b"not a database file, damaged on purpose"
    );
    Ok(())
}

#[test]
fn interactive_queries_read_key_value_and_window_stores() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = common::open(dir.path())?;
    for (store_type, app) in [
        (StoreType::InMemory, "iq-mem"),
        (StoreType::Persistent, "iq-file"),
    ] {
        let topic = format!("{app}-views");
        log.create_topic(&topic, 2)?;
        let builder = StreamsBuilder::new();
        let views = builder.stream(&topic, Consumed::with(Serdes::string(), Serdes::string()));
        views
            .clone()
            .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
            .count(Materialized::named("per-user").with_store_type(store_type));
        views
            .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
            .windowed_by(TimeWindows::of_size_and_grace(
                Duration::from_mins(1),
                Duration::from_mins(5),
            ))
            .count(Materialized::named("per-minute"));
        let mut streams = Streams::new(
            &log,
            builder.build()?,
            StreamsConfig::new(app).commit_interval(Duration::from_millis(20)),
        );
        assert!(streams.store::<String, i64>("nope").is_err());
        streams.start()?;
        let p = log.producer(ProducerConfig::default())?;
        let sent = [
            ("ann", 0),
            ("bob", 1_000),
            ("ann", 61_000),
            ("cy", 62_000),
            ("ann", 2_000),
        ];
        for (user, t) in sent {
            p.send(ProducerRecord::new(&topic, "page").key(user).timestamp(t))?;
        }
        let users = streams.store::<String, i64>("per-user")?;
        wait_for("the counts", || {
            users.get(&"ann".to_string()).ok().flatten() == Some(3)
                && users.get(&"cy".to_string()).ok().flatten() == Some(1)
        })?;
        assert_eq!(users.get(&"bob".to_string())?, Some(1));
        assert_eq!(users.get(&"dan".to_string())?, None);
        let s = |x: &str| x.to_string();
        assert_eq!(users.all()?, [(s("ann"), 3), (s("bob"), 1), (s("cy"), 1)]);
        assert_eq!(users.range(&s("b"), &s("c"))?, [(s("bob"), 1)]);
        assert_eq!(
            users.range(&s("bob"), &s("cy"))?,
            [(s("bob"), 1), (s("cy"), 1)]
        );
        assert_eq!(users.approximate_num_entries()?, 3);
        let minutes = streams.window_store::<String, i64>("per-minute")?;
        wait_for("the windows", || {
            minutes.fetch(&s("ann"), 0).ok().flatten() == Some(2)
        })
        .map_err(|e| format!("{e}: {:?}", minutes.all().map(|a| a.len())))?;
        assert_eq!(minutes.fetch(&s("ann"), 60_000)?, Some(1));
        let ann: Vec<(i64, i64)> = minutes
            .fetch_range(&s("ann"), 0, 120_000)?
            .into_iter()
            .map(|(w, n)| (w.start, n))
            .collect();
        assert_eq!(ann, [(0, 2), (60_000, 1)]);
        let second_minute: Vec<(String, i64)> = minutes
            .fetch_all(60_000, 60_000)?
            .into_iter()
            .map(|(w, n)| (w.key, n))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        assert_eq!(second_minute, [(s("ann"), 1), (s("cy"), 1)]);
        assert_eq!(minutes.all()?.len(), 4);
        // A store of other types is an error, not a panic.
        assert!(streams.store::<i64, i64>("per-user")?.all().is_err());
        streams.close()?;
    }
    Ok(())
}

/// The child of the kill test: WordCount on the directory in `TOPICLOG_STREAMS_KILL_DIR`
/// under the guarantee and store in `TOPICLOG_STREAMS_KILL_MODE`, until killed; prints
/// "running" once running.
#[test]
fn streams_kill_child() -> TestResult {
    let Ok(dir) = std::env::var("TOPICLOG_STREAMS_KILL_DIR") else {
        return Ok(());
    };
    let mode = std::env::var("TOPICLOG_STREAMS_KILL_MODE")?;
    let log = topiclog::LogOptions::new().open(Path::new(&dir))?;
    let mut streams = Streams::new(
        &log,
        wordcount::wordcount("lines", "counts")?,
        mode_config(&mode)?,
    );
    streams.start()?;
    wait_for("running", || streams.state() == StreamsState::Running)?;
    println!("running");
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(e) = streams.failure() {
            return Err(e.into());
        }
    }
}

fn mode_config(mode: &str) -> TestResult<StreamsConfig> {
    Ok(match mode {
        "eos-file" => config(
            "wc",
            ProcessingGuarantee::ExactlyOnceV2,
            StoreType::Persistent,
        ),
        "eos-memory" => config(
            "wc",
            ProcessingGuarantee::ExactlyOnceV2,
            StoreType::InMemory,
        ),
        "alos-file" => config(
            "wc",
            ProcessingGuarantee::AtLeastOnce,
            StoreType::Persistent,
        ),
        other => return Err(format!("unknown mode {other}").into()),
    })
}

/// Appends a chunk of lines, runs the child, kills it at a random point; `rounds` times.
/// Then runs the application in process to the end and returns every count emitted and the
/// lines sent.
fn kill_rounds(mode: &str, rounds: u64, seed: u64) -> TestResult<(Emitted, Vec<String>)> {
    let dir = tempfile::tempdir()?;
    {
        let log = common::open(dir.path())?;
        log.create_topic("lines", 2)?;
        log.create_topic("counts", 2)?;
        log.close()?;
    }
    let mut sent = Vec::new();
    let mut x = seed;
    for round in 0..rounds {
        let chunk = corpus(30_000, seed.wrapping_add(round * 7919));
        {
            let log = common::open(dir.path())?;
            send_lines(&log, &chunk)?;
            log.close()?;
        }
        sent.extend(chunk);
        let kill_after = Duration::from_millis(common::xorshift(&mut x) % 100);
        let ((), errors) = common::run_and_kill(
            "streams_kill_child",
            &[
                (
                    "TOPICLOG_STREAMS_KILL_DIR",
                    dir.path().display().to_string(),
                ),
                ("TOPICLOG_STREAMS_KILL_MODE", mode.to_string()),
            ],
            kill_after,
            (),
            |(), line| line.ends_with("running"),
        )?;
        if errors.contains("panicked") || errors.contains("Error:") {
            return Err(format!("round {round}: the child failed: {errors}").into());
        }
    }
    let log = common::open(dir.path())?;
    let mut streams = Streams::new(
        &log,
        wordcount::wordcount("lines", "counts")?,
        mode_config(mode)?,
    );
    streams.start()?;
    wait_for("every line and word consumed", || {
        consumed(&log, "wc", "lines").unwrap_or(false)
            && consumed(&log, "wc", "wc-counts-repartition").unwrap_or(false)
    })?;
    streams.close()?;
    if let Some(e) = streams.failure() {
        return Err(e.into());
    }
    Ok((emitted(&log, 2)?, sent))
}

fn rounds() -> u64 {
    common::env_rounds("TOPICLOG_STREAMS_KILL_ROUNDS", 2)
}

#[test]
fn wordcount_killed_with_sigkill_counts_exactly_once_with_persistent_stores() -> TestResult {
    let (emitted, sent) = kill_rounds("eos-file", rounds(), 0x5eed_0001)?;
    check_exactly_once(&emitted, &sent);
    Ok(())
}

#[test]
fn wordcount_killed_with_sigkill_counts_exactly_once_with_stores_in_memory() -> TestResult {
    let (emitted, sent) = kill_rounds("eos-memory", rounds().div_ceil(2), 0x5eed_0002)?;
    check_exactly_once(&emitted, &sent);
    Ok(())
}

#[test]
fn wordcount_killed_with_sigkill_at_least_once_may_count_twice_but_never_loses() -> TestResult {
    let (emitted, sent) = kill_rounds("alos-file", rounds().div_ceil(2), 0x5eed_0003)?;
    let want = recount(&sent);
    let got = latest(&emitted);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (word, n) in &want {
        assert!(got[word] >= *n, "{word}: counted {} of {n}", got[word]);
    }
    let over: i64 = want.iter().map(|(w, n)| got[w] - n).sum();
    println!("at-least-once: {over} words counted more than once after the kills");
    Ok(())
}

fn check_exactly_once(emitted: &Emitted, sent: &[String]) {
    let want = recount(sent);
    assert_eq!(latest(emitted), want, "final counts against a recount");
    // No count went up twice for one record: every emitted count rises (a replayed record
    // under at-least-once would emit a count again, or skip back).
    for (word, values) in emitted {
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "{word}: counts emitted {values:?}"
        );
    }
}

/// A count by key with no repartition (its store counts a record as soon as it is
/// processed, before any commit): `words` → `counts`.
fn keyed_count() -> TestResult<topiclog::streams::Topology> {
    let builder = StreamsBuilder::new();
    builder
        .stream("words", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()))
        .count(Materialized::named("counts"))
        .to_stream()
        .to("counts", Produced::with(Serdes::string(), Serdes::i64()));
    Ok(builder.build()?)
}

/// The child of the SIGTERM test: a count by key with a commit interval longer than the
/// test, closing on SIGTERM as `examples/wordcount.rs` does; prints "caught up" once its
/// store has counted `TOPICLOG_STREAMS_TERM_WORDS` records (processed, not committed).
#[test]
fn streams_term_child() -> TestResult {
    let Ok(dir) = std::env::var("TOPICLOG_STREAMS_TERM_DIR") else {
        return Ok(());
    };
    let words: i64 = std::env::var("TOPICLOG_STREAMS_TERM_WORDS")?.parse()?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    let log = topiclog::LogOptions::new().open(Path::new(&dir))?;
    let config = StreamsConfig::new("wc")
        .num_stream_threads(2)
        .commit_interval(Duration::from_hours(1));
    let mut streams = Streams::new(&log, keyed_count()?, config);
    streams.start()?;
    let store = streams.store::<String, i64>("counts")?;
    let mut told = false;
    while !stop.load(Ordering::Acquire) {
        if let Some(e) = streams.failure() {
            return Err(e.into());
        }
        if !told && store.all()?.iter().map(|(_, n)| n).sum::<i64>() == words {
            println!("caught up");
            told = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    streams.close()?;
    log.close()?;
    println!("closed");
    Ok(())
}

/// SIGTERM closes the application: its last commit is made (nothing was committed before:
/// the interval is an hour, and six minutes pass before a caught-up thread commits) and no
/// transaction is left open or aborted.
#[test]
fn sigterm_commits_and_leaves_no_transaction_open() -> TestResult {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir()?;
    let lines = corpus(500, 31);
    {
        let log = common::open(dir.path())?;
        log.create_topic("words", 2)?;
        log.create_topic("counts", 2)?;
        let p = log.producer(ProducerConfig::default())?;
        for line in &lines {
            for w in line.to_lowercase().split(' ').filter(|w| !w.is_empty()) {
                p.send_async(ProducerRecord::new("words", "1").key(w.to_string()))?;
            }
        }
        p.flush()?;
        log.close()?;
    }
    let want = recount(&lines);
    let words: i64 = want.values().sum();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "streams_term_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TOPICLOG_STREAMS_TERM_DIR", dir.path())
        .env("TOPICLOG_STREAMS_TERM_WORDS", words.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("stdout")?;
    // A child that hangs is killed after two minutes (its output then ends, and the test
    // fails instead of waiting for ever).
    let pid = child.id().to_string();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while !done.load(Ordering::Acquire) {
                if start.elapsed() > Duration::from_mins(2) {
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid])
                        .status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut out = BufReader::new(stdout).lines();
    let caught_up = out
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.ends_with("caught up"));
    assert!(caught_up, "the child did not count the lines");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(sent.success());
    let rest: Vec<String> = out.map_while(Result::ok).collect();
    let status = child.wait()?;
    done.store(true, Ordering::Release);
    watchdog.join().map_err(|_| "the watchdog panicked")?;
    assert!(
        status.success() && rest.iter().any(|l| l.ends_with("closed")),
        "the child did not close cleanly: {status:?} {rest:?}"
    );
    let log = common::open(dir.path())?;
    assert_eq!(latest(&emitted(&log, 2)?), want);
    // Nothing aborted: read uncommitted, the outputs are the same records.
    for p in 0..2 {
        let h = log.partition("counts", p)?;
        let committed = h
            .clone()
            .with_isolation_level(IsolationLevel::ReadCommitted)
            .records(0, 1 << 30)?;
        assert_eq!(h.records(0, 1 << 30)?.len(), committed.len());
        assert_eq!(h.last_stable_offset(), h.log_end_offset());
    }
    Ok(())
}
