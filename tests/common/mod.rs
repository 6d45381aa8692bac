//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::indexing_slicing)]

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use topiclog::{
    AbortedTxn, BatchHeader, Batches, Consumer, ConsumerConfig, Log, LogOptions, PartitionHandle,
    Producer, ProducerConfig, Record, Result, StoredRecord, TopicConfig, TopicPartition,
};

/// What a test returns: `?` works on topiclog's errors, io errors and `.ok_or("why")` alike,
/// and a failure prints the error instead of an `unwrap` panic's location.
pub type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Options for tests: no background thread, so nothing happens behind the test's back.
pub fn quiet() -> LogOptions {
    LogOptions::new().flusher(None).maintenance_interval(None)
}

pub fn open(dir: &Path) -> Result<Log> {
    quiet().open(dir)
}

/// A log open on a fresh temporary directory, which is removed when this is dropped.
///
/// Derefs to the [`Log`], so `log.partition("t", 0)?` reads as on a plain one.
pub struct TempLog {
    // Declared before `dir`: the log closes (drops) before its directory is removed.
    log: Log,
    options: LogOptions,
    dir: TempDir,
}

impl TempLog {
    /// An empty log with [`quiet`] options.
    pub fn new() -> TestResult<TempLog> {
        TempLog::with_options(quiet())
    }

    /// An empty log opened with `options`; [`TempLog::reopen`] uses them again.
    pub fn with_options(options: LogOptions) -> TestResult<TempLog> {
        let dir = tempfile::tempdir()?;
        let log = options.clone().open(dir.path())?;
        Ok(TempLog { log, options, dir })
    }

    /// A quiet log with one topic of `partitions` partitions and the default config.
    pub fn with_topic(name: &str, partitions: i32) -> TestResult<TempLog> {
        let log = TempLog::new()?;
        log.create_topic(name, partitions)?;
        Ok(log)
    }

    /// A quiet log with one topic of `partitions` partitions and `config`.
    pub fn with_topic_config(
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> TestResult<TempLog> {
        let log = TempLog::new()?;
        log.create_topic_with(name, partitions, config)?;
        Ok(log)
    }

    /// The open log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The log's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Closes the log cleanly and opens it again on the same directory with the same options.
    pub fn reopen(self) -> TestResult<TempLog> {
        let TempLog { log, options, dir } = self;
        log.close()?;
        let log = options.clone().open(dir.path())?;
        Ok(TempLog { log, options, dir })
    }

    /// Drops the log as a crash would (no sync, no clean-shutdown marker); the directory, for
    /// the open that recovers it.
    pub fn abandon(self) -> TempDir {
        self.log.abandon();
        self.dir
    }

    /// Closes the log cleanly; the directory, kept for a look at the files or another open.
    pub fn close(self) -> Result<TempDir> {
        self.log.close()?;
        Ok(self.dir)
    }
}

impl Deref for TempLog {
    type Target = Log;

