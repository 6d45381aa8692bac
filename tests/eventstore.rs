//! The event store: per-stream expected versions, idempotent retries, stream and `$all`
//! reads, subscriptions, snapshots, metadata, and an index that is a checked cache of the log.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use topiclog::eventstore::{
    AllPosition, EventData, EventId, EventStore, EventStoreConfig, ReadDirection, StreamMetadata,
};
use topiclog::{CleanupPolicy, Error, ExpectedVersion, Header, Log, Record, TopicConfig};

fn config(partitions: i32) -> EventStoreConfig {
    EventStoreConfig {
        partitions,
        ..EventStoreConfig::default()
    }
}

fn ev(kind: &str, n: u64) -> EventData {
    EventData::new(kind, n.to_string())
}

fn versions(store: &EventStore<'_>, stream: &str) -> Vec<u64> {
    store
        .read_stream(stream, 0, ReadDirection::Forwards, usize::MAX)
        .expect("read")
        .events
        .iter()
        .map(|e| e.version)
        .collect()
}

#[test]
fn expected_versions_follow_eventstoredb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    let s = "order-1";
    assert!(matches!(
        store.append(s, ExpectedVersion::StreamExists, &[ev("A", 0)]),
        Err(Error::WrongExpectedVersion { actual: None, .. })
    ));
    assert!(matches!(
        store.append(s, ExpectedVersion::Exact(0), &[ev("A", 0)]),
        Err(Error::WrongExpectedVersion { actual: None, .. })
    ));
    let w = store
        .append(s, ExpectedVersion::NoStream, &[ev("A", 0), ev("B", 1)])
        .expect("first append");
    assert_eq!((w.first_version, w.last_version), (0, 1));
    assert!(matches!(
        store.append(s, ExpectedVersion::NoStream, &[ev("C", 2)]),
        Err(Error::WrongExpectedVersion {
            actual: Some(1),
            ..
        })
    ));
    assert!(matches!(
        store.append(s, ExpectedVersion::Exact(0), &[ev("C", 2)]),
        Err(Error::WrongExpectedVersion {
            actual: Some(1),
            ..
        })
    ));
    let w = store
        .append(s, ExpectedVersion::Exact(1), &[ev("C", 2)])
        .expect("exact");
    assert_eq!(w.first_version, 2);
    let w = store
        .append(s, ExpectedVersion::StreamExists, &[ev("D", 3)])
        .expect("exists");
    assert_eq!(w.first_version, 3);
    let w = store
        .append(s, ExpectedVersion::Any, &[ev("E", 4)])
        .expect("any");
    assert_eq!(w.first_version, 4);
    assert_eq!(versions(&store, s), [0, 1, 2, 3, 4]);
    assert_eq!(store.stream_version(s).expect("version"), Some(4));
    assert_eq!(store.stream_version("nope").expect("version"), None);
    let e = store
        .append(s, ExpectedVersion::Exact(9), &[ev("X", 9)])
        .expect_err("wrong");
    assert_eq!(
        e.to_string(),
        "stream 'order-1': expected version 9, but its last event has version 4"
    );
    // Nothing of a refused append is in the log.
    assert_eq!(log.partition("es", 0).expect("p").log_end_offset(), 5);
}

#[test]
fn streams_sharing_a_partition_never_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    for i in 0..50u64 {
        for s in ["a", "b", "c"] {
            let expected = if i == 0 {
                ExpectedVersion::NoStream
            } else {
                ExpectedVersion::Exact(i - 1)
            };
            store.append(s, expected, &[ev("E", i)]).expect("append");
        }
    }
    for s in ["a", "b", "c"] {
        assert_eq!(versions(&store, s), (0..50).collect::<Vec<_>>());
    }
}

