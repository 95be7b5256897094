//! Arbitrary UTF-8 passwords with a username/email context → the NIST and
//! classic policies never panic, every failure is a documented code, and no
//! error text carries the password.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::policy_check::run(data));
