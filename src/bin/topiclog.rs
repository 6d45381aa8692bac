//! `topiclog`: manage and inspect a topiclog data directory from the shell — topics, console
//! produce and consume, consumer groups, perf tests and segment dumps, like Kafka's scripts.
//!
//! Output is for scripts: no header lines, tab-separated columns, `null` for null keys and
//! values, `-` for a missing commit, and `\t`, `\n`, `\r`, `\\` and `\xNN` escapes in keys and values
//! (`\xNN` for every other control byte, NUL included, and for bytes that are not UTF-8).

#![allow(
    // Rates are printed, not computed on: f64 precision is plenty.
    clippy::cast_precision_loss,
    clippy::many_single_char_names
)]

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::fmt::Write as _;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use topiclog::{
    Batch, Batches, Compression, ConsumerConfig, ControlRecord, Error, FlushPolicy, IsolationLevel,
    Log, LogOptions, OffsetReset, OffsetSpec, ProducerConfig, ProducerRecord, TopicConfig,
    TopicPartition, is_internal_topic,
};

#[derive(Parser)]
#[command(
    name = "topiclog",
    version,
    about = "Manage and inspect a topiclog data directory"
)]
struct Cli {
    /// The data directory.
    #[arg(long, global = true, default_value = ".")]
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topics(TopicsCmd),
    /// Append one record per stdin line. When a record fails, it stops and names the input
    /// lines that were acknowledged, so a retry can send exactly the others.
    Produce(ProduceArgs),
    /// Print records.
    Consume(ConsumeArgs),
    /// List, describe, reset and delete consumer groups.
    #[command(subcommand)]
    Groups(GroupsCmd),
    /// Measure produce or consume throughput.
    #[command(subcommand)]
    Perf(PerfCmd),
    /// Print the batches of a `.log` file (position, base and last offset, record count, bytes,
    /// codec, base and max timestamp, producer id, CRC check, transactional, control), or the
    /// entries of an `.index` / `.timeindex`. With `--records`, each record; a control batch's
    /// transaction marker as `endTxnMarker: COMMIT` or `ABORT` with its coordinator epoch.
    DumpLog(DumpArgs),
    /// Move data between topics and files (Kafka Connect).
    #[command(subcommand)]
    Connect(ConnectCmd),
    /// Mirror topics into or out of a Kafka-protocol cluster (MirrorMaker 2's job), exactly
    /// once where the cluster has transactions. Needs the `kafka` feature.
    #[command(subcommand)]
    Mirror(MirrorCmd),
}

#[derive(Subcommand)]
enum MirrorCmd {
    /// Local topics -> the cluster. Opens the directory read-only (progress is kept on the
    /// cluster), so it runs beside the application that owns it.
    Push(MirrorArgs),
    /// Cluster topics -> the local directory (`--topics` required).
    Pull(MirrorArgs),
}

