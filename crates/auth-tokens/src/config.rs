//! Configuration errors: a token policy or a store setting that cannot work.

/// A setting of this crate that cannot work, found when it is built (a
/// token policy from configuration, a Redis key prefix). The message names
/// the setting and the reason; [`kind`](Self::kind) is for code.
///
/// Converts into a 500 `internal` [`palisade_errors::Error`] (the error kept
/// as its source, for the log), so start-up code can use `?`.
///
/// ```
/// use palisade_auth_tokens::{ConfigErrorKind, TokenPolicy};
///
/// let error = serde_json::from_str::<TokenPolicy>(r#"{"issuer": "", "audience": "api"}"#)
///     .unwrap_err();
/// assert!(error.to_string().contains("issuer"));
/// # let _ = ConfigErrorKind::InvalidPolicy;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    detail: String,
}

/// The class of a [`ConfigError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A [`TokenPolicy`](crate::TokenPolicy) field is out of range (an empty
    /// issuer or audience, a zero or inverted lifetime, a leeway above
    /// [`MAX_LEEWAY`](crate::MAX_LEEWAY)).
    InvalidPolicy,
    /// A Redis key prefix is empty or holds a brace, whitespace or a
    /// control character.
    InvalidKeyPrefix,
    /// A [`RefreshCookie`](crate::cookie::RefreshCookie) setting: a name
    /// without `__Host-` (unless chosen dangerously), an allowed origin that
    /// is not `scheme://host[:port]`, no allowed origin, a bad CSRF header.
    InvalidCookie,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, detail: impl Into<String>) -> ConfigError {
        ConfigError {
            kind,
            detail: detail.into(),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ConfigError {}

/// A configuration that cannot work is the server's fault: 500 `internal`.
impl From<ConfigError> for palisade_errors::Error {
    fn from(error: ConfigError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}
