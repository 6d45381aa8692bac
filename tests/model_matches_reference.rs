//! A reference model — the batches of each partition in a `Vec` — driven by proptest through
//! append, read, retention, delete-records, truncate, reopen and crash (with and without a
//! torn tail, which below the recovery point is damage at rest), compared with the log after
//! every step; half the cases with `preallocate=true` (appends stored into a preallocated,
//! mapped tail that a crash leaves as zeros after the data).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use proptest::prelude::*;
use std::fs::OpenOptions;
use topiclog::{Log, Record, Result, TopicConfig};

#[derive(Debug, Clone)]
enum Op {
    Append { partition: usize, sizes: Vec<usize> },
    Read { partition: usize, at: usize },
    DeleteRecords { partition: usize, at: usize },
    Truncate { partition: usize, at: usize },
    Maintain,
    Reopen,
    Crash,
    CrashTorn { partition: usize, cut: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2usize, prop::collection::vec(0..300usize, 1..6))
            .prop_map(|(partition, sizes)| Op::Append { partition, sizes }),
        2 => (0..2usize, any::<usize>()).prop_map(|(partition, at)| Op::Read { partition, at }),
        1 => (0..2usize, any::<usize>()).prop_map(|(partition, at)| Op::DeleteRecords { partition, at }),
        1 => (0..2usize, any::<usize>()).prop_map(|(partition, at)| Op::Truncate { partition, at }),
        1 => Just(Op::Maintain),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => (0..2usize, 1..400usize).prop_map(|(partition, cut)| Op::CrashTorn { partition, cut }),
    ]
}

/// One batch as the model holds it.
#[derive(Debug, Clone)]
struct MBatch {
    base: i64,
    values: Vec<Vec<u8>>,
    bytes: usize,
}

#[derive(Debug, Default, Clone)]
struct MPart {
    start: i64,
    end: i64,
    batches: Vec<MBatch>,
    /// Offsets lost at rest and not handed out again: (from, to).
    gaps: Vec<(i64, i64)>,
}

impl MPart {
    fn records(&self) -> Vec<(i64, Vec<u8>)> {
        self.batches
            .iter()
            .flat_map(|b| {
                b.values
                    .iter()
                    .enumerate()
                    .map(move |(i, v)| (b.base + i as i64, v.clone()))
            })
            .filter(|(o, _)| *o >= self.start)
            .collect()
    }
}

fn config(preallocate: bool) -> TopicConfig {
    let mut c = small_segments(1500);
    c.retention_bytes = Some(6000);
    if preallocate {
        c.set("preallocate", "true").unwrap();
    }
    c
}

/// The bytes of whole batches at the start of the `.log` at `path` (its length, unless a
/// preallocated range follows them).
fn data_len(path: &std::path::Path) -> TestResult<usize> {
    let bytes = std::fs::read(path)?;
    Ok(topiclog::Batches::new(bytes.into())
        .map_while(Result::ok)
        .map(|b| b.len())
        .sum())
}

fn check(log: &Log, model: &[MPart]) -> TestResult {
    for (i, m) in model.iter().enumerate() {
        let p = log.partition("m", i as i32)?;
        assert_eq!(p.log_end_offset(), m.end, "end of partition {i}");
        assert_eq!(p.log_start_offset(), m.start, "start of partition {i}");
        let got: Vec<(i64, Vec<u8>)> = read_all(&p)?
            .into_iter()
            .map(|r| Ok((r.offset, r.value.ok_or("a null value")?.to_vec())))
            .collect::<TestResult<_>>()?;
        assert_eq!(got, m.records(), "records of partition {i}");
    }
    Ok(())
}