#[derive(Args)]
struct MirrorArgs {
    /// The cluster: HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    bootstrap_server: String,
    /// A regex the whole topic name must match (MirrorMaker 2's `topics`); push: all
    /// topics by default. Internal topics are never mirrored.
    #[arg(long)]
    topics: Option<String>,
    /// The source cluster's alias: topics are named `<alias>.<topic>` on the target.
    /// Without it names are kept and internal topics use `source`.
    #[arg(long)]
    alias: Option<String>,
    /// Stop once caught up with the source's end, instead of following it.
    #[arg(long)]
    until_end: bool,
    /// `auto` (transactions where the cluster has them), `required`, or `disabled`
    /// (idempotent producer: at least once). Pull always writes in local transactions.
    #[arg(long, default_value = "auto")]
    exactly_once: String,
    /// Commit translated group offsets to the target's groups that have no active member
    /// (MirrorMaker 2's sync.group.offsets.enabled).
    #[arg(long)]
    sync_group_offsets: bool,
    /// A properties file of client settings for every connection (librdkafka's names).
    #[arg(long)]
    command_config: Option<PathBuf>,
    /// A producer setting for push, KEY=VALUE (linger.ms, batch.size, compression.type,
    /// ...); repeatable.
    #[arg(long)]
    producer_property: Vec<String>,
    /// A consumer setting for pull, KEY=VALUE; repeatable.
    #[arg(long)]
    consumer_property: Vec<String>,
    /// Records per transaction, at most.
    #[arg(long, default_value_t = 100_000)]
    transaction_records: usize,
    /// Seconds between progress lines on stderr (records/s, lag per partition); 0: none.
    #[arg(long, default_value_t = 5)]
    progress_interval: u64,
    /// Seconds to wait for the cluster to answer.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Subcommand)]
enum ConnectCmd {
    /// Run connectors until SIGINT or SIGTERM, as Kafka's `connect-standalone.sh`: Kafka's
    /// worker `.properties` file, then one per connector (e.g. Kafka's
    /// `connect-file-source.properties` and `connect-file-sink.properties`).
    Standalone {
        /// The worker's settings (converters, `offset.flush.interval.ms`).
        worker: PathBuf,
        /// One `.properties` file per connector.
        #[arg(required = true)]
        connectors: Vec<PathBuf>,
        /// Seconds between progress lines on stderr (0: none).
        #[arg(long, default_value_t = 5)]
        progress: u64,
    },
}

#[derive(Subcommand)]
enum TopicsCmd {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// A topic setting by Kafka's name, e.g. `retention.ms=3600000`; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// One topic name per line.
    List {
        /// Include internal topics (`__consumer_offsets`).
        #[arg(long)]
        all: bool,
    },
    /// A line per partition: `partition start end bytes segments`.
    Describe { name: String },
    /// Change settings and/or grow the partition count.
    Alter {
        name: String,
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[arg(long)]
        partitions: Option<i32>,
    },
    /// Delete a topic and its data.
    Delete { name: String },
}

#[derive(Args)]
struct ProduceArgs {
    topic: String,
    /// Split each line at the first SEP: key before, value after.
    #[arg(long)]
    key_separator: Option<String>,
    #[arg(long)]
    partition: Option<i32>,
    #[arg(long, value_parser = parse_codec)]
    compression: Option<Compression>,
    /// `os` (the topic's policy) or `every-batch` (fdatasync before each acknowledgement).
    #[arg(long, default_value = "os")]
    flush: String,
    /// Print `partition offset` for each record once it is written.
    #[arg(long)]
    print_acks: bool,
}

#[derive(Args)]
struct ConsumeArgs {
    topic: String,
    /// Consume as a member of this group and commit what is printed.
    #[arg(long)]
    group: Option<String>,
    /// Start at the log start offset (default: the end, as Kafka's console consumer).
    #[arg(long)]
    from_beginning: bool,
    /// Start at this offset (with `--partition`).
    #[arg(long, requires = "partition")]
    offset: Option<i64>,
    #[arg(long)]
    partition: Option<i32>,
    /// Exit after this many records.
    #[arg(long)]
    max: Option<usize>,
    /// Exit when no record arrives for this long (default: wait for ever).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Print `partition offset key value` instead of values.
    #[arg(long)]
    print_offsets: bool,
    /// `read_committed` prints only committed records of transactions (stopping at the last
    /// stable offset); `read_uncommitted` (the default, as Kafka's console consumer) prints
    /// every record. Transaction markers are never printed.
    #[arg(long, default_value = "read_uncommitted")]
    isolation_level: IsolationLevel,
}

#[derive(Subcommand)]
enum GroupsCmd {
    /// One group per line.
    List,
    /// A line per partition: `topic partition committed end lag`.
    Describe { group: String },
    /// Move a group's offsets (no member may be active).
    Reset {
        group: String,
        #[arg(long)]
        topic: String,
        /// `earliest`, `latest`, an offset, or `ts:MILLIS`.
        #[arg(long)]
        to: String,
    },
    /// Delete a group's committed offsets.
    Delete { group: String },
}

#[derive(Subcommand)]
enum PerfCmd {
    /// Send N records of S bytes through a producer in batches of B; report records/s, MB/s,
    /// latency and the producer's metrics.
    Produce {
        topic: String,
        #[arg(long)]
        records: u64,
        #[arg(long)]
        record_size: usize,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[arg(long, value_parser = parse_codec)]
        compression: Option<Compression>,
        #[arg(long, default_value = "os")]
        flush: String,
    },
    /// Read N records from the start of every partition; report records/s and MB/s.
    Consume {
        topic: String,
        #[arg(long)]
        records: u64,
    },
}

#[derive(Args)]
struct DumpArgs {
    /// A segment file: `.log`, `.index` or `.timeindex`.
    path: PathBuf,
    /// Also print each record of each batch.
    #[arg(long)]
    records: bool,
    /// Check every index entry against the log (for `.index` / `.timeindex`), and each
    /// batch's records (for `.log`).
    #[arg(long)]
    verify: bool,
}

fn parse_codec(s: &str) -> Result<Compression, String> {
    s.parse::<Compression>().map_err(|e| e.to_string())
}

/// The CLI's error: a message for stderr.
struct Fail(String);

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail(e.to_string())
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail(e.to_string())
    }
}

type Out = Result<(), Fail>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("topiclog: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(msg)) => {
            // A closed stdout (e.g. `| head`) is not an error worth reporting.
            if !msg.contains("Broken pipe") {
                eprintln!("topiclog: {}", msg.lines().next().unwrap_or("error"));
            }
            ExitCode::FAILURE
        }
    }
}

/// Opens read-write and tells, on stderr, what the open did to the directory (adoption,
/// rebuilt topics, strays set aside, damage cut or set aside).
fn open_rw(dir: &Path) -> Result<Log, Fail> {
    let log = LogOptions::new().open(dir)?;
    for line in log.recovery_report().notices() {
        eprintln!("topiclog: recovery: {line}");
    }
    Ok(log)
}

fn open_ro(dir: &Path) -> Result<Log, Fail> {
    if !dir.join(".topics").is_dir() {
        return Err(Fail(format!(
            "{} is not a topiclog data directory",
            dir.display()
        )));
    }
    Ok(LogOptions::new().read_only(true).open(dir)?)
}

fn run(cli: Cli) -> Out {
    let dir = cli.dir;
    match cli.command {
        Command::Topics(c) => topics(&dir, c),
        Command::Produce(a) => produce(&dir, &a),
        Command::Consume(a) => consume(&dir, &a),
        Command::Groups(c) => groups(&dir, c),
        Command::Perf(c) => perf(&dir, c),
        Command::DumpLog(a) => dump_log(&a),
        Command::Connect(c) => connect(&dir, c),
        Command::Mirror(c) => mirror(&dir, c),
    }
}

