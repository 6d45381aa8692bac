//! `Consumer::poll` hands out views decoded in place from the fetched batches: every codec,
//! headers, null keys and values, batches cut by `max_poll_records` and seeks into a batch read
//! back exactly as appended, per partition and as owned records.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{TempLog, TestResult};
use topiclog::{
    BatchBuilder, Compression, ConsumerConfig, ConsumerRecord, Header, OwnedConsumerRecord,
    PartitionHandle, TopicConfig, TopicPartition,
};

/// A record as the tests compare it: offset, key, value, headers.
type Seen = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn seen(r: &ConsumerRecord<'_>) -> Seen {
    (
        r.offset(),
        r.key().map(<[u8]>::to_vec),
        r.value().map(<[u8]>::to_vec),
        r.headers()
            .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
            .collect(),
    )
}

fn seen_owned(r: &OwnedConsumerRecord) -> Seen {
    (
        r.offset,
        r.key.as_ref().map(|b| b.to_vec()),
        r.value.as_ref().map(|b| b.to_vec()),
        r.headers
            .iter()
            .map(|h| (h.key.clone(), h.value.as_ref().map(|b| b.to_vec())))
            .collect(),
    )
}

/// Appends `count` records in one batch of `codec` and returns them as the model holds them.
fn append_batch(
    p: &PartitionHandle,
    codec: Compression,
    count: usize,
    model: &mut Vec<Seen>,
) -> TestResult {
    let mut b = BatchBuilder::new(codec);
    let mut pending = Vec::new();
    for i in 0..count {
        let n = model.len() + pending.len();
        // Every shape the decoder distinguishes: null keys, tombstones, headers (with a null
        // value), and values long enough to take multi-byte lengths.
        let key = (!n.is_multiple_of(5)).then(|| format!("key-{n}").into_bytes());
        let value = (n % 7 != 3).then(|| format!("value-{n}-{}", "v".repeat(n % 300)).into_bytes());
        let headers = if i % 4 == 1 {
            vec![Header::new("trace", format!("t{n}")), Header::null("empty")]
        } else {
            Vec::new()
        };
        b.push(
            key.as_deref(),
            value.as_deref(),
            &headers,
            1_700_000_000_000 + n as i64,
        )?;
        pending.push((
            key,
            value,
            headers
                .iter()
                .map(|h| (h.key.clone(), h.value.as_ref().map(|v| v.to_vec())))
                .collect::<Vec<_>>(),
        ));
    }
    let result = p.append_raw(b.finish()?)?;
    for (i, (key, value, headers)) in pending.into_iter().enumerate() {
        model.push((result.base_offset + i as i64, key, value, headers));
    }
    Ok(())
}

/// Batches of every codec this build has, large and single-record, in one partition.
fn fill(p: &PartitionHandle) -> TestResult<Vec<Seen>> {
    let mut model = Vec::new();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        append_batch(p, codec, 40 + 13 * i, &mut model)?;
        for _ in 0..5 {
            append_batch(p, codec, 1, &mut model)?;
        }
        append_batch(p, Compression::None, 3, &mut model)?;
    }
    Ok(model)
}

fn consumer_config(max_poll_records: usize) -> ConsumerConfig {
    let mut c = ConsumerConfig::default();
    c.max_poll_records = max_poll_records;
    c
}

#[test]
fn every_codec_reads_back_as_appended_whatever_cuts_the_polls() -> TestResult {
    every_codec_reads_back(TopicConfig::new())
}

/// The same from a topic whose appends are stored into a preallocated tail (reads stop at
/// the data's end, not the file's).
#[test]
fn every_codec_reads_back_from_a_preallocated_topic() -> TestResult {
    let mut config = TopicConfig::new();
    config.set("preallocate", "true")?;
    every_codec_reads_back(config)
}