#[test]
fn exactly_one_of_two_racing_writers_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(2)).expect("store");
    let rounds = 200u64;
    let wins = AtomicUsize::new(0);
    let losses = AtomicUsize::new(0);
    std::thread::scope(|t| {
        for _ in 0..4 {
            t.spawn(|| {
                for v in 0..rounds {
                    let expected = if v == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(v - 1)
                    };
                    // Each thread tries to write version v of the same stream; the losers
                    // wait for it to exist before trying the next.
                    match store.append("hot", expected, &[ev("E", v)]) {
                        Ok(w) => {
                            assert_eq!(w.first_version, v);
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Error::WrongExpectedVersion { actual, .. }) => {
                            assert!(actual.is_none_or(|a| a >= v.saturating_sub(1)));
                            losses.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("{e}"),
                    }
                    while store
                        .stream_version("hot")
                        .expect("v")
                        .is_none_or(|c| c < v)
                    {
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    assert_eq!(wins.load(Ordering::Relaxed), rounds as usize);
    assert_eq!(losses.load(Ordering::Relaxed), 3 * rounds as usize);
    assert_eq!(versions(&store, "hot"), (0..rounds).collect::<Vec<_>>());
}

#[test]
fn concurrent_any_appends_get_distinct_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    std::thread::scope(|t| {
        for _ in 0..4 {
            t.spawn(|| {
                for i in 0..100 {
                    store
                        .append("s", ExpectedVersion::Any, &[ev("E", i), ev("F", i)])
                        .expect("any");
                }
            });
        }
    });
    assert_eq!(versions(&store, "s"), (0..800).collect::<Vec<_>>());
}

#[test]
fn a_retried_append_returns_the_first_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    let batch = [ev("A", 0), ev("B", 1)];
    let first = store
        .append("s", ExpectedVersion::NoStream, &batch)
        .expect("append");
    store
        .append("other", ExpectedVersion::Any, &[ev("X", 0)])
        .expect("other");
    // The retry expects what the first expected: it still gets the first result.
    let again = store
        .append("s", ExpectedVersion::NoStream, &batch)
        .expect("retry");
    assert_eq!(first, again);
    assert_eq!(versions(&store, "s"), [0, 1]);
    // A prefix of the same append is a retry too.
    let again = store
        .append("s", ExpectedVersion::Any, &batch[..1])
        .expect("prefix");
    assert_eq!(again.first_version, 0);
    // Reusing the ids for other events or another stream is refused.
    assert!(matches!(
        store.append("s", ExpectedVersion::Any, &[batch[0].clone(), ev("C", 2)]),
        Err(Error::EventIdReused { .. })
    ));
    assert!(matches!(
        store.append("t", ExpectedVersion::Any, &batch),
        Err(Error::EventIdReused { .. })
    ));
    assert_eq!(versions(&store, "s"), [0, 1]);
    // After a reopen, the window is refilled from the log.
    store.close().expect("close");
    drop(log);
    let log = Log::open(dir.path()).expect("reopen");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    let again = store
        .append("s", ExpectedVersion::NoStream, &batch)
        .expect("retry after reopen");
    assert_eq!(first, again);
    assert_eq!(versions(&store, "s"), [0, 1]);
}

#[test]
fn stream_reads_seek_by_version_in_both_directions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(3)).expect("store");
    let mut model: HashMap<String, u64> = HashMap::new();
    // Interleaved streams of very different lengths, some appends of several events.
    let mut n = 0u64;
    for i in 0..3000u64 {
        let s = match i % 7 {
            0..=3 => "long".to_string(),
            4 => format!("mid-{}", i % 3),
            _ => format!("short-{i}"),
        };
        let k = 1 + (i % 3);
        let events: Vec<EventData> = (0..k).map(|j| ev("E", n + j)).collect();
        n += k;
        store
            .append(&s, ExpectedVersion::Any, &events)
            .expect("append");
        *model.entry(s).or_default() += k;
    }
    let len = model["long"];
    for from in [0, 1, 2, 5, 100, 1000, len - 3, len - 1, len, len + 10] {
        for max in [1usize, 3, 20, 50, 10_000] {
            let got = store
                .read_stream("long", from, ReadDirection::Forwards, max)
                .expect("read");
            let want: Vec<u64> = (from..len).take(max).collect();
            assert_eq!(
                got.events.iter().map(|e| e.version).collect::<Vec<_>>(),
                want,
                "forwards from {from} max {max}"
            );
            let got = store
                .read_stream("long", from, ReadDirection::Backwards, max)
                .expect("read");
            let top = from.min(len - 1);
            let want: Vec<u64> = (0..=top).rev().take(max).collect();
            assert_eq!(
                got.events.iter().map(|e| e.version).collect::<Vec<_>>(),
                want,
                "backwards from {from} max {max}"
            );
            assert!(got.events.iter().all(|e| e.stream == "long"));
        }
    }
    for (s, len) in &model {
        assert_eq!(versions(&store, s), (0..*len).collect::<Vec<_>>(), "{s}");
    }
    let e = &store
        .read_stream("long", 0, ReadDirection::Forwards, 1)
        .expect("read")
        .events[0];
    assert_eq!(e.event_type, "E");
    assert_eq!(e.position.partition, store.partition_of("long"));
}

#[test]
fn events_are_ordinary_records_for_kafka_consumers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(4)).expect("store");
    let id = EventId::new();
    let w = store
        .append(
            "cart-9",
            ExpectedVersion::NoStream,
            &[EventData::new("Added", "sku-1")
                .id(id)
                .header(Header::new("trace", "t-1"))
                .timestamp(1_700_000_000_000)],
        )
        .expect("append");
    assert_eq!(
        w.first_position.partition,
        topiclog::partition_for_key(b"cart-9", 4)
    );
    let p = log.partition("es", w.first_position.partition).expect("p");
    let rec = &p.records(0, 1 << 20).expect("records")[0];
    assert_eq!(rec.key.as_deref(), Some(&b"cart-9"[..]));
    assert_eq!(rec.value.as_deref(), Some(&b"sku-1"[..]));
    assert_eq!(rec.timestamp, 1_700_000_000_000);
    let h: HashMap<&str, Option<&[u8]>> = rec
        .headers
        .iter()
        .map(|h| (h.key.as_str(), h.value.as_deref()))
        .collect();
    assert_eq!(h["es.version"], Some(&0u64.to_be_bytes()[..]));
    assert_eq!(h["es.type"], Some(&b"Added"[..]));
    assert_eq!(h["es.id"], Some(&id.0[..]));
    assert_eq!(h["trace"], Some(&b"t-1"[..]));
    let got = &store
        .read_stream("cart-9", 0, ReadDirection::Forwards, 10)
        .expect("read")
        .events[0];
    assert_eq!(got.id, id);
    assert_eq!(got.headers, vec![Header::new("trace", "t-1")]);
    assert!(matches!(
        store.append(
            "cart-9",
            ExpectedVersion::Any,
            &[EventData::new("X", "").header(Header::new("es.version", "1"))]
        ),
        Err(Error::InvalidConfig { .. })
    ));
    assert_eq!(EventId::parse(&id.to_string()).expect("parse"), id);
}

