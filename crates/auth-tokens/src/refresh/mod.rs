//! Refresh families: rotation with reuse detection.
//!
//! Each login starts a *family* (its `sid`). A refresh consumes the presented
//! refresh token and returns a new access and refresh token in the same
//! family, atomically (one lock in [`MemoryFamilyStore`], one Lua script in
//! `RedisFamilyStore`). The store keeps, per family, only the SHA-256 of the
//! current refresh token's `jti` (and of the one just rotated), never a
//! token.
//!
//! - **Reuse detection.** A refresh token of the family that is not the
//!   current one has been rotated already: someone kept a copy. The whole
//!   family is ended, the event `authn_token_reuse` is logged (the subject's
//!   hash, never a token or the subject), and both the thief's and the user's next
//!   refresh are refused.
//! - **Idempotent retries.** For [`FamilyConfig::grace_secs`] after a
//!   rotation (default 10 s, 0 disables it), presenting the token just
//!   rotated returns the *same* successor pair, so a client whose response
//!   was lost loses nothing. The store keeps that pair only for the window,
//!   and only sealed (AES-256-GCM under the server's sealing key, bound to
//!   the family and the rotated token).
//! - **Fresh authorisation.** The role and permissions of each new access
//!   token are read again through the application's user lookup, so a
//!   demotion takes effect at the next refresh, and a deleted user cannot
//!   refresh at all.
//! - **Limits.** At most [`FamilyConfig::max_sessions`] families per subject
//!   (the oldest is ended past it), an idle timeout and an absolute lifetime
//!   per family.
//! - **Fail closed.** A store that cannot answer refuses the refresh with
//!   [`TokenErrorKind::StoreUnavailable`] (503).
//!
//! # The grace window's trade-off
//!
//! A thief who replays a stolen refresh token *within* the grace window of
//! the rotation that consumed it receives the same pair as the user, not a
//! fork of the family: from then on both hold the same tokens. As soon as
//! one side rotates and the other presents the token so rotated later than
//! the grace window after that, it is reuse and the family is ended. The
//! window therefore never lets a thief keep a session alone, but it delays
//! detection while both sides refresh within the window of each other.
//! Set `grace_secs` to 0 to detect every second use, at the price of
//! logging out clients whose refresh response was lost.
//!
//! Access tokens already issued to a family stay valid until they expire
//! (they are short-lived); to cut them off on reuse or logout as well, also
//! call [`RevocationStore::revoke_family`](crate::revocation::RevocationStore::revoke_family)
//! for the `sid`.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use palisade_auth_tokens::authz::Role;
//! use palisade_auth_tokens::refresh::{FamilyConfig, MemoryFamilyStore, RefreshFamilies};
//! use palisade_auth_tokens::{
//!     Algorithm, Grant, Keyring, ManualClock, SigningKey, TokenIssuer, TokenPolicy, TokenVerifier,
//! };
//! use secrecy::SecretSlice;
//!
//! let secret = |byte: u8| SecretSlice::from((0..32).map(|i| byte ^ i).collect::<Vec<u8>>());
//! let access = Keyring::new([SigningKey::hmac("a1", Algorithm::HS256, &secret(0x5a))?])?;
//! let refresh = Keyring::new([SigningKey::hmac("r1", Algorithm::HS256, &secret(0xa5))?])?;
//! let policy = TokenPolicy::new("https://auth.example.com", "api")?;
//! let clock = ManualClock::from_unix_secs(1_700_000_000);
//! let issuer = TokenIssuer::with_clock(access.clone(), refresh.clone(), policy.clone(), clock.clone());
//! let verifier = TokenVerifier::with_clock(access, refresh, policy, clock.clone());
//! let families = RefreshFamilies::new(
//!     issuer,
//!     verifier,
//!     MemoryFamilyStore::with_clock(clock.clone()),
//!     &secret(0x3c),
//!     FamilyConfig::default(),
//! )?;
//!
//! let grant = Grant { subject: "user-42".into(), role: Some(Role::admin()), ..Grant::default() };
//! let login = families.login(&grant).await?;
//! let lookup = |subject: String| async move {
//!     Some(Grant { subject, role: Some(Role::user()), ..Grant::default() })
//! };
//! let next = families.refresh_without_revocation_dangerously(&login.pair.refresh.token, lookup).await?;
//! assert_eq!(next.sid, login.pair.sid);
//! # Ok(())
//! # }
//! ```

