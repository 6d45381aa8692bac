//! Mirroring (`topiclog::mirror`, `topiclog mirror`) through librdkafka against this
//! project's Kafka-protocol server in process (transactions served), and against a
//! third-party broker (tansu) when `.ci/run` starts one: `TOPICLOG_TANSU_BOOTSTRAP=HOST:PORT
//! cargo test --release --all-features --test mirror -- --ignored tansu`.
#![allow(clippy::indexing_slicing, clippy::too_many_lines)]

#[path = "../examples/kafka_server/alloc.rs"]
mod alloc;
#[path = "../examples/kafka_server/broker.rs"]
mod broker;
mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use broker::{Broker, BrokerConfig};
use common::{TempLog, TestResult, env_rounds, xorshift};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use topiclog::mirror::{self, Checkpoint, ExactlyOnce, MirrorConfig, MirrorError, OffsetSync};
use topiclog::{
    Compression, ConsumerConfig, Header, IsolationLevel, Log, LogOptions, OffsetAndMetadata,
    ProducerConfig, ProducerRecord, Record, TopicConfig, TopicPartition,
};

#[global_allocator]
static ALLOC: alloc::SparseHuge = alloc::SparseHuge;

struct Server {
    broker: Arc<Broker>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> TestResult<Server> {
        let dir = tempfile::tempdir()?;
        let log = LogOptions::new()
            .flusher(Some(Duration::from_millis(50)))
            .open(dir.path())?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let broker = Broker::new(
            log,
            BrokerConfig {
                host: "127.0.0.1".into(),
                port: i32::from(addr.port()),
                auto_create_topics: false,
                default_partitions: 1,
                max_frame_bytes: 100 << 20,
                max_fetch_wait: Duration::from_secs(1),
            },
        );
        let serving = Arc::clone(&broker);
        std::thread::spawn(move || broker::serve(serving, listener));
        Ok(Server {
            broker,
            addr,
            _dir: dir,
        })
    }

    fn log(&self) -> &Log {
        self.broker.log()
    }

    fn bootstrap(&self) -> String {
        self.addr.to_string()
    }
}

/// A record as a mirror must keep it: key, value, headers, timestamp.
type Rec = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
    i64,
);

/// Every committed record of `topic`, per partition, with its offset.
fn contents(log: &Log, topic: &str) -> TestResult<Vec<Vec<(i64, Rec)>>> {
    let n = log.partition_count(topic)?;
    let mut out = vec![Vec::new(); n as usize];
    let mut config = ConsumerConfig::default();
    config.isolation_level = IsolationLevel::ReadCommitted;
    config.max_poll_records = 100_000;
    let mut consumer = log.consumer(config)?;
    let tps: Vec<TopicPartition> = (0..n).map(|p| TopicPartition::new(topic, p)).collect();
    consumer.assign(&tps)?;
    consumer.seek_to_beginning(&tps)?;
    let ends: Vec<i64> = (0..n)
        .map(|p| log.partition(topic, p).map(|h| h.last_stable_offset()))
        .collect::<Result<_, _>>()?;
    loop {
        let mut behind = false;
        for (tp, end) in tps.iter().zip(&ends) {
            behind |= consumer.position(tp)? < *end;
        }
        if !behind {
            break;
        }
        let records = consumer.poll(Duration::from_millis(100))?;
        for r in &records {
            out[r.partition() as usize].push((
                r.offset(),
                (
                    r.key().map(<[u8]>::to_vec),
                    r.value().map(<[u8]>::to_vec),
                    r.headers()
                        .map(|(k, v)| (k.to_owned(), v.map(<[u8]>::to_vec)))
                        .collect(),
                    r.timestamp(),
                ),
            ));
        }
    }
    Ok(out)
}

/// The MirrorMaker 2 checkpoints in a checkpoints topic, decoded.
fn checkpoints_in(log: &Log, topic: &str) -> TestResult<Vec<Checkpoint>> {
    Ok(contents(log, topic)?[0]
        .iter()
        .map(|(_, (k, v, _, _))| {
            Checkpoint::decode(
                k.as_deref().unwrap_or_default(),
                v.as_deref().unwrap_or_default(),
            )
        })
        .collect::<Result<_, _>>()?)
}

