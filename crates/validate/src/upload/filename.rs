//! The client's file name, made safe to show and to offer as a download name.
//!
//! A client-supplied name is never used to store a file (the stored name is
//! random, see [`StoredName`](super::StoredName)); it is kept only to show
//! the user and to suggest a name in `Content-Disposition`. Even so it
//! travels into HTML, log-free UIs, `Content-Disposition` headers and other
//! people's file systems when they download, so it is cleaned of everything
//! that means something to one of them.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// The longest display name kept, in bytes of UTF-8: the usual file-system
/// limit for one path component (ext4, APFS, NTFS in UTF-16 units).
pub const MAX_DISPLAY_NAME_BYTES: usize = 255;

/// The smallest byte cap [`DisplayName::sanitize_with_cap`] accepts; a
/// smaller one is raised to it (the default name must fit).
pub const MIN_DISPLAY_NAME_BYTES: usize = 16;

/// The name used when nothing of the client's name survives.
pub const DEFAULT_DISPLAY_NAME: &str = "file";

/// The longest extension kept whole when a long name is cut (the stem is
/// shortened instead, so `<very long>.pdf` stays a `.pdf`).
const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// A client's file name cleaned for display and download.
///
/// [`sanitize`](Self::sanitize) guarantees the result:
///
/// - holds no path separator (`/`, `\`, and their Unicode look-alikes such as
///   `∕` and fullwidth `／`), so it names no directory anywhere;
/// - holds no control character (C0, C1), no bidirectional override or
///   isolate (`U+202E` turns `a\u{202e}gpj.exe` into what *looks* like
///   `aexe.jpg`), no zero-width or other invisible format character;
/// - holds no `..`, starts with no dot (a hidden file), ends with no dot
///   or space (Windows drops them, turning `x.exe.` into `x.exe`);
/// - holds none of `<>:"|?*` (invalid on Windows; `:` opens an NTFS
///   alternate data stream);
/// - is not a reserved Windows device name (`CON`, `PRN`, `AUX`, `NUL`,
///   `COM1`–`COM9`, `LPT1`–`LPT9`, `CONIN$`, `CONOUT$`), with any
///   extension (`CON.txt` opens the console): those get a `_` prefix;
/// - is at most the byte cap long, cut at a character boundary, keeping a
///   short extension;
/// - is never empty ([`DEFAULT_DISPLAY_NAME`] instead);
/// - is NFKC-normalised (so fullwidth and compatibility forms of the
///   characters above cannot slip through), and sanitising it again
///   changes nothing.
///
/// ```
/// use palisade_validate::DisplayName;
///
/// assert_eq!(DisplayName::sanitize("../../etc/passwd").as_str(), "_._etc_passwd");
/// assert_eq!(DisplayName::sanitize("CON.txt").as_str(), "_CON.txt");
/// assert_eq!(DisplayName::sanitize("a\u{202e}gpj.exe").as_str(), "agpj.exe");
/// assert_eq!(DisplayName::sanitize("").as_str(), "file");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DisplayName(String);

impl DisplayName {
    /// Cleans `name` with the default cap ([`MAX_DISPLAY_NAME_BYTES`]).
    pub fn sanitize(name: &str) -> DisplayName {
        DisplayName::sanitize_with_cap(name, MAX_DISPLAY_NAME_BYTES)
    }

    /// Cleans `name`, cutting it to at most `max_bytes` bytes of UTF-8
    /// (raised to [`MIN_DISPLAY_NAME_BYTES`] when smaller).
    pub fn sanitize_with_cap(name: &str, max_bytes: usize) -> DisplayName {
        let cap = max_bytes.max(MIN_DISPLAY_NAME_BYTES);
        // Look at a bounded prefix only: a 10 MB "file name" costs no more
        // than a long one. NFKC may grow a string up to 18x; the cap cuts it.
        let mut current = clean_once(&bounded_input(name, cap.saturating_mul(4)), cap);
        // Each step is idempotent on its own, but one can expose work for
        // another (cutting a name can leave a trailing dot, removing a
        // character can bring two dots together). Repeat to a fixed point;
        // every round only shortens or keeps the name, so it converges fast.
        for _ in 0..8 {
            let next = clean_once(&current, cap);
            if next == current {
                break;
            }
            current = next;
        }
        DisplayName(current)
    }

