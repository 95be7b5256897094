//! Arbitrary bytes as a bearer token through the full verifier (HMAC and
//! RSA keys in the keyring): never a panic, whatever the header, payload or
//! signature hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::jwt_verify::run(data));
