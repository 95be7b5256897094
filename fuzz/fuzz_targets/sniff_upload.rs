//! Arbitrary uploads (name, declared type, bytes) → `UploadPolicy::check`:
//! never a panic, and every accepted file is consistent with the policy.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::sniff_upload::run(data));
