//! Why a key was refused, or why a key operation did not happen.

use palisade_errors::{ErrorKind, StoreError};

/// Why [`ApiKeys`](crate::ApiKeys) refused a key or an operation. The
/// detail is the kind; never the key or its secret.
///
/// Into the envelope: every authentication refusal (malformed, wrong
/// environment, unknown, wrong secret, revoked, expired, rotated out) is
/// the same 401 with `WWW-Authenticate: ApiKey`, an address outside the
/// allow-list or a missing scope a 403 (their events already logged), a
/// scope the creator may not grant a 422, too many keys a 409, a key the
/// owner does not hold a 404, a store failure a 503.
#[derive(Clone, Debug)]
pub struct ApiKeyError {
    kind: ApiKeyErrorKind,
    store: Option<StoreError>,
}

/// The class of an [`ApiKeyError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiKeyErrorKind {
    /// Not a key this crate could have issued (length, layout, charset or
    /// checksum); refused before any store lookup.
    Malformed,
    /// A well-formed key of another environment (a `test` key on `live`).
    WrongEnvironment,
    /// No key with this id.
    UnknownKey,
    /// The id exists but the secret does not match.
    WrongSecret,
    /// The key was revoked.
    Revoked,
    /// The key is past its expiry.
    Expired,
    /// The key was rotated and its grace period is over.
    RotatedOut,
    /// The client's address is outside the key's allow-list (403).
    IpNotAllowed,
    /// The key lacks a scope the request needs (403).
    MissingScope,
    /// Asked to grant a scope the creator may not grant (422).
    ScopeNotGrantable,
    /// The owner already holds the maximum number of keys (409).
    TooManyKeys,
    /// The owner holds no key with this id (404), for revoke and rotate.
    NotFound,
    /// The key was rotated already (409): rotate its successor. A second
    /// rotation of a leaving key would fork it and restart its grace, so a
    /// leaked key rotated again and again would never stop working.
    AlreadyRotated,
    /// The store could not answer, or the system's random source failed
    /// (fail closed: a 503).
    Store,
}

impl ApiKeyErrorKind {
    /// A stable snake_case name (the `reason` of the event).
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiKeyErrorKind::Malformed => "malformed_key",
            ApiKeyErrorKind::WrongEnvironment => "wrong_environment",
            ApiKeyErrorKind::UnknownKey => "unknown_key",
            ApiKeyErrorKind::WrongSecret => "wrong_secret",
            ApiKeyErrorKind::Revoked => "revoked",
            ApiKeyErrorKind::Expired => "expired",
            ApiKeyErrorKind::RotatedOut => "rotated",
            ApiKeyErrorKind::IpNotAllowed => "ip_not_allowed",
            ApiKeyErrorKind::MissingScope => "missing_scope",
            ApiKeyErrorKind::ScopeNotGrantable => "scope_not_grantable",
            ApiKeyErrorKind::TooManyKeys => "too_many_keys",
            ApiKeyErrorKind::AlreadyRotated => "already_rotated",
            ApiKeyErrorKind::NotFound => "not_found",
            ApiKeyErrorKind::Store => "store_unavailable",
        }
    }
}

impl ApiKeyError {
    pub(crate) fn new(kind: ApiKeyErrorKind) -> ApiKeyError {
        ApiKeyError { kind, store: None }
    }

    pub(crate) fn store(error: StoreError) -> ApiKeyError {
        ApiKeyError {
            kind: ApiKeyErrorKind::Store,
            store: Some(error),
        }
    }

    /// The class of the error.
    pub fn kind(&self) -> ApiKeyErrorKind {
        self.kind
    }
}

impl std::fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "api key: {}", self.kind.as_str())?;
        if let Some(store) = &self.store {
            write!(f, " ({store})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiKeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.store
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ApiKeyError> for palisade_errors::Error {
    fn from(error: ApiKeyError) -> palisade_errors::Error {
        use http::{HeaderValue, header::WWW_AUTHENTICATE};
        use palisade_errors::Error;
        match error.kind {
            ApiKeyErrorKind::Malformed
            | ApiKeyErrorKind::WrongEnvironment
            | ApiKeyErrorKind::UnknownKey
            | ApiKeyErrorKind::WrongSecret
            | ApiKeyErrorKind::Revoked
            | ApiKeyErrorKind::Expired
            | ApiKeyErrorKind::RotatedOut => Error::new(ErrorKind::Unauthorized)
                .with_header(WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey"))
                .logged()
                .with_source(error),
            ApiKeyErrorKind::IpNotAllowed | ApiKeyErrorKind::MissingScope => {
                Error::new(ErrorKind::Forbidden).logged().with_source(error)
            }
            ApiKeyErrorKind::ScopeNotGrantable => Error::new(ErrorKind::ValidationFailed)
                .with_detail("scopes", "not_grantable")
                .with_source(error),
            ApiKeyErrorKind::TooManyKeys => Error::new(ErrorKind::Conflict).with_source(error),
            ApiKeyErrorKind::AlreadyRotated => Error::new(ErrorKind::Conflict)
                .with_detail("key", "already_rotated")
                .with_source(error),
            ApiKeyErrorKind::NotFound => Error::new(ErrorKind::NotFound).with_source(error),
            ApiKeyErrorKind::Store => Error::new(ErrorKind::Unavailable)
                .with_retry_after(1)
                .with_source(error),
        }
    }
}
