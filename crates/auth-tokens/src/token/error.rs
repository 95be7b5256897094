//! Why a token was refused, and the response that refusal becomes.

use http::header::WWW_AUTHENTICATE;
use palisade_errors::{Error, ErrorKind};

use crate::authz::Authorizer;
use crate::challenge::{self, BearerError};

/// Why a token was refused. Clients only ever see 401 `invalid_token` (or
/// 503 when a store is down); the kind is for logs and tests.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenErrorKind {
    /// Longer than the policy's maximum.
    TooLarge,
    /// Not three base64url parts of JSON.
    Malformed,
    /// `alg` is not an algorithm this crate accepts (`none` included).
    UnsupportedAlgorithm,
    /// `alg` differs from the algorithm of the key named by `kid`.
    AlgorithmMismatch,
    /// No `kid`, or one that names no (non-retired) key.
    UnknownKey,
    /// A `crit` header: an extension this verifier does not implement.
    UnsupportedCritical,
    /// The `typ` header or `type` claim is not this token type.
    WrongType,
    /// The signature does not verify.
    BadSignature,
    /// A claim is missing or of the wrong JSON type.
    InvalidClaims,
    /// Past `exp` (plus leeway).
    Expired,
    /// Before `nbf` (minus leeway).
    NotYetValid,
    /// `iat` in the future (beyond leeway).
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    WrongAudience,
    /// Revoked (logout, family revoked, or issued at or before the subject's `not_before`).
    Revoked,
    /// A store needed to decide could not answer (fail closed: 503).
    StoreUnavailable,
    /// No key can sign (a verify-only keyring asked to issue).
    CannotSign,
}

impl TokenErrorKind {
    /// A stable snake_case name (`expired`, `bad_signature`, ...): the
    /// `reason` of the `authn_token_invalid` event.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenErrorKind::TooLarge => "too_large",
            TokenErrorKind::Malformed => "malformed",
            TokenErrorKind::UnsupportedAlgorithm => "unsupported_algorithm",
            TokenErrorKind::AlgorithmMismatch => "algorithm_mismatch",
            TokenErrorKind::UnknownKey => "unknown_key",
            TokenErrorKind::UnsupportedCritical => "unsupported_critical",
            TokenErrorKind::WrongType => "wrong_type",
            TokenErrorKind::BadSignature => "bad_signature",
            TokenErrorKind::InvalidClaims => "invalid_claims",
            TokenErrorKind::Expired => "expired",
            TokenErrorKind::NotYetValid => "not_yet_valid",
            TokenErrorKind::IssuedInFuture => "issued_in_future",
            TokenErrorKind::WrongIssuer => "wrong_issuer",
            TokenErrorKind::WrongAudience => "wrong_audience",
            TokenErrorKind::Revoked => "revoked",
            TokenErrorKind::StoreUnavailable => "store_unavailable",
            TokenErrorKind::CannotSign => "cannot_sign",
        }
    }
}

/// A refused token (or a token that could not be issued).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError {
    kind: TokenErrorKind,
}

impl TokenError {
    pub(crate) fn new(kind: TokenErrorKind) -> TokenError {
        TokenError { kind }
    }

    /// Why.
    pub fn kind(&self) -> TokenErrorKind {
        self.kind
    }

    /// The response: 401 with `WWW-Authenticate: Bearer realm="…",
    /// error="invalid_token"` (RFC 6750 §3.1), whatever the reason, so a
    /// client learns nothing about which check failed; 503 `unavailable`
    /// when a store was down.
    ///
    /// `realm` follows the one rule [`Authorizer::new`] enforces (1–64
    /// printable ASCII characters without space, `"` or `\`). A realm that
    /// breaks it is a programming error: logged, and answered with
    /// [`DEFAULT_REALM`] rather than a realm the authorizer would refuse.
    pub fn to_error(&self, realm: &str) -> Error {
        self.respond(|| {
            let realm = if challenge::is_realm(realm) {
                realm
            } else {
                tracing::error!(
                    default = DEFAULT_REALM,
                    "TokenError::to_error: invalid realm (see Authorizer::new), the default used"
                );
                DEFAULT_REALM
            };
            let error = Error::new(ErrorKind::Unauthorized);
            match challenge::bearer(realm, Some(BearerError::InvalidToken), None) {
                Ok(value) => error.with_header(WWW_AUTHENTICATE, value),
                Err(_) => error,
            }
        })
    }

    /// [`to_error`](Self::to_error) with the `invalid_token` challenge the
    /// authorizer precomputed for its (validated) realm.
    pub fn to_error_for(&self, authorizer: &Authorizer) -> Error {
        self.respond(|| authorizer.challenge_invalid_token())
    }

    /// 503 for a store that did not answer, 500 for a token that could not
    /// be signed, `invalid_token` for every refusal (marked
    /// [`logged`](Error::logged): the crate logs each refusal where it makes
    /// the `TokenError`).
    fn respond(&self, invalid_token: impl FnOnce() -> Error) -> Error {
        match self.kind {
            TokenErrorKind::StoreUnavailable => Error::new(ErrorKind::Unavailable),
            TokenErrorKind::CannotSign => Error::new(ErrorKind::Internal),
            _ => invalid_token().logged(),
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token refused: {:?}", self.kind)
    }
}

impl std::error::Error for TokenError {}

/// The realm of the challenge a [`TokenError`] converted with `?` carries.
/// For your own realm, use [`TokenError::to_error`] or
/// [`TokenError::to_error_for`].
pub const DEFAULT_REALM: &str = "api";

/// [`TokenError::to_error`] with [`DEFAULT_REALM`] (401 with the
/// `invalid_token` challenge, 503 for a store that did not answer, 500 for
/// a token that could not be signed), the token error kept as the source,
/// for the log.
impl From<TokenError> for Error {
    fn from(error: TokenError) -> Error {
        error.to_error(DEFAULT_REALM).with_source(error)
    }
}
