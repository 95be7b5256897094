//! The throttle's policy: [`LoginThrottleConfig`] as written in code, TOML
//! or environment variables, and [`LoginRules`], the checked form in the
//! microseconds the decision and the stores work in.

use std::time::Duration;

use serde::Deserialize;

use super::decide::MAX_COUNT;
use crate::{ConfigError, ConfigErrorKind, FailMode};

pub(super) const MICROS_PER_SEC: u64 = 1_000_000;
const MAX_FREE_FAILURES: u32 = 1_000;
const MAX_BACKOFF_LIMIT_SECS: u64 = 30 * 86_400;
const MAX_MEMORY_SECS: u64 = 365 * 86_400;
const MAX_WINDOW_SECS: u64 = 7 * 86_400;
const MAX_SLOWDOWN_SECS: u64 = 86_400;
const MAX_TRUST_SECS: u64 = 400 * 86_400;
const MAX_TRUSTED_FAILURES: u32 = 1_000;

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
    /// During a slowdown, at most one attempt without a trusted device per
    /// this many seconds goes on unchallenged (default 10).
    pub account_slowdown_secs: u64,
    /// During a slowdown, what the other attempts without a trusted device
    /// get: `true` (default) a [`Challenge`](super::LoginDecision::Challenge)
    /// (a CAPTCHA or second factor before the password check), so a botnet
    /// cannot lock the real user out; `false` a 429 with `Retry-After`, for
    /// an application that has no challenge to offer (a botnet fast enough
    /// then keeps a real user on a new device out).
    pub challenge_during_slowdown: bool,
    /// A device (a device token the application set on a successful login
    /// and verified on this attempt) skips that account's slowdown for this
    /// long (default 30 days; 0 turns trust off). An IP address is never
    /// trusted: see the [module documentation](super#trusted-devices-not-addresses).
    pub trusted_device_ttl_secs: u64,
    /// Attempts a trusted device may fail since its last successful login
    /// before it loses its exemption (default 10; at least 1). Without it a
    /// device token taken from the real user (a stolen cookie, a former
    /// intruder's own) would be an unthrottled channel for guessing the
    /// account's password from as many addresses as the guesser has. The
    /// next successful login from the device restores it.
    pub trusted_device_failures: u32,
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
            challenge_during_slowdown: true,
            trusted_device_ttl_secs: 30 * 86_400,
            trusted_device_failures: 10,
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
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidLoginConfig,
            format!("login throttle: {name} = {value} is outside {min}..={max}"),
        ));
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
        let trusted_failures = in_range(
            "trusted_device_failures",
            self.trusted_device_failures,
            1,
            MAX_TRUSTED_FAILURES,
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
            challenge_during_slowdown: self.challenge_during_slowdown,
            trusted_ttl: trusted * MICROS_PER_SEC,
            trusted_failures,
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
    // Readable by the sibling decision and stores, which pass them on as
    // numbers (the Redis scripts take them as arguments).
    pub(super) free_failures: u32,
    // All durations in microseconds.
    pub(super) max_backoff: u64,
    pub(super) failure_memory: u64,
    pub(super) account_window: u64,
    pub(super) account_interval: u64,
    pub(super) account_slowdown: u64,
    pub(super) challenge_during_slowdown: bool,
    pub(super) trusted_ttl: u64,
    pub(super) trusted_failures: u32,
    pub(super) ip_window: u64,
    pub(super) ip_interval: u64,
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

    /// During a slowdown, the gap between two unchallenged attempts without
    /// a trusted device.
    pub fn account_slowdown(&self) -> Duration {
        Duration::from_micros(self.account_slowdown)
    }

    /// Whether, during a slowdown, attempts beyond the one per
    /// [`account_slowdown`](Self::account_slowdown) are challenged (`true`)
    /// or refused.
    pub fn challenge_during_slowdown(&self) -> bool {
        self.challenge_during_slowdown
    }

    /// How long a successful login trusts its device for the account
    /// (zero: never).
    pub fn trusted_ttl(&self) -> Duration {
        Duration::from_micros(self.trusted_ttl)
    }

    /// Failed attempts a trusted device may have since its last success
    /// before its exemption lapses (until its next success).
    pub fn trusted_failures(&self) -> u32 {
        self.trusted_failures
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

#[cfg(test)]
mod tests {
    use super::*;

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
