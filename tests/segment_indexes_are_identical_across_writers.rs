//! A sealed segment's `.index` and `.timeindex` are byte for byte the same whether the live writer, the open's rebuild (whole or resumed) or a compaction rewrite made them.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use topiclog::{CleanupPolicy, Log, PartitionHandle, Record, Result, TopicConfig};

const T0: i64 = 1_700_000_000_000;
const HOUR: i64 = 3_600_000;

/// A compacted topic indexed every 128 bytes whose segments roll by time only: the batches
/// below all land in segment 0, and the last append (two hours later) rolls it.
fn config() -> TopicConfig {
    let mut c = TopicConfig::new();
    c.cleanup_policy = CleanupPolicy::Compact;
    c.index_interval_bytes = 128;
    c.segment_ms = HOUR as u64;
    c
}

/// (records in the batch, value length, the batch's timestamp relative to `T0`): sizes from
/// one small record to several large ones, timestamps that go back, repeat and jump, and a
/// last batch that is small (not indexed) and holds the segment's largest timestamp, so the
/// roll's final time entry is one the segment must get.
const BATCHES: &[(usize, usize, i64)] = &[
    (1, 10, 1_000),
    (3, 40, 1_000),
    (1, 5, 900),
    (5, 120, 2_000),
    (1, 5, 2_000),
    (2, 60, 1_500),
    (1, 300, 3_000),
    (1, 5, 2_999),
    (1, 5, 3_000),
    (4, 30, 500),
    (1, 700, 4_000),
    (1, 5, 3_500),
    (2, 5, 4_000),
    (6, 50, 6_000),
    (1, 5, 5_000),
    (1, 5, 7_000),
];

/// Appends batch `i` of [`BATCHES`], with keys unique across the log.
fn append_batch(p: &PartitionHandle, i: usize) -> Result<()> {
    let (n, len, ts) = BATCHES[i];
    let recs: Vec<Record> = (0..n)
        .map(|j| {
            Record::new("v".repeat(len))
                .key(format!("k{i}-{j}"))
                .timestamp(T0 + ts)
        })
        .collect();
    p.append(&recs)?;
    Ok(())
}

/// Appends every batch; with `flush_at`, flushes (checkpointing the recovery point inside
/// segment 0) before that batch. Then rolls segment 0 with a batch two hours later.
fn write_all(log: &Log, flush_at: Option<usize>) -> Result<()> {
    log.create_topic_with("t", 1, config())?;
    let p = log.partition("t", 0)?;
    for i in 0..BATCHES.len() {
        if flush_at == Some(i) {
            log.flush()?;
        }
        append_batch(&p, i)?;
    }
    p.append(&[Record::new("roll").key("roll").timestamp(T0 + 2 * HOUR)])?;
    Ok(())
}

fn segment0(dir: &Path, ext: &str) -> PathBuf {
    dir.join("t-0").join(format!("{:020}.{ext}", 0))
}

/// Segment 0's log, offset index and time index.
fn files(dir: &Path) -> [Vec<u8>; 3] {
    ["log", "index", "timeindex"].map(|ext| fs::read(segment0(dir, ext)).unwrap())
}

fn assert_same(what: &str, expected: &[Vec<u8>; 3], got: &[Vec<u8>; 3]) {
    for (i, ext) in ["log", "index", "timeindex"].iter().enumerate() {
        assert_eq!(
            expected[i], got[i],
            "{what}: segment 0's .{ext} differs from the live writer's"
        );
    }
}

#[test]
fn a_sealed_segment_has_the_same_indexes_from_every_writer() -> Result<()> {
    // (a) The live writer, closed cleanly.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path())?;
    write_all(&log, None)?;
    log.close()?;
    let live = files(dir.path());
    assert_eq!(
        segment_logs(&dir.path().join("t-0")).len(),
        2,
        "segment 0 rolled"
    );
    assert!(
        live[1].len() >= 8 * 8,
        "the interval was crossed many times"
    );
    let (index_entries, time_entries) = (live[1].len() / 8, live[2].len() / 12);
    assert!(
        time_entries > 3 && time_entries < index_entries,
        "{time_entries}"
    );
    let last_time = &live[2][live[2].len() - 12..];
    assert_eq!(
        i64::from_be_bytes(last_time[..8].try_into().unwrap()),
        T0 + 7_000,
        "the roll's final entry holds the largest timestamp"
    );

    // (b) Indexes deleted, rebuilt by a whole scan at a clean open and at an unclean one.
    for unclean in [false, true] {
        fs::remove_file(segment0(dir.path(), "index")).unwrap();
        fs::remove_file(segment0(dir.path(), "timeindex")).unwrap();
        if unclean {
            fs::remove_file(dir.path().join(".kafka_cleanshutdown")).unwrap();
        }
        let log = open(dir.path())?;
        let t = &log.recovery_report().partitions;
        let t = t.iter().find(|r| r.topic == "t").unwrap();
        assert!(t.indexes_rebuilt >= 1);
        assert_eq!(t.clean, !unclean);
        assert_same("rebuilt at open", &live, &files(dir.path()));
        log.close()?;
    }

    // (c) A compaction rewrite that removes nothing.
    let inode = |ext| fs::metadata(segment0(dir.path(), ext)).unwrap().ino();
    let before = [inode("log"), inode("index"), inode("timeindex")];
    let log = open(dir.path())?;
    let report = log.compact("t")?;
    assert_eq!((report.partitions_touched, report.records_removed), (1, 0));
    let after = [inode("log"), inode("index"), inode("timeindex")];
    assert!(
        before.iter().zip(&after).all(|(b, a)| b != a),
        "compaction replaced segment 0's files"
    );
    assert_same("rewritten by compaction", &live, &files(dir.path()));
    log.close()?;

    // (b') A crash with the recovery point inside segment 0: the open keeps its index up to
    // there and scans the rest, as the writer would have indexed it.
    let crashed = tempfile::tempdir().unwrap();
    let log = open(crashed.path())?;
    write_all(&log, Some(BATCHES.len() / 2))?;
    assert_same("written before the crash", &live, &files(crashed.path()));
    log.abandon();
    let log = open(crashed.path())?;
    let t = &log.recovery_report().partitions;
    let t = t.iter().find(|r| r.topic == "t").unwrap();
    assert!(!t.clean);
    assert!(
        t.bytes_scanned < live[0].len() as u64,
        "segment 0 was resumed, not scanned whole ({} bytes scanned)",
        t.bytes_scanned
    );
    assert_same("resumed at open", &live, &files(crashed.path()));
    log.close()
}
