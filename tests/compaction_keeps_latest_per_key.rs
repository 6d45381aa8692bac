//! Log compaction: the latest record of every key survives, offsets never change, the active
//! segment is untouched, tombstones go after their delete horizon, a crash at any step of the
//! segment swap recovers, and readers holding replaced segments finish their reads.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::case_sensitive_file_extension_comparisons
)]

mod common;
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
#[cfg(feature = "sim")]
use topiclog::CrashPoint;
use topiclog::{Log, Record, Result, TopicConfig};

fn compacted(segment_bytes: u32, delete_retention_ms: u64) -> TopicConfig {
    let mut c = small_segments(segment_bytes);
    c.cleanup_policy = topiclog::CleanupPolicy::Compact;
    c.delete_retention_ms = delete_retention_ms;
    c
}

/// (offset, key, value) of every readable record.
fn contents(log: &Log) -> TestResult<Vec<(i64, String, Option<String>)>> {
    read_all(&log.partition("c", 0)?)?
        .into_iter()
        .map(|r| {
            Ok((
                r.offset,
                String::from_utf8(r.key.ok_or("a null key")?.to_vec())?,
                r.value.map(|v| String::from_utf8(v.to_vec())).transpose()?,
            ))
        })
        .collect()
}

/// Checks the log against everything ever appended (`history`, by offset).
fn check(
    log: &Log,
    history: &BTreeMap<i64, (String, Option<String>)>,
    tombstones_may_go: bool,
) -> TestResult {
    let got = contents(log)?;
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    for (o, k, v) in &got {
        assert_eq!(
            history.get(o),
            Some(&(k.clone(), v.clone())),
            "offset {o} kept its record"
        );
    }
    // The latest record of every key is still there (tombstones may have expired).
    let mut latest: BTreeMap<&String, (i64, &Option<String>)> = BTreeMap::new();
    for (o, (k, v)) in history {
        latest.insert(k, (*o, v));
    }
    for (k, (o, v)) in latest {
        let present = got.iter().any(|(go, _, _)| *go == o);
        if v.is_none() && tombstones_may_go {
            continue;
        }
        assert!(present, "latest record of {k} at {o} is gone");
    }
    Ok(())
}

#[test]
fn keeps_latest_per_key_and_offsets() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(1024, 86_400_000))?;
    let p = log.partition("c", 0)?;
    let mut history = BTreeMap::new();
    for i in 0..300 {
        let k = format!("k{}", i % 10);
        let v = format!("v{i}");
        let at = p.append(&[Record::new(v.clone()).key(k.clone())])?;
        history.insert(at.base_offset, (k, Some(v)));
    }
    let before = log.describe_topic("c")?.partitions[0].size_bytes;
    let report = log.compact("c")?;
    assert!(report.records_removed > 200, "{report:?}");
    check(&log, &history, false)?;
    let after = log.describe_topic("c")?.partitions[0].size_bytes;
    assert!(after < before / 3, "{before} -> {after}");
    // Sealed segments hold each key at most once.
    let active_base = log.describe_topic("c")?.partitions[0].log_end_offset;
    let _ = active_base;
    let got = contents(&log)?;
    assert_eq!(
        got.last().ok_or("no records")?.0,
        299,
        "the end never moves"
    );
    let log = log.reopen()?;
    check(&log, &history, false)?;
    assert_eq!(log.partition("c", 0)?.log_end_offset(), 300);
    assert_eq!(
        log.partition("c", 0)?
            .append(&[Record::new("x").key("k1")])?
            .base_offset,
        300
    );
    Ok(())
}

