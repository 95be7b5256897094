//! Arbitrary text as user HTML through the strict sanitiser: never a
//! panic; the output has no `<script`, only allow-listed tags, no `on*` or
//! `style` attribute, links only to `https:`, `http:` or `mailto:`, and
//! sanitising the output again changes nothing.

use palisade_validate::{HtmlSanitizer, STRICT_TAGS};
use std::sync::OnceLock;

fn sanitizer() -> &'static HtmlSanitizer {
    static SANITIZER: OnceLock<HtmlSanitizer> = OnceLock::new();
    SANITIZER.get_or_init(HtmlSanitizer::strict)
}

type Tag = (String, Vec<(String, String)>);

/// Every start tag of serialised HTML: its name and attributes (values
/// unescaped only as far as the check needs).
fn tags(html: &str) -> Vec<Tag> {
    tokens(html).0
}

/// The start tags, and the HTML with each start tag's attributes sorted:
/// the same document whatever order the serialiser wrote them in.
fn tokens(html: &str) -> (Vec<Tag>, String) {
    let chars: Vec<char> = html.chars().collect();
    let mut found = Vec::new();
    let mut normalised = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '<' {
            normalised.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        if i < chars.len() && chars[i] == '/' {
            normalised.push('<');
            while i < chars.len() && chars[i] != '>' {
                normalised.push(chars[i]);
                i += 1;
            }
            continue;
        }
        let mut name = String::new();
        while i < chars.len() && chars[i].is_ascii_alphanumeric() {
            name.push(chars[i].to_ascii_lowercase());
            i += 1;
        }
        assert!(!name.is_empty(), "a bare `<` in the output: {html:?}");
        let mut attributes = Vec::new();
        loop {
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            if i >= chars.len() || chars[i] == '>' {
                break;
            }
            let mut attribute = String::new();
            while i < chars.len() && !matches!(chars[i], '=' | ' ' | '>') {
                attribute.push(chars[i].to_ascii_lowercase());
                i += 1;
            }
            let mut value = String::new();
            if i < chars.len() && chars[i] == '=' {
                i += 1;
                assert_eq!(chars.get(i), Some(&'"'), "unquoted attribute: {html:?}");
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            attributes.push((attribute, value));
        }
        i += 1;
        let mut sorted = attributes.clone();
        sorted.sort();
        normalised.push('<');
        normalised.push_str(&name);
        for (attribute, value) in &sorted {
            normalised.push_str(&format!(" {attribute}=\"{value}\""));
        }
        normalised.push('>');
        found.push((name, attributes));
    }
    (found, normalised)
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let output = sanitizer().clean(&input);
    assert!(
        !output.to_ascii_lowercase().contains("<script"),
        "script in the output"
    );
    for (name, attributes) in tags(&output) {
        assert!(STRICT_TAGS.contains(&name.as_str()), "tag {name} kept");
        for (attribute, value) in attributes {
            assert!(
                matches!(attribute.as_str(), "href" | "title" | "rel"),
                "attribute {attribute} kept on {name}"
            );
            if attribute == "href" {
                let decoded = value.replace("&amp;", "&").to_ascii_lowercase();
                assert!(
                    decoded.starts_with("https:")
                        || decoded.starts_with("http:")
                        || decoded.starts_with("mailto:"),
                    "href {value:?} kept"
                );
            }
            if attribute == "rel" {
                assert_eq!(value, "noopener noreferrer");
            }
        }
    }
    // `clean` sanitises to a fixed point, so exactly idempotent; the
    // attribute-order-blind comparison says more when it is not.
    let again = sanitizer().clean(&output);
    assert_eq!(tokens(&again).1, tokens(&output).1, "not idempotent");
    assert_eq!(again, output, "not idempotent (attribute order)");
}
