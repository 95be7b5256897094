//! Arbitrary directive names and source expressions through the CSP parser,
//! builder and header rendering: never a panic, and whatever is accepted
//! renders to a single valid header value that cannot carry a separator
//! smuggled in through a source.

use palisade_headers::csp::Csp;
use palisade_headers::{CspNonce, Directive, HeaderPolicy, Source};

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut builder = Csp::builder().nonces(flags & 1 == 1);
    if flags & 2 == 2 {
        builder = builder.allow_unsafe_inline_script_dangerously();
    }
    if flags & 4 == 4 {
        builder = builder.allow_wildcard_script_sources_dangerously();
    }
    // One directive per line: `name source source ...`.
    for line in text.lines() {
        let mut words = line.split(' ');
        let Some(name) = words.next() else { continue };
        let Ok(directive) = Directive::parse(name) else {
            continue;
        };
        let sources: Vec<Source> = words.filter_map(|word| Source::parse(word).ok()).collect();
        for source in &sources {
            // An accepted source can never end its directive or split the header.
            assert!(!source.as_str().contains([';', ',', ' ', '\r', '\n', '"']));
        }
        builder = builder.directive(directive, sources);
    }
    if flags & 8 == 8 {
        builder = builder.report_uri(text.lines().last().unwrap_or_default());
    }
    let Ok(csp) = builder.build() else { return };
    let Ok(headers) = HeaderPolicy::api().csp(csp).build() else {
        return;
    };
    let mut map = http::HeaderMap::new();
    let nonce = CspNonce::generate();
    headers.apply(&mut map, nonce.as_ref());
    assert_eq!(map.get_all("content-security-policy").iter().count(), 1);
    // The same text, given as a configuration file, never panics either.
    let _ = serde_json::from_str::<Csp>(&text);
}
