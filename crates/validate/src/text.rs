//! Strings: [`Email`], [`Username`], [`Slug`], Unicode normalisation
//! ([`nfc`], [`nfkc`]) and control/format-character stripping
//! ([`strip_controls`], [`strip_controls_multiline`], [`clean_line`]).
//!
//! A refused value is a [`TextError`]; `.at("field")` (see
//! [`FieldReason`](crate::FieldReason)) makes it a logged 422 with the field path.

use std::borrow::Cow;
use std::fmt;

use palisade_errors::ErrorKind;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick, is_nfkc_quick};

use crate::FieldReason;

/// Why a string was refused. Names the rule, never the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextError {
    kind: TextErrorKind,
}

/// The class of a [`TextError`]; [`as_str`](Self::as_str) is the detail's code.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextErrorKind {
    /// Empty.
    Empty,
    /// Shorter than the minimum.
    TooShort,
    /// Longer than the maximum (for an e-mail: 254 in all, 64 before the
    /// `@`, 63 a domain label).
    TooLong,
    /// A character the format does not allow.
    Character,
    /// The characters are allowed but not their arrangement (no `@`, two
    /// dots in a row, a leading separator).
    Format,
    /// An e-mail domain that is not a usable host name (IDNA failed, an IP
    /// address, no dot, an all-numeric top-level label).
    Domain,
}

impl TextErrorKind {
    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            TextErrorKind::Empty => "empty",
            TextErrorKind::TooShort => "too_short",
            TextErrorKind::TooLong => "too_long",
            TextErrorKind::Character => "invalid_character",
            TextErrorKind::Format => "invalid_format",
            TextErrorKind::Domain => "invalid_domain",
        }
    }
}

impl TextError {
    const fn new(kind: TextErrorKind) -> TextError {
        TextError { kind }
    }

    /// The class of the error.
    pub fn kind(&self) -> TextErrorKind {
        self.kind
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "text refused: {}", self.kind.as_str())
    }
}

impl std::error::Error for TextError {}