#[test]
fn tombstones_expire_after_the_delete_horizon() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(1024, 0))?;
    let p = log.partition("c", 0)?;
    for i in 0..50 {
        p.append(&[Record::new(format!("v{i}")).key(format!("k{}", i % 5))])?;
    }
    // Back-dated tombstone: it is still kept by the first pass (the horizon counts from the
    // cleaner's first sight, not from the record's timestamp).
    p.append(&[Record::tombstone("k1").timestamp(1)])?;
    for i in 0..50 {
        p.append(&[Record::new(format!("w{i}")).key("other")])?;
    }
    log.compact("c")?;
    let got = contents(&log)?;
    assert!(
        got.iter().any(|(_, k, v)| k == "k1" && v.is_none()),
        "first pass keeps the tombstone"
    );
    assert!(
        !got.iter().any(|(_, k, v)| k == "k1" && v.is_some()),
        "the value it deletes is gone"
    );
    log.compact("c")?;
    let got = contents(&log)?;
    assert!(
        !got.iter().any(|(_, k, _)| k == "k1"),
        "second pass, past the horizon, drops it"
    );
    // With the default 24 h a tombstone survives repeated passes.
    log.create_topic_with("d", 1, compacted(1024, 86_400_000))?;
    let d = log.partition("d", 0)?;
    d.append(&[Record::tombstone("gone")])?;
    for i in 0..50 {
        d.append(&[Record::new(format!("v{i}")).key("live")])?;
    }
    log.compact("d")?;
    log.compact("d")?;
    assert!(
        read_all(&d)?
            .iter()
            .any(|r| r.key.as_deref() == Some(&b"gone"[..]))
    );
    Ok(())
}

#[test]
fn a_read_in_progress_survives_the_swap() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(2048, 86_400_000))?;
    let p = log.partition("c", 0)?;
    for i in 0..200 {
        p.append(&[Record::new(format!("v{i}")).key(format!("k{}", i % 3))])?;
    }
    let held = p.read(0, usize::MAX)?;
    let mut before = Vec::new();
    for b in &held.batches {
        for r in b.owned_records()? {
            before.push(r?.offset);
        }
    }
    log.compact("c")?;
    let mut again = Vec::new();
    for b in &held.batches {
        b.verify_crc()?;
        for r in b.owned_records()? {
            again.push(r?.offset);
        }
    }
    assert_eq!(before, again, "the held views still read the old bytes");
    assert_eq!(before.len(), 200);
    Ok(())
}

/// Needs the `sim` feature for the crash points (`cargo test --all-features`).
#[cfg(feature = "sim")]
#[test]
fn a_crash_at_every_step_of_the_swap_recovers() -> TestResult {
    for crash in [
        CrashPoint::AfterCleaned,
        CrashPoint::AfterSwap,
        CrashPoint::AfterFirstDelete,
        CrashPoint::AfterIndexRename,
    ] {
        let dir = tempfile::tempdir()?;
        let log = open(dir.path())?;
        log.create_topic_with("c", 1, compacted(1024, 86_400_000))?;
        let p = log.partition("c", 0)?;
        let mut history = BTreeMap::new();
        for i in 0..200 {
            let k = format!("k{}", i % 7);
            let at = p.append(&[Record::new(format!("v{i}")).key(k.clone())])?;
            history.insert(at.base_offset, (k, Some(format!("v{i}"))));
        }
        log.compact_until("c", Some(crash))?;
        log.abandon();
        let log = open(dir.path())?;
        check(&log, &history, false)?;
        let names: Vec<String> = std::fs::read_dir(dir.path().join("c-0"))?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".swap") || n.ends_with(".cleaned")),
            "{crash:?}: {names:?}"
        );
        // No key is stored twice below the active segment once a swap completed.
        if crash != CrashPoint::AfterCleaned {
            let got = contents(&log)?;
            let end_of_first = got.iter().filter(|(o, _, _)| *o < 20).count();
            assert!(end_of_first <= 7, "{crash:?}: duplicate keys resurrected");
        }
        // And compaction completes normally afterwards.
        log.compact("c")?;
        check(&log, &history, false)?;
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u16),
    Delete(u8),
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..12u8, 0..300u16).prop_map(|(k, n)| Op::Put(k, n)),
        1 => (0..12u8).prop_map(Op::Delete),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// Applies `ops` to a compacted topic, checking the log against its history after each.