#[test]
fn writes_outside_the_store_are_caught_up_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    store
        .append("s", ExpectedVersion::NoStream, &[ev("A", 0)])
        .expect("append");
    let p = log.partition("es", 0).expect("p");
    // A plain record (not an event) and an event written by hand with the store's headers.
    p.append(&[Record::new("not an event").key("s")])
        .expect("plain");
    p.append(&[Record::new("by hand")
        .key("s")
        .header(Header::new("es.version", 1u64.to_be_bytes().to_vec()))
        .header(Header::new("es.type", "Manual"))])
        .expect("manual");
    // The store notices the offsets it did not write and reads them before checking.
    assert!(matches!(
        store.append("s", ExpectedVersion::Exact(0), &[ev("B", 1)]),
        Err(Error::WrongExpectedVersion {
            actual: Some(1),
            ..
        })
    ));
    store
        .append("s", ExpectedVersion::Exact(1), &[ev("B", 2)])
        .expect("append");
    assert_eq!(versions(&store, "s"), [0, 1, 2]);
    let report = &store.index_report()[0];
    assert_eq!(report.foreign_records, 1);
}

#[test]
fn the_index_reopens_from_its_checkpoint_and_rebuilds_when_it_is_ahead_of_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = Log::open(dir.path()).expect("open");
        let store = EventStore::open(&log, "es", &config(2)).expect("store");
        for i in 0..100 {
            store
                .append(&format!("s{}", i % 10), ExpectedVersion::Any, &[ev("E", i)])
                .expect("append");
        }
        store.close().expect("close");
    }
    let first_run = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), first_run.path());
    {
        let log = Log::open(dir.path()).expect("open");
        let store = EventStore::open(&log, "es", &config(2)).expect("store");
        let r = store.index_report();
        assert!(
            r.iter()
                .all(|r| r.from_checkpoint && r.records_replayed == 0),
            "{r:?}"
        );
        assert_eq!(store.index_stats().events, 100);
        // Events appended after the checkpoint, then a crash (no close, no checkpoint).
        for i in 0..10 {
            store
                .append("s0", ExpectedVersion::Any, &[ev("E", i)])
                .expect("append");
        }
        store.abandon();
    }
    // The log as it was before the crashed process's appends: what a power loss under `Os`
    // could leave of it.
    let before = tempfile::tempdir().expect("tempdir");
    let copy = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), copy.path());
    {
        let log = Log::open(copy.path()).expect("open copy");
        let store = EventStore::open(&log, "es", &config(2)).expect("store");
        let replayed: u64 = store
            .index_report()
            .iter()
            .map(|r| r.records_replayed)
            .sum();
        assert_eq!(replayed, 10);
        assert_eq!(versions(&store, "s0").len(), 20);
        store.close().expect("close");
        log.close().expect("close log");
    }
    // Build that: the log of the first run, the index checkpoint of the second (covering
    // ten more events), so the index is ahead of the log.
    copy_dir(dir.path(), before.path());
    let p = store_partition("s0", 2);
    let partition_dir = format!("es-{p}");
    std::fs::remove_dir_all(before.path().join(&partition_dir)).expect("rm");
    std::fs::create_dir_all(before.path().join(&partition_dir)).expect("mkdir");
    copy_dir(
        &first_run.path().join(&partition_dir),
        &before.path().join(&partition_dir),
    );
    std::fs::remove_dir_all(before.path().join(".eventstore")).expect("rm index");
    std::fs::create_dir_all(before.path().join(".eventstore")).expect("mkdir");
    copy_dir(
        &copy.path().join(".eventstore"),
        &before.path().join(".eventstore"),
    );
    {
        let log = Log::open(before.path()).expect("open");
        let store = EventStore::open(&log, "es", &config(2)).expect("store");
        // The engine raises the end to its recovery point (a gap) and reports the damage; the
        // index's newest entries then name records the log lacks, so it is rebuilt.
        assert!(log.recovery_report().damaged().next().is_some());
        let r = &store.index_report()[p as usize];
        assert!(!r.from_checkpoint);
        assert!(r.rebuilt.is_some(), "{r:?}");
        let v = versions(&store, "s0");
        assert_eq!(v, (0..10).collect::<Vec<_>>());
        // Appends continue from what the log holds: no gap, no duplicate.
        store
            .append("s0", ExpectedVersion::Exact(9), &[ev("E", 10)])
            .expect("append");
        assert_eq!(versions(&store, "s0"), (0..11).collect::<Vec<_>>());
    }
}

