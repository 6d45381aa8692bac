//! `topiclog connect standalone` as a user runs it: Kafka's quickstart with Kafka's own
//! property files, and a file source → topic → file sink pipeline killed with SIGKILL at
//! random points, after which the sink file equals the source file and the topic holds each
//! line once.
#![cfg(feature = "cli")]
#![allow(clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use topiclog::{IsolationLevel, LogOptions};

mod common;
use common::TestResult;

const WORKER: &str = "\
bootstrap.servers=localhost:9092
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=/tmp/connect.offsets
offset.flush.interval.ms=10000
#plugin.path=
";

const SOURCE: &str = "\
name=local-file-source
connector.class=FileStreamSource
tasks.max=1
file=test.txt
topic=connect-test
";

const SINK: &str = "\
name=local-file-sink
connector.class=FileStreamSink
tasks.max=1
file=test.sink.txt
topics=connect-test
";

fn start(cwd: &Path, worker: &str) -> TestResult<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_topiclog"))
        .current_dir(cwd)
        .args([
            "--dir",
            "data",
            "connect",
            "standalone",
            worker,
            "config/connect-file-source.properties",
            "config/connect-file-sink.properties",
            "--progress",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?)
}

fn terminate(child: &mut Child) -> TestResult<String> {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(sent.success(), "kill -TERM failed");
    let out = child.wait_with_output_ref()?;
    Ok(out)
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> TestResult<String>;
}

impl WaitRef for Child {
    fn wait_with_output_ref(&mut self) -> TestResult<String> {
        use std::io::Read;
        let status = self.wait()?;
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            e.read_to_string(&mut err)?;
        }
        assert!(status.success(), "topiclog connect exited {status}: {err}");
        Ok(err)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> TestResult {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> TestResult {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn setup(dir: &Path, worker: &str) -> TestResult {
    std::fs::create_dir_all(dir.join("config"))?;
    std::fs::write(dir.join("config/connect-standalone.properties"), worker)?;
    std::fs::write(dir.join("config/connect-file-source.properties"), SOURCE)?;
    std::fs::write(dir.join("config/connect-file-sink.properties"), SINK)?;
    Ok(())
}

#[test]
fn kafkas_quickstart_runs_as_written() -> TestResult {
    let dir = tempfile::tempdir()?;
    setup(dir.path(), WORKER)?;
    append(&dir.path().join("test.txt"), "foo\nbar\n")?;
    let mut child = start(dir.path(), "config/connect-standalone.properties")?;
    let sink = dir.path().join("test.sink.txt");
    wait_for("the sink file", Duration::from_mins(1), || {
        read(&sink) == "foo\nbar\n"
    })?;
    append(&dir.path().join("test.txt"), "Another line\n")?;
    wait_for("the appended line", Duration::from_mins(1), || {
        read(&sink) == "foo\nbar\nAnother line\n"
    })?;
    let err = terminate(&mut child)?;
    assert!(err.contains("bootstrap.servers is ignored"), "{err}");
    assert!(err.contains("started local-file-sink"), "{err}");
    assert!(!err.contains("FAILED"), "{err}");
    let out = common::run_cli(
        &dir.path().join("data"),
        &["consume", "connect-test", "--from-beginning", "--max", "3"],
        b"",
    );
    let text = String::from_utf8(out.stdout)?;
    assert!(
        text.contains(r#"{"schema":{"type":"string","optional":false},"payload":"foo"}"#),
        "{text}"
    );
    Ok(())
}

/// A line of the source file: numbered, sometimes long, sometimes with non-ASCII text.
fn line(i: u64, seed: u64) -> String {
    match seed % 7 {
        0 => format!("{i} {}\n", "x".repeat((seed % 3000) as usize)),
        1 => format!("{i} héllo wörld ✓\n"),
        _ => format!("{i}\n"),
    }
}

#[test]
fn a_pipeline_killed_at_random_points_loses_and_doubles_nothing() -> TestResult {
    let rounds = common::env_rounds("TOPICLOG_CONNECT_KILL_ROUNDS", 8);
    let dir = tempfile::tempdir()?;
    setup(dir.path(), WORKER)?;
    let mut seed = 0x00c0_ffee_u64 ^ rounds;
    let mut rng = move || common::xorshift(&mut seed);
    let source = dir.path().join("test.txt");
    let sink = dir.path().join("test.sink.txt");
    let mut n = 0u64;
    let mut expected = String::new();
    for round in 0..rounds {
        // The file grows between runs, and the flush interval varies, so kills land before,
        // during and after a sink's flush and a source's transaction.
        for _ in 0..rng() % 3000 {
            let l = line(n, rng());
            append(&source, &l)?;
            expected.push_str(&l);
            n += 1;
        }
        let flush = [1, 20, 200, 2000][(rng() % 4) as usize];
        let worker = WORKER.replace(
            "offset.flush.interval.ms=10000",
            &format!("offset.flush.interval.ms={flush}"),
        );
        std::fs::write(
            dir.path().join(format!("config/w{round}.properties")),
            &worker,
        )?;
        let mut child = start(dir.path(), &format!("config/w{round}.properties"))?;
        std::thread::sleep(Duration::from_millis(30 + rng() % 600));
        child.kill()?;
        child.wait()?;
        let got = read(&sink);
        assert!(
            expected.starts_with(&got),
            "round {round}: the sink file is not a prefix of the source ({} of {} bytes)",
            got.len(),
            expected.len()
        );
    }
    // A last run to the end, stopped cleanly (after it started: it reads a signal only then).
    let mut child = start(dir.path(), "config/connect-standalone.properties")?;
    std::thread::sleep(Duration::from_secs(2));
    wait_for("the whole file in the sink", Duration::from_mins(2), || {
        read(&sink).len() >= expected.len()
    })?;
    terminate(&mut child)?;
    assert!(
        read(&sink) == expected,
        "the sink file differs from the source file"
    );
    // The topic holds each line once, in order (committed records only).
    let log = LogOptions::new()
        .read_only(true)
        .open(dir.path().join("data"))?;
    let h = log
        .partition("connect-test", 0)?
        .with_isolation_level(IsolationLevel::ReadCommitted);
    let mut lines = Vec::new();
    let mut at = h.log_start_offset();
    while at < h.last_stable_offset() {
        let recs = h.records(at, 1 << 20)?;
        let Some(last) = recs.last() else { break };
        at = last.offset + 1;
        for r in recs {
            let v: serde_json::Value =
                serde_json::from_slice(r.value.as_deref().unwrap_or(b"null"))?;
            lines.push(v["payload"].as_str().unwrap_or_default().to_string());
        }
    }
    let want: Vec<&str> = expected.lines().collect();
    assert_eq!(lines.len(), want.len(), "each line once in connect-test");
    assert!(lines.iter().zip(&want).all(|(a, b)| a == b));
    Ok(())
}
