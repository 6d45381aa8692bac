//! Every input in `fuzz/regressions/` as a named test: each runs the same harness (and so the
//! same checks) as its fuzz target, with every check on and scratch directories in the system
//! temp directory. The harnesses live in `fuzz/fuzz_targets/harness/` and have no libfuzzer
//! dependency; see `fuzz/README.md`.
#![allow(clippy::indexing_slicing)]
// Each harness file includes its own copy of `harness/common.rs`, so that a fuzz target can
// include just its harness.
#![allow(clippy::duplicate_mod)]

#[path = "../fuzz/fuzz_targets/harness/batch_decode.rs"]
mod batch_decode;
#[path = "../fuzz/fuzz_targets/harness/index_files.rs"]
mod index_files;
#[path = "../fuzz/fuzz_targets/harness/open_partition_dir.rs"]
mod open_partition_dir;

/// The bytes of `fuzz/regressions/<target>/<name>`, built into the test binary.
macro_rules! regression {
    ($target:literal, $name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fuzz/regressions/",
            $target,
            "/",
            $name
        ))
        .as_slice()
    };
}

fn index_files(data: &[u8]) {
    index_files::run_with(data, index_files::Options::strict());
}

/// Runs the `open_partition_dir` harness (which fails on panics, batches out of offset order,
/// acknowledged appends that do not read back and logs that change across a clean close), then
/// checks that the run got all the way: both opens, the append, the clean close and the
/// reopen. Returns what it saw for input-specific checks.
fn open_partition_dir(data: &[u8]) -> open_partition_dir::Outcome {
    let o = open_partition_dir::run_with(data, open_partition_dir::Options::strict());
    assert!(o.read_only_opened, "read-only open failed: {o:?}");
    assert!(o.read_write_opened, "read-write open failed: {o:?}");
    let Some(Ok(appended)) = o.append else {
        panic!("append refused: {o:?}");
    };
    assert!(o.reopened, "clean close or reopen failed: {o:?}");
    assert!(
        o.offsets_before_append.windows(2).all(|w| w[0] < w[1]),
        "records read out of order or twice: {o:?}"
    );
    if let Some(&last) = o.offsets_before_append.last() {
        assert!(
            appended > last,
            "append at {appended} below a readable offset: {o:?}"
        );
    }
    o
}

// ---- index_files: damaged index files next to a valid log; every offset must read back ----

#[test]
fn trusted_index_entry_mid_batch_read_error() {
    index_files(regression!(
        "index_files",
        "trusted-index-entry-mid-batch-read-error"
    ));
}

#[test]
fn trusted_index_entry_at_later_batch_skips_offset() {
    index_files(regression!(
        "index_files",
        "trusted-index-entry-at-later-batch-skips-offset"
    ));
}

#[test]
fn trusted_index_entry_past_segment_end_skips_offsets() {
    index_files(regression!(
        "index_files",
        "trusted-index-entry-past-segment-end-skips-offsets"
    ));
}

#[test]
fn empty_timeindex_trusted_max_timestamp_wrong_lookup() {
    index_files(regression!(
        "index_files",
        "empty-timeindex-trusted-max-timestamp-wrong-lookup"
    ));
}

#[test]
fn resumed_timeindex_lost_its_tail_wrong_lookup() {
    // No clean-shutdown marker, so the segment holding the recovery point is resumed at its
    // last offset entry. The time index ends early (a consistent prefix), and the batch with
    // the segment's largest timestamp lies between its last entry and the resume point:
    // resuming kept the lower maximum and `offset_for_timestamp` answered nothing. The batch
    // headers over that stretch are now checked, and such a segment is scanned whole.
    index_files(regression!(
        "index_files",
        "resumed-timeindex-lost-its-tail-wrong-lookup"
    ));
}

// Damaged time-index entries in a trusted segment (clean-shutdown marker). The whole-index
// check (timestamps strictly increasing) refuses the first index at open; the second stays
// sorted, so its floor entry is checked against the log at lookup (the batch ending at the
// entry's offset must have the entry's max timestamp) and a mismatch scans the segment.

#[test]
fn trusted_timeindex_entry_out_of_order_wrong_lookup() {
    index_files(regression!(
        "index_files",
        "trusted-timeindex-entry-out-of-order-wrong-lookup"
    ));
}

#[test]
fn trusted_timeindex_first_entry_too_old_wrong_lookup() {
    index_files(regression!(
        "index_files",
        "trusted-timeindex-first-entry-too-old-wrong-lookup"
    ));
}

// ---- open_partition_dir: directories built from the input; no panic, consistent reads ----

// Offset overflows. Segment bases above the library's largest offset (`i64::MAX - 2^32`) are
// not loaded, so the partition opens empty and the append lands at 0.

#[test]
fn append_at_offset_i64_max_overflows_writer() {
    open_partition_dir(regression!(
        "open_partition_dir",
        "append-at-offset-i64-max-overflows-writer"
    ));
}

#[test]
fn scan_batch_ending_at_i64_max_overflows_recovery() {
    open_partition_dir(regression!(
        "open_partition_dir",
        "scan-batch-ending-at-i64-max-overflows-recovery"
    ));
}

#[test]
fn trusted_timeindex_rel_overflows_recovery() {
    open_partition_dir(regression!(
        "open_partition_dir",
        "trusted-timeindex-rel-overflows-recovery"
    ));
}

#[test]
fn time_index_floor_overflows_offset_for_timestamp() {
    open_partition_dir(regression!(
        "open_partition_dir",
        "time-index-floor-overflows-offset-for-timestamp"
    ));
}