fn run(ops: &[Op], preallocate: bool) -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = open(dir.path())?;
    log.create_topic_with("m", 2, config(preallocate))?;
    let mut model = vec![MPart::default(), MPart::default()];
    let mut counter = 0u64;
    for op in ops {
        match op {
            Op::Append { partition, sizes } => {
                let p = log.partition("m", *partition as i32)?;
                let values: Vec<Vec<u8>> = sizes
                    .iter()
                    .map(|&s| {
                        counter += 1;
                        let mut v = counter.to_be_bytes().to_vec();
                        v.resize(8 + s, b'a' + (counter % 26) as u8);
                        v
                    })
                    .collect();
                let recs: Vec<Record> = values
                    .iter()
                    .map(|v| Record::new(v.clone()).key("k").timestamp(1))
                    .collect();
                let at = p.append(&recs)?;
                let m = &mut model[*partition];
                assert_eq!(at.base_offset, m.end);
                let bytes = p.read(at.base_offset, 1)?.batches[0].len();
                m.batches.push(MBatch {
                    base: m.end,
                    values,
                    bytes,
                });
                m.end += sizes.len() as i64;
            }
            Op::Read { partition, at } => {
                let m = &model[*partition];
                let p = log.partition("m", *partition as i32)?;
                let span = (m.end - m.start + 1) as usize;
                let off = m.start + (at % span) as i64;
                let got: Vec<i64> = p.records(off, 1 << 20)?.iter().map(|r| r.offset).collect();
                let want: Vec<i64> = m
                    .records()
                    .iter()
                    .map(|r| r.0)
                    .filter(|&o| o >= off)
                    .collect();
                assert_eq!(got, want);
            }
            Op::DeleteRecords { partition, at } => {
                let m = &mut model[*partition];
                let span = (m.end - m.start + 1) as usize;
                let off = m.start + (at % span) as i64;
                let p = log.partition("m", *partition as i32)?;
                assert_eq!(p.delete_records(off)?, off);
                m.start = off;
                m.batches.retain(|b| b.base + b.values.len() as i64 > off);
            }
            Op::Truncate { partition, at } => {
                let m = &mut model[*partition];
                let span = (m.end - m.start + 1) as usize;
                let off = m.start + (at % span) as i64;
                let p = log.partition("m", *partition as i32)?;
                let new_end = p.truncate_to(off)?;
                if let Some(&(from, _)) = m.gaps.iter().find(|g| g.0 <= off && off < g.1) {
                    // Inside a gap the log ends where the data before it ends.
                    m.batches.retain(|b| b.base < from);
                    m.end = from;
                } else if let Some(i) = m
                    .batches
                    .iter()
                    .position(|b| b.base + b.values.len() as i64 > off)
                {
                    let cut = m.batches[i].base;
                    if off < m.end {
                        m.batches.truncate(i);
                        m.end = cut;
                    }
                }
                m.start = m.start.min(m.end);
                let end = m.end;
                m.gaps.retain(|g| g.0 < end);
                assert_eq!(new_end, m.end);
            }
            Op::Maintain => {
                log.maintain()?;
                for (i, m) in model.iter_mut().enumerate() {
                    let start = log.partition("m", i as i32)?.log_start_offset();
                    assert!(start >= m.start, "log start moved back");
                    m.start = start;
                    m.batches.retain(|b| b.base + b.values.len() as i64 > start);
                }
            }
            Op::Reopen => {
                log.close()?;
                log = open(dir.path())?;
                assert!(log.recovery_report().clean);
            }
            Op::Crash => {
                log.abandon();
                log = open(dir.path())?;
            }
            Op::CrashTorn { partition, cut } => {
                log.abandon();
                let m = &mut model[*partition];
                let pdir = dir.path().join(format!("m-{partition}"));
                let last = segment_logs(&pdir).pop().ok_or("no segments")?;
                // Cut inside the data: after a crash a preallocated file ends in zeros.
                let len = data_len(&last)?;
                if let Some(b) = m.batches.last() {
                    // Only when the last batch is the tail of the last file and above the start.
                    if len >= b.bytes && b.base >= m.start && segment_holds_tail(&last, b.base)? {
                        let cut = 1 + cut % b.bytes;
                        OpenOptions::new()
                            .write(true)
                            .open(&last)?
                            .set_len((len - cut) as u64)?;
                        // Below the checkpointed recovery point the batch had been synced:
                        // its loss is damage at rest, and its offsets are not handed out
                        // again (the end stays at the recovery point, a gap readers skip).
                        let synced = recovery_point(dir.path(), *partition).unwrap_or(0);
                        let lost_to = b.base.max(synced.min(m.end));
                        if lost_to > b.base {
                            m.gaps.push((b.base, lost_to));
                        }
                        m.end = lost_to;
                        m.batches.pop();
                    }
                }
                log = open(dir.path())?;
            }
        }
        check(&log, &model)?;
    }
    log.close()?;
    Ok(())
}

/// The recovery point checkpointed for partition `m-<partition>`.
fn recovery_point(dir: &std::path::Path, partition: usize) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join("recovery-point-offset-checkpoint")).ok()?;
    text.lines().skip(2).find_map(|line| {
        let mut f = line.split(' ');
        (f.next()? == "m" && f.next()? == partition.to_string())
            .then(|| f.next()?.parse().ok())
            .flatten()
    })
}

/// True when the file's last batch starts at `base`.
fn segment_holds_tail(path: &std::path::Path, base: i64) -> std::io::Result<bool> {
    let bytes = std::fs::read(path)?;
    let batches: Vec<_> = topiclog::Batches::new(bytes.into())
        .filter_map(Result::ok)
        .collect();
    Ok(batches.last().is_some_and(|b| b.base_offset() == base))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48), ..ProptestConfig::default() })]
    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..40), preallocate in any::<bool>()) {
        run(&ops, preallocate).unwrap();
    }
}
