//! Arbitrary bytes through the JSON shape scan → never a panic, agreement
//! with serde_json, over-limit documents refused as limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::json_depth::run(data));
