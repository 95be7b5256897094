//! Arbitrary client file names through `DisplayName::sanitize_with_cap`:
//! never a panic, and the result never holds a path separator (either
//! kind, or a look-alike), a control or bidi/format character, `..`, a
//! leading dot, a trailing dot or space, or a bare Windows device name; it
//! is never empty, never over the byte cap, and sanitising it again changes
//! nothing.
//!
//! The first byte picks the cap (16..=271 bytes); the rest, read as UTF-8
//! (lossily), is the name.

use palisade_validate::{DisplayName, MAX_DISPLAY_NAME_BYTES, MIN_DISPLAY_NAME_BYTES};

/// Checks the property on `data`; panics when it does not hold.
pub fn run(data: &[u8]) {
    let Some((&cap_byte, name)) = data.split_first() else {
        check(&DisplayName::sanitize(""), MAX_DISPLAY_NAME_BYTES);
        return;
    };
    let cap = MIN_DISPLAY_NAME_BYTES + usize::from(cap_byte);
    let name = String::from_utf8_lossy(name);
    let clean = DisplayName::sanitize_with_cap(&name, cap);
    check(&clean, cap);
    assert_eq!(
        DisplayName::sanitize_with_cap(clean.as_str(), cap),
        clean,
        "sanitising is idempotent"
    );
    let default = DisplayName::sanitize(&name);
    check(&default, MAX_DISPLAY_NAME_BYTES);
    assert_eq!(DisplayName::sanitize(default.as_str()), default);
}

fn check(clean: &DisplayName, cap: usize) {
    let s = clean.as_str();
    assert!(!s.is_empty(), "never empty");
    assert!(s.len() <= cap, "{} bytes over the cap {cap}", s.len());
    assert!(!s.contains(".."), "no `..` in {s:?}");
    assert!(!s.starts_with('.'), "no leading dot in {s:?}");
    assert!(
        !s.ends_with(['.', ' ']),
        "no trailing dot or space in {s:?}"
    );
    for c in s.chars() {
        assert!(
            !matches!(
                c,
                '/' | '\\' | '\u{2215}' | '\u{2044}' | '\u{FF0F}' | '\u{FF3C}' | ':'
            ),
            "separator {c:?} in {s:?}"
        );
        assert!(!c.is_control(), "control {c:?} in {s:?}");
        assert!(
            !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}' | '\u{FEFF}'),
            "bidi or zero-width {c:?} in {s:?}"
        );
    }
    let base = s
        .split('.')
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_ascii_uppercase();
    let reserved = matches!(
        base.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || (base.len() == 4
        && (base.starts_with("COM") || base.starts_with("LPT"))
        && base.as_bytes()[3].is_ascii_digit()
        && base.as_bytes()[3] != b'0');
    assert!(!reserved, "reserved device name {s:?}");
}
