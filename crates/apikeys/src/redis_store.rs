//! The Redis key store: one hash per key under the key id as its hash tag,
//! one sorted set per owner under a hash of the owner; the per-owner cap
//! reserved atomically in the owner's slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use palisade_errors::StoreError;
use palisade_errors::redis::{Call, RedisConnection};
use redis::Script;

use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, ConfigErrorKind};
use crate::key::KeyId;
use crate::redis_record::{decode, encode, status_text};
use crate::redis_support;
use crate::store::{KeyRecord, KeyStatus, KeyStore};
use crate::usage::KeyUsage;

/// The default key prefix. It never changes: a renamed prefix would orphan
/// every key, and every issued API key would stop working.
pub const DEFAULT_KEY_PREFIX: &str = "palisade:ak";
/// How long a dead key (revoked, expired, rotated out) is kept for listing
/// and audit by default, from the second it died.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// The longest retention accepted.
pub const MAX_RETENTION: Duration = Duration::from_secs(366 * 24 * 60 * 60);
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);
/// The longest TTL computed from an expiry (a far-future expiry is capped,
/// so the millisecond count stays an exact integer in Lua).
const MAX_TTL_SECS: u64 = 100 * 366 * 24 * 60 * 60;

/// The owner set's TTL from its members: none while a member never dies
/// (score `+inf`), else the retention past the last member's death.
const FIX_OWNER_TTL: &str = r"
local function fix_ttl(key, now, retention)
  if redis.call('ZCOUNT', key, '+inf', '+inf') > 0 then
    redis.call('PERSIST', key)
    return
  end
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then
    local ttl = tonumber(top[2]) - now
    if ttl < 0 then ttl = 0 end
    if ttl > MAX_TTL then ttl = MAX_TTL end
    redis.call('PEXPIRE', key, string.format('%d', (ttl + retention) * 1000 + 1))
  end
end
";

/// Reserves the key id in its owner's set when the owner holds fewer than
/// `max` live keys (score: the second the key dies, `+inf` for never; live
/// means a score above `now`). One script in the owner's slot: concurrent
/// issues are serialised by Redis, so the cap holds exactly. Members dead
/// for longer than the retention are pruned first.
/// KEYS: owner set. ARGV: id, score, max (0: no cap), now, retention secs.
const RESERVE: &str = r"
local now = tonumber(ARGV[4])
local retention = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', now - retention))
local max = tonumber(ARGV[3])
if max > 0 and redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[4], '+inf') >= max then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
fix_ttl(KEYS[1], now, retention)
return 1
";

/// Re-scores a member after a status change. KEYS: owner set. ARGV: id,
/// score, now, retention secs.
const RESCORE: &str = r"
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
fix_ttl(KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
";

/// Writes a key's hash whole. KEYS: key hash. ARGV: ttl ms (0: none), then
/// field, value pairs.
const WRITE: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
";

/// Sets a key's status and its TTL (none while it can live, else the
/// retention past its death); answers its owner and the second it dies
/// (`+inf` for never), or nil when there is no such key or, given an
/// expected status, when the key's is another (a compare-and-set).
/// KEYS: key hash. ARGV: status, status end (`+inf` or secs), now,
/// retention secs, expected status (empty: any).
const SET_STATUS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'status') ~= ARGV[5] then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
local dies = ARGV[2]
local expires = redis.call('HGET', KEYS[1], 'expires_at')
if expires and expires ~= '' and (dies == '+inf' or tonumber(expires) < tonumber(dies)) then
  dies = expires
end
if dies == '+inf' then
  redis.call('PERSIST', KEYS[1])
else
  local ttl = tonumber(dies) - tonumber(ARGV[3])
  if ttl < 0 then ttl = 0 end
  if ttl > MAX_TTL then ttl = MAX_TTL end
  redis.call('PEXPIRE', KEYS[1], string.format('%d', (ttl + tonumber(ARGV[4])) * 1000 + 1))
