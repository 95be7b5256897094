//! Arbitrary bytes → the zip inspector: never a panic, never past the caps,
//! never an accepted archive with overlapping entries.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::zip_inspect::run(data));
