//! Opens a data directory whose partition files come from the fuzz input (topic `t`, one
//! partition, metadata `partitions=1` plus a few fixed settings and optional fuzzed lines).
//! Errors are fine; panics are bugs. By default the target also fails on silent
//! inconsistencies: a read returning batches out of offset order or at/past the high
//! watermark, an acknowledged append that reads back as something else, a log that changes
//! across a clean close/reopen, and a clean open that cuts or deletes data (damage at rest is
//! set aside and reported; only a torn tail after a crash is cut). [`Options::checks`] off (the fuzz target turns it off with
//! `TOPICLOG_FUZZ_PANICS_ONLY=1`) hunts panics only.
//!
//! Input layout (missing bytes read as zero; lengths are clamped to what is left):
//!
//! ```text
//! byte 0      flags: bit 0 write 00..<base0>.index     bit 1 write its .timeindex
//!                    bit 2 write a second segment       bit 3 clean-shutdown marker present
//!                    bit 4 segment.bytes=1024 (else 1048576)
//!                    bit 5 index.interval.bytes=4096 (else 64)
//!                    bit 6 segment.index.bytes=4096 (else the default)
//!                    bit 7 write recovery-point and log-start checkpoints
//! bytes 1-8   base offset of the first segment (u64 LE >> 1)
//! bytes 9-16  base offset of the second segment (u64 LE >> 1)
//! bytes 17-24 recovery point (i64 LE), bytes 25-32 log start offset (i64 LE)
//! then five u16 LE lengths: .index, .timeindex of segment 1; .log, .index, .timeindex of
//! segment 2; a u16 LE length of extra topic-metadata text (`key=value` lines); then those sections in that
//! order; everything left is segment 1's `.log`.
//! ```
//!
//! This file is the whole harness and has no libfuzzer dependency:
//! `fuzz_targets/open_partition_dir.rs` calls [`run`], and the main crate's
//! `tests/fuzz_regressions.rs` includes it with `#[path]` and calls [`run_with`] on each input
//! in `fuzz/regressions/open_partition_dir/`, then checks the returned [`Outcome`].

#[path = "common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;
use topiclog::{Log, LogOptions, PartitionHandle, Record, TopicConfig};

use common::{Input, Scratch, env_flag, scratch_dir};

const TOPIC: &str = "t";
/// Caps the batches read per open (a segment of tiny batches could hold very many).
const MAX_BATCHES: usize = 20_000;
const APPENDED_VALUE: &[u8] = b"fuzz-append";

/// How a run is set up and what fails it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Where the scratch directories go.
    pub scratch: Scratch,
    /// Besides panics, fail on silent inconsistencies: batches out of offset order or past the
    /// high watermark, an acknowledged append that does not read back, a log that changes
    /// across a clean close and reopen.
    pub checks: bool,
}

impl Options {
    /// Every check, scratch directories in the system temp directory: regression tests.
    #[allow(dead_code)] // used by tests/fuzz_regressions.rs, not by the fuzz target
    pub fn strict() -> Self {
        Options {
            scratch: Scratch::TempDir,
            checks: true,
        }
    }

    /// What the fuzz target uses: tmpfs scratch directories, `checks` off with
    /// `TOPICLOG_FUZZ_PANICS_ONLY=1`.
    pub fn from_env() -> Self {
        static PANICS_ONLY: OnceLock<bool> = OnceLock::new();
        Options {
            scratch: Scratch::Tmpfs,
            checks: !*PANICS_ONLY.get_or_init(|| env_flag("TOPICLOG_FUZZ_PANICS_ONLY")),
        }
    }
}

/// What a run got to do, for tests that pin more than "no check failed".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The read-only open (on the files as written) succeeded.
    pub read_only_opened: bool,
    /// The read-write open and its partition lookup succeeded.
    pub read_write_opened: bool,
    /// Offsets of the records the read-write pass decoded before its append, in read order.
    pub offsets_before_append: Vec<i64>,
    /// The append of the read-write pass: `Ok(offset)` or the error's text.
    pub append: Option<Result<i64, String>>,
    /// The clean close of the read-write handle and the read-only reopen after it succeeded.
    pub reopened: bool,
}

