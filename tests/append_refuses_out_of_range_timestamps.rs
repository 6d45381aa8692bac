//! A topic with `message.timestamp.before.max.ms` / `after.max.ms` / `difference.max.ms` refuses CreateTime records outside that window on every append path, with Kafka's INVALID_TIMESTAMP.

mod common;
use common::*;
use std::time::{SystemTime, UNIX_EPOCH};
use topiclog::{
    BatchBuilder, Compression, Error, Log, ProducerConfig, ProducerRecord, Record, TopicConfig,
};

const HOUR: i64 = 3_600_000;

fn now() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn assert_refused<T: std::fmt::Debug>(r: topiclog::Result<T>, what: &str) {
    match r {
        Err(e @ Error::InvalidTimestamp { .. }) => assert_eq!(e.kafka_error_code(), 32, "{what}"),
        other => panic!("{what}: expected InvalidTimestamp, got {other:?}"),
    }
}

/// Appends one record stamped `ts` through each append path; one result per path.
fn append_everywhere(log: &Log, ts: i64) -> TestResult<Vec<(&'static str, topiclog::Result<()>)>> {
    let p = log.partition("t", 0)?;
    let mut out = Vec::new();
    out.push((
        "append",
        p.append(&[Record::new("v").timestamp(ts)]).map(|_| ()),
    ));
    let mut b = BatchBuilder::new(Compression::None);
    b.push(None, Some(b"v"), &[], ts)?;
    out.push(("append_builder", p.append_builder(&mut b).map(|_| ())));
    let mut b = BatchBuilder::new(Compression::None);
    b.push(None, Some(b"v"), &[], ts)?;
    out.push(("append_raw", p.append_raw(b.finish()?).map(|_| ())));
    let producer = log.producer(ProducerConfig::default())?;
    out.push((
        "producer",
        producer
            .send(ProducerRecord::new("t", "v").partition(0).timestamp(ts))
            .map(|_| ()),
    ));
    Ok(out)
}

fn topic(config: TopicConfig) -> TestResult<TempLog> {
    TempLog::with_topic_config("t", 1, config)
}

#[test]
fn before_and_after_bounds_refuse_on_every_path() -> TestResult {
    let log = topic(
        TopicConfig::new()
            .with("message.timestamp.before.max.ms", &HOUR.to_string())?
            .with("message.timestamp.after.max.ms", &HOUR.to_string())?,
    )?;
    for ts in [now() - 3 * HOUR, now() + 3 * HOUR] {
        for (path, r) in append_everywhere(&log, ts)? {
            assert_refused(r, path);
        }
    }
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 0);
    for (path, r) in append_everywhere(&log, now() - HOUR / 2)? {
        r.map_err(|e| format!("{path}: {e}"))?;
    }
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 4);
    Ok(())
}

#[test]
fn a_late_record_anywhere_in_the_batch_refuses_it() -> TestResult {
    let log =
        topic(TopicConfig::new().with("message.timestamp.before.max.ms", &HOUR.to_string())?)?;
    let p = log.partition("t", 0)?;
    let t = now();
    // The first record is in range; a later one is older than it and out of range.
    let records = [
        Record::new("a").timestamp(t),
        Record::new("b").timestamp(t - 5 * HOUR),
        Record::new("c").timestamp(t),
    ];
    assert_refused(p.append(&records), "second record too old");
    for codec in [Compression::None, Compression::Lz4] {
        let mut b = BatchBuilder::new(codec);
        for r in &records {
            b.push_record(r, t)?;
        }
        assert_refused(p.append_builder(&mut b), "a compressed batch too");
    }
    assert_eq!(p.log_end_offset(), 0);
    Ok(())
}

#[test]
fn difference_bounds_both_sides_where_the_others_are_unset() -> TestResult {
    let log = topic(
        TopicConfig::new()
            .with("message.timestamp.difference.max.ms", &HOUR.to_string())?
            .with("message.timestamp.after.max.ms", &(10 * HOUR).to_string())?,
    )?;
    let p = log.partition("t", 0)?;
    assert_refused(
        p.append(&[Record::new("v").timestamp(now() - 2 * HOUR)]),
        "before",
    );
    // after.max.ms is set, so it, not difference.max.ms, bounds the future.
    p.append(&[Record::new("v").timestamp(now() + 2 * HOUR)])?;
    assert_refused(
        p.append(&[Record::new("v").timestamp(now() + 11 * HOUR)]),
        "after",
    );
    Ok(())
}

#[test]
fn unbounded_and_log_append_time_topics_take_any_timestamp() -> TestResult {
    let log = topic(TopicConfig::new())?;
    for (path, r) in append_everywhere(&log, 0)? {
        r.map_err(|e| format!("{path}: {e}"))?;
    }
    let log = topic(
        TopicConfig::new()
            .with("message.timestamp.type", "LogAppendTime")?
            .with("message.timestamp.difference.max.ms", "1000")?,
    )?;
    for (path, r) in append_everywhere(&log, 0)? {
        r.map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

#[test]
fn a_bound_set_by_alter_applies_to_the_next_append() -> TestResult {
    let log = topic(TopicConfig::new())?;
    let p = log.partition("t", 0)?;
    p.append(&[Record::new("v").timestamp(0)])?;
    let config = log
        .describe_topic("t")?
        .config
        .with("message.timestamp.before.max.ms", &HOUR.to_string())?;
    log.alter_topic_config("t", config)?;
    assert_refused(p.append(&[Record::new("v").timestamp(0)]), "after alter");
    Ok(())
}