    /// The cleaned name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The extension (after the last dot), ASCII-lowercased, if the name has
    /// one made of ASCII letters and digits only, at most 10 of them.
    pub fn extension(&self) -> Option<String> {
        let (_, extension) = self.0.rsplit_once('.')?;
        let plausible = !extension.is_empty()
            && extension.len() <= 10
            && extension.bytes().all(|b| b.is_ascii_alphanumeric());
        plausible.then(|| extension.to_ascii_lowercase())
    }

    /// The cleaned name, taking ownership.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for DisplayName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// At most `max_bytes` of `name`, cut at a character boundary.
fn bounded_prefix(name: &str, max_bytes: usize) -> &str {
    if name.len() <= max_bytes {
        return name;
    }
    let mut end = max_bytes;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or_default()
}

/// At most about `max_bytes` of `name`: its start and, when it has one, its
/// short extension (so a 10,000-character name keeps its `.pdf`).
fn bounded_input(name: &str, max_bytes: usize) -> std::borrow::Cow<'_, str> {
    if name.len() <= max_bytes {
        return std::borrow::Cow::Borrowed(name);
    }
    let extension = name
        .rfind('.')
        .filter(|&dot| name.len() - dot <= MAX_KEPT_EXTENSION_BYTES)
        .and_then(|dot| name.get(dot..))
        .unwrap_or_default();
    let stem = bounded_prefix(name, max_bytes.saturating_sub(extension.len()));
    std::borrow::Cow::Owned(format!("{stem}{extension}"))
}

/// One pass of every rule.
fn clean_once(name: &str, cap: usize) -> String {
    let mut out = String::with_capacity(name.len().min(cap * 2));
    for c in name.nfkc() {
        if is_separator(c) || is_windows_forbidden(c) {
            out.push('_');
        } else if !is_invisible(c) {
            out.push(c);
        }
    }
    // `..` anywhere (not only as a whole component): some consumers split on
    // other characters than ours. Collapsing runs of dots to one dot removes
    // every `..` and keeps the extension dot.
    let mut collapsed = String::with_capacity(out.len());
    for c in out.chars() {
        if c == '.' && collapsed.ends_with('.') {
            continue;
        }
        collapsed.push(c);
    }
    let trimmed = trim_edges(&collapsed);
    let guarded = guard_reserved(trimmed);
    let cut = cut_to(&guarded, cap);
    let cut = trim_edges(&cut);
    if cut.is_empty() {
        DEFAULT_DISPLAY_NAME.to_owned()
    } else {
        cut.to_owned()
    }
}

/// Without leading dots and whitespace, and without trailing dots and
/// whitespace (Windows strips them when it creates the file).
fn trim_edges(name: &str) -> &str {
    name.trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
}

/// `/`, `\` and the characters that look like them or that a consumer's
/// normalisation turns into them.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        '/' | '\\'
            | '\u{2215}' // DIVISION SLASH
            | '\u{2044}' // FRACTION SLASH
            | '\u{2216}' // SET MINUS
            | '\u{29F5}' // REVERSE SOLIDUS OPERATOR
            | '\u{29F8}' // BIG SOLIDUS
            | '\u{29F9}' // BIG REVERSE SOLIDUS
            | '\u{FF0F}' // FULLWIDTH SOLIDUS
            | '\u{FF3C}' // FULLWIDTH REVERSE SOLIDUS
            | '\u{FE68}' // SMALL REVERSE SOLIDUS
    )
}

/// Characters Windows refuses in a file name (`:` also names an NTFS
/// alternate data stream).
fn is_windows_forbidden(c: char) -> bool {
    matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
}

