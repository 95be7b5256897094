//! [`LoginThrottle`]: runs the stores' steps in the order that keeps the
//! counts right, applies the fail mode when a store cannot answer, and logs
//! every refusal.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use palisade_errors::{Error, ErrorKind, SecurityEvent, SubjectHash};

use super::config::MICROS_PER_SEC;
use super::{IpKey, LoginRules, LoginStore, LoginThrottleConfig, LoginVerdict, ThrottleReason};
use crate::{Clock, ConfigError, FailMode, StoreError, SystemClock};

/// What [`LoginThrottle::check`] lets through. A refusal is the `Err` (429
/// with `Retry-After`).
///
/// `#[must_use]`: treating a [`Challenge`](Self::Challenge) like
/// [`Allow`](Self::Allow) gives an attacker the password guesses the
/// slowdown withholds.
#[must_use = "a Challenge must be answered with a CAPTCHA or second factor before the password check"]
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginDecision {
    /// Go on to the password check.
    Allow,
    /// Go on to the password check only once the client has passed a
    /// challenge the application chooses: a CAPTCHA, a second factor, an
    /// emailed link. Until it has, answer "challenge required" without
    /// looking at the password (the attempt is already counted as a failure;
    /// a later success gives it back). The account is under attack and the
    /// attempt carries no trusted device: the answer a real user on a new
    /// device and a botnet both get, instead of a lockout.
    Challenge {
        /// Which rule asks for the challenge.
        reason: ThrottleReason,
    },
}

impl LoginDecision {
    /// Whether the client must pass a challenge before the password check.
    pub const fn is_challenge(self) -> bool {
        matches!(self, LoginDecision::Challenge { .. })
    }
}

