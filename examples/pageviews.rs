//! Page views per user per minute, each minute's final count once (tumbling windows with a
//! grace period, `suppress(until_window_closes)`), enriched with the user's name from a
//! table:
//!
//! ```sh
//! cargo run --example pageviews -- pageviews-data
//! ```
//!
//! Topics (created when missing): `users` (key: user id, value: name), `page-views` (key:
//! user id, value: page; the record's timestamp is the view's time) and
//! `views-per-minute` (key: user id, value: `<name>: <n> views in the minute from <HH:MM>`).
//! When `page-views` is empty it first writes a demo: three users, views over four minutes,
//! one of them out of order (inside the grace period, counted) and one too late (dropped).
//! It prints each result as it arrives and stops on Ctrl-C or SIGTERM, or with `--once`
//! when the demo's results are out.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use topiclog::streams::{
    BufferConfig, Consumed, Grouped, Materialized, Produced, Repartitioned, Serdes, Streams,
    StreamsBuilder, StreamsConfig, Suppressed, TimeWindows, Topology, Windowed,
};
use topiclog::{ConsumerConfig, Log, ProducerConfig, ProducerRecord, Result, TopicPartition};

const USAGE: &str = "usage: pageviews DIR [--once]";
const MINUTE: i64 = 60_000;

fn topology() -> Result<Topology> {
    let builder = StreamsBuilder::new();
    let users = builder.table(
        "users",
        Consumed::with(Serdes::string(), Serdes::string()),
        Materialized::named("users"),
    );
    builder
        .stream(
            "page-views",
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .group_by_key(Grouped::default())
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_mins(1),
            Duration::from_secs(10),
        ))
        .count(Materialized::named("views-per-minute"))
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()).with_name("final"))
        .to_stream()
        .map(|w: Windowed<String>, n: i64| {
            let minute = w.window.start / MINUTE % (24 * 60);
            (
                w.key,
                format!(
                    "{n} views in the minute from {:02}:{:02}",
                    minute / 60,
                    minute % 60
                ),
            )
        })
        .repartition(Repartitioned::with(Serdes::string(), Serdes::string()).named("by-user"))
        .left_join(&users, |views: &String, name: Option<&String>| {
            format!("{}: {views}", name.map_or("(unknown user)", String::as_str))
        })
        .to(
            "views-per-minute",
            Produced::with(Serdes::string(), Serdes::string()),
        );
    builder.build()
}

fn ensure_topic(log: &Log, name: &str) -> Result<()> {
    match log.create_topic(name, 1) {
        Ok(()) | Err(topiclog::Error::TopicAlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Users and four minutes of views; returns how many results the demo leads to.
fn write_demo(log: &Log) -> Result<usize> {
    let p = log.producer(ProducerConfig::default())?;
    for (id, name) in [("u1", "Ann"), ("u2", "Bob"), ("u3", "Cy")] {
        p.send(ProducerRecord::new("users", name).key(id))?;
    }
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(0);
    let t0 = (now / MINUTE - 5) * MINUTE;
    let views = [
        ("u1", "/", 1_000),
        ("u1", "/pricing", 20_000),
        ("u2", "/", 30_000),
        ("u1", "/docs", MINUTE + 2_000),
        // Out of order, inside the grace period of the first minute: counted there.
        ("u2", "/blog", 59_000),
        ("u3", "/", 2 * MINUTE + 5_000),
        // Too late for the first minute (its grace ended at 1:10): dropped.
        ("u1", "/late", 40_000),
        // Moves stream time past the third minute's close.
        ("u3", "/docs", 4 * MINUTE),
    ];
    for (user, page, at) in views {
        p.send(
            ProducerRecord::new("page-views", page)
                .key(user)
                .timestamp(t0 + at),
        )?;
    }
    p.close()?;
    // Minute 0: u1, u2; minute 1: u1; minute 2: u3.
    Ok(4)
}

fn run(dir: &str, once: bool) -> std::result::Result<(), String> {
    let log = Log::open(dir).map_err(|e| format!("cannot open {dir}: {e}"))?;
    for t in ["users", "page-views", "views-per-minute"] {
        ensure_topic(&log, t).map_err(|e| format!("cannot create {t}: {e}"))?;
    }
    let empty = log
        .partition("page-views", 0)
        .map(|p| p.log_end_offset() == 0)
        .map_err(|e| e.to_string())?;
    let expected = if empty {
        let n = write_demo(&log).map_err(|e| e.to_string())?;
        eprintln!("pageviews: wrote the demo's users and views");
        Some(n)
    } else {
        None
    };
    let mut streams = Streams::new(
        &log,
        topology().map_err(|e| e.to_string())?,
        StreamsConfig::new("pageviews").commit_interval(Duration::from_millis(200)),
    );
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }
    let out = log
        .partition("views-per-minute", 0)
        .map_err(|e| e.to_string())?;
    let mut consumer = log
        .consumer(ConsumerConfig::default())
        .map_err(|e| e.to_string())?;
    consumer
        .assign(&[TopicPartition::new("views-per-minute", 0)])
        .map_err(|e| e.to_string())?;
    consumer
        .seek(
            &TopicPartition::new("views-per-minute", 0),
            out.log_end_offset(),
        )
        .map_err(|e| e.to_string())?;
    streams.start().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut printed = 0;
    while !stop.load(Ordering::Acquire) {
        let polled = consumer
            .poll(Duration::from_millis(200))
            .map_err(|e| e.to_string())?;
        for r in &polled {
            let user = String::from_utf8_lossy(r.key().unwrap_or_default());
            let line = String::from_utf8_lossy(r.value().unwrap_or_default());
            println!("{user} {line}");
            printed += 1;
        }
        if once && expected.is_none_or(|n| printed >= n) {
            break;
        }
        if once && started.elapsed() > Duration::from_secs(30) {
            return Err("the demo's results did not all arrive within 30 s".into());
        }
    }
    eprintln!(
        "pageviews: {} late view(s) dropped",
        streams.dropped_records()
    );
    streams.close().map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, once) = match args.as_slice() {
        [dir] => (dir.as_str(), false),
        [dir, flag] if flag == "--once" => (dir.as_str(), true),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(dir, once) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pageviews: {e}");
            ExitCode::FAILURE
        }
    }
}
