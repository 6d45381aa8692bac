//! Real process crashes: a child process appends keyed records and reports each
//! acknowledgement on stdout; the parent kills it with SIGKILL at a seeded random moment,
//! reopens the directory and checks that every acknowledged record is there and intact, with
//! no duplicates and contiguous offsets, and that appends continue. Rounds cover every flush
//! policy and several codecs, with records of 0-20 KB, on the write path and (half the rounds)
//! on the preallocated, mapped tail of `preallocate=true`. A round fails when the child
//! acknowledges nothing before it is killed, and shows the child's stderr.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use topiclog::{FlushPolicy, Record, TopicConfig};

const CHILD_DIR: &str = "TOPICLOG_CRASH_CHILD_DIR";
const ROUNDS: u64 = 60;

/// xorshift: a seeded, repeatable source of kill times.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn config(round: u64) -> TopicConfig {
    let mut c = small_segments(64 * 1024);
    c.flush_policy = match round % 3 {
        0 => FlushPolicy::Os,
        1 => FlushPolicy::EveryBatch,
        _ => FlushPolicy::Interval(Duration::from_millis(5)),
    };
    c.compression = Some(match round % 4 {
        1 => topiclog::Compression::Lz4,
        2 => topiclog::Compression::Zstd,
        _ => topiclog::Compression::None,
    });
    // Every other cycle of policies and codecs stores appends into a preallocated, mapped
    // tail; its records of 0-20 KB cross page boundaries and extensions.
    if (round / 12) % 2 == 1 {
        c.set("preallocate", "true").expect("preallocate");
    }
    c
}

/// Record `i`'s value: a third small (under 60 bytes), the rest spread over 0-20 KB, so
/// batches straddle segment ends (64 KiB) and compressed frames of several blocks occur.
fn value(i: u64) -> String {
    let filler = if i.is_multiple_of(3) {
        (i % 50) as usize
    } else {
        (i.wrapping_mul(2_654_435_761) >> 7) as usize % 20_000
    };
    format!("value-{i}-{}", "z".repeat(filler))
}

/// The child: appends until killed, printing `ack <offset> <i>` after each acknowledgement.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let log = topiclog::LogOptions::new().open(&dir).unwrap();
    let p = log.partition("crash", 0).unwrap();
    let mut i = p.log_end_offset() as u64;
    loop {
        let batch: Vec<Record> = (0..=(i % 3))
            .map(|k| Record::new(value(i + k)).key(format!("k{}", (i + k) % 17)))
            .collect();
        let at = p.append(&batch).unwrap();
        assert_eq!(at.base_offset as u64, i);
        println!("ack {} {}", at.last_offset, at.last_offset + 1);
        i = at.last_offset as u64 + 1;
    }
}

#[test]
#[cfg(unix)]
fn killed_writers_lose_nothing_acknowledged() -> TestResult {
    let exe = std::env::current_exe()?;
    let mut seed = 0x5eed_1234_abcd_0001u64;
    for round in 0..ROUNDS {
        let log = TempLog::with_topic_config("crash", 1, config(round))?;
        let dir = log.close()?;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or("the child's stdout is not piped")?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or("the child's stderr is not piped")?;
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let kill_after = Duration::from_millis(5 + next(&mut seed) % 60);
        let (first_ack, first) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || -> TestResult<i64> {
            let mut acked = 0i64;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ack ") {
                    let end: i64 = rest
                        .split(' ')
                        .nth(1)
                        .ok_or("an ack without its end")?
                        .parse()?;
                    if acked == 0 {
                        let _ = first_ack.send(());
                    }
                    acked = acked.max(end);
                }
            }
            Ok(acked)
        });
        // The kill time counts from the first acknowledgement, so a slow start of the child
        // does not make a round that tests nothing.
        let started_writing = first.recv_timeout(Duration::from_mins(1)).is_ok();
        let started = Instant::now();
        while started_writing && started.elapsed() < kill_after {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill()?; // SIGKILL
        child.wait()?;
        let acked = reader.join().expect("the reader thread panicked")?;
        let errors = errors.join().expect("the stderr thread panicked");
        assert!(
            acked > 0,
            "round {round}: the child acknowledged nothing; its stderr:\n{errors}"
        );
        // Reopen: everything acknowledged is there, intact, once, in order.
        let log = open(dir.path())?;
        let p = log.partition("crash", 0)?;
        let got = read_all(&p)?;
        assert!(
            got.len() as i64 >= acked,
            "round {round}: {} records, {acked} acknowledged",
            got.len()
        );
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "round {round}: contiguous offsets");
            assert_eq!(
                r.value.as_deref(),
                Some(value(i as u64).as_bytes()),
                "round {round}: record {i} intact"
            );
        }
        // Indexes agree with the log: a lookup at every offset finds it.
        for o in (0..got.len() as i64).step_by(7) {
            assert_eq!(p.records(o, 1)?[0].offset, o);
        }
        // Appends continue.
        let at = p.append(&[Record::new(value(got.len() as u64)).key("after")])?;
        assert_eq!(at.base_offset, got.len() as i64);
        log.close()?;
    }
    Ok(())
}