#[cfg(not(feature = "kafka"))]
fn mirror(_dir: &Path, _c: MirrorCmd) -> Out {
    Err(Fail(
        "this topiclog was built without the `kafka` feature, which mirroring needs: \
         cargo install topiclog --features cli,kafka"
            .into(),
    ))
}

#[cfg(feature = "kafka")]
fn key_values(list: &[String], what: &str) -> Result<Vec<(String, String)>, Fail> {
    list.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Fail(format!("{what} {kv:?}: expected KEY=VALUE")))
        })
        .collect()
}

#[cfg(feature = "kafka")]
fn mirror(dir: &Path, c: MirrorCmd) -> Out {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    use topiclog::mirror::{self, ExactlyOnce, MirrorConfig};
    // A push that follows its source reopens its read-only view every five minutes, so that
    // topics the owner creates, and its groups' new commits, are seen.
    const REOPEN: Duration = Duration::from_mins(5);
    let (pushing, a) = match c {
        MirrorCmd::Push(a) => (true, a),
        MirrorCmd::Pull(a) => (false, a),
    };
    let verb = if pushing { "push" } else { "pull" };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Fail(format!("cannot handle signal {sig}: {e}")))?;
    }
    let mut cfg = MirrorConfig::new(a.bootstrap_server.clone());
    cfg.topics = match (&a.topics, pushing) {
        (Some(t), _) => t.clone(),
        (None, true) => ".*".into(),
        (None, false) => return Err(Fail("mirror pull needs --topics REGEX".into())),
    };
    cfg.alias.clone_from(&a.alias);
    cfg.until_end = a.until_end;
    cfg.exactly_once = match a.exactly_once.as_str() {
        "auto" => ExactlyOnce::Auto,
        "required" => ExactlyOnce::Required,
        "disabled" => ExactlyOnce::Disabled,
        other => {
            return Err(Fail(format!(
                "--exactly-once {other}: use auto, required or disabled"
            )));
        }
    };
    cfg.sync_group_offsets = a.sync_group_offsets;
    cfg.transaction_records = a.transaction_records;
    cfg.timeout = Duration::from_secs(a.timeout.max(1));
    if let Some(path) = &a.command_config {
        let props = topiclog::connect::Properties::load(path)?;
        for k in props.keys() {
            if let Some(v) = props.get(k) {
                cfg.client_properties.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    cfg.producer_properties = key_values(&a.producer_property, "--producer-property")?;
    cfg.consumer_properties = key_values(&a.consumer_property, "--consumer-property")?;
    if a.progress_interval > 0 {
        cfg.progress_interval = Duration::from_secs(a.progress_interval);
        cfg.progress = Some(Arc::new(move |p: &mirror::Progress| {
            eprintln!("topiclog: mirror {verb}: {p}");
        }));
    }
    let mut total = mirror::MirrorReport::default();
    let mut ran = false;
    loop {
        let round_stop = Arc::new(AtomicBool::new(false));
        cfg.stop = Some(Arc::clone(&round_stop));
        let watcher = {
            let (stop, round_stop) = (Arc::clone(&stop), Arc::clone(&round_stop));
            let reopen = pushing && !a.until_end;
            std::thread::spawn(move || {
                let started = Instant::now();
                while !round_stop.load(Ordering::Relaxed) {
                    if stop.load(Ordering::Relaxed) || (reopen && started.elapsed() >= REOPEN) {
                        round_stop.store(true, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let result = if pushing {
            open_ro(dir).map(|log| mirror::push(&log, &cfg))
        } else {
            open_rw(dir).and_then(|log| {
                let r = mirror::pull(&log, &cfg);
                log.close()?;
                Ok(r)
            })
        };
        round_stop.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        let report = match result? {
            Ok(r) => r,
            // Following: a cluster that went away after the first run is waited for (one
            // that never answered is an error: a wrong address, most likely).
            Err(e @ mirror::MirrorError::Unreachable { .. })
                if ran && !a.until_end && !stop.load(Ordering::Relaxed) =>
            {
                eprintln!("topiclog: mirror {verb}: {e}; trying again in 5 s");
                std::thread::sleep(Duration::from_secs(5));
                continue;
            }
            Err(e) => return Err(Fail(e.to_string())),
        };
        ran = true;
        for w in &report.warnings {
            if !total.warnings.contains(w) {
                eprintln!("topiclog: mirror {verb}: {w}");
            }
        }
        total.records += report.records;
        total.transactions += report.transactions;
        total.checkpoints += report.checkpoints;
        total.group_offsets_synced += report.group_offsets_synced;
        total.skipped_by_retention += report.skipped_by_retention;
        total.retried_rounds += report.retried_rounds;
        total.exactly_once = report.exactly_once;
        total.warnings.extend(report.warnings);
        for t in report.created_topics {
            total.created_topics.push(t);
        }
        if a.until_end || stop.load(Ordering::Relaxed) || !pushing {
            break;
        }
    }
    println!("mirror {verb}: {total}");
    Ok(())
}

/// Worker keys of Kafka's that mean nothing in one process, and why.
const WORKER_IGNORED: &[(&str, &str)] = &[
    (
        "bootstrap.servers",
        "the connectors run on the local data directory (--dir)",
    ),
    ("plugin.path", "the connectors are built in"),
    (
        "offset.storage.file.filename",
        "source offsets are kept in the connect-offsets topic, written in the same transaction as the records",
    ),
    ("header.converter", "headers are kept as bytes"),
    ("listeners", "there is no REST interface"),
    ("rest.port", "there is no REST interface"),
    ("rest.host.name", "there is no REST interface"),
];

/// Worker keys topiclog reads (and those under their prefixes).
fn worker_key_known(key: &str) -> bool {
    matches!(
        key,
        "key.converter" | "value.converter" | "offset.flush.interval.ms" | "offset.storage.topic"
    ) || key.starts_with("key.converter.")
        || key.starts_with("value.converter.")
}

fn connect(dir: &Path, c: ConnectCmd) -> Out {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use topiclog::connect::{Connect, Properties, TaskState};
    let ConnectCmd::Standalone {
        worker,
        connectors,
        progress,
    } = c;
    // First: a signal from here on stops the connectors cleanly.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Fail(format!("cannot handle signal {sig}: {e}")))?;
    }
    let worker = Properties::load(&worker)?;
    for key in worker.keys() {
        if let Some((_, why)) = WORKER_IGNORED.iter().find(|(k, _)| *k == key) {
            eprintln!("topiclog: connect: {key} is ignored: {why}");
        } else if !worker_key_known(key) {
            eprintln!("topiclog: connect: {key} is not a worker setting topiclog knows; ignored");
        }
    }
    let configs = connectors
        .iter()
        .map(|p| Properties::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let log = open_rw(dir)?;
    let runtime = Connect::standalone(&log, worker)?;
    let mut names = Vec::new();
    for config in configs {
        let name = config.get("name").unwrap_or_default().to_string();
        runtime.add(config)?;
        eprintln!("topiclog: connect: started {name}");
        names.push(name);
    }
    let mut last_report = std::time::Instant::now();
    let mut last_line = String::new();
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        if progress == 0 || last_report.elapsed() < Duration::from_secs(progress) {
            continue;
        }
        last_report = std::time::Instant::now();
        let mut line = String::new();
        for name in &names {
            let status = runtime.status(name)?;
            for t in &status.tasks {
                let state = match &t.state {
                    TaskState::Running => "running".to_string(),
                    TaskState::Paused => "paused".to_string(),
                    TaskState::Stopped => "stopped".to_string(),
                    TaskState::Failed(m) => format!("FAILED: {m}"),
                };
                let lag = t.lag.map_or_else(String::new, |l| format!(", lag {l}"));
                let skipped = if t.skipped > 0 {
                    format!(", {} skipped", t.skipped)
                } else {
                    String::new()
                };
                let _ = write!(
                    line,
                    "{}{name}-{}: {} records{skipped}{lag} ({state})",
                    if line.is_empty() { "" } else { "; " },
                    t.id,
                    t.records
                );
            }
        }
        if line != last_line {
            eprintln!("topiclog: connect: {line}");
            last_line = line;
        }
    }
    eprintln!("topiclog: connect: stopping (sinks flush and commit)");
    let mut failed = Vec::new();
    for name in &names {
        for t in runtime.status(name)?.tasks {
            if let TaskState::Failed(m) = t.state {
                failed.push(format!("{name}-{}: {m}", t.id));
            }
        }
    }
    runtime.close();
    log.close()?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Fail(format!(
            "connect: tasks failed: {}",
            failed.join("; ")
        )))
    }
}

/// Escapes a key or value for one-line, tab-separated output.
fn escape(b: Option<&[u8]>) -> String {
    let Some(mut b) = b else {
        return "null".into();
    };
    let mut out = String::with_capacity(b.len());
    while !b.is_empty() {
        match std::str::from_utf8(b) {
            Ok(s) => {
                push_escaped(&mut out, s);
                break;
            }
            Err(e) => {
                let (good, rest) = b.split_at(e.valid_up_to());
                push_escaped(&mut out, std::str::from_utf8(good).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len());
                for byte in rest.iter().take(bad) {
                    let _ = write!(out, "\\x{byte:02x}");
                }
                b = rest.get(bad..).unwrap_or_default();
            }
        }
    }
    out
}

/// Tab, newline and carriage return as `\t`, `\n`, `\r`; every other control character
/// (NUL, escape, DEL, ...) as `\xNN`, so output never carries raw control bytes to a terminal
/// or a line-based reader.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

fn config_from(configs: &[String], mut base: TopicConfig) -> Result<TopicConfig, Fail> {
    for kv in configs {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Fail(format!("--config '{kv}' is not KEY=VALUE")))?;
        base.set(k.trim(), v)?;
    }
    Ok(base)
}

fn topics(dir: &Path, c: TopicsCmd) -> Out {
    let mut out = BufWriter::new(io::stdout().lock());
    match c {
        TopicsCmd::Create {
            name,
            partitions,
            configs,
        } => {
            let log = open_rw(dir)?;
            log.create_topic_with(
                &name,
                partitions,
                config_from(&configs, TopicConfig::new())?,
            )?;
            log.close()?;
        }
        TopicsCmd::List { all } => {
            let log = open_ro(dir)?;
            for t in log.all_topics() {
                if all || !is_internal_topic(&t) {
                    writeln!(out, "{t}")?;
                }
            }
        }
        TopicsCmd::Describe { name } => {
            let log = open_ro(dir)?;
            for p in log.describe_topic(&name)?.partitions {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    p.partition, p.log_start_offset, p.log_end_offset, p.size_bytes, p.segments
                )?;
            }
        }
        TopicsCmd::Alter {
            name,
            configs,
            partitions,
        } => {
            let log = open_rw(dir)?;
            if !configs.is_empty() {
                let current = log.describe_topic(&name)?.config;
                log.alter_topic_config(&name, config_from(&configs, current)?)?;
            }
            if let Some(n) = partitions {
                log.add_partitions(&name, n)?;
            }
            log.close()?;
        }
        TopicsCmd::Delete { name } => {
            let log = open_rw(dir)?;
            log.delete_topic(&name)?;
            log.close()?;
        }
    }
    out.flush()?;
    Ok(())
}

fn flush_policy(s: &str) -> Result<Option<FlushPolicy>, Fail> {
    match s {
        "os" => Ok(None),
        "every-batch" | "every_batch" => Ok(Some(FlushPolicy::EveryBatch)),
        other => Err(Fail(format!("--flush '{other}' is not os or every-batch"))),
    }
}

fn produce(dir: &Path, a: &ProduceArgs) -> Out {
    let log = open_rw(dir)?;
    log.describe_topic(&a.topic)?;
    let mut cfg = ProducerConfig::default();
    cfg.compression = a.compression;
    cfg.flush_policy = flush_policy(&a.flush)?;
    let producer = log.producer(cfg)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let stdin = io::stdin().lock();
    let mut acks = Acks::default();
    let mut pending: Vec<(u64, topiclog::Receipt)> = Vec::new();
    let mut read = 0u64;
    let mut stopped: Option<String> = None;
    for line in stdin.split(b'\n') {
        let mut line = match line {
            Ok(l) => l,
            Err(e) => {
                stopped = Some(format!("reading line {}: {e}", read + 1));
                break;
            }
        };
        read += 1;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let (key, value) = match &a.key_separator {
            Some(sep) if !sep.is_empty() => match find(&line, sep.as_bytes()) {
                Some(i) => (
                    Some(Bytes::copy_from_slice(line.get(..i).unwrap_or_default())),
                    Bytes::copy_from_slice(line.get(i + sep.len()..).unwrap_or_default()),
                ),
                None => (None, Bytes::from(line)),
            },
            _ => (None, Bytes::from(line)),
        };
        let mut rec = ProducerRecord::new(a.topic.clone(), value);
        rec.record.key = key;
        rec.partition = a.partition;
        match producer.send_async(rec) {
            Ok(r) => pending.push((read, r)),
            Err(e) => {
                acks.fail(read, &e);
                break;
            }
        }
        if pending.len() >= 1000 {
            acks.settle(&producer, &mut pending, a.print_acks, &mut out)?;
            if acks.failed() {
                break;
            }
        }
    }
    acks.settle(&producer, &mut pending, a.print_acks, &mut out)?;
    if let Err(e) = producer.close() {
        // Every record's own result is in `acks`; close adds nothing to report unless
        // nothing else failed.
        if !acks.failed() && stopped.is_none() {
            return Err(e.into());
        }
    }
    if let Some(msg) = stopped.or_else(|| acks.failure()) {
        let closed = match log.close() {
            Ok(()) => String::new(),
            Err(e) => format!("; closing the log: {e}"),
        };
        return Err(Fail(format!("{msg}; {}{closed}", acks.summary())));
    }
    log.close()?;
    Ok(())
}

/// Which input lines the log acknowledged, for a report that says exactly what a retry must
/// send again.
#[derive(Default)]
struct Acks {
    /// Acknowledged line numbers as inclusive ranges, in order.
    ranges: Vec<(u64, u64)>,
    /// The first failed line and its error.
    first_failure: Option<(u64, String)>,
    failures: u64,
}

impl Acks {
    fn ack(&mut self, line: u64) {
        match self.ranges.last_mut() {
            Some((_, end)) if *end + 1 == line => *end = line,
            _ => self.ranges.push((line, line)),
        }
    }

    fn fail(&mut self, line: u64, e: &topiclog::Error) {
        self.failures += 1;
        if self.first_failure.as_ref().is_none_or(|(l, _)| line < *l) {
            self.first_failure = Some((line, e.to_string()));
        }
    }

    fn failed(&self) -> bool {
        self.failures > 0
    }

    /// Waits for every pending receipt; the producer's flush error is each receipt's.
    fn settle(
        &mut self,
        producer: &topiclog::Producer,
        pending: &mut Vec<(u64, topiclog::Receipt)>,
        print: bool,
        out: &mut BufWriter<io::StdoutLock<'_>>,
    ) -> Out {
        let _ = producer.flush();
        for (line, r) in pending.drain(..) {
            match r.wait() {
                Ok(md) => {
                    self.ack(line);
                    if print {
                        writeln!(out, "{}\t{}", md.partition, md.offset)?;
                    }
                }
                Err(e) => self.fail(line, &e),
            }
        }
        out.flush()?;
        Ok(())
    }

    fn failure(&self) -> Option<String> {
        let (line, e) = self.first_failure.as_ref()?;
        let more = self.failures - 1;
        Some(if more > 0 {
            format!("line {line} failed: {e} (and {more} later line(s))")
        } else {
            format!("line {line} failed: {e}")
        })
    }

    fn summary(&self) -> String {
        if self.ranges.is_empty() {
            return "no line was acknowledged".into();
        }
        let list: Vec<String> = self
            .ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        format!(
            "acknowledged lines {}; other lines were not acknowledged",
            list.join(",")
        )
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn consume(dir: &Path, a: &ConsumeArgs) -> Out {
    // Without a group nothing is written: open read-only, beside a running application.
    let log = if a.group.is_some() {
        open_rw(dir)?
    } else {
        open_ro(dir)?
    };
    let count = log.partition_count(&a.topic)?;
    let mut cfg = match &a.group {
        Some(g) => ConsumerConfig::group(g.clone()),
        None => ConsumerConfig::default(),
    };
    cfg.enable_auto_commit = false;
    cfg.isolation_level = a.isolation_level;
    cfg.auto_offset_reset = if a.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let mut consumer = log.consumer(cfg)?;
    let parts: Vec<TopicPartition> = match a.partition {
        Some(p) if p < 0 || p >= count => {
            return Err(Error::PartitionNotFound {
                topic: a.topic.clone(),
                partition: p,
            }
            .into());
        }
        Some(p) => vec![TopicPartition::new(&a.topic, p)],
        None => (0..count)
            .map(|p| TopicPartition::new(&a.topic, p))
            .collect(),
    };
    if a.group.is_some() && a.partition.is_none() {
        consumer.subscribe(&[a.topic.as_str()])?;
    } else {
        consumer.assign(&parts)?;
        if let (Some(o), Some(first)) = (a.offset, parts.first()) {
            consumer.seek(first, o)?;
        } else if a.group.is_none() {
            if a.from_beginning {
                consumer.seek_to_beginning(&parts)?;
            } else {
                consumer.seek_to_end(&parts)?;
            }
        }
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let mut printed = 0usize;
    let idle = a.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    loop {
        if a.max.is_some_and(|m| printed >= m) {
            break;
        }
        let wait = idle.map_or(Duration::from_millis(500), |d| {
            d.saturating_sub(last_record.elapsed())
                .max(Duration::from_millis(1))
        });
        let records = consumer.poll(wait)?;
        if records.is_empty() {
            if idle.is_some_and(|d| last_record.elapsed() >= d) {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        let mut commits: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in &records {
            if a.max.is_some_and(|m| printed >= m) {
                break;
            }
            if a.print_offsets {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    r.partition(),
                    r.offset(),
                    escape(r.key()),
                    escape(r.value())
                )?;
            } else {
                writeln!(out, "{}", escape(r.value()))?;
            }
            commits.insert(
                TopicPartition::new(r.topic(), r.partition()),
                r.offset() + 1,
            );
            printed += 1;
        }
        out.flush()?;
        if a.group.is_some() && !commits.is_empty() {
            let offsets: Vec<_> = commits
                .into_iter()
                .map(|(tp, o)| (tp, topiclog::OffsetAndMetadata::new(o)))
                .collect();
            consumer.commit_offsets(&offsets)?;
        }
    }
    out.flush()?;
    consumer.close()?;
    if a.group.is_some() {
        log.close()?;
    }
    Ok(())
}

fn groups(dir: &Path, c: GroupsCmd) -> Out {
    let mut out = BufWriter::new(io::stdout().lock());
    match c {
        GroupsCmd::List => {
            let log = open_ro(dir)?;
            for g in log.list_groups() {
                writeln!(out, "{g}")?;
            }
        }
        GroupsCmd::Describe { group } => {
            let log = open_ro(dir)?;
            let dash = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
            for o in log.describe_group(&group)?.offsets {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    o.partition.topic,
                    o.partition.partition,
                    dash(o.committed),
                    dash(o.end),
                    dash(o.lag)
                )?;
            }
        }
        GroupsCmd::Reset { group, topic, to } => {
            let spec = match to.as_str() {
                "earliest" => OffsetSpec::Earliest,
                "latest" => OffsetSpec::Latest,
                s => match s.strip_prefix("ts:") {
                    Some(ms) => OffsetSpec::Timestamp(
                        ms.parse()
                            .map_err(|_| Fail(format!("--to '{s}': ts:MILLIS needs a number")))?,
                    ),
                    None => OffsetSpec::Offset(s.parse().map_err(|_| {
                        Fail(format!(
                            "--to '{s}' is not earliest, latest, an offset or ts:MILLIS"
                        ))
                    })?),
                },
            };
            let log = open_rw(dir)?;
            for (tp, o) in log.reset_group_offsets(&group, &topic, spec)? {
                writeln!(out, "{}\t{}\t{o}", tp.topic, tp.partition)?;
            }
            log.close()?;
        }
        GroupsCmd::Delete { group } => {
            let log = open_rw(dir)?;
            log.delete_group(&group)?;
            log.close()?;
        }
    }
    out.flush()?;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn perf(dir: &Path, c: PerfCmd) -> Out {
    match c {
        PerfCmd::Produce {
            topic,
            records,
            record_size,
            batch,
            compression,
            flush,
        } => {
            let log = open_rw(dir)?;
            let partitions = log.partition_count(&topic)?;
            // Through a producer, the path applications write by: `send` per record for
            // batches of 1, else `send_batch` of B records to one partition after another
            // (one stored batch each).
            let mut cfg = ProducerConfig::default();
            cfg.compression = compression;
            cfg.flush_policy = flush_policy(&flush)?;
            let producer = log.producer(cfg)?;
            let value: Vec<u8> = (0..record_size).map(|i| b'a' + (i % 26) as u8).collect();
            let value = Bytes::from(value);
            let batch = batch.max(1) as u64;
            let started = Instant::now();
            let mut last_report = Instant::now();
            let mut latencies = Vec::new();
            let (mut sent, mut n) = (0u64, 0i32);
            while sent < records {
                let k = batch.min(records - sent);
                let partition = n % partitions.max(1);
                n = n.wrapping_add(1);
                let record =
                    || ProducerRecord::new(topic.clone(), value.clone()).partition(partition);
                let t = Instant::now();
                if k == 1 {
                    producer.send(record())?;
                } else {
                    producer.send_batch((0..k).map(|_| record()).collect())?;
                }
                latencies.push(t.elapsed());
                sent += k;
                if last_report.elapsed() >= Duration::from_secs(1) {
                    last_report = Instant::now();
                    eprintln!(
                        "{sent} records sent, {:.0} records/s",
                        sent as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            latencies.sort();
            println!(
                "{records} records sent, {:.1} records/sec ({:.2} MB/sec), {:.3} ms p50 latency, {:.3} ms p99 latency, {:.3} ms max latency",
                records as f64 / secs,
                records as f64 * record_size as f64 / secs / 1e6,
                percentile(&latencies, 0.5).as_secs_f64() * 1e3,
                percentile(&latencies, 0.99).as_secs_f64() * 1e3,
                latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            );
            // The producer's own metrics, one per line with its unit (rates over the run).
            println!("{}", producer.metrics());
            producer.close()?;
            log.close()?;
        }
        PerfCmd::Consume { topic, records } => {
            let log = open_ro(dir)?;
            let started = Instant::now();
            let mut last_report = Instant::now();
            let (mut got, mut bytes) = (0u64, 0u64);
            // Through a consumer, the path applications read by.
            let parts: Vec<TopicPartition> = (0..log.partition_count(&topic)?)
                .map(|p| TopicPartition::new(topic.as_str(), p))
                .collect();
            let mut consumer = log.consumer(ConsumerConfig::default())?;
            consumer.assign(&parts)?;
            consumer.seek_to_beginning(&parts)?;
            'poll: while got < records {
                let polled = consumer.poll(Duration::from_millis(100))?;
                if polled.is_empty() {
                    let mut at_end = true;
                    for tp in &parts {
                        let end = log.partition(&tp.topic, tp.partition)?.high_watermark();
                        at_end &= consumer.position(tp)? >= end;
                    }
                    if at_end {
                        break;
                    }
                    continue;
                }
                for r in &polled {
                    got += 1;
                    bytes += r.value().map_or(0, <[u8]>::len) as u64;
                    if got >= records {
                        break 'poll;
                    }
                }
                if last_report.elapsed() >= Duration::from_secs(1) {
                    last_report = Instant::now();
                    eprintln!("{got} records read");
                }
            }
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            println!(
                "{got} records read, {:.1} records/sec ({:.2} MB/sec)",
                got as f64 / secs,
                bytes as f64 / secs / 1e6
            );
            // The consumer's own metrics, one per line with its unit (rates over the run).
            print!("{}", consumer.metrics());
            if got < records {
                return Err(Fail(format!("only {got} of {records} records exist")));
            }
        }
    }
    Ok(())
}

fn dump_log(a: &DumpArgs) -> Out {
    let name = a
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let (stem, ext) = name
        .split_once('.')
        .ok_or_else(|| Fail(format!("{}: not a segment file", a.path.display())))?;
    let base: i64 = stem.parse().map_err(|_| {
        Fail(format!(
            "{}: the name is not a 20-digit base offset",
            a.path.display()
        ))
    })?;
    let bytes = std::fs::read(&a.path).map_err(|e| Fail(format!("{}: {e}", a.path.display())))?;
    let mut out = BufWriter::new(io::stdout().lock());
    match ext {
        "log" => dump_batches(&mut out, Bytes::from(bytes), a)?,
        "index" | "timeindex" => {
            let log = std::fs::read(a.path.with_extension("log"))
                .ok()
                .map(Bytes::from);
            let batches: Vec<Batch> = log
                .map(|b| Batches::new(b).filter_map(Result::ok).collect())
                .unwrap_or_default();
            let entry = if ext == "index" { 8 } else { 12 };
            if bytes.len() % entry != 0 {
                writeln!(
                    out,
                    "# {} trailing bytes are not a whole entry",
                    bytes.len() % entry
                )?;
            }
            for e in bytes.chunks_exact(entry) {
                let (first, second) = e.split_at(if ext == "index" { 4 } else { 8 });
                if ext == "index" {
                    let rel = i32::from_be_bytes(first.try_into().unwrap_or_default());
                    let pos = i32::from_be_bytes(second.try_into().unwrap_or_default());
                    let offset = base + i64::from(rel);
                    let mut line = format!("{offset}\t{pos}");
                    if a.verify {
                        let mut p = 0usize;
                        let ok = batches.iter().any(|b| {
                            let here = p;
                            p += b.len();
                            here as i64 == i64::from(pos) && b.last_offset() == offset
                        });
                        line.push_str(if ok { "\tok" } else { "\tbad" });
                    }
                    writeln!(out, "{line}")?;
                } else {
                    let ts = i64::from_be_bytes(first.try_into().unwrap_or_default());
                    let rel = i32::from_be_bytes(second.try_into().unwrap_or_default());
                    let offset = base + i64::from(rel);
                    let mut line = format!("{ts}\t{offset}");
                    if a.verify {
                        let max_so_far = batches
                            .iter()
                            .take_while(|b| b.base_offset() <= offset)
                            .map(|b| b.header().max_timestamp)
                            .max();
                        let ends_here = batches.iter().any(|b| b.last_offset() == offset);
                        line.push_str(if ends_here && max_so_far == Some(ts) {
                            "\tok"
                        } else {
                            "\tbad"
                        });
                    }
                    writeln!(out, "{line}")?;
                }
            }
        }
        other => {
            return Err(Fail(format!(
                "{}: unknown segment file type '.{other}'",
                a.path.display()
            )));
        }
    }
    out.flush()?;
    Ok(())
}

fn dump_batches(out: &mut impl Write, bytes: Bytes, a: &DumpArgs) -> Out {
    let total = bytes.len();
    let all = bytes.clone();
    let mut pos = 0usize;
    for b in Batches::new(bytes) {
        let b = match b {
            Ok(b) => b,
            Err(_) if zero_tail(&all, pos) => break,
            Err(e) => {
                writeln!(out, "# position {pos}: {e}")?;
                return Ok(());
            }
        };
        let h = *b.header();
        let codec = h.compression().map_or_else(
            |_| format!("unknown({})", h.attributes & 7),
            |c| c.to_string(),
        );
        writeln!(
            out,
            "{pos}\t{}\t{}\t{}\t{}\t{codec}\t{}\t{}\t{}\t{}\t{}\t{}",
            h.base_offset,
            h.last_offset(),
            h.record_count,
            b.len(),
            h.base_timestamp,
            h.max_timestamp,
            h.producer_id,
            if b.crc_ok() { "crc-ok" } else { "crc-bad" },
            if h.is_transactional() {
                "transactional"
            } else {
                "-"
            },
            if h.is_control() { "control" } else { "-" },
        )?;
        if let Some(control) = b.control_record().filter(|_| a.records || a.verify) {
            // A control batch's one record: printed as Kafka's DumpLogSegments prints it.
            match control {
                Ok(ControlRecord::EndTxn(m)) if a.records => writeln!(
                    out,
                    "\t{}\t{}\tendTxnMarker: {} coordinatorEpoch: {}",
                    h.base_offset,
                    h.max_timestamp,
                    if m.commit { "COMMIT" } else { "ABORT" },
                    m.coordinator_epoch
                )?,
                Ok(ControlRecord::Other { kind }) if a.records => writeln!(
                    out,
                    "\t{}\t{}\tcontrol record type {kind}",
                    h.base_offset, h.max_timestamp
                )?,
                Ok(_) => {}
                Err(e) => writeln!(out, "# batch at {pos}: {e}")?,
            }
        } else if a.records || a.verify {
            match b.owned_records() {
                Ok(records) => {
                    for r in records {
                        match r {
                            Ok(r) if a.records => {
                                let headers: Vec<String> = r
                                    .headers
                                    .iter()
                                    .map(|h| {
                                        format!(
                                            "{}={}",
                                            escape(Some(h.key.as_bytes())),
                                            escape(h.value.as_deref())
                                        )
                                    })
                                    .collect();
                                writeln!(
                                    out,
                                    "\t{}\t{}\t{}\t{}\t{}",
                                    r.offset,
                                    r.timestamp,
                                    escape(r.key.as_deref()),
                                    escape(r.value.as_deref()),
                                    headers.join(",")
                                )?;
                            }
                            Ok(_) => {}
                            Err(e) => writeln!(out, "# batch at {pos}: {e}")?,
                        }
                    }
                }
                Err(e) => writeln!(out, "# batch at {pos}: {e}")?,
            }
        }
        pos += b.len();
    }
    if zero_tail(&all, pos) {
        // An active segment of a `preallocate=true` topic: the file is longer than its data.
        writeln!(
            out,
            "# {} zero bytes after the data (preallocated, not yet written)",
            total - pos
        )?;
    } else if pos < total {
        writeln!(out, "# {} bytes after the last whole batch", total - pos)?;
    }
    Ok(())
}

/// Whether `bytes` from `pos` on are zeros (some): a preallocated segment's unwritten tail.
fn zero_tail(bytes: &[u8], pos: usize) -> bool {
    bytes
        .get(pos..)
        .is_some_and(|t| !t.is_empty() && t.iter().all(|&b| b == 0))
}
