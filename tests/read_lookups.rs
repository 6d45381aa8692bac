//! Reads return whole batches from the one holding the offset, within a byte budget; lookups
//! by timestamp are exact even when CreateTime is out of order.
#![allow(clippy::indexing_slicing)]

mod common;
use common::*;
use topiclog::Record;

#[test]
fn read_starts_with_the_batch_holding_the_offset() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1 << 20))?;
    let p = log.partition("t", 0)?;
    for b in 0..50 {
        let recs: Vec<_> = (0..4).map(|i| rec(b * 4 + i)).collect();
        p.append(&recs)?;
    }
    let res = p.read(102, 1)?;
    assert_eq!(res.batches.len(), 1, "at least one batch even over budget");
    assert_eq!(res.batches[0].base_offset(), 100);
    assert_eq!(res.next_offset(), Some(104));
    assert_eq!(res.high_watermark, 200);
    let res = p.read(0, 1000)?;
    let size = res.size();
    assert!(size <= 1000 && !res.batches.is_empty());
    let res = p.read(0, usize::MAX)?;
    assert_eq!(res.batches.len(), 50);
    let recs = p.records(102, 1)?;
    assert_eq!(
        recs.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![102, 103]
    );
    Ok(())
}

#[test]
fn reads_cross_segment_boundaries() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(1024))?;
    let p = log.partition("t", 0)?;
    for i in 0..300 {
        p.append(&[rec(i)])?;
    }
    for start in [0, 1, 17, 150, 298, 299] {
        let got = p.records(start, 1 << 20)?;
        assert_eq!(got.first().ok_or("empty")?.offset, start);
        assert_eq!(got.last().ok_or("empty")?.offset, 299, "from {start}");
    }
    Ok(())
}

#[test]
fn offset_for_timestamp_is_exact_with_out_of_order_times() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(2048))?;
    let p = log.partition("t", 0)?;
    // Timestamps go up by 10, but every 7th record is back-dated by 1000.
    let ts = |i: i64| {
        if i % 7 == 3 {
            1000 + i * 10 - 1000
        } else {
            1000 + i * 10
        }
    };
    let mut all = Vec::new();
    for i in 0..300i64 {
        p.append(&[Record::new(format!("v{i}")).key("k").timestamp(ts(i))])?;
        all.push((i, ts(i)));
    }
    for target in [0, 999, 1000, 1001, 1500, 2033, 2035, 3985, 3990, 3991, 5000] {
        let want = all.iter().find(|(_, t)| *t >= target).copied();
        assert_eq!(p.offset_for_timestamp(target)?, want, "target {target}");
    }
    // Same answers after reopening (indexes trusted) and after rebuilding them.
    let log = log.reopen()?;
    let p = log.partition("t", 0)?;
    assert_eq!(
        p.offset_for_timestamp(2035)?,
        all.iter().find(|(_, t)| *t >= 2035).copied()
    );
    Ok(())
}

#[test]
fn offset_for_timestamp_respects_log_start() -> TestResult {
    let log = TempLog::with_topic("t", 1)?;
    let p = log.partition("t", 0)?;
    for i in 0..10 {
        p.append(&[Record::new("v").timestamp(100 + i)])?;
    }
    p.delete_records(5)?;
    assert_eq!(p.offset_for_timestamp(0)?, Some((5, 105)));
    Ok(())
}

#[test]
fn contiguous_spans_hold_exactly_the_returned_batches() -> TestResult {
    let log = TempLog::with_topic_config("t", 1, small_segments(2048))?;
    let p = log.partition("t", 0)?;
    for b in 0..60 {
        let recs: Vec<_> = (0..3).map(|i| rec(b * 3 + i)).collect();
        p.append(&recs)?;
    }
    for (offset, budget) in [(0, usize::MAX), (7, 5000), (100, 1), (179, 100), (180, 100)] {
        let res = p.read(offset, budget)?;
        let batches: Vec<u8> = res
            .batches
            .iter()
            .flat_map(|b| b.as_bytes().to_vec())
            .collect();
        let spans: Vec<u8> = res.contiguous().iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(spans, batches, "read({offset}, {budget})");
        if offset == 0 {
            assert!(res.contiguous().len() > 1, "one span per segment");
        }
    }
    Ok(())
}
