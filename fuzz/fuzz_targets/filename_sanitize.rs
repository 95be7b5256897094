//! Arbitrary client file names → the display-name sanitiser: no separator,
//! control or bidi character, no `..`, never empty, within the byte cap,
//! idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::filename_sanitize::run(data));
