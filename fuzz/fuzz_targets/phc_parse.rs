//! Arbitrary stored-hash strings → the PHC/bcrypt parser and verify (under
//! tight caps) never panic and never do work over the caps; a parsed hash
//! re-renders to a string that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::phc_parse::run(data));
