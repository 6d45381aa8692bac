//! A read-only open takes no lock, changes no file, recovers nothing, and reads up to the last
//! valid batch — even while another `Log` owns the directory, and with a torn tail.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::fs::OpenOptions;
use std::io::Write;
use topiclog::LogOptions;

fn snapshot(dir: &std::path::Path) -> TestResult<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn reads_to_the_last_valid_batch_and_modifies_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = open(dir.path())?;
    log.create_topic_with("t", 2, small_segments(2048))?;
    let p = log.partition("t", 0)?;
    for i in 0..100 {
        p.append(&[rec(i)])?;
    }
    log.abandon();
    // A torn tail and a deleted index: the read-only open must neither fix nor trip on them.
    let pdir = dir.path().join("t-0");
    let last = segment_logs(&pdir).pop().ok_or("no segments")?;
    OpenOptions::new()
        .append(true)
        .open(&last)?
        .write_all(&[1, 2, 3])?;
    std::fs::remove_file(last.with_extension("index"))?;
    let before = snapshot(dir.path())?;
    let ro = LogOptions::new().read_only(true).open(dir.path())?;
    let rp = ro.partition("t", 0)?;
    assert_eq!(rp.log_end_offset(), 100);
    let got = read_all(&rp)?;
    assert_eq!(got.len(), 100);
    assert_eq!(rp.records(77, 1)?[0].offset, 77);
    assert_eq!(ro.topics(), vec!["t".to_string()]);
    drop(ro);
    assert_eq!(
        before,
        snapshot(dir.path())?,
        "read-only open changed the directory"
    );
    // A writer can open while a reader is open.
    let ro = LogOptions::new().read_only(true).open(dir.path())?;
    let rw = open(dir.path())?;
    assert_eq!(rw.partition("t", 0)?.log_end_offset(), 100);
    drop(ro);
    rw.close()?;
    Ok(())
}

#[test]
fn read_only_open_of_a_missing_dir_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    assert!(
        LogOptions::new()
            .read_only(true)
            .open(dir.path().join("nope"))
            .is_err()
    );
    Ok(())
}
