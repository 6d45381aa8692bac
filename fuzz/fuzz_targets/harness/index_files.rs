//! Damaged `.index` / `.timeindex` files next to a VALID log must never lose or corrupt data.
//!
//! Once per process, the real library writes a template data directory: topic `t`, one
//! partition, `index.interval.bytes=64`, ~80 records in 40 batches (every codec, null keys and
//! values, headers, out-of-order CreateTime timestamps), closed cleanly. Each run copies it
//! to a scratch directory and replaces one segment's index files with bytes from the input:
//!
//! ```text
//! byte 0   flags: bit 0 remove the clean-shutdown marker (forces recovery)
//!                 bit 1 use the multi-segment template (segment.bytes=1024) instead of one
//!                       segment (segment.bytes=1048576)
//!                 bit 2 delete the .index instead of writing it
//!                 bit 3 delete the .timeindex instead of writing it
//! byte 1   which segment gets the fuzzed files (modulo the segment count)
//! byte 2-3 split point (u16 LE): the rest of the input is .index ++ .timeindex
//! ```
//!
//! It then opens the directory read-only, read-write (checks, appends one record, checks,
//! closes) and read-only again, and each time checks that every offset reads back exactly what
//! was written, that a sequential consume sees every record once, and that
//! `offset_for_timestamp` gives the exact answer.
//!
//! Wrong data returned as `Ok` always fails the run. A typed error (or a batch failing its
//! CRC) from a read of a valid log also fails it, unless [`Options::allow_errors`] is set (the
//! fuzz target sets it from `TOPICLOG_FUZZ_ALLOW_ERRORS=1`): then only silent loss or
//! corruption counts.
//!
//! This file is the whole harness and has no libfuzzer dependency: `fuzz_targets/index_files.rs`
//! calls [`run`], and the main crate's `tests/fuzz_regressions.rs` includes it with `#[path]`
//! and calls [`run_with`] on each input in `fuzz/regressions/index_files/`.

#[path = "common.rs"]
mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use bytes::Bytes;
use topiclog::{Batch, BatchBuilder, Compression, Header, Log, LogOptions, Record, TopicConfig};

use common::{Input, Scratch, env_flag, restore, scratch_dir, snapshot};

const TOPIC: &str = "t";
const BATCHES: usize = 40;
const BASE_TS: i64 = 1_700_000_000_000;
/// Timestamp of the record each read-write open appends: in the middle of the range, so
/// `offset_for_timestamp` must still find the older record with a larger timestamp first.
const APPENDED_TS: i64 = BASE_TS + 50_500;

#[derive(Debug, Clone, PartialEq)]
struct Expected {
    offset: i64,
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

struct Template {
    files: Vec<(PathBuf, Vec<u8>)>,
    /// Base offsets of the segments, ascending.
    segments: Vec<i64>,
    expected: Vec<Expected>,
}

/// How a run is set up and what fails it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Where the scratch directories go.
    pub scratch: Scratch,
    /// A typed error from the library ends the checks of that handle instead of failing the
    /// run: only silent loss or corruption (and panics) count.
    pub allow_errors: bool,
}

impl Options {
    /// Every check, scratch directories in the system temp directory: regression tests.
    #[allow(dead_code)] // used by tests/fuzz_regressions.rs, not by the fuzz target
    pub fn strict() -> Self {
        Options {
            scratch: Scratch::TempDir,
            allow_errors: false,
        }
    }

    /// What the fuzz target uses: tmpfs scratch directories, `allow_errors` from
    /// `TOPICLOG_FUZZ_ALLOW_ERRORS=1`.
    pub fn from_env() -> Self {
        static ALLOW: OnceLock<bool> = OnceLock::new();
        Options {
            scratch: Scratch::Tmpfs,
            allow_errors: *ALLOW.get_or_init(|| env_flag("TOPICLOG_FUZZ_ALLOW_ERRORS")),
        }
    }
}

