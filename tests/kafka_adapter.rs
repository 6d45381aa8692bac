//! The Kafka-protocol adapter (`examples/kafka_server.rs`) against a real Kafka client
//! (`kcat`, librdkafka) and against hand-made bad input.
//!
//! The kcat tests need `kcat` installed, so they are `#[ignore]`d: `cargo test` on a fresh
//! clone passes with nothing installed, and `.ci/run` installs kcat and runs them with
//! `cargo test --all-features --test kafka_adapter -- --ignored kcat_`.
#![allow(clippy::indexing_slicing, clippy::too_many_lines)]

#[path = "../examples/kafka_server/alloc.rs"]
mod alloc;
#[path = "../examples/kafka_server/broker.rs"]
mod broker;
mod common;
#[path = "../examples/wordcount/topology.rs"]
mod wordcount;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use broker::{Broker, BrokerConfig, Reply};
use bytes::{Bytes, BytesMut};
use common::TestResult;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, RequestHeader, ResponseHeader, TopicName, fetch_request, list_offsets_request,
    metadata_request, produce_request,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use topiclog::{BatchBuilder, Compression, Log, LogOptions, Record, TopicConfig, TopicPartition};

#[global_allocator]
static ALLOC: alloc::SparseHuge = alloc::SparseHuge;

// ---------------------------------------------------------------------------------------
// Harness

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
                max_frame_bytes: 1 << 20,
                max_fetch_wait: Duration::from_mins(5),
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

/// `kcat`; fails the test with a note on how to install it when it is absent.
fn require_kcat() {
    let found = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "kcat is not installed (apt-get install kcat); these tests run from .ci/run"
    );
}

fn run_kcat(args: &[&str], stdin: &str) -> TestResult<(String, String)> {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("kcat's stdin is not piped")?
        .write_all(stdin.as_bytes())?;
    let out = wait_bounded(child, Duration::from_mins(1))?;
    assert!(
        out.status.success(),
        "kcat {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        String::from_utf8(out.stdout)?,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Waits for a child, killing it if it outlives `limit` (a hung client fails the test
/// instead of hanging it).
fn wait_bounded(mut child: Child, limit: Duration) -> std::io::Result<std::process::Output> {
    let deadline = Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output()
}

fn all_records(log: &Log, topic: &str, partition: i32) -> TestResult<Vec<topiclog::StoredRecord>> {
    let p = log.partition(topic, partition)?;
    let mut out = Vec::new();
    let mut offset = p.log_start_offset();
    while offset < p.high_watermark() {
        let recs = p.records(offset, 1 << 20)?;
        offset = recs
            .last()
            .ok_or("no records below the high watermark")?
            .offset
            + 1;
        out.extend(recs);
    }
    Ok(out)
}

fn text(b: Option<&Bytes>) -> TestResult<String> {
    Ok(String::from_utf8(b.ok_or("null")?.to_vec())?)
}

// Encoding requests in-process, as a client would.
fn frame<R: Encodable + HeaderVersion>(
    key: ApiKey,
    version: i16,
    correlation: i32,
    req: &R,
) -> TestResult<Bytes> {
    let mut buf = BytesMut::new();
    let mut h = RequestHeader::default();
    h.request_api_key = key as i16;
    h.request_api_version = version;
    h.correlation_id = correlation;
    h.client_id = Some(StrBytes::from_static_str("test"));
    h.encode(&mut buf, R::header_version(version))?;
    req.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

fn call<Req, Resp>(broker: &Broker, key: ApiKey, version: i16, req: &Req) -> TestResult<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    match broker.handle(frame(key, version, 7, req)?) {
        Reply::Send(body) => {
            let mut b = Bytes::from(body);
            let h = ResponseHeader::decode(&mut b, Resp::header_version(version))?;
            assert_eq!(h.correlation_id, 7);
            Ok(Resp::decode(&mut b, version)?)
        }
        other => panic!("expected a response, got {other:?}"),
    }
}

fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    let mut pd = produce_request::PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = produce_request::TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_owned()));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 1000;
    req.topic_data = vec![td];
    req
}

fn produce_code(broker: &Broker, topic: &str, batch: &[u8]) -> TestResult<(i16, i64)> {
    let resp: ProduceResponse = call(
        broker,
        ApiKey::Produce,
        9,
        &produce_request(topic, 0, -1, Bytes::copy_from_slice(batch)),
    )?;
    let p = &resp.responses[0].partition_responses[0];
    Ok((p.error_code, p.base_offset))
}

fn batch(compression: Compression, records: &[(Option<&str>, &str)]) -> TestResult<Vec<u8>> {
    let mut b = BatchBuilder::new(compression);
    for (k, v) in records {
        b.push(
            k.map(str::as_bytes),
            Some(v.as_bytes()),
            &[],
            1_700_000_000_000,
        )?;
    }
    Ok(b.finish()?.to_vec())
}

/// Rewrites a batch's CRC after editing its header.
fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// Real client: kcat

