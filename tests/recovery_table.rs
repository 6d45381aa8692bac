//! One test per row of the recovery table in `docs/durability.md`: a file state, where it lies
//! against the recovery point, clean or unclean shutdown, and what the open does and reports.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use topiclog::{
    FlushPolicy, Log, OFFSETS_TOPIC, OffsetSpec, PartitionRecovery, Record, Result, TopicConfig,
};

const N: u64 = 400;

/// (base offset, file position, length) of every batch in a segment log.
fn batches_of(log: &Path) -> TestResult<Vec<(i64, usize, usize)>> {
    let bytes = fs::read(log)?;
    let mut pos = 0;
    let mut out = Vec::new();
    for b in topiclog::Batches::new(bytes.into()) {
        let b = b?;
        out.push((b.base_offset(), pos, b.len()));
        pos += b.len();
    }
    Ok(out)
}

/// The batch of `log` holding `offset`: (base offset, file position).
fn batch_at(log: &Path, offset: i64) -> TestResult<(i64, usize)> {
    let (base, pos, _) = *batches_of(log)?
        .iter()
        .rev()
        .find(|(base, _, _)| *base <= offset)
        .ok_or("no batch at or below the offset")?;
    Ok((base, pos))
}

/// How a test log's writer stops.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// A clean close.
    Clean,
    /// A crash, with nothing synced since the open (the recovery point is 0).
    Crash,
    /// `Log::flush` (everything synced, the recovery point checkpointed), then a crash.
    FlushedCrash,
}

/// Writes N records (one batch each) to `t` over segments of 2 KiB, then stops as `stop`
/// says. Returns the segment logs.
fn write_log(dir: &Path, stop: Stop) -> Result<Vec<PathBuf>> {
    let log = open(dir)?;
    let mut config = small_segments(2048);
    config.flush_policy = FlushPolicy::Os;
    log.create_topic_with("t", 1, config)?;
    let p = log.partition("t", 0)?;
    for i in 0..N {
        p.append(&[rec(i)])?;
    }
    drop(p);
    match stop {
        Stop::Clean => log.close()?,
        Stop::Crash => log.abandon(),
        Stop::FlushedCrash => {
            log.flush()?;
            log.abandon();
        }
    }
    let logs = segment_logs(&dir.join("t-0"));
    assert!(logs.len() > 4);
    Ok(logs)
}

/// Flips the magic byte of the batch at `pos`: its header no longer parses.
fn garble_header(log: &Path, pos: usize) -> TestResult {
    let mut bytes = fs::read(log)?;
    bytes[pos + 16] ^= 0x7f;
    fs::write(log, &bytes)?;
    Ok(())
}

fn set_len(log: &Path, len: usize) -> TestResult {
    OpenOptions::new()
        .write(true)
        .open(log)?
        .set_len(len as u64)?;
    Ok(())
}

fn report_of(log: &Log) -> TestResult<PartitionRecovery> {
    Ok(log
        .recovery_report()
        .partitions
        .iter()
        .find(|p| p.topic == "t")
        .cloned()
        .ok_or("no recovery report for t")?)
}

/// Every record of `t` reads back as written, except offsets in `lost`, which read as
/// nothing; the end is `end` and the next append lands there.
fn expect_records(log: &Log, lost: std::ops::Range<i64>, end: i64) -> TestResult {
    let p = log.partition("t", 0)?;
    let got = read_all(&p)?;
    let want: Vec<i64> = (0..N as i64).filter(|o| !lost.contains(o)).collect();
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), want);
    for r in &got {
        assert_eq!(r.value, rec(r.offset as u64).value, "record {}", r.offset);
    }
    assert_eq!(p.log_end_offset(), end);
    assert_eq!(p.append(&[rec(N)])?.base_offset, end);
    Ok(())
}

#[test]
fn torn_tail_above_the_recovery_point_after_a_crash_is_cut() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Crash)?;
    let last = logs.last().ok_or("no segments")?;
    let (base, pos) = batch_at(last, N as i64 - 1)?;
    set_len(last, pos + 7)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.truncated_bytes, 7, "{r:?}");
    assert!(r.damage.is_empty(), "{r:?}");
    assert!(!log.recovery_report().damage_lines().is_empty());
    expect_records(&log, base..N as i64, base)
}

#[test]
fn garbled_batch_above_the_recovery_point_after_a_crash_is_cut_with_later_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Crash)?;
    // Nothing was synced after the open's checkpoint: the recovery point is 0.
    let (base, pos) = batch_at(&logs[1], segment_base(&logs[1]) + 2)?;
    garble_header(&logs[1], pos)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert!(
        r.truncated_bytes > 0 && r.segments_deleted == logs.len() - 2,
        "{r:?}"
    );
    assert!(r.damage.is_empty(), "{r:?}");
    let p = log.partition("t", 0)?;
    assert_eq!(read_all(&p)?.len() as i64, base);
    assert_eq!(p.log_end_offset(), base);
    Ok(())
}