/// Throttles login attempts per (account, IP), per account and per IP; see
/// the [module documentation](super) for the rules.
///
/// Share one throttle (in an `Arc`) per process.
///
/// ```
/// use std::net::IpAddr;
/// use std::time::Duration;
/// use palisade_errors::ErrorKind;
/// use palisade_ratelimit::ManualClock;
/// use palisade_ratelimit::login::{
///     LoginDecision, LoginThrottle, LoginThrottleConfig, MemoryLoginStore,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::from_unix_secs(1_700_000_000);
/// let config = LoginThrottleConfig { free_failures_per_account_ip: 1, ..Default::default() };
/// let throttle = LoginThrottle::with_clock(MemoryLoginStore::new(), config, clock.clone())?;
/// let ip: IpAddr = "198.51.100.1".parse()?;
///
/// assert_eq!(throttle.check("mallory", ip, None).await?, LoginDecision::Allow);
/// throttle.record_failure("mallory", ip).await;
/// let refused = throttle.check("mallory", ip, None).await.unwrap_err();
/// assert_eq!(refused.kind(), ErrorKind::RateLimited);
/// assert_eq!(refused.headers()["retry-after"], "1");
///
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(throttle.check("mallory", ip, None).await?, LoginDecision::Allow);
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
    /// - `device`: the device token the application set on an earlier
    ///   successful login of this account and has verified on this request
    ///   (for example a signed, `HttpOnly` device cookie); never one taken
    ///   unverified from the request, or anyone could claim the victim's
    ///   device. A trusted device is spared the account's slowdown; nothing
    ///   else is (not the client's address: see the
    ///   [module documentation](super#trusted-devices-not-addresses)).
    ///
    /// Answers [`LoginDecision::Allow`], or [`LoginDecision::Challenge`]
    /// during an account's slowdown for an attempt without a trusted device
    /// (when [`challenge_during_slowdown`](LoginThrottleConfig::challenge_during_slowdown)
    /// is on, the default), logged as `event = "authn_login_lock"` with
    /// `reason = "challenge"`.
    ///
    /// Errors: `rate_limited` (429) with `Retry-After` in whole seconds,
    /// rounded up so a client that waits that long is let through; or, when
    /// the store fails and the fail mode is closed, `unavailable` (503).
    /// Every refusal is logged as `event = "authn_login_lock"` with the
    /// reason, the account's [`SubjectHash`] (never the username) and the
    /// client IP; a store failure as `store_unavailable` with the fail mode
    /// taken.
    pub async fn check(
        &self,
        account: &str,
        ip: IpAddr,
        device: Option<&str>,
    ) -> Result<LoginDecision, Error> {
        let now = self.clock.now();
        let hasher = self.store.id_hasher();
        let account_key = hasher.account(account);
        let device_key = device.map(|device| hasher.device(device));
        let ip_key = IpKey::from(ip);

        // The IP first: the account check may use up the slowdown's one
        // attempt per 10 s, which a refusal by the IP budget would waste.
        match self.store.check_ip(ip_key, &self.rules, now).await {
            // The IP check never challenges; were a store to, go on.
            Ok(LoginVerdict::Allow | LoginVerdict::Challenge { .. }) => {}
            Ok(LoginVerdict::Refuse {
                reason,
                retry_after,
            }) => return Err(throttled(reason, retry_after, account, ip)),
            Err(error) => {
                if let Some(refusal) = self.store_failed("check_ip", &error, account, ip) {
                    return Err(refusal);
                }
            }
        }
        match self
            .store
            .check_account(account_key, ip_key, device_key, &self.rules, now)
            .await
        {
            Ok(LoginVerdict::Allow) => Ok(LoginDecision::Allow),
            Ok(LoginVerdict::Challenge { reason }) => {
                tracing::info!(
                    event = SecurityEvent::AuthnLoginLock.as_str(),
                    reason = "challenge",
                    rule = reason.as_str(),
                    subject_hash = %SubjectHash::of(account),
                    client_ip = %ip,
                    "login attempt challenged"
                );
                Ok(LoginDecision::Challenge { reason })
            }
            Ok(LoginVerdict::Refuse {
                reason,
                retry_after,
            }) => {
                // The attempt never reaches the password: it is not one of
                // the IP's failures. (A user behind a shared NAT who retries
                // during a backoff must not drain the whole office's budget.)
                if let Err(error) = self.store.refund_ip(ip_key, &self.rules, now).await {
                    self.log_store_failure("refund_ip", &error, account, ip);
                }
                Err(throttled(reason, retry_after, account, ip))
            }
            Err(error) => match self.store_failed("check_account", &error, account, ip) {
                Some(refusal) => {
                    // Refused without a password check (fail closed): not
                    // one of the IP's failures either.
                    if let Err(error) = self.store.refund_ip(ip_key, &self.rules, now).await {
                        self.log_store_failure("refund_ip", &error, account, ip);
                    }
                    Err(refusal)
                }
                None => Ok(LoginDecision::Allow),
            },
        }
    }

    /// The password (or the username) was wrong.
    ///
    /// [`check`](Self::check) has already counted the attempt as a failure
    /// (see the [module documentation](super)), so this records nothing more;
    /// it logs `event = "authn_login_fail"` (with the account's
    /// [`SubjectHash`], never the username, and the client IP) and keeps the
    /// calling code honest about both outcomes.
    pub async fn record_failure(&self, account: &str, ip: IpAddr) {
        tracing::info!(
            event = SecurityEvent::AuthnLoginFail.as_str(),
            reason = "bad_credentials",
            subject_hash = %SubjectHash::of(account),
            client_ip = %ip,
            "login failed"
        );
    }

    /// The password was right (and the challenge passed, if there was one):
    /// resets the (account, `ip`) pair's failures (other IPs' stay), gives
    /// the attempt back to the account's budget and to `ip`'s, and trusts
    /// `device` for this account (it skips the account's slowdown) for the
    /// trusted TTL. The account's other failures stay: while an attack is
    /// under way, the slowdown goes on for everyone else.
    ///
    /// `device` is the device token this login sets or renews (a random
    /// value the application keeps in a signed cookie, say), not one the
    /// client merely presented unverified.
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
            self.log_store_failure("record_account_success", &error, account, ip);
        }
        if let Err(error) = self.store.refund_ip(ip_key, &self.rules, now).await {
            self.log_store_failure("refund_ip", &error, account, ip);
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
        account: &str,
        ip: IpAddr,
    ) -> Option<Error> {
        self.log_store_failure(operation, error, account, ip);
        match self.fail_mode {
            FailMode::Open => None,
            FailMode::Closed => Some(
                Error::new(ErrorKind::Unavailable)
                    .with_source(error.clone().during("login throttle")),
            ),
        }
    }

    fn log_store_failure(
        &self,
        operation: &'static str,
        error: &StoreError,
        account: &str,
        ip: IpAddr,
    ) {
        self.store_failures.fetch_add(1, Ordering::Relaxed);
        let reason = match self.fail_mode {
            FailMode::Open => "fail_open",
            FailMode::Closed => "fail_closed",
        };
        tracing::warn!(
            event = SecurityEvent::StoreUnavailable.as_str(),
            reason,
            operation,
            subject_hash = %SubjectHash::of(account),
            client_ip = %ip,
            store_error = error.kind().as_str(),
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

fn throttled(reason: ThrottleReason, retry_after: Duration, account: &str, ip: IpAddr) -> Error {
    let secs = retry_after_secs(retry_after);
    tracing::warn!(
        event = SecurityEvent::AuthnLoginLock.as_str(),
        reason = reason.as_str(),
        subject_hash = %SubjectHash::of(account),
        client_ip = %ip,
        retry_after_secs = secs,
        "login attempt throttled"
    );
    Error::new(ErrorKind::RateLimited)
        .with_retry_after(secs)
        .logged()
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
}
