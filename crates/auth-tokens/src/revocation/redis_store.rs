//! The Redis store (feature `redis`): every instance sees every revocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use palisade_errors::redis::{Call, RedisConnection};
use redis::{FromRedisValue, Script};

use crate::config::ConfigError;
use crate::redis_support;

use super::{
    DEFAULT_NOT_BEFORE_RETENTION, RevocationStore, StoreError, TokenRef, retention_seconds,
};

/// Default timeout of every Redis call.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

const DEFAULT_PREFIX: &str = "palisade:rv";

/// Largest `expires_at` passed to Redis (about the year 287,000): keeps the
/// millisecond TTL exact in Lua's doubles and within `PX`'s range.
const MAX_EXPIRES_AT: u64 = 9_000_000_000_000;

/// How long an epoch sentinel is kept without use, by default: 8 days,
/// like a `not_before`. Every check of its slot renews it once half of that
/// has passed, and [`RedisRevocationStore::readiness`] renews them all.
pub const DEFAULT_EPOCH_TTL: Duration = Duration::from_secs(8 * 24 * 60 * 60);

/// Slots whose epoch sentinels are written or renewed in one pipeline on a
/// single node, each pipeline within the store's timeout (16 pipelines for
/// all 16,384 slots).
const EPOCH_CHUNK: u16 = 1_024;

/// Epoch sentinel calls in flight at once on a Cluster, where each slot
/// needs its own call (a Cluster refuses a pipeline whose commands span
/// slots): few enough that the checks sharing the connection are not
/// queued behind a sweep.
const EPOCH_CLUSTER_IN_FLIGHT: usize = 32;

/// On a Cluster: writes the epoch sentinel KEYS[1] (ARGV[1], Redis' time
/// now, for ARGV[2] ms) when it is missing, and returns 1; else renews its
/// TTL and returns 0.
const WRITE_EPOCH: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 0
";

/// Lua that raises `at` to the subject's stored `not_before` (`$key`) when
/// that is later; one that is not a number is a `CORRUPT` error.
macro_rules! later_not_before {
    ($key:literal) => {
        concat!(
            "local stored = redis.call('GET', ",
            $key,
            ")\n",
            "if stored then\n",
            "  local previous = tonumber(stored)\n",
            "  if not previous then return redis.error_reply('CORRUPT not_before is not a number') end\n",
            "  if previous > at then at = previous end\n",
            "end\n"
        )
    };
}

/// The start of a script that reads (and renews) a slot's epoch sentinel
/// `$key` with TTL `$ttl` (ms) into `epoch`, or starts a new epoch now when
/// it is missing and sets `lost` to 8 (a data loss); a sentinel that is not
/// a number is a `CORRUPT` error (fail closed).
macro_rules! read_epoch {
    ($key:literal, $ttl:literal) => {
        concat!(
            "local lost = 0\nlocal epoch = redis.call('GET', ",
            $key,
            ")\n",
            "if epoch then\n",
            "  epoch = tonumber(epoch)\n",
            "  if not epoch then return redis.error_reply('CORRUPT epoch is not a number') end\n",
            "  if redis.call('PTTL', ",
            $key,
            ") < tonumber(",
            $ttl,
            ") / 2 then\n",
            "    redis.call('PEXPIRE', ",
            $key,
            ", ",
            $ttl,
            ")\n",
            "  end\n",
            "else\n",
            "  epoch = tonumber(redis.call('TIME')[1])\n",
            "  redis.call('SET', ",
            $key,
            ", string.format('%.0f', epoch), 'PX', ",
            $ttl,
            ")\n",
            "  lost = 8\n",
            "end\n"
        )
    };
}