fn store_partition(stream: &str, n: i32) -> i32 {
    topiclog::partition_for_key(stream.as_bytes(), n)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&e.path(), &target);
        } else if e.file_name() != ".lock" {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn a_damaged_or_missing_index_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = Log::open(dir.path()).expect("open");
        let store = EventStore::open(&log, "es", &config(1)).expect("store");
        for i in 0..50 {
            store
                .append(&format!("s{}", i % 5), ExpectedVersion::Any, &[ev("E", i)])
                .expect("append");
        }
        store.close().expect("close");
    }
    let heads = dir.path().join(".eventstore/es/0.heads");
    let mut bytes = std::fs::read(&heads).expect("heads");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&heads, &bytes).expect("damage");
    {
        let log = Log::open(dir.path()).expect("open");
        let store = EventStore::open(&log, "es", &config(1)).expect("store");
        let r = &store.index_report()[0];
        assert!(
            r.rebuilt.as_deref().is_some_and(|m| m.contains("checksum")),
            "{r:?}"
        );
        for s in 0..5 {
            assert_eq!(
                versions(&store, &format!("s{s}")),
                (0..10).collect::<Vec<_>>()
            );
        }
        store.close().expect("close");
    }
    // Entries file damaged in place: the checkpoint's newest entries no longer match.
    let entries = dir.path().join(".eventstore/es/0.entries");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&entries)
        .expect("entries");
    f.set_len(0).expect("cut");
    drop(f);
    {
        let log = Log::open(dir.path()).expect("open");
        let store = EventStore::open(&log, "es", &config(1)).expect("store");
        assert!(store.index_report()[0].rebuilt.is_some());
        assert_eq!(versions(&store, "s3"), (0..10).collect::<Vec<_>>());
        store.close().expect("close");
    }
    std::fs::remove_dir_all(dir.path().join(".eventstore")).expect("remove index");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    assert_eq!(store.index_stats().events, 50);
    assert_eq!(versions(&store, "s4"), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_gap_in_the_log_is_reported_not_renumbered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    log.create_topic("es", 1).expect("topic");
    let p = log.partition("es", 0).expect("p");
    let event = |v: u64| {
        Record::new(format!("v{v}"))
            .key("s")
            .header(Header::new("es.version", v.to_be_bytes().to_vec()))
            .header(Header::new("es.type", "E"))
    };
    // Versions 0, 1, then 4: 2 and 3 are missing (as if damage took them).
    for v in [0, 1, 4] {
        p.append(&[event(v)]).expect("append");
    }
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    let r = &store.index_report()[0];
    assert_eq!(r.gaps.len(), 1);
    assert_eq!((r.gaps[0].first_missing, r.gaps[0].last_missing), (2, 3));
    assert_eq!(versions(&store, "s"), [0, 1, 4]);
    assert_eq!(store.stream_version("s").expect("v"), Some(4));
    let w = store
        .append("s", ExpectedVersion::Exact(4), &[ev("E", 5)])
        .expect("append");
    assert_eq!(w.first_version, 5);
}

