//! A crash can leave any prefix of the last batch on disk. Cutting the active segment at every
//! byte of its last batch, or flipping a byte in it, then reopening: exactly that batch is gone,
//! everything before it reads back, and appends continue at the right offset.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::fs::{self, OpenOptions};
use std::path::Path;
use topiclog::Record;

const BATCHES: u64 = 6;

/// Writes BATCHES batches of 3 records and returns (partition dir, log file, start of the last batch).
fn setup(dir: &Path) -> TestResult<(std::path::PathBuf, u64)> {
    let log = open(dir)?;
    log.create_topic_with("t", 1, small_segments(1 << 20))?;
    let p = log.partition("t", 0)?;
    for b in 0..BATCHES {
        p.append(&[rec(b * 3), rec(b * 3 + 1), rec(b * 3 + 2)])?;
    }
    let res = p.read(3 * (BATCHES as i64 - 1), 1 << 20)?;
    let last_len = res.batches[0].len() as u64;
    // Simulate a crash: no close (leaves no clean-shutdown marker).
    log.abandon();
    let pdir = dir.join("t-0");
    let seg = segment_logs(&pdir).pop().ok_or("no segments")?;
    let len = fs::metadata(&seg)?.len();
    Ok((seg, len - last_len))
}

fn check(dir: &Path, expect_records: u64) -> TestResult {
    let log = open(dir)?;
    let p = log.partition("t", 0)?;
    assert_eq!(p.log_end_offset(), expect_records as i64);
    let got = read_all(&p)?;
    assert_eq!(got.len() as u64, expect_records);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.value, rec(i as u64).value, "record {i}");
    }
    let at = p.append(&[Record::new("after").key("k")])?;
    assert_eq!(at.base_offset, expect_records as i64);
    log.close()?;
    // And it is clean now.
    let log = open(dir)?;
    assert!(log.recovery_report().clean);
    assert_eq!(
        log.partition("t", 0)?.log_end_offset(),
        expect_records as i64 + 1
    );
    Ok(())
}

#[test]
fn cut_at_every_byte_of_the_last_batch() -> TestResult {
    let probe = tempfile::tempdir()?;
    let (seg, last_start) = setup(probe.path())?;
    let full = fs::metadata(&seg)?.len();
    for cut in last_start..full {
        let dir = tempfile::tempdir()?;
        let (seg, _) = setup(dir.path())?;
        OpenOptions::new().write(true).open(&seg)?.set_len(cut)?;
        let expect = if cut == full {
            BATCHES * 3
        } else {
            (BATCHES - 1) * 3
        };
        check(dir.path(), expect)?;
        let log = open(dir.path())?;
        drop(log);
    }
    Ok(())
}

#[test]
fn recovery_report_names_what_was_cut() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (seg, last_start) = setup(dir.path())?;
    OpenOptions::new()
        .write(true)
        .open(&seg)?
        .set_len(last_start + 10)?;
    let log = open(dir.path())?;
    let r = log.recovery_report();
    assert!(!r.clean);
    assert_eq!(r.truncated_bytes(), 10);
    let damaged: Vec<_> = r.damaged().collect();
    assert_eq!(damaged.len(), 1);
    assert!(damaged[0].reason.is_some());
    assert_eq!(damaged[0].end_offset, ((BATCHES - 1) * 3) as i64);
    Ok(())
}

#[test]
fn flipped_byte_in_the_last_batch_drops_exactly_it() -> TestResult {
    let probe = tempfile::tempdir()?;
    let (seg, last_start) = setup(probe.path())?;
    let full = fs::metadata(&seg)?.len();
    // Every byte of the last batch except the base offset and leader epoch (outside the CRC
    // and not checked: Kafka does not check them either) and bytes that make the length
    // point past the end (also a torn batch).
    for pos in (last_start..full).step_by(3) {
        let rel = pos - last_start;
        if rel < 8 || (12..16).contains(&rel) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let (seg, _) = setup(dir.path())?;
        let mut bytes = fs::read(&seg)?;
        bytes[pos as usize] ^= 0x10;
        fs::write(&seg, &bytes)?;
        check(dir.path(), (BATCHES - 1) * 3)?;
    }
    Ok(())
}

#[test]
fn garbage_after_the_last_batch_is_cut() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (seg, _) = setup(dir.path())?;
    let mut f = OpenOptions::new().append(true).open(&seg)?;
    std::io::Write::write_all(&mut f, &[0xab; 100])?;
    drop(f);
    check(dir.path(), BATCHES * 3)
}

#[test]
fn corruption_in_an_earlier_segment_cuts_there_and_drops_later_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic_with("t", 1, small_segments(2048))?;
        let p = log.partition("t", 0)?;
        for i in 0..200 {
            p.append(&[rec(i)])?;
        }
        log.abandon();
    }
    // No checkpoint of a recovery point past 0: the whole log is scanned.
    let _ = fs::remove_file(dir.path().join("recovery-point-offset-checkpoint"));
    let logs = segment_logs(&dir.path().join("t-0"));
    assert!(logs.len() > 3);
    let victim = &logs[1];
    let mut bytes = fs::read(victim)?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(victim, &bytes)?;
    let log = open(dir.path())?;
    let r = log.recovery_report();
    let t = r
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .ok_or("no recovery report for t")?;
    assert!(t.segments_deleted >= logs.len() - 2);
    let p = log.partition("t", 0)?;
    let got = read_all(&p)?;
    assert!(!got.is_empty() && got.len() < 200);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.value, rec(i as u64).value);
    }
    assert_eq!(segment_logs(&dir.path().join("t-0")).len(), 2);
    Ok(())
}

