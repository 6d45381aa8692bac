//! Appended records survive close and reopen; a clean reopen trusts the indexes and scans
//! nothing; topic config and partition counts persist.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::{Compression, Header, Record, TimestampType, TopicConfig};

#[test]
fn records_survive_a_clean_reopen() -> TestResult {
    let log = TempLog::with_topic_config("events", 2, small_segments(4096))?;
    {
        let p = log.partition("events", 1)?;
        for i in 0..500 {
            let at = p.append(&[rec(i)])?;
            assert_eq!(at.base_offset, i as i64);
        }
    }
    let log = log.reopen()?;
    let report = log.recovery_report();
    assert!(report.clean);
    for pr in &report.partitions {
        assert_eq!(pr.segments_scanned, 0, "clean open must not scan: {pr:?}");
        assert_eq!(pr.truncated_bytes, 0);
    }
    let p = log.partition("events", 1)?;
    assert_eq!(p.log_end_offset(), 500);
    let got = read_all(&p)?;
    assert_eq!(got.len(), 500);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
    }
    let desc = log.describe_topic("events")?;
    assert_eq!(desc.partitions.len(), 2);
    assert!(
        desc.partitions[1].segments > 1,
        "4 KiB segments must have rolled"
    );
    assert_eq!(desc.config.segment_bytes, 4096);
    // Appends continue where the log ended.
    assert_eq!(p.append(&[rec(500)])?.base_offset, 500);
    Ok(())
}

#[test]
fn multi_record_append_is_one_batch_with_all_fields() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    let batch = vec![
        Record::new("a")
            .key("k1")
            .timestamp(5)
            .header(Header::new("h", "v")),
        Record::default(),
        Record::tombstone("k3").header(Header::null("n")),
    ];
    let at = p.append(&batch)?;
    assert_eq!((at.base_offset, at.last_offset), (0, 2));
    let res = p.read(0, 1 << 20)?;
    assert_eq!(res.batches.len(), 1, "one append, one batch");
    let got = read_all(&p)?;
    assert_eq!(got[0].headers, vec![Header::new("h", "v")]);
    assert_eq!(got[0].timestamp, 5);
    assert_eq!(got[1].key, None);
    assert_eq!(got[1].value, None);
    assert_eq!(got[2].value, None);
    assert_eq!(got[2].headers, vec![Header::null("n")]);
    Ok(())
}

#[test]
fn compressed_topics_round_trip() -> TestResult {
    let log = TempLog::new()?;
    for codec in Compression::ALL {
        let mut c = TopicConfig::new();
        c.compression = Some(codec);
        let name = format!("c-{codec}");
        log.create_topic_with(&name, 1, c)?;
        let p = log.partition(&name, 0)?;
        let recs: Vec<_> = (0..200).map(rec).collect();
        p.append(&recs)?;
        let res = p.read(0, 1 << 20)?;
        assert_eq!(res.batches[0].header().compression()?, codec);
        let got = read_all(&p)?;
        assert_eq!(got.len(), 200);
        assert_eq!(got[199].value, recs[199].value);
    }
    Ok(())
}

#[test]
fn log_append_time_stamps_every_record() -> TestResult {
    let mut c = TopicConfig::new();
    c.timestamp_type = TimestampType::LogAppendTime;
    let log = TempLog::with_topic_config("t", 1, c)?;
    let p = log.partition("t", 0)?;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let at = p.append(&[rec(1).timestamp(7), rec(2).timestamp(8)])?;
    assert!(at.timestamp >= before);
    let got = read_all(&p)?;
    assert!(got.iter().all(|r| r.timestamp == at.timestamp));
    let res = p.read(0, 1 << 20)?;
    res.batches[0].verify_crc()?;
    assert_eq!(
        res.batches[0].header().timestamp_type(),
        TimestampType::LogAppendTime
    );
    Ok(())
}

#[test]
fn uncompressed_reads_are_views_of_the_mapped_segment() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    p.append(&[rec(1), rec(2)])?;
    let res = p.read(0, 1 << 20)?;
    let batch = &res.batches[0];
    let range = batch.as_bytes().as_ptr_range();
    for r in batch.owned_records()? {
        let v = r?.value.ok_or("a null value")?;
        assert!(range.contains(&v.as_ptr()), "record bytes were copied");
    }
    Ok(())
}

/// A clean open checks the CRCs of the active segment's tail, not of every sealed segment's:
/// a sealed segment's damaged batch stays in the log (as Kafka keeps it) and its reader gets
/// `ChecksumMismatch`; the same damage in the active segment's last batch is found at open, set
/// aside and reported.
#[test]
fn clean_open_checks_crcs_of_the_active_tail_and_leaves_sealed_ones_to_readers() -> TestResult {
    for damage_active in [false, true] {
        let log = TempLog::with_topic_config("t", 1, small_segments(4096))?;
        {
            let p = log.partition("t", 0)?;
            for i in 0..200 {
                p.append(&[rec(i)])?;
            }
        }
        let dir = log.close()?;
        let part = dir.path().join("t-0");
        let logs = segment_logs(&part);
        assert!(logs.len() > 2);
        let victim = if damage_active {
            logs.last().ok_or("no segments")?
        } else {
            &logs[0]
        };
        // A value byte of the segment's last batch (its last 2 bytes are the value's last
        // byte and the header count).
        let mut bytes = std::fs::read(victim)?;
        let at = bytes.len() - 2;
        bytes[at] ^= 0x01;
        std::fs::write(victim, &bytes)?;

        let log = open(dir.path())?;
        let report = log.recovery_report();
        assert!(report.clean);
        let pr = report
            .partitions
            .iter()
            .find(|pr| pr.topic == "t")
            .ok_or("no recovery report for t")?;
        let p = log.partition("t", 0)?;
        if damage_active {
            // Damage at rest after a clean close: the batch no longer reads back, the file as
            // found is kept aside, and offset 199 is not handed out again.
            assert_eq!(pr.segments_scanned, 1, "{pr:?}");
            assert_eq!(pr.truncated_bytes, 0, "{pr:?}");
            assert_eq!(pr.damage.len(), 1, "{pr:?}");
            assert!(
                pr.damage[0]
                    .preserved
                    .as_ref()
                    .ok_or("the damaged file was not kept")?
                    .exists()
            );
            assert_eq!(p.log_end_offset(), 200);
            assert_eq!(read_all(&p)?.len(), 199);
        } else {
            assert_eq!(pr.segments_scanned, 0, "{pr:?}");
            assert_eq!(pr.truncated_bytes, 0, "{pr:?}");
            assert_eq!(p.log_end_offset(), 200);
            // The damaged batch is the sealed segment's last: the one just below the next
            // segment's base offset.
            let next_base = segment_base(&logs[1]);
            let res = p.read(next_base - 1, 1)?;
            let batch = &res.batches[0];
            assert_eq!(batch.last_offset(), next_base - 1);
            assert!(matches!(
                batch.verify_crc(),
                Err(topiclog::Error::ChecksumMismatch { .. })
            ));
            // The batches around it read and check as before.
            let res = p.read(next_base, 1)?;
            res.batches[0].verify_crc()?;
        }
    }
    Ok(())
}
