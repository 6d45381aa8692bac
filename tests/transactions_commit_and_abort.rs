//! Transactions through the library API: a committed transaction over several topics becomes
//! visible to `read_committed` readers at once, an aborted one never does, and
//! `read_uncommitted` readers see every data record and no marker. Offsets sent in a
//! transaction count only once it commits. Fencing, out-of-order calls, the last stable
//! offset and reopening.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;
use common::*;

use std::time::Duration;

use topiclog::{
    ConsumerConfig, ConsumerGroupMetadata, Error, IsolationLevel, OffsetAndMetadata,
    ProducerConfig, ProducerRecord, TopicPartition,
};

fn values(
    log: &topiclog::Log,
    topic: &str,
    p: i32,
    level: IsolationLevel,
) -> TestResult<Vec<String>> {
    let h = log.partition(topic, p)?.with_isolation_level(level);
    Ok(h.records(0, 1 << 20)?
        .into_iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect())
}

#[test]
fn commit_shows_everything_at_once_and_abort_nothing() -> TestResult {
    let log = TempLog::with_topic("orders", 2)?;
    log.create_topic("payments", 1)?;
    let p = log.producer(ProducerConfig::transactional("checkout"))?;
    p.init_transactions()?;

    p.begin_transaction()?;
    p.send(ProducerRecord::new("orders", "o1").partition(0))?;
    p.send(ProducerRecord::new("orders", "o2").partition(1))?;
    p.send_async(ProducerRecord::new("payments", "p1"))?;
    // Open: read_committed sees nothing; the LSO holds at the transaction's first offset.
    assert!(values(&log, "orders", 0, IsolationLevel::ReadCommitted)?.is_empty());
    assert_eq!(log.partition("orders", 0)?.last_stable_offset(), 0);
    assert_eq!(
        values(&log, "orders", 0, IsolationLevel::ReadUncommitted)?,
        ["o1"]
    );
    p.commit_transaction()?;
    assert_eq!(
        values(&log, "orders", 0, IsolationLevel::ReadCommitted)?,
        ["o1"]
    );
    assert_eq!(
        values(&log, "orders", 1, IsolationLevel::ReadCommitted)?,
        ["o2"]
    );
    assert_eq!(
        values(&log, "payments", 0, IsolationLevel::ReadCommitted)?,
        ["p1"]
    );
    // The marker takes an offset and is never returned.
    assert_eq!(log.partition("orders", 0)?.log_end_offset(), 2);
    assert_eq!(log.partition("orders", 0)?.last_stable_offset(), 2);

    p.begin_transaction()?;
    p.send(ProducerRecord::new("orders", "o3").partition(0))?;
    p.send(ProducerRecord::new("payments", "p2"))?;
    p.abort_transaction()?;
    assert_eq!(
        values(&log, "orders", 0, IsolationLevel::ReadCommitted)?,
        ["o1"]
    );
    assert_eq!(
        values(&log, "payments", 0, IsolationLevel::ReadCommitted)?,
        ["p1"]
    );
    assert_eq!(
        values(&log, "orders", 0, IsolationLevel::ReadUncommitted)?,
        ["o1", "o3"]
    );

    // A plain append after the abort is visible to both.
    log.partition("orders", 0)?
        .append(&[topiclog::Record::new("plain")])?;
    assert_eq!(
        values(&log, "orders", 0, IsolationLevel::ReadCommitted)?,
        ["o1", "plain"]
    );

    // The same after reopening: the .txnindex and the state are on disk.
    let log = log.reopen()?;
    assert_eq!(
        values(&log, "orders", 0, IsolationLevel::ReadCommitted)?,
        ["o1", "plain"]
    );
    assert_eq!(
        values(&log, "payments", 0, IsolationLevel::ReadCommitted)?,
        ["p1"]
    );
    let seg = log
        .path()
        .join("orders-0")
        .join("00000000000000000000.txnindex");
    let bytes = std::fs::read(&seg)?;
    assert_eq!(bytes.len(), 34, "one aborted transaction");
    assert_eq!(&bytes[..2], &[0, 0], "version 0");
    let first = i64::from_be_bytes(bytes[10..18].try_into()?);
    let last = i64::from_be_bytes(bytes[18..26].try_into()?);
    assert_eq!((first, last), (2, 3), "o3 at 2, its ABORT marker at 3");
    assert!(
        !log.path()
            .join("orders-1")
            .join("00000000000000000000.txnindex")
            .exists()
    );
    Ok(())
}

#[test]
fn a_consumer_at_read_committed_polls_only_committed_records() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.producer(ProducerConfig::transactional("tx"))?;
    p.init_transactions()?;
    for (i, commit) in [true, false, true, false, true].into_iter().enumerate() {
        p.begin_transaction()?;
        for j in 0..3 {
            p.send_async(ProducerRecord::new("t", format!("{i}-{j}")))?;
        }
        if commit {
            p.commit_transaction()?;
        } else {
            p.abort_transaction()?;
        }
    }
    p.begin_transaction()?;
    p.send(ProducerRecord::new("t", "open"))?;
    let tp = TopicPartition::new("t", 0);
    let mut c =
        log.consumer(ConsumerConfig::default().isolation_level(IsolationLevel::ReadCommitted))?;
    c.assign(std::slice::from_ref(&tp))?;
    let mut got = Vec::new();
    loop {
        let rs = c.poll(Duration::from_millis(50))?;
        if rs.is_empty() {
            break;
        }
        got.extend(
            rs.iter()
                .map(|r| String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned()),
        );
    }
    assert_eq!(
        got,
        [
            "0-0", "0-1", "0-2", "2-0", "2-1", "2-2", "4-0", "4-1", "4-2"
        ]
    );
    // Its position stops at the open transaction; seek_to_end goes to the LSO.
    let lso = log.partition("t", 0)?.last_stable_offset();
    c.seek_to_end(std::slice::from_ref(&tp))?;
    assert_eq!(c.position(&tp)?, lso);
    p.commit_transaction()?;
    let rs = c.poll(Duration::from_secs(1))?;
    let vals: Vec<_> = rs
        .iter()
        .map(|r| r.value().unwrap_or_default().to_vec())
        .collect();
    assert_eq!(vals, [b"open".to_vec()]);

    let mut all = log.consumer(ConsumerConfig::default())?;
    all.assign(std::slice::from_ref(&tp))?;
    let mut n = 0;
    loop {
        let rs = all.poll(Duration::from_millis(50))?;
        if rs.is_empty() {
            break;
        }
        n += rs.len();
    }
    assert_eq!(n, 16, "every data record, no marker");
    Ok(())
}

