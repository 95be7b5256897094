//! Arbitrary request-id candidates and validation field paths → the envelope
//! is always valid JSON of the schema, and an id that does not parse never
//! reaches the body or the headers.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::error_envelope::run(data));