use std::future::Future;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};

use palisade_errors::{SecurityEvent, SubjectHash};

use crate::revocation::StoreError;
use crate::token::{log_refusal, log_store_unavailable};
use crate::{Clock, Grant, IssuedToken, NoCustomClaims, TokenError, TokenErrorKind};
use crate::{TokenIssuer, TokenVerifier};

mod binding;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;

use binding::{Binding, device_key};
pub use binding::{DeviceId, MAX_DEVICE_ID_LEN, MIN_DEVICE_ID_LEN};

pub use memory::{DEFAULT_MAX_FAMILIES, MemoryFamilyStore};
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_REDIS_TIMEOUT, RedisFamilyStore};

/// The SHA-256 of a refresh token's `jti`: all a store keeps of a token.
pub type TokenHash = [u8; 32];

/// The SHA-256 of `jti`.
pub fn token_hash(jti: &str) -> TokenHash {
    let digest = digest::digest(&digest::SHA256, jti.as_bytes());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// Lifetimes and limits of refresh families (serde: every field optional,
/// unknown fields refused).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FamilyConfig {
    /// How long after a rotation the rotated token still returns the same
    /// successor pair (idempotent retries), in seconds. Default 10; 0
    /// disables it (every second use is reuse).
    pub grace_secs: u64,
    /// A family unused (not refreshed) this long ends, in seconds. Default
    /// 7 days.
    pub idle_secs: u64,
    /// A family ends this long after its login whatever its use, in
    /// seconds. Default 30 days.
    pub absolute_secs: u64,
    /// Families per subject; a login past it ends the oldest. Default 10,
    /// at least 1.
    pub max_sessions: usize,
}

impl Default for FamilyConfig {
    fn default() -> FamilyConfig {
        FamilyConfig {
            grace_secs: 10,
            idle_secs: 7 * 24 * 60 * 60,
            absolute_secs: 30 * 24 * 60 * 60,
            max_sessions: 10,
        }
    }
}

/// Which family: its subject and `sid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyRef<'a> {
    /// The subject (user id).
    pub subject: &'a str,
    /// The family (session) id.
    pub sid: &'a str,
}

/// One rotation, as handed to [`FamilyStore::rotate`].
#[derive(Clone, Copy, Debug)]
pub struct Rotation<'a> {
    /// The hash of the presented (consumed) refresh token's `jti`.
    pub presented: &'a TokenHash,
    /// The hash of the successor refresh token's `jti`.
    pub successor: &'a TokenHash,
    /// The successor pair, sealed: kept for the grace window only.
    pub sealed_pair: &'a [u8],
}

/// What a rotation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was current: the successor is current now.
    Rotated,
    /// The presented token was rotated within the grace window: the sealed
    /// successor pair of that rotation, to return again.
    Replay(Vec<u8>),
    /// The presented token was rotated earlier (or grace is off): reuse.
    /// The family has been ended.
    Reuse,
    /// No such family: never started, expired, ended or revoked.
    Unknown,
}

/// Where families live. Each method is atomic: concurrent rotations of one
/// token see exactly one [`RotateOutcome::Rotated`].
///
/// Time is the store's own (a [`Clock`] in memory, the server's `TIME` in
/// Redis), so instances with skewed clocks agree.
pub trait FamilyStore: Send + Sync + 'static {
    /// Starts `family` with `current` as its refresh token; ends the
    /// subject's oldest families past `config.max_sessions` (never the new
    /// one) and returns their `sid`s.
    fn start(
        &self,
        family: FamilyRef<'_>,
        current: &TokenHash,
        config: &FamilyConfig,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Consumes `rotation.presented`, atomically (see [`RotateOutcome`]).
    fn rotate(
        &self,
        family: FamilyRef<'_>,
        rotation: Rotation<'_>,
        config: &FamilyConfig,
    ) -> impl Future<Output = Result<RotateOutcome, StoreError>> + Send;

    /// Ends `family` (logout; the user is gone). Ending an unknown family
    /// is not an error.
    fn end(&self, family: FamilyRef<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A sealing key that is not 32 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealingKeyError {
    len: usize,
}

impl std::fmt::Display for SealingKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the refresh sealing key must be 32 random bytes (AES-256-GCM), this one has {}",
            self.len
        )
    }
}

impl std::error::Error for SealingKeyError {}

