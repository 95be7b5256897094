//! Login throttling and lockout that cannot be turned against the real user.
//!
//! [`LoginThrottle::check`] runs **before** the password is verified and
//! answers 429 with `Retry-After` straight away (the server never sleeps, so
//! a throttled attacker costs no worker). It applies three rules:
//!
//! 1. **Per (account, IP)** — online guessing: the first
//!    [`free_failures_per_account_ip`](LoginThrottleConfig::free_failures_per_account_ip)
//!    (5) failures are free; after the n-th consecutive failure (n ≥ 5) that
//!    account is refused to that IP for 2^(n−5) seconds (1, 2, 4, 8 s, ...),
//!    capped at [`max_backoff_secs`](LoginThrottleConfig::max_backoff_secs)
//!    (1 h).
//! 2. **Per account, all IPs** — distributed guessing: once the account has
//!    had [`account_failure_threshold`](LoginThrottleConfig::account_failure_threshold)
//!    (20) failures per [`account_window_secs`](LoginThrottleConfig::account_window_secs)
//!    (15 min), attempts on it slow down to one per
//!    [`account_slowdown_secs`](LoginThrottleConfig::account_slowdown_secs)
//!    (10 s). It is a slowdown, never a lock, and it does not apply to an IP
//!    or device that logged into the account within
//!    [`trusted_device_ttl_secs`](LoginThrottleConfig::trusted_device_ttl_secs)
//!    (30 days): a botnet cannot lock the real user out.
//! 3. **Per IP, all accounts** — credential stuffing: an IP gets
//!    [`ip_failures_per_window`](LoginThrottleConfig::ip_failures_per_window)
//!    (100) failures per [`ip_window_secs`](LoginThrottleConfig::ip_window_secs)
//!    (24 h).
//!
//! The throttle knows nothing about which accounts exist: it is keyed by the
//! username *as submitted*, so an unknown username is counted and refused
//! exactly like a real one and 429-versus-401 reveals nothing.
//!
//! # Counting attempts, not reported failures
//!
//! `check` counts the attempt it lets through as a failure right away, in the
//! same atomic step as the decision; [`record_success`](LoginThrottle::record_success)
//! takes it back. Were failures counted only when reported after the
//! (deliberately slow) password check, an attacker could send a thousand
//! guesses in parallel and all of them would pass `check` before the first
//! failure was recorded. An attempt that never reaches the password check
//! (the client hangs up) therefore counts as a failure: the strict side.
//!
//! The two rate rules are GCRA budgets (the algorithm of the request
//! limiter): "20 per 15 minutes" is a budget of 20 that refills by one every
//! 45 s, so a burst of 20 failures starts the slowdown, which lasts as long as
//! failures keep coming faster than the budget refills and ends at most one
//! window after they stop.
//!
//! # Where the state lives
//!
//! [`MemoryLoginStore`] (bounded, one process) or, with the `redis` feature,
//! `RedisLoginStore` (shared by every instance, Redis server time). When the
//! store cannot answer the throttle fails closed by default: 503
//! `unavailable`, because letting every guess through while Redis is down is
//! what a brute-force attacker wants.
//!
//! ```
//! use std::net::IpAddr;
//! use palisade_ratelimit::login::{LoginThrottle, LoginThrottleConfig, MemoryLoginStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let throttle = LoginThrottle::new(MemoryLoginStore::new(), LoginThrottleConfig::default())?;
//! let ip: IpAddr = "203.0.113.7".parse()?;
//!
//! // Before the password is even looked at; a 429 carries Retry-After.
//! throttle.check("alice@example.com", ip, None).await?;
//! let password_ok = false; // verify the password here
//! if password_ok {
//!     throttle.record_success("alice@example.com", ip, None).await;
//! } else {
//!     throttle.record_failure("alice@example.com", ip).await;
//! }
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use palisade_errors::{Error, ErrorKind};
use serde::Deserialize;