/// Control characters, and format characters that change how a name looks
/// without being seen: bidi overrides, embeddings and isolates, zero-width
/// characters, the BOM, line and paragraph separators, tag characters,
/// interlinear annotations and the like.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}' // SOFT HYPHEN
                | '\u{034F}' // COMBINING GRAPHEME JOINER
                | '\u{061C}' // ARABIC LETTER MARK
                | '\u{115F}' | '\u{1160}' // HANGUL FILLERS
                | '\u{17B4}' | '\u{17B5}'
                | '\u{180B}'..='\u{180F}' // MONGOLIAN selectors and vowel separator
                | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
                | '\u{2028}'..='\u{202E}' // line/paragraph separators, LRE..RLO
                | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, isolates
                | '\u{3164}' // HANGUL FILLER
                | '\u{FE00}'..='\u{FE0F}' // variation selectors
                | '\u{FEFF}' // BOM / ZWNBSP
                | '\u{FFA0}' // HALFWIDTH HANGUL FILLER
                | '\u{FFF0}'..='\u{FFFB}' // specials, interlinear annotations
                | '\u{1BCA0}'..='\u{1BCA3}' // shorthand format controls
                | '\u{1D173}'..='\u{1D17A}' // musical symbol format controls
                | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
        )
        || is_noncharacter(c)
        || is_private_use(c)
}

fn is_noncharacter(c: char) -> bool {
    let v = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&v) || (v & 0xFFFE) == 0xFFFE
}

fn is_private_use(c: char) -> bool {
    let v = u32::from(c);
    (0xE000..=0xF8FF).contains(&v) || v >= 0xF0000
}

/// A `_` before a reserved Windows device name (the part before the first
/// dot, ignoring trailing spaces, any case).
fn guard_reserved(name: &str) -> String {
    let base = name.split('.').next().unwrap_or_default().trim_end();
    let upper = base.to_ascii_uppercase();
    let reserved = matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" | "CLOCK$"
    ) || ((upper.starts_with("COM") || upper.starts_with("LPT"))
        && upper.len() == 4
        && upper
            .as_bytes()
            .get(3)
            .is_some_and(|d| (b'1'..=b'9').contains(d)));
    if reserved {
        format!("_{name}")
    } else {
        name.to_owned()
    }
}

/// `name` cut to at most `cap` bytes at a character boundary, keeping a
/// short extension by shortening the stem.
fn cut_to(name: &str, cap: usize) -> String {
    if name.len() <= cap {
        return name.to_owned();
    }
    if let Some((stem, extension)) = name.rsplit_once('.') {
        let kept = extension.len() + 1;
        if !stem.is_empty() && kept <= MAX_KEPT_EXTENSION_BYTES && kept < cap {
            let stem = bounded_prefix(stem, cap - kept);
            let stem = stem.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
            if !stem.is_empty() {
                return format!("{stem}.{extension}");
            }
        }
    }
    bounded_prefix(name, cap).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_holds_on_awkward_names() {
        for name in [
            "",
            ".",
            "..",
            "...",
            "./.",
            " . ",
            "\u{202e}",
            "\0",
            "a..b",
            ".a.",
            "CON",
            "con .txt",
            "COM\u{00B9}.txt",
            "lpt9",
            "LPT0",
            "nul.tar.gz",
            "\u{FF0F}etc\u{FF0F}passwd",
            "a\u{FF0E}\u{FF0E}b",
            "x\u{0307}\u{0307}",
        ] {
            let clean = DisplayName::sanitize(name);
            let s = clean.as_str();
            assert!(!s.is_empty(), "{name:?}");
            assert!(!s.contains(".."), "{name:?} -> {s:?}");
            assert!(
                !s.starts_with('.') && !s.ends_with('.'),
                "{name:?} -> {s:?}"
            );
            assert!(!s.contains(['/', '\\']), "{name:?} -> {s:?}");
            assert_eq!(
                DisplayName::sanitize(s).as_str(),
                s,
                "idempotent on {name:?}"
            );
        }
    }

    #[test]
    fn superscript_com_port_is_reserved_after_nfkc() {
        // Windows treats COM¹ like COM1; NFKC turns ¹ into 1 before the check.
        assert_eq!(
            DisplayName::sanitize("COM\u{00B9}.txt").as_str(),
            "_COM1.txt"
        );
    }

    #[test]
    fn extension_is_plain_ascii_only() {
        assert_eq!(
            DisplayName::sanitize("a.PNG").extension().as_deref(),
            Some("png")
        );
        assert_eq!(DisplayName::sanitize("a").extension(), None);
        assert_eq!(DisplayName::sanitize("a.p_g").extension(), None);
    }
}
