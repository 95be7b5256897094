//! Arbitrary text as HexId, HexIdAnyCase, Uuid and Ulid → never a panic, accepted exactly
//! when well-formed, canonical round-trips, a refused path id is a 404.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::hex_id::run(data));
