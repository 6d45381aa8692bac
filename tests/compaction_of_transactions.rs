//! Compaction of transactional data, by Kafka's cleaner rules: records of aborted transactions
//! go (offsets unchanged), committed records compact like any other, an end-transaction marker
//! stays while its transaction has a batch left and until `delete.retention.ms` after that was
//! first found, a merged segment's `.txnindex` keeps every aborted transaction of the segments
//! it replaces, and a reopen after all of it finds no transaction open.
#![allow(
    clippy::indexing_slicing,
    clippy::case_sensitive_file_extension_comparisons
)]

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::Path;

use topiclog::{
    BatchHeader, CleanupPolicy, IsolationLevel, Log, Producer, ProducerConfig, ProducerRecord,
    Record, TopicConfig,
};

fn compacted(delete_retention_ms: u64) -> TopicConfig {
    let mut c = small_segments(1024);
    c.cleanup_policy = CleanupPolicy::Compact;
    c.delete_retention_ms = delete_retention_ms;
    c
}

/// (offset, key, value) of every record a reader at `level` gets.
fn contents(log: &Log, level: IsolationLevel) -> TestResult<Vec<(i64, String, String)>> {
    let h = log.partition("c", 0)?.with_isolation_level(level);
    let mut out = Vec::new();
    let mut at = h.log_start_offset();
    loop {
        let res = h.read(at, 64 * 1024)?;
        if res.batches.is_empty() {
            break;
        }
        for r in res.records_from(at)? {
            let text = |b: Option<bytes::Bytes>| {
                String::from_utf8_lossy(&b.unwrap_or_default()).into_owned()
            };
            out.push((r.offset, text(r.key), text(r.value)));
        }
        at = res
            .next_offset()
            .ok_or("a read with batches has a next offset")?;
    }
    Ok(out)
}

/// One transaction of `p` writing `kvs` to partition 0 of `c`, committed or aborted; the offsets
/// of its records.
fn txn(p: &Producer, kvs: &[(&str, &str)], commit: bool) -> TestResult<Vec<i64>> {
    p.begin_transaction()?;
    let mut offsets = Vec::new();
    for (k, v) in kvs {
        let m = p.send(
            ProducerRecord::new("c", v.to_string())
                .key(k.to_string())
                .partition(0),
        )?;
        offsets.push(m.offset);
    }
    if commit {
        p.commit_transaction()?;
    } else {
        p.abort_transaction()?;
    }
    Ok(offsets)
}

/// Plain writes cycling over ten keys of their own, enough to roll many 1 KiB segments, so
/// what came before lies in sealed segments.
fn fill(log: &Log, round: usize) -> TestResult {
    let p = log.partition("c", 0)?;
    for i in 0..150 {
        p.append(&[Record::new(format!("f{round}-{i}")).key(format!("filler{}", i % 10))])?;
    }
    Ok(())
}

/// The control batches in the partition's segment files.
fn markers(dir: &Path) -> TestResult<Vec<BatchHeader>> {
    Ok(batch_headers(dir)?
        .into_iter()
        .filter(BatchHeader::is_control)
        .collect())
}

fn part(log: &TempLog) -> std::path::PathBuf {
    log.path().join("c-0")
}

