//! Kafka Streams' WordCount on a topiclog directory: lines of `quickstart-events` →
//! lowercase, split on spaces → grouped by word → counted → `output-topic`, with `String`
//! keys and `i64` values in Kafka's `LongSerializer` format (8 bytes, big-endian).
//!
//! ```sh
//! cargo run --example quickstart -- quickstart-data          # writes quickstart-events
//! cargo run --example wordcount -- quickstart-data           # counts them, and new lines
//! ```
//!
//! It counts what `quickstart-events` holds and what arrives while it runs, exactly once (the
//! default guarantee: counts and input offsets commit together, every second); Ctrl-C or
//! SIGTERM makes the last commit, leaves no transaction open, and stops it. Read the counts
//! with `read_committed` (kcat's default). It owns the directory (a second writer is
//! refused), so to feed it from outside, serve the Kafka protocol from the same process:
//!
//! ```sh
//! cargo run --example wordcount -- quickstart-data --listen 127.0.0.1:9092
//! echo "all streams lead to kafka" | kcat -b 127.0.0.1:9092 -P -t quickstart-events
//! kcat -b 127.0.0.1:9092 -C -t output-topic -s value=Q -f '%k %s\n' -e
//! ```

#[path = "kafka_server/broker.rs"]
#[allow(dead_code)]
mod broker;
#[path = "wordcount/topology.rs"]
mod topology;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use topiclog::streams::{Streams, StreamsConfig};
use topiclog::{Log, Result};

const USAGE: &str = "usage: wordcount DIR [--listen 127.0.0.1:9092]";

fn ensure_topic(log: &Log, name: &str) -> Result<()> {
    match log.create_topic(name, 1) {
        Ok(()) | Err(topiclog::Error::TopicAlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn run(dir: &str, listen: Option<&str>) -> std::result::Result<(), String> {
    let log = Log::open(dir).map_err(|e| format!("cannot open {dir}: {e}"))?;
    for t in ["quickstart-events", "output-topic"] {
        ensure_topic(&log, t).map_err(|e| format!("cannot create {t}: {e}"))?;
    }
    // With --listen the broker owns the log; the topology runs on the same one.
    let holder = match listen {
        Some(addr) => {
            let listener =
                TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            let b = broker::Broker::new(
                log,
                broker::BrokerConfig {
                    host: local.ip().to_string(),
                    port: i32::from(local.port()),
                    auto_create_topics: false,
                    default_partitions: 1,
                    max_frame_bytes: 100 << 20,
                    max_fetch_wait: Duration::from_mins(5),
                },
            );
            let server = Arc::clone(&b);
            std::thread::spawn(move || {
                if let Err(e) = broker::serve(server, listener) {
                    eprintln!("wordcount: the Kafka listener stopped: {e}");
                }
            });
            eprintln!("wordcount: serving the Kafka protocol on {local}");
            Holder::Served(b)
        }
        None => Holder::Own(log),
    };
    let log = holder.log();
    let config = StreamsConfig::new("wordcount").commit_interval(Duration::from_secs(1));
    let mut streams = Streams::new(
        log,
        topology::wordcount("quickstart-events", "output-topic").map_err(|e| e.to_string())?,
        config,
    );
    streams.set_state_listener(|old, new| eprintln!("wordcount: {old:?} -> {new:?}"));
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    streams.start().map_err(|e| e.to_string())?;
    while !stop.load(Ordering::Acquire)
        && !matches!(
            streams.state(),
            topiclog::streams::StreamsState::Error | topiclog::streams::StreamsState::PendingError
        )
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    streams.close().map_err(|e| e.to_string())?;
    eprintln!("wordcount: stopped");
    Ok(())
}

/// The log: owned here, or by the Kafka-protocol broker serving it.
enum Holder {
    Own(Log),
    Served(Arc<broker::Broker>),
}

impl Holder {
    fn log(&self) -> &Log {
        match self {
            Holder::Own(l) => l,
            Holder::Served(b) => b.log(),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, listen) = match args.as_slice() {
        [dir] => (dir.clone(), None),
        [dir, flag, addr] if flag == "--listen" => (dir.clone(), Some(addr.clone())),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&dir, listen.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wordcount: {e}");
            ExitCode::FAILURE
        }
    }
}
