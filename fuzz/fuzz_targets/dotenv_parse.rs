//! Arbitrary `.env` text through the parser: never a panic, an accepted file
//! writes back (every value quoted) and reads the same, and any text quoted
//! as a value reads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::dotenv_parse::run(data));