impl FieldReason for TextError {
    fn code(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// 422 `validation_failed` without a detail (the field is unknown here; use
/// `.at("field")` for one). Not logged: [`FieldReason::at`] logs.
impl From<TextError> for palisade_errors::Error {
    fn from(error: TextError) -> palisade_errors::Error {
        palisade_errors::Error::new(ErrorKind::ValidationFailed).with_source(error)
    }
}

/// RFC 5321 §4.5.3.1.3 limits the path to 256 octets, `<` and `>`
/// included, so an address is at most 254 (RFC 3696 erratum 1690).
pub const MAX_EMAIL_LEN: usize = 254;
/// RFC 5321 §4.5.3.1.1: the local part is at most 64 octets.
pub const MAX_EMAIL_LOCAL_LEN: usize = 64;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
const MAX_LABEL_LEN: usize = 63;

/// An e-mail address: a dot-atom local part (RFC 5322 §3.2.3), `@`, and a
/// host name, within RFC 5321's limits.
///
/// - The local part is 1–64 ASCII `atext` characters (letters, digits and
///   ``!#$%&'*+-/=?^_`{|}~``) in dot-separated runs: no leading, trailing or
///   doubled dot. Quoted local parts (`"a b"@example.com`) and comments are
///   refused: almost no one has one, and they are where parsers disagree
///   (the differential behind many account-takeover bugs). Non-ASCII local
///   parts (SMTPUTF8, RFC 6531) are refused too.
/// - The domain may be an IDN: it is converted to ASCII (Punycode) with
///   IDNA's strict rules (UTS #46, STD3 letters-digits-hyphens, DNS
///   lengths), so `bücher.example` is stored as `xn--bcher-kva.example` and
///   `EXAMPLE.com` as `example.com`. It needs at least two labels and a
///   top-level label that is not all digits; IP literals (`[192.0.2.1]`)
///   and percent escapes are refused.
/// - The whole address (with the ASCII domain) is at most 254 octets.
///
/// The local part keeps its case (RFC 5321 makes it case-sensitive); compare
/// addresses with [`eq_ignore_ascii_case`](str::eq_ignore_ascii_case) if
/// your mail provider does. This checks syntax only: prove ownership by
/// sending a link.
///
/// ```
/// use palisade_validate::Email;
///
/// let email = Email::parse("Ada.Lovelace+news@Bücher.Example").unwrap();
/// assert_eq!(email.as_str(), "Ada.Lovelace+news@xn--bcher-kva.example");
/// assert_eq!(email.local_part(), "Ada.Lovelace+news");
/// assert_eq!(email.domain(), "xn--bcher-kva.example");
/// for bad in ["a@b", "a..b@example.com", "\"a b\"@example.com", "a@[192.0.2.1]", "a@example.com\n"] {
///     assert!(Email::parse(bad).is_err(), "{bad:?}");
/// }
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email {
    text: String,
    at: usize,
}

/// RFC 5322 `atext`.
fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

impl Email {
    /// Parses and normalises an address (the domain to lowercase ASCII).
    ///
    /// # Errors
    ///
    /// A [`TextError`]: [`Empty`](TextErrorKind::Empty),
    /// [`TooLong`](TextErrorKind::TooLong), [`Character`](TextErrorKind::Character),
    /// [`Format`](TextErrorKind::Format) or [`Domain`](TextErrorKind::Domain).
    pub fn parse(text: &str) -> Result<Email, TextError> {
        if text.is_empty() {
            return Err(TextError::new(TextErrorKind::Empty));
        }
        // Bound the work before IDNA: a Unicode domain is never shorter in ASCII.
        if text.len() > 4 * MAX_EMAIL_LEN {
            return Err(TextError::new(TextErrorKind::TooLong));
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err(TextError::new(TextErrorKind::Format));
        };
        check_local_part(local)?;
        let domain = email_domain(domain)?;
        if local.len() + 1 + domain.len() > MAX_EMAIL_LEN {
            return Err(TextError::new(TextErrorKind::TooLong));
        }
        let mut address = String::with_capacity(local.len() + 1 + domain.len());
        address.push_str(local);
        address.push('@');
        address.push_str(&domain);
        Ok(Email {
            text: address,
            at: local.len(),
        })
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before the `@`, as sent.
    pub fn local_part(&self) -> &str {
        self.text.get(..self.at).unwrap_or("")
    }

    /// The domain, in lowercase ASCII (IDNs in Punycode).
    pub fn domain(&self) -> &str {
        self.text.get(self.at + 1..).unwrap_or("")
    }

    /// The address as a `String`.
    pub fn into_string(self) -> String {
        self.text
    }
}

fn check_local_part(local: &str) -> Result<(), TextError> {
    if local.is_empty() {
        return Err(TextError::new(TextErrorKind::Format));
    }
    if local.len() > MAX_EMAIL_LOCAL_LEN {
        return Err(TextError::new(TextErrorKind::TooLong));
    }
    let mut previous_dot = true; // no leading dot
    for &byte in local.as_bytes() {
        if byte == b'.' {
            if previous_dot {
                return Err(TextError::new(TextErrorKind::Format));
            }
            previous_dot = true;
        } else if is_atext(byte) {
            previous_dot = false;
        } else {
            // `"`, `(`, `\`, space, controls, `@` and every non-ASCII byte.
            return Err(TextError::new(TextErrorKind::Character));
        }
    }
    if previous_dot {
        return Err(TextError::new(TextErrorKind::Format));
    }
    Ok(())
}

/// The domain of an address in lowercase ASCII, or why it is not one.
fn email_domain(domain: &str) -> Result<String, TextError> {
    if domain.is_empty() {
        return Err(TextError::new(TextErrorKind::Format));
    }
    // IDNA would read `%`, `[`, `\` and friends in its own way; none belong here.
    if domain
        .bytes()
        .any(|b| b.is_ascii() && !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Err(TextError::new(TextErrorKind::Character));
    }
    // UTS #46 silently drops some invisible characters (U+200B, U+00AD):
    // refuse them, so what a user sees is what is stored.
    if domain.chars().any(is_control_or_format) {
        return Err(TextError::new(TextErrorKind::Character));
    }
    let ascii =
        idna::domain_to_ascii_strict(domain).map_err(|_| TextError::new(TextErrorKind::Domain))?;
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err(TextError::new(TextErrorKind::Domain));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(TextError::new(TextErrorKind::Format));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(TextError::new(TextErrorKind::TooLong));
        }
        let bytes = label.as_bytes();
        if !bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || bytes.first() == Some(&b'-')
            || bytes.last() == Some(&b'-')
        {
            return Err(TextError::new(TextErrorKind::Domain));
        }
    }
    // An all-numeric last label makes the domain an IPv4 address to many
    // parsers (`a@127.0.0.1`, `a@0x7f.1`).
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(TextError::new(TextErrorKind::Domain));
    }
    Ok(ascii)
}

