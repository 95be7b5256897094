//! The Redis store (feature `redis`): every instance shares one limit.

use std::sync::Arc;
use std::time::Duration;

use palisade_errors::redis::{Call, RedisConnection};
use redis::Script;

use crate::gcra::{self, Decision, Mode, State};
use crate::quota::{MAX_QUOTAS, Policy};
use crate::redis_support::{self, hex, query};
use crate::store::RateStore;
use crate::{ConfigError, StoreError, Timestamp};

/// Default timeout of every Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The GCRA step for every quota of a policy, atomically, in one round trip
/// (the arithmetic of `gcra::decide`, with its clamp: a stored time more
/// than the capacity ahead of now, after a clock step back, counts as now
/// plus the capacity, and a refusal stores it so).
/// `__NOW__` is Redis' own clock (`TIME`): instances with skewed clocks, or a
/// client lying about the time, cannot change the limit. Integers are written
/// with `%.0f`: `tostring` would round microsecond timestamps to 14 digits.
const SCRIPT_BODY: &str = r"
local cost = tonumber(ARGV[1])
local consume = ARGV[2] == '1'
local n = tonumber(ARGV[3])
local now = __NOW__
local fields = {}
for i = 1, n do fields[i] = tostring(i) end
local stored = redis.call('HMGET', KEYS[1], unpack(fields))
local allowed = 1
local new = {}
local held = {}
local clamped = false
local furthest = now
local held_furthest = now
local reply = {now}
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local capacity = tonumber(ARGV[3 + 2 * i])
  local old = tonumber(stored[i]) or 0
  reply[i + 2] = old
  local horizon = now + capacity
  held[i] = old
  if old > horizon then
    held[i] = horizon
    clamped = true
  end
  if held[i] > held_furthest then held_furthest = held[i] end
  local tat = held[i]
  if tat < now then tat = now end
  local next_tat = tat + cost * interval
  if next_tat > horizon then allowed = 0 end
  new[i] = next_tat
  if next_tat > furthest then furthest = next_tat end
end
reply[2] = allowed
local write = nil
if consume and allowed == 1 then
  write = new
elseif consume and clamped then
  write = held
  furthest = held_furthest
