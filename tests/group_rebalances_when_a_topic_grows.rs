//! A stable group rebalances when a topic its members subscribe to grows (`add_partitions`) or
//! is created after they subscribed, as Kafka's does: the new partitions are consumed with no
//! member joining or leaving, and every record exactly once across the members.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use topiclog::{ConsumerConfig, GroupState, Log, Record, Result};

/// (partition, offset) of every record the members were handed, duplicates kept.
type Seen = Arc<Mutex<Vec<(i32, i64)>>>;

/// A member of group `g` on topic `t` that polls until `stop`, recording what it reads. It
/// commits on revoke (auto-commit's commit before a rebalance), so a partition that moves to
/// the other member is read on from where this one stopped.
fn member(
    log: &Arc<Log>,
    seen: &Seen,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<()>> {
    let (log, seen, stop) = (Arc::clone(log), Arc::clone(seen), Arc::clone(stop));
    std::thread::spawn(move || {
        let mut c = log.consumer(ConsumerConfig::group("g"))?;
        c.subscribe(&["t"])?;
        while !stop.load(Ordering::Acquire) {
            let records = c.poll(Duration::from_millis(20))?;
            seen.lock()
                .unwrap()
                .extend(records.iter().map(|r| (r.partition(), r.offset())));
        }
        c.close()
    })
}

fn append(log: &Log, partition: i32, n: usize) -> Result<()> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record::new(format!("{partition}-{i}")))
        .collect();
    log.append("t", partition, &records)?;
    Ok(())
}

/// Waits (a generous bound: the failure this guards against waits forever) until `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> TestResult<bool>) -> TestResult {
    let until = Instant::now() + Duration::from_secs(20);
    while !done()? {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[test]
fn added_partitions_are_consumed_without_a_member_joining_or_leaving() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(open(dir.path())?);
    log.create_topic("t", 2)?;
    append(&log, 0, 10)?;
    append(&log, 1, 10)?;
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let members = [member(&log, &seen, &stop), member(&log, &seen, &stop)];

    // Stable with both members, each reading one partition, and everything so far read.
    wait_for("the two members to split the topic", || {
        let Ok(d) = log.describe_group("g") else {
            return Ok(false); // not joined yet
        };
        Ok(d.state == GroupState::Stable
            && d.members.len() == 2
            && d.members.iter().all(|m| m.assignment.len() == 1)
            && seen.lock().unwrap().len() == 20)
    })?;
    let before = log.describe_group("g")?;
    let ids: BTreeSet<String> = before.members.iter().map(|m| m.member_id.clone()).collect();

    log.add_partitions("t", 4)?;
    append(&log, 2, 10)?;
    append(&log, 3, 10)?;
    append(&log, 0, 5)?;
    append(&log, 1, 5)?;
    wait_for("the records of the new partitions", || {
        Ok(seen.lock().unwrap().len() >= 50)
    })?;
    let after = log.describe_group("g")?;
    stop.store(true, Ordering::Release);
    for m in members {
        m.join().expect("a member panicked")?;
    }

    // The same two members, a later generation, all four partitions assigned.
    let ids_after: BTreeSet<String> = after.members.iter().map(|m| m.member_id.clone()).collect();
    assert_eq!(ids_after, ids);
    assert!(after.generation > before.generation);
    let assigned: BTreeSet<i32> = after
        .members
        .iter()
        .flat_map(|m| m.assignment.iter().map(|tp| tp.partition))
        .collect();
    assert_eq!(assigned, BTreeSet::from([0, 1, 2, 3]));
    // Every record exactly once.
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    let mut want: Vec<(i32, i64)> = (0..2)
        .flat_map(|p| (0..15).map(move |o| (p, o)))
        .chain((2..4).flat_map(|p| (0..10).map(move |o| (p, o))))
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn a_subscribed_topic_created_later_is_consumed() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut c = log.consumer(ConsumerConfig::group("g"))?;
    c.subscribe(&["t", "later"])?;
    c.poll(Duration::from_millis(50))?;
    assert_eq!(c.assignment().len(), 1);
    let generation = log.describe_group("g")?.generation;

    log.create_topic("later", 2)?;
    log.append("later", 1, &[Record::new("x")])?;
    let until = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(Instant::now() < until, "the new topic was never read");
        got.extend(
            c.poll(Duration::from_millis(50))?
                .iter()
                .map(|r| (r.partition(), r.offset())),
        );
    }
    assert_eq!(got, [(1, 0)]);
    assert_eq!(c.assignment().len(), 3);
    assert!(log.describe_group("g")?.generation > generation);
    c.close()?;
    Ok(())
}
