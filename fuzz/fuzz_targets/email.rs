//! Arbitrary text as an e-mail address → never a panic, an accepted address is
//! within RFC 5321's limits, ASCII, dot-atom@LDH labels, and parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::email::run(data));
