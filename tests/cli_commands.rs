//! The `topiclog` binary, run as a user would: spawned, fed on stdin, read on stdout; output
//! formats and exit codes included.
#![cfg(feature = "cli")]
#![allow(clippy::indexing_slicing, clippy::format_collect)]

use std::path::Path;
use std::process::Output;

mod common;
use common::TestResult;

fn tl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    common::run_cli(dir, args, stdin.unwrap_or_default())
}

fn ok(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> TestResult<String> {
    let out = tl(dir, args, stdin);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn fails(dir: &Path, args: &[&str]) -> TestResult<String> {
    let out = tl(dir, args, None);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line error, got {err:?}"
    );
    Ok(err)
}

#[test]
fn topics_lifecycle() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(
        d,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    )?;
    ok(d, &["topics", "create", "audit"], None)?;
    assert_eq!(ok(d, &["topics", "list"], None)?, "audit\norders\n");
    assert!(ok(d, &["topics", "list", "--all"], None)?.contains("__consumer_offsets\n"));
    assert_eq!(
        ok(d, &["topics", "describe", "orders"], None)?,
        "0\t0\t0\t0\t1\n1\t0\t0\t0\t1\n2\t0\t0\t0\t1\n"
    );
    ok(
        d,
        &[
            "topics",
            "alter",
            "orders",
            "--partitions",
            "4",
            "--config",
            "segment.bytes=1048576",
        ],
        None,
    )?;
    assert_eq!(
        ok(d, &["topics", "describe", "orders"], None)?
            .lines()
            .count(),
        4
    );
    ok(d, &["topics", "delete", "audit"], None)?;
    assert_eq!(ok(d, &["topics", "list"], None)?, "orders\n");
    assert!(fails(d, &["topics", "describe", "audit"])?.contains("does not exist"));
    assert!(fails(d, &["topics", "create", "bad/name"])?.contains("invalid topic name"));
    assert!(fails(d, &["topics", "alter", "orders", "--partitions", "2"])?.contains("partitions"));
    fails(d, &["topics", "create", "x", "--config", "retention.ms"])?;
    fails(d, &["no-such-command"])?;
    Ok(())
}

#[test]
fn produce_and_consume_with_keys_escapes_and_nulls() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &["topics", "create", "t", "--partitions", "1"], None)?;
    let input = b"k1:hello\nk2:tab\there\\back\nnokey\nk3:\xff\xfebytes\n";
    let acks = ok(
        d,
        &[
            "produce",
            "t",
            "--key-separator",
            ":",
            "--print-acks",
            "--flush",
            "every-batch",
        ],
        Some(input),
    )?;
    assert_eq!(acks, "0\t0\n0\t1\n0\t2\n0\t3\n");
    let values = ok(
        d,
        &["consume", "t", "--from-beginning", "--timeout-ms", "300"],
        None,
    )?;
    assert_eq!(
        values,
        "hello\ntab\\there\\\\back\nnokey\n\\xff\\xfebytes\n"
    );
    let with_offsets = ok(
        d,
        &[
            "consume",
            "t",
            "--offset",
            "1",
            "--partition",
            "0",
            "--max",
            "2",
            "--print-offsets",
        ],
        None,
    )?;
    assert_eq!(
        with_offsets,
        "0\t1\tk2\ttab\\there\\\\back\n0\t2\tnull\tnokey\n"
    );
    // Default start is the end: nothing old is printed.
    assert_eq!(ok(d, &["consume", "t", "--timeout-ms", "200"], None)?, "");
    fails(d, &["consume", "missing", "--timeout-ms", "10"])?;
    fails(d, &["produce", "t", "--compression", "brotli"])?;
    Ok(())
}