impl std::str::FromStr for Email {
    type Err = TextError;

    fn from_str(text: &str) -> Result<Email, TextError> {
        Email::parse(text)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Email {
    /// The domain only: an address is personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email(…@{})", self.domain())
    }
}

impl serde::Serialize for Email {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Email, D::Error> {
        deserializer.deserialize_str(ParsedVisitor::<Email>::new("an e-mail address"))
    }
}

/// Deserializes a string through `FromStr`, with an error that never
/// echoes the value.
pub(crate) struct ParsedVisitor<T> {
    expecting: &'static str,
    _value: std::marker::PhantomData<T>,
}

impl<T> ParsedVisitor<T> {
    pub(crate) fn new(expecting: &'static str) -> ParsedVisitor<T> {
        ParsedVisitor {
            expecting,
            _value: std::marker::PhantomData,
        }
    }
}

impl<T> serde::de::Visitor<'_> for ParsedVisitor<T>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

/// A username: ASCII letters and digits, with `.`, `_` or `-` between them
/// (never two in a row, never first or last), 3–32 characters by default,
/// lowercased.
///
/// Letters are lowercased before the check, so `Alice` and `alice` are one
/// account; non-ASCII is refused, so `аlice` (Cyrillic `а`) cannot pose as
/// `alice` (a homoglyph). Names such as `admin` or `root` are the
/// application's to reserve.
///
/// ```
/// use palisade_validate::Username;
///
/// assert_eq!(Username::parse("Ada_Lovelace").unwrap().as_str(), "ada_lovelace");
/// for bad in ["ab", "a..b", "_ada", "ada-", "аda", "ada lovelace", "ada\u{200b}"] {
///     assert!(Username::parse(bad).is_err(), "{bad:?}");
/// }
/// assert!(Username::parse_with_length("ab", 2, 8).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// The default minimum length.
    pub const MIN_LEN: usize = 3;
    /// The default maximum length.
    pub const MAX_LEN: usize = 32;

    /// Parses with the default length, 3–32.
    ///
    /// # Errors
    ///
    /// A [`TextError`] (length, character or arrangement).
    pub fn parse(text: &str) -> Result<Username, TextError> {
        Username::parse_with_length(text, Username::MIN_LEN, Username::MAX_LEN)
    }

    /// Parses with a length of `min`–`max` characters.
    ///
    /// # Errors
    ///
    /// A [`TextError`] (length, character or arrangement).
    pub fn parse_with_length(text: &str, min: usize, max: usize) -> Result<Username, TextError> {
        check_separated(text, min, max, b"._-", true)?;
        Ok(Username(text.to_ascii_lowercase()))
    }

