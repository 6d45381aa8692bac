//! Push throughput: `topiclog::mirror::push` copying records from a local log to a broker,
//! beside librdkafka (the same client library, through rdkafka's `BaseProducer`) producing the
//! same records from memory to the same broker, with the same settings (`linger.ms=5`,
//! `batch.size=1000000`, `compression.type=lz4`, idempotent), alternating rounds in one run:
//! - `memory`: the records are in a `Vec`; a new idempotent producer sends each with its
//!   partition and timestamp, then flushes (the clock starts before the producer is made);
//! - `push (idempotent)`: `mirror::push` with `ExactlyOnce::Disabled` until the end;
//! - `push (exactly once)`: `mirror::push` in transactions of up to 500,000 records (10 s),
//!   with their offset syncs.
//!
//! Each round writes to a new topic (created before the clock starts, 3 partitions) and,
//! for the pushes, a new alias (so a push starts from nothing). The pushes' times include
//! connecting, reading the offset syncs and creating the producer.
//!
//! Records: `TOPICLOG_MIRROR_BENCH_RECORDS` (default 2,000,000: long enough that librdkafka's timers,
//! 100 ms in a flush, and a push's setup are a small part of a round) of a 10-byte key and a 100-byte
//! value. Broker: `TOPICLOG_MIRROR_BENCH_BOOTSTRAP=HOST:PORT`, else this project's
//! Kafka-protocol server (`examples/kafka_server`) in this process on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

#[path = "../examples/kafka_server/alloc.rs"]
mod alloc;
#[path = "../examples/kafka_server/broker.rs"]
mod broker;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use topiclog::mirror::{self, ExactlyOnce, MirrorConfig};
use topiclog::{Log, LogOptions, ProducerConfig, ProducerRecord, Record};

#[global_allocator]
static ALLOC: alloc::SparseHuge = alloc::SparseHuge;

const SETTINGS: [(&str, &str); 3] = [
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("compression.type", "lz4"),
];
const PARTITIONS: i32 = 3;
const ROUNDS: usize = 5;

fn records() -> usize {
    std::env::var("TOPICLOG_MIRROR_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000)
}

struct Rec {
    key: Vec<u8>,
    value: Vec<u8>,
    partition: i32,
    timestamp: i64,
}

fn corpus(n: usize) -> Vec<Rec> {
    let mut x: u64 = 7;
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let value: Vec<u8> = (0..100)
                .map(|j| b'a' + ((x >> (j % 56)) as u8 % 26))
                .collect();
            Rec {
                key: format!("key-{:06}", i % 100_000).into_bytes(),
                value,
                partition: (i % PARTITIONS as usize) as i32,
                timestamp: 1_700_000_000_000 + i as i64,
            }
        })
        .collect()
}

fn create(admin: &AdminClient<DefaultClientContext>, topic: &str) {
    let t = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let r = futures_executor::block_on(admin.create_topics([&t], &opts)).unwrap();
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    // Until the metadata shows it.
    for _ in 0..200 {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .unwrap();
        if md
            .topics()
            .iter()
            .any(|t| t.partitions().len() == PARTITIONS as usize)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{topic} not created");
}

fn from_memory(bootstrap: &str, topic: &str, recs: &[Rec]) -> Duration {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true");
    for (k, v) in SETTINGS {
        c.set(k, v);
    }
    // From a new producer, as a push starts one: both pay librdkafka's start (an idempotent
    // producer's id arrives some 500 ms after its first try finds no broker up).
    let started = Instant::now();
    let producer: BaseProducer = c.create().unwrap();
    for (i, r) in recs.iter().enumerate() {
        let mut rec = BaseRecord::to(topic)
            .key(&r.key[..])
            .payload(&r.value[..])
            .partition(r.partition)
            .timestamp(r.timestamp);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("{e}"),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_mins(2)).unwrap();
    started.elapsed()
}

fn push(bootstrap: &str, log: &Log, alias: &str, exactly_once: bool) -> Duration {
    let mut cfg = MirrorConfig::new(bootstrap);
    cfg.topics = "bench".into();
    cfg.alias = Some(alias.into());
    cfg.until_end = true;
    cfg.exactly_once = if exactly_once {
        ExactlyOnce::Required
    } else {
        ExactlyOnce::Disabled
    };
    cfg.transaction_records = 500_000;
    cfg.transaction_interval = Duration::from_secs(10);
    cfg.producer_properties = SETTINGS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let started = Instant::now();
    let report = mirror::push(log, &cfg).unwrap();
    let took = started.elapsed();
    assert_eq!(report.records as usize, records(), "{report}");
    assert_eq!(report.exactly_once, exactly_once, "{:?}", report.warnings);
    took
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("mirror_push: benchmark");
        return;
    }
    let n = records();
    let _server;
    let bootstrap = if let Ok(b) = std::env::var("TOPICLOG_MIRROR_BENCH_BOOTSTRAP") {
        b
    } else {
        let dir = tempfile::tempdir().unwrap();
        let log = LogOptions::new().open(dir.path()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let broker = broker::Broker::new(
            log,
            broker::BrokerConfig {
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
        _server = (broker, dir);
        addr.to_string()
    };
    let recs = corpus(n);
    let src_dir = tempfile::tempdir().unwrap();
    let src = Log::open(src_dir.path()).unwrap();
    src.create_topic("bench", PARTITIONS).unwrap();
    let producer = src.producer(ProducerConfig::default()).unwrap();
    for r in &recs {
        producer
            .send_async(ProducerRecord {
                topic: "bench".into(),
                partition: Some(r.partition),
                record: Record::new(r.value.clone())
                    .key(r.key.clone())
                    .timestamp(r.timestamp),
            })
            .unwrap();
    }
    producer.close().unwrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    let run = std::process::id();
    println!(
        "mirror push: {n} records of 110 bytes, {PARTITIONS} partitions, broker {bootstrap}, settings {SETTINGS:?}"
    );
    let (mut mem, mut idem, mut eos) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // The three take turns going first.
        let (mut m, mut i, mut e) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    let topic = format!("memory-{run}-{round}");
                    create(&admin, &topic);
                    m = from_memory(&bootstrap, &topic, &recs);
                }
                1 => {
                    let alias = format!("idem{run}r{round}");
                    create(&admin, &format!("{alias}.bench"));
                    i = push(&bootstrap, &src, &alias, false);
                }
                _ => {
                    let alias = format!("eos{run}r{round}");
                    create(&admin, &format!("{alias}.bench"));
                    e = push(&bootstrap, &src, &alias, true);
                }
            }
        }
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!(
            "round {round}: memory {:>10.0} records/s  push (idempotent) {:>10.0}  push (exactly once) {:>10.0}",
            rate(m),
            rate(i),
            rate(e)
        );
        mem.push(rate(m));
        idem.push(rate(i));
        eos.push(rate(e));
    }
    let (m, i, e) = (median(&mut mem), median(&mut idem), median(&mut eos));
    println!(
        "median: memory {m:.0} records/s, push (idempotent) {i:.0} ({:.2}x), push (exactly once) {e:.0} ({:.2}x)",
        i / m,
        e / m
    );
}