struct Files<'a> {
    flags: u8,
    base0: i64,
    base1: i64,
    recovery_point: i64,
    log_start: i64,
    index0: &'a [u8],
    time0: &'a [u8],
    log1: &'a [u8],
    index1: &'a [u8],
    time1: &'a [u8],
    props: &'a [u8],
    log0: &'a [u8],
}

fn parse(data: &[u8]) -> Files<'_> {
    let mut i = Input::new(data);
    let flags = i.u8();
    let base0 = (i.u64() >> 1) as i64;
    let base1 = (i.u64() >> 1) as i64;
    let recovery_point = i.u64() as i64;
    let log_start = i.u64() as i64;
    let lens: [usize; 6] = std::array::from_fn(|_| i.u16() as usize);
    Files {
        flags,
        base0,
        base1,
        recovery_point,
        log_start,
        index0: i.bytes(lens[0]),
        time0: i.bytes(lens[1]),
        log1: i.bytes(lens[2]),
        index1: i.bytes(lens[3]),
        time1: i.bytes(lens[4]),
        props: i.bytes(lens[5]),
        log0: i.rest(),
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Where the library keeps topic `t`'s metadata, relative to the data directory (found once
/// by letting the library create the topic, so the target follows the library's layout:
/// `.topics/t` today, `.topics/t.properties` in earlier versions). The file is the one that
/// creating `t` adds: the library may keep other (internal) topics there too.
fn topic_file(scratch: Scratch) -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = scratch_dir(scratch);
        let topics = dir.path().join(".topics");
        let files = || -> Vec<PathBuf> {
            let Ok(entries) = std::fs::read_dir(&topics) else {
                return Vec::new();
            };
            entries
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.is_file())
                .collect()
        };
        let log = LogOptions::new()
            .flusher(None)
            .open(dir.path())
            .expect("probe open");
        let before = files();
        log.create_topic_with(TOPIC, 1, TopicConfig::new())
            .expect("probe create topic");
        log.close().expect("probe close");
        let mut added: Vec<PathBuf> = files()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(
            added.len(),
            1,
            "probe: creating topic {TOPIC} should add one file to .topics, added {added:?}"
        );
        let name = added.pop().expect("one topic file");
        name.strip_prefix(dir.path())
            .expect("inside the probe dir")
            .to_path_buf()
    })
}

fn lay_out(root: &Path, f: &Files<'_>, scratch: Scratch) {
    // The data directory's identity: without it the library refuses a non-empty directory.
    write(
        &root.join("topiclog.properties"),
        b"format.version=1\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAA\n",
    );
    let topic_path = root.join(topic_file(scratch));
    std::fs::create_dir_all(topic_path.parent().expect("topic file has a parent"))
        .expect("mkdir .topics");
    let mut props = Vec::new();
    // Fuzzed settings first: `partitions=1` comes last so it always wins.
    props.extend_from_slice(f.props);
    props.push(b'\n');
    props.extend_from_slice(
        format!(
            "segment.bytes={}\nindex.interval.bytes={}\n",
            if f.flags & 16 != 0 { 1024 } else { 1 << 20 },
            if f.flags & 32 != 0 { 4096 } else { 64 },
        )
        .as_bytes(),
    );
    if f.flags & 64 != 0 {
        props.extend_from_slice(b"segment.index.bytes=4096\n");
    }
    props.extend_from_slice(b"partitions=1\n");
    write(&topic_path, &props);

    let pdir = root.join(format!("{TOPIC}-0"));
    std::fs::create_dir_all(&pdir).expect("mkdir partition");
    let seg = |base: i64, ext: &str| pdir.join(format!("{base:020}.{ext}"));
    write(&seg(f.base0, "log"), f.log0);
    if f.flags & 1 != 0 {
        write(&seg(f.base0, "index"), f.index0);
    }
    if f.flags & 2 != 0 {
        write(&seg(f.base0, "timeindex"), f.time0);
    }
    if f.flags & 4 != 0 && f.base1 != f.base0 {
        write(&seg(f.base1, "log"), f.log1);
        write(&seg(f.base1, "index"), f.index1);
        write(&seg(f.base1, "timeindex"), f.time1);
    }
    if f.flags & 8 != 0 {
        write(
            &root.join(".kafka_cleanshutdown"),
            b"{\"version\":0,\"brokerEpoch\":0}",
        );
    }
    if f.flags & 128 != 0 {
        write(
            &root.join("recovery-point-offset-checkpoint"),
            format!("0\n1\n{TOPIC} 0 {}\n", f.recovery_point).as_bytes(),
        );
        write(
            &root.join("log-start-offset-checkpoint"),
            format!("0\n1\n{TOPIC} 0 {}\n", f.log_start).as_bytes(),
        );
    }
}

