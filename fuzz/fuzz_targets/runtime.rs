#![no_main]
//! Fuzz target: see `podports::fuzz_targets::runtime_config`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| podports::fuzz_targets::runtime_config(data));
