//! Password-reset tokens: 32 random bytes, URL-safe, stored only as their
//! SHA-256, bound to the user and to the current password hash, single use,
//! 30 minutes by default; issuing a new one replaces the older one.

mod memory;
#[cfg(feature = "redis")]
mod redis_store;

use std::future::Future;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use palisade_errors::{SecurityEvent, SubjectHash};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use memory::{DEFAULT_MAX_PENDING_RESETS, MemoryResetTokenStore};
pub use palisade_errors::StoreError;
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_KEY_PREFIX, RedisResetTokenStore};

use crate::config::{ConfigError, ConfigErrorKind};

/// How long a reset token lives by default (OWASP: short-lived).
pub const DEFAULT_RESET_TTL: Duration = Duration::from_secs(30 * 60);
const TOKEN_BYTES: usize = 32;
/// A token's length in URL-safe base64 without padding.
pub const TOKEN_CHARS: usize = 43;

/// What a store keeps for a user's pending reset: hashes only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ResetRecord {
    /// SHA-256 of the token's bytes.
    pub token_hash: [u8; 32],
    /// SHA-256 of the password hash current when the token was issued.
    pub binding: [u8; 32],
}

impl std::fmt::Debug for ResetRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetRecord { .. }")
    }
}

/// Where pending resets live: one per user, replaced by a newer one,
/// removed by its use.
pub trait ResetTokenStore: Send + Sync {
    /// Makes `record` the user's only pending reset for `ttl`, replacing
    /// any older one (which stops working).
    fn put(
        &self,
        user: &str,
        record: ResetRecord,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Atomically removes and returns the user's pending reset if it is
    /// live and its token hash equals `token_hash`; `None` otherwise (a
    /// wrong token leaves the pending reset in place).
    fn take(
        &self,
        user: &str,
        token_hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<ResetRecord>, StoreError>> + Send;

    /// The user's pending reset if it is live and its token hash equals
    /// `token_hash`, left in place; `None` otherwise. It does not spend the
    /// token (a store may drop an expired entry on the way): a caller
    /// checks a token with it before work that may fail, and spends the
    /// token with [`take`](ResetTokenStore::take) only once that work is
    /// done.
    fn peek(
        &self,
        user: &str,
        token_hash: &[u8; 32],
    ) -> impl Future<Output = Result<Option<ResetRecord>, StoreError>> + Send;
}

/// Why a reset token was refused.
#[derive(Clone, Debug)]
pub struct ResetError {
    kind: ResetErrorKind,
    store: Option<StoreError>,
}

/// The class of a [`ResetError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetErrorKind {
    /// Not a token this crate issues (wrong length or alphabet).
    Malformed,
    /// Unknown, expired, replaced by a newer one, or already used.
    UnknownOrExpired,
    /// The password changed since the token was issued (a `redeem` spent
    /// the token; a `check` left it, but it can never be accepted again).
    PasswordChanged,
    /// The store could not answer (fail closed: a 503).
    Store,
}

impl ResetErrorKind {
    /// A stable snake_case name (the `reason` of the event).
    pub const fn as_str(self) -> &'static str {
        match self {
            ResetErrorKind::Malformed => "malformed_reset_token",
            ResetErrorKind::UnknownOrExpired => "unknown_or_expired_reset_token",
            ResetErrorKind::PasswordChanged => "password_changed_since_reset_issued",
            ResetErrorKind::Store => "store_unavailable",
        }
    }
}

impl ResetError {
    /// The class of the error.
    pub fn kind(&self) -> ResetErrorKind {
        self.kind
    }
}