/// The records of each partition without their offsets.
fn records_only(c: &[Vec<(i64, Rec)>]) -> Vec<Vec<Rec>> {
    c.iter()
        .map(|p| p.iter().map(|(_, r)| r.clone()).collect())
        .collect()
}

/// Writes `n` records round-robin over `partitions`: keys (a seventh null), values (an
/// eleventh null), headers on every third (one with a null value), increasing timestamps,
/// in runs of 1,000 under each codec in turn.
fn fill(log: &Log, topic: &str, partitions: i32, first: u64, n: u64) -> TestResult {
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut i = first;
    while i < first + n {
        let codec = codecs[(i / 1000) as usize % codecs.len()];
        let mut config = ProducerConfig::default();
        config.compression = Some(codec);
        let producer = log.producer(config)?;
        let end = (i / 1000 + 1) * 1000;
        while i < end.min(first + n) {
            let mut r = Record::default();
            if !i.is_multiple_of(7) {
                r.key = Some(format!("key-{}", i % 1000).into());
            }
            if !i.is_multiple_of(11) {
                r.value = Some(format!("value-{i}-{}", "v".repeat((i % 50) as usize)).into());
            }
            if i.is_multiple_of(3) {
                r.headers = vec![Header::new("trace", format!("t{i}")), Header::null("empty")];
            }
            r.timestamp = Some(1_700_000_000_000 + i as i64);
            producer.send_async(ProducerRecord {
                topic: topic.into(),
                partition: Some((i % partitions as u64) as i32),
                record: r,
            })?;
            i += 1;
        }
        producer.close()?;
    }
    Ok(())
}

fn config(bootstrap: &str, topics: &str) -> MirrorConfig {
    let mut cfg = MirrorConfig::new(bootstrap);
    cfg.topics = topics.into();
    cfg.until_end = true;
    cfg.timeout = Duration::from_secs(30);
    cfg
}

/// A topic name no earlier run used (an external broker keeps topics between runs).
fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Pushes `n` records of a new 3-partition topic (missing on the cluster) and pulls them
/// into a second, new directory: every record equal, in order per partition. Then both
/// directions again: nothing more to copy.
fn round_trip(bootstrap: &str, n: u64, cluster: Option<&Log>) -> TestResult {
    let topic = unique("events");
    let src = TempLog::new()?;
    src.create_topic(&topic, 3)?;
    fill(&src, &topic, 3, 0, n)?;
    let cfg = config(bootstrap, &regex::escape(&topic));
    let pushed = mirror::push(&src, &cfg)?;
    assert_eq!(pushed.records, n, "{pushed}");
    assert_eq!(pushed.created_topics, std::slice::from_ref(&topic));
    assert!(pushed.exactly_once, "{:?}", pushed.warnings);
    let source = contents(&src, &topic)?;
    if let Some(cluster) = cluster {
        assert_eq!(cluster.partition_count(&topic)?, 3);
        assert_eq!(
            records_only(&contents(cluster, &topic)?),
            records_only(&source)
        );
    }
    let dst = TempLog::new()?;
    let pulled = mirror::pull(&dst, &cfg)?;
    assert_eq!(pulled.records, n, "{pulled}");
    assert_eq!(dst.partition_count(&topic)?, 3);
    let copy = contents(&dst, &topic)?;
    for (p, (a, b)) in source.iter().zip(&copy).enumerate() {
        assert_eq!(a.len(), b.len(), "partition {p}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x.1, y.1, "partition {p}, source offset {}", x.0);
        }
    }
    assert_eq!(mirror::push(&src, &cfg)?.records, 0);
    assert_eq!(mirror::pull(&dst, &cfg)?.records, 0);
    // The pulled copy ends each partition with a transaction marker: a push of it reaches
    // its end, twice.
    let mut back = cfg.clone();
    back.alias = Some("back".into());
    assert_eq!(mirror::push(&dst, &back)?.records, n);
    assert_eq!(mirror::push(&dst, &back)?.records, 0);
    Ok(())
}

