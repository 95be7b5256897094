//! `?next=` and `return_to` targets: [`RedirectPolicy`] accepts a relative
//! path on this site or a URL on an allow-listed origin, nothing else (the
//! open redirect that turns a login page into a phishing relay).

use std::fmt;

use palisade_errors::ErrorKind;
use url::Url;

use crate::{ConfigError, ConfigErrorKind, FieldReason};

/// Why a redirect target was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedirectError {
    kind: RedirectErrorKind,
}

/// The class of a [`RedirectError`]; [`as_str`](Self::as_str) is the detail's code.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RedirectErrorKind {
    /// Empty or too long.
    Length,
    /// A control character, whitespace or backslash, raw or
    /// percent-encoded (browsers drop tabs and newlines and read `\` as
    /// `/`, so `/\evil` and `/%09/evil` can become `//evil`).
    Character,
    /// A protocol-relative `//host`, a scheme without `//` (`https:evil`),
    /// or text that is neither a path nor an absolute URL.
    Form,
    /// An absolute URL whose origin is not on the allow-list (or with
    /// credentials in it).
    Origin,
}

impl RedirectErrorKind {
    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            RedirectErrorKind::Length => "redirect_length",
            RedirectErrorKind::Character => "redirect_character",
            RedirectErrorKind::Form => "redirect_form",
            RedirectErrorKind::Origin => "redirect_origin",
        }
    }
}

impl RedirectError {
    const fn new(kind: RedirectErrorKind) -> RedirectError {
        RedirectError { kind }
    }

    /// The class of the error.
    pub fn kind(&self) -> RedirectErrorKind {
        self.kind
    }
}

impl fmt::Display for RedirectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redirect target refused: {}", self.kind.as_str())
    }
}

impl std::error::Error for RedirectError {}

impl FieldReason for RedirectError {
    fn code(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// 422 `validation_failed` without a detail; `.at("next")` adds one and logs.
impl From<RedirectError> for palisade_errors::Error {
    fn from(error: RedirectError) -> palisade_errors::Error {
        palisade_errors::Error::new(ErrorKind::ValidationFailed).with_source(error)
    }
}

/// The longest target accepted, in bytes.
pub const MAX_REDIRECT_LEN: usize = 2048;

/// Where a login or logout may send the browser next.
///
/// Accepted:
/// - a path on this site: starts with a single `/` (not `//`, not `/\`);
/// - an absolute `https`/`http` URL (written with `//`) whose origin —
///   scheme, host and port — is exactly one of the allow-listed origins,
///   with no user name or password.
///
/// Refused: everything else, including `//evil.example`, `/\evil.example`,
/// `\\evil.example`, `https:evil.example`, `javascript:...`, and any
/// control character, whitespace or backslash, raw or percent-encoded (up
/// to three layers of encoding, for code that decodes twice).
///
/// ```
/// use palisade_validate::RedirectPolicy;
///
/// let policy = RedirectPolicy::new()
///     .allow_origin("https://accounts.example.com")
///     .unwrap();
/// assert_eq!(policy.check("/inbox?page=2").unwrap(), "/inbox?page=2");
/// assert!(policy.check("https://accounts.example.com/done").is_ok());
/// for attack in ["//evil.example", "/\\evil.example", "https:evil.example", "javascript:alert(1)",
///                "https://evil.example/", "/%09/evil.example", "https://accounts.example.com.evil.example/"] {
///     assert!(policy.check(attack).is_err(), "{attack:?}");
/// }
/// assert_eq!(policy.check_or("//evil.example", "/"), "/");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedirectPolicy {
    origins: Vec<url::Origin>,
}

impl RedirectPolicy {
    /// Relative paths only.
    pub fn new() -> RedirectPolicy {
        RedirectPolicy::default()
    }

    /// Also accepts absolute URLs on `origin` (`https://app.example.com`,
    /// with a port when not the scheme's default).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidAllowList`] when `origin` is not an
    /// `http(s)` origin alone (a path, query, credentials or a wildcard).
    pub fn allow_origin(mut self, origin: &str) -> Result<RedirectPolicy, ConfigError> {
        let invalid = || {
            ConfigError::new(
                ConfigErrorKind::InvalidAllowList,
                "RedirectPolicy origin: an http(s) origin such as https://app.example.com, without path, query or credentials",
            )
        };
        let url = Url::parse(origin).map_err(|_| invalid())?;
        let bare = matches!(url.scheme(), "https" | "http")
            && url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && !origin.contains('*')
            && url.host_str().is_some();
        if !bare {
            return Err(invalid());
        }
        self.origins.push(url.origin());
        Ok(self)
    }

