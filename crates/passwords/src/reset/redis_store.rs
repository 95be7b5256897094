//! The Redis reset-token store: one key per user, one round trip per call,
//! expiry on Redis' own clock (`PX`).

use std::sync::Arc;
use std::time::Duration;

use palisade_errors::redis::{Call, RedisConnection};
use redis::Script;

use super::{ResetRecord, ResetTokenStore, StoreError};
use crate::config::ConfigError;
use crate::redis_support::{self, hex};

/// The default key prefix. It never changes: renaming it would orphan
/// pending resets (they would simply stop working).
pub const DEFAULT_KEY_PREFIX: &str = "palisade:pwreset";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// `SET` with a TTL in milliseconds: the user's only pending reset.
const PUT: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Get, and delete unless `ARGV[2]` is `peek` (so a call that forgets the
/// flag spends the token: the safe side), only when the token hash
/// matches: single use, and a wrong token leaves the pending reset alone. Comparing SHA-256 hashes of
/// 256-bit random tokens leaks nothing usable through timing (an attacker
/// who learns a prefix of a hash still needs a preimage); the caller
/// compares again in constant time.
const TAKE: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then return false end
if string.len(value) ~= 129 or string.sub(value, 65, 65) ~= ':' then
  return redis.error_reply('CORRUPT reset record')
end
if string.sub(value, 1, 64) ~= ARGV[1] then return false end
if ARGV[2] ~= 'peek' then redis.call('DEL', KEYS[1]) end
return string.sub(value, 66)
";

/// Pending resets in Redis, shared by every instance: key
/// `<prefix>:{<16 hex>}:reset` per user (the tag a hash of the user id, so
/// no user text reaches Redis), value `<token sha256 hex>:<binding hex>`,
/// TTL the token's lifetime. A Redis that loses its data loses pending
/// resets, which then fail (closed): users ask for a new link.
#[derive(Clone)]
pub struct RedisResetTokenStore {
    connection: RedisConnection,
    prefix: Arc<str>,
    timeout: Duration,
    put: Arc<Script>,
    take: Arc<Script>,
}

impl std::fmt::Debug for RedisResetTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisResetTokenStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisResetTokenStore {
    /// A store on the process's shared connection.
    pub fn new(connection: impl Into<RedisConnection>) -> RedisResetTokenStore {
        RedisResetTokenStore {
            connection: connection.into(),
            prefix: Arc::from(DEFAULT_KEY_PREFIX),
            timeout: DEFAULT_TIMEOUT,
            put: Arc::new(Script::new(PUT)),
            take: Arc::new(Script::new(TAKE)),
        }
    }

    /// Connects to `url` now.
    ///
    /// # Errors
    ///
    /// `unavailable` when Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<RedisResetTokenStore, StoreError> {
        Ok(RedisResetTokenStore::new(
            redis_support::connection(url).await?,
        ))
    }

    /// Connects to `url` on first use (the service starts while Redis is
    /// down). Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// `unavailable` for a URL that does not parse.
    pub fn connect_lazy(url: &str) -> Result<RedisResetTokenStore, StoreError> {
        Ok(RedisResetTokenStore::new(redis_support::lazy_connection(
            url,
        )?))
    }

    /// Keys under `prefix` (checked by `palisade_errors::check_key_prefix`).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidKeyPrefix`](crate::ConfigErrorKind::InvalidKeyPrefix).
    pub fn with_key_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        self.prefix = redis_support::key_prefix(prefix)?;
        Ok(self)
    }

    /// Every call bounded by `timeout` (default 50 ms).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The key of `user`'s pending reset.
    pub fn key(&self, user: &str) -> String {
        format!(
            "{}:reset",
            redis_support::subject_key_prefix(&self.prefix, user)
        )
    }
}

impl ResetTokenStore for RedisResetTokenStore {
    async fn put(&self, user: &str, record: ResetRecord, ttl: Duration) -> Result<(), StoreError> {
        let value = format!("{}:{}", hex(&record.token_hash), hex(&record.binding));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut invocation = Call::new(&self.put);
        invocation.key(self.key(user));
        invocation.arg(value).arg(ttl_ms);
        let result: Result<i64, StoreError> = redis_support::invoke(
            &self.connection,
            self.timeout,
            "reset token store",
            &invocation,
        )
        .await;
        result
            .map(|_| ())
            .inspect_err(|error| redis_support::log_failure("reset_tokens", error, self.timeout))
    }

    async fn take(
        &self,
        user: &str,
        token_hash: &[u8; 32],
    ) -> Result<Option<ResetRecord>, StoreError> {
        self.find(user, token_hash, true).await
    }

    async fn peek(
        &self,
        user: &str,
        token_hash: &[u8; 32],
    ) -> Result<Option<ResetRecord>, StoreError> {
        self.find(user, token_hash, false).await
    }
}

impl RedisResetTokenStore {
    /// One round trip of the take script; `consume` deletes the match.
    async fn find(
        &self,
        user: &str,
        token_hash: &[u8; 32],
        consume: bool,
    ) -> Result<Option<ResetRecord>, StoreError> {
        let mut invocation = Call::new(&self.take);
        invocation.key(self.key(user));
        let operation = if consume {
            "reset token redeem"
        } else {
            "reset token check"
        };
        invocation
            .arg(hex(token_hash))
            .arg(if consume { "take" } else { "peek" });
        let binding: Option<String> =
            redis_support::invoke(&self.connection, self.timeout, operation, &invocation)
                .await
                .inspect_err(|error| {
                    redis_support::log_failure("reset_tokens", error, self.timeout);
                })?;
        let Some(binding) = binding else {
            return Ok(None);
        };
        let binding = redis_support::unhex32(&binding)
            .ok_or_else(|| StoreError::unexpected_reply(operation))?;
        Ok(Some(ResetRecord {
            token_hash: *token_hash,
            binding,
        }))
    }
}