#[test]
fn garbled_batch_below_the_recovery_point_after_a_crash_keeps_later_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::FlushedCrash)?;
    let second = segment_base(&logs[1]);
    let third = segment_base(&logs[2]);
    // The segment's last batch: the open reads the headers after a trusted segment's last
    // index entry (the rest is left to readers, as after a clean close).
    let (base, pos) = batch_at(&logs[1], third - 1)?;
    assert!(base > second);
    garble_header(&logs[1], pos)?;
    let found = fs::read(&logs[1])?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert!(!r.clean);
    assert_eq!((r.truncated_bytes, r.segments_deleted), (0, 0), "{r:?}");
    assert_eq!(r.damage.len(), 1, "{r:?}");
    let d = &r.damage[0];
    assert_eq!(
        (d.file.clone(), d.lost_from, d.lost_to),
        (logs[1].clone(), base, third)
    );
    // The file as found is kept beside the live prefix.
    assert_eq!(
        fs::read(
            d.preserved
                .as_ref()
                .ok_or("the damaged file was not kept")?
        )?,
        found
    );
    assert_eq!(fs::metadata(&logs[1])?.len() as usize, pos);
    assert!(log.recovery_report().damaged().count() == 1);
    expect_records(&log, base..third, N as i64)
}

#[test]
fn garbled_batch_in_a_sealed_segment_after_a_clean_close_keeps_later_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let third = segment_base(&logs[2]);
    // The segment's last batch: the clean open reads the headers after its last index entry.
    let (base, pos) = batch_at(&logs[1], third - 1)?;
    let found = fs::read(&logs[1])?;
    garble_header(&logs[1], pos)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert!(r.clean);
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert_eq!((r.damage[0].lost_from, r.damage[0].lost_to), (base, third));
    let mut garbled = found.clone();
    garbled[pos + 16] ^= 0x7f;
    assert_eq!(
        fs::read(
            r.damage[0]
                .preserved
                .as_ref()
                .ok_or("the damaged file was not kept")?
        )?,
        garbled
    );
    let lines = log.recovery_report().damage_lines();
    assert!(
        lines.iter().any(|l| l.contains("damage at rest")),
        "{lines:?}"
    );
    expect_records(&log, base..third, N as i64)
}

#[test]
fn garbled_batch_inside_a_sealed_segment_after_a_clean_close_is_left_to_readers() -> TestResult {
    // A clean open trusts a sealed segment's indexes and reads no batch before its last entry
    // (as Kafka): the damage is met by the reader, as a typed error, and nothing is cut.
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let (base, pos) = batch_at(&logs[1], segment_base(&logs[1]) + 1)?;
    garble_header(&logs[1], pos)?;
    let log = open(dir.path())?;
    assert!(log.recovery_report().damaged().next().is_none());
    let p = log.partition("t", 0)?;
    assert_eq!(p.log_end_offset(), N as i64);
    assert!(matches!(
        p.read(base, 1 << 16),
        Err(topiclog::Error::Corrupt { .. })
    ));
    assert_eq!(segment_logs(&dir.path().join("t-0")), logs);
    Ok(())
}

#[test]
fn truncated_sealed_segment_after_a_clean_close_keeps_later_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let third = segment_base(&logs[2]);
    let (base, pos) = batch_at(&logs[1], segment_base(&logs[1]) + 4)?;
    set_len(&logs[1], pos + 10)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert_eq!(r.segments_deleted, 0);
    expect_records(&log, base..third, N as i64)
}

#[test]
fn truncated_last_segment_after_a_clean_close_keeps_the_end() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let last = logs.last().ok_or("no segments")?;
    let (base, pos) = batch_at(last, segment_base(last) + 1)?;
    set_len(last, pos + 20)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert_eq!(
        (r.damage[0].lost_from, r.damage[0].lost_to),
        (base, N as i64)
    );
    // Appends continue at the old end, in a new segment: offsets are not handed out twice.
    expect_records(&log, base..N as i64, N as i64)?;
    assert!(dir.path().join(format!("t-0/{N:020}.log")).exists());
    Ok(())
}

#[test]
fn missing_last_segment_after_a_clean_close_keeps_the_end() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let last = logs.last().ok_or("no segments")?;
    let base = segment_base(last);
    fs::remove_file(last)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert_eq!(
        (r.damage[0].lost_from, r.damage[0].lost_to),
        (base, N as i64)
    );
    expect_records(&log, base..N as i64, N as i64)
}

