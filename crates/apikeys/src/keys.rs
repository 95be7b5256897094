//! Issuing, verifying, rotating, revoking and listing keys over a [`KeyStore`].

use std::net::IpAddr;
use std::time::Duration;

use palisade_errors::{SecurityEvent, StoreError, SubjectHash};
use subtle::ConstantTimeEq;

use crate::cidr::Cidr;
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::error::{ApiKeyError, ApiKeyErrorKind};
use crate::key::{self, ApiKey, KeyId};
use crate::pepper::Pepper;
use crate::store::{KeyRecord, KeyStatus, KeyStore};
use crate::usage::{DEFAULT_MAX_PENDING_USAGE, DEFAULT_USAGE_FLUSH_INTERVAL, UsageBatcher};

/// Keys one owner may hold by default (dead ones not counted).
pub const DEFAULT_MAX_KEYS_PER_OWNER: usize = 20;
/// How long a rotated key keeps working by default.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest rotation grace accepted.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The environment of keys by default.
pub const DEFAULT_ENV: &str = "live";
/// Passes of [`ApiKeys::revoke_where`] at most: one more than the rotations a
/// request in flight can still complete after the owner's sessions ended.
const REVOKE_ALL_PASSES: usize = 4;

/// What a new key is for: its owner, name, scopes, lifetime and allow-list.
#[derive(Clone, Debug)]
pub struct KeyRequest {
    owner: String,
    name: String,
    scopes: Vec<String>,
    expires_in: Option<Duration>,
    allowed_ips: Vec<Cidr>,
}

impl KeyRequest {
    /// A key for `owner` labelled `name`: no scopes, no expiry, any address.
    pub fn new(owner: impl Into<String>, name: impl Into<String>) -> KeyRequest {
        KeyRequest {
            owner: owner.into(),
            name: name.into(),
            scopes: Vec::new(),
            expires_in: None,
            allowed_ips: Vec::new(),
        }
    }

    /// The scopes to grant (each must be grantable by the creator).
    #[must_use]
    pub fn scopes<I, S>(mut self, scopes: I) -> KeyRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self.scopes.sort();
        self.scopes.dedup();
        self
    }

    /// The key stops working `after` its issue.
    #[must_use]
    pub fn expires_in(mut self, after: Duration) -> KeyRequest {
        self.expires_in = Some(after);
        self
    }

    /// The key works only from these blocks (IPv4 and IPv6 mixed).
    #[must_use]
    pub fn allowed_ips(mut self, blocks: impl IntoIterator<Item = Cidr>) -> KeyRequest {
        self.allowed_ips = blocks.into_iter().collect();
        self
    }
}

/// A key's metadata, as listed and as returned by a verification: never
/// the key, its secret or its HMAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The public id (also the handle to rate-limit by key).
    pub key_id: KeyId,
    /// The owner.
    pub owner: String,
    /// The owner's label.
    pub name: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// Issued at, Unix seconds.
    pub created_at: u64,
    /// Expires at, Unix seconds.
    pub expires_at: Option<u64>,
    /// Last accepted at, Unix seconds (as of the record read; a listing
    /// also counts usage not yet flushed).
    pub last_used_at: Option<u64>,
    /// Times accepted (as `last_used_at`).
    pub use_count: u64,
    /// The client address of the last accepted use (as `last_used_at`).
    pub last_used_ip: Option<IpAddr>,
    /// Where it may be used from; empty for anywhere.
    pub allowed_ips: Vec<Cidr>,
    /// Active, revoked or in its rotation grace.
    pub status: KeyStatus,
}

impl KeyInfo {
    /// Whether the key holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }
}

impl From<KeyRecord> for KeyInfo {
    fn from(record: KeyRecord) -> KeyInfo {
        KeyInfo {
            key_id: record.key_id,
            owner: record.owner,
            name: record.name,
            scopes: record.scopes,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            use_count: record.use_count,
            last_used_ip: record.last_used_ip,
            allowed_ips: record.allowed_ips,
            status: record.status,
        }
    }
}

/// A key just issued: the full key (show it once) and its metadata.
#[derive(Debug)]
pub struct NewKey {
    /// The full key; it is stored nowhere.
    pub key: ApiKey,
    /// Its metadata.
    pub info: KeyInfo,
}

