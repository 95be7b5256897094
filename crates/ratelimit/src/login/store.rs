//! The contract between the throttle and wherever login state lives: the
//! few atomic steps a store performs, and their answer.

use std::future::Future;
use std::time::Duration;

use super::{AccountKey, DeviceKey, IdHasher, IpKey, LoginRules, ThrottleReason};
use crate::{StoreError, Timestamp};

/// A store's answer to a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginVerdict {
    /// Go on to the password check (the attempt has been counted).
    Allow,
    /// Go on to the password check only once the client has passed a
    /// challenge (the attempt has been counted).
    Challenge {
        /// Which rule asks for the challenge.
        reason: ThrottleReason,
    },
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
/// its (account, IP) pairs, its trusted devices) in one step, one
/// IP's budget in another. The two families are separate so that Redis
/// Cluster can place each on one slot; the throttle orders the calls so that
/// a refusal by the second gives back what the first counted.
///
/// `now` is the throttle's clock. A store with a clock of its own (Redis'
/// server time) uses that instead, so instances with skewed clocks agree.
///
/// Implemented by [`MemoryLoginStore`](super::MemoryLoginStore) and, with
/// the `redis` feature, `RedisLoginStore`.
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

    /// Refuses when the (account, ip) pair is in backoff. Otherwise counts
    /// the attempt as a failure of the pair and the account and answers:
    /// when the account is slowed down, `device` is not trusted for it and
    /// the last unchallenged slowed attempt was less than the slowdown ago,
    /// [`Challenge`](LoginVerdict::Challenge) (or, when the rules do not
    /// challenge, a refusal that counts nothing); otherwise
    /// [`Allow`](LoginVerdict::Allow), recorded as the last unchallenged
    /// slowed attempt when the account is slowed (so that concurrent
    /// attempts cannot all pass). `ip` plays no part in the account-wide
    /// rule: see the [module documentation](super#trusted-devices-not-addresses).
    fn check_account(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> impl Future<Output = Result<LoginVerdict, StoreError>> + Send;

    /// A successful login: forgets the (account, ip) pair (other IPs' pairs
    /// stay), gives the successful attempt back to the account's budget
    /// (every other failure stays, and with them a slowdown under way), and
    /// trusts `device` for the account for the rules' trusted TTL.
    fn record_account_success(
        &self,
        account: AccountKey,
        ip: IpKey,
        device: Option<DeviceKey>,
        rules: &LoginRules,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
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
        Err(StoreError::unavailable("failing test store"))
    }

    async fn refund_ip(
        &self,
        _ip: IpKey,
        _rules: &LoginRules,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        Err(StoreError::unavailable("failing test store"))
    }

    async fn check_account(
        &self,
        _account: AccountKey,
        _ip: IpKey,
        _device: Option<DeviceKey>,
        _rules: &LoginRules,
        _now: Timestamp,
    ) -> Result<LoginVerdict, StoreError> {
        Err(StoreError::unavailable("failing test store"))
    }

    async fn record_account_success(
        &self,
        _account: AccountKey,
        _ip: IpKey,
        _device: Option<DeviceKey>,
        _rules: &LoginRules,
        _now: Timestamp,
    ) -> Result<(), StoreError> {
        Err(StoreError::unavailable("failing test store"))
    }
}
