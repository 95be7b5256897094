/// Why a header or CORS policy could not be built.
///
/// The message names the setting and the reason, so a bad configuration fails
/// at start-up with something an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    kind: ConfigErrorKind,
    detail: String,
}

/// The class of a [`ConfigError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// A CSP source expression is not valid CSP syntax (quotes, `;`, `,`,
    /// whitespace, control characters, an unknown keyword...).
    InvalidCspSource,
    /// A CSP directive name is unknown or misplaced.
    InvalidCspDirective,
    /// A source that defeats CSP's XSS protection (`'unsafe-inline'`,
    /// `'unsafe-eval'`, `data:`, `*`) in the script sources without the
    /// matching `..._dangerously()` opt-in.
    UnsafeScriptSource,
    /// An origin is not `scheme://host[:port]` (a path, userinfo, wildcard,
    /// `null`, a bad port...).
    InvalidOrigin,
    /// `Access-Control-Allow-Credentials` with any-origin: browsers refuse it,
    /// and reflecting origins instead would hand every site the user's session.
    CredentialsWithAnyOrigin,
    /// A header name, method or feature name is not a valid token.
    InvalidToken,
    /// HSTS max-age below one year, or preload without its prerequisites.
    WeakHsts,
    /// A value cannot be sent as a header value.
    InvalidHeaderValue,
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

/// A configuration error reaching a request is the server's fault: a 500
/// `internal`, with the configuration error kept as the source (for the log,
/// never the client), so `?` works in a handler or a start-up function that
/// returns [`palisade_errors::Error`].
impl From<ConfigError> for palisade_errors::Error {
    fn from(error: ConfigError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}