fn run(ops: &[Op]) -> TestResult {
    let mut log = TempLog::with_topic_config("c", 1, compacted(1024, 86_400_000))?;
    let mut history = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, n) => {
                let v = format!("{n}-{}", "x".repeat(*n as usize % 40));
                let at = log.append("c", 0, &[Record::new(v.clone()).key(format!("k{k}"))])?;
                history.insert(at.base_offset, (format!("k{k}"), Some(v)));
            }
            Op::Delete(k) => {
                let at = log.append("c", 0, &[Record::tombstone(format!("k{k}"))])?;
                history.insert(at.base_offset, (format!("k{k}"), None));
            }
            Op::Compact => {
                log.compact("c")?;
            }
            Op::Reopen => log = log.reopen()?,
        }
        check(&log, &history, false)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn matches_a_latest_value_model(ops in prop::collection::vec(op(), 1..120)) {
        run(&ops).unwrap();
    }
}

#[test]
fn consumer_offsets_stay_small_under_a_million_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = topiclog::LogOptions::new()
        .flusher(Some(std::time::Duration::from_millis(10)))
        .maintenance_interval(Some(std::time::Duration::from_millis(50)))
        .open(dir.path())?;
    log.create_topic("t", 100)?;
    let parts: Vec<topiclog::TopicPartition> = (0..100)
        .map(|p| topiclog::TopicPartition::new("t", p))
        .collect();
    // 10 groups x 100 partitions = 1,000 group-partitions; 1,000 rounds of commits.
    let mut consumers: Vec<_> = (0..10)
        .map(|g| {
            let mut c = log.consumer(topiclog::ConsumerConfig::group(format!("group-{g}")))?;
            c.assign(&parts)?;
            Ok(c)
        })
        .collect::<Result<_>>()?;
    for round in 0..1000i64 {
        for c in &mut consumers {
            let offsets: Vec<_> = parts
                .iter()
                .map(|tp| (tp.clone(), topiclog::OffsetAndMetadata::new(round)))
                .collect();
            c.commit_offsets(&offsets)?;
        }
    }
    log.maintain()?;
    let d = log.describe_topic(topiclog::OFFSETS_TOPIC)?;
    let bytes: u64 = d.partitions.iter().map(|p| p.size_bytes).sum();
    // Without compaction the million records would take about 60 MB; with 4 MiB segments and
    // automatic compaction what is left is the active segment plus the latest commit per key.
    assert!(bytes < 12 << 20, "__consumer_offsets holds {bytes} bytes");
    eprintln!("__consumer_offsets: {bytes} bytes");
    for (g, c) in consumers.iter().enumerate() {
        assert_eq!(c.committed(&parts[g])?.map(|o| o.offset), Some(999));
    }
    drop(consumers);
    log.close()?;
    let log = open(dir.path())?;
    let d = log.describe_group("group-3")?;
    assert!(d.offsets.iter().all(|o| o.committed == Some(999)));
    Ok(())
}

#[test]
fn merged_segments_end_where_the_next_one_starts() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(1024, 86_400_000))?;
    let p = log.partition("c", 0)?;
    let mut history = BTreeMap::new();
    // Unique keys keep about half of every segment, and every other record is superseded, so
    // merged groups often end in a batch compaction empties.
    for i in 0..600 {
        let k = if i % 2 == 0 {
            format!("u{i}")
        } else {
            "x".to_string()
        };
        let at = p.append(&[Record::new(format!("v{i}")).key(k.clone())])?;
        history.insert(at.base_offset, (k, Some(format!("v{i}"))));
    }
    log.compact("c")?;
    let part = log.path().join("c-0");
    let logs = segment_logs(&part);
    let mut placeholders = 0;
    for (i, f) in logs.iter().enumerate().take(logs.len() - 1) {
        let batches: Vec<_> = topiclog::Batches::new(std::fs::read(f)?.into())
            .map(|b| Ok(*b?.header()))
            .collect::<Result<_>>()?;
        let last = batches.last().ok_or("no records")?;
        assert_eq!(last.last_offset() + 1, segment_base(&logs[i + 1]), "{f:?}");
        for h in &batches {
            if h.record_count == 0 {
                placeholders += 1;
                assert_eq!(h, last, "an empty batch only ends a segment");
                assert_eq!(h.producer_id, -1);
            }
        }
    }
    assert!(
        placeholders > 0,
        "the scenario empties a group's last batch"
    );
    let log = log.reopen()?;
    check(&log, &history, false)?;
    assert_eq!(log.partition("c", 0)?.log_end_offset(), 600);
    Ok(())
}