#[test]
fn groups_commit_describe_reset_delete() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &["topics", "create", "t", "--partitions", "2"], None)?;
    let lines: String = (0..10).map(|i| format!("k{i}:v{i}\n")).collect();
    ok(
        d,
        &["produce", "t", "--key-separator", ":"],
        Some(lines.as_bytes()),
    )?;
    let printed = ok(
        d,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max",
            "4",
            "--timeout-ms",
            "2000",
        ],
        None,
    )?;
    assert_eq!(printed.lines().count(), 4);
    assert_eq!(ok(d, &["groups", "list"], None)?, "g\n");
    let described = ok(d, &["groups", "describe", "g"], None)?;
    let committed: i64 = described
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 5, "{l}");
            f[2].parse::<i64>().unwrap_or(0)
        })
        .sum();
    assert_eq!(committed, 4, "commits what it printed: {described}");
    // Continues after the commit.
    // Committed offsets win over --from-beginning, which only covers partitions without one.
    let rest = ok(
        d,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--timeout-ms",
            "500",
        ],
        None,
    )?;
    assert_eq!(rest.lines().count(), 6);
    assert_eq!(
        ok(
            d,
            &["groups", "reset", "g", "--topic", "t", "--to", "earliest"],
            None
        )?
        .lines()
        .count(),
        2
    );
    for l in ok(d, &["groups", "describe", "g"], None)?.lines() {
        assert_eq!(l.split('\t').nth(2), Some("0"));
    }
    ok(
        d,
        &["groups", "reset", "g", "--topic", "t", "--to", "ts:0"],
        None,
    )?;
    fails(
        d,
        &["groups", "reset", "g", "--topic", "t", "--to", "sideways"],
    )?;
    ok(d, &["groups", "delete", "g"], None)?;
    assert_eq!(ok(d, &["groups", "list"], None)?, "");
    fails(d, &["groups", "describe", "g"])?;
    Ok(())
}

#[test]
fn inspection_works_while_an_application_owns_the_directory() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &["topics", "create", "t"], None)?;
    ok(d, &["produce", "t"], Some(b"a\nb\n"))?;
    let app = topiclog::Log::open(d)?;
    app.append("t", 0, &[topiclog::Record::new("c")])?;
    assert_eq!(ok(d, &["topics", "list"], None)?, "t\n");
    assert_eq!(
        ok(
            d,
            &["consume", "t", "--from-beginning", "--timeout-ms", "200"],
            None
        )?,
        "a\nb\nc\n"
    );
    assert!(fails(d, &["topics", "create", "u"])?.contains("locked"));
    assert!(fails(d, &["produce", "t"])?.contains("locked"));
    app.close()?;
    Ok(())
}

#[test]
fn dump_log_prints_batches_records_and_checked_indexes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(
        d,
        &[
            "topics",
            "create",
            "t",
            "--config",
            "index.interval.bytes=100",
        ],
        None,
    )?;
    let lines: String = (0..50).map(|i| format!("k{i}:value-{i}\n")).collect();
    ok(
        d,
        &["produce", "t", "--key-separator", ":"],
        Some(lines.as_bytes()),
    )?;
    ok(d, &["produce", "t"], Some(b"x\ny\n"))?;
    let seg = d.join("t-0/00000000000000000000");
    let batches = ok(
        d,
        &[
            "dump-log",
            seg.with_extension("log")
                .to_str()
                .ok_or("a path that is not UTF-8")?,
        ],
        None,
    )?;
    let first: Vec<&str> = batches
        .lines()
        .next()
        .ok_or("dump-log printed nothing")?
        .split('\t')
        .collect();
    assert_eq!(first.len(), 12);
    assert_eq!(
        (first[0], first[1], first[5], first[9], first[10], first[11]),
        ("0", "0", "none", "crc-ok", "-", "-")
    );
    let records = ok(
        d,
        &[
            "dump-log",
            seg.with_extension("log")
                .to_str()
                .ok_or("a path that is not UTF-8")?,
            "--records",
        ],
        None,
    )?;
    assert!(records.contains("\tk7\tvalue-7\t"));
    let index = ok(
        d,
        &[
            "dump-log",
            seg.with_extension("index")
                .to_str()
                .ok_or("a path that is not UTF-8")?,
            "--verify",
        ],
        None,
    )?;
    assert!(
        !index.is_empty() && index.lines().all(|l| l.ends_with("\tok")),
        "{index}"
    );
    // Damage the log: dump-log reports it instead of failing.
    let mut bytes = std::fs::read(seg.with_extension("log"))?;
    bytes[70] ^= 0xff;
    std::fs::write(seg.with_extension("log"), &bytes)?;
    assert!(
        ok(
            d,
            &[
                "dump-log",
                seg.with_extension("log")
                    .to_str()
                    .ok_or("a path that is not UTF-8")?
            ],
            None
        )?
        .contains("crc-bad")
    );
    fails(
        d,
        &[
            "dump-log",
            d.join("nope.log")
                .to_str()
                .ok_or("a path that is not UTF-8")?,
        ],
    )?;
    Ok(())
}

