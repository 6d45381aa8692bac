//! P producers, a group of consumers joining and leaving mid-stream, N partitions: every
//! record is delivered, order holds per partition, and with commit-on-revoke nothing is
//! delivered twice.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use topiclog::{
    Consumer, ConsumerConfig, ProducerConfig, ProducerRecord, RebalanceListener, Result,
    TopicPartition,
};

struct CommitOnRevoke;
impl RebalanceListener for CommitOnRevoke {
    fn on_partitions_revoked(&mut self, consumer: &mut Consumer, _: &[TopicPartition]) {
        // Commit what was processed before losing the partitions.
        consumer.commit().unwrap();
    }
}

type Seen = Arc<Mutex<BTreeMap<i32, Vec<i64>>>>;

fn member(
    log: &Arc<topiclog::Log>,
    seen: &Seen,
    stop: &Arc<AtomicBool>,
    lifetime: Option<Duration>,
) -> std::thread::JoinHandle<Result<()>> {
    let (log, seen, stop) = (Arc::clone(log), Arc::clone(seen), Arc::clone(stop));
    std::thread::spawn(move || {
        let mut cfg = ConsumerConfig::group("workers");
        cfg.enable_auto_commit = false;
        cfg.max_poll_records = 37;
        let mut c = log.consumer(cfg)?;
        c.set_rebalance_listener(CommitOnRevoke);
        c.subscribe(&["jobs"])?;
        let born = std::time::Instant::now();
        loop {
            let recs = c.poll(Duration::from_millis(20))?;
            {
                let mut s = seen.lock().unwrap();
                for r in &recs {
                    s.entry(r.partition()).or_default().push(r.offset());
                }
            }
            // Commit after processing, as an at-least-once worker would.
            c.commit()?;
            if lifetime.is_some_and(|l| born.elapsed() > l) {
                return c.close();
            }
            if stop.load(Ordering::Acquire) && recs.is_empty() {
                return c.close();
            }
        }
    })
}

#[test]
fn every_record_once_in_order_while_members_come_and_go() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = Arc::new(open(dir.path())?);
    let partitions = 6;
    log.create_topic("jobs", partitions)?;
    let seen: Seen = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let producer = log.producer(ProducerConfig::default())?;
            Ok(std::thread::spawn(move || -> Result<()> {
                for i in 0..400 {
                    producer.send(
                        ProducerRecord::new("jobs", format!("{p}-{i}"))
                            .key(format!("k{}", (p * 1000 + i) % 97)),
                    )?;
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Ok(())
            }))
        })
        .collect::<Result<_>>()?;
    let mut members = vec![
        member(&log, &seen, &stop, None),
        member(&log, &seen, &stop, Some(Duration::from_millis(300))),
    ];
    std::thread::sleep(Duration::from_millis(100));
    members.push(member(&log, &seen, &stop, Some(Duration::from_millis(400))));
    std::thread::sleep(Duration::from_millis(150));
    members.push(member(&log, &seen, &stop, None));
    for p in producers {
        p.join().expect("a producer thread panicked")?;
    }
    // Let the survivors drain.
    let total: i64 = (0..partitions)
        .map(|p| log.partition("jobs", p).map(|h| h.log_end_offset()))
        .sum::<Result<_>>()?;
    assert_eq!(total, 1200);
    for _ in 0..500 {
        let n: usize = seen
            .lock()
            .expect("a thread panicked holding the lock")
            .values()
            .map(Vec::len)
            .sum();
        if n >= 1200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Release);
    for m in members {
        m.join().expect("a member thread panicked")?;
    }
    let seen = seen.lock().expect("a thread panicked holding the lock");
    for p in 0..partitions {
        let end = log.partition("jobs", p)?.log_end_offset();
        let got = seen.get(&p).cloned().unwrap_or_default();
        assert_eq!(
            got,
            (0..end).collect::<Vec<_>>(),
            "partition {p}: every record once, in order"
        );
    }
    Ok(())
}