/// A sealing key of the wrong size is a configuration mistake: 500
/// `internal`, the error kept as the source, for the log.
impl From<SealingKeyError> for palisade_errors::Error {
    fn from(error: SealingKeyError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}

/// An access and refresh token of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    /// The access token.
    pub access: IssuedToken,
    /// The refresh token.
    pub refresh: IssuedToken,
    /// The family (session) id, also the tokens' `sid`.
    pub sid: String,
}

/// What a login returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The new family's tokens.
    pub pair: TokenPair,
    /// Families of the subject ended by the session limit: revoke their
    /// access tokens too
    /// ([`revoke_family`](crate::revocation::RevocationStore::revoke_family))
    /// if they must stop before they expire.
    pub evicted_sids: Vec<String>,
}

/// The plaintext of a sealed pair.
#[derive(Serialize, Deserialize)]
struct SealedPair {
    access: String,
    access_jti: String,
    access_exp: u64,
    refresh: String,
    refresh_jti: String,
    refresh_exp: u64,
}

/// Logins and refreshes of refresh families (see the [module](self) docs).
pub struct RefreshFamilies<S: FamilyStore, C: Clock> {
    issuer: TokenIssuer<C>,
    verifier: TokenVerifier<C>,
    store: S,
    sealing_key: LessSafeKey,
    /// Hashes device ids of bound families (see `binding.rs`).
    device_key: aws_lc_rs::hmac::Key,
    config: FamilyConfig,
}

