//! The Redis login store (feature `redis`): every instance shares the counts.

use std::sync::Arc;
use std::time::Duration;

use palisade_errors::redis::{Call, RedisConnection};
use redis::{FromRedisValue, Script};

use super::decide::MAX_COUNT;
use super::{
    AccountKey, DeviceKey, IdHasher, IpKey, LoginRules, LoginStore, LoginVerdict, ThrottleReason,
};
use crate::redis_support;
use crate::{ConfigError, StoreError, Timestamp};

/// Default timeout of every Redis call.
pub const DEFAULT_LOGIN_REDIS_TIMEOUT: Duration = Duration::from_millis(50);

/// Default key prefix.
pub const DEFAULT_LOGIN_KEY_PREFIX: &str = "palisade:login";

/// Redis' own clock. Instances with skewed clocks, or a caller picking the
/// time, cannot move a backoff.
const SERVER_TIME: &str = "(function() local t = redis.call('TIME') \
     return tonumber(t[1]) * 1000000 + tonumber(t[2]) end)()";

/// Every script receives the caller's time as `ARGV[1]` (so argument
/// positions do not depend on the variant); production scripts ignore it.
/// Integers are written with `%.0f`: `tostring` would round microsecond
/// timestamps to 14 significant digits.
const PRELUDE: &str = r"
local now = __NOW__
local function int(x) return string.format('%.0f', x) end
";

/// KEYS: account state (hash tat, slowed), the (account, IP) pair (hash n,
/// last), optionally the trusted-device marker.
/// ARGV: time, free failures, max backoff, failure memory, account window,
/// account interval, slowdown, max count (microseconds), challenge during
/// the slowdown (1 or 0), a trusted device's failure budget.
/// The same steps as `decide::check_account`, and as `MemoryLoginStore` the
/// trusted device's count of attempts since its last success (the marker's
/// value; `INCR` keeps its TTL). Returns {0, 0} (allow), {4, 0} (challenge)
/// or {reason code, wait}.
const CHECK_ACCOUNT: &str = r"
local free = tonumber(ARGV[2])
local max_backoff = tonumber(ARGV[3])
local memory = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local interval = tonumber(ARGV[6])
local slowdown = tonumber(ARGV[7])
local max_count = tonumber(ARGV[8])
local challenge = ARGV[9] == '1'
local trusted = false
if #KEYS >= 3 then
  local device_failures = tonumber(redis.call('GET', KEYS[3]) or '')
  trusted = device_failures ~= nil and device_failures < tonumber(ARGV[10])
end
local pair = redis.call('HMGET', KEYS[2], 'n', 'last')
local n = tonumber(pair[1]) or 0
local last = tonumber(pair[2]) or 0
if n >= free then
  local backoff = max_backoff
  local exponent = n - free
  if exponent < 40 then backoff = math.min(2 ^ exponent * 1000000, max_backoff) end
  local blocked_until = last + backoff
  if now < blocked_until then return {1, blocked_until - now} end
end
local account = redis.call('HMGET', KEYS[1], 'tat', 'slowed')
local tat = tonumber(account[1]) or 0
local slowed = tonumber(account[2])
local pass = 0
if tat > now + window - interval then
  if not trusted then
    if slowed and now < slowed + slowdown then
      if not challenge then return {3, slowed + slowdown - now} end
      pass = 4
    else
      slowed = now
    end
  end
end
if trusted then redis.call('INCR', KEYS[3]) end
n = math.min(n + 1, max_count)
redis.call('HSET', KEYS[2], 'n', int(n), 'last', int(now))
redis.call('PEXPIRE', KEYS[2], int(math.ceil(memory / 1000)))
if tat < now then tat = now end
tat = math.min(tat + interval, now + 2 * window)
local keep = tat
if slowed then
  redis.call('HSET', KEYS[1], 'tat', int(tat), 'slowed', int(slowed))
  if slowed + slowdown > keep then keep = slowed + slowdown end
else
  redis.call('HSET', KEYS[1], 'tat', int(tat))
