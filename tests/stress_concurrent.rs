//! Everything at once: producers on several topics, a consumer group whose members join and
//! leave on their own threads, retention on a topic with a small `retention_bytes`, compaction
//! of a compacted topic through `Log::maintain`, and topics created and deleted meanwhile, with
//! the flusher running. Bounded by iteration counts, not by time. Checked throughout and at
//! the end: nothing above the log start is lost, offsets are contiguous (gaps only where
//! compaction removed superseded records), order holds per partition, and the group delivers
//! every record once (commits after each poll and on revoke).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use topiclog::{
    CleanupPolicy, Consumer, ConsumerConfig, Log, LogOptions, ProducerConfig, ProducerRecord,
    RebalanceListener, Record, Result, TopicPartition,
};

const JOBS_PARTITIONS: i32 = 4;
const JOBS_PER_PRODUCER: u64 = 1500;
const PRODUCERS: u64 = 2;
const EVENTS: i64 = 3000;
const COMPACTED: i64 = 3000;
const KEYS: i64 = 23;
const CHURN: usize = 40;

struct CommitOnRevoke;
impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(&mut self, consumer: &mut Consumer, _: &[TopicPartition]) {
        consumer.commit().unwrap();
    }
}

/// (partition → offsets delivered, in delivery order) and (partition → values).
type Seen = Arc<Mutex<BTreeMap<i32, Vec<(i64, String)>>>>;

/// A group member on its own thread: polls, records, commits; leaves after `polls` polls, or
/// once `stop` is set and nothing more arrives.
fn member(
    log: &Arc<Log>,
    seen: &Seen,
    stop: &Arc<AtomicBool>,
    polls: Option<usize>,
) -> std::thread::JoinHandle<Result<()>> {
    let (log, seen, stop) = (Arc::clone(log), Arc::clone(seen), Arc::clone(stop));
    std::thread::spawn(move || {
        let mut cfg = ConsumerConfig::group("workers");
        cfg.enable_auto_commit = false;
        cfg.max_poll_records = 41;
        let mut c = log.consumer(cfg)?;
        c.set_rebalance_listener(CommitOnRevoke);
        c.subscribe(&["jobs"])?;
        let mut n = 0;
        loop {
            let recs = c.poll(Duration::from_millis(10))?;
            {
                let mut s = seen.lock().unwrap();
                for r in &recs {
                    let v = String::from_utf8(r.value().unwrap().to_vec()).unwrap();
                    s.entry(r.partition()).or_default().push((r.offset(), v));
                }
            }
            c.commit()?;
            n += 1;
            if polls.is_some_and(|p| n >= p) || (stop.load(Ordering::Acquire) && recs.is_empty()) {
                return c.close();
            }
        }
    })
}

fn event(i: i64) -> String {
    format!("event-{i}-{}", "e".repeat((i % 31) as usize))
}

fn compacted_value(i: i64) -> String {
    format!("c{i}")
}

/// Everything from the log start of `events-<p>` reads back at contiguous offsets, intact.
fn check_events(log: &Log) -> Result<()> {
    for part in 0..2 {
        let p = log.partition("events", part)?;
        let start = p.log_start_offset();
        let got = read_all(&p)?;
        for (k, r) in got.iter().enumerate() {
            assert_eq!(r.offset, start + k as i64, "events-{part}: contiguous");
            assert_eq!(
                r.value.as_deref(),
                Some(event(r.offset).as_bytes()),
                "events-{part}: intact"
            );
        }
        // Reads may race with appends, but never end below what was published before them.
        assert!(start + got.len() as i64 >= p.log_start_offset().min(start));
    }
    Ok(())
}

