//! Token revocation: logout, "log out everywhere", password and role changes.
//!
//! A signed token stays cryptographically valid until its `exp`, so ending a
//! session early needs state. Three kinds of revocation cover every case:
//!
//! | Event | Call | Kills |
//! |---|---|---|
//! | Logout | [`revoke_token`](RevocationStore::revoke_token) (the access token's `jti`) and [`revoke_family`](RevocationStore::revoke_family) (its `sid`) | that access token, and every access and refresh token of that session |
//! | Log out everywhere, password change or reset, role change | [`revoke_subject`](RevocationStore::revoke_subject) | every token of the subject issued at or before now, hence every session |
//!
//! Verification asks one question per token,
//! [`is_revoked`](RevocationStore::is_revoked): is its `jti` blacklisted,
//! its family revoked, or was it issued at or before the subject's
//! `not_before`? (Equal seconds count as revoked: JWT times are whole
//! seconds, so a token minted in the same second as a logout-everywhere may
//! predate it and must not survive it.)
//!
//! # Clock skew
//!
//! `not_before` is on the store's clock (Redis server time for Redis),
//! `iat` on the issuing instance's. The verifier compares `iat - leeway`
//! with `not_before` ([`TokenVerifier::revocation_ref`](crate::TokenVerifier::revocation_ref)),
//! so a token minted before a logout-everywhere by an instance whose clock
//! runs up to the leeway ahead is revoked too. A login after it must go
//! through `RefreshFamilies::login_after` (or `TokenIssuer::issue_*_after`)
//! with the `not_before`, which stamps past `not_before + leeway`; a plain
//! login within the leeway after a logout-everywhere is born revoked.
//!
//! # Fail closed
//!
//! An `Err` from a store means "unknown", never "not revoked". The token
//! verifier refuses the token with 503 `unavailable` (the
//! `From<StoreError> for palisade_errors::Error` conversion does exactly
//! that), so an attacker holding a revoked token gains nothing by
//! taking the store down or making it slow.
//!
//! # Expiry
//!
//! Every revocation is kept only as long as it matters: a `jti` until the
//! token would have expired anyway, a family until its absolute expiry, a
//! `not_before` for [`DEFAULT_NOT_BEFORE_RETENTION`] (8 days, longer than a
//! 7-day refresh token). Pass as `expires_at` the last moment the verifier
//! would still accept the token: if it allows a clock-skew leeway past `exp`,
//! pass `exp + leeway`, or the revoked token comes back to life during the
//! leeway.
//!
//! # Stores
//!
//! - [`MemoryRevocationStore`]: one process, bounded in memory.
//! - `RedisRevocationStore` (feature `redis`): shared by every instance;
//!   everything of one subject lives on one Redis Cluster slot, so each
//!   check is one atomic script in one round trip.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use palisade_auth_tokens::ManualClock;
//! use palisade_auth_tokens::revocation::{MemoryRevocationStore, RevocationStore, TokenRef};
//!
//! let clock = ManualClock::from_unix_secs(1_700_000_000);
//! let store = MemoryRevocationStore::with_clock(clock.clone());
//! let token = TokenRef {
//!     subject: "user-42",
//!     jti: "jti-1",
//!     sid: Some("session-7"),
//!     issued_at: 1_700_000_000,
//! };
//! assert!(!store.is_revoked(token).await?);
//!
//! // Logout: this access token and its whole session.
//! store.revoke_token("user-42", "jti-1", 1_700_000_900).await?;
//! store.revoke_family("user-42", "session-7", 1_700_604_800).await?;
//! assert!(store.is_revoked(token).await?);
//!
//! // Password change: every token issued up to now, in every session.
//! clock.advance(Duration::from_secs(60));
//! let not_before = store.revoke_subject("user-42").await?;
//! let other = TokenRef { jti: "jti-2", sid: Some("session-8"), issued_at: not_before, ..token };
//! assert!(store.is_revoked(other).await?);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

mod memory;
#[cfg(feature = "redis")]
mod redis_store;

pub use memory::{DEFAULT_MAX_ENTRIES, MemoryRevocationStore};
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_EPOCH_TTL, DEFAULT_REDIS_TIMEOUT, RedisRevocationStore};

/// How long a subject's `not_before` is kept by default: 8 days, longer than
/// the longest token lifetime (a 7-day refresh token). Once it is dropped,
/// every token issued before it has expired anyway.
pub const DEFAULT_NOT_BEFORE_RETENTION: Duration = Duration::from_secs(8 * 24 * 60 * 60);

