//! Arbitrary bytes as a PATCH/PUT body of Patch<T> fields → absent, null and value
//! told apart, serde round-trips, UpdateRules refuses exactly the broken fields.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::patch_json::run(data));
