//! Fuzzer-built JOSE headers and claims, signed with the test HMAC keys, so
//! the claim checks are reached (`jwt_verify` rarely gets past the
//! signature): never a panic, and an accepted token has a live `exp`, the
//! right `iss`, `aud` and type, and round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::jwt_claims::run(data));