#[test]
fn push_then_pull_copies_every_record_equal_and_in_order() -> TestResult {
    let server = Server::start()?;
    round_trip(&server.bootstrap(), 12_000, Some(server.log()))
}

/// The round trip through a third-party broker: 1,000,000 records by default.
#[test]
#[ignore = "needs a tansu broker: TOPICLOG_TANSU_BOOTSTRAP (started by .ci/run)"]
fn tansu_round_trip_keeps_every_record() -> TestResult {
    let bootstrap = std::env::var("TOPICLOG_TANSU_BOOTSTRAP")
        .map_err(|_| "set TOPICLOG_TANSU_BOOTSTRAP to a tansu broker's HOST:PORT")?;
    let n = env_rounds("TOPICLOG_MIRROR_RECORDS", 1_000_000);
    let started = std::time::Instant::now();
    round_trip(&bootstrap, n, None)?;
    println!("tansu round trip of {n} records: {:.1?}", started.elapsed());
    Ok(())
}

#[test]
fn offsets_translate_never_ahead_across_compaction_gaps_and_an_aborted_transaction() -> TestResult {
    let server = Server::start()?;
    let src = TempLog::new()?;
    let mut compacted = TopicConfig::default();
    compacted.set("cleanup.policy", "compact")?;
    compacted.set("segment.bytes", "4096")?;
    src.create_topic_with("accounts", 1, compacted)?;
    let put = |from: u64, to: u64| -> TestResult {
        let producer = src.producer(ProducerConfig::default())?;
        for i in from..to {
            producer.send(ProducerRecord {
                topic: "accounts".into(),
                partition: Some(0),
                record: Record::new(format!("balance-{i}")).key(if i % 3 == 0 {
                    format!("acct-{i}")
                } else {
                    format!("acct-{}", i % 20)
                }),
            })?;
        }
        Ok(())
    };
    put(0, 300)?;
    let txn = src.producer(ProducerConfig::transactional("writer"))?;
    txn.init_transactions()?;
    txn.begin_transaction()?;
    for i in 0..10 {
        txn.send(ProducerRecord {
            topic: "accounts".into(),
            partition: Some(0),
            record: Record::new(format!("aborted-{i}")).key("acct-aborted"),
        })?;
    }
    txn.abort_transaction()?;
    put(300, 400)?;
    let report = src.compact("accounts")?;
    assert!(
        report.records_removed > 0,
        "compaction made gaps: {report:?}"
    );
    let source = contents(&src, "accounts")?.remove(0);
    // The group's committed offset falls in a gap compaction made: it read up to a record
    // whose successors were compacted away.
    let gap = source
        .windows(2)
        .find(|w| w[1].0 > w[0].0 + 1 && w[0].0 > 100)
        .ok_or("compaction left a gap")?;
    let committed = gap[0].0 + 1;
    assert!(
        source.iter().all(|(o, _)| *o != committed),
        "a gap at {committed}"
    );
    let tp = TopicPartition::new("accounts", 0);
    src.commit_group_offsets(
        "billing",
        "",
        -1,
        &[(tp, OffsetAndMetadata::new(committed))],
    )?;

    let mut cfg = config(&server.bootstrap(), "accounts");
    cfg.alias = Some("primary".into());
    cfg.transaction_records = 7;
    cfg.sync_group_offsets = true;
    let pushed = mirror::push(&src, &cfg)?;
    assert!(pushed.exactly_once);
    assert_eq!(pushed.records as usize, source.len());
    assert_eq!(pushed.checkpoints, 1, "{pushed}");
    assert_eq!(
        pushed.group_offsets_synced, 1,
        "{pushed} {:?}",
        pushed.warnings
    );
    let cluster = server.log();
    let target = contents(cluster, "primary.accounts")?.remove(0);
    assert_eq!(
        target.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        source.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        "the aborted records stay behind, the rest is copied in order"
    );
    assert_eq!(
        cluster
            .describe_topic("primary.accounts")?
            .config
            .cleanup_policy,
        topiclog::CleanupPolicy::Compact
    );
    // The offset syncs decode with MirrorMaker 2's schema and name source offsets.
    let syncs: Vec<OffsetSync> = contents(cluster, "mm2-offset-syncs.primary.internal")?[0]
        .iter()
        .map(|(_, (k, v, _, _))| {
            OffsetSync::decode(
                k.as_deref().unwrap_or_default(),
                v.as_deref().unwrap_or_default(),
            )
        })
        .collect::<Result<_, _>>()?;
    assert!(syncs.len() >= source.len() / 7, "{} syncs", syncs.len());
    for s in &syncs {
        let i = source
            .iter()
            .position(|(o, _)| *o == s.upstream)
            .ok_or("a sync names a source record")?;
        assert_eq!(target[i].0, s.downstream, "{s:?}");
    }
    // The checkpoint: never ahead of the first record the group has not read.
    let checkpoints = checkpoints_in(cluster, "primary.checkpoints.internal")?;
    let [cp] = &checkpoints[..] else {
        return Err(format!("one checkpoint expected: {checkpoints:?}").into());
    };
    assert_eq!(
        (cp.group.as_str(), cp.topic.as_str(), cp.partition),
        ("billing", "primary.accounts", 0)
    );
    assert_eq!(cp.upstream, committed);
    let first_unread = source
        .iter()
        .position(|(o, _)| *o >= committed)
        .ok_or("unread records")?;
    assert!(
        cp.downstream <= target[first_unread].0,
        "{cp:?} ahead of {}",
        target[first_unread].0
    );
    assert!(
        cp.downstream > target[first_unread - 1].0 - 7,
        "{cp:?} within a transaction of it"
    );
    assert_eq!(
        cluster.committed_offsets("billing", None)[0]
            .1
            .as_ref()
            .map(|o| o.offset),
        Some(cp.downstream)
    );

    // Fail over: a real client in group `billing` on the cluster starts where the group was
    // synced (not at the end, where `latest` would put a group without offsets) and reads
    // every record the group had not read on the source.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", server.bootstrap())
        .set("group.id", "billing")
        .set("auto.offset.reset", "latest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    consumer.subscribe(&["primary.accounts"])?;
    let want: Vec<Rec> = source[first_unread..]
        .iter()
        .map(|(_, r)| r.clone())
        .collect();
    let mut got: Vec<(i64, Vec<u8>)> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    let last = target.last().ok_or("records")?.0;
    while got.last().is_none_or(|g| g.0 < last) && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m?;
            got.push((m.offset(), m.payload().unwrap_or_default().to_vec()));
        }
    }
    // It starts at the synced offset (the first record at or after it: a transaction's
    // marker may sit there).
    let first = got
        .first()
        .map(|g| g.0)
        .ok_or("the failed-over consumer read nothing")?;
    assert!(
        first >= cp.downstream && first <= target[first_unread].0,
        "{first}"
    );
    for w in &want {
        assert!(
            got.iter().any(|(_, v)| Some(v) == w.1.as_ref()),
            "the failed-over consumer missed {:?}",
            w.1.as_ref()
                .map(|v| String::from_utf8_lossy(v).into_owned())
        );
    }
    Ok(())
}

