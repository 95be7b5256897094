//! Arbitrary text as user HTML → no script, only allow-listed tags, no on*/style
//! attributes, links only http(s)/mailto, and sanitising is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::html_sanitize::run(data));