/// WordCount (`topiclog::streams`) on the log the adapter serves, as
/// `examples/wordcount.rs --listen` runs it: lines fed with `kcat -P`, counts read with
/// `kcat -C -s value=Q` (Kafka's `LongSerializer` bytes as a signed 64-bit number).
#[test]
#[ignore = "needs kcat: .ci/run runs it with --ignored"]
fn kcat_feeds_wordcount_and_reads_its_counts() -> TestResult {
    use topiclog::streams::{Streams, StreamsConfig};
    require_kcat();
    let s = Server::start()?;
    s.log().create_topic("quickstart-events", 1)?;
    s.log().create_topic("output-topic", 1)?;
    let config = StreamsConfig::new("wordcount").commit_interval(Duration::from_millis(50));
    let topology = wordcount::wordcount("quickstart-events", "output-topic")?;
    let mut streams = Streams::new(s.log(), topology, config);
    streams.start()?;
    run_kcat(
        &["-b", &s.bootstrap(), "-P", "-t", "quickstart-events"],
        "All streams lead to Kafka\nkafka streams\n",
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let counts = loop {
        let (out, _) = run_kcat(
            &[
                "-b",
                &s.bootstrap(),
                "-C",
                "-t",
                "output-topic",
                "-s",
                "value=Q",
                "-f",
                "%k %s\n",
                "-e",
            ],
            "",
        )?;
        let mut counts = std::collections::BTreeMap::new();
        for line in out.lines() {
            if let Some((k, v)) = line.split_once(' ') {
                counts.insert(k.to_string(), v.to_string());
            }
        }
        if counts.get("kafka").map(String::as_str) == Some("2") || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    streams.close()?;
    let want: std::collections::BTreeMap<String, String> = [
        ("all", "1"),
        ("kafka", "2"),
        ("lead", "1"),
        ("streams", "2"),
        ("to", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(counts, want);
    Ok(())
}

#[test]
#[ignore = "needs kcat: .ci/run runs it with --ignored"]
fn kcat_lists_metadata() -> TestResult {
    require_kcat();
    let s = Server::start()?;
    s.log().create_topic("orders", 3)?;
    let (out, _) = run_kcat(&["-b", &s.bootstrap(), "-L", "-J"], "")?;
    let meta: serde_json::Value = serde_json::from_str(&out)?;
    let brokers = meta["brokers"].as_array().ok_or("no brokers array")?;
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0]["name"], s.bootstrap());
    let orders = meta["topics"]
        .as_array()
        .ok_or("no topics array")?
        .iter()
        .find(|t| t["topic"] == "orders")
        .expect("topic listed");
    assert_eq!(
        orders["partitions"]
            .as_array()
            .ok_or("no partitions array")?
            .len(),
        3
    );
    Ok(())
}

#[test]
#[ignore = "needs kcat: .ci/run runs it with --ignored"]
fn kcat_produces_keyed_lines_with_each_codec() -> TestResult {
    require_kcat();
    let s = Server::start()?;
    s.log().create_topic("lines", 4)?;
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for (name, _) in codecs {
        // Compressible values: librdkafka sends a batch uncompressed when the codec would
        // not make it smaller.
        let value = |i: i32| format!("{name} value {i} {}", "abc".repeat(100));
        let mut lines = String::new();
        for i in 0..20 {
            writeln!(lines, "{name}-key-{i}:{}", value(i))?;
        }
        for i in 0..20 {
            expected.insert(format!("{name}-key-{i}"), value(i));
        }
        // murmur2_random is Kafka's default partitioner (the Java client's).
        run_kcat(
            &[
                "-b",
                &s.bootstrap(),
                "-P",
                "-t",
                "lines",
                "-K:",
                "-z",
                name,
                "-X",
                "partitioner=murmur2_random",
            ],
            &lines,
        )?;
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut codecs_stored = BTreeSet::new();
    for p in 0..4 {
        let handle = s.log().partition("lines", p)?;
        let read = handle.read(0, 1 << 20)?;
        for b in &read.batches {
            b.verify_crc()?;
            codecs_stored.insert(format!("{:?}", b.header().compression()?));
        }
        for r in all_records(s.log(), "lines", p)? {
            let key = text(r.key.as_ref())?;
            // The same key lands in the same partition as with Kafka's default partitioner.
            assert_eq!(
                topiclog::partition_for_key(key.as_bytes(), 4),
                p,
                "key {key}"
            );
            seen.insert(key, text(r.value.as_ref())?);
        }
    }
    assert_eq!(seen, expected);
    // Stored as they came: every codec kcat used is on disk.
    assert_eq!(
        codecs_stored,
        codecs.iter().map(|(_, c)| format!("{c:?}")).collect()
    );
    Ok(())
}

#[test]
#[ignore = "needs kcat: .ci/run runs it with --ignored"]
fn kcat_consumes_from_beginning_and_from_an_offset() -> TestResult {
    require_kcat();
    let s = Server::start()?;
    s.log().create_topic("events", 1)?;
    let p = s.log().partition("events", 0)?;
    for i in 0..10 {
        p.append(&[Record::new(format!("event {i}")).key(format!("k{i}"))])?;
    }
    let args = |offset: &str| {
        vec![
            "-b".to_owned(),
            s.bootstrap(),
            "-C".into(),
            "-t".into(),
            "events".into(),
            "-p".into(),
            "0".into(),
            "-o".into(),
            offset.into(),
            "-e".into(),
            "-f".into(),
            "%o %k %s\\n".into(),
        ]
    };
    let all = args("beginning");
    let (out, _) = run_kcat(&all.iter().map(String::as_str).collect::<Vec<_>>(), "")?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("{i} k{i} event {i}"));
    }
    let from5 = args("5");
    let (out, _) = run_kcat(&from5.iter().map(String::as_str).collect::<Vec<_>>(), "")?;
    let offsets: Vec<&str> = out.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(offsets, ["5", "6", "7", "8", "9"]);
    Ok(())
}

#[test]
#[ignore = "needs kcat: .ci/run runs it with --ignored"]
fn kcat_and_in_process_share_a_topic() -> TestResult {
    require_kcat();
    let s = Server::start()?;
    s.log().create_topic("shared", 1)?;
    run_kcat(
        &["-b", &s.bootstrap(), "-P", "-t", "shared", "-p", "0", "-K:"],
        "from:kcat\n",
    )?;
    s.log()
        .partition("shared", 0)?
        .append(&[Record::new("in-process").key("from")])?;
    let (out, _) = run_kcat(
        &[
            "-b",
            &s.bootstrap(),
            "-C",
            "-t",
            "shared",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%s\\n",
        ],
        "",
    )?;
    assert_eq!(out, "kcat\nin-process\n");
    let stored = all_records(s.log(), "shared", 0)?;
    assert_eq!(text(stored[0].value.as_ref())?, "kcat");
    assert_eq!(text(stored[1].value.as_ref())?, "in-process");
    Ok(())
}

/// Assignments a kcat group member reported last, from its stderr.
fn last_assignment(stderr: &str) -> Option<BTreeSet<String>> {
    let line = stderr.lines().rev().find(|l| l.contains("assigned:"))?;
    let list = line.split("assigned:").nth(1)?;
    Some(
        list.split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
    )
}

#[test]
#[ignore = "needs kcat: .ci/run runs it with --ignored"]
fn kcat_group_of_two_splits_partitions_and_commits() -> TestResult {
    require_kcat();
    let s = Server::start()?;
    s.log().create_topic("work", 4)?;
    let fill = |from: i32| -> TestResult {
        for i in from..from + 40 {
            let p = s.log().partition("work", i % 4)?;
            p.append(&[Record::new(format!("job {i}"))])?;
        }
        Ok(())
    };
    fill(0)?;
    let dir = tempfile::tempdir()?;
    let spawn = |n: usize| -> TestResult<Child> {
        let out = std::fs::File::create(dir.path().join(format!("out{n}")))?;
        let err = std::fs::File::create(dir.path().join(format!("err{n}")))?;
        Ok(Command::new("kcat")
            .args([
                "-b",
                &s.bootstrap(),
                "-G",
                "workers",
                "-u",
                "-f",
                "%p %o %s\\n",
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=300",
                "-X",
                "auto.commit.interval.ms=200",
                "work",
            ])
            .stdout(out)
            .stderr(err)
            .spawn()?)
    };
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let mut first = spawn(1)?;
    let mut second = spawn(2)?;
    // Wait until the two members hold disjoint assignments that cover every partition.
    let deadline = Instant::now() + Duration::from_mins(1);
    let (a, b) = loop {
        if let (Some(a), Some(b)) = (
            last_assignment(&read("err1")),
            last_assignment(&read("err2")),
        ) {
            let union: BTreeSet<_> = a.union(&b).cloned().collect();
            if a.is_disjoint(&b) && union.len() == 4 && !a.is_empty() && !b.is_empty() {
                break (a, b);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no split assignment: {}\n{}",
            read("err1"),
            read("err2")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // New records go to the member that owns their partition; together they see all.
    fill(40)?;
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let mut seen = BTreeSet::new();
        for (n, owned) in [(1, &a), (2, &b)] {
            // Whole lines only: kcat may be writing the last one as it is read.
            let out = read(&format!("out{n}"));
            for line in out
                .split_inclusive('\n')
                .filter_map(|l| l.strip_suffix('\n'))
            {
                let mut parts = line.splitn(3, ' ');
                let p = parts.next().ok_or("no partition")?;
                let offset: i64 = parts.next().ok_or("no offset")?.parse()?;
                let value = parts.next().ok_or("no value")?.to_owned();
                if offset >= 10 {
                    assert!(
                        owned.contains(&format!("work [{p}]")),
                        "member {n} got partition {p}"
                    );
                }
                seen.insert(value);
            }
        }
        if seen.len() == 80 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of 80 records consumed",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A clean stop commits and leaves; every partition's commit reaches its end.
    for child in [&mut first, &mut second] {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
    }
    for child in [first, second] {
        let out = wait_bounded(child, Duration::from_secs(30))?;
        let _ = out;
    }
    let committed = s.log().committed_offsets(
        "workers",
        Some(
            &(0..4)
                .map(|p| TopicPartition::new("work", p))
                .collect::<Vec<_>>(),
        ),
    );
    for (tp, om) in committed {
        assert_eq!(om.map(|o| o.offset), Some(20), "{tp:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Produce validation, Fetch and ListOffsets through the handler

#[test]
fn produce_refuses_what_kafka_refuses_and_keeps_the_log_intact() -> TestResult {
    let s = Server::start()?;
    let log = s.log();
    log.create_topic("t", 1)?;
    log.create_topic_with(
        "compacted",
        1,
        TopicConfig::new().with("cleanup.policy", "compact")?,
    )?;
    let good = batch(Compression::None, &[(Some("k"), "v")])?;
    assert_eq!(produce_code(&s.broker, "t", &good)?, (0, 0));

    let mut bad_crc = good.clone();
    *bad_crc.last_mut().ok_or("an empty batch")? ^= 1;
    assert_eq!(
        produce_code(&s.broker, "t", &bad_crc)?.0,
        2,
        "CORRUPT_MESSAGE"
    );

    let mut magic1 = good.clone();
    magic1[16] = 1;
    assert_eq!(
        produce_code(&s.broker, "t", &magic1)?.0,
        87,
        "INVALID_RECORD"
    );

    let mut two = good.clone();
    two.extend_from_slice(&good);
    assert_eq!(produce_code(&s.broker, "t", &two)?.0, 87, "two batches");

    let mut control = good.clone();
    control[22] |= 0x20;
    fix_crc(&mut control);
    assert_eq!(
        produce_code(&s.broker, "t", &control)?.0,
        87,
        "control batch"
    );

    // A transactional batch of a producer with no transaction here: INVALID_TXN_STATE.
    let mut txn = good.clone();
    txn[22] |= 0x10;
    fix_crc(&mut txn);
    assert_eq!(
        produce_code(&s.broker, "t", &txn)?.0,
        48,
        "transactional batch outside a transaction"
    );

    let mut count = batch(Compression::None, &[(Some("a"), "1"), (Some("b"), "2")])?;
    count[57..61].copy_from_slice(&3i32.to_be_bytes());
    fix_crc(&mut count);
    assert_eq!(produce_code(&s.broker, "t", &count)?.0, 87, "record count");

    let mut seq = good.clone();
    seq[43..51].copy_from_slice(&7i64.to_be_bytes()); // a producer id without a sequence
    fix_crc(&mut seq);
    assert_eq!(produce_code(&s.broker, "t", &seq)?.0, 87, "sequence");

    let null_key = batch(Compression::None, &[(None, "v")])?;
    assert_eq!(
        produce_code(&s.broker, "compacted", &null_key)?.0,
        87,
        "null key, compacted"
    );
    assert_eq!(
        produce_code(&s.broker, "missing", &good)?.0,
        3,
        "unknown topic"
    );

    // Nothing refused reached the log.
    let stored = all_records(log, "t", 0)?;
    assert_eq!(stored.len(), 1);
    assert_eq!(produce_code(&s.broker, "t", &good)?, (0, 1));

    // acks = 0: appended, no response.
    let req = produce_request("t", 0, 0, Bytes::from(good.clone()));
    assert!(matches!(
        s.broker.handle(frame(ApiKey::Produce, 9, 1, &req)?),
        Reply::Nothing
    ));
    assert_eq!(log.partition("t", 0)?.log_end_offset(), 3);
    Ok(())
}

#[test]
fn a_default_producer_batch_with_sequence_0_and_no_producer_id_is_stored() -> TestResult {
    // kafkajs, sarama and aiokafka's default (non-idempotent) producers send producerId -1
    // with baseSequence 0; Kafka's broker stores such a batch as sent.
    let s = Server::start()?;
    let log = s.log();
    log.create_topic("t", 1)?;
    for (i, value) in ["first", "second"].into_iter().enumerate() {
        let mut b = batch(Compression::None, &[(Some("k"), value)])?;
        b[53..57].copy_from_slice(&0i32.to_be_bytes());
        fix_crc(&mut b);
        assert_eq!(produce_code(&s.broker, "t", &b)?, (0, i as i64), "{value}");
    }
    let p = log.partition("t", 0)?;
    let read = p.read(0, 1 << 20)?;
    let headers: Vec<(i64, i16, i32)> = read
        .batches
        .iter()
        .map(|b| {
            (
                b.header().producer_id,
                b.header().producer_epoch,
                b.header().base_sequence,
            )
        })
        .collect();
    assert_eq!(headers, [(-1, -1, 0), (-1, -1, 0)], "stored as sent");
    let values: Vec<_> = all_records(log, "t", 0)?
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(values.len(), 2);
    Ok(())
}

#[test]
fn produce_to_an_internal_topic_is_refused_as_kafka_refuses_it() -> TestResult {
    let s = Server::start()?;
    let log = s.log();
    let end = log.partition("__consumer_offsets", 0)?.log_end_offset();
    let good = batch(Compression::None, &[(Some("k"), "garbage")])?;
    // Kafka answers a produce to an internal topic with INVALID_TOPIC_EXCEPTION.
    assert_eq!(produce_code(&s.broker, "__consumer_offsets", &good)?.0, 17);
    assert_eq!(
        log.partition("__consumer_offsets", 0)?.log_end_offset(),
        end
    );
    Ok(())
}

#[test]
fn produce_recompresses_to_the_topic_codec() -> TestResult {
    let s = Server::start()?;
    s.log()
        .create_topic_with("z", 1, TopicConfig::new().with("compression.type", "zstd")?)?;
    let plain = batch(Compression::None, &[(Some("a"), "one"), (Some("b"), "two")])?;
    assert_eq!(produce_code(&s.broker, "z", &plain)?, (0, 0));
    let read = s.log().partition("z", 0)?.read(0, 1 << 20)?;
    assert_eq!(read.batches.len(), 1);
    assert_eq!(read.batches[0].header().compression()?, Compression::Zstd);
    let recs = all_records(s.log(), "z", 0)?;
    assert_eq!(text(recs[1].value.as_ref())?, "two");
    assert_eq!(recs[1].offset, 1);
    Ok(())
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let mut fp = fetch_request::FetchPartition::default();
    fp.partition = 0;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    let mut ft = fetch_request::FetchTopic::default();
    ft.topic = TopicName(StrBytes::from_string(topic.to_owned()));
    ft.partitions = vec![fp];
    let mut req = FetchRequest::default();
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.topics = vec![ft];
    req
}

#[test]
fn fetch_long_poll_wakes_on_append_and_serves_stored_bytes() -> TestResult {
    let s = Server::start()?;
    s.log().create_topic("poll", 1)?;
    let broker = Arc::clone(&s.broker);
    // Waits up to 60 s; an append must end the wait.
    let waiter = std::thread::spawn(move || -> TestResult<FetchResponse> {
        call(
            &broker,
            ApiKey::Fetch,
            12,
            &fetch_request("poll", 0, 60_000),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    let p = s.log().partition("poll", 0)?;
    p.append(&[Record::new("hello").key("k")])?;
    let resp = waiter.join().expect("the fetch thread panicked")?;
    let pd = &resp.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    assert_eq!(pd.high_watermark, 1);
    let stored = p.read(0, 1 << 20)?;
    assert_eq!(
        pd.records.as_ref().ok_or("no records")?,
        stored.batches[0].as_bytes(),
        "bytes as stored"
    );

    let resp: FetchResponse = call(&s.broker, ApiKey::Fetch, 12, &fetch_request("poll", 5, 0))?;
    assert_eq!(
        resp.responses[0].partitions[0].error_code, 1,
        "OFFSET_OUT_OF_RANGE"
    );
    Ok(())
}

#[test]
fn list_offsets_earliest_latest_and_by_time() -> TestResult {
    let s = Server::start()?;
    s.log().create_topic("times", 1)?;
    let p = s.log().partition("times", 0)?;
    for i in 0..5 {
        p.append(&[Record::new("x").timestamp(1000 * (i + 1))])?;
    }
    let ask = |ts: i64| -> TestResult<(i16, i64, i64)> {
        let mut lp = list_offsets_request::ListOffsetsPartition::default();
        lp.timestamp = ts;
        let mut lt = list_offsets_request::ListOffsetsTopic::default();
        lt.name = TopicName(StrBytes::from_static_str("times"));
        lt.partitions = vec![lp];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = kafka_protocol::messages::BrokerId(-1);
        req.topics = vec![lt];
        let resp: ListOffsetsResponse = call(&s.broker, ApiKey::ListOffsets, 5, &req)?;
        let r = &resp.topics[0].partitions[0];
        Ok((r.error_code, r.offset, r.timestamp))
    };
    assert_eq!(ask(-2)?.1, 0);
    assert_eq!(ask(-1)?.1, 5);
    assert_eq!(ask(2500)?, (0, 2, 3000));
    assert_eq!(ask(9999)?, (0, -1, -1));
    Ok(())
}

#[test]
fn metadata_auto_creates_only_when_enabled() -> TestResult {
    let s = Server::start()?;
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_static_str("fresh")));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = true;
    let resp: MetadataResponse = call(&s.broker, ApiKey::Metadata, 9, &req)?;
    assert_eq!(resp.topics[0].error_code, 3, "off by default");
    assert!(s.log().partition_count("fresh").is_err());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Bad input

fn send_raw(addr: SocketAddr, bytes: &[u8]) -> TestResult<Vec<u8>> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let _ = c.write_all(bytes);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    Ok(out)
}

fn sized(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn api_versions_works(addr: SocketAddr) -> TestResult {
    let f = frame(ApiKey::ApiVersions, 3, 42, &ApiVersionsRequest::default())?;
    let reply = send_raw(addr, &sized(&f))?;
    assert!(reply.len() > 8, "no ApiVersions answer");
    let mut b = Bytes::from(reply[4..].to_vec());
    let h = ResponseHeader::decode(&mut b, 0)?;
    assert_eq!(h.correlation_id, 42);
    let r = ApiVersionsResponse::decode(&mut b, 3)?;
    assert_eq!(r.error_code, 0);
    assert!(
        r.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Fetch as i16 && k.max_version == 12)
    );
    Ok(())
}

#[test]
fn malformed_frames_get_closed_connections_and_the_server_keeps_serving() -> TestResult {
    let s = Server::start()?;
    s.log().create_topic("safe", 1)?;
    let good = batch(Compression::None, &[(Some("k"), "kept")])?;
    assert_eq!(produce_code(&s.broker, "safe", &good)?, (0, 0));

    let header = |key: i16, version: i16| {
        let mut v = Vec::new();
        v.extend_from_slice(&key.to_be_bytes());
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&1i32.to_be_bytes());
        v.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        v
    };
    let mut huge_array = header(ApiKey::Metadata as i16, 1);
    huge_array.extend_from_slice(&i32::MAX.to_be_bytes());
    let mut huge_compact = header(ApiKey::Metadata as i16, 9);
    huge_compact.push(0); // header tagged fields
    huge_compact.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized frame", (2_000_000u32).to_be_bytes().to_vec()),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        ("truncated frame", {
            let mut v = 100u32.to_be_bytes().to_vec();
            v.extend_from_slice(&[0; 10]);
            v
        }),
        ("short header", sized(&[0, 3])),
        ("unknown api key", sized(&header(999, 0))),
        (
            "unsupported version",
            sized(&header(ApiKey::Fetch as i16, 13)),
        ),
        (
            "unserved api",
            sized(&header(ApiKey::DescribeAcls as i16, 1)),
        ),
        (
            "garbage body",
            sized(&[header(ApiKey::Produce as i16, 9), vec![0xde; 40]].concat()),
        ),
        ("huge array count", sized(&huge_array)),
        ("huge compact array count", sized(&huge_compact)),
    ];
    for (what, bytes) in cases {
        let reply = send_raw(s.addr, &bytes)?;
        assert!(
            reply.is_empty(),
            "{what}: expected a closed connection, got {reply:?}"
        );
        api_versions_works(s.addr)?;
    }
    // A version the client is told to downgrade from (KIP-511).
    let f = frame(ApiKey::ApiVersions, 3, 9, &ApiVersionsRequest::default())?;
    let mut f = f.to_vec();
    f[2..4].copy_from_slice(&77i16.to_be_bytes());
    let reply = send_raw(s.addr, &sized(&f))?;
    let mut b = Bytes::from(reply[4..].to_vec());
    let _ = ResponseHeader::decode(&mut b, 0)?;
    assert_eq!(ApiVersionsResponse::decode(&mut b, 0)?.error_code, 35);

    // Random and mutated frames (seeded): none takes the server down or touches the data.
    let seeds: Vec<Bytes> = vec![
        frame(ApiKey::Metadata, 9, 1, &MetadataRequest::default())?,
        frame(
            ApiKey::Produce,
            9,
            1,
            &produce_request("safe", 0, 1, Bytes::from(good.clone())),
        )?,
        frame(ApiKey::Fetch, 12, 1, &fetch_request("safe", 0, 0))?,
        frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default())?,
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..400 {
        let mut f = seeds[i % seeds.len()].to_vec();
        for _ in 0..=(rnd() % 4) {
            let at = (rnd() as usize) % f.len();
            f[at] = rnd() as u8;
        }
        if rnd() % 5 == 0 {
            f.truncate((rnd() as usize) % f.len());
        }
        // The handler directly (fast), and every 20th through a socket.
        if i % 20 == 0 {
            let _ = send_raw(s.addr, &sized(&f))?;
        } else {
            let _ = s.broker.handle(Bytes::from(f));
        }
    }
    api_versions_works(s.addr)?;
    let stored = all_records(s.log(), "safe", 0)?;
    assert!(!stored.is_empty());
    assert_eq!(text(stored[0].value.as_ref())?, "kept");
    for r in &stored {
        assert_eq!(
            text(r.value.as_ref())?,
            "kept",
            "only valid batches were stored"
        );
    }
    Ok(())
}

/// Writes the seed corpus of the `kafka_frame` fuzz target: one valid request per served
/// API. Run with `cargo test --test kafka_adapter -- --ignored write_fuzz_seed_corpus`.
#[test]
#[ignore = "regenerates fuzz/corpus/kafka_frame"]
fn write_fuzz_seed_corpus() -> TestResult {
    use kafka_protocol::messages::{
        DeleteTopicsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
        InitProducerIdRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest,
        leave_group_request, offset_commit_request, offset_fetch_request,
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/kafka_frame");
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, f: Bytes| std::fs::write(dir.join(name), &f);
    let good = batch(Compression::None, &[(Some("k"), "v"), (Some("k2"), "v2")])?;
    let zstd = batch(Compression::Zstd, &[(Some("k"), "v")])?;
    let group = GroupId(StrBytes::from_static_str("g"));
    write(
        "api-versions-v3",
        frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default())?,
    )?;
    write(
        "api-versions-v0",
        frame(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default())?,
    )?;
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_static_str("fuzz")));
    let mut md = MetadataRequest::default();
    md.topics = Some(vec![t]);
    write("metadata-v1", frame(ApiKey::Metadata, 1, 1, &md)?)?;
    write("metadata-v12", frame(ApiKey::Metadata, 12, 1, &md)?)?;
    write(
        "metadata-all-v9",
        frame(ApiKey::Metadata, 9, 1, &MetadataRequest::default())?,
    )?;
    let produce = produce_request("fuzz", 0, 1, Bytes::from(good));
    write("produce-v3", frame(ApiKey::Produce, 3, 1, &produce)?)?;
    write("produce-v9", frame(ApiKey::Produce, 9, 1, &produce)?)?;
    write(
        "produce-zstd-v9",
        frame(
            ApiKey::Produce,
            9,
            1,
            &produce_request("fuzz", 1, -1, Bytes::from(zstd)),
        )?,
    )?;
    write(
        "fetch-v4",
        frame(ApiKey::Fetch, 4, 1, &fetch_request("fuzz", 0, 0))?,
    )?;
    write(
        "fetch-v12",
        frame(ApiKey::Fetch, 12, 1, &fetch_request("fuzz", 3, 0))?,
    )?;
    let mut lp = list_offsets_request::ListOffsetsPartition::default();
    lp.timestamp = -2;
    let mut lt = list_offsets_request::ListOffsetsTopic::default();
    lt.name = TopicName(StrBytes::from_static_str("fuzz"));
    lt.partitions = vec![lp];
    let mut lo = ListOffsetsRequest::default();
    lo.topics = vec![lt];
    write("list-offsets-v5", frame(ApiKey::ListOffsets, 5, 1, &lo)?)?;
    let mut fc = FindCoordinatorRequest::default();
    fc.key = StrBytes::from_static_str("g");
    write(
        "find-coordinator-v2",
        frame(ApiKey::FindCoordinator, 2, 1, &fc)?,
    )?;
    let mut fc4 = FindCoordinatorRequest::default();
    fc4.coordinator_keys = vec![StrBytes::from_static_str("g")];
    write(
        "find-coordinator-v4",
        frame(ApiKey::FindCoordinator, 4, 1, &fc4)?,
    )?;
    let mut hb = HeartbeatRequest::default();
    hb.group_id = group.clone();
    hb.member_id = StrBytes::from_static_str("m");
    write("heartbeat-v4", frame(ApiKey::Heartbeat, 4, 1, &hb)?)?;
    let mut lg = LeaveGroupRequest::default();
    lg.group_id = group.clone();
    let mut mi = leave_group_request::MemberIdentity::default();
    mi.member_id = StrBytes::from_static_str("m");
    lg.members = vec![mi];
    write("leave-group-v4", frame(ApiKey::LeaveGroup, 4, 1, &lg)?)?;
    let mut ocp = offset_commit_request::OffsetCommitRequestPartition::default();
    ocp.committed_offset = 3;
    let mut oct = offset_commit_request::OffsetCommitRequestTopic::default();
    oct.name = TopicName(StrBytes::from_static_str("fuzz"));
    oct.partitions = vec![ocp];
    let mut oc = OffsetCommitRequest::default();
    oc.group_id = group.clone();
    oc.generation_id_or_member_epoch = -1;
    oc.topics = vec![oct];
    write("offset-commit-v8", frame(ApiKey::OffsetCommit, 8, 1, &oc)?)?;
    let mut oft = offset_fetch_request::OffsetFetchRequestTopic::default();
    oft.name = TopicName(StrBytes::from_static_str("fuzz"));
    oft.partition_indexes = vec![0, 1];
    let mut of = OffsetFetchRequest::default();
    of.group_id = group.clone();
    of.topics = Some(vec![oft]);
    write("offset-fetch-v7", frame(ApiKey::OffsetFetch, 7, 1, &of)?)?;
    let mut ofg = offset_fetch_request::OffsetFetchRequestGroup::default();
    ofg.group_id = group;
    let mut of8 = OffsetFetchRequest::default();
    of8.groups = vec![ofg];
    write("offset-fetch-v8", frame(ApiKey::OffsetFetch, 8, 1, &of8)?)?;
    write(
        "init-producer-id-v4",
        frame(
            ApiKey::InitProducerId,
            4,
            1,
            &InitProducerIdRequest::default(),
        )?,
    )?;
    let mut dt = DeleteTopicsRequest::default();
    dt.topic_names = vec![TopicName(StrBytes::from_static_str("other"))];
    write("delete-topics-v5", frame(ApiKey::DeleteTopics, 5, 1, &dt)?)?;
    Ok(())
}

#[test]
#[ignore = "needs kcat: .ci/run runs it with --ignored"]
fn kcat_and_an_in_process_consumer_share_a_group() -> TestResult {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    require_kcat();
    let s = Server::start()?;
    s.log().create_topic("mixed", 4)?;
    let stop = Arc::new(AtomicBool::new(false));
    let owned: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let member = {
        let broker = Arc::clone(&s.broker);
        let (stop, owned) = (Arc::clone(&stop), Arc::clone(&owned));
        std::thread::spawn(move || -> TestResult {
            let mut c = broker
                .log()
                .consumer(topiclog::ConsumerConfig::group("mixed"))?;
            c.subscribe(&["mixed"])?;
            while !stop.load(Ordering::Relaxed) {
                c.poll(Duration::from_millis(50))?;
                *owned.lock().expect("the test thread panicked") = c
                    .assignment()
                    .iter()
                    .map(|tp| format!("{} [{}]", tp.topic, tp.partition))
                    .collect();
            }
            c.close()?;
            Ok(())
        })
    };
    let dir = tempfile::tempdir()?;
    let err_path = dir.path().join("err");
    let mut kcat = Command::new("kcat")
        .args([
            "-b",
            &s.bootstrap(),
            "-G",
            "mixed",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=300",
            "mixed",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let theirs = last_assignment(&std::fs::read_to_string(&err_path).unwrap_or_default());
        let ours = owned.lock().expect("the member thread panicked").clone();
        if let Some(theirs) = theirs
            && !theirs.is_empty()
            && !ours.is_empty()
            && theirs.is_disjoint(&ours)
            && theirs.union(&ours).count() == 4
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no shared assignment: in-process {ours:?}, kcat {:?}",
            std::fs::read_to_string(&err_path)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let d = s.log().describe_group("mixed")?;
    assert_eq!(d.members.len(), 2, "{d:?}");
    let _ = kcat.kill();
    let _ = kcat.wait();
    stop.store(true, Ordering::Relaxed);
    member.join().expect("the member thread panicked")?;
    Ok(())
}

/// The `kafka_frame` fuzz target's seeds (one valid request per served API) through the
/// handler: each gets a response whose correlation id is the request's.
#[test]
fn fuzz_seed_frames_are_answered() -> TestResult {
    let s = Server::start()?;
    s.log().create_topic("fuzz", 2)?;
    s.log().create_topic("other", 1)?;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/kafka_frame");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let frame = std::fs::read(&path)?;
        let correlation = frame[4..8].to_vec();
        match s.broker.handle(Bytes::from(frame)) {
            Reply::Send(body) => assert_eq!(body[..4], correlation[..], "{path:?}"),
            other => panic!("{path:?}: {other:?}"),
        }
        seen += 1;
    }
    assert!(seen >= 20, "{seen} seeds");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Protocol versions: what is advertised is what is served, from v0 as in Kafka 3.9

/// A request at a version the codec does not encode, built by hand: header v1 (correlation
/// 7, client "test"), then `body`.
fn old_frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut v = Vec::new();
    v.extend_from_slice(&(key as i16).to_be_bytes());
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&7i32.to_be_bytes());
    v.extend_from_slice(&4i16.to_be_bytes());
    v.extend_from_slice(b"test");
    v.extend_from_slice(body);
    Bytes::from(v)
}

/// Builds classic-encoding request bodies.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn i8(mut self, v: i8) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i16(mut self, v: i16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(self, s: &str) -> Self {
        let mut b = self.i16(s.len() as i16);
        b.0.extend_from_slice(s.as_bytes());
        b
    }
    fn bytes(self, data: &[u8]) -> Self {
        let mut b = self.i32(data.len() as i32);
        b.0.extend_from_slice(data);
        b
    }
}