use crate::{Clock, ConfigError, FailMode, StoreError, SystemClock, Timestamp};

mod keys;
mod memory;
#[cfg(feature = "redis")]
mod redis_store;

pub use keys::{AccountKey, DeviceKey, IdHasher, IpKey, MIN_ID_SECRET_LEN};
pub use memory::{DEFAULT_MAX_LOGIN_ENTRIES, MemoryLoginStore};
#[cfg(feature = "redis")]
pub use redis_store::{DEFAULT_LOGIN_KEY_PREFIX, DEFAULT_LOGIN_REDIS_TIMEOUT, RedisLoginStore};

const MICROS_PER_SEC: u64 = 1_000_000;
/// Counters stop here: beyond a million failures nothing changes (everything
/// is refused anyway), and Redis' Lua numbers stay exact.
const MAX_COUNT: u32 = 1_000_000;
const MAX_FREE_FAILURES: u32 = 1_000;
const MAX_BACKOFF_LIMIT_SECS: u64 = 30 * 86_400;
const MAX_MEMORY_SECS: u64 = 365 * 86_400;
const MAX_WINDOW_SECS: u64 = 7 * 86_400;
const MAX_SLOWDOWN_SECS: u64 = 86_400;
const MAX_TRUST_SECS: u64 = 400 * 86_400;

/// The login throttle's policy. Every duration is in whole seconds, so the
/// struct reads the same in code, TOML and environment variables.
///
/// ```
/// use palisade_ratelimit::FailMode;
/// use palisade_ratelimit::login::LoginThrottleConfig;
///
/// let config: LoginThrottleConfig =
///     serde_json::from_str(r#"{"free_failures_per_account_ip": 3, "fail_mode": "closed"}"#)?;
/// assert_eq!(config.free_failures_per_account_ip, 3);
/// assert_eq!(config.max_backoff_secs, 3600);
/// assert_eq!(config.fail_mode, FailMode::Closed);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginThrottleConfig {
    /// Consecutive failures per (account, IP) that cost nothing (default 5).
    /// After the n-th (n ≥ this), the pair waits 2^(n − this) seconds.
    pub free_failures_per_account_ip: u32,
    /// Longest wait of an (account, IP) pair (default 3600 s).
    pub max_backoff_secs: u64,
    /// How long an (account, IP) pair's consecutive failures are remembered
    /// after its last one (default 86400 s; at least `max_backoff_secs`).
    /// Shorter would let an attacker who pauses that long start again with
    /// free failures.
    pub failure_memory_secs: u64,
    /// The window of the account-wide failure budget (default 900 s).
    pub account_window_secs: u64,
    /// Failures per window, over all IPs, before the account slows down
    /// (default 20).
    pub account_failure_threshold: u32,
    /// During a slowdown, at most one untrusted attempt per this many seconds
    /// (default 10).
    pub account_slowdown_secs: u64,
    /// An IP or device that logged into an account skips that account's
    /// slowdown for this long (default 30 days; 0 turns trust off).
    pub trusted_device_ttl_secs: u64,
    /// Failures per IP, over all accounts, per window (default 100).
    pub ip_failures_per_window: u32,
    /// The window of the per-IP failure budget (default 86400 s).
    pub ip_window_secs: u64,
    /// What to do when the store cannot answer (default
    /// [`FailMode::Closed`]: 503).
    pub fail_mode: FailMode,
}

impl Default for LoginThrottleConfig {
    fn default() -> LoginThrottleConfig {
        LoginThrottleConfig {
            free_failures_per_account_ip: 5,
            max_backoff_secs: 3_600,
            failure_memory_secs: 86_400,
            account_window_secs: 900,
            account_failure_threshold: 20,
            account_slowdown_secs: 10,
            trusted_device_ttl_secs: 30 * 86_400,
            ip_failures_per_window: 100,
            ip_window_secs: 86_400,
            fail_mode: FailMode::Closed,
        }
    }
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(format!(
            "login throttle: {name} = {value} is outside {min}..={max}"
        )));
    }
    Ok(value)
}

