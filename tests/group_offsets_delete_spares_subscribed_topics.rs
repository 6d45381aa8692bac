//! `Log::delete_group_offsets` deletes a group's committed offsets of the partitions asked,
//! except those of topics its live members subscribe to (Kafka's OffsetDelete rule).
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::time::Duration;
use topiclog::{ConsumerConfig, Error, OffsetAndMetadata, TopicPartition};

fn committed(log: &topiclog::Log, group: &str) -> Vec<(String, i32, i64)> {
    log.committed_offsets(group, None)
        .into_iter()
        .filter_map(|(tp, om)| Some((tp.topic, tp.partition, om?.offset)))
        .collect()
}

#[test]
fn an_empty_group_loses_exactly_the_partitions_asked() -> TestResult {
    let log = TempLog::with_topic("a", 2)?;
    let commits: Vec<_> = [("a", 0, 5), ("a", 1, 6)]
        .into_iter()
        .map(|(t, p, o)| (TopicPartition::new(t, p), OffsetAndMetadata::new(o)))
        .collect();
    log.commit_group_offsets("g", "", -1, &commits)?;
    let res = log.delete_group_offsets(
        "g",
        &[TopicPartition::new("a", 0), TopicPartition::new("gone", 3)],
    )?;
    assert_eq!(res.len(), 2);
    assert!(res.iter().all(|(_, r)| r.is_ok()), "{res:?}");
    assert_eq!(committed(&log, "g"), [("a".to_owned(), 1, 6)]);
    // Still deleted after a reopen: the tombstones are in the offsets topic.
    let log = log.reopen()?;
    assert_eq!(committed(&log, "g"), [("a".to_owned(), 1, 6)]);
    Ok(())
}

#[test]
fn a_topic_live_members_subscribe_to_is_refused_and_kept() -> TestResult {
    let log = TempLog::with_topic("subscribed", 1)?;
    log.create_topic("other", 1)?;
    let (sub, other) = (
        TopicPartition::new("subscribed", 0),
        TopicPartition::new("other", 0),
    );
    log.commit_group_offsets(
        "g",
        "",
        -1,
        &[
            (sub.clone(), OffsetAndMetadata::new(1)),
            (other.clone(), OffsetAndMetadata::new(2)),
        ],
    )?;
    let mut cfg = ConsumerConfig::group("g");
    cfg.enable_auto_commit = false;
    let mut consumer = log.consumer(cfg)?;
    consumer.subscribe(&["subscribed"])?;
    for _ in 0..400 {
        consumer.poll(Duration::from_millis(10))?;
        if !consumer.assignment().is_empty() {
            break;
        }
    }
    assert!(
        !consumer.assignment().is_empty(),
        "the consumer never joined"
    );
    let res = log.delete_group_offsets("g", &[sub.clone(), other.clone()])?;
    assert!(
        matches!(&res[0], (tp, Err(Error::GroupSubscribedToTopic { topic, .. })) if *tp == sub && topic == "subscribed"),
        "{res:?}"
    );
    assert_eq!(
        res[0].1.as_ref().err().map(Error::kafka_error_code),
        Some(86)
    );
    assert!(res[1].1.is_ok(), "{res:?}");
    assert_eq!(committed(&log, "g"), [("subscribed".to_owned(), 0, 1)]);
    // Once the member has left, the topic's offsets may go.
    consumer.close()?;
    let res = log.delete_group_offsets("g", &[sub])?;
    assert!(res[0].1.is_ok(), "{res:?}");
    assert!(committed(&log, "g").is_empty());
    Ok(())
}

#[test]
fn an_unknown_group_is_refused() -> TestResult {
    let log = TempLog::with_topic("a", 1)?;
    let err = log.delete_group_offsets("nobody", &[TopicPartition::new("a", 0)]);
    assert!(matches!(err, Err(Error::GroupNotFound { .. })), "{err:?}");
    Ok(())
}
