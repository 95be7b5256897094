//! Arbitrary environment values through the typed parsers, the profile
//! parser, the secret-strength rules and the log redactor: never a panic, an
//! accepted value is what it claims, a registered secret never survives
//! redaction.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::env_value_parse::run(data));
