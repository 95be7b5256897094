//! Arbitrary text presented as an API key through the parser: never a
//! panic; an accepted key is ASCII, within the length bounds, laid out as
//! `pal_<env>_<key_id>_<secret><checksum>` with the key id it reports; and
//! changing its last checksum character makes it fail, so no second string
//! with the same body passes.

use palisade_apikeys::KeyId;
use palisade_apikeys::key::{self, MAX_KEY_CHARS};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(parsed) = key::parse(&text) else {
        return;
    };
    assert!(text.is_ascii());
    assert!(text.len() <= MAX_KEY_CHARS);
    let expected = format!("pal_{}_{}_", parsed.env(), parsed.key_id());
    assert!(text.starts_with(&expected), "layout differs from the parts");
    assert_eq!(text.len(), expected.len() + 43 + 6);
    assert_eq!(
        KeyId::parse(parsed.key_id().as_str()),
        Some(parsed.key_id())
    );
    let mut changed = text.as_bytes().to_vec();
    let last = changed.len() - 1;
    let position = BASE62.iter().position(|&c| c == changed[last]).unwrap_or(0);
    changed[last] = BASE62[(position + 1) % BASE62.len()];
    let changed = String::from_utf8_lossy(&changed);
    assert!(key::parse(&changed).is_err(), "two checksums for one body");
}