#[test]
fn missing_index_is_rebuilt_and_is_not_damage() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    fs::remove_file(logs[1].with_extension("index"))?;
    fs::remove_file(logs[2].with_extension("timeindex"))?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert!(r.indexes_rebuilt >= 1, "{r:?}");
    assert!(log.recovery_report().damaged().next().is_none());
    assert!(logs[1].with_extension("index").exists());
    expect_records(&log, 0..0, N as i64)
}

#[test]
fn gap_between_segments_after_a_clean_close_is_kept() -> TestResult {
    // A segment emptied by a compaction elsewhere: the offsets it held become a gap.
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let (second, third) = (segment_base(&logs[1]), segment_base(&logs[2]));
    for ext in ["log", "index", "timeindex"] {
        fs::remove_file(logs[1].with_extension(ext))?;
    }
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.offset_gaps, 1, "{r:?}");
    assert!(log.recovery_report().damaged().next().is_none(), "{r:?}");
    expect_records(&log, second..third, N as i64)
}

#[test]
fn gap_above_the_recovery_point_after_a_crash_is_kept() -> TestResult {
    // Power failed after a roll created the next segment but before the rolled one's data
    // reached the disk: the later segments' records are intact and stay, after a gap (as
    // Kafka keeps them); only what was lost is missing.
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Crash)?;
    let (second, third) = (segment_base(&logs[1]), segment_base(&logs[2]));
    set_len(&logs[1], 0)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!((r.offset_gaps, r.segments_deleted), (1, 0), "{r:?}");
    assert!(log.recovery_report().damaged().next().is_none(), "{r:?}");
    expect_records(&log, second..third, N as i64)
}

#[test]
fn overlapping_segment_is_set_aside_whole() -> TestResult {
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let pdir = dir.path().join("t-0");
    // A copy of the second segment's log under a base inside the first segment.
    let misplaced = pdir.join(format!("{:020}.log", segment_base(&logs[1]) - 3));
    fs::copy(&logs[1], &misplaced)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert_eq!(r.damage[0].file, misplaced);
    assert!(
        !misplaced.exists()
            && r.damage[0]
                .preserved
                .as_ref()
                .ok_or("the damaged file was not kept")?
                .exists()
    );
    expect_records(&log, 0..0, N as i64)
}

#[test]
fn overlapping_last_segment_is_set_aside_and_appends_go_to_a_new_segment() -> TestResult {
    // The segment before it was opened as a sealed one (its tail's CRCs unread): appends do
    // not continue in it.
    let dir = tempfile::tempdir()?;
    let logs = write_log(dir.path(), Stop::Clean)?;
    let pdir = dir.path().join("t-0");
    let misplaced = pdir.join(format!(
        "{:020}.log",
        segment_base(logs.last().ok_or("no segments")?) + 1
    ));
    fs::copy(&logs[0], &misplaced)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert_eq!(r.damage[0].file, misplaced);
    expect_records(&log, 0..0, N as i64)?;
    let mut want = logs.clone();
    want.push(pdir.join(format!("{N:020}.log")));
    assert_eq!(segment_logs(&pdir), want);
    Ok(())
}

#[test]
fn lost_unsynced_tail_names_groups_committed_past_the_end() -> TestResult {
    // Under `Os`, a crash may lose what was never synced, offsets and all (documented). A
    // group that had committed past the new end is named.
    let dir = tempfile::tempdir()?;
    let cut;
    {
        let log = open(dir.path())?;
        let mut config = TopicConfig::new();
        config.flush_policy = FlushPolicy::Os;
        log.create_topic_with("t", 1, config)?;
        let p = log.partition("t", 0)?;
        for i in 0..50 {
            p.append(&[rec(i)])?;
        }
        log.close()?;
        cut = fs::metadata(&segment_logs(&dir.path().join("t-0"))[0])?.len();
        let log = open(dir.path())?;
        let p = log.partition("t", 0)?;
        for i in 50..80 {
            p.append(&[rec(i)])?;
        }
        log.reset_group_offsets("readers", "t", OffsetSpec::Latest)?;
        log.abandon();
    }
    set_len(&segment_logs(&dir.path().join("t-0"))[0], cut as usize)?;
    let log = open(dir.path())?;
    let past = &log.recovery_report().committed_past_end;
    assert_eq!(past.len(), 1, "{past:?}");
    assert_eq!(
        (past[0].group.as_str(), past[0].committed, past[0].log_end),
        ("readers", 80, 50)
    );
    let lines = log.recovery_report().damage_lines();
    assert!(
        lines.iter().any(|l| l.contains("group readers")),
        "{lines:?}"
    );
    Ok(())
}

