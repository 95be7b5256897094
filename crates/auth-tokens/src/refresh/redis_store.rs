//! The Redis family store (feature `redis`): one script per operation.

use std::sync::Arc;
use std::time::Duration;

use palisade_errors::redis::{Call, RedisConnection};
use redis::{FromRedisValue, Script};

use super::{FamilyConfig, FamilyRef, FamilyStore, RotateOutcome, Rotation, TokenHash};
use crate::config::ConfigError;
use crate::redis_support::{self, hex};
use crate::revocation::StoreError;

/// Default timeout of every Redis call.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

const DEFAULT_PREFIX: &str = "palisade:rf";

/// Largest duration passed to Redis, in seconds (about 285,000 years):
/// keeps milliseconds exact in Lua's doubles.
const MAX_SECS: u64 = 9_000_000_000_000;

/// Login: KEYS[1] the subject's session list (sorted set: member the
/// family's `sid` hash, score its login time in ms), KEYS[2] the new family.
/// ARGV[1] `sid`, ARGV[2] its hash (member), ARGV[3] the current token hash,
/// ARGV[4] idle ms, ARGV[5] absolute ms, ARGV[6] max sessions, ARGV[7] the
/// family key prefix (`…:fam:`, same hash tag). Drops members whose family
/// expired, then ends the oldest families past the limit (never the new
/// one). Returns the ended `sid`s.
const START: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle = tonumber(ARGV[4])
local absolute = now + tonumber(ARGV[5])
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', ARGV[7] .. member) == 0 then redis.call('ZREM', KEYS[1], member) end
end
redis.call('DEL', KEYS[2], KEYS[2] .. ':grace')
redis.call('HSET', KEYS[2], 'sid', ARGV[1], 'cur', ARGV[3],
  'last', string.format('%.0f', now), 'abs', string.format('%.0f', absolute))
local ttl = math.min(idle, absolute - now)
if ttl < 1 then ttl = 1 end
redis.call('PEXPIRE', KEYS[2], string.format('%.0f', ttl))
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[2])
local evicted = {}
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[6])
if over > 0 then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if over <= 0 then break end
    if member ~= ARGV[2] then
      local sid = redis.call('HGET', ARGV[7] .. member, 'sid')
      redis.call('DEL', ARGV[7] .. member, ARGV[7] .. member .. ':grace')
      redis.call('ZREM', KEYS[1], member)
      if sid then table.insert(evicted, sid) end
      over = over - 1
    end
  end
end
local list_ttl = redis.call('PTTL', KEYS[1])
if list_ttl < absolute - now then
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', absolute - now))
end
return evicted
";

/// Rotation: KEYS[1] the family (hash), KEYS[2] its sealed pair (string,
/// TTL = grace), KEYS[3] the subject's session list. ARGV[1] presented
/// hash, ARGV[2] successor hash, ARGV[3] sealed pair, ARGV[4] grace ms,
/// ARGV[5] idle ms, ARGV[6] the family's member in the list. Returns
/// `{code, sealed}`: 0 unknown (or expired: deleted), 1 rotated, 2 replay
/// (with the sealed pair), 3 reuse (family deleted).
const ROTATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'rot', 'last', 'abs')
if not f[1] then return {0, ''} end
local last = tonumber(f[4])
local absolute = tonumber(f[5])
if not last or not absolute then return redis.error_reply('CORRUPT family record is corrupt') end
local grace = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])
if now >= absolute or now >= last + idle then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[6])
  return {0, ''}
end
if f[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1],
    'rot', string.format('%.0f', now), 'last', string.format('%.0f', now))
  if grace > 0 then
    redis.call('SET', KEYS[2], ARGV[3], 'PX', string.format('%.0f', grace))
  else
    redis.call('DEL', KEYS[2])
  end
  local ttl = math.min(idle, absolute - now)
  if ttl < 1 then ttl = 1 end
  redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))
  return {1, ''}
end
if f[2] and f[2] == ARGV[1] then
  local rotated = tonumber(f[3])
  if rotated and now - rotated < grace then
    local sealed = redis.call('GET', KEYS[2])
    if sealed then return {2, sealed} end
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[6])
return {3, ''}
";

/// Logout: KEYS[1] the family, KEYS[2] its sealed pair, KEYS[3] the
/// session list; ARGV[1] the family's member.
const END: &str = r"
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
";

/// Refresh families in Redis, shared by every instance of the service.
///
/// - Keys: `<prefix>:{<16 hex>}:fam:<64 hex>` (a hash: the current and
///   previous token hashes, rotation, last-use and absolute-expiry times,
///   and the `sid`), `…:fam:<64 hex>:grace` (the sealed successor pair) and
///   `<prefix>:{<16 hex>}:sessions` (the subject's families by login time).
///   The hash tag is the start of the SHA-256 of the subject, the rest the
///   SHA-256 of the `sid`: every script touches one Cluster slot.
/// - Token hashes only, never tokens; the successor pair only sealed, in a
///   key whose TTL is the grace window, so Redis itself drops it.
/// - Every key has a TTL counted on Redis' clock (`TIME` inside the
///   scripts, in milliseconds): a family until its idle or absolute expiry.
/// - Each operation is one `EVALSHA` (reloaded on `NOSCRIPT`), atomic, with
///   a timeout (default 50 ms, the only bound: the connection has no
///   response timeout of its own); a failure is an `Err` (logged as
///   `event = "store_unavailable"`), which refuses the refresh with 503
///   (fail closed).
///
/// ```no_run
/// # async fn run() -> Result<(), palisade_errors::Error> {
/// use std::time::Duration;
/// use palisade_auth_tokens::refresh::RedisFamilyStore;
///
/// let store = RedisFamilyStore::connect_lazy("redis://127.0.0.1:6379/0")?
///     .with_key_prefix("myapp:rf")?
///     .with_timeout(Duration::from_millis(50));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisFamilyStore {
    connection: RedisConnection,
    prefix: Arc<str>,
    timeout: Duration,
    scripts: Arc<Scripts>,
}