#[test]
fn event_topics_refuse_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let mut c = TopicConfig::new();
    c.cleanup_policy = CleanupPolicy::Compact;
    log.create_topic_with("compacted", 1, c.clone())
        .expect("topic");
    assert!(matches!(
        EventStore::open(&log, "compacted", &config(1)),
        Err(Error::InvalidConfig { .. })
    ));
    let cfg = EventStoreConfig {
        topic_config: c.clone(),
        ..EventStoreConfig::default()
    };
    assert!(matches!(
        EventStore::open(&log, "new", &cfg),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(!log.topics().contains(&"new".to_string()));
    // One store per topic at a time in a process.
    let a = EventStore::open(&log, "es", &config(1)).expect("store");
    assert!(matches!(
        EventStore::open(&log, "es", &config(1)),
        Err(Error::InvalidConfig { .. })
    ));
    drop(a);
    let store = EventStore::open(&log, "es", &config(1)).expect("again after drop");
    store
        .append("s", ExpectedVersion::Any, &[ev("E", 0)])
        .expect("append");
    // Altering an event topic to compaction is refused, open or not.
    assert!(matches!(
        log.alter_topic_config("es", c.clone()),
        Err(Error::InvalidConfig { .. })
    ));
    store.close().expect("close");
    assert!(matches!(
        log.alter_topic_config("es", c),
        Err(Error::InvalidConfig { .. })
    ));
    // So is cutting its tail, and growing it (streams would move to other partitions).
    assert!(matches!(
        log.partition("es", 0).expect("p").truncate_to(0),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        log.add_partitions("es", 2),
        Err(Error::InvalidConfig { .. })
    ));
    // Deleting the topic takes its index with it; a new topic of the name starts afresh.
    log.delete_topic("es").expect("delete");
    assert!(!dir.path().join(".eventstore/es").exists());
    let store = EventStore::open(&log, "es", &config(1)).expect("a new event topic");
    assert_eq!(store.stream_version("s").expect("v"), None);
}

#[test]
fn snapshots_and_the_events_after_them_rebuild_an_aggregate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(2)).expect("store");
    for i in 0..10u64 {
        store
            .append("acct", ExpectedVersion::Any, &[ev("Deposited", i)])
            .expect("append");
    }
    assert!(store.load_snapshot("acct").expect("load").is_none());
    assert!(matches!(
        store.save_snapshot("acct", 10, b"too new"),
        Err(Error::InvalidConfig { .. })
    ));
    store.save_snapshot("acct", 3, b"sum=6").expect("save");
    store.save_snapshot("acct", 6, b"sum=21").expect("save");
    let snap = store
        .load_snapshot("acct")
        .expect("load")
        .expect("a snapshot");
    assert_eq!((snap.version, &snap.data[..]), (6, &b"sum=21"[..]));
    let tail = store
        .read_stream("acct", snap.version + 1, ReadDirection::Forwards, 100)
        .expect("tail");
    assert_eq!(
        tail.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [7, 8, 9]
    );
    store.close().expect("close");
    drop(log);
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(2)).expect("store");
    assert_eq!(
        store
            .load_snapshot("acct")
            .expect("load")
            .expect("kept")
            .version,
        6
    );
    assert_eq!(
        log.describe_topic("es-snapshots")
            .expect("topic")
            .config
            .cleanup_policy,
        CleanupPolicy::Compact
    );
}

