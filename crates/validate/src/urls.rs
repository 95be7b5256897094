//! URLs from users: [`UrlPolicy`], a scheme allow-list (default `https`,
//! `http`) over the WHATWG parser of the `url` crate.
//!
//! A profile link or webhook URL is rendered into pages and fetched by
//! servers: `javascript:` and `data:` in an `href` are script injection,
//! `file:` reads the server's disk, credentials in the authority
//! (`https://bank.example@evil.example`) are phishing.

use std::fmt;

use palisade_errors::ErrorKind;
use url::Url;

use crate::{ConfigError, ConfigErrorKind, FieldReason};

/// Why a URL was refused. Names the rule, never the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlError {
    kind: UrlErrorKind,
}

/// The class of a [`UrlError`]; [`as_str`](Self::as_str) is the detail's code.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UrlErrorKind {
    /// Empty or longer than the policy's maximum.
    Length,
    /// A control character, whitespace or backslash in the text (the
    /// WHATWG parser would silently drop or reinterpret them).
    Character,
    /// Not an absolute URL.
    Syntax,
    /// A scheme outside the allow-list (`javascript:`, `data:`, `file:`, ...).
    Scheme,
    /// A user name or password in the authority.
    Credentials,
    /// No host (`http:///path`), or a host the policy refuses.
    Host,
}

impl UrlErrorKind {
    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            UrlErrorKind::Length => "url_length",
            UrlErrorKind::Character => "url_character",
            UrlErrorKind::Syntax => "url_syntax",
            UrlErrorKind::Scheme => "url_scheme",
            UrlErrorKind::Credentials => "url_credentials",
            UrlErrorKind::Host => "url_host",
        }
    }
}

impl UrlError {
    pub(crate) const fn new(kind: UrlErrorKind) -> UrlError {
        UrlError { kind }
    }

    /// The class of the error.
    pub fn kind(&self) -> UrlErrorKind {
        self.kind
    }
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "URL refused: {}", self.kind.as_str())
    }
}

impl std::error::Error for UrlError {}

impl FieldReason for UrlError {
    fn code(&self) -> &'static str {
        self.kind.as_str()
    }
}

/// 422 `validation_failed` without a detail; `.at("field")` adds one and logs.
impl From<UrlError> for palisade_errors::Error {
    fn from(error: UrlError) -> palisade_errors::Error {
        palisade_errors::Error::new(ErrorKind::ValidationFailed).with_source(error)
    }
}

/// Schemes that run code or read local resources wherever a URL is used;
/// no allow-list may hold them.
const NEVER_ALLOWED: &[&str] = &[
    "javascript",
    "vbscript",
    "data",
    "file",
    "blob",
    "filesystem",
    "about",
];

/// The default maximum length of a URL, in bytes.
pub const DEFAULT_MAX_URL_LEN: usize = 2048;

/// Which absolute URLs are accepted: a scheme allow-list (default `https`
/// and `http`), a maximum length (2048), no credentials in the authority,
/// a host required for `http(s)`.
///
/// The text must not hold control characters, whitespace or backslashes:
/// the WHATWG parser drops tabs and newlines (`java\tscript:`) and reads
/// `\` as `/` in `http(s)` URLs, so what a reviewer or a second parser sees
/// would differ from what is stored. The accepted URL is returned in its
/// parsed, serialised form ([`Url::as_str`]); store and render that, not the
/// input.
///
/// ```
/// use palisade_validate::UrlPolicy;
///
/// let policy = UrlPolicy::new();
/// let url = policy.parse("https://Example.COM/a/../b?q=1").unwrap();
/// assert_eq!(url.as_str(), "https://example.com/b?q=1");
/// for bad in [
///     "javascript:alert(1)",
///     "data:text/html,<script>alert(1)</script>",
///     "file:///etc/passwd",
///     "https://bank.example@evil.example/",
///     "java\tscript:alert(1)",
///     "/relative",
/// ] {
///     assert!(policy.parse(bad).is_err(), "{bad:?}");
/// }
/// let https_only = UrlPolicy::new().with_schemes(["https"]).unwrap();
/// assert!(https_only.parse("http://example.com/").is_err());
/// assert!(UrlPolicy::new().with_schemes(["javascript"]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlPolicy {
    schemes: Vec<String>,
    max_len: usize,
    allow_credentials: bool,
}

impl Default for UrlPolicy {
    fn default() -> UrlPolicy {
        UrlPolicy::new()
    }
}

impl UrlPolicy {
    /// `https` and `http`, 2048 bytes, no credentials.
    pub fn new() -> UrlPolicy {
        UrlPolicy {
            schemes: vec!["https".to_owned(), "http".to_owned()],
            max_len: DEFAULT_MAX_URL_LEN,
            allow_credentials: false,
        }
    }

