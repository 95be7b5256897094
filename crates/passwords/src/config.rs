//! Configuration errors: a hashing, policy or store setting that cannot work.

/// A setting of this crate that cannot work, found when it is built (hash
/// parameters below the floor, a policy whose maximum is under its minimum,
/// a pepper id the PHC format cannot carry, a Redis key prefix). The message
/// names the setting and the reason; [`kind`](Self::kind) is for code.
///
/// Converts into a 500 `internal` [`palisade_errors::Error`] (the error kept
/// as its source, for the log), so start-up code can use `?`.
///
/// ```
/// use palisade_passwords::{ConfigErrorKind, PasswordPolicy};
///
/// let error = PasswordPolicy::builder().min_length(20).max_length(10).build().unwrap_err();
/// assert_eq!(error.kind(), ConfigErrorKind::InvalidPolicy);
/// assert!(error.to_string().contains("max_length"));
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
    /// Argon2 parameters out of range, or above the verification caps.
    InvalidHashParams,
    /// A pepper id that is empty, too long or not `[A-Za-z0-9-]`, a pepper
    /// key shorter than 32 bytes, or two peppers with one id.
    InvalidPepper,
    /// A [`PasswordPolicy`](crate::PasswordPolicy) setting out of range.
    InvalidPolicy,
    /// A hashing pool with no workers.
    InvalidPool,
    /// A Redis key prefix is empty or holds a brace, whitespace or a
    /// control character.
    InvalidKeyPrefix,
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
