//! Consumer groups: partitions split between members, rebalances on join and leave,
//! generations, stale commits refused, session expiry, committed offsets that survive a
//! reopen, lag, and group admin.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use topiclog::{
    Consumer, ConsumerConfig, Error, GroupState, Log, OffsetAndMetadata, OffsetSpec, Result,
    TopicPartition,
};

fn cfg(group: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::group(group);
    c.enable_auto_commit = false;
    c
}

/// Polls until the consumer holds `n` partitions (or panics after a while).
fn settle(c: &mut Consumer, n: usize) -> Result<()> {
    for _ in 0..400 {
        c.poll(Duration::from_millis(10))?;
        if c.assignment().len() == n {
            return Ok(());
        }
    }
    panic!("never reached {n} partitions: {:?}", c.assignment());
}

fn run_member(
    log: &Arc<Log>,
    group: &str,
    want: usize,
) -> std::thread::JoinHandle<Result<Consumer>> {
    let log = Arc::clone(log);
    let group = group.to_string();
    std::thread::spawn(move || {
        let mut c = log.consumer(cfg(&group))?;
        c.subscribe(&["t"])?;
        settle(&mut c, want)?;
        Ok(c)
    })
}

#[test]
fn members_split_partitions_and_rebalance_on_join_and_leave() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path())?);
    log.create_topic("t", 4)?;
    let mut a = log.consumer(cfg("g"))?;
    a.subscribe(&["t"])?;
    settle(&mut a, 4)?;
    let gen1 = a.group_generation().unwrap().1;
    // B joins: A must poll to take part in the rebalance.
    let b = run_member(&log, "g", 2);
    settle(&mut a, 2)?;
    let b = b.join().unwrap()?;
    let owned_a: BTreeSet<_> = a.assignment().into_iter().collect();
    let owned_b: BTreeSet<_> = b.assignment().into_iter().collect();
    assert!(owned_a.is_disjoint(&owned_b));
    assert_eq!(owned_a.len() + owned_b.len(), 4);
    assert!(a.group_generation().unwrap().1 > gen1);
    let d = log.describe_group("g")?;
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.state, GroupState::Stable);
    // B leaves (drop): A gets everything back.
    drop(b);
    settle(&mut a, 4)?;
    Ok(())
}

#[test]
fn stale_generation_commits_are_refused() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path())?);
    log.create_topic("t", 2)?;
    log.partition("t", 0)?.append(&[rec(0), rec(1)])?;
    let mut a = log.consumer(cfg("g"))?;
    a.subscribe(&["t"])?;
    settle(&mut a, 2)?;
    a.commit_offsets(&[(TopicPartition::new("t", 0), OffsetAndMetadata::new(1))])?;
    let b = run_member(&log, "g", 1);
    // A keeps its old generation until it polls again: its commit is refused as stale
    // once the group moved on.
    let b = {
        // Wait for the group to enter a rebalance that A has not joined yet.
        let mut tries = 0;
        while log.describe_group("g")?.state == GroupState::Stable && tries < 200 {
            std::thread::sleep(Duration::from_millis(5));
            tries += 1;
        }
        settle(&mut a, 1)?;
        b.join().unwrap()?
    };
    let (member, generation) = a.group_generation().unwrap();
    assert!(generation > 1);
    drop(b);
    // Commit with the previous generation through a second, stale handle on the same member.
    let err = log
        .consumer(cfg("g"))?
        .commit_offsets(&[(TopicPartition::new("t", 0), OffsetAndMetadata::new(2))])
        .unwrap_err();
    assert!(
        matches!(err, Error::StaleMember { .. }),
        "standalone commit while members are active: {err}"
    );
    let _ = member;
    Ok(())
}