/// Reads classic-encoding response bodies; `done` checks nothing is left over.
struct Cursor(Bytes);

impl Cursor {
    fn take(&mut self, n: usize) -> TestResult<Bytes> {
        if self.0.len() < n {
            return Err(format!(
                "response too short: {n} bytes wanted, {} left",
                self.0.len()
            )
            .into());
        }
        Ok(self.0.split_to(n))
    }
    fn i16(&mut self) -> TestResult<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> TestResult<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> TestResult<i64> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes(b[..].try_into()?))
    }
    fn nullable_str(&mut self) -> TestResult<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        Ok(Some(String::from_utf8(self.take(len as usize)?.to_vec())?))
    }
    fn str(&mut self) -> TestResult<String> {
        Ok(self.nullable_str()?.ok_or("null string")?)
    }
    fn done(&self) {
        assert!(self.0.is_empty(), "{} bytes left over", self.0.len());
    }
}

/// The handler's answer to `frame`, past the correlation id (checked to be 7).
fn answer(broker: &Broker, frame: Bytes) -> TestResult<Cursor> {
    match broker.handle(frame) {
        Reply::Send(body) => {
            let mut c = Cursor(Bytes::from(body));
            assert_eq!(c.i32()?, 7, "correlation id");
            Ok(c)
        }
        other => Err(format!("expected a response, got {other:?}").into()),
    }
}

