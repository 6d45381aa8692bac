//! Damaged `.index` / `.timeindex` files next to a valid log. The harness, its input layout
//! and its checks are in `harness/index_files.rs` (shared with the main crate's
//! `tests/fuzz_regressions.rs`).
#![no_main]

#[path = "harness/index_files.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