/// The check, atomically, on one slot: KEYS[1] the `jti` marker, KEYS[2] the
/// subject's `not_before`, KEYS[3] the epoch sentinel of the slot, KEYS[4]
/// (when the token has a `sid`) the family marker; ARGV[1] the token's
/// `iat`, ARGV[2] the sentinel's TTL (ms). Returns 0 (valid) or why it is
/// revoked: 1 `jti`, 2 family, 3 `not_before` (equal seconds included), 4
/// issued before the slot's epoch; plus 8 when the sentinel was missing:
/// the store lost its data (a restart without persistence, a flush, an
/// eviction), so a new epoch starts now and every token issued before it
/// counts as revoked. A `not_before` or epoch that is not a number is a
/// `CORRUPT` error: fail closed.
const IS_REVOKED: &str = concat!(
    read_epoch!("KEYS[3]", "ARGV[2]"),
    r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 + lost end
if #KEYS >= 4 and redis.call('EXISTS', KEYS[4]) == 1 then return 2 + lost end
local stored = redis.call('GET', KEYS[2])
if stored then
  local not_before = tonumber(stored)
  if not not_before then return redis.error_reply('CORRUPT not_before is not a number') end
  if tonumber(ARGV[1]) <= not_before then return 3 + lost end
end
if tonumber(ARGV[1]) < epoch then return 4 + lost end
return lost
"
);
/// The subject's `not_before` in force: KEYS[1] its `not_before`, KEYS[2]
/// the epoch sentinel of its slot, ARGV[1] the sentinel's TTL (ms). A token
/// issued before the epoch is refused like one issued at or before
/// `not_before`, so the answer is the later of `not_before` and `epoch - 1`;
/// a missing sentinel starts a new epoch now, as [`IS_REVOKED`] does (and
/// the second value is then 8: a data loss). Without this a login right
/// after a new epoch (a first start, a Redis that lost its data) was
/// stamped before it and refused as revoked for the leeway.
const NOT_BEFORE: &str = concat!(
    read_epoch!("KEYS[2]", "ARGV[1]"),
    "local at = epoch - 1\n",
    later_not_before!("KEYS[1]"),
    "return {string.format('%.0f', at), lost}\n"
);
/// The number of replicas connected to the master running a script
/// (`INFO replication`'s `connected_slaves`): the revocation scripts return
/// it, so the store sends `WAIT` only to a master that has replicas — on a
/// master without any, `WAIT` would block for its whole timeout.
macro_rules! connected_replicas {
    () => {
        "local replicas = tonumber(string.match(redis.call('INFO', 'replication'), \
         'connected_slaves:(%d+)')) or 0\n"
    };
}

/// A `jti` or family revocation: KEYS[1] the marker, ARGV[1] `expires_at`
/// (Unix seconds). The TTL is counted on Redis' own clock (`TIME`), at least
/// 1 s, and never shortened by a second revocation. Integers are written
/// with `%.0f`: Lua's default conversion would use 14 significant digits.
/// Returns the TTL in force, in milliseconds, and the master's connected
/// replicas.
const REVOKE: &str = concat!(
    connected_replicas!(),
    r"
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1]) * 1000 - now_ms
if ttl < 1000 then ttl = 1000 end
local remaining = redis.call('PTTL', KEYS[1])
if remaining >= ttl then return {remaining, replicas} end
redis.call('SET', KEYS[1], '1', 'PX', string.format('%.0f', ttl))
return {ttl, replicas}
"
);

/// Log out everywhere: KEYS[1] the subject's `not_before`, ARGV[1] the
/// retention (seconds). Sets `not_before` to the later of the stored value
/// and Redis' `TIME` (it never moves backwards), kept until `not_before +
/// retention` (never shortened). Returns the `not_before` in force and the
/// master's connected replicas.
const REVOKE_SUBJECT: &str = concat!(
    connected_replicas!(),
    r"
local t = redis.call('TIME')
local now = tonumber(t[1])
local now_ms = now * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = now
",
    later_not_before!("KEYS[1]"),
    r"
local ttl = (at + tonumber(ARGV[1])) * 1000 - now_ms
local remaining = redis.call('PTTL', KEYS[1])
if remaining > ttl then ttl = remaining end
redis.call('SET', KEYS[1], string.format('%.0f', at), 'PX', string.format('%.0f', ttl))
return {at, replicas}
"
);