/// A minimal valid request for `key` at `version`: by hand below the codec's versions,
/// else the codec's default request with what a version requires.
fn minimal_request(key: ApiKey, version: i16) -> TestResult<Bytes> {
    use kafka_protocol::messages::{
        AlterConfigsRequest, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
        DeleteRecordsRequest, DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest,
        DescribeGroupsRequest, FindCoordinatorRequest, HeartbeatRequest,
        IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
        ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
        SyncGroupRequest,
    };
    if version < key.valid_versions().min {
        let body = match key {
            ApiKey::Produce => Body::default().i16(1).i32(1000).i32(0),
            ApiKey::Fetch => Body::default().i32(-1).i32(0).i32(0).i32(0),
            ApiKey::ListOffsets => Body::default().i32(-1).i32(0),
            ApiKey::OffsetCommit | ApiKey::OffsetFetch => Body::default().str("g").i32(0),
            ApiKey::CreateTopics | ApiKey::DeleteTopics => Body::default().i32(0).i32(1000),
            other => return Err(format!("no hand-made {other:?} v{version}").into()),
        };
        return Ok(old_frame(key, version, &body.0));
    }
    Ok(match key {
        ApiKey::Produce => {
            let mut r = ProduceRequest::default();
            r.acks = 1;
            frame(key, version, 7, &r)?
        }
        ApiKey::Fetch => frame(key, version, 7, &FetchRequest::default())?,
        ApiKey::ListOffsets => frame(key, version, 7, &ListOffsetsRequest::default())?,
        ApiKey::Metadata => {
            let mut r = MetadataRequest::default();
            r.topics = Some(Vec::new());
            frame(key, version, 7, &r)?
        }
        ApiKey::OffsetCommit => frame(key, version, 7, &OffsetCommitRequest::default())?,
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            r.topics = Some(Vec::new());
            frame(key, version, 7, &r)?
        }
        ApiKey::FindCoordinator => {
            let mut r = FindCoordinatorRequest::default();
            if version < 4 {
                r.key = StrBytes::from_static_str("g");
            } else {
                r.coordinator_keys = vec![StrBytes::from_static_str("g")];
            }
            frame(key, version, 7, &r)?
        }
        ApiKey::JoinGroup => frame(key, version, 7, &JoinGroupRequest::default())?,
        ApiKey::Heartbeat => frame(key, version, 7, &HeartbeatRequest::default())?,
        ApiKey::LeaveGroup => frame(key, version, 7, &LeaveGroupRequest::default())?,
        ApiKey::SyncGroup => frame(key, version, 7, &SyncGroupRequest::default())?,
        ApiKey::ApiVersions => frame(key, version, 7, &ApiVersionsRequest::default())?,
        ApiKey::CreateTopics => frame(key, version, 7, &CreateTopicsRequest::default())?,
        ApiKey::DeleteTopics => frame(key, version, 7, &DeleteTopicsRequest::default())?,
        ApiKey::InitProducerId => frame(key, version, 7, &InitProducerIdRequest::default())?,
        ApiKey::ListGroups => frame(key, version, 7, &ListGroupsRequest::default())?,
        ApiKey::DescribeGroups => frame(key, version, 7, &DescribeGroupsRequest::default())?,
        ApiKey::DeleteGroups => frame(key, version, 7, &DeleteGroupsRequest::default())?,
        ApiKey::OffsetDelete => frame(key, version, 7, &OffsetDeleteRequest::default())?,
        ApiKey::DescribeConfigs => frame(key, version, 7, &DescribeConfigsRequest::default())?,
        ApiKey::AlterConfigs => frame(key, version, 7, &AlterConfigsRequest::default())?,
        ApiKey::IncrementalAlterConfigs => {
            frame(key, version, 7, &IncrementalAlterConfigsRequest::default())?
        }
        ApiKey::CreatePartitions => frame(key, version, 7, &CreatePartitionsRequest::default())?,
        ApiKey::DeleteRecords => frame(key, version, 7, &DeleteRecordsRequest::default())?,
        ApiKey::DescribeCluster => frame(key, version, 7, &DescribeClusterRequest::default())?,
        ApiKey::AddPartitionsToTxn => frame(
            key,
            version,
            7,
            &kafka_protocol::messages::AddPartitionsToTxnRequest::default(),
        )?,
        ApiKey::AddOffsetsToTxn => frame(
            key,
            version,
            7,
            &kafka_protocol::messages::AddOffsetsToTxnRequest::default(),
        )?,
        ApiKey::EndTxn => frame(
            key,
            version,
            7,
            &kafka_protocol::messages::EndTxnRequest::default(),
        )?,
        ApiKey::TxnOffsetCommit => frame(
            key,
            version,
            7,
            &kafka_protocol::messages::TxnOffsetCommitRequest::default(),
        )?,
        other => return Err(format!("no minimal {other:?} request").into()),
    })
}

#[test]
fn api_versions_advertises_exactly_the_versions_served() -> TestResult {
    let s = Server::start()?;
    let advertised: ApiVersionsResponse = call(
        &s.broker,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    )?;
    let ranges: BTreeMap<i16, (i16, i16)> = advertised
        .api_keys
        .iter()
        .map(|k| (k.api_key, (k.min_version, k.max_version)))
        .collect();
    assert_eq!(
        ranges.len(),
        advertised.api_keys.len(),
        "a key listed twice"
    );
    for (&raw, &(lo, hi)) in &ranges {
        let key = ApiKey::try_from(raw).map_err(|()| format!("unknown key {raw}"))?;
        // Every API served starts at v0, as in Kafka 3.9, but DescribeConfigs: the wire codec
        // has no v0 of it (v0 differs from v1 only in the synonyms it cannot carry).
        let first = i16::from(key == ApiKey::DescribeConfigs);
        assert_eq!(lo, first, "{key:?} starts at v{lo}");
        for version in [lo, hi] {
            let request =
                minimal_request(key, version).map_err(|e| format!("{key:?} v{version}: {e}"))?;
            match s.broker.handle(request) {
                Reply::Send(body) => {
                    assert_eq!(body[..4], 7i32.to_be_bytes(), "{key:?} v{version}");
                }
                other => panic!("{key:?} v{version} is advertised but got {other:?}"),
            }
        }
        for version in [lo - 1, hi + 1] {
            let reply = s.broker.handle(old_frame(key, version, &[]));
            if key == ApiKey::ApiVersions {
                // KIP-511: an unknown ApiVersions version is answered in v0 with an error.
                let Reply::Send(body) = reply else {
                    panic!("ApiVersions v{version}: {reply:?}")
                };
                assert_eq!(body[4..6], 35i16.to_be_bytes());
            } else {
                assert!(
                    matches!(reply, Reply::Close(_)),
                    "{key:?} v{version} is not advertised but got {reply:?}"
                );
            }
        }
    }
    // Nothing else is served.
    for raw in -1..=100i16 {
        if ranges.contains_key(&raw) {
            continue;
        }
        let Ok(key) = ApiKey::try_from(raw) else {
            continue;
        };
        let range = key.valid_versions();
        for version in [range.min, range.max] {
            let reply = s.broker.handle(frame_for_unserved(key, version)?);
            assert!(
                matches!(reply, Reply::Close(_)),
                "{key:?} v{version} is not advertised but got {reply:?}"
            );
        }
    }
    Ok(())
}

/// A header-only frame for an API that is not served (its body does not matter: the key
/// alone closes the connection).
fn frame_for_unserved(key: ApiKey, version: i16) -> TestResult<Bytes> {
    let mut h = RequestHeader::default();
    h.request_api_key = key as i16;
    h.request_api_version = version;
    h.correlation_id = 7;
    let mut buf = BytesMut::new();
    h.encode(&mut buf, key.request_header_version(version))?;
    Ok(buf.freeze())
}

#[test]
fn old_produce_versions_get_unsupported_version_in_their_layout() -> TestResult {
    let s = Server::start()?;
    s.log().create_topic("t", 1)?;
    // A magic-1 message set, as kafka-python pinned to 0.10.1 sends (only its length counts).
    let message_set = [0u8; 40];
    for version in 0..=2i16 {
        let body = Body::default()
            .i16(1)
            .i32(1000)
            .i32(1)
            .str("t")
            .i32(1)
            .i32(0)
            .bytes(&message_set);
        let mut c = answer(&s.broker, old_frame(ApiKey::Produce, version, &body.0))?;
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.str()?, "t");
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.i32()?, 0, "partition");
        assert_eq!(c.i16()?, 35, "UNSUPPORTED_VERSION");
        assert_eq!(c.i64()?, -1, "base offset");
        if version >= 2 {
            assert_eq!(c.i64()?, -1, "log append time");
        }
        if version >= 1 {
            assert_eq!(c.i32()?, 0, "throttle time");
        }
        c.done();
        // With acks = 0 there is no response to carry the error: the connection closes, as
        // Kafka closes it after a failed acks = 0 produce.
        let mut acks0 = body.0.clone();
        acks0[..2].copy_from_slice(&0i16.to_be_bytes());
        assert!(matches!(
            s.broker.handle(old_frame(ApiKey::Produce, version, &acks0)),
            Reply::Close(_)
        ));
    }
    assert_eq!(
        s.log().partition("t", 0)?.log_end_offset(),
        0,
        "nothing stored"
    );
    Ok(())
}

#[test]
fn old_fetch_versions_get_unsupported_version_and_the_connection_stays_open() -> TestResult {
    let s = Server::start()?;
    s.log().create_topic("t", 1)?;
    s.log().append("t", 0, &[Record::new("v")])?;
    let request = |version: i16| {
        let mut b = Body::default().i32(-1).i32(500).i32(1);
        if version >= 3 {
            b = b.i32(1 << 20);
        }
        b.i32(1).str("t").i32(1).i32(0).i64(0).i32(1 << 20)
    };
    for version in 0..=3i16 {
        let mut c = answer(
            &s.broker,
            old_frame(ApiKey::Fetch, version, &request(version).0),
        )?;
        if version >= 1 {
            assert_eq!(c.i32()?, 0, "throttle time");
        }
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.str()?, "t");
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.i32()?, 0, "partition");
        assert_eq!(c.i16()?, 35, "UNSUPPORTED_VERSION");
        assert_eq!(c.i64()?, -1, "high watermark");
        assert_eq!(c.i32()?, 0, "no records");
        c.done();
    }
    // Over one connection: Fetch v3 (kafka-python's with api_version=(0,10,1)), then
    // ApiVersions; both answered.
    let mut conn = TcpStream::connect(s.addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.write_all(&sized(&old_frame(ApiKey::Fetch, 3, &request(3).0)))?;
    conn.write_all(&sized(&frame(
        ApiKey::ApiVersions,
        0,
        8,
        &ApiVersionsRequest::default(),
    )?))?;
    let mut correlations = Vec::new();
    for _ in 0..2 {
        let mut size = [0u8; 4];
        conn.read_exact(&mut size)?;
        let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
        conn.read_exact(&mut body)?;
        correlations.push(i32::from_be_bytes(body[..4].try_into()?));
    }
    assert_eq!(correlations, [7, 8]);
    Ok(())
}

#[test]
fn list_offsets_v0_lists_offsets_newest_first() -> TestResult {
    let s = Server::start()?;
    s.log().create_topic("t", 1)?;
    let p = s.log().partition("t", 0)?;
    p.append(&[Record::new("a"), Record::new("b"), Record::new("c")])?;
    p.flush()?;
    let ask = |partition: i32, timestamp: i64, max: i32| -> TestResult<(i16, Vec<i64>)> {
        let body = Body::default()
            .i32(-1)
            .i32(1)
            .str("t")
            .i32(1)
            .i32(partition)
            .i64(timestamp)
            .i32(max);
        let mut c = answer(&s.broker, old_frame(ApiKey::ListOffsets, 0, &body.0))?;
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.str()?, "t");
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.i32()?, partition);
        let code = c.i16()?;
        let n = c.i32()?;
        let offsets = (0..n).map(|_| c.i64()).collect::<TestResult<Vec<_>>>()?;
        c.done();
        Ok((code, offsets))
    };
    assert_eq!(
        ask(0, -1, 10)?,
        (0, vec![3, 0]),
        "latest: the end, then segment starts"
    );
    assert_eq!(ask(0, -1, 1)?, (0, vec![3]));
    assert_eq!(ask(0, -2, 10)?, (0, vec![0]), "earliest");
    assert_eq!(ask(0, 0, 10)?, (0, vec![]), "nothing modified before 1970");
    assert_eq!(ask(0, i64::MAX, 10)?, (0, vec![3, 0]));
    assert_eq!(ask(0, -3, 1)?.0, 35, "max timestamp is not a v0 lookup");
    assert_eq!(ask(5, -1, 1)?.0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    Ok(())
}

/// An OffsetFetch v0 partition: index, offset, metadata, error code.
type FetchedOffset = (i32, i64, Option<String>, i16);

