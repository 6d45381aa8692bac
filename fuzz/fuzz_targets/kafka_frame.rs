//! Arbitrary request frames through the Kafka adapter's handler
//! (`examples/kafka_server/broker.rs`, the same module the server runs), over one log for
//! the whole fuzzing process. Whatever the bytes, the handler answers, stays silent or asks
//! to close the connection; it never panics, aborts or hangs.
//!
//! JoinGroup and SyncGroup frames are skipped: they block until other members act, which
//! one sequential input cannot do (the adapter's tests drive them with real clients).
//! CreateTopics and CreatePartitions are skipped so the log does not grow without bound over
//! millions of inputs.
//! Fetch long polls are capped at zero here.
#![no_main]

#[path = "../../examples/kafka_server/alloc.rs"]
mod alloc;
#[allow(dead_code)] // the connection helpers are the server's
#[path = "../../examples/kafka_server/broker.rs"]
mod broker;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use broker::{Broker, BrokerConfig, Reply};
use libfuzzer_sys::fuzz_target;
use topiclog::{LogOptions, Record};

#[global_allocator]
static ALLOC: alloc::SparseHuge = alloc::SparseHuge;

/// API keys not fuzzed (see the module documentation): CreateTopics, JoinGroup, SyncGroup,
/// CreatePartitions.
const SKIPPED: [i16; 4] = [19, 11, 14, 37];

fn broker() -> &'static Arc<Broker> {
    static BROKER: OnceLock<(Arc<Broker>, tempfile::TempDir)> = OnceLock::new();
    &BROKER
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = LogOptions::new()
                .flusher(None)
                .maintenance_interval(None)
                .open(dir.path())
                .expect("open log");
            for (name, partitions) in [("fuzz", 2), ("other", 1)] {
                log.create_topic(name, partitions).expect("create topic");
            }
            let p = log.partition("fuzz", 0).expect("partition");
            for i in 0..10 {
                p.append(&[Record::new(format!("value {i}")).key("k")])
                    .expect("append");
            }
            let broker = Broker::new(
                log,
                BrokerConfig {
                    host: "127.0.0.1".into(),
                    port: 9092,
                    auto_create_topics: false,
                    default_partitions: 1,
                    max_frame_bytes: 1 << 20,
                    max_fetch_wait: Duration::ZERO,
                },
            );
            (broker, dir)
        })
        .0
}

fuzz_target!(|data: &[u8]| {
    if let [a, b, ..] = data
        && SKIPPED.contains(&i16::from_be_bytes([*a, *b]))
    {
        return;
    }
    match broker().handle(bytes::Bytes::copy_from_slice(data)) {
        Reply::Send(body) => assert!(body.len() >= 4, "a response has a correlation id"),
        Reply::Nothing | Reply::Close(_) => {}
    }
});
