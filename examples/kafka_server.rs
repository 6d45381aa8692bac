//! A Kafka-protocol server over a topiclog directory: unmodified Kafka clients (kcat,
//! librdkafka, the Java client, kafka-python) produce to and consume from it, and share
//! consumer groups with in-process consumers of the same directory.
//!
//! ```sh
//! cargo run --release --example kafka_server -- --dir kafka-data
//! kcat -b 127.0.0.1:9092 -L
//! ```
//!
//! Options: `--listen ADDR` (default `127.0.0.1:9092`), `--advertise HOST:PORT` (what
//! clients are told to connect to; default the listen address), `--auto-create-topics`,
//! `--partitions N` (for auto-created topics, default 1), `--max-frame-bytes N` (default
//! 100 MiB, Kafka's `socket.request.max.bytes`).
//!
//! One thread per connection, requests answered in order. Single node: no replication, no
//! transactions, no SASL or TLS, no fetch sessions, no topic ids.

#[path = "kafka_server/alloc.rs"]
mod alloc;
#[path = "kafka_server/broker.rs"]
mod broker;

use std::net::TcpListener;
use std::process::ExitCode;

use broker::{Broker, BrokerConfig};

#[global_allocator]
static ALLOC: alloc::SparseHuge = alloc::SparseHuge;

const USAGE: &str = "usage: kafka_server --dir DIR [--listen 127.0.0.1:9092] \
[--advertise HOST:PORT] [--auto-create-topics] [--partitions N] [--max-frame-bytes N]";

struct Args {
    dir: String,
    listen: String,
    advertise: Option<String>,
    auto_create: bool,
    partitions: i32,
    max_frame_bytes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        dir: String::new(),
        listen: "127.0.0.1:9092".into(),
        advertise: None,
        auto_create: false,
        partitions: 1,
        max_frame_bytes: 100 * 1024 * 1024,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--dir" => args.dir = value("--dir")?,
            "--listen" => args.listen = value("--listen")?,
            "--advertise" => args.advertise = Some(value("--advertise")?),
            "--auto-create-topics" => args.auto_create = true,
            "--partitions" => {
                args.partitions = value("--partitions")?
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or("--partitions needs a positive number")?;
            }
            "--max-frame-bytes" => {
                args.max_frame_bytes = value("--max-frame-bytes")?
                    .parse()
                    .ok()
                    .filter(|n| *n >= 64)
                    .ok_or("--max-frame-bytes needs a number of at least 64")?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if args.dir.is_empty() {
        return Err("--dir is required".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("kafka_server: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let log = match topiclog::Log::open(&args.dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kafka_server: cannot open {}: {e}", args.dir);
            return ExitCode::FAILURE;
        }
    };
    let listener = match TcpListener::bind(&args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kafka_server: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| args.listen.clone(), |a| a.to_string());
    let advertise = args.advertise.unwrap_or_else(|| local.clone());
    let Some((host, port)) = advertise
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<i32>().ok()?)))
    else {
        eprintln!("kafka_server: '{advertise}' is not HOST:PORT");
        return ExitCode::from(2);
    };
    let broker = Broker::new(
        log,
        BrokerConfig {
            host,
            port,
            auto_create_topics: args.auto_create,
            default_partitions: args.partitions,
            max_frame_bytes: args.max_frame_bytes,
            max_fetch_wait: std::time::Duration::from_mins(5),
        },
    );
    println!(
        "serving {} on {local} (clients connect to {advertise})",
        args.dir
    );
    match broker::serve(broker, listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka_server: {e}");
            ExitCode::FAILURE
        }
    }
}
