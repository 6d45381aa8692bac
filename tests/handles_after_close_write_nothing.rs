//! Consumers, producers and partition handles that outlive their `Log` fail with `Error::Closed` and write nothing into the files of a `Log` reopened on the same directory.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use topiclog::{
    ConsumerConfig, Error, Log, OFFSETS_TOPIC, OffsetAndMetadata, ProducerConfig, ProducerRecord,
    Record, Result, TopicPartition,
};

/// Every file's bytes under the partition directories.
fn files(dir: &Path) -> TestResult<BTreeMap<PathBuf, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for part in [format!("{OFFSETS_TOPIC}-0"), "t-0".to_string()] {
        for e in std::fs::read_dir(dir.join(part))? {
            let path = e?.path();
            if path.is_file() {
                out.insert(path.clone(), std::fs::read(&path)?);
            }
        }
    }
    Ok(out)
}

fn closed<T: std::fmt::Debug>(what: &str, r: &Result<T>) {
    assert!(
        matches!(r, Err(Error::Closed { .. })),
        "{what} after the log closed: {r:?}"
    );
}

fn outlive(end: impl FnOnce(Log) -> Result<()>) -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic("t", 1)?;
    let tp = TopicPartition::new("t", 0);
    let handle = log.partition("t", 0)?;
    for i in 0..10 {
        handle.append(&[rec(i)])?;
    }
    let mut config = ConsumerConfig::group("g");
    config.enable_auto_commit = true;
    let mut consumer = log.consumer(config)?;
    consumer.assign(std::slice::from_ref(&tp))?;
    let polled = consumer.poll(Duration::from_secs(1))?;
    assert_eq!(polled.len(), 10);
    consumer.commit()?;
    let producer = log.producer(ProducerConfig::default())?;
    end(log)?;

    let log = open(dir.path())?;
    let before = files(dir.path())?;
    closed(
        "commit_offsets",
        &consumer.commit_offsets(&[(tp.clone(), OffsetAndMetadata::new(3))]),
    );
    closed("commit", &consumer.commit());
    closed("append", &handle.append(&[Record::new("stale")]));
    closed("send", &producer.send(ProducerRecord::new("t", "stale")));
    closed(
        "send_async",
        &producer.send_async(ProducerRecord::new("t", "stale")),
    );
    drop(consumer);
    drop(producer);
    drop(handle);
    assert!(
        files(dir.path())? == before,
        "a stale handle wrote into the reopened log's files"
    );
    let committed = log.committed_offsets("g", Some(std::slice::from_ref(&tp)));
    assert_eq!(committed[0].1.as_ref().map(|o| o.offset), Some(10));
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 10);
    log.close()?;
    Ok(())
}

#[test]
fn after_close() -> TestResult {
    outlive(Log::close)
}

#[test]
fn after_abandon() -> TestResult {
    outlive(|log| {
        log.abandon();
        Ok(())
    })
}
