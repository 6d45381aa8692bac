//! Injected I/O faults (`topiclog::sim`): ENOSPC, EIO and short writes on appends, index
//! writes and rolls; failed fsyncs; failed checkpoint writes; failed renames in retention and
//! compaction; failed reads at recovery. Each gives a typed error and corrupts nothing: a failed
//! write leaves the files ending where readers think they do and appends resume once the fault
//! clears; a failed fsync poisons the partition until it is reopened; and every acknowledged
//! record is there after reopening (after a clean close, a crash, or a power loss).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use topiclog::sim::{FaultKind, Op, SimFs};
use topiclog::{
    CleanupPolicy, Error, FlushPolicy, Log, PartitionHandle, Record, Result, TopicConfig,
};

const KINDS: [FaultKind; 3] = [FaultKind::NoSpace, FaultKind::Eio, FaultKind::ShortWrite];

fn errno(kind: FaultKind) -> i32 {
    match kind {
        FaultKind::NoSpace | FaultKind::ShortWrite => libc_enospc(),
        FaultKind::Eio => 5,
        FaultKind::Unsupported => 95,
    }
}

fn libc_enospc() -> i32 {
    28
}

/// The OS error number inside an `Error::Io`.
fn os_error(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// Record `i`'s value: mostly small, every fourth one 0-20 KB, so faults also land inside
/// large writes, batches that straddle segment ends and rebuilt index spans.
fn value(i: u64) -> String {
    let filler = if i % 4 == 3 {
        (i.wrapping_mul(2_654_435_761) >> 7) as usize % 20_000
    } else {
        (i % 29) as usize
    };
    format!("value-{i}-{}", "y".repeat(filler))
}

fn one(i: u64) -> Vec<Record> {
    vec![
        Record::new(value(i))
            .key(format!("k{}", i % 7))
            .timestamp(1_700_000_000_000 + i as i64),
    ]
}

/// Checks that the partition holds exactly `n` records, `value(0..n)`, at offsets `0..n`.
fn check_values(log: &Log, topic: &str, n: u64) -> Result<()> {
    let p = log.partition(topic, 0)?;
    let got = read_all(&p)?;
    assert_eq!(got.len() as u64, n, "record count");
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(value(i as u64).as_bytes()));
    }
    for o in (0..n as i64).step_by(3) {
        assert_eq!(p.records(o, 1)?[0].offset, o, "index lookup at {o}");
    }
    Ok(())
}

/// The lengths of the active segment's log, offset index and time index.
fn active_file_lens(dir: &Path) -> TestResult<[u64; 3]> {
    let log = segment_logs(&dir.join("t-0")).pop().ok_or("no segments")?;
    let len = |p: &Path| std::fs::metadata(p).map(|m| m.len());
    Ok([
        len(&log)?,
        len(&log.with_extension("index"))?,
        len(&log.with_extension("timeindex"))?,
    ])
}