/// What a pass over the partition saw: (offset, value) of every record that decoded, in order.
struct Seen {
    records: Vec<(i64, Option<Bytes>)>,
}

/// Reads from the log start while batches come back, decoding every record; then looks up a
/// few timestamps. Only checks what must hold whatever the files held.
fn read_everything(opts: Options, p: &PartitionHandle) -> Seen {
    let start = p.log_start_offset();
    let hw = p.high_watermark();
    let _ = p.log_end_offset();
    let mut seen = Seen {
        records: Vec::new(),
    };
    let mut timestamps = Vec::new();
    let mut off = start;
    let mut batches = 0usize;
    'reads: while batches < MAX_BATCHES {
        let Ok(r) = p.read(off, 64 << 10) else { break };
        if r.batches.is_empty() {
            break;
        }
        let requested = off;
        for (i, b) in r.batches.iter().enumerate() {
            batches += 1;
            if b.last_offset() < off {
                // A consumer following `next_offset()` would go backwards and loop.
                assert!(
                    !opts.checks,
                    "read({requested}) returned batch {}..={} {}",
                    b.base_offset(),
                    b.last_offset(),
                    if i == 0 {
                        "wholly below the requested offset".to_string()
                    } else {
                        format!(
                            "after a batch ending at {}: batches out of offset order",
                            off - 1
                        )
                    }
                );
                break 'reads;
            }
            assert!(
                !opts.checks || b.base_offset() < hw,
                "read({requested}) returned batch at {} at or past the high watermark {hw}",
                b.base_offset()
            );
            let _ = b.verify_crc();
            if let Ok(records) = b.owned_records() {
                for rec in records {
                    let Ok(rec) = rec else { break };
                    timestamps.push(rec.timestamp);
                    seen.records.push((rec.offset, rec.value));
                }
            }
            match b.last_offset().checked_add(1) {
                Some(n) => off = n,
                None => break 'reads,
            }
        }
    }
    let _ = p.records(start, 1 << 16);
    let mut probes = vec![i64::MIN, -1, 0, 1, i64::MAX];
    probes.extend(timestamps.iter().take(4));
    probes.extend(timestamps.iter().rev().take(2));
    for t in probes {
        if let Ok(Some((o, ts))) = p.offset_for_timestamp(t)
            && opts.checks
        {
            assert!(
                ts >= t,
                "offset_for_timestamp({t}) answered an older timestamp {ts}"
            );
            assert!(
                o >= p.log_start_offset() && o < p.high_watermark(),
                "offset_for_timestamp({t}) answered offset {o} outside the readable range"
            );
        }
    }
    seen
}

/// Checks that `offset` reads back as the record this target appended.
fn check_appended(opts: Options, p: &PartitionHandle, offset: i64, what: &str) {
    let Ok(r) = p.read(offset, 1) else { return };
    if !opts.checks {
        return;
    }
    let Some(b) = r.batches.first() else {
        panic!("{what}: acknowledged append at {offset} reads back as nothing");
    };
    assert!(
        b.base_offset() <= offset && offset <= b.last_offset(),
        "{what}: read({offset}) returned batch {}..={}",
        b.base_offset(),
        b.last_offset()
    );
    if b.verify_crc().is_ok()
        && let Ok(mut records) = b.owned_records()
    {
        let found = records.any(|r| {
            r.is_ok_and(|r| r.offset == offset && r.value.as_deref() == Some(APPENDED_VALUE))
        });
        assert!(
            found,
            "{what}: the record appended at {offset} is not in its batch"
        );
    }
}

