//! Arbitrary bytes through every batch decoding entry point. The harness and its checks are in
//! `harness/batch_decode.rs`.
#![no_main]

#[path = "harness/batch_decode.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| harness::run(data));
