//! Arbitrary directive names and source expressions through the CSP parser,
//! builder and header rendering: never a panic, and whatever is accepted
//! renders to a single valid header value that cannot carry a separator
//! smuggled in through a source.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::csp_parse_or_build::run(data));