#[test]
fn damage_below_the_recovery_point_raises_the_end_to_committed_offsets() -> TestResult {
    // Synced up to 100 (a clean close), 50 more records under `Os` that a group read and
    // committed, then a crash and a garbled batch at offset 99 (the batches after it, synced
    // or not, go aside with the file as found): the end would fall to the recovery point,
    // below the commit. It moves up to the commit instead.
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        let mut config = TopicConfig::new();
        config.flush_policy = FlushPolicy::Os;
        log.create_topic_with("t", 1, config)?;
        let p = log.partition("t", 0)?;
        for i in 0..100 {
            p.append(&[rec(i)])?;
        }
        log.close()?;
        let log = open(dir.path())?;
        let p = log.partition("t", 0)?;
        for i in 100..150 {
            p.append(&[rec(i)])?;
        }
        log.reset_group_offsets("readers", "t", OffsetSpec::Latest)?;
        log.abandon();
    }
    let seg = &segment_logs(&dir.path().join("t-0"))[0];
    let (base, pos) = batch_at(seg, 99)?;
    garble_header(seg, pos)?;
    let log = open(dir.path())?;
    let r = report_of(&log)?;
    assert_eq!(r.damage.len(), 1, "{r:?}");
    assert_eq!(r.end_raised_to, Some(150), "{r:?}");
    assert!(log.recovery_report().committed_past_end.is_empty());
    let p = log.partition("t", 0)?;
    assert_eq!(read_all(&p)?.len() as i64, base);
    assert_eq!(p.log_end_offset(), 150);
    assert_eq!(p.append(&[rec(150)])?.base_offset, 150);
    drop(p);
    log.close()?;
    // The raised end survives a reopen.
    let log = open(dir.path())?;
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 151);
    Ok(())
}

#[test]
fn damaged_consumer_offsets_names_the_groups_whose_commits_were_there() -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic("t", 1)?;
        log.partition("t", 0)?.append(&[Record::new("v")])?;
        for g in ["first", "second", "third"] {
            log.reset_group_offsets(g, "t", OffsetSpec::Latest)?;
        }
        log.close()?;
    }
    let seg = segment_logs(&dir.path().join(format!("{OFFSETS_TOPIC}-0")))
        .pop()
        .ok_or("no offsets segment")?;
    let batches = batches_of(&seg)?;
    // The second group's commit is the second-to-last batch: flip a byte of its value.
    let (_, pos, len) = batches[batches.len() - 2];
    let mut bytes = fs::read(&seg)?;
    bytes[pos + len - 2] ^= 0x01;
    fs::write(&seg, &bytes)?;
    let log = open(dir.path())?;
    let report = log.recovery_report();
    assert_eq!(report.lost_commit_groups, vec!["second", "third"]);
    let lines = report.damage_lines();
    assert!(
        lines.iter().any(|l| l.contains("second, third")),
        "{lines:?}"
    );
    assert_eq!(log.list_groups(), vec!["first"]);
    Ok(())
}

#[test]
fn checksum_damage_inside_consumer_offsets_names_the_group_it_hid() -> TestResult {
    // A bad CRC before the offsets segment's last index entry is not read at open; loading the
    // commits skips that batch, and the group it held is named instead of vanishing silently.
    let dir = tempfile::tempdir()?;
    {
        let log = open(dir.path())?;
        log.create_topic("t", 1)?;
        log.partition("t", 0)?.append(&[Record::new("v")])?;
        log.reset_group_offsets("victim", "t", OffsetSpec::Latest)?;
        // Enough later commits that the segment has index entries after the victim's batch.
        for _ in 0..80 {
            log.reset_group_offsets("later", "t", OffsetSpec::Latest)?;
        }
        log.close()?;
    }
    let seg = segment_logs(&dir.path().join(format!("{OFFSETS_TOPIC}-0")))
        .pop()
        .ok_or("no offsets segment")?;
    let mut bytes = fs::read(&seg)?;
    let (_, pos, len) = batches_of(&seg)?
        .into_iter()
        .find(|&(_, pos, len)| bytes[pos..pos + len].windows(6).any(|w| w == b"victim"))
        .ok_or("no batch holds the victim's commit")?;
    bytes[pos + len - 2] ^= 0x01;
    fs::write(&seg, &bytes)?;
    let log = open(dir.path())?;
    let report = log.recovery_report();
    assert_eq!(report.lost_commit_groups, vec!["victim"]);
    assert!(
        report.damage_lines().iter().any(|l| l.ends_with("victim")),
        "{:?}",
        report.damage_lines()
    );
    assert_eq!(log.list_groups(), vec!["later"]);
    Ok(())
}