#[test]
fn pull_leaves_out_a_transaction_the_cluster_aborted() -> TestResult {
    let server = Server::start()?;
    server.log().create_topic("payments", 2)?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", server.bootstrap())
        .set("transactional.id", "payments-writer")
        .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    for (txn, count, commit) in [("a", 10, true), ("b", 5, false), ("c", 7, true)] {
        producer.begin_transaction()?;
        for i in 0..count {
            let value = format!("{txn}-{i}");
            let key = format!("k{i}");
            producer
                .send(
                    BaseRecord::to("payments")
                        .key(&key)
                        .payload(&value)
                        .partition(i % 2),
                )
                .map_err(|(e, _)| e)?;
        }
        producer.flush(Duration::from_secs(30))?;
        if commit {
            producer.commit_transaction(Duration::from_secs(30))?;
        } else {
            producer.abort_transaction(Duration::from_secs(30))?;
        }
    }
    let dst = TempLog::new()?;
    let mut cfg = config(&server.bootstrap(), "payments");
    cfg.alias = Some("central".into());
    let pulled = mirror::pull(&dst, &cfg)?;
    assert_eq!(pulled.records, 17, "{pulled}");
    let copy = contents(&dst, "central.payments")?;
    let values: Vec<String> = copy
        .iter()
        .flatten()
        .map(|(_, r)| String::from_utf8_lossy(r.1.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert!(values.iter().all(|v| !v.starts_with("b-")), "{values:?}");
    assert_eq!(values.len(), 17);
    // Per partition in the cluster's order.
    let cluster = contents(server.log(), "payments")?;
    assert_eq!(records_only(&copy), records_only(&cluster));
    assert_eq!(
        mirror::pull(&dst, &cfg)?.records,
        0,
        "resumes from its offset syncs"
    );

    // A group of the cluster read partition 0 up to its 4th record: its offset is
    // checkpointed in the local checkpoints topic and, with group offset sync, committed to
    // the local group, translated.
    let read_to = cluster[0][3].0 + 1;
    server.log().commit_group_offsets(
        "audit",
        "",
        -1,
        &[(
            TopicPartition::new("payments", 0),
            OffsetAndMetadata::new(read_to),
        )],
    )?;
    cfg.sync_group_offsets = true;
    let again = mirror::pull(&dst, &cfg)?;
    assert_eq!(
        (again.checkpoints, again.group_offsets_synced),
        (1, 1),
        "{again} {:?}",
        again.warnings
    );
    let checkpoints = checkpoints_in(&dst, "central.checkpoints.internal")?;
    let [cp] = &checkpoints[..] else {
        return Err(format!("one checkpoint expected: {checkpoints:?}").into());
    };
    assert_eq!(
        (cp.group.as_str(), cp.topic.as_str(), cp.upstream),
        ("audit", "central.payments", read_to)
    );
    // Never ahead: at or before the copy of the first record the group had not read.
    assert!(cp.downstream <= copy[0][4].0, "{cp:?}");
    assert_eq!(
        dst.committed_offsets("audit", None)[0]
            .1
            .as_ref()
            .map(|o| o.offset),
        Some(cp.downstream)
    );
    Ok(())
}

#[test]
fn pull_until_end_stops_at_the_end_it_found_while_the_topic_grows() -> TestResult {
    let server = Server::start()?;
    let cluster = server.log();
    cluster.create_topic("ticks", 2)?;
    fill(cluster, "ticks", 2, 0, 3_000)?;
    let writing = std::sync::atomic::AtomicBool::new(true);
    let dst = TempLog::new()?;
    let pulled = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> TestResult {
            let mut i = 3_000;
            while writing.load(Ordering::Relaxed) {
                fill(cluster, "ticks", 2, i, 100)?;
                i += 100;
            }
            Ok(())
        });
        let pulled = mirror::pull(&dst, &config(&server.bootstrap(), "ticks"));
        writing.store(false, Ordering::Relaxed);
        writer.join().map_err(|_| "writer panicked")??;
        TestResult::Ok(pulled?)
    })?;
    assert!(pulled.records >= 3_000, "{pulled}");
    Ok(())
}