impl<S: FamilyStore, C: Clock> std::fmt::Debug for RefreshFamilies<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshFamilies")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: FamilyStore, C: Clock> RefreshFamilies<S, C> {
    /// Families issued by `issuer`, checked by `verifier`, kept in `store`.
    /// `sealing_key` (32 random bytes, the same on every instance) seals
    /// the successor pair kept for the grace window.
    pub fn new(
        issuer: TokenIssuer<C>,
        verifier: TokenVerifier<C>,
        store: S,
        sealing_key: &SecretSlice<u8>,
        config: FamilyConfig,
    ) -> Result<RefreshFamilies<S, C>, SealingKeyError> {
        let bytes = sealing_key.expose_secret();
        let len = bytes.len();
        if len != 32 {
            return Err(SealingKeyError { len });
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealingKeyError { len })?;
        Ok(RefreshFamilies {
            issuer,
            verifier,
            store,
            sealing_key: LessSafeKey::new(key),
            device_key: device_key(bytes),
            config: FamilyConfig {
                max_sessions: config.max_sessions.max(1),
                ..config
            },
        })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &FamilyConfig {
        &self.config
    }

    /// Starts a family for `grant` (the `session` it names is replaced by
    /// a fresh `sid`) and returns its first pair.
    pub async fn login(&self, grant: &Grant) -> Result<Login, TokenError> {
        self.login_after(grant, None).await
    }

    /// [`login`](Self::login) for a subject whose sessions were revoked at
    /// `not_before` (what `RevocationStore::revoke_subject` or
    /// `RevocationStore::not_before` returned, e.g. on a password change):
    /// the new pair is stamped past `not_before + leeway` (see
    /// [`TokenIssuer::issue_access_after`]), so it is not born revoked, and
    /// its refreshes keep that stamp. Use it for every login while the
    /// subject has a `not_before`: a plain login within `leeway` seconds
    /// after a logout-everywhere is refused as revoked (it cannot be told
    /// from a token minted before it by an instance whose clock runs
    /// ahead).
    pub async fn login_after(
        &self,
        grant: &Grant,
        not_before: Option<u64>,
    ) -> Result<Login, TokenError> {
        self.start_family(grant, not_before, Binding::default())
            .await
    }

    async fn start_family(
        &self,
        grant: &Grant,
        not_before: Option<u64>,
        binding: Binding,
    ) -> Result<Login, TokenError> {
        let sid = crate::random_id().ok_or_else(|| TokenError::new(TokenErrorKind::CannotSign))?;
        let grant = Grant {
            session: Some(sid.clone()),
            ..grant.clone()
        };
        let access = self
            .issuer
            .issue_access_after(&grant, NoCustomClaims {}, not_before)?;
        let refresh = self
            .issuer
            .issue_refresh_with(&grant.subject, &sid, binding, not_before)?;
        let family = FamilyRef {
            subject: &grant.subject,
            sid: &sid,
        };
        let evicted_sids = self
            .store
            .start(family, &token_hash(&refresh.jti), &self.config)
            .await
            .map_err(|error| store_failed("family start", &grant.subject, &error))?;
        let subject_hash = SubjectHash::of(&grant.subject);
        tracing::info!(
            event = SecurityEvent::SessionCreated.as_str(),
            subject_hash = %subject_hash,
            "refresh family started"
        );
        for _ in &evicted_sids {
            tracing::info!(
                event = SecurityEvent::SessionExpired.as_str(),
                reason = "session_limit",
                subject_hash = %subject_hash,
                max_sessions = self.config.max_sessions,
                "session limit reached: oldest refresh family ended"
            );
        }
        Ok(Login {
            pair: TokenPair {
                access,
                refresh,
                sid,
            },
            evicted_sids,
        })
    }

    /// Consumes `refresh_token` and returns the next pair of its family.
    ///
    /// `user_lookup` receives the subject and returns the user's current
    /// role, permissions and scope (its `subject` and `session` are
    /// ignored), or `None` if the user no longer exists: then the family is
    /// ended and the refresh refused ([`TokenErrorKind::Revoked`]).
    ///
    /// Refused as [`TokenErrorKind::Revoked`]: a token of an unknown,
    /// expired or ended family, and reuse (which ends the family). Refused
    /// as [`TokenErrorKind::StoreUnavailable`]: the store did not answer.
    ///
    /// Dangerous: this method does not see "log out everywhere" (a refresh
    /// token stolen before a password change keeps minting tokens). Use
    /// [`refresh_unrevoked`](Self::refresh_unrevoked) whenever the
    /// application has a revocation store.
    pub async fn refresh_without_revocation_dangerously<F, Fut>(
        &self,
        refresh_token: &str,
        user_lookup: F,
    ) -> Result<TokenPair, TokenError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<Grant>>,
    {
        let claims = self.verifier.verify_refresh_as::<Binding>(refresh_token)?;
        self.rotate_verified(claims, None, user_lookup).await
    }

    /// [`refresh_without_revocation_dangerously`](Self::refresh_without_revocation_dangerously),
    /// for applications with a revocation
    /// store: a refresh token of a subject logged out everywhere (issued at
    /// or before its `not_before`, e.g. after a password change) or of a
    /// revoked family is refused before it can mint new tokens, and when
    /// reuse ends a family, the family is also revoked in `revocations`, so
    /// the access tokens already issued in it stop working at once.
    pub async fn refresh_unrevoked<F, Fut, R>(
        &self,
        refresh_token: &str,
        user_lookup: F,
        revocations: &R,
    ) -> Result<TokenPair, TokenError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<Grant>>,
        R: crate::revocation::RevocationStore,
    {
        self.refresh_checked(refresh_token, None, user_lookup, revocations)
            .await
    }

    /// [`refresh_unrevoked`](Self::refresh_unrevoked) with the device id the
    /// request presented (see `binding.rs`).
    async fn refresh_checked<F, Fut, R>(
        &self,
        refresh_token: &str,
        device: Option<&DeviceId>,
        user_lookup: F,
        revocations: &R,
    ) -> Result<TokenPair, TokenError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<Grant>>,
        R: crate::revocation::RevocationStore,
    {
        let claims = self.verifier.verify_refresh_as::<Binding>(refresh_token)?;
        let leeway = self.verifier.policy().leeway();
        crate::token::check_unrevoked(&claims, leeway, revocations).await?;
        let subject = claims.sub.clone();
        let sid = claims.sid.clone();
        let jti = claims.jti.clone();
        // As the verifier compares it (see `TokenVerifier::revocation_ref`).
        let issued_at = claims.revocation_issued_at().saturating_sub(leeway);
        // Outlives every access token of the family: any of them was minted
        // by a refresh token that expires at most one refresh lifetime after
        // this one, plus a minute of leeway. (Without `iat`, the lifetime
        // is the policy's.)
        let lifetime = claims.iat.map_or_else(
            || self.verifier.policy().refresh_ttl(),
            |iat| claims.exp.saturating_sub(iat),
        );
        let family_until = claims.exp.saturating_add(lifetime).saturating_add(60);
        let result = self.rotate_verified(claims, device, user_lookup).await;
        let Some(sid) = sid else { return result };
        let revoke_family = async || {
            revocations
                .revoke_family(&subject, &sid, family_until)
                .await
                .map_err(|store_error| {
                    log_store_unavailable("family revocation", &subject, &store_error);
                    TokenError::new(TokenErrorKind::StoreUnavailable)
                })
        };
        match result {
            Ok(pair) => {
                // A "log out everywhere" that landed while this refresh was
                // in flight (after the first check, before the rotation)
                // must still win: check again now the rotation is done.
                let presented = crate::revocation::TokenRef {
                    subject: &subject,
                    jti: &jti,
                    sid: Some(&sid),
                    issued_at,
                };
                match revocations.is_revoked(presented).await {
                    Ok(false) => Ok(pair),
                    Ok(true) => {
                        if let Err(error) = self
                            .store
                            .end(FamilyRef {
                                subject: &subject,
                                sid: &sid,
                            })
                            .await
                        {
                            store_failed("family end", &subject, &error);
                        }
                        revoke_family().await?;
                        log_refusal(TokenErrorKind::Revoked, Some(&subject));
                        Err(TokenError::new(TokenErrorKind::Revoked))
                    }
                    Err(error) => {
                        log_store_unavailable("revocation check", &subject, &error);
                        Err(TokenError::new(TokenErrorKind::StoreUnavailable))
                    }
                }
            }
            Err(error) if error.kind() == TokenErrorKind::Revoked => {
                revoke_family().await?;
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    async fn rotate_verified<F, Fut>(
        &self,
        claims: crate::token::Claims<Binding>,
        device: Option<&DeviceId>,
        user_lookup: F,
    ) -> Result<TokenPair, TokenError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Option<Grant>>,
    {
        let sid = claims.sid.ok_or_else(|| {
            log_refusal(TokenErrorKind::InvalidClaims, Some(&claims.sub));
            TokenError::new(TokenErrorKind::InvalidClaims)
        })?;
        self.check_binding(&claims.sub, &claims.custom, &sid, device)
            .await?;
        // `issue_*_after(floor)` stamps at least `floor + leeway + 1`: the
        // presented token's `iat`.
        let stamp_floor = claims
            .iat
            .and_then(|iat| iat.checked_sub(self.verifier.policy().leeway().saturating_add(1)));
        let binding = claims.custom;
        let subject = claims.sub;
        let family = FamilyRef {
            subject: &subject,
            sid: &sid,
        };
        let Some(user) = user_lookup(subject.clone()).await else {
            tracing::info!(
                event = SecurityEvent::AuthnTokenRevoked.as_str(),
                reason = "user_unknown",
                subject_hash = %SubjectHash::of(&subject),
                "refresh refused: the user no longer exists; family ended"
            );
            if let Err(error) = self.store.end(family).await {
                store_failed("family end", &subject, &error);
            }
            return Err(TokenError::new(TokenErrorKind::Revoked));
        };
        let grant = Grant {
            subject: subject.clone(),
            session: Some(sid.clone()),
            ..user
        };
        // Issued before the atomic step: the store must receive the sealed
        // successor in the same step that makes it current. Losers of a race
        // discard theirs and return the winner's. Stamped no earlier than the
        // presented token: a family started by `login_after` (stamped past
        // a logout-everywhere plus the leeway) stays past it, whatever the
        // clock of the instance that refreshes it.
        let access = self
            .issuer
            .issue_access_after(&grant, NoCustomClaims {}, stamp_floor)?;
        let refresh = self
            .issuer
            .issue_refresh_with(&subject, &sid, binding, stamp_floor)?;
        let presented = token_hash(&claims.jti);
        let successor = token_hash(&refresh.jti);
        let pair = TokenPair {
            access,
            refresh,
            sid: sid.clone(),
        };
        let sealed = self.seal(&pair, &presented)?;
        let rotation = Rotation {
            presented: &presented,
            successor: &successor,
            sealed_pair: &sealed,
        };
        let subject_hash = SubjectHash::of(&subject);
        match self.store.rotate(family, rotation, &self.config).await {
            Ok(RotateOutcome::Rotated) => {
                tracing::info!(
                    event = SecurityEvent::SessionRenewed.as_str(),
                    subject_hash = %subject_hash,
                    "refresh token rotated"
                );
                Ok(pair)
            }
            Ok(RotateOutcome::Replay(sealed)) => {
                let pair = self.open(&sealed, &sid, &presented, &subject)?;
                tracing::info!(
                    event = SecurityEvent::SessionRenewed.as_str(),
                    reason = "grace_retry",
                    subject_hash = %subject_hash,
                    "refresh retried within the grace window: the same pair again"
                );
                Ok(pair)
            }
            Ok(RotateOutcome::Reuse) => {
                tracing::warn!(
                    event = SecurityEvent::AuthnTokenReuse.as_str(),
                    reason = "rotated_token_presented",
                    subject_hash = %subject_hash,
                    "a rotated refresh token was presented again: refresh family revoked"
                );
                Err(TokenError::new(TokenErrorKind::Revoked))
            }
            Ok(RotateOutcome::Unknown) => {
                tracing::info!(
                    event = SecurityEvent::SessionUseAfterExpire.as_str(),
                    reason = "family_unknown",
                    subject_hash = %subject_hash,
                    "refresh refused: family expired, ended or revoked"
                );
                Err(TokenError::new(TokenErrorKind::Revoked))
            }
            Err(error) => Err(store_failed("family rotation", &subject, &error)),
        }
    }

    /// Ends the family `sid` of `subject` (logout).
    pub async fn end(&self, subject: &str, sid: &str) -> Result<(), TokenError> {
        self.store
            .end(FamilyRef { subject, sid })
            .await
            .map_err(|error| store_failed("family end", subject, &error))?;
        tracing::info!(
            event = SecurityEvent::AuthnTokenRevoked.as_str(),
            reason = "logout",
            subject_hash = %SubjectHash::of(subject),
            "refresh family ended"
        );
        Ok(())
    }

    /// `nonce || AES-256-GCM(pair)`, with AAD `sid || presented hash`: a
    /// sealed pair moved to another family or rotation does not open.
    fn seal(&self, pair: &TokenPair, presented: &TokenHash) -> Result<Vec<u8>, TokenError> {
        let cannot = || TokenError::new(TokenErrorKind::CannotSign);
        let plain = SealedPair {
            access: pair.access.token.clone(),
            access_jti: pair.access.jti.clone(),
            access_exp: pair.access.expires_at,
            refresh: pair.refresh.token.clone(),
            refresh_jti: pair.refresh.jti.clone(),
            refresh_exp: pair.refresh.expires_at,
        };
        let mut in_out = serde_json::to_vec(&plain).map_err(|_| cannot())?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| cannot())?;
        self.sealing_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(&pair.sid, presented)),
                &mut in_out,
            )
            .map_err(|_| cannot())?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    fn open(
        &self,
        sealed: &[u8],
        sid: &str,
        presented: &TokenHash,
        subject: &str,
    ) -> Result<TokenPair, TokenError> {
        let refuse = || {
            // The key changed, or the store returned something else: the
            // pair cannot be returned again (fail closed; the client
            // retries and, past the window, ends the family as reuse).
            tracing::error!(
                event = SecurityEvent::StoreUnavailable.as_str(),
                reason = "replay_unsealable",
                subject_hash = %SubjectHash::of(subject),
                "sealed successor pair did not open: refused"
            );
            TokenError::new(TokenErrorKind::StoreUnavailable)
        };
        if sealed.len() < NONCE_LEN {
            return Err(refuse());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refuse())?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .sealing_key
            .open_in_place(nonce, Aad::from(aad(sid, presented)), &mut in_out)
            .map_err(|_| refuse())?;
        let plain: SealedPair = serde_json::from_slice(plain).map_err(|_| refuse())?;
        Ok(TokenPair {
            access: IssuedToken {
                token: plain.access,
                jti: plain.access_jti,
                expires_at: plain.access_exp,
            },
            refresh: IssuedToken {
                token: plain.refresh,
                jti: plain.refresh_jti,
                expires_at: plain.refresh_exp,
            },
            sid: sid.to_owned(),
        })
    }
}

fn aad(sid: &str, presented: &TokenHash) -> Vec<u8> {
    let mut aad = Vec::with_capacity(sid.len() + 1 + presented.len());
    aad.extend_from_slice(sid.as_bytes());
    // A separator no base64url `sid` contains.
    aad.push(0);
    aad.extend_from_slice(presented);
    aad
}

fn store_failed(operation: &'static str, subject: &str, error: &StoreError) -> TokenError {
    log_store_unavailable(operation, subject, error);
    TokenError::new(TokenErrorKind::StoreUnavailable)
}

/// Constant-time equality of two hashes.
fn same_hash(a: &TokenHash, b: &TokenHash) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