/// Revocations in Redis, shared by every instance of the service.
///
/// - Keys: `<prefix>:{<16 hex>}:jti:<64 hex>`, `<prefix>:{<16 hex>}:fam:<64
///   hex>`, `<prefix>:{<16 hex>}:nbf` and the slots' `<prefix>:{e<n>}:epoch`
///   (16,384 of them, one per Cluster slot), where the hash tag is the start of
///   the SHA-256 of the subject and the rest the SHA-256 of the `jti` or
///   `sid`. Everything of one subject is on one Redis Cluster slot, so every
///   script touches one slot; no raw identifier is stored; no input can
///   choose the slot (a `}` in a subject is just hashed).
/// - Every key has a TTL counted on Redis' clock (`TIME` inside the
///   scripts): a `jti` until the token expires, a family until its absolute
///   expiry, a `not_before` for the retention. Redis memory is bounded by
///   live revocations, and instances with skewed clocks agree.
/// - Data loss fails closed: every Redis Cluster slot has an epoch sentinel
///   ([`epoch_key`](Self::epoch_key), a hash tag chosen to hash to the
///   slot), written when the store is first used, read (and renewed) by
///   every check. A check that finds it gone — Redis restarted without
///   persistence, was flushed, or evicted it — starts a new epoch at Redis'
///   time: every token issued before it counts as revoked, the loss is
///   logged (`event = "store_unavailable"`, `reason = "data_lost"`),
///   counted ([`data_losses`](Self::data_losses)) and reported once by
///   [`readiness`](Self::readiness). Run Redis with AOF (`appendfsync
///   everysec`) so this stays an accident; see the crate README.
/// - Failover (a Redis Cluster, or a master with replicas): when the
///   master holding a revocation has replicas (the revoke script reports
///   them), the store then sends it `WAIT 1` (a second call, within the
///   timeout of its own), and the call
///   succeeds only once a replica acknowledged the revocation, which then
///   survives the master's failover. No acknowledgement in time is a
///   `timeout` error (logged): the revocation is in force on the master,
///   but a failover now could undo it unseen, so the caller answers 503 and
///   the client retries (revoking again is harmless). A master without
///   replicas is not waited on (nothing to promote; `WAIT` would block its
///   whole timeout). While a dead master's slots have no master yet, their
///   checks are errors (fail closed, 503). See the crate README.
/// - [`is_revoked`](RevocationStore::is_revoked) is one `EVALSHA` (scripts
///   are loaded once and reloaded on `NOSCRIPT`) in one round trip.
/// - Every call has a timeout (default 50 ms), the only bound on it (the
///   connection has no response timeout of its own). A failure or timeout
///   is an `Err` (logged as `event = "store_unavailable"` by the verifier), which the
///   verifier turns into 503: fail closed. Use one store (one multiplexed
///   [`RedisConnection`], which reconnects by itself) per process; clones
///   share it.
///
/// ```no_run
/// # async fn run() -> Result<(), palisade_errors::Error> {
/// use std::time::Duration;
/// use palisade_auth_tokens::revocation::RedisRevocationStore;
///
/// let store = RedisRevocationStore::connect_lazy("redis://127.0.0.1:6379/0")?
///     .with_key_prefix("myapp:rv")?
///     .with_timeout(Duration::from_millis(50));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRevocationStore {
    connection: RedisConnection,
    prefix: Arc<str>,
    timeout: Duration,
    retention: u64,
    scripts: Arc<Scripts>,
    epoch: Arc<EpochState>,
    epoch_ttl_ms: u64,
}

