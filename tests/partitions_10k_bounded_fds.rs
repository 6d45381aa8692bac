//! 10,000 partitions in one store: create, append one record to each, read each back, close
//! and reopen — with a bounded number of open file descriptors.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Record, Result};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[test]
#[cfg(target_os = "linux")]
fn ten_thousand_partitions_with_bounded_descriptors() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let budget = 64;
    let baseline = open_fds();
    let n = 10_000;
    {
        let log = quiet()
            .max_open_files(budget)
            .max_mapped_segments(256)
            .open(dir.path())?;
        log.create_topic("wide", n)?;
        for i in 0..n {
            let p = log.partition("wide", i)?;
            p.append(&[Record::new(format!("v{i}")).key("k")])?;
            if i % 1000 == 0 {
                assert!(log.stats().open_files <= budget);
            }
        }
        assert!(
            open_fds() <= baseline + budget + 16,
            "{} fds open",
            open_fds()
        );
        for i in (0..n).rev() {
            let got = log.partition("wide", i)?.records(0, 1024)?;
            assert_eq!(got[0].value.as_deref(), Some(format!("v{i}").as_bytes()));
        }
        assert!(log.stats().mapped_segments <= 256);
        log.close()?;
    }
    let log = quiet().max_open_files(budget).open(dir.path())?;
    assert!(log.recovery_report().clean);
    let p = log.partition("wide", 9_999)?;
    assert_eq!(p.log_end_offset(), 1);
    assert!(open_fds() <= baseline + budget + 16);
    Ok(())
}
