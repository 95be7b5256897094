//! Arbitrary bytes as `X-Forwarded-For` / `Forwarded` header lines from a
//! trusted proxy → resolution never panics, and the client is always either
//! the peer or an address written in the header (never one made up by the
//! parser), with a well-formed rate-limit key.
//!
//! The first byte selects: bit 0 which header name the bytes are sent under
//! (so each resolver also sees the header it must ignore), bit 1 whether the
//! bytes are split into several lines at `\n`, bits 2.. the IPv6 key prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::forwarded_header::run(data));
