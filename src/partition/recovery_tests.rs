#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::super::log_bytes::PreadLog;
use super::super::open_segment::*;
use super::*;
use crate::io::map::Mapped;
use crate::{LogOptions, Record};
use std::fs::File;
use std::path::PathBuf;

/// What a trusted check established: (valid length, end offset, size, index entries, time
/// entries, max timestamp, its offset, first batch's max timestamp).
type Outcome = (u64, i64, u64, u32, u32, i64, i64, i64);

fn outcome(s: Option<Scan>) -> Option<Outcome> {
    s.map(|s| {
        assert!(s.problem.is_none());
        let st = s.state;
        (
            s.valid_len,
            st.end_offset,
            st.size,
            st.index_entries,
            st.time_entries,
            st.max_timestamp,
            st.max_timestamp_offset,
            st.first_batch_max_timestamp,
        )
    })
}

/// The log of segment `base` in `dir`, mapped and through `pread`.
fn both_views(dir: &Path, base: i64) -> (Option<Arc<Mapped>>, u64, PreadLog) {
    let paths = SegPaths::new(dir, base);
    let (map, len) = map_whole(&paths.log).unwrap();
    let file = File::open(&paths.log).unwrap();
    (map, len, PreadLog { file, len })
}

fn mapped(map: Option<&Arc<Mapped>>, len: u64) -> &[u8] {
    map.and_then(|m| m.slice(0, len as usize)).unwrap_or(&[])
}

fn trusted_both_ways(dir: &Path, base: i64) -> [Option<Outcome>; 2] {
    let paths = SegPaths::new(dir, base);
    let (map, len, unmapped) = both_views(dir, base);
    [
        outcome(try_trusted(
            mapped(map.as_ref(), len),
            base,
            &paths,
            256,
            Check::Headers,
        )),
        outcome(try_trusted(&unmapped, base, &paths, 256, Check::Headers)),
    ]
}

/// `scan` from the start through both views: (valid length, end offset, problem).
fn scanned_both_ways(dir: &Path, base: i64, check: Check) -> [(u64, i64, Option<String>); 2] {
    let (map, len, unmapped) = both_views(dir, base);
    let run = |s: Scan| (s.valid_len, s.state.end_offset, s.problem);
    let fresh = || (SegmentState::empty(base), IndexTracker::new(256));
    let (st, tr) = fresh();
    let a = scan(mapped(map.as_ref(), len), base, 0, st, tr, true, check);
    let (st, tr) = fresh();
    let b = scan(&unmapped, base, 0, st, tr, true, check);
    [run(a), run(b)]
}

/// A cleanly closed partition of 8 KiB segments; returns its directory and segment bases.
fn rolled_log(dir: &Path) -> (PathBuf, Vec<i64>) {
    let log = LogOptions::new().flusher(None).open(dir).unwrap();
    let mut config = crate::TopicConfig::new();
    config.segment_bytes = 8192;
    config.index_interval_bytes = 256;
    log.create_topic_with("t", 1, config).unwrap();
    let h = log.partition("t", 0).unwrap();
    for i in 0..400u32 {
        let rec = Record::new(format!("value {i} {}", "x".repeat(40)))
            .key(format!("k{i}"))
            .timestamp(1_700_000_000_000 + i64::from(i % 7) * 1000);
        h.append(&[rec]).unwrap();
    }
    log.close().unwrap();
    let pdir = dir.join("t-0");
    let mut bases: Vec<i64> = fs::read_dir(&pdir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            layout::parse_plain(&name, FileKind::Log)
        })
        .collect();
    bases.sort_unstable();
    assert!(bases.len() > 3, "8 KiB segments must have rolled");
    (pdir, bases)
}

#[test]
fn a_trusted_check_reads_the_same_through_pread_as_through_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (pdir, bases) = rolled_log(dir.path());
    for &base in &bases {
        let [mapped, unmapped] = trusted_both_ways(&pdir, base);
        assert!(mapped.is_some(), "segment {base} passes the trusted check");
        assert_eq!(mapped, unmapped, "segment {base}");
    }

    // A damaged last batch header: both ways refuse the segment alike.
    let base = bases[1];
    let path = pdir.join(layout::file_name(base, FileKind::Log));
    let mut bytes = fs::read(&path).unwrap();
    let index = fs::read(pdir.join(layout::file_name(base, FileKind::Index))).unwrap();
    let (_, pos) = index::offset_entry(&index, index.len() / INDEX_ENTRY - 1).unwrap();
    bytes[pos as usize + 16] = 7; // the magic byte of the last indexed batch
    fs::write(&path, &bytes).unwrap();
    assert_eq!(trusted_both_ways(&pdir, base), [None, None]);
}

#[test]
fn a_scan_finds_the_same_end_and_problem_through_pread_as_through_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (pdir, bases) = rolled_log(dir.path());
    let base = bases[0];
    let path = pdir.join(layout::file_name(base, FileKind::Log));
    let whole = fs::read(&path).unwrap();
    // Whole, then cut inside the last batch by fewer and by more bytes than a header, inside
    // the last header, and with stray bytes after the last whole batch.
    let cuts = [0, 10, 100, whole.len() - 30];
    for cut in cuts {
        fs::write(&path, &whole[..whole.len() - cut]).unwrap();
        for check in [Check::Crc, Check::Headers] {
            let [a, b] = scanned_both_ways(&pdir, base, check);
            assert_eq!(a, b, "cut {cut}, {check:?}");
            assert_eq!(a.2.is_some(), cut > 0, "cut {cut}: {:?}", a.2);
        }
    }
    let mut stray = whole.clone();
    stray.extend_from_slice(&[0; 20]);
    fs::write(&path, &stray).unwrap();
    let [a, b] = scanned_both_ways(&pdir, base, Check::Crc);
    assert_eq!(a, b);
    assert_eq!(a.0, whole.len() as u64);
    assert_eq!(
        a.2.as_deref(),
        Some("20 stray bytes after the last whole batch")
    );
    // A flipped byte in a record: only the CRC check sees it, the same way through both.
    let mut flipped = whole;
    let at = flipped.len() - 5;
    flipped[at] ^= 0xff;
    fs::write(&path, &flipped).unwrap();
    let [a, b] = scanned_both_ways(&pdir, base, Check::Crc);
    assert_eq!(a, b);
    assert!(a.2.unwrap().starts_with("CRC mismatch"));
    let [a, b] = scanned_both_ways(&pdir, base, Check::Headers);
    assert_eq!(a, b);
    assert_eq!(a.2, None);
}
