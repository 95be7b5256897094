//! Arbitrary header lines through the API-key credential reader the web
//! adapters share (`X-API-Key` and `Authorization: ApiKey`): never a
//! panic; a key found is a non-empty, trimmed piece of one line; two key
//! lines, two `Authorization` lines, or a key next to another credential
//! never yield a key.
//!
//! Input layout: the first byte picks how many lines are key-header lines
//! (`% 3`); the rest, split at `\n`, are the lines (the key lines first,
//! then at most two `Authorization` lines).

use palisade_apikeys::request::{Credentials, credentials};

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let lines: Vec<&[u8]> = rest.split(|&b| b == b'\n').collect();
    let key_count = usize::from(selector % 3).min(lines.len());
    let (key_lines, authorization_lines) = lines.split_at(key_count);
    let authorization_lines = &authorization_lines[..authorization_lines.len().min(2)];
    let found = credentials(
        key_lines.iter().copied(),
        authorization_lines.iter().copied(),
    );
    let Credentials::Key(key) = found else {
        return;
    };
    assert!(!key.is_empty(), "an empty key");
    assert_eq!(key, key.trim_matches([' ', '\t']), "an untrimmed key");
    assert!(key_lines.len() <= 1, "a key from several key lines");
    assert!(
        authorization_lines.len() <= 1,
        "a key next to several Authorization lines"
    );
    match (key_lines.first(), authorization_lines.first()) {
        (Some(line), None) => assert!(contains(line, key), "a key not from its line"),
        (None, Some(line)) => {
            let text = std::str::from_utf8(line).expect("a key from a non-UTF-8 line");
            let (scheme, _) = text.split_once(' ').expect("a scheme and a key");
            assert!(scheme.eq_ignore_ascii_case("apikey"), "a key from {scheme}");
            assert!(contains(line, key), "a key not from its line");
        }
        _ => panic!("a key from two credentials or from none"),
    }
}

fn contains(line: &[u8], key: &str) -> bool {
    line.windows(key.len())
        .any(|window| window == key.as_bytes())
}