#[test]
fn failed_appends_cut_their_bytes_and_resume_when_the_fault_clears() -> TestResult {
    for target in [".log", ".index", ".timeindex"] {
        for kind in KINDS {
            for policy in [FlushPolicy::Os, FlushPolicy::EveryBatch] {
                let dir = tempfile::tempdir()?;
                let sim = SimFs::install(dir.path())?;
                let log = open(dir.path())?;
                let mut c = small_segments(1 << 20);
                c.index_interval_bytes = 64;
                c.flush_policy = policy;
                log.create_topic_with("t", 1, c)?;
                let p = log.partition("t", 0)?;
                let mut n = 0;
                while n < 10 {
                    p.append(&one(n))?;
                    n += 1;
                }
                let before = active_file_lens(dir.path())?;
                sim.fail(Op::Write, target, kind);
                // Appends that touch the failing file fail; none is published.
                let mut failures = 0;
                for _ in 0..6 {
                    match p.append(&one(n)) {
                        Ok(at) => {
                            assert_eq!(at.base_offset as u64, n);
                            n += 1;
                        }
                        Err(e) => {
                            assert_eq!(os_error(&e), Some(errno(kind)), "{target} {kind:?}: {e}");
                            assert_eq!(p.log_end_offset() as u64, n);
                            failures += 1;
                        }
                    }
                }
                assert!(failures > 0, "{target}: the fault was never hit");
                // The files end at the published ends: no partial batch or index entry.
                let now = active_file_lens(dir.path())?;
                assert_eq!(now[1] % 8, 0, "whole offset-index entries");
                assert_eq!(now[2] % 12, 0, "whole time-index entries");
                if target == ".log" {
                    assert_eq!(now[0], before[0], "{kind:?}: log cut back");
                }
                check_values(&log, "t", n)?;
                sim.clear_faults();
                for _ in 0..5 {
                    assert_eq!(p.append(&one(n))?.base_offset as u64, n);
                    n += 1;
                }
                check_values(&log, "t", n)?;
                drop(p);
                log.abandon();
                drop(sim);
                let log = open(dir.path())?;
                check_values(&log, "t", n)?;
                log.close()?;
            }
        }
    }
    Ok(())
}

/// After an append failed on a sync, with `n` records acknowledged: writes and flushes are
/// refused even though the disk "recovered", reads still serve the synced end; after a crash
/// (and a simulated power loss with `power_loss`'s seed) the log reopens with every
/// acknowledged record and takes appends.
fn poisoned_then_reopens_whole(
    dir: &Path,
    sim: SimFs,
    log: Log,
    p: PartitionHandle,
    n: u64,
    power_loss: Option<u64>,
) -> TestResult {
    let e = p.append(&one(n)).unwrap_err();
    assert!(matches!(e, Error::Poisoned { .. }), "{e}");
    assert_eq!(p.high_watermark() as u64, n);
    assert!(matches!(p.flush(), Err(Error::Poisoned { .. })));
    drop(p);
    log.abandon();
    match power_loss {
        Some(seed) => {
            sim.power_loss(seed)?;
        }
        None => drop(sim),
    }
    let log = open(dir)?;
    let p = log.partition("t", 0)?;
    // The unacknowledged batch may or may not have reached the disk.
    let end = p.log_end_offset() as u64;
    assert!(end == n || end == n + 1, "end {end}, acknowledged {n}");
    check_values(&log, "t", end)?;
    assert_eq!(p.append(&one(end))?.base_offset as u64, end);
    drop(p);
    log.close()?;
    Ok(())
}

#[test]
fn a_failed_fsync_poisons_until_reopened_and_loses_nothing_acknowledged() -> TestResult {
    for (round, kind) in [FaultKind::Eio, FaultKind::NoSpace].into_iter().enumerate() {
        for power_loss in [false, true] {
            let dir = tempfile::tempdir()?;
            let sim = SimFs::install(dir.path())?;
            let log = open(dir.path())?;
            let mut c = small_segments(2048);
            c.flush_policy = FlushPolicy::EveryBatch;
            log.create_topic_with("t", 1, c)?;
            let p = log.partition("t", 0)?;
            let mut n = 0;
            while n < 40 {
                p.append(&one(n))?;
                n += 1;
            }
            sim.fail_times(Op::Sync, ".log", kind, 1);
            let e = p.append(&one(n)).unwrap_err();
            assert_eq!(os_error(&e), Some(errno(kind)), "{e}");
            let seed = power_loss.then_some(round as u64 + 7);
            poisoned_then_reopens_whole(dir.path(), sim, log, p, n, seed)?;
        }
    }
    Ok(())
}