fn every_codec_reads_back(config: TopicConfig) -> TestResult {
    let t = TempLog::with_topic_config("events", 1, config)?;
    let p = t.partition("events", 0)?;
    let model = fill(&p)?;
    let tp = TopicPartition::new("events", 0);
    for max in [1, 2, 7, 41, 500] {
        let mut c = t.consumer(consumer_config(max))?;
        c.assign(std::slice::from_ref(&tp))?;
        c.seek_to_beginning(std::slice::from_ref(&tp))?;
        let mut got = Vec::new();
        while got.len() < model.len() {
            let polled = c.poll(Duration::from_millis(200))?;
            assert!(
                !polled.is_empty(),
                "records remain but a poll returned none"
            );
            assert!(
                polled.len() <= max,
                "a poll returned more than max_poll_records"
            );
            let all: Vec<Seen> = polled.iter().map(|r| seen(&r)).collect();
            assert_eq!(all.len(), polled.len());
            let one: Vec<Seen> = polled.records(&tp).map(|r| seen(&r)).collect();
            assert_eq!(one, all, "records(&tp) of the only partition");
            assert_eq!(polled.count(&tp), all.len());
            assert_eq!(polled.partitions(), BTreeSet::from([tp.clone()]));
            got.extend(all);
            assert_eq!(c.position(&tp)?, got.last().map_or(0, |r| r.0 + 1));
        }
        assert_eq!(got, model, "max_poll_records {max}");
        assert!(c.poll(Duration::from_millis(10))?.is_empty());
    }
    Ok(())
}

#[test]
fn a_seek_into_a_batch_starts_at_that_record() -> TestResult {
    let t = TempLog::with_topic("events", 1)?;
    let p = t.partition("events", 0)?;
    let model = fill(&p)?;
    let tp = TopicPartition::new("events", 0);
    let mut c = t.consumer(consumer_config(5))?;
    c.assign(std::slice::from_ref(&tp))?;
    for start in (0..model.len()).step_by(3) {
        c.seek(&tp, start as i64)?;
        let polled = c.poll(Duration::from_millis(200))?;
        let got: Vec<Seen> = polled.iter().map(|r| seen(&r)).collect();
        let want: Vec<Seen> = model.iter().skip(start).take(got.len()).cloned().collect();
        assert!(!got.is_empty());
        assert_eq!(got, want, "seek to {start}");
    }
    Ok(())
}

#[test]
fn owned_records_outlive_their_poll() -> TestResult {
    let t = TempLog::with_topic("events", 1)?;
    let p = t.partition("events", 0)?;
    let model = fill(&p)?;
    let tp = TopicPartition::new("events", 0);
    let mut c = t.consumer(consumer_config(100))?;
    c.assign(std::slice::from_ref(&tp))?;
    let mut kept: Vec<OwnedConsumerRecord> = Vec::new();
    let mut by_value = true;
    while kept.len() < model.len() {
        let polled = c.poll(Duration::from_millis(200))?;
        // Alternately `to_owned` on views and iteration by value.
        if by_value {
            kept.extend(polled);
        } else {
            kept.extend(polled.iter().map(|r| r.to_owned()));
        }
        by_value = !by_value;
    }
    assert!(
        kept.iter()
            .all(|r| &*r.topic == "events" && r.partition == 0)
    );
    let got: Vec<Seen> = kept.iter().map(seen_owned).collect();
    assert_eq!(got, model);
    Ok(())
}

#[test]
fn each_partition_is_reachable_on_its_own() -> TestResult {
    let t = TempLog::with_topic("events", 3)?;
    let mut model: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    for part in 0..3 {
        let p = t.partition("events", part)?;
        let m = model.entry(part).or_default();
        append_batch(&p, Compression::None, 10 + part as usize, m)?;
        append_batch(&p, Compression::Lz4, 4, m)?;
    }
    let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("events", p)).collect();
    let mut c = t.consumer(consumer_config(500))?;
    c.assign(&tps)?;
    let mut got: BTreeMap<i32, Vec<Seen>> = BTreeMap::new();
    let total: usize = model.values().map(Vec::len).sum();
    let mut n = 0;
    while n < total {
        let polled = c.poll(Duration::from_millis(200))?;
        n += polled.len();
        let mut per_partition = 0;
        for tp in polled.partitions() {
            let records: Vec<Seen> = polled.records(&tp).map(|r| seen(&r)).collect();
            assert_eq!(records.len(), polled.count(&tp));
            assert!(
                polled
                    .records(&tp)
                    .all(|r| r.topic() == "events" && r.partition() == tp.partition)
            );
            per_partition += records.len();
            got.entry(tp.partition).or_default().extend(records);
        }
        assert_eq!(per_partition, polled.len());
        assert_eq!(polled.records(&TopicPartition::new("other", 0)).count(), 0);
    }
    assert_eq!(got, model);
    Ok(())
}

