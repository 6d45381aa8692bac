//! A `poll` whose group is rebalancing, waiting for a member that does not poll (to rejoin,
//! or, as a follower, for the leader's assignment), returns at its timeout and at `wakeup()`
//! instead of after the rebalance timeout (`max_poll_interval`).
//! Its member stays in the round, so when the slow member rejoins the group completes with
//! the same members and every one of them consumes.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use topiclog::{Consumer, ConsumerConfig, Error, GroupState, Record, TopicPartition};

/// Long enough that a poll held to it is told apart from one that kept its timeout.
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// A generous bound on how long a poll may take past its timeout or its wake-up.
const PROMPT: Duration = Duration::from_secs(2);

fn member(log: &TempLog) -> TestResult<Consumer> {
    let mut config = ConsumerConfig::group("g");
    config.max_poll_interval = MAX_POLL_INTERVAL;
    let mut c = log.consumer(config)?;
    c.subscribe(&["t"])?;
    Ok(c)
}

/// What each consumer read: (partition, offset).
type Read = Vec<BTreeSet<(TopicPartition, i64)>>;

/// Polls every consumer in turn, from this one thread, until `done` (at most 20 s).
fn poll_until(
    consumers: &mut [&mut Consumer],
    mut done: impl FnMut(&[&mut Consumer], &Read) -> bool,
) -> TestResult<Read> {
    let mut read = vec![BTreeSet::new(); consumers.len()];
    let until = Instant::now() + Duration::from_secs(20);
    while !done(consumers, &read) {
        assert!(Instant::now() < until, "the group never got there");
        for (c, read) in consumers.iter_mut().zip(&mut read) {
            let records = c.poll(Duration::from_millis(20))?;
            read.extend(
                records
                    .iter()
                    .map(|r| (TopicPartition::new(r.topic(), r.partition()), r.offset())),
            );
        }
    }
    Ok(read)
}

/// A 30 s poll that another thread wakes after 200 ms returns `Err(WokenUp)` promptly.
fn woken_from_another_thread(c: &mut Consumer) {
    let wakeup = c.wakeup_handle();
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        wakeup.wakeup();
    });
    let started = Instant::now();
    let woken = c.poll(Duration::from_secs(30));
    let took = started.elapsed();
    waker.join().expect("the waker panicked");
    assert!(matches!(woken, Err(Error::WokenUp)), "{woken:?}");
    assert!(
        took < PROMPT + Duration::from_millis(200),
        "the woken poll took {took:?}"
    );
}

fn id(c: &Consumer) -> TestResult<String> {
    Ok(c.group_generation().ok_or("not a member")?.0)
}

#[test]
fn a_poll_waiting_for_a_slow_member_returns_at_its_timeout_and_on_wakeup() -> TestResult {
    let log = TempLog::with_topic("t", 3)?;
    let mut a = member(&log)?;
    let mut b = member(&log)?;
    // One thread drives both: a poll that waited for the other member would not return.
    poll_until(&mut [&mut a, &mut b], |cs, _| {
        cs.iter().all(|c| !c.assignment().is_empty())
    })?;
    let (id_a, id_b) = (id(&a)?, id(&b)?);

    // C joins: the group waits for A and B to rejoin. B is busy elsewhere and does not poll.
    let mut c = member(&log)?;
    let started = Instant::now();
    assert!(c.poll(Duration::from_millis(100))?.is_empty());
    assert!(
        started.elapsed() < PROMPT,
        "C's poll took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert!(a.poll(Duration::from_millis(100))?.is_empty());
    assert!(
        started.elapsed() < PROMPT,
        "A's poll took {:?}",
        started.elapsed()
    );
    assert!(a.assignment().is_empty());
    assert_eq!(
        log.describe_group("g")?.state,
        GroupState::PreparingRebalance
    );

    // A long poll in the same rebalance ends at a wake-up from another thread.
    woken_from_another_thread(&mut a);
    // Neither poll cost A its place in the round.
    assert_eq!(log.describe_group("g")?.members.len(), 3);

    // B polls again: the round completes with the same members, each reading its partition.
    poll_until(&mut [&mut a, &mut b, &mut c], |cs, _| {
        cs.iter().all(|c| c.assignment().len() == 1)
    })?;
    assert_eq!((id(&a)?, id(&b)?), (id_a, id_b));
    let d = log.describe_group("g")?;
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.members.len(), 3);
    for p in 0..3 {
        log.append("t", p, &[Record::new(format!("r{p}"))])?;
    }
    let consumers = [&mut a, &mut b, &mut c];
    let assigned: Vec<Vec<TopicPartition>> = consumers.iter().map(|c| c.assignment()).collect();
    let read = poll_until(&mut { consumers }, |_, read| {
        read.iter().map(BTreeSet::len).sum::<usize>() == 3
    })?;
    for (read, assigned) in read.iter().zip(&assigned) {
        let want: BTreeSet<(TopicPartition, i64)> =
            assigned.iter().map(|tp| (tp.clone(), 0)).collect();
        assert_eq!(read, &want);
    }
    Ok(())
}

#[test]
fn a_follower_waiting_for_the_leaders_assignment_returns_at_its_timeout_and_on_wakeup() -> TestResult
{
    let log = TempLog::with_topic("t", 3)?;
    let mut a = member(&log)?;
    assert!(a.poll(Duration::from_millis(100))?.is_empty());
    assert_eq!(a.assignment().len(), 3); // A leads: it joined first and stays in the group
    let mut b = member(&log)?;
    poll_until(&mut [&mut a, &mut b], |cs, _| {
        cs.iter().all(|c| !c.assignment().is_empty())
    })?;
    // C joins, then A rejoins: both polls return at their timeouts, B not yet back.
    let mut c = member(&log)?;
    assert!(c.poll(Duration::from_millis(20))?.is_empty());
    assert!(a.poll(Duration::from_millis(20))?.is_empty());
    // B completes the round: it is a follower and waits for the leader's assignment, which
    // A, not polling, does not hand in.
    let started = Instant::now();
    assert!(b.poll(Duration::from_millis(100))?.is_empty());
    assert!(
        started.elapsed() < PROMPT,
        "B's poll took {:?}",
        started.elapsed()
    );
    assert_eq!(
        log.describe_group("g")?.state,
        GroupState::CompletingRebalance
    );
    // C waits for it too, until woken.
    woken_from_another_thread(&mut c);
    let d = log.describe_group("g")?;
    assert_eq!(
        (d.state, d.members.len()),
        (GroupState::CompletingRebalance, 3)
    );

    // A polls: it assigns, and B and C take their partitions in that same generation.
    poll_until(&mut [&mut a, &mut b, &mut c], |cs, _| {
        cs.iter().all(|c| c.assignment().len() == 1)
    })?;
    let after = log.describe_group("g")?;
    assert_eq!(
        (after.state, after.generation, after.members.len()),
        (GroupState::Stable, d.generation, 3)
    );
    Ok(())
}