    /// Checks `next`; returns it unchanged when it is a safe target.
    ///
    /// # Errors
    ///
    /// A [`RedirectError`] saying which rule failed.
    pub fn check<'a>(&self, next: &'a str) -> Result<&'a str, RedirectError> {
        if next.is_empty() || next.len() > MAX_REDIRECT_LEN {
            return Err(RedirectError::new(RedirectErrorKind::Length));
        }
        // The text and up to three percent-decodings of it, for servers or
        // frameworks that decode the parameter more than once.
        // Raw, no whitespace at all (browsers strip it at the ends and drop
        // tabs and newlines inside); decoded, no control, format character
        // or backslash (a decoded space stays a space).
        if next.chars().any(char::is_whitespace) {
            return Err(RedirectError::new(RedirectErrorKind::Character));
        }
        let mut layer = std::borrow::Cow::Borrowed(next);
        for _ in 0..4 {
            if layer
                .chars()
                .any(|c| c == '\\' || crate::is_control_or_format(c))
            {
                return Err(RedirectError::new(RedirectErrorKind::Character));
            }
            if layer.starts_with("//") {
                return Err(RedirectError::new(RedirectErrorKind::Form));
            }
            let decoded = percent_encoding_decode(&layer);
            if decoded == layer {
                break;
            }
            layer = std::borrow::Cow::Owned(decoded);
        }
        if next.starts_with('/') {
            return Ok(next);
        }
        // Absolute: the scheme must be followed by `//` (so `https:evil`,
        // which browsers resolve against the current page, is refused).
        let Some((scheme, rest)) = next.split_once(':') else {
            return Err(RedirectError::new(RedirectErrorKind::Form));
        };
        if !rest.starts_with("//")
            || !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http"))
        {
            return Err(RedirectError::new(RedirectErrorKind::Form));
        }
        let url = Url::parse(next).map_err(|_| RedirectError::new(RedirectErrorKind::Form))?;
        if !url.username().is_empty()
            || url.password().is_some()
            || !self.origins.contains(&url.origin())
        {
            return Err(RedirectError::new(RedirectErrorKind::Origin));
        }
        Ok(next)
    }

    /// `next` when [`check`](Self::check) accepts it, else `fallback` (the
    /// usual answer to a bad `?next=`: go home, do not fail the login).
    /// A refusal is logged as `input_validation_fail` with field `next`.
    pub fn check_or<'a>(&self, next: &'a str, fallback: &'a str) -> &'a str {
        match self.check(next) {
            Ok(next) => next,
            Err(error) => {
                let _logged = error.at("next");
                fallback
            }
        }
    }
}

/// One round of percent-decoding, lossy for invalid UTF-8 (a replacement
/// character is neither a control nor a separator, so it hides nothing).
fn percent_encoding_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' && index + 2 < bytes.len() {
            let high = (bytes[index + 1] as char).to_digit(16);
            let low = (bytes[index + 2] as char).to_digit(16);
            if let (Some(high), Some(low)) = (high, low) {
                out.push((high * 16 + low) as u8);
                index += 3;
                continue;
            }
        }
        out.push(byte);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn policy() -> RedirectPolicy {
        RedirectPolicy::new()
            .allow_origin("https://app.example.com")
            .unwrap()
            .allow_origin("http://localhost:8080")
            .unwrap()
    }

    fn kind(next: &str) -> RedirectErrorKind {
        policy().check(next).unwrap_err().kind()
    }

    #[test]
    fn open_redirect_payloads_are_refused() {
        use RedirectErrorKind::*;
        for (attack, expected) in [
            ("//evil.example", Form),
            ("///evil.example", Form),
            ("/\\evil.example", Character),
            ("\\\\evil.example", Character),
            ("\\/evil.example", Character),
            ("https:evil.example", Form),
            ("https:/evil.example", Form),
            ("javascript:alert(1)", Form),
            ("JAVASCRIPT://%0aalert(1)", Character),
            ("data:text/html,<script>", Form),
            ("/%09/evil.example", Character),
            ("/%2f/evil.example", Form),
            ("%2f%2fevil.example", Form),
            ("/%252f/evil.example", Form),
            ("/%5cevil.example", Character),
            ("/\t/evil.example", Character),
            ("/\n/evil.example", Character),
            ("/\r\n/evil.example", Character),
            (" //evil.example", Character),
            ("/\u{3000}/evil.example", Character),
            ("/\u{200b}/evil.example", Character),
            ("https://evil.example/", Origin),
            ("https://app.example.com.evil.example/", Origin),
            ("https://app.example.com@evil.example/", Origin),
            ("https://user@app.example.com/", Origin),
            ("http://app.example.com/", Origin),
            ("https://app.example.com:8443/", Origin),
            ("evil.example", Form),
            ("", Length),
        ] {
            assert_eq!(kind(attack), expected, "{attack:?}");
        }
    }

    #[test]
    fn paths_and_allowed_origins_pass_unchanged() {
        for good in [
            "/",
            "/inbox",
            "/a/b?c=d&e=%20f#top",
            "/caf%C3%A9",
            "https://app.example.com/",
            "https://APP.example.com/x",
            "http://localhost:8080/dev",
        ] {
            assert_eq!(policy().check(good).unwrap(), good);
        }
        assert!(
            RedirectPolicy::new()
                .check("https://app.example.com/")
                .is_err()
        );
    }

    #[test]
    fn origins_must_be_bare() {
        for bad in [
            "https://app.example.com/path",
            "https://*.example.com",
            "ftp://files.example.com",
            "https://u:p@app.example.com",
            "app.example.com",
        ] {
            assert!(RedirectPolicy::new().allow_origin(bad).is_err(), "{bad}");
        }
    }
}
