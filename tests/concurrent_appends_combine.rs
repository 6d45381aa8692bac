//! Many threads appending to one partition at once: the combined writes give every batch its
//! own contiguous offsets, in the order the writer took them, and every record reads back.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeMap;
use topiclog::{FlushPolicy, Record};

fn hammer(policy: FlushPolicy, threads: u64, per_thread: u64) -> TestResult {
    let mut c = small_segments(64 * 1024);
    c.flush_policy = policy;
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    let acks: Vec<Vec<(i64, i64, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let p = p.clone();
                s.spawn(move || {
                    (0..per_thread)
                        .map(|i| {
                            // Batches of one to three records.
                            let recs: Vec<Record> = (0..=(i % 3))
                                .map(|j| Record::new(format!("{t}-{i}-{j}")))
                                .collect();
                            let r = p.append(&recs).unwrap();
                            (r.base_offset, r.last_offset, format!("{t}-{i}"))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an appender thread panicked"))
            .collect()
    });
    let mut by_offset = BTreeMap::new();
    for (base, last, id) in acks.into_iter().flatten() {
        for o in base..=last {
            assert!(
                by_offset.insert(o, (id.clone(), o - base)).is_none(),
                "offset {o} twice"
            );
        }
    }
    let expected: u64 = (0..per_thread).map(|i| i % 3 + 1).sum::<u64>() * threads;
    assert_eq!(by_offset.len() as u64, expected);
    assert_eq!(
        *by_offset.keys().next_back().ok_or("no offsets")?,
        expected as i64 - 1
    );
    p.flush()?;
    for r in read_all(&p)? {
        let (id, j) = &by_offset[&r.offset];
        assert_eq!(
            r.value.ok_or("a null value")?,
            format!("{id}-{j}").as_bytes()
        );
    }
    log.close()?;
    Ok(())
}

#[test]
fn page_cache_appends_from_eight_threads() -> TestResult {
    hammer(FlushPolicy::Os, 8, 1500)
}

#[test]
fn synced_appends_from_sixteen_threads() -> TestResult {
    hammer(FlushPolicy::EveryBatch, 16, 40)
}

/// Under `EveryBatch` the group-commit leader waits for the appenders the last sync released;
/// when some of them stop, the others still get every append acknowledged, durable and
/// visible on return.
#[test]
fn synced_appends_go_on_as_threads_stop() -> TestResult {
    let mut c = small_segments(64 * 1024);
    c.flush_policy = FlushPolicy::EveryBatch;
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    let threads = 8u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let p = p.clone();
            s.spawn(move || {
                // Thread t stops after 3 + 6t appends: the group shrinks one by one.
                for i in 0..3 + 6 * t {
                    let r = p.append(&[Record::new(format!("{t}-{i}"))]).unwrap();
                    assert!(
                        p.high_watermark() > r.last_offset,
                        "acknowledged, not visible"
                    );
                }
            });
        }
    });
    let expected: u64 = (0..threads).map(|t| 3 + 6 * t).sum();
    assert_eq!(p.log_end_offset() as u64, expected);
    assert_eq!(p.high_watermark() as u64, expected);
    assert_eq!(read_all(&p)?.len() as u64, expected);
    log.close()?;
    Ok(())
}
