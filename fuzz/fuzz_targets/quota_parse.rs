//! Arbitrary quota strings (from configuration files and environment
//! variables) through the parser and, when accepted, the GCRA decision:
//! never a panic, and an accepted quota round-trips through its display form.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::quota_parse::run(data));
