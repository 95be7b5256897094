//! Arbitrary bytes as an `Origin` header → parsing never panics, a parsed
//! origin's normalized form parses to itself, and the policy only ever echoes
//! a value that parses to an allowed origin (never `*`, never to a refused
//! preflight).
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::cors_origin::run(data));
