//! What recovery does with transactions whose files are damaged or were never synced: a torn
//! `.txnindex` is rebuilt from the batches, a missing one after a crash too, and an
//! end-transaction marker lost with a damaged tail is written again from the transaction
//! state, and reported.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;
use common::*;

use std::fs;

use topiclog::{IsolationLevel, Log, ProducerConfig, ProducerRecord};

fn committed(log: &Log, t: &str, p: i32) -> TestResult<Vec<String>> {
    let h = log
        .partition(t, p)?
        .with_isolation_level(IsolationLevel::ReadCommitted);
    Ok(read_all(&h)?
        .into_iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect())
}

/// "keep" committed, then "drop" aborted, in topic `t` (one partition).
fn commit_then_abort(log: &Log) -> TestResult {
    let p = log.producer(ProducerConfig::transactional("d"))?;
    p.init_transactions()?;
    p.begin_transaction()?;
    p.send(ProducerRecord::new("t", "keep"))?;
    p.commit_transaction()?;
    p.begin_transaction()?;
    p.send(ProducerRecord::new("t", "drop"))?;
    p.abort_transaction()?;
    Ok(())
}

#[test]
fn a_torn_txnindex_is_rebuilt_from_the_batches() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    commit_then_abort(&log)?;
    let dir = log.close()?;
    let index = dir.path().join("t-0").join("00000000000000000000.txnindex");
    let mut bytes = fs::read(&index)?;
    assert_eq!(bytes.len(), 34);
    bytes.truncate(20);
    fs::write(&index, &bytes)?;
    let log = open(dir.path())?;
    let report = log.recovery_report();
    let t = report
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .ok_or("no t")?;
    assert_eq!(t.txn_indexes_rebuilt, 1, "{t:?}");
    assert_eq!(committed(&log, "t", 0)?, ["keep"]);
    assert_eq!(fs::read(&index)?.len(), 34);
    Ok(())
}

#[test]
fn a_txnindex_lost_in_a_crash_is_rebuilt() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    commit_then_abort(&log)?;
    let dir = log.path().to_path_buf();
    let index = dir.join("t-0").join("00000000000000000000.txnindex");
    fs::remove_file(&index)?;
    let keep = log.abandon();
    let log = open(keep.path())?;
    assert_eq!(committed(&log, "t", 0)?, ["keep"]);
    assert!(index.exists(), "rebuilt");
    Ok(())
}

#[test]
fn a_marker_lost_with_a_damaged_tail_is_written_again_from_the_state() -> TestResult {
    let log = TempLog::with_topic("t", 2)?;
    let p = log.producer(ProducerConfig::transactional("m"))?;
    p.init_transactions()?;
    p.begin_transaction()?;
    p.send(ProducerRecord::new("t", "a").partition(0))?;
    p.send(ProducerRecord::new("t", "b").partition(1))?;
    p.commit_transaction()?;
    drop(p);
    let dir = log.close()?;
    // Cut partition 1's COMMIT marker (its last batch) off its log.
    let seg = dir.path().join("t-1").join("00000000000000000000.log");
    let bytes = fs::read(&seg)?;
    let first_len = 12 + u32::from_be_bytes(bytes[8..12].try_into()?) as usize;
    fs::write(&seg, &bytes[..first_len])?;
    let log = open(dir.path())?;
    let report = log.recovery_report();
    let fixed: Vec<_> = report
        .transactions_completed
        .iter()
        .filter(|t| t.reason == "marker missing")
        .collect();
    assert_eq!(fixed.len(), 1, "{report:?}");
    assert!(fixed[0].committed, "the state says it committed");
    assert_eq!(fixed[0].transactional_id.as_deref(), Some("m"));
    assert!(
        report
            .notices()
            .iter()
            .any(|l| l.contains("marker was missing")),
        "{:?}",
        report.notices()
    );
    assert_eq!(committed(&log, "t", 0)?, ["a"]);
    assert_eq!(committed(&log, "t", 1)?, ["b"]);
    let h = log.partition("t", 1)?;
    assert_eq!(h.last_stable_offset(), h.log_end_offset());
    Ok(())
}

/// A newer instance's `init_transactions` aborts the old instance's open transaction with
/// markers of the new epoch; when a marker write fails half-way (here the second partition's,
/// on a simulated disk) and the process then dies, the open completes the abort at that epoch:
/// the partition that got its marker already is not a reason to fail, and the other one gets
/// its marker.
#[cfg(feature = "sim")]
#[test]
fn an_abort_interrupted_between_markers_is_finished_at_the_new_epoch() -> TestResult {
    use topiclog::sim::{FaultKind, Op, SimFs};
    let dir = tempfile::tempdir()?;
    let sim = SimFs::install(dir.path())?;
    let log = quiet().open(dir.path())?;
    log.create_topic("t", 2)?;
    let old = log.producer(ProducerConfig::transactional("x"))?;
    old.init_transactions()?;
    old.begin_transaction()?;
    old.send(ProducerRecord::new("t", "a").partition(0))?;
    old.send(ProducerRecord::new("t", "b").partition(1))?;
    sim.fail(Op::Write, "t-1", FaultKind::Eio);
    let new = log.producer(ProducerConfig::transactional("x"))?;
    assert!(new.init_transactions().is_err(), "the second marker failed");
    sim.clear_faults();
    drop((old, new));
    log.abandon();
    let log = quiet().open(dir.path())?;
    for p in 0..2 {
        let h = log.partition("t", p)?;
        assert_eq!(
            h.last_stable_offset(),
            h.log_end_offset(),
            "t-{p} left open"
        );
        assert!(
            committed(&log, "t", p)?.is_empty(),
            "t-{p}: the records were aborted"
        );
    }
    Ok(())
}