#[test]
fn stream_metadata_limits_reads_and_soft_delete_hides_a_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    for i in 0..10u64 {
        store
            .append("s", ExpectedVersion::Any, &[ev("E", i)])
            .expect("append");
    }
    store
        .set_stream_metadata(
            "s",
            &StreamMetadata {
                max_count: Some(3),
                ..StreamMetadata::default()
            },
        )
        .expect("meta");
    assert_eq!(versions(&store, "s"), [7, 8, 9]);
    store
        .set_stream_metadata(
            "s",
            &StreamMetadata {
                truncate_before: Some(5),
                ..StreamMetadata::default()
            },
        )
        .expect("meta");
    assert_eq!(versions(&store, "s"), [5, 6, 7, 8, 9]);
    let back = store
        .read_stream("s", u64::MAX, ReadDirection::Backwards, 100)
        .expect("back");
    assert_eq!(
        back.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [9, 8, 7, 6, 5]
    );
    assert!(matches!(
        store.delete_stream("s", ExpectedVersion::Exact(3)),
        Err(Error::WrongExpectedVersion { .. })
    ));
    store
        .delete_stream("s", ExpectedVersion::Exact(9))
        .expect("delete");
    let read = store
        .read_stream("s", 0, ReadDirection::Forwards, 100)
        .expect("read");
    assert!(read.events.is_empty());
    assert_eq!(read.last_version, Some(9));
    // Appending again continues the versions; only the new events are visible.
    store
        .append("s", ExpectedVersion::Any, &[ev("E", 10)])
        .expect("append");
    assert_eq!(versions(&store, "s"), [10]);
    // The metadata survives a reopen, in EventStoreDB's JSON.
    store.close().expect("close");
    drop(log);
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    assert_eq!(store.stream_metadata("s").truncate_before, Some(10));
    let raw = log
        .partition("es-metadata", 0)
        .expect("p")
        .records(0, 1 << 20)
        .expect("records");
    let last = raw.last().expect("a record");
    assert_eq!(last.value.as_deref(), Some(&br#"{"$tb":10}"#[..]));
}

#[test]
fn subscriptions_catch_up_then_follow_and_resume_from_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(3)).expect("store");
    for i in 0..30u64 {
        store
            .append(&format!("s{}", i % 3), ExpectedVersion::Any, &[ev("E", i)])
            .expect("append");
    }
    let mut all = store
        .subscribe_to_all(AllPosition::start(3))
        .expect("subscribe");
    let mut stream = store.subscribe_to_stream("s1", 4).expect("subscribe");
    let mut seen = 0;
    while let Some(_e) = all.next(Duration::from_millis(10)).expect("next") {
        seen += 1;
    }
    assert_eq!(seen, 30);
    let mut versions_seen = Vec::new();
    while let Some(e) = stream.next(Duration::from_millis(10)).expect("next") {
        versions_seen.push(e.version);
    }
    assert_eq!(versions_seen, (4..10).collect::<Vec<_>>());
    // Live: an append on another thread wakes both.
    std::thread::scope(|t| {
        t.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            store
                .append("s1", ExpectedVersion::Exact(9), &[ev("Late", 99)])
                .expect("append");
        });
        let e = stream
            .next(Duration::from_secs(30))
            .expect("next")
            .expect("woken by the append");
        assert_eq!((e.version, e.event_type.as_str()), (10, "Late"));
        let e = all
            .next(Duration::from_secs(30))
            .expect("next")
            .expect("woken by the append");
        assert_eq!(e.event_type, "Late");
    });
    all.checkpoint("projector").expect("checkpoint");
    stream.checkpoint("s1-projector").expect("checkpoint");
    drop(all);
    drop(stream);
    store
        .append("s2", ExpectedVersion::Any, &[ev("After", 100)])
        .expect("append");
    store
        .append("s1", ExpectedVersion::Any, &[ev("After", 101)])
        .expect("append");
    let mut all = store
        .subscribe_to_all_from_checkpoint("projector")
        .expect("resume");
    let mut got = Vec::new();
    while let Some(e) = all.next(Duration::from_millis(10)).expect("next") {
        got.push(e.event_type);
    }
    assert_eq!(got, ["After", "After"]);
    let mut s1 = store
        .subscribe_to_stream_from_checkpoint("s1-projector", "s1")
        .expect("resume");
    let e = s1
        .next(Duration::from_millis(10))
        .expect("next")
        .expect("one");
    assert_eq!(e.version, 11);
    assert!(s1.next(Duration::from_millis(10)).expect("next").is_none());
    // Kafka tools see the checkpoint as the group's offsets.
    assert!(log.list_groups().contains(&"projector".to_string()));
}