end
return {redis.call('HGET', KEYS[1], 'owner'), dies}
";

/// Adds one key's batch of usage; a key no longer held is skipped (never
/// re-created without its TTL). KEYS: key hash. ARGV: count, at, ip.
const USAGE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'use_count', ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[1], 'last_used_at') or '')
if not last or tonumber(ARGV[2]) >= last then
  redis.call('HSET', KEYS[1], 'last_used_at', ARGV[2], 'last_used_ip', ARGV[3])
end
return 1
";

struct Scripts {
    reserve: Script,
    rescore: Script,
    write: Script,
    set_status: Script,
    usage: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_ttl = |body: &str| {
            let source = format!("local MAX_TTL = {MAX_TTL_SECS}\n{FIX_OWNER_TTL}\n{body}");
            Script::new(&source)
        };
        Scripts {
            reserve: with_ttl(RESERVE),
            rescore: with_ttl(RESCORE),
            write: Script::new(WRITE),
            set_status: with_ttl(SET_STATUS),
            usage: Script::new(USAGE),
        }
    }
}

/// API keys in Redis, shared by every instance.
///
/// - `<prefix>:{<key_id>}`: one hash per key (HMAC, pepper id, owner, name,
///   scopes, times, allow-list, status, usage). The hash tag is the key id:
///   random, public, never user text, so no hashing is needed.
/// - `<prefix>:{<16 hex>}:owner`: one sorted set per owner (the tag the
///   first 8 bytes of SHA-256 of the owner), members the key ids, scores the
///   second each key dies (`+inf` while it cannot).
///
/// An active key without expiry has no TTL (a TTL would silently switch off
/// a working key: an outage); every other record expires [its retention](
/// Self::with_retention) after the key died. See the crate README for the
/// cap guarantee.
pub struct RedisKeyStore<C: Clock = SystemClock> {
    connection: RedisConnection,
    prefix: Arc<str>,
    timeout: Duration,
    retention_secs: u64,
    clock: C,
    scripts: Arc<Scripts>,
}

impl<C: Clock + Clone> Clone for RedisKeyStore<C> {
    fn clone(&self) -> Self {
        RedisKeyStore {
            connection: self.connection.clone(),
            prefix: Arc::clone(&self.prefix),
            timeout: self.timeout,
            retention_secs: self.retention_secs,
            clock: self.clock.clone(),
            scripts: Arc::clone(&self.scripts),
        }
    }
}

impl<C: Clock> std::fmt::Debug for RedisKeyStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeyStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("retention_secs", &self.retention_secs)
            .finish_non_exhaustive()
    }
}

impl RedisKeyStore {
    /// A store on the process's shared connection, on the system clock.
    pub fn new(connection: impl Into<RedisConnection>) -> RedisKeyStore {
        RedisKeyStore {
            connection: connection.into(),
            prefix: Arc::from(DEFAULT_KEY_PREFIX),
            timeout: DEFAULT_TIMEOUT,
            retention_secs: DEFAULT_RETENTION.as_secs(),
            clock: SystemClock,
            scripts: Arc::new(Scripts::new()),
        }
    }

    /// Connects to `url` now.
    ///
    /// # Errors
    ///
    /// `unavailable` when Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<RedisKeyStore, StoreError> {
        Ok(RedisKeyStore::new(redis_support::connection(url).await?))
    }

    /// Connects to `url` on first use (the service starts while Redis is
    /// down). Must be called inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// `unavailable` for a URL that does not parse.
    pub fn connect_lazy(url: &str) -> Result<RedisKeyStore, StoreError> {
        Ok(RedisKeyStore::new(redis_support::lazy_connection(url)?))
    }
}