#[test]
fn offsets_sent_in_a_transaction_count_only_when_it_commits() -> TestResult {
    let log = TempLog::with_topic("in", 1)?;
    log.create_topic("out", 1)?;
    let tp = TopicPartition::new("in", 0);
    let p = log.producer(ProducerConfig::transactional("etl"))?;
    p.init_transactions()?;
    let group = ConsumerGroupMetadata::new("etl-group");
    let mut c = log.consumer(ConsumerConfig::group("etl-group"))?;
    c.assign(std::slice::from_ref(&tp))?;

    p.begin_transaction()?;
    p.send(ProducerRecord::new("out", "x"))?;
    p.send_offsets_to_transaction(&[(tp.clone(), OffsetAndMetadata::new(5))], &group)?;
    assert_eq!(c.committed(&tp)?, None, "not before the commit");
    p.abort_transaction()?;
    assert_eq!(c.committed(&tp)?, None, "dropped by the abort");

    p.begin_transaction()?;
    p.send_offsets_to_transaction(&[(tp.clone(), OffsetAndMetadata::new(7))], &group)?;
    p.commit_transaction()?;
    assert_eq!(c.committed(&tp)?.map(|o| o.offset), Some(7));
    drop(c);
    let log = log.reopen()?;
    let c = log.consumer(ConsumerConfig::group("etl-group"))?;
    assert_eq!(
        c.committed(&tp)?.map(|o| o.offset),
        Some(7),
        "after reopening too"
    );
    Ok(())
}

#[test]
fn a_newer_instance_fences_the_older_and_calls_out_of_order_are_refused() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let old = log.producer(ProducerConfig::transactional("app"))?;
    assert!(matches!(
        old.begin_transaction(),
        Err(Error::InvalidTxnState { .. })
    ));
    old.init_transactions()?;
    assert!(matches!(
        old.commit_transaction(),
        Err(Error::InvalidTxnState { .. })
    ));
    assert!(matches!(
        old.send(ProducerRecord::new("t", "x")),
        Err(Error::InvalidTxnState { .. })
    ));
    old.begin_transaction()?;
    assert!(matches!(
        old.begin_transaction(),
        Err(Error::InvalidTxnState { .. })
    ));
    old.send(ProducerRecord::new("t", "zombie"))?;

    let new = log.producer(ProducerConfig::transactional("app"))?;
    new.init_transactions()?; // aborts the old one's open transaction
    assert!(matches!(
        old.send(ProducerRecord::new("t", "late")),
        Err(Error::Fenced { .. })
    ));
    assert!(matches!(
        old.commit_transaction(),
        Err(Error::Fenced { .. })
    ));
    new.begin_transaction()?;
    new.send(ProducerRecord::new("t", "fresh"))?;
    new.commit_transaction()?;
    assert_eq!(
        values(&log, "t", 0, IsolationLevel::ReadCommitted)?,
        ["fresh"]
    );

    // A name and a transactional id share one registry.
    let mut config = ProducerConfig::default();
    config.name = Some("app".into());
    let named = log.producer(config);
    assert!(matches!(named, Err(Error::InvalidConfig { .. })));

    // After a restart the next init fences the producer from before it.
    let log = log.reopen()?;
    let again = log.producer(ProducerConfig::transactional("app"))?;
    again.init_transactions()?;
    assert!(again.producer_id().0 >= 0);
    Ok(())
}

#[test]
fn a_transaction_left_open_past_its_timeout_is_aborted() -> TestResult {
    let log = TempLog::with_options(
        topiclog::LogOptions::new()
            .flusher(Some(Duration::from_millis(10)))
            .maintenance_interval(None),
    )?;
    log.create_topic("t", 1)?;
    let p = log.producer(
        ProducerConfig::transactional("slow").transaction_timeout(Duration::from_millis(100)),
    )?;
    p.init_transactions()?;
    p.begin_transaction()?;
    p.send(ProducerRecord::new("t", "late"))?;
    let h = log.partition("t", 0)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while h.last_stable_offset() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        h.last_stable_offset(),
        h.log_end_offset(),
        "aborted by the log"
    );
    assert!(matches!(
        p.send(ProducerRecord::new("t", "x")),
        Err(Error::TransactionTimedOut { .. })
    ));
    assert!(matches!(
        p.commit_transaction(),
        Err(Error::InvalidTxnState { .. })
    ));
    p.abort_transaction()?;
    p.begin_transaction()?;
    p.send(ProducerRecord::new("t", "next"))?;
    p.commit_transaction()?;
    assert_eq!(
        values(&log, "t", 0, IsolationLevel::ReadCommitted)?,
        ["next"]
    );
    Ok(())
}