/// A poll cut inside a batch lets the next one resume where its iteration stopped; polls
/// iterated late, out of order or not at all still hand out every record once, intact.
#[test]
fn polls_iterated_late_or_out_of_order_read_back_as_appended() -> TestResult {
    let t = TempLog::with_topic("events", 1)?;
    let p = t.partition("events", 0)?;
    let model = fill(&p)?;
    let tp = TopicPartition::new("events", 0);
    let mut c = t.consumer(consumer_config(7))?;
    c.assign(std::slice::from_ref(&tp))?;
    let mut polls = Vec::new();
    let mut fetched = 0;
    while fetched < model.len() {
        let polled = c.poll(Duration::from_millis(200))?;
        fetched += polled.len();
        // Every third poll is iterated at once (leaving a cut for the next fetch).
        if polls.len() % 3 == 0 {
            assert_eq!(polled.iter().count(), polled.len());
        }
        polls.push(polled);
    }
    let mut got: Vec<Seen> = polls
        .iter()
        .rev()
        .flat_map(|polled| polled.iter().map(|r| seen(&r)).collect::<Vec<_>>())
        .collect();
    got.sort_by_key(|r| r.0);
    assert_eq!(got, model);
    Ok(())
}

/// Compaction leaves batches with gaps between their offsets (not dense): a poll counts and
/// cuts them by decoding, and reads back exactly what the log holds, whatever cuts the polls.
#[test]
fn compacted_batches_with_gaps_read_back_as_the_log_holds_them() -> TestResult {
    let mut config = common::small_segments(1024);
    config.cleanup_policy = topiclog::CleanupPolicy::Compact;
    let t = TempLog::with_topic_config("events", 1, config)?;
    let p = t.partition("events", 0)?;
    for round in 0..20 {
        let mut b = BatchBuilder::new(if round % 2 == 0 {
            Compression::None
        } else {
            Compression::Lz4
        });
        for i in 0..40 {
            // Every fifth key is written once (it survives), the others over and over.
            let key = if i % 5 == 0 {
                format!("once-{round}-{i}")
            } else {
                format!("key-{}", (i * 7 + round) % 13)
            };
            let value = format!("value-{round}-{i}");
            b.push(
                Some(key.as_bytes()),
                Some(value.as_bytes()),
                &[],
                1_700_000_000_000,
            )?;
        }
        p.append_raw(b.finish()?)?;
    }
    t.compact("events")?;
    let held: Vec<Seen> = common::read_all(&p)?
        .iter()
        .map(|r| {
            (
                r.offset,
                r.key.as_ref().map(|b| b.to_vec()),
                r.value.as_ref().map(|b| b.to_vec()),
                Vec::new(),
            )
        })
        .collect();
    let gaps = held
        .iter()
        .zip(held.iter().skip(1))
        .filter(|(a, b)| b.0 != a.0 + 1)
        .count();
    assert!(gaps > 0, "compaction left no gap to read across");
    let tp = TopicPartition::new("events", 0);
    for max in [1, 3, 17, 500] {
        let mut c = t.consumer(consumer_config(max))?;
        c.assign(std::slice::from_ref(&tp))?;
        c.seek_to_beginning(std::slice::from_ref(&tp))?;
        let mut got = Vec::new();
        while got.len() < held.len() {
            let polled = c.poll(Duration::from_millis(200))?;
            assert!(
                !polled.is_empty(),
                "records remain but a poll returned none"
            );
            let records: Vec<Seen> = polled.iter().map(|r| seen(&r)).collect();
            assert_eq!(records.len(), polled.len());
            got.extend(records);
        }
        assert_eq!(got, held, "max_poll_records {max}");
    }
    Ok(())
}