end
redis.call('PEXPIRE', KEYS[1], int(math.floor((keep - now) / 1000) + 1))
return {pass, 0}
";

/// KEYS: account state, pair, optional trusted-device marker. ARGV: time,
/// trusted TTL, account interval, slowdown (microseconds).
/// The same steps as `MemoryLoginStore`'s success with
/// `decide::account_after_success`: the pair goes, the account gets the
/// successful attempt back and keeps every other failure.
const ACCOUNT_SUCCESS: &str = r"
redis.call('DEL', KEYS[2])
local account = redis.call('HMGET', KEYS[1], 'tat', 'slowed')
local tat = tonumber(account[1])
if tat then
  tat = tat - tonumber(ARGV[3])
  if tat <= now then
    redis.call('DEL', KEYS[1])
  else
    local keep = tat
    local slowed = tonumber(account[2])
    if slowed and slowed + tonumber(ARGV[4]) > keep then keep = slowed + tonumber(ARGV[4]) end
    redis.call('HSET', KEYS[1], 'tat', int(tat))
    redis.call('PEXPIRE', KEYS[1], int(math.floor((keep - now) / 1000) + 1))
  end
end
local ttl = math.floor(tonumber(ARGV[2]) / 1000)
if ttl > 0 and #KEYS >= 3 then
  redis.call('SET', KEYS[3], '0', 'PX', int(ttl))
end
return 1
";

/// KEYS: the IP's budget (its GCRA time). ARGV: time, window, interval.
const CHECK_IP: &str = r"
local window = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or 0
local limit = now + window - interval
if tat > limit then return {2, tat - limit} end
if tat < now then tat = now end
tat = math.min(tat + interval, now + 2 * window)
redis.call('SET', KEYS[1], int(tat), 'PX', int(math.floor((tat - now) / 1000) + 1))
return {0, 0}
";

/// KEYS: the IP's budget. ARGV: time, interval.
const REFUND_IP: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
tat = tat - tonumber(ARGV[2])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], int(tat), 'PX', int(math.floor((tat - now) / 1000) + 1))
end
return 1
";

struct Scripts {
    check_account: Script,
    account_success: Script,
    check_ip: Script,
    refund_ip: Script,
}

impl Scripts {
    fn with_time(now: &str) -> Scripts {
        let build = |body: &str| Script::new(&format!("{}{body}", PRELUDE.replace("__NOW__", now)));
        Scripts {
            check_account: build(CHECK_ACCOUNT),
            account_success: build(ACCOUNT_SUCCESS),
            check_ip: build(CHECK_IP),
            refund_ip: build(REFUND_IP),
        }
    }
}

