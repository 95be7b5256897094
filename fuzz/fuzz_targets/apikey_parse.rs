//! Arbitrary bytes presented as an API key → the parser never panics, an
//! accepted key has the documented layout, and one checksum per body.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::apikey_parse::run(data));