#[test]
fn perf_produce_and_consume_report_rates() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &["topics", "create", "p", "--partitions", "2"], None)?;
    let out = tl(
        d,
        &[
            "perf",
            "produce",
            "p",
            "--records",
            "20000",
            "--record-size",
            "100",
            "--batch",
            "500",
            "--compression",
            "lz4",
        ],
        None,
    );
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout)?;
    assert!(
        line.starts_with("20000 records sent,")
            && line.contains("records/sec")
            && line.contains("p99 latency"),
        "{line}"
    );
    // Then the producer's metrics, a line each with its unit.
    for metric in [
        "record-send-total        20000 records",
        "batch-total              40 batches",
        "records-per-batch-avg    500.0 records",
        "request-latency-p99 ",
        "record-error-total       0 records",
        "buffer-available-bytes   33554432 bytes",
    ] {
        assert!(line.contains(metric), "{metric} in {line}");
    }
    let out = ok(d, &["perf", "consume", "p", "--records", "20000"], None)?;
    assert!(out.starts_with("20000 records read,"), "{out}");
    // The consumer's metrics follow, with units.
    for metric in [
        "records-consumed-total   20000 records",
        "records-lag-max          0 records",
        "records-lag p-1  0 records",
        "time-between-poll-avg    ",
        "rebalance-total          0 rebalances",
    ] {
        assert!(out.contains(metric), "{metric} in {out}");
    }
    fails(d, &["perf", "consume", "p", "--records", "30000"])?;
    Ok(())
}

#[test]
fn a_wrong_folder_is_refused_and_left_whole() -> TestResult {
    let home = tempfile::tempdir()?;
    let d = home.path();
    for sub in ["photos-2024", "release-1"] {
        std::fs::create_dir(d.join(sub))?;
        std::fs::write(d.join(sub).join("keep.jpg"), sub)?;
    }
    let err = fails(d, &["topics", "create", "x"])?;
    assert!(err.contains("not a topiclog data directory"), "{err}");
    let out = tl(d, &["produce", "foo"], Some(b"a line\n"));
    assert!(!out.status.success());
    for sub in ["photos-2024", "release-1"] {
        assert_eq!(std::fs::read_to_string(d.join(sub).join("keep.jpg"))?, sub);
    }
    assert_eq!(common::dir_names(d)?, ["photos-2024", "release-1"]);
    Ok(())
}

#[test]
fn internal_topic_names_are_reserved() -> TestResult {
    let dir = tempfile::tempdir()?;
    let err = fails(dir.path(), &["topics", "create", "__consumer_offsets"])?;
    assert!(err.contains("reserved"), "{err}");
    let err = fails(dir.path(), &["topics", "delete", "__consumer_offsets"])?;
    assert!(err.contains("internal"), "{err}");
    Ok(())
}

#[test]
fn read_write_commands_print_what_recovery_did() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &["topics", "create", "orders"], None)?;
    ok(d, &["produce", "orders"], Some(b"one\ntwo\n"))?;
    std::fs::remove_file(d.join(".topics").join("orders"))?;
    let out = tl(d, &["topics", "create", "other"], None);
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("recovery") && err.contains("'orders'") && err.contains("rebuilt"),
        "{err}"
    );
    let got = ok(
        d,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--timeout-ms",
            "300",
        ],
        None,
    )?;
    assert!(got.contains("one") && got.contains("two"), "{got}");
    Ok(())
}

#[test]
fn consume_escapes_nul_and_every_control_byte() -> TestResult {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    ok(d, &["topics", "create", "t"], None)?;
    ok(d, &["produce", "t"], Some(b"a\x00b\x1b[31mc\rd\x7f\n"))?;
    let got = ok(
        d,
        &["consume", "t", "--from-beginning", "--timeout-ms", "300"],
        None,
    )?;
    assert_eq!(got, "a\\x00b\\x1b[31mc\\rd\\x7f\n");
    Ok(())
}
