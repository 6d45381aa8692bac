//! A data directory whose partition files come from the input. The harness, its input layout
//! and its checks are in `harness/open_partition_dir.rs` (shared with the main crate's
//! `tests/fuzz_regressions.rs`).
#![no_main]

#[path = "harness/open_partition_dir.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