#[test]
fn committed_offsets_survive_reopen_with_exact_lag() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path())?;
        log.create_topic("t", 2)?;
        for p in 0..2 {
            let h = log.partition("t", p)?;
            for i in 0..10 {
                h.append(&[rec(i)])?;
            }
        }
        let mut c = log.consumer(cfg("g"))?;
        c.subscribe(&["t"])?;
        let mut got = 0;
        while got < 7 {
            got += c.poll(Duration::from_millis(50))?.len().min(7 - got);
            if got >= 7 {
                break;
            }
        }
        c.commit_offsets(&[
            (TopicPartition::new("t", 0), OffsetAndMetadata::new(6)),
            (TopicPartition::new("t", 1), OffsetAndMetadata::new(3)),
        ])?;
        assert_eq!(c.lag(&TopicPartition::new("t", 0))?, Some(4));
        assert_eq!(c.lag(&TopicPartition::new("t", 1))?, Some(7));
        // Dropping leaves the group without committing (auto-commit is off here).
        drop(c);
        log.close()?;
    }
    let log = open(dir.path())?;
    let d = log.describe_group("g")?;
    let lags: Vec<_> = d
        .offsets
        .iter()
        .map(|o| (o.partition.partition, o.committed, o.lag))
        .collect();
    assert_eq!(lags, vec![(0, Some(6), Some(4)), (1, Some(3), Some(7))]);
    let mut c = log.consumer(cfg("g"))?;
    c.subscribe(&["t"])?;
    let mut first = std::collections::BTreeMap::new();
    for _ in 0..100 {
        for r in &c.poll(Duration::from_millis(20))? {
            first.entry(r.partition).or_insert(r.offset);
        }
    }
    assert_eq!(first.get(&0), Some(&6), "resumes at the committed offset");
    assert_eq!(first.get(&1), Some(&3));
    Ok(())
}

#[test]
fn a_member_that_stops_heartbeating_is_removed() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    // No background thread: nothing heartbeats for a consumer between its polls.
    let log = Arc::new(open(dir.path())?);
    log.create_topic("t", 2)?;
    let mut short = cfg("g");
    short.session_timeout = Duration::from_millis(300);
    let mut a = log.consumer(short.clone())?;
    a.subscribe(&["t"])?;
    settle(&mut a, 2)?;
    let log2 = Arc::clone(&log);
    let b = std::thread::spawn(move || -> Result<Consumer> {
        let mut b = log2.consumer(short)?;
        b.subscribe(&["t"])?;
        settle(&mut b, 1)?;
        Ok(b)
    });
    settle(&mut a, 1)?;
    let b = b.join().unwrap()?;
    // B goes silent (still alive, never polls); A keeps polling and takes over.
    settle(&mut a, 2)?;
    let d = log.describe_group("g")?;
    assert_eq!(d.members.len(), 1);
    drop(b);
    Ok(())
}

#[test]
fn group_admin_list_describe_reset_delete() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path())?;
    log.create_topic("t", 2)?;
    for p in 0..2 {
        let h = log.partition("t", p)?;
        for i in 0..5 {
            h.append(&[rec(i).timestamp(1000 + i as i64)])?;
        }
    }
    let reset = log.reset_group_offsets("g", "t", OffsetSpec::Offset(3))?;
    assert_eq!(
        reset,
        vec![
            (TopicPartition::new("t", 0), 3),
            (TopicPartition::new("t", 1), 3)
        ]
    );
    assert_eq!(log.list_groups(), vec!["g".to_string()]);
    assert_eq!(
        log.reset_group_offsets("g", "t", OffsetSpec::Timestamp(1002))?[0].1,
        2
    );
    assert_eq!(
        log.reset_group_offsets("g", "t", OffsetSpec::Latest)?[0].1,
        5
    );
    assert_eq!(
        log.reset_group_offsets("g", "t", OffsetSpec::Earliest)?[0].1,
        0
    );
    let d = log.describe_group("g")?;
    assert_eq!(
        d.offsets.iter().map(|o| o.lag).collect::<Vec<_>>(),
        vec![Some(5), Some(5)]
    );
    // Not while a member is active.
    let mut c = log.consumer(cfg("g"))?;
    c.subscribe(&["t"])?;
    settle(&mut c, 2)?;
    assert!(matches!(
        log.reset_group_offsets("g", "t", OffsetSpec::Latest),
        Err(Error::GroupNotEmpty { .. })
    ));
    assert!(matches!(
        log.delete_group("g"),
        Err(Error::GroupNotEmpty { .. })
    ));
    c.close()?;
    assert_eq!(log.delete_group("g")?, 2);
    assert!(matches!(
        log.describe_group("g"),
        Err(Error::GroupNotFound { .. })
    ));
    Ok(())
}