/// A roll leaves the new segment's directory entry to the next sync: under `EveryBatch`
/// the append that needs it is not acknowledged when that directory sync fails, the
/// partition is poisoned, and nothing acknowledged is lost, through a power loss too.
#[test]
fn a_failed_directory_sync_after_a_roll_acknowledges_nothing_it_covers() -> TestResult {
    for (round, kind) in [FaultKind::Eio, FaultKind::NoSpace].into_iter().enumerate() {
        for power_loss in [false, true] {
            let dir = tempfile::tempdir()?;
            let sim = SimFs::install(dir.path())?;
            let log = open(dir.path())?;
            let mut c = small_segments(1024);
            c.flush_policy = FlushPolicy::EveryBatch;
            log.create_topic_with("t", 1, c)?;
            let p = log.partition("t", 0)?;
            let mut n = 0;
            while p.log_end_offset() < 12 {
                p.append(&one(n))?;
                n += 1;
            }
            sim.fail_times(Op::SyncDir, "t-0", kind, 1);
            let e = loop {
                match p.append(&one(n)) {
                    Ok(_) => n += 1,
                    Err(e) => break e,
                }
                assert!(n < 40, "no append needed the directory sync");
            };
            assert_eq!(os_error(&e), Some(errno(kind)), "{e}");
            assert!(segment_logs(&dir.path().join("t-0")).len() > 1);
            let seed = power_loss.then_some(round as u64 + 11);
            poisoned_then_reopens_whole(dir.path(), sim, log, p, n, seed)?;
        }
    }
    Ok(())
}

#[test]
fn a_failed_roll_leaves_the_log_whole_and_the_next_append_rolls() -> TestResult {
    let faults = [
        (Op::Create, ".log"),
        (Op::Create, ".index"),
        (Op::Create, ".timeindex"),
        // The directory sync a roll needs is left to the next sync of the partition (below).
        (Op::Write, ".timeindex"),
        (Op::Write, ".snapshot"),
    ];
    for (op, target) in faults {
        for kind in KINDS {
            let dir = tempfile::tempdir()?;
            let sim = SimFs::install(dir.path())?;
            let log = open(dir.path())?;
            log.create_topic_with("t", 1, small_segments(1024))?;
            let p = log.partition("t", 0)?;
            let mut n = 0;
            // Fill the first segment close to its size.
            while p.log_end_offset() < 12 {
                p.append(&one(n))?;
                n += 1;
            }
            sim.fail(op, target, kind);
            let mut failed = false;
            for _ in 0..40 {
                match p.append(&one(n)) {
                    Ok(_) => n += 1,
                    Err(e) => {
                        assert!(os_error(&e).is_some(), "{op:?} {target}: {e}");
                        failed = true;
                        break;
                    }
                }
            }
            assert!(failed, "{op:?} {target}: no roll failed");
            check_values(&log, "t", n)?;
            sim.clear_faults();
            for _ in 0..30 {
                assert_eq!(p.append(&one(n))?.base_offset as u64, n);
                n += 1;
            }
            assert!(segment_logs(&dir.path().join("t-0")).len() > 1);
            check_values(&log, "t", n)?;
            drop(p);
            log.abandon();
            drop(sim);
            let log = open(dir.path())?;
            check_values(&log, "t", n)?;
            log.close()?;
            let log = open(dir.path())?;
            check_values(&log, "t", n)?;
        }
    }
    Ok(())
}

#[test]
fn a_failed_checkpoint_write_keeps_the_old_one() -> TestResult {
    for (op, target) in [
        (Op::Write, "checkpoint"),
        (Op::Sync, "checkpoint"),
        (Op::Rename, "checkpoint"),
        (Op::SyncDir, ""),
    ] {
        let dir = tempfile::tempdir()?;
        let sim = SimFs::install(dir.path())?;
        let log = open(dir.path())?;
        log.create_topic_with("t", 1, small_segments(1024))?;
        let p = log.partition("t", 0)?;
        for n in 0..60 {
            p.append(&one(n))?;
        }
        log.flush()?;
        // A new sync moves the recovery point, so the next checkpoint differs (an unchanged
        // one is not rewritten).
        p.append(&one(60))?;
        p.flush()?;
        sim.fail(op, target, FaultKind::Eio);
        let e = log.maintain().unwrap_err();
        assert_eq!(os_error(&e), Some(5), "{op:?} {target}: {e}");
        sim.clear_faults();
        drop(p);
        log.abandon();
        drop(sim);
        let log = open(dir.path())?;
        check_values(&log, "t", 61)?;
    }
    Ok(())
}