#[test]
fn a_rolled_segment_lost_whole_leaves_a_gap_and_keeps_later_segments() -> TestResult {
    // Power failed after a roll made the next segment's files durable but before the rolled
    // segment's data reached the disk: it reads back empty while later segments exist. Their
    // records are intact and stay (as Kafka keeps them); the lost offsets are a gap.
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic_with("t", 1, small_segments(2048))?;
        let p = log.partition("t", 0)?;
        for i in 0..200 {
            p.append(&[rec(i)])?;
        }
        log.abandon();
    }
    let _ = fs::remove_file(dir.path().join("recovery-point-offset-checkpoint"));
    let logs = segment_logs(&dir.path().join("t-0"));
    assert!(logs.len() > 3);
    let (second_base, third_base) = (segment_base(&logs[1]), segment_base(&logs[2]));
    OpenOptions::new().write(true).open(&logs[1])?.set_len(0)?;
    let log = open(dir.path())?;
    let t = log
        .recovery_report()
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .cloned()
        .ok_or("no recovery report for t")?;
    assert_eq!((t.offset_gaps, t.segments_deleted), (1, 0), "{t:?}");
    assert_eq!(t.end_offset, 200);
    let p = log.partition("t", 0)?;
    let got = read_all(&p)?;
    assert_eq!(got.len() as i64, 200 - (third_base - second_base));
    assert!(
        got.iter()
            .all(|r| r.offset < second_base || r.offset >= third_base)
    );
    assert_eq!(p.append(&[rec(999)])?.base_offset, 200);
    Ok(())
}

/// A cleanly closed log of 200 single-record batches over several 2 KiB segments; returns the
/// segment logs.
fn clean_log_of_segments(dir: &Path) -> TestResult<Vec<std::path::PathBuf>> {
    let log = open(dir)?;
    log.create_topic_with("t", 1, small_segments(2048))?;
    let p = log.partition("t", 0)?;
    for i in 0..200 {
        p.append(&[rec(i)])?;
    }
    log.close()?;
    let logs = segment_logs(&dir.join("t-0"));
    assert!(logs.len() > 3);
    Ok(logs)
}

#[test]
fn a_segment_left_last_has_its_tail_checked_like_the_last_one() -> TestResult {
    // After a clean close a sealed segment's tail is only checked for whole headers. When the
    // segments after it are gone, the kept one becomes the segment appends continue: its
    // damaged last batch is found now, set aside and reported, and appends continue at the
    // old end (the checkpointed recovery point), not behind the damage.
    let dir = tempfile::tempdir()?;
    let logs = clean_log_of_segments(dir.path())?;
    let second_base = segment_base(&logs[1]);
    for l in &logs[1..] {
        for ext in ["log", "index", "timeindex"] {
            fs::remove_file(l.with_extension(ext))?;
        }
    }
    // Damage the last batch of the first segment (one record at offset second_base - 1) inside
    // its value: the header still parses, the CRC no longer matches.
    let mut bytes = fs::read(&logs[0])?;
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    fs::write(&logs[0], &bytes)?;
    let log = open(dir.path())?;
    let t = log
        .recovery_report()
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .ok_or("no report for t")?
        .clone();
    assert_eq!(t.topic, "t");
    assert_eq!(t.damage.len(), 1, "{t:?}");
    assert_eq!(t.damage[0].lost_from, second_base - 1);
    assert_eq!(t.damage[0].lost_to, 200);
    let p = log.partition("t", 0)?;
    assert_eq!(p.log_end_offset(), 200);
    assert_eq!(p.append(&[Record::new("after").key("k")])?.base_offset, 200);
    let before = read_all(&p)?;
    assert_eq!(before.len() as i64, second_base);
    drop(p);
    log.close()?;
    let log = open(dir.path())?;
    assert!(log.recovery_report().damaged().next().is_none());
    assert_eq!(values(&read_all(&log.partition("t", 0)?)?), values(&before));
    Ok(())
}

#[test]
fn a_segment_starting_below_the_previous_end_is_set_aside() -> TestResult {
    // The third segment's files renamed to a base inside the first segment (the others
    // removed): no crash makes segments overlap, so it is damage at rest. The misplaced
    // segment is kept aside whole, and appends continue at the old end.
    let dir = tempfile::tempdir()?;
    let logs = clean_log_of_segments(dir.path())?;
    let second_base = segment_base(&logs[1]);
    let pdir = dir.path().join("t-0");
    let misplaced = pdir.join(format!("{:020}.log", second_base / 2));
    for l in &logs[1..] {
        for ext in ["log", "index", "timeindex"] {
            let from = l.with_extension(ext);
            if l == &logs[2] {
                fs::rename(&from, misplaced.with_extension(ext))?;
            } else {
                fs::remove_file(&from)?;
            }
        }
    }
    let log = open(dir.path())?;
    let t = log
        .recovery_report()
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .cloned()
        .ok_or("no recovery report for t")?;
    let aside = t.damage[0]
        .preserved
        .clone()
        .ok_or("the misplaced segment was not kept")?;
    assert_eq!(t.damage[0].file, misplaced);
    assert!(aside.exists() && !misplaced.exists());
    let p = log.partition("t", 0)?;
    assert_eq!(read_all(&p)?.len() as i64, second_base);
    assert_eq!(p.append(&[Record::new("after").key("k")])?.base_offset, 200);
    assert_eq!(
        segment_logs(&pdir),
        vec![logs[0].clone(), pdir.join(format!("{:020}.log", 200))]
    );
    Ok(())
}