/// What this process knows of the store's epoch sentinels.
#[derive(Default)]
struct EpochState {
    /// Every slot's sentinel was written or renewed once.
    ready: AtomicBool,
    /// Losses detected (a check found its slot's sentinel missing, or
    /// [`RedisRevocationStore::readiness`] found any missing).
    losses: AtomicU64,
    /// `losses` when [`RedisRevocationStore::readiness`] last reported.
    reported: AtomicU64,
    /// Held while the first check writes the sentinels.
    setup: tokio::sync::Mutex<()>,
}

struct Scripts {
    is_revoked: Script,
    revoke: Script,
    revoke_subject: Script,
    write_epoch: Script,
    not_before: Script,
}

impl std::fmt::Debug for RedisRevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocationStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("not_before_retention_secs", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisRevocationStore {
    /// A store over an existing connection: a [`RedisConnection`] (single
    /// node or Cluster) or a `redis::aio::ConnectionManager`.
    pub fn new(connection: impl Into<RedisConnection>) -> RedisRevocationStore {
        RedisRevocationStore {
            connection: connection.into(),
            prefix: Arc::from(DEFAULT_PREFIX),
            timeout: DEFAULT_REDIS_TIMEOUT,
            retention: retention_seconds(DEFAULT_NOT_BEFORE_RETENTION),
            scripts: Arc::new(Scripts {
                is_revoked: Script::new(IS_REVOKED),
                revoke: Script::new(REVOKE),
                revoke_subject: Script::new(REVOKE_SUBJECT),
                write_epoch: Script::new(WRITE_EPOCH),
                not_before: Script::new(NOT_BEFORE),
            }),
            epoch: Arc::new(EpochState::default()),
            epoch_ttl_ms: millis(DEFAULT_EPOCH_TTL),
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`) now: fails if
    /// Redis does not answer. The connection reconnects by itself later.
    pub async fn connect(url: &str) -> Result<RedisRevocationStore, StoreError> {
        Ok(RedisRevocationStore::new(
            redis_support::connection(url).await?,
        ))
    }

    /// Connects to `url` lazily: the service starts even while Redis is
    /// down (every check then fails closed), and the connection comes up by
    /// itself when Redis is back, one reconnection attempt per call, so a
    /// dead Redis costs one timeout per check, not the client's default
    /// retry schedule. Call it inside a Tokio runtime (the connection's
    /// driver is spawned on it). Fails only on a malformed URL.
    pub fn connect_lazy(url: &str) -> Result<RedisRevocationStore, StoreError> {
        Ok(RedisRevocationStore::new(redis_support::lazy_connection(
            url,
        )?))
    }

    /// The key prefix (default `palisade:rv`); tests use one per test.
    /// Refuses an empty prefix, braces (one would become every key's hash
    /// tag and put every subject on one Cluster slot), whitespace and
    /// control characters.
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

    /// How long a subject's `not_before` is kept (default
    /// [`DEFAULT_NOT_BEFORE_RETENTION`], 8 days; rounded up to whole
    /// seconds). It must be at least the longest token lifetime (the refresh
    /// token's, plus leeway): once it expires, tokens issued before it are
    /// valid again.
    #[must_use]
    pub fn not_before_retention(mut self, retention: Duration) -> Self {
        self.retention = retention_seconds(retention);
        self
    }

    /// How long a slot's epoch sentinel lives when neither a check of that
    /// slot nor [`readiness`](Self::readiness) renews it (default
    /// [`DEFAULT_EPOCH_TTL`], 8 days; at least 1 s). A sentinel that expires
    /// counts as a data loss (fail closed: a new epoch), so keep it well
    /// above the interval of `readiness` calls; tests use a short one so
    /// their 16,384 sentinels do not outlive them.
    #[must_use]
    pub fn with_epoch_ttl(mut self, ttl: Duration) -> Self {
        self.epoch_ttl_ms = millis(ttl).max(1_000);
        self
    }

    /// `<prefix>:{<16 hex>}`: the start of every key of `subject`, whose
    /// hash tag (the first 8 bytes of the SHA-256 of the subject, in hex)
    /// puts them on one Cluster slot. Other per-subject state (a session
    /// list, say) that a script must touch together with the revocations
    /// should live under it too.
    pub fn subject_key_prefix(&self, subject: &str) -> String {
        redis_support::subject_key_prefix(&self.prefix, subject)
    }

    fn token_key(&self, subject: &str, jti: &str) -> String {
        format!(
            "{}:jti:{}",
            self.subject_key_prefix(subject),
            redis_support::hashed_id(jti)
        )
    }

    fn family_key(&self, subject: &str, sid: &str) -> String {
        format!(
            "{}:fam:{}",
            self.subject_key_prefix(subject),
            redis_support::hashed_id(sid)
        )
    }

    fn not_before_key(&self, subject: &str) -> String {
        format!("{}:nbf", self.subject_key_prefix(subject))
    }

    /// The epoch sentinel checked with `subject`'s revocations:
    /// `<prefix>:{e<n>}:epoch`, one per Redis Cluster slot, whose hash tag
    /// `e<n>` is chosen to hash to the slot of `subject`'s keys (so the
    /// check stays one script on one slot). It holds the Redis time at which
    /// the slot's epoch began; a token issued before it counts as revoked.
    pub fn epoch_key(&self, subject: &str) -> String {
        redis_support::epoch_key(&self.prefix, subject)
    }

    /// Data losses detected since the store was created: a check that found
    /// its slot's epoch sentinel missing, or a
    /// [`readiness`](Self::readiness) call that found any missing. Each
    /// started a new epoch: tokens issued before it are refused.
    pub fn data_losses(&self) -> u64 {
        self.epoch.losses.load(Ordering::Relaxed)
    }

    /// Readiness of the store for a health endpoint (call it every minute
    /// or so, not per request: it touches all 16,384 slot sentinels in one
    /// pipeline). Writes every slot's epoch sentinel that is missing (a new
    /// epoch: tokens issued before now are refused) and renews the others'
    /// TTL. `Err` with [`StoreErrorKind::DataLost`](super::StoreErrorKind::DataLost)
    /// when a sentinel was missing — here, or in a check since the last
    /// call — i.e. Redis lost its data (restart without persistence, a
    /// flush, eviction under `maxmemory`; or a store used for the first
    /// time): every session issued before was logged out, fail closed.
    /// `Err` of another kind when Redis does not answer.
    pub async fn readiness(&self) -> Result<(), StoreError> {
        self.write_epochs().await?;
        let losses = self.epoch.losses.load(Ordering::Relaxed);
        let reported = self.epoch.reported.swap(losses, Ordering::Relaxed);
        if losses > reported {
            return Err(StoreError::data_lost("revocation epoch"));
        }
        Ok(())
    }

    /// Writes every slot's missing epoch sentinel (the epoch: Redis' time
    /// now) and renews the TTL of all of them, in pipelines of
    /// [`EPOCH_CHUNK`] slots, each within the store's timeout. Counts and
    /// logs a loss when any was missing.
    async fn write_epochs(&self) -> Result<(), StoreError> {
        let (now, _micros): (u64, u64) = redis_support::query(
            &self.connection,
            self.timeout,
            "epoch setup",
            &redis::cmd("TIME"),
        )
        .await
        .map_err(|error| self.failed(error))?;
        let keys: Vec<String> = redis_support::epoch_keys(&self.prefix).collect();
        let created = if self.connection.is_cluster() {
            self.write_epochs_per_slot(&keys, now).await?
        } else {
            self.write_epochs_pipelined(&keys, now).await?
        };
        self.epoch.ready.store(true, Ordering::Relaxed);
        if created > 0 {
            self.epoch.losses.fetch_add(1, Ordering::Relaxed);
            log_data_lost(created);
        }
        Ok(())
    }

    /// One node: pipelines of [`EPOCH_CHUNK`] slots (`SET NX` and
    /// `PEXPIRE` each), one round trip each. Returns how many were missing.
    async fn write_epochs_pipelined(&self, keys: &[String], now: u64) -> Result<usize, StoreError> {
        let mut created = 0;
        for chunk in keys.chunks(usize::from(EPOCH_CHUNK)) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(now)
                    .arg("NX")
                    .arg("PX")
                    .arg(self.epoch_ttl_ms)
                    .cmd("PEXPIRE")
                    .arg(key)
                    .arg(self.epoch_ttl_ms)
                    .ignore();
            }
            let replies: Vec<Option<String>> =
                redis_support::query_pipeline(&self.connection, self.timeout, "epoch setup", &pipe)
                    .await
                    .map_err(|error| self.failed(error))?;
            created += replies.iter().filter(|reply| reply.is_some()).count();
        }
        Ok(created)
    }

    /// A Cluster: one script call a slot (a Cluster refuses a pipeline
    /// whose commands span slots), [`EPOCH_CLUSTER_IN_FLIGHT`] at a time so
    /// the sweep never crowds out the checks sharing the connection.
    async fn write_epochs_per_slot(&self, keys: &[String], now: u64) -> Result<usize, StoreError> {
        let mut created = 0;
        for chunk in keys.chunks(EPOCH_CLUSTER_IN_FLIGHT) {
            let calls: Vec<Call<'_>> = chunk
                .iter()
                .map(|key| {
                    let mut call = Call::new(&self.scripts.write_epoch);
                    call.key(key).arg(now).arg(self.epoch_ttl_ms);
                    call
                })
                .collect();
            let written: Vec<i64> = redis_support::each(
                calls
                    .iter()
                    .map(|call| call.invoke(&self.connection, self.timeout, "epoch setup")),
            )
            .await
            .map_err(|error| self.failed(error))?;
            created += written.iter().filter(|&&written| written == 1).count();
        }
        Ok(created)
    }

    /// Before the first check: every slot's epoch sentinel is in place, so
    /// a slot whose sentinel is missing later has lost its data.
    async fn ensure_epochs(&self) -> Result<(), StoreError> {
        if self.epoch.ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        // One setup at a time: a burst of first checks waits for it rather
        // than writing all 16,384 sentinels once each.
        let _setup = self.epoch.setup.lock().await;
        if self.epoch.ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.write_epochs().await
    }

    /// Runs a script invocation with the timeout; failures are logged here
    /// (without keys or ids) and returned.
    async fn invoke<T: FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &Call<'_>,
    ) -> Result<T, StoreError> {
        redis_support::invoke(&self.connection, self.timeout, operation, invocation)
            .await
            .map_err(|error| self.failed(error))
    }

    fn failed(&self, error: StoreError) -> StoreError {
        redis_support::log_failure("revocation", &error, self.timeout);
        error
    }

    async fn revoke(
        &self,
        operation: &'static str,
        key: String,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let mut invocation = Call::new(&self.scripts.revoke);
        invocation.key(&key);
        invocation.arg(expires_at.min(MAX_EXPIRES_AT));
        let (_ttl_ms, replicas): (i64, u32) = self.invoke(operation, &invocation).await?;
        self.replicate(operation, key.as_bytes(), replicas).await
    }

    /// After a revocation on a master with `replicas` connected: `WAIT 1`
    /// on that master (within the store's timeout), so the revocation
    /// survives its failover. Without replicas there is nothing to wait for
    /// (and `WAIT` would block its whole timeout). No replica acknowledging
    /// in time is an error (logged): the revocation is in force on the
    /// master, but a failover now could undo it unseen, so the caller
    /// answers 503 and the client retries (revoking again is harmless).
    async fn replicate(
        &self,
        operation: &'static str,
        key: &[u8],
        replicas: u32,
    ) -> Result<(), StoreError> {
        if replicas == 0 {
            return Ok(());
        }
        let acknowledged = self
            .connection
            .wait_for_replicas(key, 1, self.timeout)
            .await
            .map_err(|error| self.failed(error))?;
        if acknowledged == 0 {
            tracing::warn!(
                store = "revocation",
                operation,
                replicas,
                timeout_ms = millis(self.timeout),
                "revocation in force on the Redis master but not acknowledged by a replica in \
                 time: a failover now could lose it; reported as unavailable"
            );
            return Err(StoreError::timeout("replica acknowledgement").during(operation));
        }
        Ok(())
    }
}

impl RevocationStore for RedisRevocationStore {
    async fn is_revoked(&self, token: TokenRef<'_>) -> Result<bool, StoreError> {
        self.ensure_epochs().await?;
        let mut invocation = Call::new(&self.scripts.is_revoked);
        invocation
            .key(self.token_key(token.subject, token.jti))
            .key(self.not_before_key(token.subject))
            .key(self.epoch_key(token.subject));
        if let Some(sid) = token.sid {
            invocation.key(self.family_key(token.subject, sid));
        }
        invocation.arg(token.issued_at).arg(self.epoch_ttl_ms);
        let reason: i64 = self.invoke("revocation check", &invocation).await?;
        if reason & 8 != 0 {
            self.epoch.losses.fetch_add(1, Ordering::Relaxed);
            log_data_lost(1);
        }
        match reason & !8 {
            0 => Ok(false),
            1..=4 => Ok(true),
            _ => Err(self.failed(StoreError::unexpected_reply("revocation check"))),
        }
    }

    async fn revoke_token(
        &self,
        subject: &str,
        jti: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.revoke("token revocation", self.token_key(subject, jti), expires_at)
            .await
    }

    async fn revoke_family(
        &self,
        subject: &str,
        sid: &str,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.revoke(
            "family revocation",
            self.family_key(subject, sid),
            expires_at,
        )
        .await
    }

    async fn revoke_subject(&self, subject: &str) -> Result<u64, StoreError> {
        let key = self.not_before_key(subject);
        let mut invocation = Call::new(&self.scripts.revoke_subject);
        invocation.key(&key).arg(self.retention);
        let (not_before, replicas): (u64, u32) =
            self.invoke("subject revocation", &invocation).await?;
        self.replicate("subject revocation", key.as_bytes(), replicas)
            .await?;
        super::log_subject_revoked(subject);
        Ok(not_before)
    }

    /// The later of the subject's `not_before` and its slot's epoch minus
    /// one second (a token issued before the epoch is refused too): what a
    /// login stamps its tokens past. Always `Some` once the epoch exists.
    async fn not_before(&self, subject: &str) -> Result<Option<u64>, StoreError> {
        self.ensure_epochs().await?;
        let mut invocation = Call::new(&self.scripts.not_before);
        invocation
            .key(self.not_before_key(subject))
            .key(self.epoch_key(subject))
            .arg(self.epoch_ttl_ms);
        let (at, lost): (u64, i64) = self.invoke("not_before read", &invocation).await?;
        if lost != 0 {
            self.epoch.losses.fetch_add(1, Ordering::Relaxed);
            log_data_lost(1);
        }
        Ok(Some(at))
    }
}

/// The one event of a store found without its epoch sentinels: Redis lost
/// the revocations (or is used for the first time). Fail closed: a new
/// epoch starts, and every token issued before it is refused.
fn log_data_lost(slots: usize) {
    tracing::error!(
        event = palisade_errors::SecurityEvent::StoreUnavailable.as_str(),
        reason = "data_lost",
        store = "revocation",
        slots,
        "revocation store lost its data (Redis restarted without persistence, was flushed or \
         evicted keys; or is new): a new epoch starts, every token issued before it is refused"
    );
}

/// A duration in whole milliseconds (saturating).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