/// The compacted topic: offsets increase, each record is what was written at its offset, and
/// the latest record of every key below `end` is there.
fn check_compacted(log: &Log, end: i64) -> Result<()> {
    let got = read_all(&log.partition("kv", 0)?)?;
    assert!(got.windows(2).all(|w| w[0].offset < w[1].offset), "order");
    for r in &got {
        assert_eq!(
            r.value.as_deref(),
            Some(compacted_value(r.offset).as_bytes())
        );
        assert_eq!(
            r.key.as_deref(),
            Some(format!("key{}", r.offset % KEYS).as_bytes())
        );
    }
    // A key's latest record below `end` is there, unless a later one (appended since `end` was
    // read) superseded it and is there instead.
    for key in 0..KEYS {
        let latest = (0..end).rev().find(|o| o % KEYS == key);
        let kept = got.iter().rev().find(|r| r.offset % KEYS == key);
        if let Some(o) = latest {
            assert!(
                kept.is_some_and(|r| r.offset >= o),
                "latest of key{key} ({o}) lost"
            );
        }
    }
    Ok(())
}

#[test]
fn producers_group_retention_compaction_and_topic_churn_together() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(
        LogOptions::new()
            .flusher(Some(Duration::from_millis(5)))
            .maintenance_interval(None)
            .open(dir.path())?,
    );
    log.create_topic_with("jobs", JOBS_PARTITIONS, small_segments(8 * 1024))?;
    let mut retained = small_segments(1024);
    retained.retention_bytes = Some(4 * 1024);
    log.create_topic_with("events", 2, retained)?;
    let mut kv = small_segments(1024);
    kv.cleanup_policy = CleanupPolicy::Compact;
    log.create_topic_with("kv", 1, kv)?;

    let done = Arc::new(AtomicUsize::new(0));
    let mut workers: Vec<std::thread::JoinHandle<Result<()>>> = Vec::new();
    // Producers on the group's topic.
    for p in 0..PRODUCERS {
        let producer = log.producer(ProducerConfig::default())?;
        let done = Arc::clone(&done);
        workers.push(std::thread::spawn(move || {
            for i in 0..JOBS_PER_PRODUCER {
                producer.send(
                    ProducerRecord::new("jobs", format!("{p}-{i}")).key(format!("k{}", i % 13)),
                )?;
            }
            done.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }));
    }
    // One writer per retained partition: the value at each offset is known.
    for part in 0..2 {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        workers.push(std::thread::spawn(move || {
            let p = log.partition("events", part)?;
            for i in 0..EVENTS {
                let at = p.append(&[Record::new(event(i)).key("e")])?;
                assert_eq!(at.base_offset, i);
            }
            done.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }));
    }
    // The compacted topic's writer.
    {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        workers.push(std::thread::spawn(move || {
            let p = log.partition("kv", 0)?;
            for i in 0..COMPACTED {
                let r = Record::new(compacted_value(i)).key(format!("key{}", i % KEYS));
                assert_eq!(p.append(&[r])?.base_offset, i);
            }
            done.fetch_add(1, Ordering::AcqRel);
            Ok(())
        }));
    }
    let writers = workers.len();
    // Maintenance (retention and compaction) and checks, until the writers are done.
    let maintenance = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        std::thread::spawn(move || -> Result<(usize, u64)> {
            let (mut deleted, mut compacted, mut rounds) = (0, 0, 0);
            while done.load(Ordering::Acquire) < writers || rounds < 3 {
                let end = log.partition("kv", 0)?.log_end_offset();
                let r = log.maintain()?;
                deleted += r.segments_deleted;
                compacted += r.records_removed;
                rounds += 1;
                check_events(&log)?;
                check_compacted(&log, end)?;
            }
            Ok((deleted, compacted))
        })
    };
    // Topics created, written, read and deleted meanwhile.
    let churn = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || -> Result<()> {
            for i in 0..CHURN {
                let name = format!("tmp-{}", i % 3);
                log.create_topic_with(&name, 2, small_segments(1024))?;
                let p = log.partition(&name, (i % 2) as i32)?;
                for k in 0..20 {
                    assert_eq!(p.append(&[rec(k)])?.base_offset, k as i64);
                }
                assert_eq!(values(&read_all(&p)?).len(), 20);
                log.delete_topic(&name)?;
                assert!(log.partition(&name, 0).is_err());
                assert!(
                    p.append(&[rec(0)]).is_err(),
                    "a deleted topic takes no writes"
                );
            }
            Ok(())
        })
    };
    // The group: two long-lived members, and members joining and leaving meanwhile.
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut members = vec![member(&log, &seen, &stop, None)];
    for k in 0..4 {
        members.push(member(&log, &seen, &stop, Some(20 + 10 * k)));
    }
    members.push(member(&log, &seen, &stop, None));

    for w in workers {
        w.join().expect("a writer thread panicked")?;
    }
    churn.join().expect("the churn thread panicked")?;
    let (deleted, compacted) = maintenance
        .join()
        .expect("the maintenance thread panicked")?;
    assert!(deleted > 0, "retention deleted nothing");
    assert!(compacted > 0, "compaction removed nothing");
    // Let the long-lived members drain the jobs topic (bounded by a poll count, not a clock).
    let total = (PRODUCERS * JOBS_PER_PRODUCER) as usize;
    // (A hang guard only: on any machine this ends long before.)
    for _ in 0..12_000 {
        let n: usize = seen
            .lock()
            .expect("a thread panicked holding the lock")
            .values()
            .map(Vec::len)
            .sum();
        if n >= total {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Release);
    for m in members {
        m.join().expect("a member thread panicked")?;
    }
    {
        let seen = seen.lock().expect("a thread panicked holding the lock");
        let mut delivered = 0;
        for part in 0..JOBS_PARTITIONS {
            let end = log.partition("jobs", part)?.log_end_offset();
            let got = seen.get(&part).cloned().unwrap_or_default();
            let offsets: Vec<i64> = got.iter().map(|(o, _)| *o).collect();
            assert_eq!(
                offsets,
                (0..end).collect::<Vec<_>>(),
                "jobs-{part}: every record once, in order"
            );
            // Each producer's records keep their order within the partition.
            let mut last: BTreeMap<&str, u64> = BTreeMap::new();
            for (_, v) in &got {
                let (producer, i) = v.split_once('-').ok_or("a value without its producer")?;
                let i: u64 = i.parse()?;
                if let Some(prev) = last.insert(producer, i) {
                    assert!(prev < i, "jobs-{part}: producer {producer} out of order");
                }
            }
            delivered += got.len();
        }
        assert_eq!(delivered, total);
    }
    // After everything: the final state checks out, and again after a reopen.
    log.maintain()?;
    check_events(&log)?;
    check_compacted(&log, COMPACTED)?;
    for part in 0..2 {
        assert_eq!(log.partition("events", part)?.log_end_offset(), EVENTS);
    }
    let log = Arc::into_inner(log).ok_or("the log is still shared")?;
    log.close()?;
    let log = open(dir.path())?;
    assert!(log.recovery_report().clean);
    check_events(&log)?;
    check_compacted(&log, COMPACTED)?;
    assert!(log.topics().iter().all(|t| !t.starts_with("tmp-")));
    Ok(())
}

/// Checkpoint writes from several threads at once (user `flush` and `maintain` calls, with the
/// flusher's own periodic checkpoints and maintenance) take turns: none fails because another
/// renamed the shared temp file away, and the files they leave reopen cleanly.
#[test]
fn checkpoint_writers_from_many_threads_take_turns() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(
        LogOptions::new()
            .flusher(Some(Duration::from_millis(1)))
            .maintenance_interval(Some(Duration::from_millis(1)))
            .checkpoint_interval(Duration::ZERO)
            .open(dir.path())?,
    );
    log.create_topic("t", 8)?;
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || -> Result<()> {
                let p = log.partition("t", i)?;
                for n in 0..200 {
                    p.append(&[Record::new(format!("{i}-{n}"))])?;
                    if n % 2 == 0 {
                        log.flush()?;
                    } else {
                        log.maintain()?;
                    }
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a checkpoint writer panicked")?;
    }
    let log = Arc::into_inner(log).ok_or("the log is still shared")?;
    log.close()?;
    let log = open(dir.path())?;
    assert!(log.recovery_report().clean);
    for i in 0..4 {
        assert_eq!(log.partition("t", i)?.log_end_offset(), 200);
    }
    Ok(())
}
