use std::borrow::Cow;
use std::sync::Arc;

use crate::{Error, ErrorKind};

/// A store could not answer: the one store error of every Palisade core
/// (`RateStore`, `LoginStore`, `RevocationStore`, `FamilyStore`, ...).
///
/// What the caller does with it is its configured fail mode (a rate limit may
/// fall back to memory or fail open; revocation and lockout fail closed).
/// Turned into an HTTP error it is always a 503 `unavailable`: the detail and
/// the source are for the log, never for the client.
///
/// ```
/// use palisade_errors::{ErrorKind, StoreError, StoreErrorKind};
///
/// fn check() -> Result<(), palisade_errors::Error> {
///     let reply: Result<(), StoreError> = Err(StoreError::timeout("revocation check"));
///     reply?; // `?` turns it into the envelope error
///     Ok(())
/// }
/// let error = check().unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::Unavailable);
/// assert_eq!(error.status(), 503);
/// assert_eq!(
///     std::error::Error::source(&error).unwrap().to_string(),
///     "store timeout: revocation check"
/// );
/// ```
#[derive(Clone, Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    detail: Cow<'static, str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

/// The class of a [`StoreError`]. Every class is a 503 to the client; the
/// class is for operators, metrics and fail-mode decisions.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// The backend refused or dropped the connection, or answered with an error.
    Unavailable,
    /// The call did not finish within its timeout. The operation may still
    /// have been applied by the backend.
    Timeout,
    /// The backend answered with a reply of the wrong shape (a script that
    /// was replaced, a key written by something else).
    UnexpectedReply,
    /// The backend lost state that security depends on (a Redis restart
    /// without persistence wiped revocations): refuse rather than forget.
    DataLost,
}

impl StoreErrorKind {
    /// A stable snake_case name, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Timeout => "timeout",
            StoreErrorKind::UnexpectedReply => "unexpected_reply",
            StoreErrorKind::DataLost => "data_lost",
        }
    }
}

impl std::fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoreError {
    /// A failure of `kind`, described by `detail` (an operation name such as
    /// `"rate-limit decision"`). The detail is logged, never sent: it must
    /// not contain a key, token, subject or any other request data.
    pub fn new(kind: StoreErrorKind, detail: impl Into<Cow<'static, str>>) -> StoreError {
        StoreError {
            kind,
            detail: detail.into(),
            source: None,
        }
    }

    /// The backend is down or refused the call.
    pub fn unavailable(detail: impl Into<Cow<'static, str>>) -> StoreError {
        StoreError::new(StoreErrorKind::Unavailable, detail)
    }

    /// `operation` took longer than its timeout.
    pub fn timeout(operation: impl Into<Cow<'static, str>>) -> StoreError {
        StoreError::new(StoreErrorKind::Timeout, operation)
    }

    /// `operation` got a reply of the wrong shape.
    pub fn unexpected_reply(operation: impl Into<Cow<'static, str>>) -> StoreError {
        StoreError::new(StoreErrorKind::UnexpectedReply, operation)
    }

    /// The backend lost state that must not silently vanish.
    pub fn data_lost(detail: impl Into<Cow<'static, str>>) -> StoreError {
        StoreError::new(StoreErrorKind::DataLost, detail)
    }

    /// Attaches the backend's own error (a `redis::RedisError`, an I/O
    /// error). Reached through [`std::error::Error::source`], never sent.
    #[must_use]
    pub fn with_source<E>(mut self, source: E) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.source = Some(Arc::new(source));
        self
    }

    /// Prefixes the detail with the operation that failed, e.g.
    /// `"revocation check"`, keeping the kind and the source.
    #[must_use]
    pub fn during(mut self, operation: &str) -> StoreError {
        self.detail = Cow::Owned(format!("{operation}: {}", self.detail));
        self
    }

    /// The class of the failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store {}: {}", self.kind, self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// Fail closed: a store that cannot answer is a 503 `unavailable` (the store
/// error kept as the source, for the log), never a silent "allowed".
impl From<StoreError> for Error {
    fn from(error: StoreError) -> Error {
        Error::new(ErrorKind::Unavailable).with_source(error)
    }
}

/// The longest store key prefix [`check_key_prefix`] accepts, in bytes.
pub const MAX_KEY_PREFIX_LEN: usize = 100;

/// Why [`check_key_prefix`] refused a prefix.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyPrefixProblem {
    /// An empty prefix would share the key space with every other user of
    /// the Redis.
    Empty,
    /// Longer than [`MAX_KEY_PREFIX_LEN`] bytes.
    TooLong,
    /// A `{` or `}`: Redis Cluster hashes the first `{...}` of a key, so a
    /// brace in the prefix would become every key's hash tag and put every
    /// subject on one slot (one hot shard, and no key-family isolation).
    Brace,
    /// Whitespace or a control character, which break `redis-cli`, key
    /// patterns and log lines.
    WhitespaceOrControl,
}

impl std::fmt::Display for KeyPrefixProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyPrefixProblem::Empty => "is empty",
            KeyPrefixProblem::TooLong => "is longer than 100 bytes",
            KeyPrefixProblem::Brace => "holds a brace, which would become every key's hash tag",
            KeyPrefixProblem::WhitespaceOrControl => "holds whitespace or a control character",
        })
    }
}

/// The one key-prefix rule of every Palisade Redis store (see
/// CONTRIBUTING.md, "Redis stores"), so no store is laxer than another.
///
/// ```
/// use palisade_errors::{KeyPrefixProblem, check_key_prefix};
///
/// assert_eq!(check_key_prefix("myapp:rl"), Ok(()));
/// assert_eq!(check_key_prefix("myapp:{rl}"), Err(KeyPrefixProblem::Brace));
/// assert_eq!(check_key_prefix(""), Err(KeyPrefixProblem::Empty));
/// assert_eq!(check_key_prefix("my app"), Err(KeyPrefixProblem::WhitespaceOrControl));
/// ```
pub fn check_key_prefix(prefix: &str) -> Result<(), KeyPrefixProblem> {
    if prefix.is_empty() {
        return Err(KeyPrefixProblem::Empty);
    }
    if prefix.len() > MAX_KEY_PREFIX_LEN {
        return Err(KeyPrefixProblem::TooLong);
    }
    if prefix.contains(['{', '}']) {
        return Err(KeyPrefixProblem::Brace);
    }
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(KeyPrefixProblem::WhitespaceOrControl);
    }
    Ok(())
}