impl std::fmt::Display for ResetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reset token refused: {}", self.kind.as_str())?;
        if let Some(store) = &self.store {
            write!(f, " ({store})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ResetError {}

/// A refused token is a 401 (its `authn_password_change_fail` event already
/// logged), one answer for every reason; a store failure a 503.
impl From<ResetError> for palisade_errors::Error {
    fn from(error: ResetError) -> palisade_errors::Error {
        use palisade_errors::{Error, ErrorKind};
        match error.kind {
            ResetErrorKind::Store => Error::new(ErrorKind::Unavailable).with_source(error),
            _ => Error::new(ErrorKind::Unauthorized)
                .logged()
                .with_source(error),
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Issues and redeems reset tokens over a [`ResetTokenStore`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), palisade_errors::Error> {
/// use palisade_passwords::reset::{MemoryResetTokenStore, ResetTokens};
/// use secrecy::ExposeSecret;
///
/// let resets = ResetTokens::new(MemoryResetTokenStore::new());
/// let current_hash = "$argon2id$v=19$m=19456,t=2,p=1$...";
/// let token = resets.issue("user-42", current_hash).await?;
/// // Mail a link with `token.expose_secret()`; when it comes back:
/// resets.redeem("user-42", token.expose_secret(), current_hash).await?;
/// // Single use:
/// assert!(resets.redeem("user-42", token.expose_secret(), current_hash).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ResetTokens<S> {
    store: S,
    ttl: Duration,
}

impl<S: ResetTokenStore> ResetTokens<S> {
    /// Tokens in `store`, living [`DEFAULT_RESET_TTL`].
    pub fn new(store: S) -> ResetTokens<S> {
        ResetTokens {
            store,
            ttl: DEFAULT_RESET_TTL,
        }
    }

    /// Tokens living `ttl` (1 minute to 24 hours).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPolicy`] outside that range.
    pub fn with_ttl(mut self, ttl: Duration) -> Result<ResetTokens<S>, ConfigError> {
        if !(Duration::from_secs(60)..=Duration::from_secs(24 * 60 * 60)).contains(&ttl) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPolicy,
                "reset token ttl must be 1 minute to 24 hours",
            ));
        }
        self.ttl = ttl;
        Ok(self)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// A new token for `user`, bound to `current_hash` (the user's stored
    /// password hash); any older token of the user stops working.
    ///
    /// # Errors
    ///
    /// The store's error; `unavailable` if the system's random source fails.
    pub async fn issue(&self, user: &str, current_hash: &str) -> Result<SecretString, StoreError> {
        let mut bytes = secrecy::zeroize::Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(bytes.as_mut())
            .map_err(|_| StoreError::unavailable("system randomness"))?;
        let record = ResetRecord {
            token_hash: sha256(bytes.as_ref()),
            binding: sha256(current_hash.as_bytes()),
        };
        self.store.put(user, record, self.ttl).await?;
        tracing::info!(
            subject_hash = %SubjectHash::of(user),
            ttl_secs = self.ttl.as_secs(),
            "password reset token issued"
        );
        Ok(SecretString::from(URL_SAFE_NO_PAD.encode(bytes.as_ref())))
    }

    /// Checks `token` for `user` without spending it: `Ok` when
    /// [`redeem`](ResetTokens::redeem) would accept it now. A service
    /// checks the token first, then does the work that may fail (policy,
    /// history, hashing), and redeems last: a refused new password or a
    /// busy hashing pool then leaves the user's link working for a retry.
    ///
    /// # Errors
    ///
    /// As [`redeem`](ResetTokens::redeem), and refusals are logged the
    /// same way; an accepted token logs nothing (nothing changed yet).
    pub async fn check(
        &self,
        user: &str,
        token: &str,
        current_hash: &str,
    ) -> Result<(), ResetError> {
        self.find(user, token, current_hash, false).await
    }

    /// Consumes `token` for `user`: accepted once, while live, if it is the
    /// user's newest and `current_hash` is still the hash it was issued
    /// against. The caller then stores the new password's hash.
    ///
    /// # Errors
    ///
    /// A [`ResetError`]: refused tokens log `authn_password_change_fail`
    /// with the reason; a store failure is [`ResetErrorKind::Store`]. An
    /// accepted token logs `authn_password_change` (reason `reset_token`).
    pub async fn redeem(
        &self,
        user: &str,
        token: &str,
        current_hash: &str,
    ) -> Result<(), ResetError> {
        self.find(user, token, current_hash, true).await?;
        tracing::info!(
            event = SecurityEvent::AuthnPasswordChange.as_str(),
            reason = "reset_token",
            subject_hash = %SubjectHash::of(user),
            "password reset token redeemed; the password may change"
        );
        Ok(())
    }

    /// Spends `token` without a password change: for a confirm refused in
    /// a way that must cost the link (a new password that was used before:
    /// the refusal tells the link's holder a past password, so one guess a
    /// link). Logs `authn_password_change_fail` with `reason`, where
    /// [`redeem`](ResetTokens::redeem) would log a change.
    ///
    /// # Errors
    ///
    /// As [`redeem`](ResetTokens::redeem).
    pub async fn spend(
        &self,
        user: &str,
        token: &str,
        current_hash: &str,
        reason: &'static str,
    ) -> Result<(), ResetError> {
        self.find(user, token, current_hash, true).await?;
        tracing::warn!(
            event = SecurityEvent::AuthnPasswordChangeFail.as_str(),
            reason,
            subject_hash = %SubjectHash::of(user),
            "password reset token spent without a password change"
        );
        Ok(())
    }

    /// The checks of [`check`](ResetTokens::check) and
    /// [`redeem`](ResetTokens::redeem); `consume` takes the pending reset
    /// out of the store when its token matches.
    async fn find(
        &self,
        user: &str,
        token: &str,
        current_hash: &str,
        consume: bool,
    ) -> Result<(), ResetError> {
        let refuse = |kind: ResetErrorKind| {
            tracing::warn!(
                event = SecurityEvent::AuthnPasswordChangeFail.as_str(),
                reason = kind.as_str(),
                subject_hash = %SubjectHash::of(user),
                "password reset token refused"
            );
            ResetError { kind, store: None }
        };
        let decoded = (token.len() == TOKEN_CHARS)
            .then(|| URL_SAFE_NO_PAD.decode(token).ok())
            .flatten()
            .filter(|bytes| bytes.len() == TOKEN_BYTES)
            .map(secrecy::zeroize::Zeroizing::new);
        let Some(bytes) = decoded else {
            return Err(refuse(ResetErrorKind::Malformed));
        };
        let token_hash = sha256(&bytes);
        let found = if consume {
            self.store.take(user, &token_hash).await
        } else {
            self.store.peek(user, &token_hash).await
        };
        let record = match found {
            Ok(Some(record)) => record,
            Ok(None) => return Err(refuse(ResetErrorKind::UnknownOrExpired)),
            Err(error) => {
                tracing::warn!(
                    event = SecurityEvent::StoreUnavailable.as_str(),
                    reason = "reset_token_store",
                    store_error = error.kind().as_str(),
                    "reset token store did not answer; refusing"
                );
                return Err(ResetError {
                    kind: ResetErrorKind::Store,
                    store: Some(error),
                });
            }
        };
        // The store matched the token hash; check it here too, in constant
        // time, so a store that answers loosely cannot accept a wrong token.
        let token_ok = record.token_hash.ct_eq(&token_hash);
        let binding_ok = record.binding.ct_eq(&sha256(current_hash.as_bytes()));
        if !bool::from(token_ok) {
            return Err(refuse(ResetErrorKind::UnknownOrExpired));
        }
        if !bool::from(binding_ok) {
            return Err(refuse(ResetErrorKind::PasswordChanged));
        }
        Ok(())
    }
}