#[test]
fn aborted_records_go_and_committed_ones_compact_in_place() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(86_400_000))?;
    let p = log.producer(ProducerConfig::transactional("t"))?;
    p.init_transactions()?;
    let first = txn(&p, &[("a", "a1"), ("e", "e1")], true)?;
    let aborted = txn(&p, &[("a", "a2"), ("b", "b1"), ("e", "e2")], false)?;
    let c1 = txn(&p, &[("c", "c1"), ("a", "a3")], true)?;
    fill(&log, 0)?;
    let before = contents(&log, IsolationLevel::ReadUncommitted)?;
    let committed_before = contents(&log, IsolationLevel::ReadCommitted)?;
    for o in &aborted {
        assert!(
            before.iter().any(|r| r.0 == *o),
            "read_uncommitted sees aborted data"
        );
    }

    log.compact("c")?;
    let after = contents(&log, IsolationLevel::ReadUncommitted)?;
    for o in &aborted {
        assert!(
            !after.iter().any(|r| r.0 == *o),
            "aborted record at {o} is gone: {after:?}"
        );
    }
    // Every record left is the one that was at its offset.
    let by_offset: BTreeMap<i64, &(i64, String, String)> =
        before.iter().map(|r| (r.0, r)).collect();
    for r in &after {
        assert_eq!(
            by_offset.get(&r.0),
            Some(&r),
            "offset {} kept its record",
            r.0
        );
    }
    // The latest committed record per key stays: `a3`, `c1`, and `e1`, which only the aborted
    // `e2` came after; `a1` is superseded by `a3`.
    let keep = |o: i64, k: &str, v: &str| after.contains(&(o, k.to_string(), v.to_string()));
    assert!(
        keep(c1[0], "c", "c1") && keep(c1[1], "a", "a3"),
        "{after:?}"
    );
    assert!(
        keep(first[1], "e", "e1"),
        "an aborted record supersedes nothing"
    );
    assert!(!after.iter().any(|r| r.0 == first[0]), "a1 superseded");
    assert!(
        !after.iter().any(|r| r.1 == "b"),
        "b was only ever written by an aborted txn"
    );
    // A read_committed reader sees the same as before, less what compaction superseded.
    let committed_after = contents(&log, IsolationLevel::ReadCommitted)?;
    let expected: Vec<_> = committed_before
        .into_iter()
        .filter(|r| after.contains(r))
        .collect();
    assert_eq!(committed_after, expected);
    assert_eq!(committed_after, after, "nothing aborted is left to skip");
    Ok(())
}

#[test]
fn markers_stay_while_their_data_do_and_go_after_the_horizon() -> TestResult {
    let retention = 300;
    let log = TempLog::with_topic_config("c", 1, compacted(retention))?;
    let p = log.producer(ProducerConfig::transactional("t"))?;
    p.init_transactions()?;
    // Committed, then superseded by a plain write: the transaction ends up empty.
    txn(&p, &[("a", "a1")], true)?;
    // Aborted: empty after the first compaction.
    txn(&p, &[("b", "b1")], false)?;
    // Committed and never superseded: its marker must stay.
    let kept = txn(&p, &[("d", "d1")], true)?;
    log.partition("c", 0)?
        .append(&[Record::new("a2").key("a")])?;
    fill(&log, 0)?;
    let all = markers(&part(&log))?;
    assert_eq!(all.len(), 3);
    let offsets: Vec<i64> = all.iter().map(|h| h.base_offset).collect();
    let committed = contents(&log, IsolationLevel::ReadCommitted)?;

    log.compact("c")?;
    let m = markers(&part(&log))?;
    let got: Vec<(i64, bool)> = m
        .iter()
        .map(|h| (h.base_offset, h.has_delete_horizon()))
        .collect();
    assert_eq!(
        got,
        [(offsets[0], true), (offsets[1], true), (offsets[2], false)],
        "the first pass stamps the markers of emptied transactions, and keeps them"
    );
    for h in &m[..2] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        assert!(h.base_timestamp > now - 5_000 && h.base_timestamp <= now + retention as i64);
    }
    // Before the horizon a pass keeps them.
    log.compact("c")?;
    assert_eq!(markers(&part(&log))?.len(), 3, "not before the horizon");

    // Maintenance comes back for the horizon by itself: nothing is dirty.
    std::thread::sleep(std::time::Duration::from_millis(retention + 100));
    log.maintain()?;
    let m = markers(&part(&log))?;
    assert_eq!(
        m.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
        [offsets[2]],
        "past the horizon the two go; the one whose data remain stays"
    );
    assert!(
        contents(&log, IsolationLevel::ReadCommitted)?
            .iter()
            .any(|r| r.0 == kept[0])
    );
    // Offsets never moved; what read_committed saw is still there where compaction kept it.
    let now = contents(&log, IsolationLevel::ReadCommitted)?;
    assert!(now.iter().all(|r| committed.contains(r)), "{now:?}");
    assert_eq!(
        log.partition("c", 0)?.last_stable_offset(),
        log.partition("c", 0)?.log_end_offset()
    );
    Ok(())
}