#[test]
fn a_second_push_with_the_same_transactional_id_fences_the_first() -> TestResult {
    let server = Server::start()?;
    let src = TempLog::new()?;
    src.create_topic("jobs", 1)?;
    fill(&src, "jobs", 1, 0, 100)?;
    let mut cfg = config(&server.bootstrap(), "jobs");
    cfg.transactional_id = Some("one-pusher".into());
    let mut following = cfg.clone();
    following.until_end = false;
    let first = std::thread::scope(|scope| {
        let first = scope.spawn(|| mirror::push(&src, &following));
        common::wait_for("the first push to copy", || {
            contents(server.log(), "jobs").is_ok_and(|c| c[0].len() == 100)
        })?;
        // The second takes over (fencing the first), then the source grows: the first's
        // next write is refused and it stops, saying why.
        assert_eq!(mirror::push(&src, &cfg)?.records, 0);
        fill(&src, "jobs", 1, 100, 100)?;
        TestResult::Ok(first.join().map_err(|_| "the first push panicked")?)
    })?;
    let err = first.err().ok_or("the fenced push stopped with an error")?;
    assert!(
        matches!(err, MirrorError::Fenced(ref id) if id == "one-pusher"),
        "{err}"
    );
    assert_eq!(mirror::push(&src, &cfg)?.records, 100);
    assert_eq!(
        records_only(&contents(server.log(), "jobs")?),
        records_only(&contents(&src, "jobs")?)
    );
    Ok(())
}