/// Login state in Redis, shared by every instance of the service.
///
/// - One round trip per step: each [`LoginStore`] method is one Lua script
///   (loaded once, called with `EVALSHA`, reloaded on `NOSCRIPT`), atomic,
///   on Redis server time.
/// - Keys never contain what users typed: accounts and devices appear as
///   keyed hashes ([`IdHasher`], from a secret every instance shares), IPs
///   in their canonical form. One account's keys share the Cluster hash tag
///   `{<account hash>}` (`<prefix>:{<16 hex>}:acct`, `...:pair:<ip>`,
///   `...:tdev:<device hash>`), so its check is one script
///   on one slot; an IP's budget across accounts is
///   `<prefix>:{<16 hex>}:budget` (a keyed hash of the IP), on its own
///   slot, and so a separate call (the throttle gives back what the first
///   call counted when the second refuses). Every key has a TTL: Redis
///   holds live state only.
/// - Every call has a timeout (default 50 ms), the only bound on it: the
///   connection made by [`connect`](Self::connect) has no response timeout
///   of its own. Use one store (one multiplexed, reconnecting connection)
///   per process; clones share it.
///
/// ```no_run
/// use palisade_ratelimit::login::{IdHasher, LoginThrottle, LoginThrottleConfig, RedisLoginStore};
///
/// # async fn run(secret: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
/// let hasher = IdHasher::from_secret(secret)?;
/// let store = RedisLoginStore::connect("redis://127.0.0.1:6379/0", hasher).await?;
/// let throttle = LoginThrottle::new(store, LoginThrottleConfig::default())?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisLoginStore {
    connection: RedisConnection,
    prefix: Arc<str>,
    timeout: Duration,
    hasher: IdHasher,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisLoginStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLoginStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLoginStore {
    /// A store over an existing connection, single node or Cluster (share the process's
    /// one connection; give it no response timeout, so that
    /// [`with_timeout`](Self::with_timeout) is the bound on each call).
    /// `id_secret` keys the hash of usernames, devices and IPs (see
    /// [`IdHasher::from_secret`]): every instance sharing this Redis must be
    /// given the same secret, at least 16 random bytes. (Unlike other
    /// stores it is an argument: a random default would give each instance
    /// its own counts without a word.)
    pub fn new(
        connection: impl Into<RedisConnection>,
        id_secret: &[u8],
    ) -> Result<RedisLoginStore, ConfigError> {
        Ok(RedisLoginStore::with_hasher(
            connection.into(),
            IdHasher::from_secret(id_secret)?,
        ))
    }

    /// Connects to `url` now (fails when Redis cannot be reached): a 1 s
    /// connection timeout, no response timeout of its own, reconnecting by
    /// itself. `id_hasher` is [`IdHasher::from_secret`] of the secret every
    /// instance shares (so a short secret fails as a [`ConfigError`] before
    /// any connection is tried).
    ///
    /// ```no_run
    /// use palisade_ratelimit::login::{IdHasher, RedisLoginStore};
    ///
    /// # async fn run(secret: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// let hasher = IdHasher::from_secret(secret)?;
    /// let store = RedisLoginStore::connect("redis://127.0.0.1:6379/0", hasher).await?
    ///     .with_key_prefix("myapp:login")?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str, id_hasher: IdHasher) -> Result<RedisLoginStore, StoreError> {
        let connection = redis_support::connect(url).await?;
        Ok(RedisLoginStore::with_hasher(connection, id_hasher))
    }

    /// Connects to `url` lazily: the service starts while Redis is down and
    /// the connection comes up by itself (settings as for
    /// [`connect`](Self::connect)). Needs a Tokio runtime. Fails only on a
    /// URL that does not parse.
    pub fn connect_lazy(url: &str, id_hasher: IdHasher) -> Result<RedisLoginStore, StoreError> {
        let connection = redis_support::connect_lazy(url)?;
        Ok(RedisLoginStore::with_hasher(connection, id_hasher))
    }

    fn with_hasher(connection: RedisConnection, hasher: IdHasher) -> RedisLoginStore {
        RedisLoginStore {
            connection,
            prefix: Arc::from(DEFAULT_LOGIN_KEY_PREFIX),
            timeout: DEFAULT_LOGIN_REDIS_TIMEOUT,
            hasher,
            scripts: Arc::new(Scripts::with_time(SERVER_TIME)),
        }
    }

    /// The key prefix (default `palisade:login`); tests use one per test.
    /// Refused: empty, braces (they would move the Cluster hash tag),
    /// whitespace, control characters, over 100 bytes.
    pub fn with_key_prefix(mut self, prefix: &str) -> Result<RedisLoginStore, ConfigError> {
        redis_support::check_prefix("login Redis", prefix)?;
        self.prefix = Arc::from(prefix);
        Ok(self)
    }

    /// The bound on each call (default 50 ms).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> RedisLoginStore {
        self.timeout = timeout;
        self
    }

    /// Runs the scripts at the time the throttle's clock gives instead of
    /// Redis' clock, so tests can drive a [`ManualClock`](crate::ManualClock)
    /// through hours of backoff in milliseconds. Only with the `test-util`
    /// feature in debug builds: a client-chosen time in production would let
    /// a caller skip its backoff.
    #[cfg(all(feature = "test-util", debug_assertions))]
    #[must_use]
    pub fn with_caller_time_for_tests(mut self) -> RedisLoginStore {
        self.scripts = Arc::new(Scripts::with_time("tonumber(ARGV[1])"));
        self
    }

    fn account_key(&self, account: AccountKey, suffix: std::fmt::Arguments<'_>) -> String {
        format!("{}:{{{account}}}:{suffix}", self.prefix)
    }

    fn account_keys(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
    ) -> Vec<String> {
        let mut keys = vec![
            self.account_key(account, format_args!("acct")),
            self.account_key(account, format_args!("pair:{ip}")),
        ];
        if let Some(device) = device {
            keys.push(self.account_key(account, format_args!("tdev:{device}")));
        }
        keys
    }

    fn ip_key(&self, ip: IpKey) -> String {
        format!("{}:{{{:016x}}}:budget", self.prefix, self.hasher.ip(ip))
    }

    async fn run<T: FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: Call<'_>,
    ) -> Result<T, StoreError> {
        invocation
            .invoke(&self.connection, self.timeout, operation)
            .await
    }
}