#[test]
fn a_failed_rename_in_retention_loses_nothing_above_the_log_start() -> TestResult {
    for target in [".log", ".index", ".timeindex"] {
        let dir = tempfile::tempdir()?;
        let sim = SimFs::install(dir.path())?;
        let log = open(dir.path())?;
        let mut c = small_segments(1024);
        c.retention_bytes = Some(4096);
        log.create_topic_with("t", 1, c)?;
        let p = log.partition("t", 0)?;
        for n in 0..200 {
            p.append(&one(n))?;
        }
        sim.fail(Op::Rename, &format!("{target}.deleted"), FaultKind::Eio);
        let e = log.maintain().unwrap_err();
        assert_eq!(os_error(&e), Some(5), "{target}: {e}");
        let check_tail = |log: &Log| -> Result<()> {
            let p = log.partition("t", 0)?;
            let got = read_all(&p)?;
            assert_eq!(got.first().map(|r| r.offset), Some(p.log_start_offset()));
            assert_eq!(got.last().map(|r| r.offset), Some(199));
            for r in &got {
                assert_eq!(r.value.as_deref(), Some(value(r.offset as u64).as_bytes()));
            }
            Ok(())
        };
        check_tail(&log)?;
        sim.clear_faults();
        log.maintain()?;
        check_tail(&log)?;
        drop(p);
        log.abandon();
        drop(sim);
        let log = open(dir.path())?;
        check_tail(&log)?;
    }
    Ok(())
}

#[test]
fn a_failed_rename_in_compaction_keeps_every_latest_record() -> TestResult {
    for target in [
        ".cleaned",
        "index.swap ->",
        "timeindex.swap ->",
        "log.swap ->",
    ] {
        let dir = tempfile::tempdir()?;
        let sim = SimFs::install(dir.path())?;
        let log = open(dir.path())?;
        let mut c = small_segments(1024);
        c.cleanup_policy = CleanupPolicy::Compact;
        log.create_topic_with("c", 1, c)?;
        let p = log.partition("c", 0)?;
        let mut latest = BTreeMap::new();
        for n in 0..150u64 {
            p.append(&one(n))?;
            latest.insert(n % 7, n);
        }
        sim.fail(Op::Rename, target, FaultKind::Eio);
        let e = log.compact("c").unwrap_err();
        assert_eq!(os_error(&e), Some(5), "{target}: {e}");
        let check = |log: &Log| -> Result<()> {
            let got = read_all(&log.partition("c", 0)?)?;
            assert!(got.windows(2).all(|w| w[0].offset < w[1].offset));
            for r in &got {
                assert_eq!(r.value.as_deref(), Some(value(r.offset as u64).as_bytes()));
            }
            for &o in latest.values() {
                assert!(
                    got.iter().any(|r| r.offset as u64 == o),
                    "{target}: {o} lost"
                );
            }
            Ok(())
        };
        check(&log)?;
        drop(p);
        log.abandon();
        drop(sim);
        let log = open(dir.path())?;
        check(&log)?;
        log.compact("c")?;
        check(&log)?;
    }
    Ok(())
}

