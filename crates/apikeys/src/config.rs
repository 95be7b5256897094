//! Configuration errors: a pepper, environment, CIDR or limit that cannot work.

/// A setting of this crate that cannot work, found when it is built. The
/// message names the setting and the reason; [`kind`](Self::kind) is for code.
///
/// Converts into a 500 `internal` [`palisade_errors::Error`] (the error kept
/// as its source, for the log), so start-up code can use `?`.
///
/// ```
/// use palisade_apikeys::{ConfigErrorKind, Pepper};
///
/// let error = Pepper::new("p1", vec![7u8; 8]).unwrap_err();
/// assert_eq!(error.kind(), ConfigErrorKind::InvalidPepper);
/// assert!(error.to_string().contains("pepper"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    detail: std::borrow::Cow<'static, str>,
}

/// The class of a [`ConfigError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A pepper id that is empty, too long or not `[A-Za-z0-9-]`, a pepper
    /// shorter than 32 bytes, or two peppers with one id.
    InvalidPepper,
    /// An environment name that is not 1 to 16 of `a-z0-9`.
    InvalidEnv,
    /// A CIDR block that does not parse or has host bits set.
    InvalidCidr,
    /// A limit or duration out of range (keys per owner, grace period,
    /// usage batching, retention).
    InvalidLimit,
    /// A Redis key prefix refused by `palisade_errors::check_key_prefix`.
    InvalidKeyPrefix,
}

impl ConfigError {
    pub(crate) fn new(
        kind: ConfigErrorKind,
        detail: impl Into<std::borrow::Cow<'static, str>>,
    ) -> ConfigError {
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