    /// The lowercased name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL slug: lowercase ASCII letters and digits in runs joined by single
/// hyphens (`[a-z0-9]+(-[a-z0-9]+)*`), 1–64 characters by default.
/// Uppercase is refused rather than folded, so one page has one URL.
///
/// ```
/// use palisade_validate::Slug;
///
/// assert_eq!(Slug::parse("rust-2024-edition").unwrap().as_str(), "rust-2024-edition");
/// for bad in ["", "Rust", "a--b", "-a", "a_b", "../x", "caf\u{e9}"] {
///     assert!(Slug::parse(bad).is_err(), "{bad:?}");
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    /// The default maximum length.
    pub const MAX_LEN: usize = 64;

    /// Parses with the default length, 1–64.
    ///
    /// # Errors
    ///
    /// A [`TextError`] (length, character or arrangement).
    pub fn parse(text: &str) -> Result<Slug, TextError> {
        Slug::parse_with_length(text, 1, Slug::MAX_LEN)
    }

    /// Parses with a length of `min`–`max` characters.
    ///
    /// # Errors
    ///
    /// A [`TextError`] (length, character or arrangement).
    pub fn parse_with_length(text: &str, min: usize, max: usize) -> Result<Slug, TextError> {
        check_separated(text, min, max, b"-", false)?;
        Ok(Slug(text.to_owned()))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_newtype_traits {
    ($name:ident, $expecting:literal) => {
        impl std::str::FromStr for $name {
            type Err = TextError;

            fn from_str(text: &str) -> Result<$name, TextError> {
                $name::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<$name, D::Error> {
                deserializer.deserialize_str(ParsedVisitor::<$name>::new($expecting))
            }
        }
    };
}

text_newtype_traits!(Username, "a username");
text_newtype_traits!(Slug, "a slug");

/// Letters/digits in runs joined by one of `separators`; the length is in
/// bytes, which is characters since only ASCII passes.
fn check_separated(
    text: &str,
    min: usize,
    max: usize,
    separators: &[u8],
    any_case: bool,
) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::new(TextErrorKind::Empty));
    }
    if text.len() > max {
        return Err(TextError::new(TextErrorKind::TooLong));
    }
    let mut previous_separator = true; // not first
    for &byte in text.as_bytes() {
        let letter = byte.is_ascii_lowercase()
            || byte.is_ascii_digit()
            || (any_case && byte.is_ascii_uppercase());
        if letter {
            previous_separator = false;
        } else if separators.contains(&byte) {
            if previous_separator {
                return Err(TextError::new(TextErrorKind::Format));
            }
            previous_separator = true;
        } else {
            return Err(TextError::new(TextErrorKind::Character));
        }
    }
    if previous_separator {
        return Err(TextError::new(TextErrorKind::Format));
    }
    if text.len() < min {
        return Err(TextError::new(TextErrorKind::TooShort));
    }
    Ok(())
}

/// The NFC form (canonical composition) of `text`; borrowed when it already
/// is. Use it before comparing or storing user text, so `é` typed as one
/// code point and as `e` + U+0301 are the same string.
pub fn nfc(text: &str) -> Cow<'_, str> {
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfc().collect())
    }
}

/// The NFKC form (compatibility composition) of `text`; borrowed when it
/// already is. It also folds look-alikes (`ﬁ` → `fi`, fullwidth `Ａ` → `A`,
/// `²` → `2`), so use it for identifiers and search keys, not for text
/// shown back as written.
pub fn nfkc(text: &str) -> Cow<'_, str> {
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfkc().collect())
    }
}

/// Whether `c` is invisible or reorders text: a control character (C0, DEL,
/// C1), a line or paragraph separator (U+2028/2029), or a format character
/// (Unicode category Cf: the bidi overrides and isolates behind
/// "Trojan Source" (CVE-2021-42574) and spoofed file names
/// (`invoice\u{202e}fdp.exe`), zero-width spaces and joiners, the BOM, soft
/// hyphen, the tag characters used to smuggle hidden text).
pub fn is_control_or_format(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// `text` without control and format characters ([`is_control_or_format`]),
/// newlines and tabs included: for single-line fields (names, titles),
/// where a newline is log injection or a header split. Borrowed when there
/// is nothing to strip.
///
/// ```
/// use palisade_validate::strip_controls;
///
/// assert_eq!(strip_controls("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
/// assert_eq!(strip_controls("ad\u{200b}min\r\nSet-Cookie: x"), "adminSet-Cookie: x");
/// assert!(matches!(strip_controls("plain"), std::borrow::Cow::Borrowed(_)));
/// ```
pub fn strip_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control_or_format) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().filter(|&c| !is_control_or_format(c)).collect())
}