impl<C: Clock> RedisKeyStore<C> {
    /// The same on `clock` (the one the [`ApiKeys`](crate::ApiKeys) on it
    /// uses): it tells live keys from dead ones and sets retention TTLs.
    pub fn with_clock<C2: Clock>(self, clock: C2) -> RedisKeyStore<C2> {
        RedisKeyStore {
            connection: self.connection,
            prefix: self.prefix,
            timeout: self.timeout,
            retention_secs: self.retention_secs,
            clock,
            scripts: self.scripts,
        }
    }

    /// Keys under `prefix` (checked by `palisade_errors::check_key_prefix`).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidKeyPrefix`].
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

    /// Keeps a dead key's record (and its place in the owner's listing)
    /// for `retention` after it died (default 30 days, at most 366).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidLimit`] above 366 days.
    pub fn with_retention(mut self, retention: Duration) -> Result<Self, ConfigError> {
        if retention > MAX_RETENTION {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "retention must be at most 366 days",
            ));
        }
        self.retention_secs = retention.as_secs();
        Ok(self)
    }

    /// The hash of key `key_id`: `<prefix>:{<key_id>}`.
    pub fn key(&self, key_id: &KeyId) -> String {
        format!("{}:{{{}}}", self.prefix, key_id.as_str())
    }

    /// The set of `owner`'s keys: `<prefix>:{<16 hex>}:owner`.
    pub fn owner_key(&self, owner: &str) -> String {
        format!(
            "{}:owner",
            redis_support::subject_key_prefix(&self.prefix, owner)
        )
    }

    fn failed(&self, error: StoreError) -> StoreError {
        redis_support::log_failure("api_keys", &error, self.timeout);
        error
    }

    /// Reserves `id` in `owner`'s set under the cap (`0`: none).
    async fn reserve(
        &self,
        owner_key: &str,
        id: &KeyId,
        score: &str,
        max: usize,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut invocation = Call::new(&self.scripts.reserve);
        invocation.key(owner_key);
        invocation
            .arg(id.as_str())
            .arg(score)
            .arg(max)
            .arg(now)
            .arg(self.retention_secs);
        let reserved: i64 = redis_support::invoke(
            &self.connection,
            self.timeout,
            "api key reserve",
            &invocation,
        )
        .await?;
        Ok(reserved == 1)
    }

    /// Reserve in the owner's slot, then write the hash in the key's slot;
    /// a failed write gives the reservation back.
    async fn insert_within(&self, record: KeyRecord, max: usize) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let owner_key = self.owner_key(&record.owner);
        let dies_at = record.dies_at(now);
        let score = score_text(dies_at);
        let mut reserved = self
            .reserve(&owner_key, &record.key_id, &score, max, now)
            .await
            .map_err(|e| self.failed(e))?;
        if !reserved && self.repair_owner(&owner_key, &record.owner, now).await? {
            reserved = self
                .reserve(&owner_key, &record.key_id, &score, max, now)
                .await
                .map_err(|e| self.failed(e))?;
        }
        if !reserved {
            return Ok(false);
        }
        let key = self.key(&record.key_id);
        let mut invocation = Call::new(&self.scripts.write);
        invocation.key(&key);
        invocation.arg(self.ttl_ms(dies_at, now));
        for (field, value) in encode(&record) {
            invocation.arg(field).arg(value);
        }
        let written: Result<i64, StoreError> = redis_support::invoke(
            &self.connection,
            self.timeout,
            "api key insert",
            &invocation,
        )
        .await;
        if let Err(error) = written {
            self.undo(&key, &owner_key, &record.key_id).await;
            return Err(self.failed(error));
        }
        Ok(true)
    }

    /// Gives a reservation back after a failed write. The hash goes first
    /// (a write that timed out may still have landed: nobody holds its
    /// secret, and a hash outside its owner's set must not stay); if that
    /// fails too the reservation stays, costing the owner one slot rather
    /// than letting a key exist beyond the cap.
    async fn undo(&self, key: &str, owner_key: &str, id: &KeyId) {
        let mut deleted = redis::pipe();
        deleted.cmd("DEL").arg(key).ignore();
        if redis_support::query::<()>(&self.connection, self.timeout, "api key undo", &deleted)
            .await
            .is_err()
        {
            return;
        }
        let mut released = redis::pipe();
        released
            .cmd("ZREM")
            .arg(owner_key)
            .arg(id.as_str())
            .ignore();
        let _ =
            redis_support::query::<()>(&self.connection, self.timeout, "api key undo", &released)
                .await;
    }

    /// Members counted as live whose record says they are dead (a status
    /// change whose second call failed) get their real score; `true` if
    /// any was fixed. Members without a record are left alone: they may be
    /// an issue in flight.
    async fn repair_owner(
        &self,
        owner_key: &str,
        owner: &str,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut live = redis::pipe();
        live.cmd("ZRANGEBYSCORE")
            .arg(owner_key)
            .arg(format!("({now}"))
            .arg("+inf");
        let (ids,): (Vec<String>,) =
            redis_support::query(&self.connection, self.timeout, "api key repair", &live)
                .await
                .map_err(|e| self.failed(e))?;
        let records = self.read_many(&ids).await?;
        let mut fixes = Vec::new();
        for record in records.into_iter().flatten() {
            if record.owner != owner {
                continue;
            }
            if let Some(dies_at) = record.dies_at(now).filter(|at| *at <= now) {
                let mut invocation = Call::new(&self.scripts.rescore);
                invocation
                    .key(owner_key)
                    .arg(record.key_id.as_str())
                    .arg(dies_at)
                    .arg(now)
                    .arg(self.retention_secs);
                fixes.push(invocation);
            }
        }
        let fixed = !fixes.is_empty();
        redis_support::each(
            fixes
                .iter()
                .map(|fix| fix.invoke::<()>(&self.connection, self.timeout, "api key repair")),
        )
        .await
        .map_err(|e| self.failed(e))?;
        Ok(fixed)
    }

    /// The records of `ids`, in order (`None` for a missing one), in one
    /// round trip.
    async fn read_many(&self, ids: &[String]) -> Result<Vec<Option<KeyRecord>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut parsed_ids = Vec::with_capacity(ids.len());
        for id in ids {
            let id = KeyId::parse(id)
                .ok_or_else(|| self.failed(StoreError::unexpected_reply("api key owner set")))?;
            parsed_ids.push(id);
        }
        // One command a key, sent together: the keys are on different
        // Cluster slots, so they cannot share a pipeline there; a single
        // node's multiplexed connection pipelines them by itself.
        let reads: Vec<redis::Cmd> = parsed_ids
            .iter()
            .map(|id| {
                let mut read = redis::cmd("HGETALL");
                read.arg(self.key(id));
                read
            })
            .collect();
        let hashes: Vec<HashMap<String, String>> = redis_support::each(reads.iter().map(|read| {
            redis_support::query_one(&self.connection, self.timeout, "api key list", read)
        }))
        .await
        .map_err(|e| self.failed(e))?;
        parsed_ids
            .into_iter()
            .zip(hashes)
            .map(|(id, fields)| decode(id, &fields).map_err(|e| self.failed(e)))
            .collect()
    }

    /// [`KeyStore::set_status`], or with `expected` [`KeyStore::replace_status`].
    async fn write_status(
        &self,
        key_id: &KeyId,
        expected: Option<KeyStatus>,
        status: KeyStatus,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let status_end = match status {
            KeyStatus::Active => "+inf".to_owned(),
            KeyStatus::Revoked => now.to_string(),
            KeyStatus::RotatedGrace { until } => until.to_string(),
        };
        let mut invocation = Call::new(&self.scripts.set_status);
        invocation.key(self.key(key_id));
        invocation
            .arg(status_text(status))
            .arg(status_end)
            .arg(now)
            .arg(self.retention_secs)
            .arg(expected.map(status_text).unwrap_or_default());
        let changed: Option<(String, String)> = redis_support::invoke(
            &self.connection,
            self.timeout,
            "api key set status",
            &invocation,
        )
        .await
        .map_err(|e| self.failed(e))?;
        let Some((owner, dies)) = changed else {
            return Ok(false);
        };
        let mut invocation = Call::new(&self.scripts.rescore);
        invocation.key(self.owner_key(&owner));
        invocation
            .arg(key_id.as_str())
            .arg(dies)
            .arg(now)
            .arg(self.retention_secs);
        // If this second call fails, the owner's set still counts the key
        // as live until `repair_owner` fixes it: the owner may get a 409
        // early, never a key over the cap.
        redis_support::invoke::<i64>(
            &self.connection,
            self.timeout,
            "api key set status",
            &invocation,
        )
        .await
        .map_err(|e| self.failed(e))?;
        Ok(true)
    }

    /// No TTL while the key can live; else the retention past its death.
    fn ttl_ms(&self, dies_at: Option<u64>, now: u64) -> u64 {
        dies_at.map_or(0, |at| {
            let secs = at.saturating_sub(now).min(MAX_TTL_SECS) + self.retention_secs;
            secs.saturating_mul(1000).max(1)
        })
    }
}