impl LoginThrottleConfig {
    /// Checks the settings and turns them into [`LoginRules`]. A zero limit
    /// or window (which would refuse every login, or none) or a value beyond
    /// the documented bounds is an error naming the setting.
    pub fn rules(&self) -> Result<LoginRules, ConfigError> {
        let free_failures = in_range(
            "free_failures_per_account_ip",
            self.free_failures_per_account_ip,
            0,
            MAX_FREE_FAILURES,
        )?;
        let max_backoff = in_range(
            "max_backoff_secs",
            self.max_backoff_secs,
            1,
            MAX_BACKOFF_LIMIT_SECS,
        )?;
        let failure_memory = in_range(
            "failure_memory_secs (at least max_backoff_secs)",
            self.failure_memory_secs,
            max_backoff,
            MAX_MEMORY_SECS,
        )?;
        let account_window = in_range(
            "account_window_secs",
            self.account_window_secs,
            1,
            MAX_WINDOW_SECS,
        )?;
        let account_threshold = in_range(
            "account_failure_threshold",
            self.account_failure_threshold,
            1,
            MAX_COUNT,
        )?;
        let slowdown = in_range(
            "account_slowdown_secs",
            self.account_slowdown_secs,
            1,
            MAX_SLOWDOWN_SECS,
        )?;
        let trusted = in_range(
            "trusted_device_ttl_secs",
            self.trusted_device_ttl_secs,
            0,
            MAX_TRUST_SECS,
        )?;
        let ip_window = in_range("ip_window_secs", self.ip_window_secs, 1, MAX_WINDOW_SECS)?;
        let ip_limit = in_range(
            "ip_failures_per_window",
            self.ip_failures_per_window,
            1,
            MAX_COUNT,
        )?;
        let account_window = account_window * MICROS_PER_SEC;
        let ip_window = ip_window * MICROS_PER_SEC;
        Ok(LoginRules {
            free_failures,
            max_backoff: max_backoff * MICROS_PER_SEC,
            failure_memory: failure_memory * MICROS_PER_SEC,
            account_window,
            account_interval: account_window / u64::from(account_threshold),
            account_slowdown: slowdown * MICROS_PER_SEC,
            trusted_ttl: trusted * MICROS_PER_SEC,
            ip_window,
            ip_interval: ip_window / u64::from(ip_limit),
        })
    }
}

/// A checked [`LoginThrottleConfig`], in the units stores work in. Stores
/// receive it with every call; its accessors say what each rule means.
///
/// ```
/// use std::time::Duration;
/// use palisade_ratelimit::login::LoginThrottleConfig;
///
/// let rules = LoginThrottleConfig::default().rules()?;
/// assert_eq!(rules.backoff_after(4), None);
/// assert_eq!(rules.backoff_after(5), Some(Duration::from_secs(1)));
/// assert_eq!(rules.backoff_after(7), Some(Duration::from_secs(4)));
/// assert_eq!(rules.backoff_after(40), Some(Duration::from_secs(3600)));
/// # Ok::<(), palisade_ratelimit::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRules {
    free_failures: u32,
    // All durations in microseconds.
    max_backoff: u64,
    failure_memory: u64,
    account_window: u64,
    account_interval: u64,
    account_slowdown: u64,
    trusted_ttl: u64,
    ip_window: u64,
    ip_interval: u64,
}

impl LoginRules {
    /// Consecutive failures of an (account, IP) pair that cost nothing.
    pub fn free_failures(&self) -> u32 {
        self.free_failures
    }

    /// How long an (account, IP) pair is refused after `failures`
    /// consecutive failures, counted from the last one: `None` while they are
    /// free, then 2^(failures − free) seconds up to the maximum.
    pub fn backoff_after(&self, failures: u32) -> Option<Duration> {
        self.backoff_micros(failures).map(Duration::from_micros)
    }

