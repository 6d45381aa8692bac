//! Compaction keeps each idempotent producer's last batch (as a header with no records when
//! all its records are superseded), so duplicates are still recognised after the `.snapshot`
//! files are lost; other batches left empty are dropped, so empty batches do not pile up.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::path::Path;
use topiclog::{BatchBuilder, BatchHeader, Batches, CleanupPolicy, Compression, Record, Result};

fn compacted() -> topiclog::TopicConfig {
    let mut c = small_segments(1024);
    c.cleanup_policy = CleanupPolicy::Compact;
    c
}

fn batch(pid: i64, epoch: i16, seq: i32, key: &str) -> Result<BatchBuilder> {
    // Timestamps as the plain appends get them, so `segment.ms` does not roll between them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as i64;
    let mut b = BatchBuilder::new(Compression::None);
    b.push(
        Some(key.as_bytes()),
        Some(format!("s{seq}").as_bytes()),
        &[],
        now,
    )?;
    b.set_producer(pid, epoch, seq);
    Ok(b)
}

/// Headers of every batch in the partition's segment files, per segment, in order.
fn headers(dir: &Path) -> TestResult<Vec<Vec<BatchHeader>>> {
    let mut out = Vec::new();
    for f in segment_logs(dir) {
        let batches = Batches::new(std::fs::read(&f)?.into())
            .map(|b| Ok(*b?.header()))
            .collect::<Result<_>>()?;
        out.push(batches);
    }
    Ok(out)
}

#[test]
fn a_retry_of_a_compacted_away_batch_is_a_duplicate_without_snapshots() -> TestResult {
    let dir = tempfile::tempdir()?;
    let part = dir.path().join("c-0");
    let (pid, epoch, original) = {
        let log = open(dir.path())?;
        log.create_topic_with("c", 1, compacted())?;
        let (pid, epoch) = log.init_producer_id(None)?;
        let p = log.partition("c", 0)?;
        // The producer's first batch stays (nothing supersedes `a`); its last one, `b`, is
        // superseded by a later plain write, then more plain writes follow in the same
        // segment and roll several more, so that batch is neither a segment's last nor in the
        // active segment.
        p.append_builder(&mut batch(pid, epoch, 0, "a")?)?;
        let original = p.append_builder(&mut batch(pid, epoch, 1, "b")?)?;
        p.append(&[Record::new("newer").key("b")])?;
        for i in 0..200 {
            p.append(&[Record::new(format!("v{i}")).key(format!("k{}", i % 10))])?;
        }
        log.compact("c")?;
        log.close()?;
        (pid, epoch, original)
    };
    // The batch is still there, as a header without records.
    let kept: Vec<BatchHeader> = headers(&part)?
        .into_iter()
        .flatten()
        .filter(|h| h.producer_id == pid && h.base_sequence == 1)
        .collect();
    assert_eq!(kept.len(), 1, "the producer's last batch is kept");
    assert_eq!(kept[0].record_count, 0, "its superseded record is gone");
    assert_eq!(
        (
            kept[0].base_offset,
            kept[0].last_offset(),
            kept[0].producer_epoch
        ),
        (original.base_offset, original.last_offset, epoch)
    );
    for f in std::fs::read_dir(&part)? {
        let f = f?.path();
        if f.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(f)?;
        }
    }
    let log = open(dir.path())?;
    let p = log.partition("c", 0)?;
    let end = p.log_end_offset();
    let retry = p.append_builder(&mut batch(pid, epoch, 1, "b")?)?;
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (original.base_offset, original.last_offset),
        "the retry is acknowledged with the original offsets"
    );
    assert_eq!(p.log_end_offset(), end, "and not written again");
    // The producer goes on from the next sequence.
    let next = p.append_builder(&mut batch(pid, epoch, 2, "c")?)?;
    assert_eq!(next.base_offset, end);
    Ok(())
}

#[test]
fn empty_batches_are_only_the_producers_last_over_passes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let part = dir.path().join("c-0");
    let log = open(dir.path())?;
    log.create_topic_with("c", 1, compacted())?;
    let p = log.partition("c", 0)?;
    let producers = [log.init_producer_id(None)?, log.init_producer_id(None)?];
    let mut seq = 0;
    for round in 0..3 {
        // One idempotent batch per producer and round, superseded by the plain writes after
        // them, which fill about a hundred segments.
        for &(pid, epoch) in &producers {
            p.append_builder(&mut batch(pid, epoch, seq, "k3")?)?;
        }
        seq += 1;
        for i in 0..1000 {
            p.append(&[Record::new(format!("r{round}-{i}")).key(format!("k{}", i % 10))])?;
        }
        log.compact("c")?;
        let segs = headers(&part)?;
        let empty: Vec<&BatchHeader> = segs
            .iter()
            .flatten()
            .filter(|h| h.record_count == 0)
            .collect();
        // Kafka's cleaner keeps exactly these two: each producer's last batch.
        assert_eq!(empty.len(), 2, "round {round}: {empty:#?}");
        for (h, &(pid, epoch)) in empty.iter().zip(&producers) {
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (pid, epoch, seq - 1)
            );
        }
        let producer_batches = segs.iter().flatten().filter(|h| h.producer_id >= 0).count();
        assert_eq!(producer_batches, 2, "only the producers' last batches");
    }
    Ok(())
}