#[test]
fn trusted_index_header_i64_min_overflows_recovery() {
    // Segment 10^18 whose only batch header claims base offset i64::MIN: the trusted open is
    // refused, recovery drops the batch, and the segment is empty at its base offset.
    let o = open_partition_dir(regression!(
        "open_partition_dir",
        "trusted-index-header-i64-min-overflows-recovery"
    ));
    assert_eq!(o.offsets_before_append, Vec::<i64>::new());
    assert_eq!(o.append, Some(Ok(1_000_000_000_000_000_000)));
}

#[test]
fn trusted_log_duplicate_batch_read_out_of_order() {
    // Batches 0..=1, 0..=1, 2..=2 with a clean-shutdown marker: offsets 0 and 1 are read once
    // (the harness checks the order; the helper checks nothing is read twice).
    let o = open_partition_dir(regression!(
        "open_partition_dir",
        "trusted-log-duplicate-batch-read-out-of-order"
    ));
    assert_eq!(o.offsets_before_append[..2], [0, 1]);
}

#[test]
fn trusted_index_damaged_entries_append_lost_after_clean_close() {
    // Index entries 12-13 damaged (a negative relative offset) and a CRC mismatch in batch
    // 75..=77: the index fails the whole-file check, so no open trusts the segment; recovery
    // stops at batch 75 and the append lands there, and the reopen after the clean close
    // reads the same log (the harness checks that).
    let o = open_partition_dir(regression!(
        "open_partition_dir",
        "trusted-index-damaged-entries-append-lost-after-clean-close"
    ));
    assert_eq!(o.offsets_before_append, (0..75).collect::<Vec<i64>>());
    assert_eq!(o.append, Some(Ok(75)));
}

#[test]
fn trusted_log_negative_last_offset_delta_read_backwards() {
    // A batch claiming offsets 27..=24 inside a cleanly closed, trusted segment. Replaying
    // producer state meets it, the partition is recovered as after a crash, and the log is
    // cut there: offsets 0..=26 read back and the append lands at 27, as an unclean open of
    // the same bytes gives.
    let o = open_partition_dir(regression!(
        "open_partition_dir",
        "trusted-log-negative-last-offset-delta-read-backwards"
    ));
    assert_eq!(o.offsets_before_append, (0..27).collect::<Vec<i64>>());
    assert_eq!(o.append, Some(Ok(27)));
}

#[test]
fn trusted_segment_left_last_by_a_cut_append_lost_after_clean_close() {
    // Segment 13 (marker present, so trusted) holds batches 13..=24, three of them (13..=14,
    // 21..=23, 24) with a bad CRC, and a second, empty segment starts far past its end. The
    // gap used to cut the second segment and leave segment 13 the one appends continue, which
    // once lost an acknowledged append behind batch 24. A gap between segments is now normal
    // (a compacted log has them): both segments stay, segment 13 stays sealed (its bad CRCs are
    // reported to readers, batch by batch), and the append lands in the second segment, where
    // the reopen after the clean close reads it back.
    let o = open_partition_dir(regression!(
        "open_partition_dir",
        "trusted-segment-left-last-by-a-cut-append-lost-after-clean-close"
    ));
    assert_eq!(o.offsets_before_append, (15..25).collect::<Vec<i64>>());
    assert_eq!(o.append, Some(Ok(16_889_598_114_267_135)));
}

/// The committed seeds of `fuzz/<corpus>/<target>/` (descriptive names; inputs a local fuzz
/// run added are named by their SHA-1 and skipped), sorted.
fn seeds(target: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let p = e?.path();
        let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let generated = name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !generated && !name.starts_with('.') {
            out.push((name, std::fs::read(&p)?));
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    Ok(out)
}

/// The seed corpus passes every check of its target: what the fuzzing step in CI starts from,
/// and what still runs when fuzzing cannot (no cargo-fuzz or no sanitizer build).
#[test]
fn seed_corpus_passes_every_target() -> std::io::Result<()> {
    for (name, data) in seeds("batch_decode")? {
        eprintln!("batch_decode/{name}");
        batch_decode::run(&data);
    }
    for (name, data) in seeds("index_files")? {
        eprintln!("index_files/{name}");
        index_files(&data);
    }
    for (name, data) in seeds("open_partition_dir")? {
        eprintln!("open_partition_dir/{name}");
        open_partition_dir::run_with(&data, open_partition_dir::Options::strict());
    }
    Ok(())
}

#[test]
fn recovery_point_far_past_the_log_end_moves_across_a_clean_close() {
    // A cleanly closed partition whose checkpointed recovery point (i64::MAX) lies past every
    // segment: the open raised the log end to it in a new segment named past the largest
    // offset a segment may have, which the next open ignored, so the end moved back across a
    // clean close. A recovery point past that largest offset is not believed.
    let o = open_partition_dir(regression!(
        "open_partition_dir",
        "recovery-point-far-past-the-log-end-moves-across-a-clean-close"
    ));
    assert!(o.offsets_before_append.is_empty(), "{o:?}");
}

#[test]
fn read_only_refresh_trusts_what_the_open_did_not() {
    // A cleanly closed segment whose trusted checks pass but whose batch headers, replayed for
    // producer state, show damage: a read-only open scans it and ends at 19. A read at that
    // end refreshed the view with the trusted load alone (no replay), which ended at 79, and
    // returned batches past the high watermark the reader had been given; and since the file
    // stays longer than the view, every read at the end refreshed again.
    let o = open_partition_dir(regression!(
        "open_partition_dir",
        "read-only-refresh-trusts-what-the-open-did-not"
    ));
    assert_eq!(o.offsets_before_append.last(), Some(&18), "{o:?}");
}