#[test]
fn a_merged_segment_keeps_the_txnindex_of_every_segment_it_replaces() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(86_400_000))?;
    let p = log.producer(ProducerConfig::transactional("t"))?;
    p.init_transactions()?;
    // Aborted transactions in segments apart, with rolls between them.
    let mut aborted = Vec::new();
    for round in 0..3 {
        let o = txn(&p, &[("x", "aborted")], false)?;
        aborted.push(o[0]);
        fill(&log, round)?;
    }
    txn(&p, &[("last", "committed")], true)?;
    fill(&log, 3)?;
    let before = txn_indexes(&part(&log))?;
    assert_eq!(
        before.len(),
        3,
        "one .txnindex per segment with an ABORT: {before:?}"
    );
    let entries = |ix: &[(i64, Vec<topiclog::AbortedTxn>)]| -> Vec<(i64, i64)> {
        ix.iter()
            .flat_map(|(_, e)| e.iter().map(|t| (t.first_offset, t.last_offset)))
            .collect()
    };
    let all = entries(&before);
    let segments_before = segment_logs(&part(&log)).len();

    log.compact("c")?;
    assert!(
        segment_logs(&part(&log)).len() < segments_before,
        "segments were merged"
    );
    let after = txn_indexes(&part(&log))?;
    assert_eq!(entries(&after), all, "every entry is still on disk");
    assert!(
        after.len() < before.len(),
        "in fewer, merged segments: {after:?}"
    );
    assert!(all.iter().map(|e| e.0).eq(aborted.iter().copied()));
    // Each file belongs to the segment its entries' markers lie in.
    let bases: Vec<i64> = segment_logs(&part(&log))
        .iter()
        .map(|l| segment_base(l))
        .collect();
    for (base, e) in &after {
        let i = bases
            .binary_search(base)
            .map_err(|_| "a .txnindex without its segment")?;
        let end = bases.get(i + 1).copied().unwrap_or(i64::MAX);
        assert!(
            e.iter()
                .all(|t| *base <= t.last_offset && t.last_offset < end),
            "{after:?}"
        );
    }

    // After a reopen the indexes are trusted as they are, and the log is whole.
    let committed = contents(&log, IsolationLevel::ReadCommitted)?;
    let log = log.reopen()?;
    assert_eq!(entries(&txn_indexes(&part(&log))?), all);
    assert_eq!(contents(&log, IsolationLevel::ReadCommitted)?, committed);
    // An aborted transaction in the active segment, not compacted, is still skipped.
    let p = log.producer(ProducerConfig::transactional("t"))?;
    p.init_transactions()?;
    txn(&p, &[("y", "aborted-late")], false)?;
    let log = log.reopen()?;
    assert_eq!(contents(&log, IsolationLevel::ReadCommitted)?, committed);
    assert_eq!(
        log.partition("c", 0)?.last_stable_offset(),
        log.partition("c", 0)?.log_end_offset()
    );
    Ok(())
}

/// Needs the `sim` feature for the crash points (`cargo test --all-features`).
#[cfg(feature = "sim")]
#[test]
fn a_crash_in_the_swap_keeps_the_merged_txnindex() -> TestResult {
    use topiclog::CrashPoint;
    for crash in [
        CrashPoint::AfterCleaned,
        CrashPoint::AfterSwap,
        CrashPoint::AfterFirstDelete,
        CrashPoint::AfterIndexRename,
    ] {
        let dir = tempfile::tempdir()?;
        let part = dir.path().join("c-0");
        let log = open(dir.path())?;
        log.create_topic_with("c", 1, compacted(86_400_000))?;
        let p = log.producer(ProducerConfig::transactional("t"))?;
        p.init_transactions()?;
        for round in 0..3 {
            txn(&p, &[("x", "aborted")], false)?;
            fill(&log, round)?;
        }
        txn(&p, &[("last", "committed")], true)?;
        fill(&log, 3)?;
        let all: Vec<_> = txn_indexes(&part)?
            .into_iter()
            .flat_map(|(_, e)| e)
            .collect();
        assert_eq!(all.len(), 3);
        drop(p);
        let committed = contents(&log, IsolationLevel::ReadCommitted)?;
        // Synced, as sealed segments are by the time they are compacted: the open trusts their
        // indexes instead of replaying them. (A replay finds no entry for an aborted
        // transaction whose records compaction removed, as Kafka's recovery does not either:
        // there is nothing left for a reader to skip.)
        log.flush()?;
        log.compact_until("c", Some(crash))?;
        log.abandon();
        let log = open(dir.path())?;
        let got: Vec<_> = txn_indexes(&part)?
            .into_iter()
            .flat_map(|(_, e)| e)
            .collect();
        assert_eq!(got, all, "{crash:?}");
        // Whatever the crash left, every record is the one at its offset, and each key's
        // latest one is there.
        let got = contents(&log, IsolationLevel::ReadCommitted)?;
        assert!(got.iter().all(|r| committed.contains(r)), "{crash:?}");
        let latest: BTreeMap<&String, &(i64, String, String)> =
            committed.iter().map(|r| (&r.1, r)).collect();
        assert!(latest.values().all(|r| got.contains(r)), "{crash:?}");
        let names = dir_names(&part)?;
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".swap") || n.ends_with(".cleaned")),
            "{crash:?}: {names:?}"
        );
        assert_eq!(
            log.partition("c", 0)?.last_stable_offset(),
            log.partition("c", 0)?.log_end_offset()
        );
        log.compact("c")?;
        let got: Vec<_> = txn_indexes(&part)?
            .into_iter()
            .flat_map(|(_, e)| e)
            .collect();
        assert_eq!(got, all, "{crash:?}: and after a full pass");
    }
    Ok(())
}