/// `{code, microseconds}` from a check script.
fn verdict(operation: &'static str, (code, wait): (i64, i64)) -> Result<LoginVerdict, StoreError> {
    let reason = match code {
        0 => return Ok(LoginVerdict::Allow),
        1 => ThrottleReason::AccountIpBackoff,
        2 => ThrottleReason::IpFailureBudget,
        3 => ThrottleReason::AccountSlowdown,
        4 if wait == 0 => {
            return Ok(LoginVerdict::Challenge {
                reason: ThrottleReason::AccountSlowdown,
            });
        }
        _ => return Err(StoreError::unexpected_reply(operation)),
    };
    match u64::try_from(wait) {
        Ok(wait) if wait > 0 => Ok(LoginVerdict::Refuse {
            reason,
            retry_after: Duration::from_micros(wait),
        }),
        _ => Err(StoreError::unexpected_reply(operation)),
    }
}

impl LoginStore for RedisLoginStore {
    fn id_hasher(&self) -> &IdHasher {
        &self.hasher
    }

    async fn check_ip(
        &self,
        ip: IpKey,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<LoginVerdict, StoreError> {
        let mut invocation = Call::new(&self.scripts.check_ip);
        invocation.key(self.ip_key(ip));
        invocation
            .arg(now.as_micros())
            .arg(rules.ip_window)
            .arg(rules.ip_interval);
        let reply = self.run("login check_ip", invocation).await?;
        verdict("login check_ip", reply)
    }

    async fn refund_ip(
        &self,
        ip: IpKey,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut invocation = Call::new(&self.scripts.refund_ip);
        invocation.key(self.ip_key(ip));
        invocation.arg(now.as_micros()).arg(rules.ip_interval);
        let _: i64 = self.run("login refund_ip", invocation).await?;
        Ok(())
    }

    async fn check_account(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<LoginVerdict, StoreError> {
        let mut invocation = Call::new(&self.scripts.check_account);
        for key in self.account_keys(account, ip, device) {
            invocation.key(key);
        }
        invocation
            .arg(now.as_micros())
            .arg(rules.free_failures)
            .arg(rules.max_backoff)
            .arg(rules.failure_memory)
            .arg(rules.account_window)
            .arg(rules.account_interval)
            .arg(rules.account_slowdown)
            .arg(MAX_COUNT)
            .arg(u8::from(rules.challenge_during_slowdown))
            .arg(rules.trusted_failures);
        let reply = self.run("login check_account", invocation).await?;
        verdict("login check_account", reply)
    }

    async fn record_account_success(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut invocation = Call::new(&self.scripts.account_success);
        for key in self.account_keys(account, ip, device) {
            invocation.key(key);
        }
        invocation
            .arg(now.as_micros())
            .arg(rules.trusted_ttl)
            .arg(rules.account_interval)
            .arg(rules.account_slowdown);
        let _: i64 = self.run("login record_account_success", invocation).await?;
        Ok(())
    }
}