fn score_text(dies_at: Option<u64>) -> String {
    dies_at.map_or_else(|| "+inf".to_owned(), |at| at.to_string())
}

impl<C: Clock> KeyStore for RedisKeyStore<C> {
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.insert_within(record, 0).await.map(|_| ())
    }

    async fn insert_capped(&self, record: KeyRecord, max_live: usize) -> Result<bool, StoreError> {
        if max_live == 0 {
            return Ok(false);
        }
        self.insert_within(record, max_live).await
    }

    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let mut read = redis::pipe();
        read.cmd("HGETALL").arg(self.key(key_id));
        let (fields,): (HashMap<String, String>,) =
            redis_support::query(&self.connection, self.timeout, "api key get", &read)
                .await
                .map_err(|e| self.failed(e))?;
        decode(*key_id, &fields).map_err(|e| self.failed(e))
    }

    async fn set_status(&self, key_id: &KeyId, status: KeyStatus) -> Result<bool, StoreError> {
        self.write_status(key_id, None, status).await
    }

    async fn replace_status(
        &self,
        key_id: &KeyId,
        from: KeyStatus,
        to: KeyStatus,
    ) -> Result<bool, StoreError> {
        self.write_status(key_id, Some(from), to).await
    }

    async fn record_usage(&self, batch: &[KeyUsage]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // One call a key (different Cluster slots), sent together.
        let writes: Vec<Call<'_>> = batch
            .iter()
            .map(|usage| {
                let mut invocation = Call::new(&self.scripts.usage);
                invocation
                    .key(self.key(&usage.key_id))
                    .arg(usage.count)
                    .arg(usage.last_used_at)
                    .arg(usage.last_used_ip.to_string());
                invocation
            })
            .collect();
        redis_support::each(
            writes
                .iter()
                .map(|write| write.invoke::<()>(&self.connection, self.timeout, "api key usage")),
        )
        .await
        .map(drop)
        .map_err(|e| self.failed(e))
    }

    async fn list_owner(&self, owner: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let mut members = redis::pipe();
        members
            .cmd("ZRANGE")
            .arg(self.owner_key(owner))
            .arg(0)
            .arg(-1);
        let (ids,): (Vec<String>,) =
            redis_support::query(&self.connection, self.timeout, "api key list", &members)
                .await
                .map_err(|e| self.failed(e))?;
        let mut owned: Vec<KeyRecord> = self
            .read_many(&ids)
            .await?
            .into_iter()
            .flatten()
            // Two owners whose 64-bit tags collide share a set: each lists
            // only its own keys.
            .filter(|record| record.owner == owner)
            .collect();
        owned.sort_by_key(|held| (held.created_at, held.key_id));
        Ok(owned)
    }
}
