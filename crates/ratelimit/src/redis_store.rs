//! The Redis store (feature `redis`): every instance shares one limit.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, Script};

use crate::gcra::{self, Decision, Mode, State};
use crate::quota::{MAX_QUOTAS, Policy};
use crate::store::RateStore;
use crate::{StoreError, Timestamp};

/// Default timeout of every Redis call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// The GCRA step for every quota of a policy, atomically, in one round trip.
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
local furthest = now
local reply = {now}
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local capacity = tonumber(ARGV[3 + 2 * i])
  local old = tonumber(stored[i]) or 0
  reply[i + 2] = old
  local tat = old
  if tat < now then tat = now end
  local next_tat = tat + cost * interval
  if next_tat > now + capacity then allowed = 0 end
  new[i] = next_tat
  if next_tat > furthest then furthest = next_tat end
end
reply[2] = allowed
if allowed == 1 and consume then
  local args = {}
  for i = 1, n do
    args[#args + 1] = tostring(i)
    args[#args + 1] = string.format('%.0f', new[i])
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
/// - Every call has a timeout (default 50 ms). Use one store (one multiplexed
///   [`ConnectionManager`], which reconnects by itself) per process; clones
///   share it.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
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
    /// A store over an existing connection manager.
    pub fn new(connection: ConnectionManager) -> RedisStore {
        RedisStore {
            connection,
            prefix: Arc::from("palisade:rl"),
            timeout: DEFAULT_TIMEOUT,
            script: Arc::new(Script::new(&SCRIPT_BODY.replace("__NOW__", SERVER_TIME))),
        }
    }

    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/0`) lazily: the
    /// service starts even while Redis is down, and the manager reconnects
    /// when it is back. Connection and response timeouts are `timeout`, with
    /// one reconnection attempt per call, so a dead Redis costs one timeout,
    /// not the client's default retry schedule. Call it inside a Tokio
    /// runtime (the manager's driver is spawned on it).
    pub fn connect_lazy(url: &str, timeout: Duration) -> Result<RedisStore, StoreError> {
        let client = Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisStore::new(connection).timeout(timeout))
    }

    /// The key prefix (default `palisade:rl`); tests use one per test.
    /// Braces are replaced by `_`: one in the prefix would become every
    /// key's hash tag and put all of them on one Cluster slot.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix: String = prefix
            .into()
            .chars()
            .map(|c| if c == '{' || c == '}' { '_' } else { c })
            .collect();
        self.prefix = Arc::from(prefix);
        self
    }

    /// The timeout of each call (default 50 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
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
        let mut invocation = script.key(self.redis_key(key));
        invocation
            .arg(cost)
            .arg(u8::from(mode == Mode::Consume))
            .arg(policy.quotas().len());
        for quota in policy.quotas() {
            invocation
                .arg(quota.emission_interval())
                .arg(quota.capacity());
        }
        if let Some(now) = now {
            invocation.arg(now.as_micros());
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| StoreError::timeout("redis rate-limit script"))??;
        let (now, allowed, stored) = match reply.as_slice() {
            [now, allowed, stored @ ..] if stored.len() == policy.quotas().len() => {
                (*now, *allowed, stored)
            }
            _ => return Err(StoreError::new("redis rate-limit script: unexpected reply")),
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
            return Err(StoreError::new(
                "redis rate-limit script and gcra::decide disagree",
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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
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
        let mut connection = self.connection.clone();
        let key = self.redis_key(key);
        tokio::time::timeout(
            self.timeout,
            redis::cmd("DEL").arg(key).exec_async(&mut connection),
        )
        .await
        .map_err(|_| StoreError::timeout("redis DEL"))??;
        Ok(())
    }
}