/// Like [`strip_controls`] but for multi-line text (comments, bios): `\n`
/// and `\t` stay, and `\r\n` and a lone `\r` become `\n`.
///
/// ```
/// use palisade_validate::strip_controls_multiline;
///
/// assert_eq!(strip_controls_multiline("a\r\nb\rc\u{0}\td\u{2066}"), "a\nb\nc\td");
/// ```
pub fn strip_controls_multiline(text: &str) -> Cow<'_, str> {
    let keep = |c: char| c == '\n' || c == '\t' || !is_control_or_format(c);
    if text.chars().all(keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else if keep(c) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A single-line field ready to store: control and format characters
/// stripped, NFC, surrounding whitespace trimmed. Idempotent.
///
/// ```
/// use palisade_validate::clean_line;
///
/// assert_eq!(clean_line("  Cafe\u{301}\u{200d} \n"), "Café");
/// ```
pub fn clean_line(text: &str) -> String {
    let stripped = strip_controls(text);
    let normalised = nfc(&stripped);
    // NFC never produces a control or format character from others, and
    // trimming cannot un-normalise, so one pass is a fixed point.
    normalised.trim().to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kind(text: &str) -> TextErrorKind {
        Email::parse(text).unwrap_err().kind()
    }

    #[test]
    fn email_lengths_follow_rfc_5321() {
        let local = "a".repeat(64);
        assert!(Email::parse(&format!("{local}@example.com")).is_ok());
        assert_eq!(
            kind(&format!("{local}a@example.com")),
            TextErrorKind::TooLong
        );
        let label = "b".repeat(63);
        assert!(Email::parse(&format!("a@{label}.com")).is_ok());
        assert!(Email::parse(&format!("a@{label}b.com")).is_err());
        // 254 in all: 64 + 1 + 189.
        let domain = format!(
            "{}.{}.{}.com",
            "c".repeat(61),
            "d".repeat(61),
            "e".repeat(61)
        );
        assert_eq!(domain.len(), 189);
        assert_eq!(format!("{local}@{domain}").len(), 254);
        assert!(Email::parse(&format!("{local}@{domain}")).is_ok());
        assert_eq!(kind(&format!("{local}@x{domain}")), TextErrorKind::TooLong);
    }

    #[test]
    fn email_local_part_is_a_dot_atom() {
        for good in [
            "a@example.com",
            "first.last@example.com",
            "o'brien+tag@example.com",
            "x!#$%&*/=?^_`{|}~-@example.com",
        ] {
            assert!(Email::parse(good).is_ok(), "{good}");
        }
        assert_eq!(kind(".a@example.com"), TextErrorKind::Format);
        assert_eq!(kind("a.@example.com"), TextErrorKind::Format);
        assert_eq!(kind("a..b@example.com"), TextErrorKind::Format);
        assert_eq!(kind("\"a\"@example.com"), TextErrorKind::Character);
        assert_eq!(kind("a b@example.com"), TextErrorKind::Character);
        assert_eq!(kind("a(comment)@example.com"), TextErrorKind::Character);
        assert_eq!(kind("a@b@example.com"), TextErrorKind::Character);
        assert_eq!(kind("jöran@example.com"), TextErrorKind::Character);
        assert_eq!(kind("example.com"), TextErrorKind::Format);
        assert_eq!(kind("@example.com"), TextErrorKind::Format);
        assert_eq!(kind(""), TextErrorKind::Empty);
    }

    #[test]
    fn email_header_injection_and_smuggling_are_refused() {
        for attack in [
            "victim@example.com\r\nBcc: everyone@example.com",
            "victim@example.com%0aBcc:x@example.com",
            "victim@example.com,attacker@evil.example",
            "victim@example.com attacker@evil.example",
            "attacker@evil.example\u{0}@example.com",
            "victim@example.com\u{200b}",
        ] {
            assert!(Email::parse(attack).is_err(), "{attack:?}");
        }
    }

    #[test]
    fn email_domains_go_through_idna() {
        let email = Email::parse("a@BÜCHER.example").unwrap();
        assert_eq!(email.domain(), "xn--bcher-kva.example");
        // Fullwidth letters map to ASCII under UTS #46.
        assert_eq!(
            Email::parse("a@ｅｘａｍｐｌｅ.com").unwrap().domain(),
            "example.com"
        );
        assert_eq!(kind("a@localhost"), TextErrorKind::Domain);
        assert_eq!(kind("a@127.0.0.1"), TextErrorKind::Domain);
        assert_eq!(kind("a@[127.0.0.1]"), TextErrorKind::Character);
        assert_eq!(kind("a@-example.com"), TextErrorKind::Domain);
        assert_eq!(kind("a@exa_mple.com"), TextErrorKind::Character);
        assert!(Email::parse("a@example..com").is_err());
        assert!(Email::parse("a@example.com.").is_err());
        assert!(Email::parse("a@xn--zz.com").is_err()); // bad Punycode
    }

    #[test]
    fn email_serde_never_echoes_the_value() {
        let email: Email = serde_json::from_str("\"a@example.com\"").unwrap();
        assert_eq!(serde_json::to_string(&email).unwrap(), "\"a@example.com\"");
        let error = serde_json::from_str::<Email>("\"secret-probe\"").unwrap_err();
        assert!(!error.to_string().contains("secret-probe"));
        assert!(!format!("{email:?}").contains("a@"));
    }

    #[test]
    fn usernames_and_slugs() {
        assert_eq!(
            Username::parse("Bob.Smith-2").unwrap().as_str(),
            "bob.smith-2"
        );
        assert_eq!(
            Username::parse("a").unwrap_err().kind(),
            TextErrorKind::TooShort
        );
        assert_eq!(
            Username::parse(&"a".repeat(33)).unwrap_err().kind(),
            TextErrorKind::TooLong
        );
        assert_eq!(
            Username::parse("bob_-x").unwrap_err().kind(),
            TextErrorKind::Format
        );
        assert_eq!(
            Username::parse("b\u{0}b").unwrap_err().kind(),
            TextErrorKind::Character
        );
        assert!(Slug::parse("a").is_ok());
        assert_eq!(Slug::parse("a-").unwrap_err().kind(), TextErrorKind::Format);
        assert_eq!(
            Slug::parse("A").unwrap_err().kind(),
            TextErrorKind::Character
        );
    }

    #[test]
    fn normalisation_borrows_when_it_can() {
        assert!(matches!(nfc("plain"), Cow::Borrowed(_)));
        assert_eq!(nfc("e\u{301}"), "\u{e9}");
        assert_eq!(nfkc("ﬁ"), "fi");
        assert_eq!(nfkc("Ａ"), "A");
    }

    #[test]
    fn trojan_source_and_zero_width_characters_are_stripped() {
        // CVE-2021-42574: bidi controls reorder what a reviewer sees.
        let trojan = "access = \"user\u{202e} \u{2066}// admin\u{2069} \u{2066}\"";
        assert!(!strip_controls(trojan).chars().any(is_control_or_format));
        assert_eq!(strip_controls("a\u{feff}b\u{e0041}c\u{ad}d"), "abcd");
        assert_eq!(clean_line("\u{2028}x\u{2029}"), "x");
        let once = clean_line(" a\u{301}\u{200f}b ");
        assert_eq!(clean_line(&once), once);
    }
}
