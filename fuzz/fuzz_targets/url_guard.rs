//! Arbitrary text through UrlPolicy, SsrfGuard (fake resolver) and RedirectPolicy
//! → never a panic, no blocked address passes, no redirect leaves the site.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The property lives in palisade-fuzz-properties, so `cargo test` replays
// the committed seeds and every regression input through the same code.
fuzz_target!(|data: &[u8]| palisade_fuzz_properties::url_guard::run(data));