/// A revocation store could not answer (Redis down, a timeout, a reply of
/// the wrong shape): the one store error of every Palisade core, from
/// `palisade-errors`, re-exported here under its old path.
///
/// The caller must treat it as "revoked" — fail closed — which its
/// conversion into [`palisade_errors::Error`] (503 `unavailable`) does.
///
/// ```
/// use palisade_auth_tokens::revocation::StoreError;
///
/// let error: palisade_errors::Error = StoreError::unavailable("redis").into();
/// assert_eq!(error.status(), 503);
/// ```
pub use palisade_errors::StoreError;
pub use palisade_errors::StoreErrorKind;

/// What a revocation check needs from a verified token: its `sub`, `jti`,
/// `sid` (the refresh family, when the token carries one) and `iat`.
///
/// ```
/// use palisade_auth_tokens::revocation::TokenRef;
///
/// let refresh = TokenRef { subject: "user-42", jti: "r-1", sid: Some("session-7"), issued_at: 1_700_000_000 };
/// assert_eq!(refresh.sid, Some("session-7"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenRef<'a> {
    /// The `sub` claim.
    pub subject: &'a str,
    /// The `jti` claim.
    pub jti: &'a str,
    /// The `sid` claim: the session (refresh-token family) the token belongs to.
    pub sid: Option<&'a str>,
    /// The `iat` claim, in seconds since the Unix epoch.
    pub issued_at: u64,
}

/// Where revocations live.
///
/// Implemented by [`MemoryRevocationStore`] (one process) and, with the
/// `redis` feature, `RedisRevocationStore` (shared by every instance).
///
/// Every method may fail with a [`StoreError`]; for
/// [`is_revoked`](Self::is_revoked) the caller must then refuse the token
/// (fail closed, 503), and for the `revoke_*` methods report the logout as
/// failed rather than pretend it happened.
pub trait RevocationStore: Send + Sync + 'static {
    /// Whether `token` is revoked: its `jti` is blacklisted, OR its family
    /// `sid` is revoked, OR it was issued at or before the subject's
    /// `not_before` (`issued_at <= not_before`: equal seconds are revoked).
    /// One call (for Redis, one script on one Cluster slot).
    fn is_revoked(
        &self,
        token: TokenRef<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Logout of one access token: blacklists `jti` until `expires_at`
    /// (seconds since the epoch: the token's `exp`, plus the verifier's
    /// leeway if it has one), when the token dies anyway; at least 1 s.
    /// Revoking again keeps the later expiry.
    fn revoke_token(
        &self,
        subject: &str,
        jti: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Logout of one session: revokes the refresh family `sid` (every access
    /// and refresh token carrying it) until `expires_at`, the family's
    /// absolute expiry (plus the verifier's leeway); at least 1 s.
    fn revoke_family(
        &self,
        subject: &str,
        sid: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Log out everywhere; also the one call to make on a password change or
    /// reset and on a role change. Sets the subject's `not_before` to now
    /// (the store's clock: Redis server time for Redis), so every token
    /// issued at or before it — in every family, since a family can only
    /// continue through a refresh token that is itself revoked — is refused.
    /// Kept for the configured retention (default
    /// [`DEFAULT_NOT_BEFORE_RETENTION`]); never moves backwards (the new
    /// value is the later of the old one and now). Returns the `not_before`
    /// now in force.
    ///
    /// A token issued later in the same second is refused too: the safe
    /// side of whole-second timestamps (a fresh login right after a password
    /// change may need to be retried a second later).
    fn revoke_subject(&self, subject: &str)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The subject's `not_before` in force, if any: what a login stamps its
    /// tokens past (`RefreshFamilies::login_after`). A store with epochs
    /// (Redis: tokens issued before a data loss or first use are refused)
    /// answers at least the epoch minus one second, so a login right after
    /// a new epoch is not born revoked.
    fn not_before(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send;
}

impl<S: RevocationStore> RevocationStore for Arc<S> {
    fn is_revoked(
        &self,
        token: TokenRef<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).is_revoked(token)
    }

    fn revoke_token(
        &self,
        subject: &str,
        jti: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).revoke_token(subject, jti, expires_at)
    }

    fn revoke_family(
        &self,
        subject: &str,
        sid: &str,
        expires_at: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).revoke_family(subject, sid, expires_at)
    }

    fn revoke_subject(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).revoke_subject(subject)
    }

    fn not_before(
        &self,
        subject: &str,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> + Send {
        (**self).not_before(subject)
    }
}

/// The event of a logout everywhere, logged by the stores of this crate.
fn log_subject_revoked(subject: &str) {
    tracing::info!(
        event = palisade_errors::SecurityEvent::AuthnTokenRevoked.as_str(),
        reason = "logout_everywhere",
        subject_hash = %palisade_errors::SubjectHash::of(subject),
        "every token of the subject revoked"
    );
}

/// A retention in whole seconds, rounded up, at least 1.
fn retention_seconds(retention: Duration) -> u64 {
    let seconds = retention.as_secs();
    let seconds = if retention.subsec_nanos() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    };
    seconds.max(1)
}
