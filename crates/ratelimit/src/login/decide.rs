//! The state and arithmetic of a login decision, shared by the stores: a
//! pure function of (state, now, rules) like [`gcra`](crate::gcra), with no
//! I/O and no clock. The memory store runs it directly; the Redis scripts are
//! the same steps in Lua, and the Redis tests check both agree.

use super::LoginRules;

/// Counters stop here: beyond a million failures nothing changes (everything
/// is refused anyway), and Redis' Lua numbers stay exact.
pub(crate) const MAX_COUNT: u32 = 1_000_000;

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
pub(crate) type Refusal = (ThrottleReason, u64);

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
            return Err((ThrottleReason::AccountIpBackoff, until - now));
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
                return Err((ThrottleReason::AccountSlowdown, next - now));
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