#[test]
fn push_without_transactions_is_at_least_once_and_says_so() -> TestResult {
    let server = Server::start()?;
    let src = TempLog::new()?;
    src.create_topic("logs", 2)?;
    fill(&src, "logs", 2, 0, 2_000)?;
    server.log().create_topic("logs", 3)?;
    let mut cfg = config(&server.bootstrap(), "logs");
    cfg.exactly_once = ExactlyOnce::Disabled;
    let progress = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&progress);
    cfg.progress_interval = Duration::ZERO;
    cfg.progress = Some(Arc::new(move |p: &mirror::Progress| {
        seen.fetch_add(1, Ordering::Relaxed);
        assert!(p.lag.len() == 2);
    }));
    let pushed = mirror::push(&src, &cfg)?;
    assert!(!pushed.exactly_once);
    assert_eq!(pushed.records, 2_000);
    assert!(progress.load(Ordering::Relaxed) > 0);
    assert!(
        pushed.warnings.iter().any(|w| w.contains("3 partitions")),
        "{:?}",
        pushed.warnings
    );
    // Different partition counts: placed by murmur2 of the key, as Kafka's producer does.
    let target = contents(server.log(), "logs")?;
    for (p, records) in target.iter().enumerate() {
        for (_, r) in records {
            if let Some(k) = &r.0 {
                assert_eq!(topiclog::partition_for_key(k, 3), p as i32);
            }
        }
    }
    assert_eq!(target.iter().map(Vec::len).sum::<usize>(), 2_000);
    Ok(())
}

#[test]
fn clear_errors_for_an_unreachable_cluster_a_missing_topic_and_security_this_build_lacks()
-> TestResult {
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let src = TempLog::new()?;
    src.create_topic("t", 1)?;
    let mut cfg = config(&closed.to_string(), "t");
    cfg.timeout = Duration::from_secs(2);
    let err = mirror::push(&src, &cfg)
        .err()
        .ok_or("a push to nothing fails")?;
    assert!(matches!(err, MirrorError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&closed.to_string()), "{err}");

    let server = Server::start()?;
    let cfg = config(&server.bootstrap(), "no-such-topic");
    let err = mirror::pull(&src, &cfg).err().ok_or("nothing to pull")?;
    assert!(matches!(err, MirrorError::TopicNotFound(_)), "{err}");
    let err = mirror::push(&src, &cfg).err().ok_or("nothing to push")?;
    assert!(matches!(err, MirrorError::TopicNotFound(_)), "{err}");

    let mut cfg = config(&server.bootstrap(), "t");
    cfg.client_properties
        .push(("security.protocol".into(), "SASL_SSL".into()));
    let err = mirror::push(&src, &cfg)
        .err()
        .ok_or("no TLS in this build")?;
    assert!(matches!(err, MirrorError::Unsupported(_)), "{err}");

    let mut cfg = config(&server.bootstrap(), "(");
    cfg.alias = None;
    assert!(matches!(
        mirror::push(&src, &cfg),
        Err(MirrorError::InvalidConfig(_))
    ));

    // The command line says the same, and fails.
    let empty = tempfile::tempdir()?;
    let out = common::run_cli(
        empty.path(),
        &[
            "mirror",
            "pull",
            "--bootstrap-server",
            &closed.to_string(),
            "--topics",
            "t",
            "--timeout",
            "2",
        ],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Kafka cluster"),
        "{stderr}"
    );
    Ok(())
}

