//! `Log::describe_group` gives the group's protocol type and each member's metadata and
//! assignment bytes as exchanged (what Kafka's DescribeGroups returns).

mod common;
use common::*;
use std::time::Duration;
use topiclog::{
    Assignment, ConsumerConfig, GroupState, OffsetAndMetadata, Subscription, TopicPartition,
};

#[test]
fn a_stable_consumer_group_shows_its_subscription_and_assignment() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let mut consumer = log.consumer(ConsumerConfig::group("g"))?;
    consumer.subscribe(&["t"])?;
    for _ in 0..400 {
        consumer.poll(Duration::from_millis(10))?;
        if consumer.assignment().len() == 2 {
            break;
        }
    }
    let d = log.describe_group("g")?;
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.protocol_type.as_deref(), Some("consumer"));
    let m = d.members.first().ok_or("no member")?;
    assert_eq!(Subscription::decode(&m.member_metadata)?.topics, ["t"]);
    let assigned = Assignment::decode(&m.member_assignment)?.partitions;
    assert_eq!(assigned, m.assignment);
    assert_eq!(assigned.len(), 2);
    consumer.close()?;
    Ok(())
}

#[test]
fn a_group_known_only_by_its_offsets_has_no_protocol_type() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    log.commit_group_offsets(
        "g",
        "",
        -1,
        &[(TopicPartition::new("t", 0), OffsetAndMetadata::new(0))],
    )?;
    let d = log.describe_group("g")?;
    assert_eq!(d.state, GroupState::Empty);
    assert_eq!(d.protocol_type, None);
    assert!(d.members.is_empty());
    Ok(())
}