struct Scripts {
    start: Script,
    rotate: Script,
    end: Script,
}

impl std::fmt::Debug for RedisFamilyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFamilyStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The keys of one family.
struct FamilyKeys {
    family: String,
    sealed: String,
    sessions: String,
    family_prefix: String,
    member: String,
}

impl RedisFamilyStore {
    /// A store over an existing connection: a [`RedisConnection`] (single
    /// node or Cluster) or a `redis::aio::ConnectionManager`.
    pub fn new(connection: impl Into<RedisConnection>) -> RedisFamilyStore {
        RedisFamilyStore {
            connection: connection.into(),
            prefix: Arc::from(DEFAULT_PREFIX),
            timeout: DEFAULT_REDIS_TIMEOUT,
            scripts: Arc::new(Scripts {
                start: Script::new(START),
                rotate: Script::new(ROTATE),
                end: Script::new(END),
            }),
        }
    }

    /// Connects to `url` now: fails if Redis does not answer.
    pub async fn connect(url: &str) -> Result<RedisFamilyStore, StoreError> {
        Ok(RedisFamilyStore::new(redis_support::connection(url).await?))
    }

    /// Connects to `url` lazily (see
    /// [`RedisRevocationStore::connect_lazy`](crate::revocation::RedisRevocationStore::connect_lazy)):
    /// the service starts while Redis is down, and every refresh then fails
    /// closed. Call it inside a Tokio runtime.
    pub fn connect_lazy(url: &str) -> Result<RedisFamilyStore, StoreError> {
        Ok(RedisFamilyStore::new(redis_support::lazy_connection(url)?))
    }

    /// The key prefix (default `palisade:rf`); tests use one per test.
    /// Refuses an empty prefix, braces (one would become every key's hash
    /// tag), whitespace and control characters.
    pub fn with_key_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        self.prefix = redis_support::key_prefix(prefix)?;
        Ok(self)
    }

    /// The bound on each call (default 50 ms).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `<prefix>:{<16 hex>}`: the start of every key of `subject`.
    pub fn subject_key_prefix(&self, subject: &str) -> String {
        redis_support::subject_key_prefix(&self.prefix, subject)
    }

    fn keys(&self, family: FamilyRef<'_>) -> FamilyKeys {
        let subject_prefix = self.subject_key_prefix(family.subject);
        let member = redis_support::hashed_id(family.sid);
        let family_prefix = format!("{subject_prefix}:fam:");
        let family_key = format!("{family_prefix}{member}");
        FamilyKeys {
            sealed: format!("{family_key}:grace"),
            family: family_key,
            sessions: format!("{subject_prefix}:sessions"),
            family_prefix,
            member,
        }
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &Call<'_>,
    ) -> Result<T, StoreError> {
        redis_support::invoke(&self.connection, self.timeout, operation, invocation)
            .await
            .inspect_err(|error| redis_support::log_failure("refresh", error, self.timeout))
    }
}

fn millis(secs: u64) -> u64 {
    secs.min(MAX_SECS).saturating_mul(1000)
}

impl FamilyStore for RedisFamilyStore {
    async fn start(
        &self,
        family: FamilyRef<'_>,
        current: &TokenHash,
        config: &FamilyConfig,
    ) -> Result<Vec<String>, StoreError> {
        let keys = self.keys(family);
        let mut invocation = Call::new(&self.scripts.start);
        invocation.key(&keys.sessions);
        invocation
            .key(&keys.family)
            .arg(family.sid)
            .arg(&keys.member)
            .arg(hex(current))
            .arg(millis(config.idle_secs))
            .arg(millis(config.absolute_secs))
            .arg(config.max_sessions.max(1))
            .arg(&keys.family_prefix);
        self.invoke("family start", &invocation).await
    }

    async fn rotate(
        &self,
        family: FamilyRef<'_>,
        rotation: Rotation<'_>,
        config: &FamilyConfig,
    ) -> Result<RotateOutcome, StoreError> {
        let keys = self.keys(family);
        let mut invocation = Call::new(&self.scripts.rotate);
        invocation.key(&keys.family);
        invocation
            .key(&keys.sealed)
            .key(&keys.sessions)
            .arg(hex(rotation.presented))
            .arg(hex(rotation.successor))
            .arg(rotation.sealed_pair)
            .arg(millis(config.grace_secs))
            .arg(millis(config.idle_secs))
            .arg(&keys.member);
        let (code, sealed): (i64, Vec<u8>) = self.invoke("family rotation", &invocation).await?;
        match code {
            0 => Ok(RotateOutcome::Unknown),
            1 => Ok(RotateOutcome::Rotated),
            2 => Ok(RotateOutcome::Replay(sealed)),
            3 => Ok(RotateOutcome::Reuse),
            _ => {
                let error = StoreError::unexpected_reply("family rotation");
                redis_support::log_failure("refresh", &error, self.timeout);
                Err(error)
            }
        }
    }

    async fn end(&self, family: FamilyRef<'_>) -> Result<(), StoreError> {
        let keys = self.keys(family);
        let mut invocation = Call::new(&self.scripts.end);
        invocation.key(&keys.family);
        invocation
            .key(&keys.sealed)
            .key(&keys.sessions)
            .arg(&keys.member);
        let _: i64 = self.invoke("family end", &invocation).await?;
        Ok(())
    }
}
