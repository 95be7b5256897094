//! Arbitrary header lines → the API-key credential reader never panics and
//! never finds a key in an ambiguous or repeated header.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::apikey_credentials::run(data));