/// Issues, verifies, rotates, revokes and lists API keys over a [`KeyStore`].
///
/// See the crate documentation for an example.
#[derive(Debug)]
pub struct ApiKeys<S, C: Clock = SystemClock> {
    pub(crate) store: S,
    pepper: Pepper,
    old_peppers: Vec<Pepper>,
    env: String,
    pub(crate) clock: C,
    max_keys_per_owner: usize,
    grace: Duration,
    pub(crate) usage: UsageBatcher,
}

impl<S: KeyStore> ApiKeys<S> {
    /// Keys of environment [`DEFAULT_ENV`] in `store`, HMACs under `pepper`,
    /// on the system clock.
    pub fn new(store: S, pepper: Pepper) -> ApiKeys<S> {
        ApiKeys {
            store,
            pepper,
            old_peppers: Vec::new(),
            env: DEFAULT_ENV.to_owned(),
            clock: SystemClock,
            max_keys_per_owner: DEFAULT_MAX_KEYS_PER_OWNER,
            grace: DEFAULT_ROTATION_GRACE,
            usage: UsageBatcher::new(DEFAULT_MAX_PENDING_USAGE, DEFAULT_USAGE_FLUSH_INTERVAL),
        }
    }
}

impl<S: KeyStore, C: Clock> ApiKeys<S, C> {
    /// The same on `clock` (expiry and rotation grace).
    pub fn with_clock<C2: Clock>(self, clock: C2) -> ApiKeys<S, C2> {
        ApiKeys {
            store: self.store,
            pepper: self.pepper,
            old_peppers: self.old_peppers,
            env: self.env,
            clock,
            max_keys_per_owner: self.max_keys_per_owner,
            grace: self.grace,
            usage: self.usage,
        }
    }