#[test]
fn read_all_pages_through_every_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(4)).expect("store");
    for i in 0..200u64 {
        store
            .append(
                &format!("s{}", i % 17),
                ExpectedVersion::Any,
                &[ev("E", i), ev("F", i)],
            )
            .expect("append");
    }
    let mut pos = AllPosition::start(4);
    let mut per_stream: HashMap<String, Vec<u64>> = HashMap::new();
    loop {
        let (events, next) = store.read_all(&pos, 33).expect("read_all");
        if events.is_empty() {
            break;
        }
        assert!(events.len() <= 33);
        for e in events {
            per_stream
                .entry(e.stream.to_string())
                .or_default()
                .push(e.version);
        }
        pos = next;
    }
    let total: usize = per_stream.values().map(Vec::len).sum();
    assert_eq!(total, 400);
    for v in per_stream.values() {
        assert_eq!(*v, (0..v.len() as u64).collect::<Vec<_>>());
    }
    assert_eq!(pos, store.end_position());
}

#[test]
fn reads_and_subscriptions_step_over_events_retention_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("open");
    let store = EventStore::open(&log, "es", &config(1)).expect("store");
    for i in 0..700u64 {
        store
            .append("s", ExpectedVersion::Any, &[ev("E", i)])
            .expect("append");
    }
    // Kafka's DeleteRecords (as retention would): the first 600 events are gone.
    log.partition("es", 0)
        .expect("p")
        .delete_records(600)
        .expect("delete records");
    let read = store
        .read_stream("s", 0, ReadDirection::Forwards, 100)
        .expect("read");
    assert!(read.events.is_empty());
    assert_eq!(read.removed_by_retention, 100);
    assert_eq!(read.next_version, Some(100));
    let mut sub = store.subscribe_to_stream("s", 0).expect("subscribe");
    let first = sub
        .next(Duration::from_secs(5))
        .expect("next")
        .expect("the first event left");
    assert_eq!(first.version, 600);
    // A snapshot of an event still there loads; its event must be the one at its version.
    store.save_snapshot("s", 650, b"state").expect("save");
    assert_eq!(
        store.load_snapshot("s").expect("load").map(|s| s.version),
        Some(650)
    );
}
