//! The event store through crashes. A seeded workload: two threads append to twelve streams
//! over three partitions, with exact expected versions (racing on the same streams), `Any`
//! appends, retried appends (the same event ids again) and index checkpoints now and then.
//!
//! - In a child process killed with SIGKILL at a seeded random moment (`ROUNDS`, or
//!   `TOPICLOG_ES_KILL_ROUNDS`), under `Os` and `EveryBatch`: after reopening, every stream's
//!   versions in the log run 0, 1, 2, ... with no gap and no duplicate, the store reads exactly
//!   what the log holds, every acknowledged append is there, and appends go on.
//! - Under the simulated power loss with `EveryBatch` (feature `sim`; the index files are on
//!   the simulated disk too): the same, for every acknowledged append.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use topiclog::eventstore::{EventData, EventId, EventStore, EventStoreConfig, ReadDirection};
use topiclog::{Error, ExpectedVersion, FlushPolicy, Log, TopicConfig};

const CHILD_DIR: &str = "TOPICLOG_ES_CHILD_DIR";
const CHILD_SEED: &str = "TOPICLOG_ES_CHILD_SEED";
const ROUNDS: u64 = 50;
const TOPIC: &str = "events";
const STREAMS: u64 = 12;

use common::xorshift as next;

fn store_config(policy: FlushPolicy) -> EventStoreConfig {
    let mut topic_config: TopicConfig = small_segments(8192);
    topic_config.flush_policy = policy;
    EventStoreConfig {
        partitions: 3,
        topic_config,
        ..EventStoreConfig::default()
    }
}