end
if write then
  local args = {}
  for i = 1, n do
    args[#args + 1] = tostring(i)
    args[#args + 1] = string.format('%.0f', write[i])
  end
  redis.call('HSET', KEYS[1], unpack(args))
  redis.call('PEXPIRE', KEYS[1], math.floor((furthest - now) / 1000) + 1)
end
return reply
";

const SERVER_TIME: &str = "(function() local t = redis.call('TIME') return tonumber(t[1]) * 1000000 + tonumber(t[2]) end)()";

/// Rate-limit state in Redis, shared by every instance of the service.
///
/// - One round trip per decision: a Lua script (loaded once, called with
///   `EVALSHA`, reloaded on `NOSCRIPT`) runs the GCRA step for every quota
///   of the policy atomically, on Redis server time.
/// - Keys `palisade:rl:{<16 hex>}<48 hex>` (the SHA-256 of limiter and key)
///   with a TTL of the time until the state has recovered, so Redis holds
///   live state only, of fixed size per key, and no user input can choose
///   the Cluster slot (a `}` in a key is just hashed).
/// - Every call has a timeout (default 50 ms), the only bound on it: the
///   connection made by [`connect`](Self::connect) has no response timeout
///   of its own. Use one store (one multiplexed [`RedisConnection`], which
///   reconnects by itself) per process; clones share it.
/// - Failover (a Redis Cluster, or a master with replicas): writes are not
///   waited on (`WAIT`), so a failover can lose the state of the keys
///   written after the master's last replication — those clients get a
///   fresh quota once, which costs accuracy, not safety. While a dead
///   master's slots have no master yet, its decisions are store failures
///   (the limiter's fallback or fail mode decides), then the connection
///   follows the promoted replica by itself.
#[derive(Clone)]
pub struct RedisStore {
    connection: RedisConnection,
    prefix: Arc<str>,
    timeout: Duration,
    script: Arc<Script>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store over an existing connection: a [`RedisConnection`] (single
    /// node or Cluster) or a `redis::aio::ConnectionManager`.
    pub fn new(connection: impl Into<RedisConnection>) -> RedisStore {
        RedisStore {
            connection: connection.into(),
            prefix: Arc::from("palisade:rl"),
            timeout: DEFAULT_TIMEOUT,
            script: Arc::new(Script::new(&SCRIPT_BODY.replace("__NOW__", SERVER_TIME))),
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`) now: fails when
    /// Redis cannot be reached. The connection has a 1 s connection timeout
    /// and no response timeout of its own (the store's
    /// [`with_timeout`](Self::with_timeout) bounds every call), and
    /// reconnects by itself.
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        Ok(RedisStore::new(redis_support::connect(url).await?))
    }

    /// Connects to `url` lazily: the service starts even while Redis is
    /// down, and the connection comes up by itself when it is back (settings
    /// as for [`connect`](Self::connect)). Call it inside a Tokio runtime
    /// (the connection's driver is spawned on it). Fails only on a URL that
    /// does not parse.
    pub fn connect_lazy(url: &str) -> Result<RedisStore, StoreError> {
        Ok(RedisStore::new(redis_support::connect_lazy(url)?))
    }

    /// The key prefix (default `palisade:rl`); tests use one per test.
    /// Refused: empty, braces (one would become every key's Cluster hash
    /// tag and put all of them on one slot), whitespace, control characters,
    /// over 100 bytes.
    pub fn with_key_prefix(mut self, prefix: &str) -> Result<RedisStore, ConfigError> {
        redis_support::check_prefix("rate-limit Redis", prefix)?;
        self.prefix = Arc::from(prefix);
        Ok(self)
    }

    /// The bound on each call (default 50 ms).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> RedisStore {
        self.timeout = timeout;
        self
    }

    /// The SHA1 of the decision script (what `EVALSHA` calls), for
    /// operators checking `SCRIPT EXISTS` and for benchmarks.
    pub fn script_sha(&self) -> &str {
        self.script.get_hash()
    }

    /// The Redis key holding `key`'s state: `<prefix>:{<16 hex>}<48 hex>`,
    /// the SHA-256 of the key. Fixed length, whatever the key (a route or an
    /// identity a client influences), no user text in Redis, and a Cluster
    /// hash tag no input can choose; two keys share state only if SHA-256
    /// collides.
    pub fn redis_key(&self, key: &str) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let (tag, rest) = digest.split_at(8);
        format!("{}:{{{}}}{}", self.prefix, hex(tag), hex(rest))
    }

    async fn run(
        &self,
        script: &Script,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
        now: Option<Timestamp>,
    ) -> Result<Decision, StoreError> {
        let mut call = Call::new(script);
        call.key(self.redis_key(key))
            .arg(cost)
            .arg(u8::from(mode == Mode::Consume))
            .arg(policy.quotas().len());
        for quota in policy.quotas() {
            call.arg(quota.emission_interval()).arg(quota.capacity());
        }
        if let Some(now) = now {
            call.arg(now.as_micros());
        }
        let reply: Vec<i64> = call
            .invoke(&self.connection, self.timeout, "rate-limit decision")
            .await?;
        let (now, allowed, stored) = match reply.as_slice() {
            [now, allowed, stored @ ..] if stored.len() == policy.quotas().len() => {
                (*now, *allowed, stored)
            }
            _ => return Err(StoreError::unexpected_reply("rate-limit decision")),
        };
        let mut state: State = [0; MAX_QUOTAS];
        for (slot, &tat) in state.iter_mut().zip(stored) {
            *slot = u64::try_from(tat).unwrap_or(0);
        }
        let now = Timestamp(u64::try_from(now).unwrap_or(0));
        // The script wrote what `gcra::decide` computes from the same state
        // and time; computing the decision here keeps one implementation of
        // the arithmetic for the numbers clients see.
        let (decision, _) = gcra::decide(&state, now, policy, cost, mode);
        if decision.allowed != (allowed == 1) {
            return Err(StoreError::unexpected_reply(
                "rate-limit decision (the script and gcra::decide disagree)",
            ));
        }
        Ok(decision)
    }

    /// Decides as the production script does, but at the given time instead
    /// of Redis' clock: for equivalence tests against the memory store. Only
    /// with the `test-util` feature in debug builds; a client-supplied time
    /// in production would let a caller pick the time and skip its limit.
    #[cfg(all(feature = "test-util", debug_assertions))]
    pub async fn decide_at(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
        now: Timestamp,
    ) -> Result<Decision, StoreError> {
        let time_from_argument = format!("tonumber(ARGV[4 + 2 * {}])", policy.quotas().len());
        let script = Script::new(&SCRIPT_BODY.replace("__NOW__", &time_from_argument));
        self.run(&script, key, policy, cost, mode, Some(now)).await
    }
}

impl RateStore for RedisStore {
    async fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> Result<Decision, StoreError> {
        self.run(&self.script, key, policy, cost, mode, None).await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let key = self.redis_key(key);
        let _deleted: i64 = query(
            &self.connection,
            self.timeout,
            "rate-limit reset",
            redis::cmd("DEL").arg(key),
        )
        .await?;
        Ok(())
    }
}