#[test]
fn offset_commit_v0_v1_and_offset_fetch_v0_share_the_group_offsets() -> TestResult {
    use kafka_protocol::messages::{
        GroupId, JoinGroupRequest, JoinGroupResponse, SyncGroupRequest, SyncGroupResponse,
        join_group_request, sync_group_request,
    };
    let s = Server::start()?;
    s.log().create_topic("t", 2)?;
    let fetch_v0 = |group: &str| -> TestResult<Vec<FetchedOffset>> {
        let body = Body::default()
            .str(group)
            .i32(1)
            .str("t")
            .i32(2)
            .i32(0)
            .i32(1);
        let mut c = answer(&s.broker, old_frame(ApiKey::OffsetFetch, 0, &body.0))?;
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.str()?, "t");
        let n = c.i32()?;
        let mut out = Vec::new();
        for _ in 0..n {
            out.push((c.i32()?, c.i64()?, c.nullable_str()?, c.i16()?));
        }
        c.done();
        Ok(out)
    };
    let commit_codes = |mut c: Cursor| -> TestResult<Vec<(i32, i16)>> {
        assert_eq!(c.i32()?, 1);
        assert_eq!(c.str()?, "t");
        let n = c.i32()?;
        let codes = (0..n)
            .map(|_| Ok((c.i32()?, c.i16()?)))
            .collect::<TestResult<Vec<_>>>()?;
        c.done();
        Ok(codes)
    };

    // v0: a standalone commit (no member), read back by v0.
    let body = Body::default()
        .str("plain")
        .i32(1)
        .str("t")
        .i32(2)
        .i32(0)
        .i64(42)
        .str("m0")
        .i32(7)
        .i64(1)
        .i16(-1);
    let codes = commit_codes(answer(
        &s.broker,
        old_frame(ApiKey::OffsetCommit, 0, &body.0),
    )?)?;
    assert_eq!(codes, [(0, 0), (7, 3)], "partition 7 does not exist");
    assert_eq!(
        fetch_v0("plain")?,
        [
            (0, 42, Some("m0".to_owned()), 0),
            (1, -1, Some(String::new()), 0)
        ]
    );

    // v1 from a member of a group joined at v0 (sarama 1.22's commit), with a commit time.
    let mut proto = join_group_request::JoinGroupRequestProtocol::default();
    proto.name = StrBytes::from_static_str("range");
    proto.metadata = Bytes::from_static(b"\0\0\0\0\0\x01\0\x01t\0\0\0\0");
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(StrBytes::from_static_str("members"));
    join.session_timeout_ms = 10_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    join.protocols = vec![proto];
    let joined: JoinGroupResponse = call(&s.broker, ApiKey::JoinGroup, 0, &join)?;
    assert_eq!(joined.error_code, 0);
    let mut assignment = sync_group_request::SyncGroupRequestAssignment::default();
    assignment.member_id = joined.member_id.clone();
    let mut sync = SyncGroupRequest::default();
    sync.group_id = join.group_id.clone();
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    sync.assignments = vec![assignment];
    let synced: SyncGroupResponse = call(&s.broker, ApiKey::SyncGroup, 0, &sync)?;
    assert_eq!(synced.error_code, 0);
    let v1 = |generation: i32, commit_time: i64| {
        Body::default()
            .str("members")
            .i32(generation)
            .str(joined.member_id.as_str())
            .i32(1)
            .str("t")
            .i32(1)
            .i32(1)
            .i64(9)
            .i64(commit_time)
            .str("m1")
    };
    let at = 1_700_000_000_000;
    let codes = commit_codes(answer(
        &s.broker,
        old_frame(ApiKey::OffsetCommit, 1, &v1(joined.generation_id, at).0),
    )?)?;
    assert_eq!(codes, [(1, 0)]);
    let stored = s
        .log()
        .committed_offsets("members", Some(&[TopicPartition::new("t", 1)]));
    let om = stored[0].1.as_ref().ok_or("the v1 commit is not stored")?;
    assert_eq!(
        (om.offset, om.metadata.as_str(), om.commit_timestamp),
        (9, "m1", at)
    );
    assert_eq!(fetch_v0("members")?[1], (1, 9, Some("m1".to_owned()), 0));
    // A stale generation is refused (ILLEGAL_GENERATION), and so is a v0 standalone commit
    // while the group has members.
    let codes = commit_codes(answer(
        &s.broker,
        old_frame(ApiKey::OffsetCommit, 1, &v1(joined.generation_id + 5, -1).0),
    )?)?;
    assert_eq!(codes, [(1, 22)]);
    let body = Body::default()
        .str("members")
        .i32(1)
        .str("t")
        .i32(1)
        .i32(0)
        .i64(1)
        .i16(-1);
    let codes = commit_codes(answer(
        &s.broker,
        old_frame(ApiKey::OffsetCommit, 0, &body.0),
    )?)?;
    assert_ne!(codes[0].1, 0, "a standalone commit to a group with members");
    assert_eq!(fetch_v0("members")?[1].1, 9, "unchanged");
    Ok(())
}

#[test]
fn create_topics_v0_v1_and_delete_topics_v0_are_served() -> TestResult {
    let s = Server::start()?;
    let create = |version: i16, name: &str, replication: i16, validate_only: bool| {
        let mut b = Body::default()
            .i32(1)
            .str(name)
            .i32(2)
            .i16(replication)
            .i32(0)
            .i32(1)
            .str("retention.ms")
            .str("60000")
            .i32(1000);
        if version >= 1 {
            b = b.i8(i8::from(validate_only));
        }
        old_frame(ApiKey::CreateTopics, version, &b.0)
    };
    let mut c = answer(&s.broker, create(0, "a", 1, false))?;
    assert_eq!((c.i32()?, c.str()?.as_str(), c.i16()?), (1, "a", 0));
    c.done();
    assert_eq!(s.log().partition_count("a")?, 2);
    assert_eq!(
        s.log().describe_topic("a")?.config.retention_ms,
        Some(60_000)
    );
    let mut c = answer(&s.broker, create(0, "a", 1, false))?;
    assert_eq!((c.i32()?, c.str()?.as_str(), c.i16()?), (1, "a", 36));
    c.done();
    // v1: validate only, and an error message.
    let mut c = answer(&s.broker, create(1, "b", 1, true))?;
    assert_eq!((c.i32()?, c.str()?.as_str(), c.i16()?), (1, "b", 0));
    assert_eq!(c.nullable_str()?, None);
    c.done();
    assert!(s.log().partition_count("b").is_err(), "validate only");
    let mut c = answer(&s.broker, create(1, "b", 3, false))?;
    assert_eq!((c.i32()?, c.str()?.as_str(), c.i16()?), (1, "b", 38));
    assert!(c.nullable_str()?.is_some_and(|m| !m.is_empty()));
    c.done();

    let body = Body::default().i32(2).str("a").str("missing").i32(1000);
    let mut c = answer(&s.broker, old_frame(ApiKey::DeleteTopics, 0, &body.0))?;
    assert_eq!(c.i32()?, 2);
    assert_eq!((c.str()?.as_str(), c.i16()?), ("a", 0));
    assert_eq!((c.str()?.as_str(), c.i16()?), ("missing", 3));
    c.done();
    assert!(s.log().partition_count("a").is_err(), "deleted");
    Ok(())
}

#[test]
fn find_coordinator_finds_this_node_for_groups_and_transactions() -> TestResult {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let s = Server::start()?;
    // v0 has no key type: it always looks up a group.
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_static_str("g");
    let r: FindCoordinatorResponse = call(&s.broker, ApiKey::FindCoordinator, 0, &req)?;
    assert_eq!((r.error_code, r.port), (0, i32::from(s.addr.port())));
    req.key = StrBytes::from_static_str("tx");
    req.key_type = 1;
    for version in 1..=3 {
        let r: FindCoordinatorResponse = call(&s.broker, ApiKey::FindCoordinator, version, &req)?;
        assert_eq!((r.error_code, r.node_id.0), (0, 0), "v{version}");
    }
    for version in 4..=5 {
        let mut batch = FindCoordinatorRequest::default();
        batch.key_type = 1;
        batch.coordinator_keys = vec![
            StrBytes::from_static_str("tx1"),
            StrBytes::from_static_str("tx2"),
        ];
        let r: FindCoordinatorResponse = call(&s.broker, ApiKey::FindCoordinator, version, &batch)?;
        let got: Vec<(&str, i16, i32)> = r
            .coordinators
            .iter()
            .map(|c| (c.key.as_str(), c.error_code, c.node_id.0))
            .collect();
        assert_eq!(got, [("tx1", 0, 0), ("tx2", 0, 0)], "v{version}");
        batch.key_type = 0;
        let r: FindCoordinatorResponse = call(&s.broker, ApiKey::FindCoordinator, version, &batch)?;
        assert!(r.coordinators.iter().all(|c| c.error_code == 0));
        batch.key_type = 2;
        let r: FindCoordinatorResponse = call(&s.broker, ApiKey::FindCoordinator, version, &batch)?;
        assert!(r.coordinators.iter().all(|c| c.error_code == 42));
    }
    Ok(())
}

/// A transactional batch as a client builds it.
fn txn_batch(producer_id: i64, epoch: i16, seq: i32, values: &[&str]) -> TestResult<Vec<u8>> {
    let mut b = BatchBuilder::new(Compression::None);
    b.set_producer(producer_id, epoch, seq);
    b.set_transactional(true);
    for v in values {
        b.push(None, Some(v.as_bytes()), &[], 1_700_000_000_000)?;
    }
    Ok(b.finish()?.to_vec())
}

/// The transaction APIs on the wire, as a Transactions V1 client calls them: InitProducerId
/// with a transactional id, AddPartitionsToTxn, Produce (refused for a partition not added),
/// EndTxn; Fetch and ListOffsets at read_committed answer the last stable offset and the
/// aborted transactions; TxnOffsetCommit after AddOffsetsToTxn counts only on commit; a newer
/// InitProducerId fences the older epoch.
#[test]
fn transactions_over_the_wire() -> TestResult {
    use kafka_protocol::messages::{
        AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
        AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
        InitProducerIdResponse, ProducerId, TransactionalId, TxnOffsetCommitRequest,
        TxnOffsetCommitResponse, add_partitions_to_txn_request, txn_offset_commit_request,
    };
    let s = Server::start()?;
    s.log().create_topic("t", 2)?;
    let id = TransactionalId(StrBytes::from_static_str("wire"));
    let init = || -> TestResult<(i64, i16)> {
        let mut req = InitProducerIdRequest::default();
        req.transactional_id = Some(id.clone());
        req.transaction_timeout_ms = 60_000;
        let r: InitProducerIdResponse = call(&s.broker, ApiKey::InitProducerId, 4, &req)?;
        assert_eq!(r.error_code, 0);
        Ok((r.producer_id.0, r.producer_epoch))
    };
    let (pid, epoch) = init()?;
    let add = |epoch: i16, partition: i32| -> TestResult<i16> {
        let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        t.partitions = vec![partition];
        let mut req = AddPartitionsToTxnRequest::default();
        req.v3_and_below_transactional_id = id.clone();
        req.v3_and_below_producer_id = ProducerId(pid);
        req.v3_and_below_producer_epoch = epoch;
        req.v3_and_below_topics = vec![t];
        let r: AddPartitionsToTxnResponse = call(&s.broker, ApiKey::AddPartitionsToTxn, 3, &req)?;
        Ok(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code)
    };
    let end = |epoch: i16, commit: bool| -> TestResult<i16> {
        let mut req = EndTxnRequest::default();
        req.transactional_id = id.clone();
        req.producer_id = ProducerId(pid);
        req.producer_epoch = epoch;
        req.committed = commit;
        let r: EndTxnResponse = call(&s.broker, ApiKey::EndTxn, 3, &req)?;
        Ok(r.error_code)
    };
    let produce = |partition: i32, batch: Vec<u8>| -> TestResult<i16> {
        let resp: ProduceResponse = call(
            &s.broker,
            ApiKey::Produce,
            9,
            &produce_request("t", partition, -1, Bytes::from(batch)),
        )?;
        Ok(resp.responses[0].partition_responses[0].error_code)
    };
    // Committed: a, b. Not added: refused.
    assert_eq!(add(epoch, 0)?, 0);
    assert_eq!(produce(0, txn_batch(pid, epoch, 0, &["a", "b"])?)?, 0);
    assert_eq!(
        produce(1, txn_batch(pid, epoch, 0, &["x"])?)?,
        48,
        "t-1 not added"
    );
    assert_eq!(end(epoch, true)?, 0);
    // Aborted: c. Then open: d.
    assert_eq!(add(epoch, 0)?, 0);
    assert_eq!(produce(0, txn_batch(pid, epoch, 2, &["c"])?)?, 0);
    assert_eq!(end(epoch, false)?, 0);
    assert_eq!(add(epoch, 0)?, 0);
    assert_eq!(produce(0, txn_batch(pid, epoch, 3, &["d"])?)?, 0);
    // Offsets: c(0,1) marker 2, c 3, marker 4, d 5.
    let mut fetch = fetch_request("t", 0, 0);
    fetch.isolation_level = 1;
    let resp: FetchResponse = call(&s.broker, ApiKey::Fetch, 12, &fetch)?;
    let pd = &resp.responses[0].partitions[0];
    assert_eq!((pd.high_watermark, pd.last_stable_offset), (6, 5));
    let aborted: Vec<(i64, i64)> = pd
        .aborted_transactions
        .as_ref()
        .ok_or("no aborted list")?
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    assert_eq!(aborted, [(pid, 3)]);
    let mut lp = list_offsets_request::ListOffsetsPartition::default();
    lp.timestamp = -1;
    let mut lt = list_offsets_request::ListOffsetsTopic::default();
    lt.name = TopicName(StrBytes::from_static_str("t"));
    lt.partitions = vec![lp];
    let mut lo = ListOffsetsRequest::default();
    lo.replica_id = kafka_protocol::messages::BrokerId(-1);
    lo.isolation_level = 1;
    lo.topics = vec![lt];
    let r: ListOffsetsResponse = call(&s.broker, ApiKey::ListOffsets, 5, &lo)?;
    assert_eq!(
        r.topics[0].partitions[0].offset, 5,
        "the last stable offset"
    );
    // Offsets inside the open transaction: TxnOffsetCommit needs AddOffsetsToTxn first.
    let mut part = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
    part.partition_index = 0;
    part.committed_offset = 6;
    let mut topic = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
    topic.name = TopicName(StrBytes::from_static_str("t"));
    topic.partitions = vec![part];
    let mut commit = TxnOffsetCommitRequest::default();
    commit.transactional_id = id.clone();
    commit.group_id = kafka_protocol::messages::GroupId(StrBytes::from_static_str("g"));
    commit.producer_id = ProducerId(pid);
    commit.producer_epoch = epoch;
    commit.generation_id = -1;
    commit.topics = vec![topic];
    let r: TxnOffsetCommitResponse = call(&s.broker, ApiKey::TxnOffsetCommit, 3, &commit)?;
    assert_eq!(
        r.topics[0].partitions[0].error_code, 48,
        "before AddOffsetsToTxn"
    );
    let mut ao = AddOffsetsToTxnRequest::default();
    ao.transactional_id = id.clone();
    ao.producer_id = ProducerId(pid);
    ao.producer_epoch = epoch;
    ao.group_id = kafka_protocol::messages::GroupId(StrBytes::from_static_str("g"));
    let r: AddOffsetsToTxnResponse = call(&s.broker, ApiKey::AddOffsetsToTxn, 3, &ao)?;
    assert_eq!(r.error_code, 0);
    let r: TxnOffsetCommitResponse = call(&s.broker, ApiKey::TxnOffsetCommit, 3, &commit)?;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let tp = topiclog::TopicPartition::new("t", 0);
    let group = s.log().consumer(topiclog::ConsumerConfig::group("g"))?;
    assert_eq!(group.committed(&tp)?, None, "not before the commit");
    assert_eq!(end(epoch, true)?, 0);
    assert_eq!(group.committed(&tp)?.map(|o| o.offset), Some(6));
    // What read_committed readers see, in process too.
    let h = s
        .log()
        .partition("t", 0)?
        .with_isolation_level(topiclog::IsolationLevel::ReadCommitted);
    let values: Vec<String> = h
        .records(0, 1 << 20)?
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(values, ["a", "b", "d"]);
    // A newer InitProducerId fences the old epoch: PRODUCER_FENCED.
    let (_, newer) = init()?;
    assert!(newer > epoch);
    assert_eq!(add(epoch, 0)?, 90);
    assert_eq!(end(epoch, true)?, 90);
    Ok(())
}

