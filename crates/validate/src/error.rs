//! Configuration errors: a limit, host pattern or policy that cannot work.

/// A setting of this crate that cannot work, found when it is built. The
/// message names the setting and the reason; [`kind`](Self::kind) is for code.
///
/// Converts into a 500 `internal` [`palisade_errors::Error`] (the error kept
/// as its source, for the log), so start-up code can use `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    detail: &'static str,
}

/// The class of a [`ConfigError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A limit out of range (zero, or above the crate's hard maximum).
    InvalidLimit,
    /// A trusted-host entry that is not a host name, `*.` pattern or
    /// `host:port`, or an empty allow-list where one is required.
    InvalidHost,
    /// A URL scheme, origin or CIDR that cannot be used in an allow-list.
    InvalidAllowList,
    /// An upload policy that cannot work (no type allowed, an extension
    /// that disagrees with its type).
    InvalidUploadPolicy,
    /// A LIKE escape character that cannot work (`%`, `_`, a quote, a
    /// control character).
    InvalidEscapeChar,
}

impl ConfigError {
    #[allow(dead_code)] // used by the modules as they land
    pub(crate) fn new(kind: ConfigErrorKind, detail: &'static str) -> ConfigError {
        ConfigError { kind, detail }
    }

    /// The class of the error.
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail)
    }
}

impl std::error::Error for ConfigError {}

/// A configuration that cannot work is the server's fault: 500 `internal`.
impl From<ConfigError> for palisade_errors::Error {
    fn from(error: ConfigError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}
