//! 10,000 partitions of a `preallocate=true` topic: the descriptor budget bounds the
//! writable maps and the disk reserved ahead of the data as it bounds descriptors, because a
//! partition whose files the budget closes gives up its mapping and has its tail cut.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Record, TopicConfig};

#[cfg(target_os = "linux")]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[cfg(target_os = "linux")]
fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

/// Bytes of every `.log` under `dir` (file lengths).
fn log_bytes(dir: &std::path::Path) -> TestResult<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            total += log_bytes(&e.path())?;
        } else if e.path().extension().is_some_and(|x| x == "log") {
            total += e.metadata()?.len();
        }
    }
    Ok(total)
}

#[test]
#[cfg(target_os = "linux")]
fn ten_thousand_preallocated_partitions_stay_within_the_budgets() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (budget, mapped) = (64, 256);
    let (baseline_fds, baseline_maps) = (open_fds(), maps());
    let n = 10_000;
    let log = quiet()
        .max_open_files(budget)
        .max_mapped_segments(mapped)
        .open(dir.path())?;
    log.create_topic_with("wide", n, TopicConfig::new().with("preallocate", "true")?)?;
    for i in 0..n {
        let p = log.partition("wide", i)?;
        p.append(&[Record::new(format!("v{i}")).key("k")])?;
        if i % 1000 == 999 {
            assert!(log.stats().open_files <= budget);
            assert!(
                open_fds() <= baseline_fds + budget + 16,
                "{} fds",
                open_fds()
            );
            // Read maps (three per mapped segment) and one writable map per open writer.
            let limit = baseline_maps + 3 * mapped + budget / 3 + 64;
            assert!(maps() <= limit, "{} maps, limit {limit}", maps());
        }
    }
    // Only the writers the budget keeps open hold a reserved tail (at most 68 KiB each for
    // one small record); the rest were cut when their files were closed.
    let data: u64 = log
        .describe_topic("wide")?
        .partitions
        .iter()
        .map(|p| p.size_bytes)
        .sum();
    let on_disk = log_bytes(dir.path())?;
    let reserved = on_disk.saturating_sub(data);
    assert!(
        reserved <= (budget as u64 / 3 + 2) * (68 << 10),
        "{reserved} bytes reserved ahead of {data} bytes of data"
    );
    for i in (0..n).step_by(7) {
        let got = log.partition("wide", i)?.records(0, 1024)?;
        assert_eq!(got[0].value.as_deref(), Some(format!("v{i}").as_bytes()));
    }
    log.close()?;
    let log = quiet().max_open_files(budget).open(dir.path())?;
    assert!(log.recovery_report().clean);
    assert_eq!(log_bytes(dir.path())?, {
        let d: u64 = log
            .describe_topic("wide")?
            .partitions
            .iter()
            .map(|p| p.size_bytes)
            .sum();
        d + log.describe_topic("__consumer_offsets").map_or(0, |t| {
            t.partitions.iter().map(|p| p.size_bytes).sum::<u64>()
        })
    });
    Ok(())
}