#[test]
fn a_reopen_after_compaction_finds_no_open_transaction() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(0))?;
    let first = log.producer(ProducerConfig::transactional("first"))?;
    first.init_transactions()?;
    let second = log.producer(ProducerConfig::transactional("second"))?;
    second.init_transactions()?;
    // `second`'s first two transactions end up empty and their markers go; its last one keeps
    // its record. `first`'s last batch is transactional and superseded: it stays as a header
    // without records, so its marker must stay too, or the batch would read as a transaction
    // never ended.
    txn(&second, &[("s", "s1")], true)?;
    txn(&second, &[("s", "s2")], false)?;
    let t = txn(&second, &[("t", "t1")], true)?;
    let last = txn(&first, &[("f", "f1")], true)?;
    log.partition("c", 0)?
        .append(&[Record::new("s3").key("s"), Record::new("f2").key("f")])?;
    fill(&log, 0)?;
    assert_eq!(markers(&part(&log))?.len(), 4);
    log.compact("c")?;
    log.compact("c")?;
    let kept: Vec<i64> = markers(&part(&log))?
        .iter()
        .map(|h| h.base_offset)
        .collect();
    assert_eq!(
        kept,
        [t[0] + 1, last[0] + 1],
        "the markers of transactions with a batch left"
    );
    let empty = batch_headers(&part(&log))?
        .into_iter()
        .find(|h| h.base_offset == last[0])
        .ok_or("first's last batch is kept")?;
    assert!(empty.is_transactional() && empty.record_count == 0);
    let committed = contents(&log, IsolationLevel::ReadCommitted)?;
    drop((first, second));

    // Without snapshots the producer state comes from the batch headers alone.
    let dir = log.close()?;
    for f in std::fs::read_dir(dir.path().join("c-0"))? {
        let f = f?.path();
        if f.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(f)?;
        }
    }
    let log = open(dir.path())?;
    let h = log.partition("c", 0)?;
    assert_eq!(
        h.last_stable_offset(),
        h.log_end_offset(),
        "no transaction open"
    );
    assert_eq!(contents(&log, IsolationLevel::ReadCommitted)?, committed);
    // And both producers go on.
    let first = log.producer(ProducerConfig::transactional("first"))?;
    first.init_transactions()?;
    txn(&first, &[("f", "f3")], true)?;
    assert_eq!(h.last_stable_offset(), h.log_end_offset());
    Ok(())
}

#[test]
fn an_open_transaction_neither_compacts_nor_is_compacted() -> TestResult {
    let log = TempLog::with_topic_config("c", 1, compacted(86_400_000))?;
    let committed = log
        .partition("c", 0)?
        .append(&[Record::new("v1").key("k")])?;
    fill(&log, 0)?;
    let p = log.producer(ProducerConfig::transactional("t"))?;
    p.init_transactions()?;
    p.begin_transaction()?;
    let open = p.send(ProducerRecord::new("c", "v2").key("k").partition(0))?;
    fill(&log, 1)?;
    // `v2` may still abort: it must not make `v1` look superseded.
    log.compact("c")?;
    let all = contents(&log, IsolationLevel::ReadUncommitted)?;
    assert!(all.contains(&(committed.base_offset, "k".into(), "v1".into())));
    assert!(
        all.contains(&(open.offset, "k".into(), "v2".into())),
        "the open one stays"
    );
    p.abort_transaction()?;
    fill(&log, 2)?;
    log.compact("c")?;
    let all = contents(&log, IsolationLevel::ReadUncommitted)?;
    let k: Vec<_> = all.iter().filter(|r| r.1 == "k").collect();
    assert_eq!(
        k,
        [&(committed.base_offset, "k".into(), "v1".into())],
        "v1 is k's latest"
    );
    Ok(())
}
