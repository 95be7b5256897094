//! Arbitrary text escaped for LIKE → the pattern matches the literal text and
//! none of its near misses (a small LIKE matcher checks).
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::like_escape::run(data));