#[test]
fn failed_reads_at_open_give_an_error_or_a_rebuilt_index_never_damage() -> TestResult {
    for target in [".index", ".timeindex", "checkpoint", ".snapshot", ".topics"] {
        for clean in [true, false] {
            let dir = tempfile::tempdir()?;
            {
                let log = open(dir.path())?;
                let mut c = TopicConfig::new();
                c.segment_bytes = 1024;
                c.index_interval_bytes = 64;
                log.create_topic_with("t", 1, c)?;
                let p = log.partition("t", 0)?;
                for n in 0..80 {
                    p.append(&one(n))?;
                }
                drop(p);
                if clean {
                    log.close()?;
                } else {
                    log.abandon();
                }
            }
            let sim = SimFs::install(dir.path())?;
            sim.fail(Op::Read, target, FaultKind::Eio);
            match open(dir.path()) {
                // Indexes, checkpoints and snapshots are rebuilt or replayed from the log.
                Ok(log) => {
                    check_values(&log, "t", 80)?;
                    log.close()?;
                }
                // Topic metadata cannot be: the open fails, naming the file.
                Err(e) => {
                    assert_eq!(target, ".topics", "{e}");
                    assert_eq!(os_error(&e), Some(5));
                }
            }
            sim.clear_faults();
            drop(sim);
            let log = open(dir.path())?;
            check_values(&log, "t", 80)?;
            log.close()?;
        }
    }
    Ok(())
}

/// The bytes of `path` from `from` on.
fn tail_of(path: &Path, from: u64) -> TestResult<Vec<u8>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.get(from as usize..).unwrap_or_default().to_vec())
}

#[test]
fn a_full_disk_at_a_preallocated_extension_is_a_typed_error_and_loses_nothing() -> TestResult {
    for kind in [FaultKind::NoSpace, FaultKind::Eio] {
        for policy in [FlushPolicy::Os, FlushPolicy::EveryBatch] {
            for power_loss in [None, Some(7 + kind as u64)] {
                let dir = tempfile::tempdir()?;
                let sim = SimFs::install(dir.path())?;
                let log = open(dir.path())?;
                let mut c = small_segments(1 << 20).with("preallocate", "true")?;
                c.flush_policy = policy;
                log.create_topic_with("t", 1, c)?;
                let p = log.partition("t", 0)?;
                let mut n = 0;
                while n < 10 {
                    p.append(&one(n))?;
                    n += 1;
                }
                sim.fail(Op::Allocate, ".log", kind);
                // Appends that need the file extended fail, with the OS error, and publish
                // nothing; those that fit in the allocated range go on.
                let mut failures = 0;
                for _ in 0..60 {
                    match p.append(&one(n)) {
                        Ok(at) => {
                            assert_eq!(at.base_offset as u64, n);
                            n += 1;
                        }
                        Err(e) => {
                            assert_eq!(os_error(&e), Some(errno(kind)), "{kind:?}: {e}");
                            assert_eq!(p.log_end_offset() as u64, n);
                            failures += 1;
                        }
                    }
                }
                assert!(failures > 0, "the extension was never needed");
                check_values(&log, "t", n)?;
                sim.clear_faults();
                for _ in 0..5 {
                    assert_eq!(p.append(&one(n))?.base_offset as u64, n);
                    n += 1;
                }
                check_values(&log, "t", n)?;
                if policy == FlushPolicy::Os {
                    log.flush()?;
                }
                drop(p);
                log.abandon();
                match power_loss {
                    Some(seed) => {
                        sim.power_loss(seed)?;
                    }
                    None => drop(sim),
                }
                let log = open(dir.path())?;
                check_values(&log, "t", n)?;
                log.close()?;
            }
        }
    }
    Ok(())
}

