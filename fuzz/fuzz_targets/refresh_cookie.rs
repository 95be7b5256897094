//! Arbitrary bytes as a refresh request's cookies, Origin, custom header,
//! device id and body: never a panic, and a cookie token only with an
//! allowed Origin and the custom header.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::refresh_cookie::run(data));