/// The fuzz target's entry point: [`run_with`] with [`Options::from_env`].
#[allow(dead_code)] // used by the fuzz target; tests call `run_with`
pub fn run(data: &[u8]) {
    run_with(data, Options::from_env());
}

/// One run on `data`; panics on any failed check.
pub fn run_with(data: &[u8], opts: Options) -> Outcome {
    let f = parse(data);
    let dir = scratch_dir(opts.scratch);
    lay_out(dir.path(), &f, opts.scratch);
    let mut outcome = Outcome::default();

    // Read-only first, on the files exactly as written.
    if let Ok(log) = LogOptions::new().read_only(true).open(dir.path()) {
        outcome.read_only_opened = true;
        let _ = log.recovery_report();
        if let Ok(p) = log.partition(TOPIC, 0) {
            read_everything(opts, &p);
            assert!(
                p.append(&[Record::new("x")]).is_err(),
                "read-only append succeeded"
            );
        }
        let _ = log.close();
    }

    // Read-write: recovery, reads, one append, clean close.
    let Ok(log) = Log::open(dir.path()) else {
        return outcome;
    };
    let _ = log.recovery_report().truncated_bytes();
    let _ = log.recovery_report().damage_lines();
    if opts.checks {
        // After a clean close nothing is a torn tail: damage is set aside and reported, never
        // cut or deleted (segments below a checkpointed log start go, as retention's would).
        for pr in &log.recovery_report().partitions {
            if f.flags & 8 != 0 && f.flags & 128 == 0 {
                assert!(
                    pr.truncated_bytes == 0 && pr.segments_deleted == 0,
                    "a clean open cut or deleted data: {pr:?}"
                );
            }
            for d in &pr.damage {
                if let Some(copy) = &d.preserved {
                    assert!(copy.exists(), "damage kept aside is gone: {d:?}");
                }
            }
        }
    }
    let _ = log.stats();
    let _ = log.describe_topic(TOPIC);
    let Ok(p) = log.partition(TOPIC, 0) else {
        return outcome;
    };
    outcome.read_write_opened = true;
    outcome.offsets_before_append = read_everything(opts, &p)
        .records
        .iter()
        .map(|(o, _)| *o)
        .collect();
    let append = p.append(&[Record::new(Bytes::from_static(APPENDED_VALUE))
        .key("k")
        .timestamp(1_700_000_000_000)]);
    let appended = append.as_ref().ok().copied();
    outcome.append = Some(append.map(|at| at.base_offset).map_err(|e| e.to_string()));
    if let Some(at) = appended {
        assert_eq!(at.base_offset, at.last_offset, "one record, one offset");
        check_appended(opts, &p, at.base_offset, "read-write");
    }
    let before = read_everything(opts, &p);
    let end = p.log_end_offset();
    let start = p.log_start_offset();
    drop(p);
    if log.close().is_err() {
        return outcome;
    }

    // After a clean close, a reopen must see the same log.
    let reopened = LogOptions::new().read_only(true).open(dir.path());
    let log = match reopened {
        Ok(log) => log,
        Err(_) if !opts.checks => return outcome,
        Err(e) => panic!("read-only reopen after a clean close failed: {e}"),
    };
    let Ok(p) = log.partition(TOPIC, 0) else {
        assert!(!opts.checks, "partition missing after a clean close");
        return outcome;
    };
    outcome.reopened = true;
    let after = read_everything(opts, &p);
    if opts.checks {
        assert_eq!(
            p.log_end_offset(),
            end,
            "log end offset changed across a clean close"
        );
        assert_eq!(
            p.log_start_offset(),
            start,
            "log start offset changed across a clean close"
        );
        assert_eq!(
            after.records, before.records,
            "records read back changed across a clean close"
        );
    }
    if let Some(at) = appended {
        check_appended(opts, &p, at.base_offset, "after a clean close");
    }
    let _ = log.close();
    outcome
}