    /// Issues and accepts keys of `env` (`live`, `test`: 1 to 16 of `a-z0-9`).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidEnv`] otherwise.
    pub fn with_env(mut self, env: &str) -> Result<Self, ConfigError> {
        if !key::valid_env(env) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidEnv,
                "env must be 1 to 16 of a-z and 0-9",
            ));
        }
        self.env = env.to_owned();
        Ok(self)
    }

    /// Also verifies keys made under `pepper` (a previous one); new keys use
    /// the current pepper.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPepper`] if its id is already held.
    pub fn with_old_pepper(mut self, pepper: Pepper) -> Result<Self, ConfigError> {
        if pepper.id() == self.pepper.id() || self.old_peppers.iter().any(|p| p.id() == pepper.id())
        {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPepper,
                "two peppers with one id",
            ));
        }
        self.old_peppers.push(pepper);
        Ok(self)
    }

    /// At most `max` live keys per owner (1 to 10 000).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidLimit`] outside that range.
    pub fn with_max_keys_per_owner(mut self, max: usize) -> Result<Self, ConfigError> {
        if !(1..=10_000).contains(&max) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "max_keys_per_owner must be 1 to 10000",
            ));
        }
        self.max_keys_per_owner = max;
        Ok(self)
    }

    /// A rotated key keeps working for `grace` (0 to 30 days).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidLimit`] above 30 days.
    pub fn with_rotation_grace(mut self, grace: Duration) -> Result<Self, ConfigError> {
        if grace > MAX_ROTATION_GRACE {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "rotation grace must be at most 30 days",
            ));
        }
        self.grace = grace;
        Ok(self)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Issues a key as `request` asks; every scope asked for must be in
    /// `grantable` (what the creating caller may do). The full key is in the
    /// answer and nowhere else.
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::ScopeNotGrantable`],
    /// [`ApiKeyErrorKind::TooManyKeys`] (dead keys do not count; the store
    /// checks and inserts in one step, so concurrent issues cannot pass the
    /// cap), [`ApiKeyErrorKind::Store`].
    pub async fn issue(
        &self,
        request: KeyRequest,
        grantable: &[&str],
    ) -> Result<NewKey, ApiKeyError> {
        if let Some(scope) = request
            .scopes
            .iter()
            .find(|scope| !grantable.contains(&scope.as_str()))
        {
            tracing::warn!(
                event = SecurityEvent::AuthzFail.as_str(),
                reason = ApiKeyErrorKind::ScopeNotGrantable.as_str(),
                subject_hash = %SubjectHash::of(&request.owner),
                scope = %scope,
                "an API key may not hold a scope its creator cannot grant"
            );
            return Err(ApiKeyError::new(ApiKeyErrorKind::ScopeNotGrantable));
        }
        let now = self.clock.now();
        let expires_at = request
            .expires_in
            .map(|after| now.saturating_add(after.as_secs()));
        self.insert_new(
            request.owner,
            request.name,
            request.scopes,
            expires_at,
            request.allowed_ips,
            self.max_keys_per_owner,
        )
        .await
    }

    async fn insert_new(
        &self,
        owner: String,
        name: String,
        scopes: Vec<String>,
        expires_at: Option<u64>,
        allowed_ips: Vec<Cidr>,
        max_live: usize,
    ) -> Result<NewKey, ApiKeyError> {
        let (key, secret) = key::generate(&self.env).map_err(|_| {
            ApiKeyError::store(StoreError::unavailable("system randomness").during("issue"))
        })?;
        let record = KeyRecord {
            key_id: key.key_id(),
            pepper_id: self.pepper.id().to_owned(),
            secret_hmac: self.pepper.hmac(secret.expose_secret()),
            owner,
            name,
            scopes,
            created_at: self.clock.now(),
            expires_at,
            last_used_at: None,
            use_count: 0,
            last_used_ip: None,
            allowed_ips,
            status: KeyStatus::Active,
        };
        let inserted = self
            .store
            .insert_capped(record.clone(), max_live)
            .await
            .map_err(|e| self.store_failed(e, "insert"))?;
        if !inserted {
            return Err(ApiKeyError::new(ApiKeyErrorKind::TooManyKeys));
        }
        tracing::info!(
            key_id = %record.key_id,
            subject_hash = %SubjectHash::of(&record.owner),
            "API key issued"
        );
        Ok(NewKey {
            key,
            info: record.into(),
        })
    }

    /// Checks `presented` from `client_ip` for a request that needs every
    /// scope in `required`: format and checksum (no store call for a
    /// malformed key) → lookup by key id → constant-time compare of the
    /// HMAC (an unknown id computes and compares one too) → status → expiry
    /// → allow-list → scopes. An accepted key's use is counted in memory
    /// and written to the store in batches (see
    /// [`with_usage_flush_interval`](Self::with_usage_flush_interval)), not
    /// on every call.
    ///
    /// # Errors
    ///
    /// Each refusal logs one event with the key id (never the key):
    /// `authn_token_invalid` (401) for the authentication reasons,
    /// `authz_fail` (403) for `ip_not_allowed` and `missing_scope`;
    /// [`ApiKeyErrorKind::Store`] when the store does not answer.
    pub async fn verify(
        &self,
        presented: &str,
        client_ip: IpAddr,
        required: &[&str],
    ) -> Result<KeyInfo, ApiKeyError> {
        let parsed = match key::parse(presented) {
            Ok(parsed) => parsed,
            Err(problem) => {
                tracing::warn!(
                    event = SecurityEvent::AuthnTokenInvalid.as_str(),
                    reason = ApiKeyErrorKind::Malformed.as_str(),
                    problem = problem.as_str(),
                    client_ip = %client_ip,
                    "API key refused"
                );
                return Err(ApiKeyError::new(ApiKeyErrorKind::Malformed));
            }
        };
        let key_id = parsed.key_id();
        let refuse = |kind: ApiKeyErrorKind, owner: Option<&str>| {
            let event = match kind {
                ApiKeyErrorKind::IpNotAllowed | ApiKeyErrorKind::MissingScope => {
                    SecurityEvent::AuthzFail
                }
                _ => SecurityEvent::AuthnTokenInvalid,
            };
            let subject_hash = owner.map(|owner| SubjectHash::of(owner).to_string());
            tracing::warn!(
                event = event.as_str(),
                reason = kind.as_str(),
                key_id = %key_id,
                subject_hash = subject_hash.as_deref(),
                client_ip = %client_ip,
                "API key refused"
            );
            ApiKeyError::new(kind)
        };
        if parsed.env() != self.env {
            return Err(refuse(ApiKeyErrorKind::WrongEnvironment, None));
        }
        let record = self
            .store
            .get(&key_id)
            .await
            .map_err(|e| self.store_failed(e, "get"))?;
        let Some(record) = record else {
            // The same work as a wrong secret: one HMAC, one compare.
            let computed = self.pepper.hmac(parsed.secret().expose_secret());
            let _ = computed.ct_eq(&[0u8; 32]);
            return Err(refuse(ApiKeyErrorKind::UnknownKey, None));
        };
        let owner = Some(record.owner.as_str());
        let pepper = self.pepper_for(&record.pepper_id);
        let computed = pepper.hmac(parsed.secret().expose_secret());
        if !bool::from(computed.ct_eq(&record.secret_hmac)) {
            return Err(refuse(ApiKeyErrorKind::WrongSecret, owner));
        }
        let now = self.clock.now();
        match record.status {
            KeyStatus::Active => {}
            KeyStatus::Revoked => return Err(refuse(ApiKeyErrorKind::Revoked, owner)),
            KeyStatus::RotatedGrace { until } if now >= until => {
                return Err(refuse(ApiKeyErrorKind::RotatedOut, owner));
            }
            KeyStatus::RotatedGrace { .. } => {}
        }
        if record.expires_at.is_some_and(|at| now >= at) {
            return Err(refuse(ApiKeyErrorKind::Expired, owner));
        }
        if !record.allowed_ips.is_empty()
            && !record
                .allowed_ips
                .iter()
                .any(|cidr| cidr.contains(client_ip))
        {
            return Err(refuse(ApiKeyErrorKind::IpNotAllowed, owner));
        }
        if let Some(missing) = required
            .iter()
            .find(|scope| !record.scopes.iter().any(|held| held == *scope))
        {
            tracing::debug!(scope = %missing, "the missing scope");
            return Err(refuse(ApiKeyErrorKind::MissingScope, owner));
        }
        if self.usage.record(key_id, now, client_ip) {
            // Usage is bookkeeping: the key was verified, so it is accepted
            // even when the write fails (logged, and kept for the next one).
            let _ = self.flush_usage().await;
        }
        tracing::debug!(key_id = %key_id, "API key accepted");
        Ok(record.into())
    }

    /// Replaces `owner`'s key `key_id` with a new one of the same name,
    /// scopes, expiry and allow-list; the old key keeps working for the
    /// rotation grace, then stops. While it does, the owner may hold one
    /// key over the cap (the leaving one), never two: a second rotation
    /// during a grace at the cap is refused.
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::NotFound`] when `owner` holds no live key
    /// `key_id`; [`ApiKeyErrorKind::AlreadyRotated`] for a key in its
    /// rotation grace (its grace is not restarted, and it gets no second
    /// successor); [`ApiKeyErrorKind::TooManyKeys`] as above;
    /// [`ApiKeyErrorKind::Store`].
    pub async fn rotate(&self, owner: &str, key_id: KeyId) -> Result<NewKey, ApiKeyError> {
        let now = self.clock.now();
        let old = self.owned_live(owner, key_id, now).await?;
        if old.status != KeyStatus::Active {
            return Err(ApiKeyError::new(ApiKeyErrorKind::AlreadyRotated));
        }
        // The old key leaves `Active` first, by compare-and-set: of two
        // concurrent rotations one wins (a leaker racing the owner gets no
        // successor of their own), and a revocation that lands before this
        // step is never overwritten by the grace.
        let grace = KeyStatus::RotatedGrace {
            until: now.saturating_add(self.grace.as_secs()),
        };
        let moved = match self
            .store
            .replace_status(&key_id, KeyStatus::Active, grace)
            .await
        {
            Ok(moved) => moved,
            Err(error) => {
                // It may have been applied (a reply lost after the write).
                self.restore_active(key_id, grace).await;
                return Err(self.store_failed(error, "replace_status"));
            }
        };
        if !moved {
            // Rotated meanwhile (409), or revoked (404, as a missing key).
            self.owned_live(owner, key_id, now).await?;
            return Err(ApiKeyError::new(ApiKeyErrorKind::AlreadyRotated));
        }
        let new = match self
            .insert_new(
                old.owner,
                old.name,
                old.scopes,
                old.expires_at,
                old.allowed_ips,
                self.max_keys_per_owner.saturating_add(1),
            )
            .await
        {
            Ok(new) => new,
            Err(error) => {
                self.restore_active(key_id, grace).await;
                return Err(error);
            }
        };
        // A revocation that landed while the successor was written (the
        // owner's, or `revoke_all` in an account recovery) takes the
        // successor with it: a key revoked mid-rotation leaves no heir.
        let still = self.store.get(&key_id).await;
        if !matches!(&still, Ok(Some(record)) if record.status == grace) {
            let successor = new.info.key_id;
            let dropped = self.store.set_status(&successor, KeyStatus::Revoked).await;
            if still.is_err() {
                // Unknown whether the old key was revoked: it goes back to
                // work unless it was (the swap expects this grace).
                self.restore_active(key_id, grace).await;
            }
            if let Err(error) = dropped {
                return Err(self.store_failed(error, "set_status"));
            }
            tracing::info!(
                event = SecurityEvent::AuthnTokenRevoked.as_str(),
                reason = "api_key_revoked",
                key_id = %successor,
                subject_hash = %SubjectHash::of(owner),
                "API key revoked: its rotation did not complete"
            );
            return match still {
                Err(error) => Err(self.store_failed(error, "get")),
                Ok(_) => Err(ApiKeyError::new(ApiKeyErrorKind::NotFound)),
            };
        }
        tracing::info!(
            key_id = %key_id,
            new_key_id = %new.info.key_id,
            subject_hash = %SubjectHash::of(owner),
            grace_secs = self.grace.as_secs(),
            "API key rotated"
        );
        Ok(new)
    }

    /// Revokes `owner`'s key `key_id` now (also one in its rotation grace).
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::NotFound`] when `owner` holds no live key
    /// `key_id`; [`ApiKeyErrorKind::Store`].
    pub async fn revoke(&self, owner: &str, key_id: KeyId) -> Result<(), ApiKeyError> {
        let now = self.clock.now();
        self.owned_live(owner, key_id, now).await?;
        self.store
            .set_status(&key_id, KeyStatus::Revoked)
            .await
            .map_err(|e| self.store_failed(e, "set_status"))?;
        tracing::info!(
            event = SecurityEvent::AuthnTokenRevoked.as_str(),
            reason = "api_key_revoked",
            key_id = %key_id,
            subject_hash = %SubjectHash::of(owner),
            "API key revoked"
        );
        Ok(())
    }

    /// Revokes every live key of `owner` (those in a rotation grace too):
    /// for account recovery (a password reset: keys an intruder made while
    /// holding the account must not outlive it, as its sessions do not),
    /// offboarding, or an account handed a new role. Logs one
    /// `authn_token_revoked` (`api_keys_revoked`) with the count. Returns
    /// how many were revoked.
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::Store`] (some keys may be revoked already: call
    /// again).
    pub async fn revoke_all(
        &self,
        owner: &str,
        reason: &'static str,
    ) -> Result<usize, ApiKeyError> {
        self.revoke_where(owner, reason, |_| true).await
    }

    /// Revokes the live keys of `owner` that `revoke` picks (given each
    /// key's scopes): [`revoke_all`](Self::revoke_all) with a choice, for a
    /// role change that leaves the keys holding only what the new role may
    /// grant. Lists again until a pass finds nothing to revoke, as
    /// `revoke_all` does. Logs one `authn_token_revoked`
    /// (`api_keys_revoked`, `cause` = `reason`) with the count; returns it.
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::Store`] (some keys may be revoked already: call
    /// again).
    pub async fn revoke_where(
        &self,
        owner: &str,
        reason: &'static str,
        revoke: impl Fn(&[String]) -> bool,
    ) -> Result<usize, ApiKeyError> {
        let now = self.clock.now();
        let mut revoked = 0;
        // Again until a pass finds nothing live: a rotation in flight may
        // write a successor after a pass listed the keys (it revokes that
        // successor itself when it sees its predecessor revoked, and a
        // later pass catches one written before).
        for pass in 0..REVOKE_ALL_PASSES {
            let records = self
                .store
                .list_owner(owner)
                .await
                .map_err(|e| self.store_failed(e, "list_owner"))?;
            let mut this_pass = 0;
            for record in records
                .iter()
                .filter(|record| !record.is_dead(now) && revoke(&record.scopes))
            {
                self.store
                    .set_status(&record.key_id, KeyStatus::Revoked)
                    .await
                    .map_err(|e| self.store_failed(e, "set_status"))?;
                this_pass += 1;
            }
            revoked += this_pass;
            if this_pass == 0 {
                break;
            }
            if pass + 1 == REVOKE_ALL_PASSES {
                // Keys still appearing: the caller retries rather than
                // hearing that every key is gone.
                return Err(self.store_failed(
                    StoreError::unavailable("api keys still being created").during("revoke_all"),
                    "list_owner",
                ));
            }
        }
        if revoked > 0 {
            tracing::info!(
                event = SecurityEvent::AuthnTokenRevoked.as_str(),
                reason = "api_keys_revoked",
                cause = reason,
                subject_hash = %SubjectHash::of(owner),
                revoked,
                "API keys of the owner revoked"
            );
        }
        Ok(revoked)
    }

    /// `owner`'s keys, oldest first, without secrets (dead ones included
    /// while the store holds them, with their status), with their usage
    /// including what is not yet flushed.
    ///
    /// # Errors
    ///
    /// [`ApiKeyErrorKind::Store`].
    pub async fn list(&self, owner: &str) -> Result<Vec<KeyInfo>, ApiKeyError> {
        let records = self
            .store
            .list_owner(owner)
            .await
            .map_err(|e| self.store_failed(e, "list_owner"))?;
        Ok(records
            .into_iter()
            .map(|mut record| {
                if let Some(pending) = self.usage.pending_for(&record.key_id) {
                    record.add_usage(&pending);
                }
                KeyInfo::from(record)
            })
            .collect())
    }

    /// Puts `key_id` back from this rotation's `grace` to `Active`: a
    /// rotation that wrote no successor must not leave the key to die at
    /// the end of a grace (a retry would then be refused as already
    /// rotated). A revocation made meanwhile stays: the swap expects the
    /// grace. A failure is logged; the retry's answer tells the rest.
    async fn restore_active(&self, key_id: KeyId, grace: KeyStatus) {
        if let Err(error) = self
            .store
            .replace_status(&key_id, grace, KeyStatus::Active)
            .await
        {
            self.store_failed(error, "replace_status");
        }
    }

    async fn owned_live(
        &self,
        owner: &str,
        key_id: KeyId,
        now: u64,
    ) -> Result<KeyRecord, ApiKeyError> {
        let record = self
            .store
            .get(&key_id)
            .await
            .map_err(|e| self.store_failed(e, "get"))?;
        match record {
            // Another owner's key is answered like a missing one (no IDOR oracle).
            Some(record) if record.owner == owner && !record.is_dead(now) => Ok(record),
            _ => Err(ApiKeyError::new(ApiKeyErrorKind::NotFound)),
        }
    }

    fn pepper_for(&self, id: &str) -> &Pepper {
        // An unknown pepper id (a pepper retired too early) cannot match:
        // the current pepper is used, so the work is the same.
        std::iter::once(&self.pepper)
            .chain(&self.old_peppers)
            .find(|pepper| pepper.id() == id)
            .unwrap_or(&self.pepper)
    }

    pub(crate) fn store_failed(&self, error: StoreError, operation: &'static str) -> ApiKeyError {
        tracing::warn!(
            event = SecurityEvent::StoreUnavailable.as_str(),
            reason = "api_key_store",
            store_error = error.kind().as_str(),
            operation,
            "API key store did not answer; refusing"
        );
        ApiKeyError::store(error)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::Cell;

    use super::*;
    use crate::store::MemoryKeyStore;

    fn hmacs() -> u32 {
        crate::pepper::HMACS.with(Cell::get)
    }

    /// An unknown key id and a wrong secret take the same path: one store
    /// lookup, one HMAC, one constant-time compare, the same refusal.
    #[tokio::test(flavor = "current_thread")]
    async fn unknown_id_and_wrong_secret_do_the_same_work() {
        let keys = ApiKeys::new(
            MemoryKeyStore::new(),
            Pepper::new("p1", vec![9; 32]).unwrap(),
        );
        let issued = keys.issue(KeyRequest::new("o", "n"), &[]).await.unwrap();
        let other = keys.issue(KeyRequest::new("o", "m"), &[]).await.unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        // Wrong secret: the id of `issued`, the secret of a fresh key.
        let (fresh, secret) = key::generate("live").unwrap();
        let wrong_secret =
            key::assemble("live", &key_id_bytes(&issued.key), secret.expose_secret());
        let before = hmacs();
        let unknown = keys
            .verify(fresh.expose_secret(), ip, &[])
            .await
            .unwrap_err();
        let unknown_work = hmacs() - before;
        let before = hmacs();
        let wrong = keys
            .verify(wrong_secret.expose_secret(), ip, &[])
            .await
            .unwrap_err();
        let wrong_work = hmacs() - before;
        assert_eq!(unknown.kind(), ApiKeyErrorKind::UnknownKey);
        assert_eq!(wrong.kind(), ApiKeyErrorKind::WrongSecret);
        assert_eq!((unknown_work, wrong_work), (1, 1));
        let (a, b) = (
            palisade_errors::Error::from(unknown),
            palisade_errors::Error::from(wrong),
        );
        assert_eq!(
            a.to_response(None).into_body(),
            b.to_response(None).into_body()
        );
        assert_eq!(a.headers(), b.headers());
        keys.verify(other.key.expose_secret(), ip, &[])
            .await
            .unwrap();
    }

    fn key_id_bytes(key: &ApiKey) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        crate::base62::decode_into(key.key_id().as_str().as_bytes(), &mut bytes).unwrap();
        bytes
    }
}
