//! Idempotence: a re-sent batch is acknowledged with its original offsets and not written
//! twice; a sequence gap is refused; a newer epoch fences the older producer; all of it also
//! across closing and reopening the log.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{BatchBuilder, Compression, Error, ProducerConfig, ProducerRecord, Result};

fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Result<BatchBuilder> {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..n {
        b.push(Some(b"k"), Some(format!("s{seq}-{i}").as_bytes()), &[], 1)?;
    }
    b.set_producer(pid, epoch, seq);
    Ok(b)
}

#[test]
fn resend_gap_and_fencing_survive_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (pid, epoch) = {
        let log = open(dir.path())?;
        log.create_topic("t", 1)?;
        let (pid, epoch) = log.init_producer_id(None)?;
        let p = log.partition("t", 0)?;
        let first = p.append_builder(&mut batch(pid, epoch, 0, 3)?)?;
        assert_eq!((first.base_offset, first.last_offset), (0, 2));
        let again = p.append_builder(&mut batch(pid, epoch, 0, 3)?)?;
        assert_eq!(
            (again.base_offset, again.last_offset),
            (0, 2),
            "duplicate acknowledged"
        );
        assert_eq!(p.log_end_offset(), 3, "not written twice");
        match p.append_builder(&mut batch(pid, epoch, 7, 1)?) {
            Err(Error::OutOfOrderSequence {
                expected, received, ..
            }) => assert_eq!((expected, received), (3, 7)),
            other => panic!("{other:?}"),
        }
        p.append_builder(&mut batch(pid, epoch, 3, 2)?)?;
        log.close()?;
        (pid, epoch)
    };
    // Clean reopen: state from the snapshot.
    {
        let log = open(dir.path())?;
        let p = log.partition("t", 0)?;
        let dup = p.append_builder(&mut batch(pid, epoch, 3, 2)?)?;
        assert_eq!((dup.base_offset, dup.last_offset), (3, 4));
        assert!(matches!(
            p.append_builder(&mut batch(pid, epoch, 9, 1)?),
            Err(Error::OutOfOrderSequence { .. })
        ));
        // A newer epoch takes over; the old one is fenced.
        p.append_builder(&mut batch(pid, epoch + 1, 0, 1)?)?;
        assert!(matches!(
            p.append_builder(&mut batch(pid, epoch, 5, 1)?),
            Err(Error::Fenced { .. })
        ));
        log.abandon();
    }
    // Crash reopen: state replayed from the log.
    let log = open(dir.path())?;
    let p = log.partition("t", 0)?;
    assert!(matches!(
        p.append_builder(&mut batch(pid, epoch, 5, 1)?),
        Err(Error::Fenced { .. })
    ));
    let dup = p.append_builder(&mut batch(pid, epoch + 1, 0, 1)?)?;
    assert_eq!(dup.base_offset, 5);
    assert_eq!(p.log_end_offset(), 6);
    Ok(())
}

#[test]
fn named_producers_fence_older_instances_across_reopen() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let mut cfg = ProducerConfig::default();
    cfg.name = Some("orders-writer".into());
    let old = log.producer(cfg.clone())?;
    old.send(ProducerRecord::new("t", "a").partition(0))?;
    let new = log.producer(cfg.clone())?;
    assert_eq!(new.producer_id().0, old.producer_id().0);
    assert_eq!(new.producer_id().1, old.producer_id().1 + 1);
    assert!(matches!(
        old.send(ProducerRecord::new("t", "b").partition(0)),
        Err(Error::Fenced { .. })
    ));
    new.send(ProducerRecord::new("t", "c").partition(0))?;
    let (id, epoch) = new.producer_id();
    drop((old, new));
    let log = log.reopen()?;
    let newest = log.producer(cfg)?;
    assert_eq!(newest.producer_id(), (id, epoch + 1), "the epoch persists");
    let anon = log.producer(ProducerConfig::default())?;
    assert_ne!(anon.producer_id().0, id, "ids are never reused");
    Ok(())
}