/// Runs `steps` appends per thread from `seed`, calling `ack(stream, first, last)` for each
/// acknowledged append. Stops at the first error other than a lost race.
fn workload(
    store: &EventStore<'_>,
    seed: u64,
    steps: u64,
    ack: &(dyn Fn(&str, u64, u64) + Sync),
) -> TestResult {
    std::thread::scope(|t| {
        let handles: Vec<_> = (0..2u64)
            .map(|thread| {
                t.spawn(move || -> TestResult {
                    let mut seed = (seed ^ (thread + 1).wrapping_mul(0x9e37_79b9)) | 1;
                    for step in 0..steps {
                        let stream = format!("s{}", next(&mut seed) % STREAMS);
                        let n = 1 + next(&mut seed) % 3;
                        let events: Vec<EventData> = (0..n)
                            .map(|i| EventData::new("E", format!("{thread}-{step}-{i}")))
                            .collect();
                        let kind = next(&mut seed) % 10;
                        let expected = if kind < 6 {
                            match store.stream_version(&stream)? {
                                None => ExpectedVersion::NoStream,
                                Some(v) => ExpectedVersion::Exact(v),
                            }
                        } else {
                            ExpectedVersion::Any
                        };
                        match store.append(&stream, expected, &events) {
                            Ok(w) => {
                                ack(&stream, w.first_version, w.last_version);
                                if kind == 9 {
                                    // A retry: the same ids again give the same result.
                                    let again = store.append(&stream, expected, &events)?;
                                    assert_eq!(again, w, "a retry appended again");
                                }
                            }
                            Err(Error::WrongExpectedVersion { .. }) => {}
                            Err(e) => return Err(e.into()),
                        }
                        if next(&mut seed).is_multiple_of(200) {
                            store.checkpoint()?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let mut first_err = None;
        for h in handles {
            if let Err(e) = h.join().expect("workload thread") {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

/// Per stream, the versions the log holds in log order (headers read straight from the
/// records, not through the store).
fn log_versions(log: &Log) -> TestResult<BTreeMap<String, Vec<u64>>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for p in 0..3 {
        let h = log.partition(TOPIC, p)?;
        let mut at = h.log_start_offset();
        while at < h.high_watermark() {
            let recs = h.records(at, 1 << 20)?;
            let Some(last) = recs.last() else { break };
            at = last.offset + 1;
            for r in recs {
                let key = String::from_utf8(r.key.unwrap().to_vec())?;
                let v = r
                    .headers
                    .iter()
                    .find(|h| h.key == "es.version")
                    .and_then(|h| h.value.as_deref())
                    .ok_or("an event without a version")?;
                out.entry(key)
                    .or_default()
                    .push(u64::from_be_bytes(v.try_into()?));
            }
        }
    }
    Ok(out)
}

fn check_after_crash(
    log: &Log,
    acked: &BTreeMap<String, BTreeSet<u64>>,
    label: &str,
) -> TestResult {
    let in_log = log_versions(log)?;
    for (stream, versions) in &in_log {
        let want: Vec<u64> = (0..versions.len() as u64).collect();
        assert_eq!(
            versions, &want,
            "{label}: stream {stream} has a gap or a duplicate version in the log"
        );
    }
    for (stream, versions) in acked {
        let have = in_log.get(stream).map_or(0, Vec::len) as u64;
        for v in versions {
            assert!(
                *v < have,
                "{label}: acknowledged version {v} of {stream} is missing (the log has {have})"
            );
        }
    }
    let store = EventStore::open(log, TOPIC, &store_config(FlushPolicy::Os))?;
    for r in store.index_report() {
        assert!(r.gaps.is_empty(), "{label}: {r:?}");
        assert_eq!(r.duplicate_versions, 0, "{label}: {r:?}");
    }
    for s in 0..STREAMS {
        let stream = format!("s{s}");
        let read: Vec<u64> = store
            .read_stream(&stream, 0, ReadDirection::Forwards, usize::MAX)?
            .events
            .iter()
            .map(|e| e.version)
            .collect();
        let want = in_log.get(&stream).cloned().unwrap_or_default();
        assert_eq!(
            read, want,
            "{label}: the store reads {stream} unlike the log"
        );
        // And it goes on from there.
        let expected = match want.last() {
            None => ExpectedVersion::NoStream,
            Some(v) => ExpectedVersion::Exact(*v),
        };
        let w = store.append(
            &stream,
            expected,
            &[EventData::new("After", "x").id(EventId::new())],
        )?;
        assert_eq!(w.first_version, want.len() as u64, "{label}");
    }
    store.close()?;
    Ok(())
}

/// The child: runs the workload until killed, printing each acknowledged append.
#[test]
fn es_crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let log = topiclog::LogOptions::new().open(&dir).unwrap();
    let store = EventStore::open(&log, TOPIC, &store_config(FlushPolicy::Os)).unwrap();
    let out = std::sync::Mutex::new(std::io::stdout());
    workload(&store, seed, u64::MAX, &|s, a, b| {
        use std::io::Write;
        let mut o = out.lock().unwrap();
        let _ = writeln!(o, "ack {s} {a} {b}");
        let _ = o.flush();
    })
    .unwrap();
}

#[test]
#[cfg(unix)]
fn killed_mid_append_no_stream_has_a_gap_or_a_duplicate() -> TestResult {
    let rounds = env_rounds("TOPICLOG_ES_KILL_ROUNDS", ROUNDS);
    let mut seed = 0x0e5_c0de_0000_0001u64;
    for round in 0..rounds {
        let policy = if round % 2 == 0 {
            FlushPolicy::Os
        } else {
            FlushPolicy::EveryBatch
        };
        let dir = tempfile::tempdir()?;
        {
            let log = open(dir.path())?;
            let store = EventStore::open(&log, TOPIC, &store_config(policy))?;
            // Some history first, so a kill also lands after checkpoints and reopens.
            if round % 4 == 3 {
                workload(&store, next(&mut seed), 20, &|_, _, _| {})?;
            }
            store.close()?;
            log.close()?;
        }
        let envs = [
            (CHILD_DIR, dir.path().display().to_string()),
            (CHILD_SEED, next(&mut seed).to_string()),
        ];
        let kill_after = Duration::from_millis(2 + next(&mut seed) % 60);
        let (acked, errors) = run_and_kill(
            "es_crash_child",
            &envs,
            kill_after,
            BTreeMap::<String, BTreeSet<u64>>::new(),
            |acked, line| {
                let f: Vec<&str> = line.split(' ').collect();
                if f.len() != 4 || f[0] != "ack" {
                    return false;
                }
                let (Ok(a), Ok(b)) = (f[2].parse::<u64>(), f[3].parse::<u64>()) else {
                    return false;
                };
                acked.entry(f[1].to_string()).or_default().extend(a..=b);
                true
            },
        )?;
        assert!(
            !acked.is_empty(),
            "round {round}: the child acknowledged nothing; its stderr:\n{errors}"
        );
        let log = open(dir.path())?;
        check_after_crash(&log, &acked, &format!("round {round}"))?;
        log.close()?;
    }
    Ok(())
}

#[cfg(feature = "sim")]
#[test]
fn power_loss_under_every_batch_keeps_acknowledged_events() -> TestResult {
    use std::sync::Mutex;
    use topiclog::sim::SimFs;
    let rounds = env_rounds("TOPICLOG_ES_POWER_LOSS_ROUNDS", 30);
    let mut seed = 0x9e5_3e71_0000_0001u64;
    let mut acknowledged = 0;
    for round in 0..rounds {
        let dir = tempfile::tempdir()?;
        let sim = SimFs::install(dir.path())?;
        let log = sim_options().open(dir.path())?;
        let store = EventStore::open(&log, TOPIC, &store_config(FlushPolicy::EveryBatch))?;
        sim.cut_power_after(1 + next(&mut seed) % 2000);
        let acked: Mutex<BTreeMap<String, BTreeSet<u64>>> = Mutex::new(BTreeMap::new());
        let _ = workload(&store, next(&mut seed), 150, &|s, a, b| {
            acked
                .lock()
                .unwrap()
                .entry(s.to_string())
                .or_default()
                .extend(a..=b);
        });
        sim.cut_power();
        store.abandon();
        log.abandon();
        let _ = sim.power_loss(next(&mut seed))?;
        let log = sim_options().open(dir.path())?;
        let acked = acked.into_inner().unwrap();
        acknowledged += acked.values().map(BTreeSet::len).sum::<usize>();
        check_after_crash(&log, &acked, &format!("round {round}"))?;
        log.close()?;
    }
    assert!(
        acknowledged > 0,
        "no append was acknowledged before a power cut"
    );
    Ok(())
}