/// Records added to the source before each kill round: more than a mirror copies in the
/// shortest time before its kill, so that kills land while it works.
const PER_ROUND: u64 = 30_000;

/// Every record of `from`'s topic is in `to`'s once, in the same order per partition.
fn assert_copied(from: &Log, topic: &str, to: &Log, copy: &str) -> TestResult {
    let source = records_only(&contents(from, topic)?);
    let target = records_only(&contents(to, copy)?);
    assert_eq!(source.len(), target.len(), "partition counts");
    for (p, (a, b)) in source.iter().zip(&target).enumerate() {
        assert_eq!(
            a.len(),
            b.len(),
            "partition {p}: as many records, none twice"
        );
        assert!(a == b, "partition {p}: the same records in the same order");
    }
    Ok(())
}

/// Runs `topiclog mirror <args>` until it is killed at a random point.
fn run_then_kill(dir: &Path, args: &[&str], after: Duration) -> TestResult {
    let mut child = Command::new(env!("CARGO_BIN_EXE_topiclog"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(after);
    child.kill()?;
    child.wait()?;
    Ok(())
}

fn run_to_end(dir: &Path, args: &[&str]) -> TestResult {
    let out = common::run_cli(dir, args, b"");
    if !out.status.success() {
        return Err(format!(
            "mirror {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

#[test]
fn push_killed_with_sigkill_resumes_with_no_loss_and_no_duplicates() -> TestResult {
    let rounds = env_rounds("TOPICLOG_MIRROR_KILL_ROUNDS", 3);
    let server = Server::start()?;
    let bootstrap = server.bootstrap();
    let src = TempLog::new()?;
    src.create_topic("clicks", 3)?;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let args = [
        "mirror",
        "push",
        "--bootstrap-server",
        &bootstrap,
        "--alias",
        "edge",
        "--transaction-records",
        "700",
        "--progress-interval",
        "0",
    ];
    let mut interrupted = 0;
    for round in 0..rounds {
        fill(&src, "clicks", 3, round * PER_ROUND, PER_ROUND)?;
        let after = Duration::from_millis(20 + xorshift(&mut seed) % 300);
        run_then_kill(src.path(), &args, after)?;
        let copied: usize =
            contents(server.log(), "edge.clicks").map_or(0, |c| c.iter().map(Vec::len).sum());
        if copied < ((round + 1) * PER_ROUND) as usize {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed before the push had caught up"
    );
    let mut last = args.to_vec();
    last.push("--until-end");
    run_to_end(src.path(), &last)?;
    assert_copied(&src, "clicks", server.log(), "edge.clicks")?;
    Ok(())
}

#[test]
fn pull_killed_with_sigkill_resumes_with_no_loss_and_no_duplicates() -> TestResult {
    let rounds = env_rounds("TOPICLOG_MIRROR_KILL_ROUNDS", 3);
    let server = Server::start()?;
    let bootstrap = server.bootstrap();
    server.log().create_topic("orders", 3)?;
    let dst = tempfile::tempdir()?;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let args = [
        "mirror",
        "pull",
        "--bootstrap-server",
        &bootstrap,
        "--topics",
        "orders",
        "--transaction-records",
        "700",
        "--progress-interval",
        "0",
    ];
    let mut interrupted = 0;
    for round in 0..rounds {
        fill(server.log(), "orders", 3, round * PER_ROUND, PER_ROUND)?;
        let after = Duration::from_millis(20 + xorshift(&mut seed) % 300);
        run_then_kill(dst.path(), &args, after)?;
        let copied: usize = LogOptions::new()
            .read_only(true)
            .open(dst.path())
            .ok()
            .and_then(|l| contents(&l, "orders").ok())
            .map_or(0, |c| c.iter().map(Vec::len).sum());
        if copied < ((round + 1) * PER_ROUND) as usize {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed before the pull had caught up"
    );
    let mut last = args.to_vec();
    last.push("--until-end");
    run_to_end(dst.path(), &last)?;
    let local = Log::open(dst.path())?;
    assert_copied(server.log(), "orders", &local, "orders")?;
    Ok(())
}