    fn deref(&self) -> &Log {
        &self.log
    }
}

/// A producer with default settings and a group-less consumer assigned every partition of
/// `topic`, reading from the earliest offset: the two ends of a topic for a round trip.
pub fn pair(log: &Log, topic: &str) -> Result<(Producer, Consumer)> {
    let producer = log.producer(ProducerConfig::default())?;
    let mut consumer = log.consumer(ConsumerConfig::default())?;
    let partitions: Vec<TopicPartition> = (0..log.partition_count(topic)?)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    consumer.assign(&partitions)?;
    Ok((producer, consumer))
}

/// A read-only view of `dir` (another `Log` may own it), with no maintenance thread.
pub fn read_only_view(dir: &Path) -> Result<Log> {
    LogOptions::new()
        .read_only(true)
        .maintenance_interval(None)
        .open(dir)
}

/// A config with small segments and a dense index, so tests exercise rolls and lookups.
pub fn small_segments(segment_bytes: u32) -> TopicConfig {
    let mut c = TopicConfig::new();
    c.segment_bytes = segment_bytes;
    c.index_interval_bytes = 128;
    c
}

pub fn rec(i: u64) -> Record {
    Record::new(format!("value-{i}-{}", "x".repeat((i % 37) as usize)))
        .key(format!("key-{i}"))
        .timestamp(1_700_000_000_000 + i as i64)
}

/// Every readable record, in order.
pub fn read_all(p: &PartitionHandle) -> Result<Vec<StoredRecord>> {
    let mut out = Vec::new();
    let mut offset = p.log_start_offset();
    loop {
        let res = p.read(offset, 64 * 1024)?;
        if res.batches.is_empty() {
            break;
        }
        out.extend(res.records_from(offset)?);
        offset = res.next_offset().unwrap();
    }
    Ok(out)
}

pub fn values(recs: &[StoredRecord]) -> Vec<Vec<u8>> {
    recs.iter()
        .map(|r| r.value.as_deref().unwrap_or_default().to_vec())
        .collect()
}

/// Segment `.log` files of a partition directory, sorted.
pub fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// The names of the entries in `dir`, sorted.
pub fn dir_names(dir: &Path) -> TestResult<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// The base offset a segment file is named after (`<20-digit base offset>.log`).
pub fn segment_base(path: &Path) -> i64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Headers of every batch in a partition directory's segment files, in offset order.
pub fn batch_headers(dir: &Path) -> TestResult<Vec<BatchHeader>> {
    let mut out = Vec::new();
    for f in segment_logs(dir) {
        for b in Batches::new(std::fs::read(&f)?.into()) {
            out.push(*b?.header());
        }
    }
    Ok(out)
}

/// The entries of every `.txnindex` in a partition directory, with the base offset of the
/// segment each belongs to, in order.
pub fn txn_indexes(dir: &Path) -> TestResult<Vec<(i64, Vec<AbortedTxn>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| Ok(e?.path()))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "txnindex"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f)?;
        assert_eq!(
            bytes.len() % 34,
            0,
            "{}: whole 34-byte entries",
            f.display()
        );
        let entries = bytes
            .chunks_exact(34)
            .map(|e| AbortedTxn::decode(e).ok_or("an entry that does not decode"))
            .collect::<std::result::Result<_, _>>()?;
        out.push((segment_base(&f), entries));
    }
    Ok(out)
}

pub const SHORT: Duration = Duration::from_millis(50);

/// Runs the `topiclog` binary on `dir` with `args`, `stdin` fed and closed; its output.
#[cfg(feature = "cli")]
pub fn run_cli(dir: &Path, args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_topiclog"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that exits without reading (a refused directory) closes the pipe: that is
    // its answer, not the test's failure.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// The xorshift step the seeded crash tests draw their choices from.
pub fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The number in environment variable `name` (rounds of a crash test), or `default`.
pub fn env_rounds(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// Options of the simulated power-loss tests: the flusher and checkpoints running often (their
/// syncs and renames are part of what power cuts), no maintenance.
pub fn sim_options() -> LogOptions {
    LogOptions::new()
        .flusher(Some(Duration::from_millis(1)))
        .checkpoint_interval(Duration::from_millis(2))
        .maintenance_interval(None)
}

/// Runs test `child` of this test binary in a child process with `envs`, hands each line it
/// prints to `on_line` (which returns whether the line acknowledged something), and kills the
/// child with SIGKILL `kill_after` after its first acknowledgement (or after a minute without
/// one). Returns what `on_line` collected and the child's stderr.
pub fn run_and_kill<T: Send + 'static>(
    child: &str,
    envs: &[(&str, String)],
    kill_after: Duration,
    state: T,
    mut on_line: impl FnMut(&mut T, &str) -> bool + Send + 'static,
) -> TestResult<(T, String)> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--exact", child, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or("stdout")?;
    let mut stderr = child.stderr.take().ok_or("stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (first_tx, first) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut state = state;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if on_line(&mut state, &line) {
                let _ = first_tx.send(());
            }
        }
        state
    });
    let started_writing = first.recv_timeout(Duration::from_mins(1)).is_ok();
    let started = std::time::Instant::now();
    while started_writing && started.elapsed() < kill_after {
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill()?;
    child.wait()?;
    let state = reader.join().map_err(|_| "the reader thread panicked")?;
    let errors = errors.join().map_err(|_| "the stderr thread panicked")?;
    Ok((state, errors))
}

/// Polls `done` every 10 ms until it holds; an error naming `what` after 30 s.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> TestResult {
    let start = std::time::Instant::now();
    while !done() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// How many records `h` holds from its start, not counting transaction markers (what a
/// test waits for when a writer may be transactional).
pub fn record_count(h: &PartitionHandle) -> i64 {
    h.records(h.log_start_offset(), 1 << 30)
        .map_or(0, |r| r.len() as i64)
}