    /// How long a pair's failures are remembered after the last one.
    pub fn failure_memory(&self) -> Duration {
        Duration::from_micros(self.failure_memory)
    }

    /// The account-wide budget's window.
    pub fn account_window(&self) -> Duration {
        Duration::from_micros(self.account_window)
    }

    /// The account-wide budget refills one failure per this interval
    /// (window ÷ threshold).
    pub fn account_interval(&self) -> Duration {
        Duration::from_micros(self.account_interval)
    }

    /// During a slowdown, the gap between two untrusted attempts.
    pub fn account_slowdown(&self) -> Duration {
        Duration::from_micros(self.account_slowdown)
    }

    /// How long a successful login trusts its IP and device for the account
    /// (zero: never).
    pub fn trusted_ttl(&self) -> Duration {
        Duration::from_micros(self.trusted_ttl)
    }

    /// The per-IP budget's window.
    pub fn ip_window(&self) -> Duration {
        Duration::from_micros(self.ip_window)
    }

    /// The per-IP budget refills one failure per this interval.
    pub fn ip_interval(&self) -> Duration {
        Duration::from_micros(self.ip_interval)
    }

    pub(crate) fn backoff_micros(&self, failures: u32) -> Option<u64> {
        let exponent = failures.checked_sub(self.free_failures)?;
        let secs = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
        Some(secs.saturating_mul(MICROS_PER_SEC).min(self.max_backoff))
    }
}

/// The state and arithmetic shared by the stores. The memory store runs it
/// directly; the Redis scripts are the same steps in Lua, and the Redis tests
/// check both agree.
pub(crate) mod decide {
    use super::{LoginRules, MAX_COUNT};

    /// An (account, IP) pair: consecutive failures and when the last was.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Pair {
        pub(crate) failures: u32,
        pub(crate) last: u64,
    }

    /// An account: its failure budget's theoretical arrival time (GCRA) and
    /// when the last slowed attempt was let through.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Account {
        pub(crate) tat: u64,
        pub(crate) slowed_at: Option<u64>,
    }

    /// A refusal: why and for how many microseconds.
    pub(crate) type Refusal = (super::ThrottleReason, u64);

    /// When a GCRA budget of `window` refilling every `interval` has no
    /// failure left, the microseconds until it has one.
    pub(crate) fn exhausted(tat: u64, now: u64, window: u64, interval: u64) -> Option<u64> {
        // Invariant (validated): interval ≤ window.
        let limit = now.saturating_add(window - interval);
        (tat > limit).then(|| tat - limit)
    }

    /// The budget after one more failure. Capped at two windows ahead, so a
    /// burst of racing failures cannot extend a block without bound.
    pub(crate) fn charge(tat: u64, now: u64, window: u64, interval: u64) -> u64 {
        tat.max(now)
            .saturating_add(interval)
            .min(now.saturating_add(window.saturating_mul(2)))
    }

    /// The budget with one failure given back; `None` when it is full again.
    pub(crate) fn refund(tat: u64, now: u64, interval: u64) -> Option<u64> {
        let tat = tat.saturating_sub(interval);
        (tat > now).then_some(tat)
    }

    /// The account-side check, which also counts the attempt it allows. On
    /// success returns the new pair and account state.
    pub(crate) fn check_account(
        rules: &LoginRules,
        pair: Option<Pair>,
        account: Option<Account>,
        trusted: impl FnOnce() -> bool,
        now: u64,
    ) -> Result<(Pair, Account), Refusal> {
        let pair = pair.unwrap_or(Pair {
            failures: 0,
            last: 0,
        });
        if let Some(backoff) = rules.backoff_micros(pair.failures) {
            let until = pair.last.saturating_add(backoff);
            if now < until {
                return Err((super::ThrottleReason::AccountIpBackoff, until - now));
            }
        }
        let account = account.unwrap_or(Account {
            tat: 0,
            slowed_at: None,
        });
        let mut slowed_at = account.slowed_at;
        let slowed = exhausted(
            account.tat,
            now,
            rules.account_window,
            rules.account_interval,
        )
        .is_some();
        if slowed && !trusted() {
            if let Some(at) = slowed_at {
                let next = at.saturating_add(rules.account_slowdown);
                if now < next {
                    return Err((super::ThrottleReason::AccountSlowdown, next - now));
                }
            }
            slowed_at = Some(now);
        }
        let pair = Pair {
            failures: pair.failures.saturating_add(1).min(MAX_COUNT),
            last: now,
        };
        let account = Account {
            tat: charge(
                account.tat,
                now,
                rules.account_window,
                rules.account_interval,
            ),
            slowed_at,
        };
        Ok((pair, account))
    }
}

