//! A group's members outlive a reopen (clean or after a crash): one that comes back commits with its old id and generation; one that does not is expired.

mod common;
use bytes::Bytes;
use common::*;
use std::path::Path;
use std::thread;
use std::time::Duration;
use topiclog::{Error, GroupState, JoinRequest, Log, OffsetAndMetadata, TopicPartition};

fn request(member_id: &str, client: &str, session: Duration) -> JoinRequest {
    JoinRequest {
        group: "g".into(),
        member_id: member_id.into(),
        client_id: client.into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"subscription"))],
        session_timeout: session,
        rebalance_timeout: Duration::from_secs(2),
    }
}

/// Two network-style members (as the Kafka adapter drives them) in generation 2 of group
/// `g`, assignments synced: (stayer id, leaver id, generation). The stayer has a long session
/// timeout, the leaver the shortest.
fn form_group(log: &Log) -> TestResult<(String, String, i32)> {
    let first = log.join_group(&request("", "stayer", Duration::from_mins(1)))?;
    log.sync_group(
        "g",
        &first.member_id,
        first.generation,
        Some(vec![(first.member_id.clone(), Bytes::from_static(b"all"))]),
    )?;
    let stayer = first.member_id;
    thread::scope(|s| -> TestResult<(String, String, i32)> {
        let leaver = s.spawn(|| log.join_group(&request("", "leaver", Duration::from_secs(1))));
        // The stayer learns of the rebalance from its heartbeat and rejoins.
        loop {
            match log.heartbeat_group("g", &stayer, first.generation) {
                Err(Error::RebalanceInProgress { .. }) => break,
                Ok(()) => thread::sleep(SHORT),
                Err(e) => return Err(e.into()),
            }
        }
        let again = log.join_group(&request(&stayer, "stayer", Duration::from_mins(1)))?;
        let leaver = leaver.join().map_err(|_| "joining thread panicked")??;
        assert_eq!(again.generation, leaver.generation);
        // Each syncs; the leader hands out the assignments.
        let (leader, follower) = if again.leader == stayer {
            (&again, &leaver)
        } else {
            (&leaver, &again)
        };
        let assignments = vec![
            (stayer.clone(), Bytes::from_static(b"p0")),
            (leaver.member_id.clone(), Bytes::from_static(b"p1")),
        ];
        let (follower_id, follower_generation) = (follower.member_id.clone(), follower.generation);
        let f = s.spawn(move || log.sync_group("g", &follower_id, follower_generation, None));
        log.sync_group("g", &leader.member_id, leader.generation, Some(assignments))?;
        f.join().map_err(|_| "syncing thread panicked")??;
        Ok((stayer.clone(), leaver.member_id.clone(), again.generation))
    })
}

/// After the reopen: the stayer commits with its old id and generation; the leaver, silent,
/// is eventually expired and the group rebalances without it.
fn check_after_reopen(log: &Log, stayer: &str, leaver: &str, generation: i32) -> TestResult {
    let d = log.describe_group("g")?;
    assert_eq!(d.generation, generation);
    assert_eq!(d.state, GroupState::Stable);
    let mut ids: Vec<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![stayer, leaver];
    want.sort_unstable();
    assert_eq!(ids, want);

    let tp = TopicPartition::new("t", 0);
    log.commit_group_offsets(
        "g",
        stayer,
        generation,
        &[(tp.clone(), OffsetAndMetadata::new(7))],
    )?;
    let committed = log.committed_offsets("g", Some(std::slice::from_ref(&tp)));
    let first = committed.first().and_then(|(_, o)| o.as_ref());
    assert_eq!(first.map(|o| o.offset), Some(7));
    log.heartbeat_group("g", stayer, generation)?;

    // The leaver never heartbeats: once its session passes, the stayer's heartbeat tells it
    // to rejoin, and the leaver is gone.
    loop {
        match log.heartbeat_group("g", stayer, generation) {
            Ok(()) => thread::sleep(SHORT),
            Err(Error::RebalanceInProgress { .. }) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let d = log.describe_group("g")?;
    let ids: Vec<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec![stayer]);
    let again = log.join_group(&request(stayer, "stayer", Duration::from_mins(1)))?;
    assert_eq!(again.member_id, stayer);
    assert_eq!(again.generation, generation + 1);
    Ok(())
}

fn setup(dir: &Path) -> TestResult<(Log, String, String, i32)> {
    let log = open(dir)?;
    log.create_topic("t", 2)?;
    let (stayer, leaver, generation) = form_group(&log)?;
    Ok((log, stayer, leaver, generation))
}

#[test]
fn members_come_back_after_a_clean_close() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (log, stayer, leaver, generation) = setup(dir.path())?;
    log.close()?;
    let log = open(dir.path())?;
    check_after_reopen(&log, &stayer, &leaver, generation)
}

#[test]
fn members_come_back_after_a_crash() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (log, stayer, leaver, generation) = setup(dir.path())?;
    log.abandon();
    let log = open(dir.path())?;
    check_after_reopen(&log, &stayer, &leaver, generation)
}