/// A transaction left open past its `transaction.timeout.ms` is aborted by the log; the
/// client's EndTxn then gets INVALID_PRODUCER_EPOCH (not success: its epoch is gone), and its
/// next InitProducerId (KIP-360) gives it the newer epoch to go on with.
#[test]
fn a_timed_out_transaction_tells_the_client_to_initialize_again() -> TestResult {
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse,
        InitProducerIdRequest, InitProducerIdResponse, ProducerId, TransactionalId,
        add_partitions_to_txn_request,
    };
    let s = Server::start()?;
    s.log().create_topic("t", 1)?;
    let id = TransactionalId(StrBytes::from_static_str("slow"));
    let init = || -> TestResult<(i64, i16)> {
        let mut req = InitProducerIdRequest::default();
        req.transactional_id = Some(id.clone());
        req.transaction_timeout_ms = 100;
        let r: InitProducerIdResponse = call(&s.broker, ApiKey::InitProducerId, 4, &req)?;
        assert_eq!(r.error_code, 0);
        Ok((r.producer_id.0, r.producer_epoch))
    };
    let add = |pid: i64, epoch: i16| -> TestResult<i16> {
        let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        t.partitions = vec![0];
        let mut req = AddPartitionsToTxnRequest::default();
        req.v3_and_below_transactional_id = id.clone();
        req.v3_and_below_producer_id = ProducerId(pid);
        req.v3_and_below_producer_epoch = epoch;
        req.v3_and_below_topics = vec![t];
        let r: AddPartitionsToTxnResponse = call(&s.broker, ApiKey::AddPartitionsToTxn, 3, &req)?;
        Ok(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code)
    };
    let (pid, epoch) = init()?;
    assert_eq!(add(pid, epoch)?, 0);
    let resp: ProduceResponse = call(
        &s.broker,
        ApiKey::Produce,
        9,
        &produce_request(
            "t",
            0,
            -1,
            Bytes::from(txn_batch(pid, epoch, 0, &["late"])?),
        ),
    )?;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let h = s.log().partition("t", 0)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while h.last_stable_offset() < h.log_end_offset() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        h.last_stable_offset(),
        h.log_end_offset(),
        "aborted by the timeout"
    );
    let mut end = EndTxnRequest::default();
    end.transactional_id = id.clone();
    end.producer_id = ProducerId(pid);
    end.producer_epoch = epoch;
    end.committed = false;
    let r: EndTxnResponse = call(&s.broker, ApiKey::EndTxn, 3, &end)?;
    assert_eq!(r.error_code, 47, "INVALID_PRODUCER_EPOCH");
    let (pid2, epoch2) = init()?;
    assert!(pid2 == pid && epoch2 > epoch);
    assert_eq!(add(pid2, epoch2)?, 0, "the client goes on at the new epoch");
    Ok(())
}

/// Adds the versions read by hand to the `kafka_frame` fuzz target's seeds. Run with
/// `cargo test --test kafka_adapter -- --ignored write_old_version_fuzz_seeds`.
#[test]
#[ignore = "regenerates part of fuzz/corpus/kafka_frame"]
fn write_old_version_fuzz_seeds() -> TestResult {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/kafka_frame");
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, key: ApiKey, version: i16, body: Body| {
        std::fs::write(dir.join(name), old_frame(key, version, &body.0))
    };
    let fetch = |v3: bool| {
        let b = Body::default().i32(-1).i32(0).i32(1);
        let b = if v3 { b.i32(1 << 20) } else { b };
        b.i32(1).str("fuzz").i32(1).i32(0).i64(0).i32(1 << 20)
    };
    write(
        "produce-v2",
        ApiKey::Produce,
        2,
        Body::default()
            .i16(1)
            .i32(1000)
            .i32(1)
            .str("fuzz")
            .i32(1)
            .i32(0)
            .bytes(&[0; 34]),
    )?;
    write("fetch-v0", ApiKey::Fetch, 0, fetch(false))?;
    write("fetch-v3", ApiKey::Fetch, 3, fetch(true))?;
    write(
        "list-offsets-v0",
        ApiKey::ListOffsets,
        0,
        Body::default()
            .i32(-1)
            .i32(1)
            .str("fuzz")
            .i32(1)
            .i32(0)
            .i64(-1)
            .i32(5),
    )?;
    let commit = |v1: bool| {
        let b = Body::default().str("g");
        let b = if v1 { b.i32(-1).str("") } else { b };
        let b = b.i32(1).str("fuzz").i32(1).i32(0).i64(3);
        let b = if v1 { b.i64(-1) } else { b };
        b.str("meta")
    };
    write("offset-commit-v0", ApiKey::OffsetCommit, 0, commit(false))?;
    write("offset-commit-v1", ApiKey::OffsetCommit, 1, commit(true))?;
    write(
        "offset-fetch-v0",
        ApiKey::OffsetFetch,
        0,
        Body::default()
            .str("g")
            .i32(1)
            .str("fuzz")
            .i32(2)
            .i32(0)
            .i32(1),
    )?;
    let create = Body::default()
        .i32(1)
        .str("made")
        .i32(1)
        .i16(1)
        .i32(0)
        .i32(1)
        .str("cleanup.policy")
        .str("compact")
        .i32(1000);
    write("create-topics-v0", ApiKey::CreateTopics, 0, create)?;
    let create = Body::default()
        .i32(1)
        .str("made")
        .i32(-1)
        .i16(-1)
        .i32(0)
        .i32(0)
        .i32(1000)
        .i8(1);
    write("create-topics-v1", ApiKey::CreateTopics, 1, create)?;
    write(
        "delete-topics-v0",
        ApiKey::DeleteTopics,
        0,
        Body::default().i32(1).str("gone").i32(1000),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// CreateTopics with the settings deployment scripts send

fn create_topic_request(
    name: &str,
    replication_factor: i16,
    configs: &[(&str, &str)],
) -> kafka_protocol::messages::CreateTopicsRequest {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_owned()));
    t.num_partitions = 1;
    t.replication_factor = replication_factor;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string((*k).to_owned());
            c.value = Some(StrBytes::from_string((*v).to_owned()));
            c
        })
        .collect();
    let mut req = kafka_protocol::messages::CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 1000;
    req
}

fn create_topic_code(
    broker: &Broker,
    name: &str,
    replication_factor: i16,
    configs: &[(&str, &str)],
) -> TestResult<i16> {
    let resp: kafka_protocol::messages::CreateTopicsResponse = call(
        broker,
        ApiKey::CreateTopics,
        5,
        &create_topic_request(name, replication_factor, configs),
    )?;
    Ok(resp.topics[0].error_code)
}