/// Why an attempt was refused.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThrottleReason {
    /// This (account, IP) pair is waiting out its backoff.
    AccountIpBackoff,
    /// This IP has used its failure budget across accounts.
    IpFailureBudget,
    /// The account is slowed down and this IP or device is not trusted.
    AccountSlowdown,
}

impl ThrottleReason {
    /// A stable snake_case name, for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::AccountIpBackoff => "account_ip_backoff",
            ThrottleReason::IpFailureBudget => "ip_failure_budget",
            ThrottleReason::AccountSlowdown => "account_slowdown",
        }
    }
}

/// A store's answer to a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginVerdict {
    /// Go on to the password check (the attempt has been counted).
    Allow,
    /// Refuse; nothing was counted.
    Refuse {
        /// Which rule refused.
        reason: ThrottleReason,
        /// How long until this rule would let the attempt through.
        retry_after: Duration,
    },
}

/// Where login state lives: the few atomic steps the throttle needs.
///
/// Every step is atomic per key family: one account's state (its budget,
/// its (account, IP) pairs, its trusted IPs and devices) in one step, one
/// IP's budget in another. The two families are separate so that Redis
/// Cluster can place each on one slot; the throttle orders the calls so that
/// a refusal by the second gives back what the first counted.
///
/// `now` is the throttle's clock. A store with a clock of its own (Redis'
/// server time) uses that instead, so instances with skewed clocks agree.
///
/// Implemented by [`MemoryLoginStore`] and, with the `redis` feature,
/// `RedisLoginStore`.
pub trait LoginStore: Send + Sync + 'static {
    /// The hasher that turns usernames and device ids into keys. Every
    /// process sharing the store's state must use the same one.
    fn id_hasher(&self) -> &IdHasher;

    /// Refuses when `ip` has no failure left in its budget across accounts;
    /// otherwise counts this attempt against the budget and allows.
    fn check_ip(
        &self,
        ip: IpKey,
        rules: &LoginRules,
        now: Timestamp,
    ) -> impl Future<Output = Result<LoginVerdict, StoreError>> + Send;

    /// Gives one failure back to `ip`'s budget (the attempt succeeded, or
    /// was refused by the account check after [`check_ip`](Self::check_ip)
    /// counted it).
    fn refund_ip(
        &self,
        ip: IpKey,
        rules: &LoginRules,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Refuses when the (account, ip) pair is in backoff, or when the
    /// account is slowed down, neither `ip` nor `device` is trusted for it
    /// and the last slowed attempt was less than the slowdown ago.
    /// Otherwise counts the attempt as a failure of the pair and the account,
    /// records it as the last slowed attempt when the account is slowed
    /// (so that concurrent attempts cannot all pass), and allows.
    fn check_account(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> impl Future<Output = Result<LoginVerdict, StoreError>> + Send;

    /// A successful login: forgets the account's budget and slowdown and the
    /// (account, ip) pair (other IPs' pairs stay), and trusts `ip` and
    /// `device` for the account for the rules' trusted TTL.
    fn record_account_success(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Throttles login attempts per (account, IP), per account and per IP; see
/// the [module documentation](self) for the rules.
///
/// Share one throttle (in an `Arc`) per process.
///
/// ```
/// use std::net::IpAddr;
/// use std::time::Duration;
/// use palisade_errors::ErrorKind;
/// use palisade_ratelimit::{ManualClock, Timestamp};
/// use palisade_ratelimit::login::{LoginThrottle, LoginThrottleConfig, MemoryLoginStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::new(Timestamp(1_700_000_000_000_000));
/// let config = LoginThrottleConfig { free_failures_per_account_ip: 1, ..Default::default() };
/// let throttle = LoginThrottle::with_clock(MemoryLoginStore::new(), config, clock.clone())?;
/// let ip: IpAddr = "198.51.100.1".parse()?;
///
/// throttle.check("mallory", ip, None).await?;
/// throttle.record_failure("mallory", ip).await;
/// let refused = throttle.check("mallory", ip, None).await.unwrap_err();
/// assert_eq!(refused.kind(), ErrorKind::RateLimited);
/// assert_eq!(refused.headers()["retry-after"], "1");
///
/// clock.advance(Duration::from_secs(1));
/// throttle.check("mallory", ip, None).await?;
/// # Ok(())
/// # }
/// ```
pub struct LoginThrottle<S: LoginStore, C: Clock = SystemClock> {
    store: S,
    rules: LoginRules,
    fail_mode: FailMode,
    clock: C,
    store_failures: AtomicU64,
}

impl<S: LoginStore, C: Clock> std::fmt::Debug for LoginThrottle<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("rules", &self.rules)
            .field("fail_mode", &self.fail_mode)
            .field("store_failures", &self.store_failures())
            .finish_non_exhaustive()
    }
}

impl<S: LoginStore> LoginThrottle<S> {
    /// A throttle on the system clock. Fails when the configuration is
    /// unusable (see [`LoginThrottleConfig::rules`]).
    pub fn new(store: S, config: LoginThrottleConfig) -> Result<LoginThrottle<S>, ConfigError> {
        LoginThrottle::with_clock(store, config, SystemClock)
    }
}

impl<S: LoginStore, C: Clock> LoginThrottle<S, C> {
    /// A throttle on the given clock (a [`ManualClock`](crate::ManualClock)
    /// in tests).
    pub fn with_clock(
        store: S,
        config: LoginThrottleConfig,
        clock: C,
    ) -> Result<LoginThrottle<S, C>, ConfigError> {
        Ok(LoginThrottle {
            rules: config.rules()?,
            fail_mode: config.fail_mode,
            store,
            clock,
            store_failures: AtomicU64::new(0),
        })
    }

    /// Decides whether a login attempt may go on to the password check.
    /// Call it **before** looking the user up or verifying the password.
    ///
    /// - `account`: the username or email exactly as submitted, normalized
    ///   the way the login lookup normalizes it (trimmed, case-folded...),
    ///   **never** the resolved user id: unknown usernames must be counted
    ///   exactly like known ones.
    /// - `ip`: the client address, already resolved from trusted proxies.
    /// - `device`: a device id the application has verified (for example
    ///   from a signed device cookie); never one taken unverified from the
    ///   request, or anyone could claim the victim's device.
    ///
    /// Errors: `rate_limited` (429) with `Retry-After` in whole seconds,
    /// rounded up so a client that waits that long is let through; or, when
    /// the store fails and the fail mode is closed, `unavailable` (503).
    /// Every refusal is logged as `event = "login_throttled"` with the reason,
    /// the account's key (a keyed hash, not the username) and the IP.
    pub async fn check(
        &self,
        account: &str,
        ip: IpAddr,
        device: Option<&str>,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let hasher = self.store.id_hasher();
        let account_key = hasher.account(account);
        let device_key = device.map(|device| hasher.device(device));
        let ip_key = IpKey::from(ip);

        // The IP first: the account check may use up the slowdown's one
        // attempt per 10 s, which a refusal by the IP budget would waste.
        match self.store.check_ip(ip_key, &self.rules, now).await {
            Ok(LoginVerdict::Allow) => {}
            Ok(LoginVerdict::Refuse {
                reason,
                retry_after,
            }) => return Err(throttled(reason, retry_after, account_key, ip_key)),
            Err(error) => {
                if let Some(refusal) = self.store_failed("check_ip", &error, account_key, ip_key) {
                    return Err(refusal);
                }
            }
        }
        match self
            .store
            .check_account(account_key, ip_key, device_key, &self.rules, now)
            .await
        {
            Ok(LoginVerdict::Allow) => Ok(()),
            Ok(LoginVerdict::Refuse {
                reason,
                retry_after,
            }) => {
                // The attempt never reaches the password: it is not one of
                // the IP's failures. (A user behind a shared NAT who retries
                // during a backoff must not drain the whole office's budget.)
                if let Err(error) = self.store.refund_ip(ip_key, &self.rules, now).await {
                    self.log_store_failure("refund_ip", &error, account_key, ip_key);
                }
                Err(throttled(reason, retry_after, account_key, ip_key))
            }
            Err(error) => match self.store_failed("check_account", &error, account_key, ip_key) {
                Some(refusal) => {
                    // Refused without a password check (fail closed): not
                    // one of the IP's failures either.
                    if let Err(error) = self.store.refund_ip(ip_key, &self.rules, now).await {
                        self.log_store_failure("refund_ip", &error, account_key, ip_key);
                    }
                    Err(refusal)
                }
                None => Ok(()),
            },
        }
    }

    /// The password (or the username) was wrong.
    ///
    /// [`check`](Self::check) has already counted the attempt as a failure
    /// (see the [module documentation](self)), so this records nothing more;
    /// it logs `event = "login_failed"` and keeps the calling code honest
    /// about both outcomes.
    pub async fn record_failure(&self, account: &str, ip: IpAddr) {
        tracing::info!(
            event = "login_failed",
            account = %self.store.id_hasher().account(account),
            ip = %IpKey::from(ip),
            "login failed"
        );
    }

    /// The password was right: resets the account-wide budget and slowdown
    /// and the (account, `ip`) pair's failures (other IPs' stay), gives the
    /// attempt back to `ip`'s budget and trusts `ip` and `device` for this
    /// account (they skip its slowdown) for the trusted TTL.
    ///
    /// Pass the same `account` string as to `check`. A store failure here is
    /// logged and counted but not returned: the login itself is valid.
    pub async fn record_success(&self, account: &str, ip: IpAddr, device: Option<&str>) {
        let now = self.clock.now();
        let hasher = self.store.id_hasher();
        let account_key = hasher.account(account);
        let device_key = device.map(|device| hasher.device(device));
        let ip_key = IpKey::from(ip);
        if let Err(error) = self
            .store
            .record_account_success(account_key, ip_key, device_key, &self.rules, now)
            .await
        {
            self.log_store_failure("record_account_success", &error, account_key, ip_key);
        }
        if let Err(error) = self.store.refund_ip(ip_key, &self.rules, now).await {
            self.log_store_failure("refund_ip", &error, account_key, ip_key);
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The checked policy.
    pub fn rules(&self) -> &LoginRules {
        &self.rules
    }

    /// What happens when the store cannot answer.
    pub fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    /// How many store calls have failed (timeouts, Redis down) since start.
    pub fn store_failures(&self) -> u64 {
        self.store_failures.load(Ordering::Relaxed)
    }

    /// Applies the fail mode: the 503 to answer when closed, `None` (go on)
    /// when open.
    fn store_failed(
        &self,
        operation: &'static str,
        error: &StoreError,
        account: AccountKey,
        ip: IpKey,
    ) -> Option<Error> {
        self.log_store_failure(operation, error, account, ip);
        match self.fail_mode {
            FailMode::Open => None,
            FailMode::Closed => Some(Error::new(ErrorKind::Unavailable).with_source(
                StoreError::new(format!("login throttle {operation}: {error}")),
            )),
        }
    }

    fn log_store_failure(
        &self,
        operation: &'static str,
        error: &StoreError,
        account: AccountKey,
        ip: IpKey,
    ) {
        self.store_failures.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            event = "login_store_unavailable",
            operation,
            fail_mode = ?self.fail_mode,
            account = %account,
            ip = %ip,
            error = %error,
            "login throttle store failed"
        );
    }
}

/// Whole seconds, rounded up: a client that waits `Retry-After` is never
/// early. At least 1 (a refusal always has time left).
fn retry_after_secs(retry_after: Duration) -> u64 {
    let secs = retry_after.as_micros().div_ceil(u128::from(MICROS_PER_SEC));
    u64::try_from(secs).unwrap_or(u64::MAX).max(1)
}

fn throttled(
    reason: ThrottleReason,
    retry_after: Duration,
    account: AccountKey,
    ip: IpKey,
) -> Error {
    let secs = retry_after_secs(retry_after);
    tracing::warn!(
        event = "login_throttled",
        reason = reason.as_str(),
        account = %account,
        ip = %ip,
        retry_after_secs = secs,
        "login attempt throttled"
    );
    Error::new(ErrorKind::RateLimited).with_retry_after(secs)
}

/// A store that fails every call, to test what the throttle does when Redis
/// is down (feature `test-util`).
#[cfg(feature = "test-util")]
#[derive(Debug)]
pub struct FailingLoginStore {
    hasher: IdHasher,
}

#[cfg(feature = "test-util")]
impl FailingLoginStore {
    /// A store that is always down.
    pub fn new() -> FailingLoginStore {
        FailingLoginStore {
            hasher: IdHasher::random(),
        }
    }
}

#[cfg(feature = "test-util")]
impl Default for FailingLoginStore {
    fn default() -> FailingLoginStore {
        FailingLoginStore::new()
    }
}

#[cfg(feature = "test-util")]
impl LoginStore for FailingLoginStore {
    fn id_hasher(&self) -> &IdHasher {
        &self.hasher
    }

    async fn check_ip(
        &self,
        _ip: IpKey,
        _rules: &LoginRules,
        _now: Timestamp,
    ) -> Result<LoginVerdict, StoreError> {
        Err(StoreError::new("failing test store"))
    }

    async fn refund_ip(
        &self,
        _ip: IpKey,
        _rules: &LoginRules,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        Err(StoreError::new("failing test store"))
    }

    async fn check_account(
        &self,
        _account: AccountKey,
        _ip: IpKey,
        _device: Option<DeviceKey>,
        _rules: &LoginRules,
        _now: Timestamp,
    ) -> Result<LoginVerdict, StoreError> {
        Err(StoreError::new("failing test store"))
    }

    async fn record_account_success(
        &self,
        _account: AccountKey,
        _ip: IpKey,
        _device: Option<DeviceKey>,
        _rules: &LoginRules,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        Err(StoreError::new("failing test store"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::from_micros(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_micros(2_000_001)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn zero_limits_and_short_memory_are_refused() {
        let bad = [
            LoginThrottleConfig {
                ip_failures_per_window: 0,
                ..LoginThrottleConfig::default()
            },
            LoginThrottleConfig {
                account_window_secs: 0,
                ..LoginThrottleConfig::default()
            },
            LoginThrottleConfig {
                failure_memory_secs: 60,
                ..LoginThrottleConfig::default()
            },
        ];
        for config in bad {
            assert!(config.rules().is_err(), "{config:?}");
        }
        assert!(LoginThrottleConfig::default().rules().is_ok());
    }

    #[test]
    fn unknown_config_fields_are_refused() {
        let parsed = serde_json::from_str::<LoginThrottleConfig>(r#"{"max_backof_secs": 1}"#);
        assert!(parsed.is_err());
    }
}