/// Unwraps a library result; an error is a failure unless `$opts.allow_errors`, where it ends
/// the checks of this handle.
macro_rules! ok_or_bail {
    ($opts:expr, $e:expr, $($what:tt)+) => {
        match $e {
            Ok(v) => v,
            Err(e) => {
                if $opts.allow_errors {
                    return;
                }
                panic!("{}: unexpected error on a valid log: {e}", format!($($what)+));
            }
        }
    };
}

fn record_at(offset: i64) -> Expected {
    let ts = BASE_TS + ((offset * 37) % 101) * 1000;
    let key = (offset % 7 != 3).then(|| format!("key-{offset}").into_bytes());
    let value =
        (offset % 11 != 5).then(|| vec![b'a' + (offset % 26) as u8; (offset * 13 % 90) as usize]);
    let headers = if offset % 4 == 1 {
        vec![Header::new("h", format!("{offset}")), Header::null("n")]
    } else {
        Vec::new()
    };
    Expected {
        offset,
        ts,
        key,
        value,
        headers,
    }
}

fn build_template(segment_bytes: u32, scratch: Scratch) -> Template {
    let dir = scratch_dir(scratch);
    let log = LogOptions::new()
        .flusher(None)
        .open(dir.path())
        .expect("open template log");
    let config = TopicConfig::new()
        .with("segment.bytes", &segment_bytes.to_string())
        .and_then(|c| c.with("index.interval.bytes", "64"))
        .expect("template config");
    log.create_topic_with(TOPIC, 1, config)
        .expect("create template topic");
    let p = log.partition(TOPIC, 0).expect("template partition");
    let mut expected = Vec::new();
    let codecs: Vec<Compression> = Compression::ALL
        .into_iter()
        .filter(|c| *c != Compression::None && c.is_available())
        .collect();
    for i in 0..BATCHES {
        // Every eighth batch compressed (cycling through the codecs): enough to cover them,
        // few enough that decompression does not dominate each run.
        let codec = if i % 8 == 7 {
            codecs[(i / 8) % codecs.len()]
        } else {
            Compression::None
        };
        let mut b = BatchBuilder::new(codec);
        let first = expected.len() as i64;
        for j in 0..(i % 3 + 1) as i64 {
            let e = record_at(first + j);
            b.push(e.key.as_deref(), e.value.as_deref(), &e.headers, e.ts)
                .expect("template push");
            expected.push(e);
        }
        let r = p.append_builder(&mut b).expect("template append");
        assert_eq!(r.base_offset, first);
    }
    log.close().expect("close template log");
    let files = snapshot(dir.path());
    let mut segments: Vec<i64> = files
        .iter()
        .filter_map(|(rel, _)| {
            let name = rel.strip_prefix(format!("{TOPIC}-0")).ok()?.to_str()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    segments.sort_unstable();
    assert!(!segments.is_empty(), "template has no segment");
    Template {
        files,
        segments,
        expected,
    }
}

/// The template, built once per process (`scratch` only says where it is built).
fn template(multi: bool, scratch: Scratch) -> &'static Template {
    static ONE: OnceLock<Template> = OnceLock::new();
    static MANY: OnceLock<Template> = OnceLock::new();
    if multi {
        let t = MANY.get_or_init(|| build_template(1024, scratch));
        assert!(
            t.segments.len() > 1,
            "segment.bytes=1024 should give several segments"
        );
        t
    } else {
        ONE.get_or_init(|| build_template(1 << 20, scratch))
    }
}

/// Checks one batch returned by a read: valid CRC, and records exactly as written, one per
/// offset from its base to its last offset.
fn check_batch(opts: Options, batch: &Batch, exp: &[Expected], what: &str) {
    ok_or_bail!(
        opts,
        batch.verify_crc(),
        "{what}: batch at {}",
        batch.base_offset()
    );
    let records = ok_or_bail!(
        opts,
        batch.owned_records(),
        "{what}: batch at {}",
        batch.base_offset()
    );
    let mut next = batch.base_offset();
    for r in records {
        let r = ok_or_bail!(opts, r, "{what}: record of batch {}", batch.base_offset());
        assert_eq!(
            r.offset,
            next,
            "{what}: record offsets of batch {} skip",
            batch.base_offset()
        );
        let e = usize::try_from(r.offset)
            .ok()
            .and_then(|i| exp.get(i))
            .unwrap_or_else(|| panic!("{what}: record at offset {} was never written", r.offset));
        assert_eq!(
            r.timestamp, e.ts,
            "{what}: timestamp at offset {}",
            r.offset
        );
        assert_eq!(
            r.key.as_deref(),
            e.key.as_deref(),
            "{what}: key at offset {}",
            r.offset
        );
        assert_eq!(
            r.value.as_deref(),
            e.value.as_deref(),
            "{what}: value at offset {}",
            r.offset
        );
        assert_eq!(
            r.headers, e.headers,
            "{what}: headers at offset {}",
            r.offset
        );
        next += 1;
    }
    assert_eq!(
        next,
        batch.last_offset() + 1,
        "{what}: batch {}..={} holds records up to {}",
        batch.base_offset(),
        batch.last_offset(),
        next - 1
    );
}

/// Everything a reader can observe must match `exp`.
fn verify(opts: Options, log: &Log, exp: &[Expected], what: &str) {
    let p = ok_or_bail!(opts, log.partition(TOPIC, 0), "{what}: partition");
    let end = exp.len() as i64;
    assert_eq!(p.log_start_offset(), 0, "{what}: log start offset");
    assert_eq!(p.log_end_offset(), end, "{what}: log end offset");
    assert_eq!(p.high_watermark(), end, "{what}: high watermark");

    // Random access: the first batch returned holds the requested offset.
    for o in 0..end {
        let r = ok_or_bail!(opts, p.read(o, 1), "{what}: read({o})");
        let Some(first) = r.batches.first() else {
            panic!("{what}: read({o}) returned nothing below the high watermark {end}");
        };
        assert!(
            first.base_offset() <= o && o <= first.last_offset(),
            "{what}: read({o}) returned batch {}..={} instead of the one holding {o}",
            first.base_offset(),
            first.last_offset()
        );
        check_batch(opts, first, exp, &format!("{what}: read({o})"));
    }

    // Sequential consume from the start sees every batch once, in order.
    let mut next = 0i64;
    while next < end {
        let r = ok_or_bail!(opts, p.read(next, 700), "{what}: consume read({next})");
        assert!(
            !r.batches.is_empty(),
            "{what}: consume read({next}) returned nothing below {end}"
        );
        for b in &r.batches {
            assert!(
                b.base_offset() <= next && next <= b.last_offset(),
                "{what}: consume at {next} got batch {}..={}",
                b.base_offset(),
                b.last_offset()
            );
            check_batch(opts, b, exp, &format!("{what}: consume"));
            next = b.last_offset() + 1;
        }
    }
    assert_eq!(next, end, "{what}: consume ended at {next}, not {end}");
    let r = ok_or_bail!(opts, p.read(end, 1 << 20), "{what}: read(end)");
    assert!(
        r.batches.is_empty(),
        "{what}: read at the end returned batches"
    );
    assert!(
        p.read(end + 1, 1).is_err(),
        "{what}: read past the end succeeded"
    );

    // Decoded records from a mid offset.
    let from = end / 3;
    let recs = ok_or_bail!(opts, p.records(from, usize::MAX), "{what}: records({from})");
    assert_eq!(
        recs.len() as i64,
        end - from,
        "{what}: records({from}) count"
    );
    for (r, e) in recs.iter().zip(&exp[from as usize..]) {
        assert_eq!(r.offset, e.offset, "{what}: records({from})");
        assert_eq!(
            r.value.as_deref(),
            e.value.as_deref(),
            "{what}: records({from}) value"
        );
    }

    // Exact timestamp lookups, including out-of-order CreateTime.
    let mut probes = vec![i64::MIN, -1, 0, BASE_TS - 1, i64::MAX, APPENDED_TS];
    for k in [0, 1, 2, 37, 50, 51, 74, 99, 100, 101] {
        probes.push(BASE_TS + k * 1000);
        probes.push(BASE_TS + k * 1000 + 500);
    }
    for t in probes {
        let got = ok_or_bail!(
            opts,
            p.offset_for_timestamp(t),
            "{what}: offset_for_timestamp({t})"
        );
        let want = exp.iter().find(|e| e.ts >= t).map(|e| (e.offset, e.ts));
        assert_eq!(got, want, "{what}: offset_for_timestamp({t})");
    }
}

/// The fuzz target's entry point: [`run_with`] with [`Options::from_env`], after writing the
/// templates out if `TOPICLOG_FUZZ_DUMP_TEMPLATE` asks for it.
#[allow(dead_code)] // used by the fuzz target; tests call `run_with`
pub fn run(data: &[u8]) {
    dump_templates();
    run_with(data, Options::from_env());
}

/// One run on `data`; panics on any failed check.
pub fn run_with(data: &[u8], opts: Options) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let seg_pick = input.u8();
    let split = input.u16() as usize;
    let rest = input.rest();
    let (index, time) = rest.split_at(split.min(rest.len()));

    let tpl = template(flags & 2 != 0, opts.scratch);
    let dir = scratch_dir(opts.scratch);
    restore(dir.path(), &tpl.files);
    let base = tpl.segments[seg_pick as usize % tpl.segments.len()];
    let pdir = dir.path().join(format!("{TOPIC}-0"));
    let index_path = pdir.join(format!("{base:020}.index"));
    let time_path = pdir.join(format!("{base:020}.timeindex"));
    if flags & 4 != 0 {
        let _ = std::fs::remove_file(&index_path);
    } else {
        std::fs::write(&index_path, index).expect("write .index");
    }
    if flags & 8 != 0 {
        let _ = std::fs::remove_file(&time_path);
    } else {
        std::fs::write(&time_path, time).expect("write .timeindex");
    }
    if flags & 1 != 0 {
        std::fs::remove_file(dir.path().join(".kafka_cleanshutdown")).expect("remove marker");
    }

    let mut exp = tpl.expected.clone();

    // Read-only first: it sees the damaged files as they are and may not repair them.
    {
        let log = ok_or_bail!(
            opts,
            LogOptions::new().read_only(true).open(dir.path()),
            "read-only open"
        );
        verify(opts, &log, &exp, "read-only open");
        ok_or_bail!(opts, log.close(), "read-only close");
    }

    // Read-write: recovery may rebuild; then an append must land right after the old end.
    {
        let log = ok_or_bail!(opts, Log::open(dir.path()), "read-write open");
        verify(opts, &log, &exp, "read-write open");
        let p = ok_or_bail!(opts, log.partition(TOPIC, 0), "partition");
        let rec = Record::new(Bytes::from_static(b"appended"))
            .key(Bytes::from_static(b"z"))
            .timestamp(APPENDED_TS);
        let at = ok_or_bail!(opts, p.append(&[rec]), "append after reopen");
        assert_eq!(
            at.base_offset,
            exp.len() as i64,
            "append offset after reopen"
        );
        exp.push(Expected {
            offset: at.base_offset,
            ts: APPENDED_TS,
            key: Some(b"z".to_vec()),
            value: Some(b"appended".to_vec()),
            headers: Vec::new(),
        });
        verify(opts, &log, &exp, "read-write after append");
        ok_or_bail!(opts, log.close(), "read-write close");
    }

    // Read-only again, after the clean close.
    {
        let log = ok_or_bail!(
            opts,
            LogOptions::new().read_only(true).open(dir.path()),
            "read-only reopen"
        );
        verify(opts, &log, &exp, "read-only reopen");
        ok_or_bail!(opts, log.close(), "read-only reclose");
    }
}

/// With `TOPICLOG_FUZZ_DUMP_TEMPLATE=<dir>` in the environment, writes both templates to
/// `<dir>/one` and `<dir>/many` (once per process), for making seed inputs from real files.
fn dump_templates() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if let Some(dir) = std::env::var_os("TOPICLOG_FUZZ_DUMP_TEMPLATE") {
            let dir = PathBuf::from(dir);
            restore(&dir.join("one"), &template(false, Scratch::Tmpfs).files);
            restore(&dir.join("many"), &template(true, Scratch::Tmpfs).files);
        }
    });
}