#[test]
fn a_failed_store_into_the_preallocated_tail_leaves_zeros_after_the_published_end() -> TestResult {
    for kind in KINDS {
        let dir = tempfile::tempdir()?;
        let sim = SimFs::install(dir.path())?;
        let log = open(dir.path())?;
        let mut c = small_segments(1 << 20).with("preallocate", "true")?;
        // An index entry with every batch, so each append writes the index after its store.
        c.index_interval_bytes = 1;
        log.create_topic_with("t", 1, c)?;
        let p = log.partition("t", 0)?;
        let mut n = 0;
        while n < 10 {
            p.append(&one(n))?;
            n += 1;
        }
        // A store cannot fail on a real disk (its range is allocated); the simulation fails
        // one anyway, or the index write after it, to check that a refused batch is not left
        // whole after the published end, where a recovery would take it for data.
        for target in [".log", ".index"] {
            sim.fail_times(Op::Write, target, kind, 1);
            let e = p.append(&one(n)).unwrap_err();
            assert_eq!(os_error(&e), Some(errno(kind)), "{target} {kind:?}: {e}");
            assert_eq!(p.log_end_offset() as u64, n);
            let active = segment_logs(&dir.path().join("t-0"))
                .pop()
                .ok_or("no segment")?;
            let size = log.describe_topic("t")?.partitions[0].size_bytes;
            assert!(tail_of(&active, size)?.iter().all(|&b| b == 0), "{target}");
            assert_eq!(p.append(&one(n))?.base_offset as u64, n);
            n += 1;
        }
        check_values(&log, "t", n)?;
        drop(p);
        log.abandon();
        drop(sim);
        let log = open(dir.path())?;
        check_values(&log, "t", n)?;
        log.close()?;
    }
    Ok(())
}

#[test]
fn a_file_system_without_fallocate_gets_the_write_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let sim = SimFs::install(dir.path())?;
    let log = open(dir.path())?;
    log.create_topic_with("t", 1, small_segments(1 << 20).with("preallocate", "true")?)?;
    sim.fail(Op::Allocate, ".log", FaultKind::Unsupported);
    let p = log.partition("t", 0)?;
    for n in 0..30 {
        assert_eq!(p.append(&one(n))?.base_offset as u64, n);
    }
    check_values(&log, "t", 30)?;
    let active = segment_logs(&dir.path().join("t-0"))
        .pop()
        .ok_or("no segment")?;
    assert_eq!(
        std::fs::metadata(&active)?.len(),
        log.describe_topic("t")?.partitions[0].size_bytes,
        "written, not preallocated"
    );
    drop(p);
    log.abandon();
    drop(sim);
    let log = open(dir.path())?;
    check_values(&log, "t", 30)?;
    Ok(())
}

#[test]
fn a_failed_trim_at_a_roll_fails_the_roll_and_the_next_append_rolls() -> TestResult {
    let dir = tempfile::tempdir()?;
    let sim = SimFs::install(dir.path())?;
    let log = open(dir.path())?;
    log.create_topic_with("t", 1, small_segments(4096).with("preallocate", "true")?)?;
    let p = log.partition("t", 0)?;
    let mut n = 0u64;
    let mut failures = 0;
    // The trim is the only `ftruncate` of a preallocated `.log`: the first roll's fails.
    sim.fail_times(Op::SetLen, ".log", FaultKind::Eio, 1);
    // Small records only, so the roll comes from the size.
    while segment_logs(&dir.path().join("t-0")).len() < 2 && n < 10_000 {
        match p.append(&[Record::new(format!("r{n}")).timestamp(1_700_000_000_000)]) {
            Ok(_) => n += 1,
            Err(e) => {
                assert_eq!(os_error(&e), Some(5), "{e}");
                assert_eq!(p.log_end_offset() as u64, n);
                failures += 1;
            }
        }
    }
    assert_eq!(failures, 1, "the failed trim fails one append");
    assert_eq!(p.log_end_offset() as u64, n);
    let logs = segment_logs(&dir.path().join("t-0"));
    let sealed = &logs[0];
    let mut data = 0u64;
    for b in topiclog::Batches::new(std::fs::read(sealed)?.into()) {
        data += b?.len() as u64;
    }
    assert_eq!(
        std::fs::metadata(sealed)?.len(),
        data,
        "the sealed segment is trimmed"
    );
    drop(p);
    log.close()?;
    drop(sim);
    let log = open(dir.path())?;
    assert_eq!(read_all(&log.partition("t", 0)?)?.len() as u64, n);
    Ok(())
}