    /// Replaces the scheme allow-list (names without the `:`; compared
    /// case-insensitively).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidAllowList`] for an empty list, a name that
    /// is not a scheme, or a scheme that runs code or reads local data
    /// (`javascript`, `vbscript`, `data`, `file`, `blob`, `filesystem`, `about`).
    pub fn with_schemes<I, S>(mut self, schemes: I) -> Result<UrlPolicy, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for scheme in schemes {
            let scheme = scheme.as_ref().to_ascii_lowercase();
            let well_formed = scheme
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
            if !well_formed {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidAllowList,
                    "UrlPolicy schemes: a scheme is letters, digits, `+`, `-` or `.`, starting with a letter",
                ));
            }
            if NEVER_ALLOWED.contains(&scheme.as_str()) {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidAllowList,
                    "UrlPolicy schemes: javascript, vbscript, data, file, blob, filesystem and about run code or read local data",
                ));
            }
            list.push(scheme);
        }
        if list.is_empty() {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidAllowList,
                "UrlPolicy schemes: the allow-list is empty",
            ));
        }
        self.schemes = list;
        Ok(self)
    }

    /// Sets the maximum length in bytes.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidLimit`] for 0 or more than 65 536.
    pub fn with_max_len(mut self, max_len: usize) -> Result<UrlPolicy, ConfigError> {
        if max_len == 0 || max_len > 65_536 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "UrlPolicy max_len: between 1 and 65536 bytes",
            ));
        }
        self.max_len = max_len;
        Ok(self)
    }

    /// Accepts `user:password@` in the authority. Such URLs put secrets in
    /// logs and browser history and are a phishing staple
    /// (`https://bank.example@evil.example`); only for URLs that never reach
    /// a page.
    #[must_use]
    pub fn allow_credentials_dangerously(mut self) -> UrlPolicy {
        self.allow_credentials = true;
        self
    }

    /// The allowed schemes.
    pub fn schemes(&self) -> &[String] {
        &self.schemes
    }

    /// Parses and checks `text`.
    ///
    /// # Errors
    ///
    /// A [`UrlError`] saying which rule failed.
    pub fn parse(&self, text: &str) -> Result<Url, UrlError> {
        if text.is_empty() || text.len() > self.max_len {
            return Err(UrlError::new(UrlErrorKind::Length));
        }
        if text
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        {
            return Err(UrlError::new(UrlErrorKind::Character));
        }
        let url = Url::parse(text).map_err(|_| UrlError::new(UrlErrorKind::Syntax))?;
        self.check(&url)?;
        // Percent-decoding and IDNA can make the serialisation longer.
        if url.as_str().len() > self.max_len {
            return Err(UrlError::new(UrlErrorKind::Length));
        }
        Ok(url)
    }

    /// Checks an already parsed URL (scheme, credentials, host).
    ///
    /// # Errors
    ///
    /// A [`UrlError`] saying which rule failed.
    pub fn check(&self, url: &Url) -> Result<(), UrlError> {
        if !self.schemes.iter().any(|scheme| scheme == url.scheme()) {
            return Err(UrlError::new(UrlErrorKind::Scheme));
        }
        if !self.allow_credentials && (!url.username().is_empty() || url.password().is_some()) {
            return Err(UrlError::new(UrlErrorKind::Credentials));
        }
        if url.is_special() && url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::new(UrlErrorKind::Host));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kind(text: &str) -> UrlErrorKind {
        UrlPolicy::new().parse(text).unwrap_err().kind()
    }

    #[test]
    fn script_and_local_schemes_are_refused() {
        for attack in [
            "javascript:alert(document.cookie)",
            "JavaScript:alert(1)",
            "vbscript:msgbox(1)",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
            "file:///etc/passwd",
            "blob:https://example.com/uuid",
        ] {
            assert_eq!(kind(attack), UrlErrorKind::Scheme, "{attack}");
        }
    }

    #[test]
    fn parser_differential_characters_are_refused() {
        for attack in [
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            " javascript:alert(1)",
            "\u{0}javascript:alert(1)",
            "https://example.com\\@evil.example/",
            "https://example.com/ x",
        ] {
            assert_eq!(kind(attack), UrlErrorKind::Character, "{attack:?}");
        }
    }

    #[test]
    fn credentials_hosts_and_lengths() {
        assert_eq!(
            kind("https://user:pw@example.com/"),
            UrlErrorKind::Credentials
        );
        assert_eq!(
            kind("https://example.com@evil.example/"),
            UrlErrorKind::Credentials
        );
        assert!(
            UrlPolicy::new()
                .allow_credentials_dangerously()
                .parse("https://u@example.com/")
                .is_ok()
        );
        assert_eq!(kind("/just/a/path"), UrlErrorKind::Syntax);
        assert_eq!(kind(""), UrlErrorKind::Length);
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(kind(&long), UrlErrorKind::Length);
        assert!(UrlPolicy::new().with_max_len(0).is_err());
        assert!(UrlPolicy::new().with_schemes(Vec::<&str>::new()).is_err());
        assert!(UrlPolicy::new().with_schemes(["ht tp"]).is_err());
        let mailto = UrlPolicy::new().with_schemes(["mailto"]).unwrap();
        assert!(mailto.parse("mailto:a@example.com").is_ok());
    }

    #[test]
    fn idn_hosts_are_stored_as_punycode() {
        let url = UrlPolicy::new().parse("https://bücher.example/").unwrap();
        assert_eq!(url.host_str(), Some("xn--bcher-kva.example"));
    }
}