#[test]
fn create_topics_takes_deployment_settings_and_enforces_timestamp_bounds() -> TestResult {
    let s = Server::start()?;
    let settings = [
        ("min.insync.replicas", "2"),
        ("unclean.leader.election.enable", "false"),
        ("preallocate", "true"),
        ("message.downconversion.enable", "true"),
        ("remote.storage.enable", "false"),
        ("local.retention.ms", "-2"),
        ("follower.replication.throttled.replicas", ""),
        ("message.timestamp.difference.max.ms", "3600000"),
    ];
    assert_eq!(create_topic_code(&s.broker, "t", 1, &settings)?, 0);
    let config = s.log().describe_topic("t")?.config.to_properties();
    assert_eq!(config["min.insync.replicas"], "2");
    assert_eq!(config["preallocate"], "true");
    // Kafka's refusals stay: an unknown name, a bad value, more than one replica.
    assert_eq!(
        create_topic_code(&s.broker, "u", 1, &[("min.insync.replica", "2")])?,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        create_topic_code(&s.broker, "u", 1, &[("min.insync.replicas", "0")])?,
        40,
        "INVALID_CONFIG"
    );
    assert_eq!(
        create_topic_code(&s.broker, "u", 3, &settings)?,
        38,
        "INVALID_REPLICATION_FACTOR"
    );
    // The helper's batches carry a 2023 timestamp: out of the topic's one-hour window.
    let old = batch(Compression::None, &[(None, "v")])?;
    assert_eq!(
        produce_code(&s.broker, "t", &old)?.0,
        32,
        "INVALID_TIMESTAMP"
    );
    assert_eq!(s.log().partition("t", 0)?.log_end_offset(), 0);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Admin APIs: each served from the library, with Kafka's rules and error codes.

mod admin_apis {
    use super::*;
    use kafka_protocol::messages::{
        AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest,
        CreatePartitionsResponse, DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest,
        DeleteRecordsResponse, DescribeClusterRequest, DescribeClusterResponse,
        DescribeConfigsRequest, DescribeConfigsResponse, DescribeGroupsRequest,
        DescribeGroupsResponse, GroupId, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, ListGroupsRequest, ListGroupsResponse,
        OffsetDeleteRequest, OffsetDeleteResponse, alter_configs_request,
        create_partitions_request, delete_records_request, describe_configs_request,
        describe_configs_response::DescribeConfigsResult, incremental_alter_configs_request,
        offset_delete_request,
    };
    use topiclog::{Assignment, Consumer, ConsumerConfig, OffsetAndMetadata};

    fn name(s: &str) -> StrBytes {
        StrBytes::from_string(s.to_owned())
    }

    /// An in-process member of `group` subscribed to `topic`, polled until it holds
    /// `partitions` partitions (the group is then Stable).
    fn member(log: &Log, group: &str, topic: &str, partitions: usize) -> TestResult<Consumer> {
        let mut cfg = ConsumerConfig::group(group);
        cfg.enable_auto_commit = false;
        let mut c = log.consumer(cfg)?;
        c.subscribe(&[topic])?;
        for _ in 0..400 {
            c.poll(Duration::from_millis(10))?;
            if c.assignment().len() == partitions {
                return Ok(c);
            }
        }
        Err(format!("the member never got {partitions} partitions").into())
    }

    fn commit(log: &Log, group: &str, tps: &[(&str, i32, i64)]) -> TestResult {
        let commits: Vec<_> = tps
            .iter()
            .map(|&(t, p, o)| (TopicPartition::new(t, p), OffsetAndMetadata::new(o)))
            .collect();
        log.commit_group_offsets(group, "", -1, &commits)?;
        Ok(())
    }

    #[test]
    fn list_groups_and_describe_groups_show_state_members_and_assignments() -> TestResult {
        let s = Server::start()?;
        s.log().create_topic("t", 2)?;
        commit(s.log(), "idle", &[("t", 0, 1)])?;
        let c = member(s.log(), "busy", "t", 2)?;

        let mut req = ListGroupsRequest::default();
        let resp: ListGroupsResponse = call(&s.broker, ApiKey::ListGroups, 5, &req)?;
        let listed: Vec<(String, String, String, String)> = resp
            .groups
            .iter()
            .map(|g| {
                (
                    g.group_id.0.to_string(),
                    g.protocol_type.to_string(),
                    g.group_state.to_string(),
                    g.group_type.to_string(),
                )
            })
            .collect();
        assert_eq!(resp.error_code, 0);
        assert_eq!(
            listed,
            [
                (
                    "busy".into(),
                    "consumer".into(),
                    "Stable".into(),
                    "classic".into()
                ),
                (
                    "idle".into(),
                    String::new(),
                    "Empty".into(),
                    "classic".into()
                ),
            ]
        );
        req.states_filter = vec![name("empty")];
        let resp: ListGroupsResponse = call(&s.broker, ApiKey::ListGroups, 4, &req)?;
        assert_eq!(resp.groups.len(), 1);
        assert_eq!(resp.groups[0].group_id.0.as_str(), "idle");
        // v0 has no state: every group is listed.
        let resp: ListGroupsResponse = call(
            &s.broker,
            ApiKey::ListGroups,
            0,
            &ListGroupsRequest::default(),
        )?;
        assert_eq!(resp.groups.len(), 2);

        let mut req = DescribeGroupsRequest::default();
        req.groups = vec![GroupId(name("busy")), GroupId(name("nobody"))];
        let resp: DescribeGroupsResponse = call(&s.broker, ApiKey::DescribeGroups, 5, &req)?;
        let busy = &resp.groups[0];
        assert_eq!(busy.error_code, 0);
        assert_eq!(busy.group_state.as_str(), "Stable");
        assert_eq!(busy.protocol_type.as_str(), "consumer");
        assert!(!busy.protocol_data.is_empty());
        assert_eq!(busy.members.len(), 1);
        let assigned = Assignment::decode(&busy.members[0].member_assignment)?.partitions;
        assert_eq!(assigned.len(), 2);
        assert_eq!(
            topiclog::Subscription::decode(&busy.members[0].member_metadata)?.topics,
            ["t"]
        );
        // Kafka describes a group it does not know as Dead, without an error.
        assert_eq!(resp.groups[1].error_code, 0);
        assert_eq!(resp.groups[1].group_state.as_str(), "Dead");
        c.close()?;
        Ok(())
    }

    #[test]
    fn delete_groups_refuses_a_group_with_members_and_deletes_an_empty_one() -> TestResult {
        let s = Server::start()?;
        s.log().create_topic("t", 1)?;
        commit(s.log(), "g", &[("t", 0, 3)])?;
        let c = member(s.log(), "g", "t", 1)?;
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![GroupId(name("g")), GroupId(name("nobody"))];
        let resp: DeleteGroupsResponse = call(&s.broker, ApiKey::DeleteGroups, 2, &req)?;
        assert_eq!(resp.results[0].error_code, 68, "NON_EMPTY_GROUP");
        assert_eq!(resp.results[1].error_code, 69, "GROUP_ID_NOT_FOUND");
        assert!(s.log().list_groups().contains(&"g".to_owned()));
        c.close()?;
        let resp: DeleteGroupsResponse = call(&s.broker, ApiKey::DeleteGroups, 0, &req)?;
        assert_eq!(resp.results[0].error_code, 0);
        assert!(!s.log().list_groups().contains(&"g".to_owned()));
        assert_eq!(
            s.log().committed_offsets("g", None),
            Vec::<(TopicPartition, Option<OffsetAndMetadata>)>::new()
        );
        Ok(())
    }

    fn offset_delete_request(group: &str, topics: &[(&str, i32)]) -> OffsetDeleteRequest {
        let mut req = OffsetDeleteRequest::default();
        req.group_id = GroupId(name(group));
        for &(t, p) in topics {
            let mut pr = offset_delete_request::OffsetDeleteRequestPartition::default();
            pr.partition_index = p;
            let mut tr = offset_delete_request::OffsetDeleteRequestTopic::default();
            tr.name = TopicName(name(t));
            tr.partitions = vec![pr];
            req.topics.push(tr);
        }
        req
    }

    #[test]
    fn offset_delete_refuses_a_subscribed_topic_and_deletes_the_others() -> TestResult {
        let s = Server::start()?;
        s.log().create_topic("read", 1)?;
        s.log().create_topic("old", 1)?;
        commit(s.log(), "g", &[("read", 0, 1), ("old", 0, 2)])?;
        let c = member(s.log(), "g", "read", 1)?;
        let req = offset_delete_request("g", &[("read", 0), ("old", 0), ("missing", 0)]);
        let resp: OffsetDeleteResponse = call(&s.broker, ApiKey::OffsetDelete, 0, &req)?;
        assert_eq!(resp.error_code, 0);
        let codes: Vec<(String, i16)> = resp
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partitions[0].error_code))
            .collect();
        assert_eq!(
            codes,
            [
                ("read".to_owned(), 86), // GROUP_SUBSCRIBED_TO_TOPIC
                ("old".to_owned(), 0),
                ("missing".to_owned(), 3), // UNKNOWN_TOPIC_OR_PARTITION
            ]
        );
        let left: Vec<String> = s
            .log()
            .committed_offsets("g", None)
            .into_iter()
            .map(|(tp, _)| tp.topic)
            .collect();
        assert_eq!(left, ["read"]);
        c.close()?;
        let req = offset_delete_request("nobody", &[("read", 0)]);
        let resp: OffsetDeleteResponse = call(&s.broker, ApiKey::OffsetDelete, 0, &req)?;
        assert_eq!(resp.error_code, 69, "GROUP_ID_NOT_FOUND");
        let req = offset_delete_request("", &[("read", 0)]);
        let resp: OffsetDeleteResponse = call(&s.broker, ApiKey::OffsetDelete, 0, &req)?;
        assert_eq!(resp.error_code, 24, "INVALID_GROUP_ID");
        Ok(())
    }

    fn describe_configs(
        s: &Server,
        resource_type: i8,
        resource: &str,
        keys: Option<&[&str]>,
    ) -> TestResult<DescribeConfigsResult> {
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = resource_type;
        res.resource_name = name(resource);
        res.configuration_keys = keys.map(|k| k.iter().map(|k| name(k)).collect());
        let mut req = DescribeConfigsRequest::default();
        req.resources = vec![res];
        req.include_synonyms = true;
        let resp: DescribeConfigsResponse = call(&s.broker, ApiKey::DescribeConfigs, 4, &req)?;
        Ok(resp.results.into_iter().next().ok_or("no result")?)
    }

    /// name -> (value, source, read-only)
    fn entries(r: &DescribeConfigsResult) -> BTreeMap<String, (String, i8, bool)> {
        r.configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    (
                        c.value
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        c.config_source,
                        c.read_only,
                    ),
                )
            })
            .collect()
    }

    #[test]
    fn describe_configs_answers_for_a_topic_and_for_the_broker() -> TestResult {
        let s = Server::start()?;
        s.log()
            .create_topic_with("t", 1, TopicConfig::new().with("retention.ms", "60000")?)?;

        let topic = describe_configs(&s, 2, "t", None)?;
        assert_eq!(topic.error_code, 0);
        let e = entries(&topic);
        // Set on the topic: TOPIC_CONFIG (1); left at Kafka's default: DEFAULT_CONFIG (5).
        assert_eq!(e["retention.ms"], ("60000".into(), 1, false));
        assert_eq!(e["segment.bytes"], ((1u32 << 30).to_string(), 5, false));
        assert_eq!(e["cleanup.policy"], ("delete".into(), 5, false));
        let type_of = |key: &str| {
            topic
                .configs
                .iter()
                .find(|c| c.name.as_str() == key)
                .map(|c| c.config_type)
        };
        // Kafka's config types: LONG 5, INT 3, LIST 7.
        assert_eq!(
            (
                type_of("retention.ms"),
                type_of("segment.bytes"),
                type_of("cleanup.policy")
            ),
            (Some(5), Some(3), Some(7))
        );
        let synonyms: Vec<String> = topic
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .ok_or("no retention.ms")?
            .synonyms
            .iter()
            .map(|y| y.name.to_string())
            .collect();
        assert_eq!(synonyms, ["retention.ms", "log.retention.ms"]);
        let some = describe_configs(&s, 2, "t", Some(&["cleanup.policy", "no.such.key"]))?;
        assert_eq!(
            entries(&some).keys().collect::<Vec<_>>(),
            ["cleanup.policy"]
        );
        assert_eq!(describe_configs(&s, 2, "missing", None)?.error_code, 3);

        let broker = describe_configs(&s, 4, "0", None)?;
        assert_eq!(broker.error_code, 0);
        let e = entries(&broker);
        assert_eq!(e["broker.id"], ("0".into(), 4, true));
        assert_eq!(e["log.retention.ms"].0, "-1");
        assert_eq!(e["log.segment.bytes"].0, (1u32 << 30).to_string());
        assert_eq!(e["message.max.bytes"].0, "1048588");
        assert_eq!(e["num.partitions"].0, "1");
        assert_eq!(
            e["advertised.listeners"].0,
            format!("PLAINTEXT://127.0.0.1:{}", s.addr.port())
        );
        // The cluster-wide dynamic defaults: none. Another broker id: INVALID_REQUEST.
        let cluster = describe_configs(&s, 4, "", None)?;
        assert_eq!((cluster.error_code, cluster.configs.len()), (0, 0));
        assert_eq!(describe_configs(&s, 4, "7", None)?.error_code, 42);
        Ok(())
    }

    fn incremental(
        s: &Server,
        topic: &str,
        ops: &[(&str, i8, Option<&str>)],
        validate_only: bool,
    ) -> TestResult<i16> {
        let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = name(topic);
        for &(k, op, v) in ops {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = name(k);
            c.config_operation = op;
            c.value = v.map(name);
            res.configs.push(c);
        }
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![res];
        req.validate_only = validate_only;
        let resp: IncrementalAlterConfigsResponse =
            call(&s.broker, ApiKey::IncrementalAlterConfigs, 1, &req)?;
        Ok(resp.responses[0].error_code)
    }

    #[test]
    fn incremental_alter_configs_sets_deletes_appends_and_refuses_bad_input() -> TestResult {
        let s = Server::start()?;
        s.log().create_topic("t", 1)?;
        let config =
            |s: &Server| -> TestResult<TopicConfig> { Ok(s.log().describe_topic("t")?.config) };

        assert_eq!(
            incremental(&s, "t", &[("retention.ms", 0, Some("5000"))], false)?,
            0
        );
        assert_eq!(config(&s)?.retention_ms, Some(5000));
        // Validate only: checked, not applied.
        assert_eq!(
            incremental(&s, "t", &[("retention.ms", 0, Some("7000"))], true)?,
            0
        );
        assert_eq!(config(&s)?.retention_ms, Some(5000));
        // DELETE goes back to the default.
        assert_eq!(
            incremental(&s, "t", &[("retention.ms", 1, None)], false)?,
            0
        );
        assert_eq!(config(&s)?.retention_ms, None);
        // APPEND and SUBTRACT on a LIST config.
        assert_eq!(
            incremental(&s, "t", &[("cleanup.policy", 2, Some("compact"))], false)?,
            0
        );
        assert_eq!(
            config(&s)?.cleanup_policy,
            topiclog::CleanupPolicy::CompactDelete
        );
        assert_eq!(
            incremental(&s, "t", &[("cleanup.policy", 3, Some("delete"))], false)?,
            0
        );
        assert_eq!(config(&s)?.cleanup_policy, topiclog::CleanupPolicy::Compact);
        // Refused, and nothing changes: APPEND to a non-list, a bad value, an unknown key
        // (INVALID_CONFIG); a key twice (INVALID_REQUEST); an unknown topic.
        let before = config(&s)?;
        assert_eq!(
            incremental(&s, "t", &[("retention.ms", 2, Some("1"))], false)?,
            40
        );
        assert_eq!(
            incremental(
                &s,
                "t",
                &[
                    ("retention.ms", 0, Some("1")),
                    ("segment.bytes", 0, Some("no"))
                ],
                false
            )?,
            40
        );
        assert_eq!(
            incremental(&s, "t", &[("no.such.key", 0, Some("1"))], false)?,
            40
        );
        assert_eq!(
            incremental(
                &s,
                "t",
                &[("retention.ms", 0, Some("1")), ("retention.ms", 1, None)],
                false
            )?,
            42
        );
        assert_eq!(config(&s)?, before);
        assert_eq!(
            incremental(&s, "missing", &[("retention.ms", 0, Some("1"))], false)?,
            3
        );
        Ok(())
    }

    #[test]
    fn alter_configs_replaces_the_whole_set_of_a_topics_configs() -> TestResult {
        let s = Server::start()?;
        s.log()
            .create_topic_with("t", 1, TopicConfig::new().with("retention.ms", "60000")?)?;
        let alter = |configs: &[(&str, &str)]| -> TestResult<i16> {
            let mut res = alter_configs_request::AlterConfigsResource::default();
            res.resource_type = 2;
            res.resource_name = name("t");
            for &(k, v) in configs {
                let mut c = alter_configs_request::AlterableConfig::default();
                c.name = name(k);
                c.value = Some(name(v));
                res.configs.push(c);
            }
            let mut req = AlterConfigsRequest::default();
            req.resources = vec![res];
            let resp: AlterConfigsResponse = call(&s.broker, ApiKey::AlterConfigs, 2, &req)?;
            Ok(resp.responses[0].error_code)
        };
        assert_eq!(alter(&[("cleanup.policy", "compact")])?, 0);
        let c = s.log().describe_topic("t")?.config;
        assert_eq!(c.cleanup_policy, topiclog::CleanupPolicy::Compact);
        assert_eq!(
            c.retention_ms, None,
            "a key not given returns to its default"
        );
        assert_eq!(alter(&[("segment.bytes", "12")])?, 40);
        assert_eq!(s.log().describe_topic("t")?.config, c);
        Ok(())
    }

    fn create_partitions(
        s: &Server,
        topic: &str,
        count: i32,
        validate_only: bool,
    ) -> TestResult<i16> {
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = TopicName(name(topic));
        t.count = count;
        t.assignments = None; // as clients send it: the broker places the new partitions
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 1000;
        req.validate_only = validate_only;
        let resp: CreatePartitionsResponse = call(&s.broker, ApiKey::CreatePartitions, 3, &req)?;
        Ok(resp.results[0].error_code)
    }

    #[test]
    fn create_partitions_only_increases() -> TestResult {
        let s = Server::start()?;
        s.log().create_topic("t", 1)?;
        assert_eq!(create_partitions(&s, "t", 3, false)?, 0);
        assert_eq!(s.log().partition_count("t")?, 3);
        s.log().append("t", 2, &[Record::new("new partition")])?;
        assert_eq!(create_partitions(&s, "t", 5, true)?, 0);
        assert_eq!(
            s.log().partition_count("t")?,
            3,
            "validate only changes nothing"
        );
        assert_eq!(
            create_partitions(&s, "t", 2, false)?,
            37,
            "INVALID_PARTITIONS"
        );
        assert_eq!(
            create_partitions(&s, "t", 3, false)?,
            37,
            "INVALID_PARTITIONS"
        );
        assert_eq!(s.log().partition_count("t")?, 3);
        assert_eq!(create_partitions(&s, "missing", 2, false)?, 3);
        // Replica assignments name broker 0 only, one per new partition.
        let place = |brokers: &[Vec<i32>]| -> TestResult<i16> {
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = TopicName(name("t"));
            t.count = 4;
            t.assignments = Some(
                brokers
                    .iter()
                    .map(|ids| {
                        let mut a =
                            create_partitions_request::CreatePartitionsAssignment::default();
                        a.broker_ids = ids
                            .iter()
                            .map(|&i| kafka_protocol::messages::BrokerId(i))
                            .collect();
                        a
                    })
                    .collect(),
            );
            let mut req = CreatePartitionsRequest::default();
            req.topics = vec![t];
            let resp: CreatePartitionsResponse =
                call(&s.broker, ApiKey::CreatePartitions, 1, &req)?;
            Ok(resp.results[0].error_code)
        };
        assert_eq!(place(&[vec![1]])?, 39, "INVALID_REPLICA_ASSIGNMENT");
        assert_eq!(
            place(&[vec![0], vec![0]])?,
            39,
            "INVALID_REPLICA_ASSIGNMENT"
        );
        assert_eq!(place(&[vec![0]])?, 0);
        assert_eq!(s.log().partition_count("t")?, 4);
        Ok(())
    }

    #[test]
    fn delete_records_moves_the_log_start_and_refuses_beyond_the_end() -> TestResult {
        let s = Server::start()?;
        s.log().create_topic("t", 1)?;
        let p = s.log().partition("t", 0)?;
        for i in 0..10 {
            p.append(&[Record::new(format!("r{i}"))])?;
        }
        p.flush()?;
        let delete = |offset: i64| -> TestResult<(i16, i64)> {
            let mut dp = delete_records_request::DeleteRecordsPartition::default();
            dp.partition_index = 0;
            dp.offset = offset;
            let mut dt = delete_records_request::DeleteRecordsTopic::default();
            dt.name = TopicName(name("t"));
            dt.partitions = vec![dp];
            let mut req = DeleteRecordsRequest::default();
            req.topics = vec![dt];
            req.timeout_ms = 1000;
            let resp: DeleteRecordsResponse = call(&s.broker, ApiKey::DeleteRecords, 2, &req)?;
            let r = &resp.topics[0].partitions[0];
            Ok((r.error_code, r.low_watermark))
        };
        assert_eq!(delete(4)?, (0, 4));
        assert_eq!(p.log_start_offset(), 4);
        assert_eq!(all_records(s.log(), "t", 0)?[0].offset, 4);
        assert_eq!(delete(11)?, (1, -1), "OFFSET_OUT_OF_RANGE");
        assert_eq!(p.log_start_offset(), 4);
        assert_eq!(delete(-1)?, (0, 10), "-1 is the high watermark");
        assert_eq!(p.log_start_offset(), 10);
        Ok(())
    }

    #[test]
    fn describe_cluster_gives_the_broker_metadata_gives() -> TestResult {
        let s = Server::start()?;
        let resp: DescribeClusterResponse = call(
            &s.broker,
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default(),
        )?;
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.cluster_id.as_str(), "topiclog");
        let b = &resp.brokers[0];
        assert_eq!(
            (b.broker_id.0, b.host.as_str(), b.port),
            (0, "127.0.0.1", i32::from(s.addr.port()))
        );
        let mut m = MetadataRequest::default();
        m.topics = Some(Vec::new());
        let meta: MetadataResponse = call(&s.broker, ApiKey::Metadata, 12, &m)?;
        assert_eq!(
            meta.cluster_id.as_ref().map(StrBytes::as_str),
            Some("topiclog")
        );
        assert_eq!(meta.brokers[0].host, b.host);
        // Only the brokers endpoint is served here.
        let mut req = DescribeClusterRequest::default();
        req.endpoint_type = 2;
        let resp: DescribeClusterResponse = call(&s.broker, ApiKey::DescribeCluster, 1, &req)?;
        assert_eq!(resp.error_code, 114, "MISMATCHED_ENDPOINT_TYPE");
        Ok(())
    }

    #[test]
    fn list_offsets_max_timestamp_gives_the_newest_records_offset() -> TestResult {
        let s = Server::start()?;
        s.log().create_topic("t", 1)?;
        let p = s.log().partition("t", 0)?;
        let ask = || -> TestResult<(i16, i64, i64)> {
            let mut lp = list_offsets_request::ListOffsetsPartition::default();
            lp.timestamp = -3;
            let mut lt = list_offsets_request::ListOffsetsTopic::default();
            lt.name = TopicName(name("t"));
            lt.partitions = vec![lp];
            let mut req = ListOffsetsRequest::default();
            req.replica_id = kafka_protocol::messages::BrokerId(-1);
            req.topics = vec![lt];
            let resp: ListOffsetsResponse = call(&s.broker, ApiKey::ListOffsets, 7, &req)?;
            let r = &resp.topics[0].partitions[0];
            Ok((r.error_code, r.offset, r.timestamp))
        };
        assert_eq!(ask()?, (0, -1, -1), "an empty partition");
        p.append(&[
            Record::new("a").timestamp(1_000),
            Record::new("b").timestamp(9_000),
            Record::new("c").timestamp(3_000),
        ])?;
        p.append(&[Record::new("d").timestamp(2_000)])?;
        p.flush()?;
        assert_eq!(ask()?, (0, 1, 9_000));
        Ok(())
    }

    /// Adds the admin APIs' seeds to the `kafka_frame` fuzz target's corpus (one valid
    /// request each; `fuzz_seed_frames_are_answered` replays them). Run with
    /// `cargo test --test kafka_adapter -- --ignored write_admin_fuzz_seeds`.
    #[test]
    #[ignore = "adds to fuzz/corpus/kafka_frame"]
    fn write_admin_fuzz_seeds() -> TestResult {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/kafka_frame");
        std::fs::create_dir_all(&dir)?;
        let write = |name: &str, f: Bytes| std::fs::write(dir.join(name), &f);
        let mut lg = ListGroupsRequest::default();
        lg.states_filter = vec![name("Stable")];
        write("list-groups-v5", frame(ApiKey::ListGroups, 5, 1, &lg)?)?;
        let mut dg = DescribeGroupsRequest::default();
        dg.groups = vec![GroupId(name("g"))];
        write(
            "describe-groups-v5",
            frame(ApiKey::DescribeGroups, 5, 1, &dg)?,
        )?;
        let mut del = DeleteGroupsRequest::default();
        del.groups_names = vec![GroupId(name("g"))];
        write("delete-groups-v2", frame(ApiKey::DeleteGroups, 2, 1, &del)?)?;
        let od = offset_delete_request("g", &[("fuzz", 0)]);
        write("offset-delete-v0", frame(ApiKey::OffsetDelete, 0, 1, &od)?)?;
        let mut res = describe_configs_request::DescribeConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = name("fuzz");
        let mut broker_res = describe_configs_request::DescribeConfigsResource::default();
        broker_res.resource_type = 4;
        broker_res.resource_name = name("0");
        let mut dc = DescribeConfigsRequest::default();
        dc.resources = vec![res, broker_res];
        dc.include_synonyms = true;
        write(
            "describe-configs-v4",
            frame(ApiKey::DescribeConfigs, 4, 1, &dc)?,
        )?;
        let mut c = alter_configs_request::AlterableConfig::default();
        c.name = name("retention.ms");
        c.value = Some(name("60000"));
        let mut ar = alter_configs_request::AlterConfigsResource::default();
        ar.resource_type = 2;
        ar.resource_name = name("other");
        ar.configs = vec![c];
        let mut ac = AlterConfigsRequest::default();
        ac.resources = vec![ar];
        write("alter-configs-v2", frame(ApiKey::AlterConfigs, 2, 1, &ac)?)?;
        let mut ic = incremental_alter_configs_request::AlterableConfig::default();
        ic.name = name("cleanup.policy");
        ic.config_operation = 2;
        ic.value = Some(name("compact"));
        let mut ir = incremental_alter_configs_request::AlterConfigsResource::default();
        ir.resource_type = 2;
        ir.resource_name = name("other");
        ir.configs = vec![ic];
        let mut inc = IncrementalAlterConfigsRequest::default();
        inc.resources = vec![ir];
        inc.validate_only = true;
        write(
            "incremental-alter-configs-v1",
            frame(ApiKey::IncrementalAlterConfigs, 1, 1, &inc)?,
        )?;
        let mut t = create_partitions_request::CreatePartitionsTopic::default();
        t.name = TopicName(name("other"));
        t.count = 2;
        t.assignments = None;
        let mut cp = CreatePartitionsRequest::default();
        cp.topics = vec![t];
        cp.validate_only = true;
        write(
            "create-partitions-v3",
            frame(ApiKey::CreatePartitions, 3, 1, &cp)?,
        )?;
        let mut dp = delete_records_request::DeleteRecordsPartition::default();
        dp.partition_index = 1;
        dp.offset = 0;
        let mut dt = delete_records_request::DeleteRecordsTopic::default();
        dt.name = TopicName(name("fuzz"));
        dt.partitions = vec![dp];
        let mut dr = DeleteRecordsRequest::default();
        dr.topics = vec![dt];
        write(
            "delete-records-v2",
            frame(ApiKey::DeleteRecords, 2, 1, &dr)?,
        )?;
        write(
            "describe-cluster-v1",
            frame(
                ApiKey::DescribeCluster,
                1,
                1,
                &DescribeClusterRequest::default(),
            )?,
        )?;
        let mut lp = list_offsets_request::ListOffsetsPartition::default();
        lp.timestamp = -3;
        let mut lt = list_offsets_request::ListOffsetsTopic::default();
        lt.name = TopicName(name("fuzz"));
        lt.partitions = vec![lp];
        let mut lo = ListOffsetsRequest::default();
        lo.replica_id = kafka_protocol::messages::BrokerId(-1);
        lo.topics = vec![lt];
        write(
            "list-offsets-max-timestamp-v7",
            frame(ApiKey::ListOffsets, 7, 1, &lo)?,
        )?;
        Ok(())
    }
}
