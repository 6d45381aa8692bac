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
fn members_split_partitions_and_rebalance_on_join_and_leave() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(open(dir.path())?);
    log.create_topic("t", 4)?;
    let mut a = log.consumer(cfg("g"))?;
    a.subscribe(&["t"])?;
    settle(&mut a, 4)?;
    let gen1 = a.group_generation().ok_or("not in a group")?.1;
    // B joins: A must poll to take part in the rebalance.
    let b = run_member(&log, "g", 2);
    settle(&mut a, 2)?;
    let b = b.join().expect("member b panicked")?;
    let owned_a: BTreeSet<_> = a.assignment().into_iter().collect();
    let owned_b: BTreeSet<_> = b.assignment().into_iter().collect();
    assert!(owned_a.is_disjoint(&owned_b));
    assert_eq!(owned_a.len() + owned_b.len(), 4);
    assert!(a.group_generation().ok_or("not in a group")?.1 > gen1);
    let d = log.describe_group("g")?;
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.state, GroupState::Stable);
    // B leaves (drop): A gets everything back.
    drop(b);
    settle(&mut a, 4)?;
    Ok(())
}

#[test]
fn a_member_that_stops_polling_is_removed_and_its_stale_commits_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    // With the background thread on, live consumers are heartbeated for: only the poll
    // interval can remove B.
    let log = Arc::new(
        topiclog::LogOptions::new()
            .flusher(Some(Duration::from_millis(10)))
            .open(dir.path())?,
    );
    log.create_topic("t", 2)?;
    let mut slow = cfg("g");
    slow.max_poll_interval = Duration::from_millis(300);
    let mut a = log.consumer(slow.clone())?;
    a.subscribe(&["t"])?;
    settle(&mut a, 2)?;
    let log2 = Arc::clone(&log);
    let b = std::thread::spawn(move || -> Result<Consumer> {
        let mut b = log2.consumer(slow)?;
        b.subscribe(&["t"])?;
        settle(&mut b, 1)?;
        Ok(b)
    });
    settle(&mut a, 1)?;
    let mut b = b.join().expect("member b panicked")?;
    let (_, b_generation) = b.group_generation().ok_or("not in a group")?;
    // B stops polling; A keeps polling and takes B's partition once B is removed.
    settle(&mut a, 2)?;
    assert!(a.group_generation().ok_or("not in a group")?.1 > b_generation);
    assert_eq!(log.describe_group("g")?.members.len(), 1);
    // B's commit carries its old member id and generation: refused.
    let err = b
        .commit_offsets(&[(TopicPartition::new("t", 0), OffsetAndMetadata::new(1))])
        .unwrap_err();
    assert!(matches!(err, Error::StaleMember { .. }), "{err}");
    // A standalone commit is refused while the group has members, too.
    let err = log
        .consumer(cfg("g"))?
        .commit_offsets(&[(TopicPartition::new("t", 0), OffsetAndMetadata::new(2))])
        .unwrap_err();
    assert!(matches!(err, Error::StaleMember { .. }), "{err}");
    // B notices on its next poll and rejoins (each member polls from its own thread: a join
    // blocks until the other members rejoin too).
    let b = std::thread::spawn(move || -> Result<Consumer> {
        settle(&mut b, 1)?;
        Ok(b)
    });
    settle(&mut a, 1)?;
    let b = b.join().expect("member b panicked")?;
    assert_eq!(a.assignment().len() + b.assignment().len(), 2);
    Ok(())
}

#[test]
fn committed_offsets_survive_reopen_with_exact_lag() -> TestResult {
    let log = TempLog::new()?;
    {
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
    }
    let log = log.reopen()?;
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
            first.entry(r.partition()).or_insert(r.offset());
        }
    }
    assert_eq!(first.get(&0), Some(&6), "resumes at the committed offset");
    assert_eq!(first.get(&1), Some(&3));
    Ok(())
}

#[test]
fn a_member_that_stops_heartbeating_is_removed() -> TestResult {
    let dir = tempfile::tempdir()?;
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
    let b = b.join().expect("member b panicked")?;
    // B goes silent (still alive, never polls); A keeps polling and takes over.
    settle(&mut a, 2)?;
    let d = log.describe_group("g")?;
    assert_eq!(d.members.len(), 1);
    drop(b);
    Ok(())
}

#[test]
fn group_admin_list_describe_reset_delete() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
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
