//! The error of hashing and verifying.

use palisade_errors::ErrorKind;

/// Why hashing or verifying did not give an answer, or why the answer is no.
///
/// The detail names the rule, never the password or the stored hash. Into
/// the envelope: a wrong password is a 401 (its `authn_login_fail` event
/// already logged), an over-long password a 422 with the detail
/// `password`/`too_long`, a saturated pool a 503, a stored hash this crate
/// refuses (malformed, over the caps, an unknown pepper) a 500.
#[derive(Clone, Debug)]
pub struct HashError {
    kind: HashErrorKind,
    detail: &'static str,
}

/// The class of a [`HashError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashErrorKind {
    /// The password does not match the stored hash (or the user is unknown:
    /// [`dummy_verify`](crate::PasswordHasher::dummy_verify) answers the same).
    Mismatch,
    /// The password is longer than the hasher's byte cap; refused before
    /// any hashing.
    PasswordTooLong,
    /// The stored hash is not a well-formed argon2 PHC or bcrypt string.
    MalformedHash,
    /// The stored hash asks for more memory, passes, lanes or bcrypt cost
    /// than the caps allow: a planted hash must not be a denial of service.
    ParamsOverCap,
    /// The stored hash names a pepper (`keyid`) this hasher does not hold.
    UnknownPepper,
    /// The hashing pool is at its queue limit: try again later (503).
    Busy,
    /// A hashing task failed (it panicked or its runtime shut down).
    Internal,
}

impl HashErrorKind {
    /// A stable snake_case name, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            HashErrorKind::Mismatch => "mismatch",
            HashErrorKind::PasswordTooLong => "password_too_long",
            HashErrorKind::MalformedHash => "malformed_hash",
            HashErrorKind::ParamsOverCap => "params_over_cap",
            HashErrorKind::UnknownPepper => "unknown_pepper",
            HashErrorKind::Busy => "busy",
            HashErrorKind::Internal => "internal",
        }
    }
}

impl HashError {
    pub(crate) fn new(kind: HashErrorKind, detail: &'static str) -> HashError {
        HashError { kind, detail }
    }

    /// The class of the error.
    pub fn kind(&self) -> HashErrorKind {
        self.kind
    }

    /// Whether the password simply did not match.
    pub fn is_mismatch(&self) -> bool {
        self.kind == HashErrorKind::Mismatch
    }
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "password hashing: {}: {}",
            self.kind.as_str(),
            self.detail
        )
    }
}

impl std::error::Error for HashError {}

impl From<HashError> for palisade_errors::Error {
    fn from(error: HashError) -> palisade_errors::Error {
        use palisade_errors::Error;
        match error.kind {
            // The verifier logged `authn_login_fail` when it decided.
            HashErrorKind::Mismatch => Error::new(ErrorKind::Unauthorized)
                .logged()
                .with_source(error),
            HashErrorKind::PasswordTooLong => Error::new(ErrorKind::ValidationFailed)
                .with_detail("password", "too_long")
                .with_source(error),
            // The pool logged it (once a second, with the count): the
            // adapters do not log each shed request at `error` again.
            HashErrorKind::Busy => Error::new(ErrorKind::Unavailable)
                .with_retry_after(1)
                .logged()
                .with_source(error),
            HashErrorKind::MalformedHash
            | HashErrorKind::ParamsOverCap
            | HashErrorKind::UnknownPepper
            | HashErrorKind::Internal => Error::new(ErrorKind::Internal).with_source(error),
        }
    }
}
