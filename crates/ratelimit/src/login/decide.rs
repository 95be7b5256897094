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
    /// The account is slowed down (an attack on it is under way) and this
    /// attempt comes from no trusted device.
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

/// What an account check lets through: the attempt goes on to the password
/// check, either as it is or behind a challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pass {
    Allow,
    Challenge,
}

/// The account-side check, which also counts the attempt it lets through.
/// On success returns the new pair and account state and whether the
/// attempt must pass a challenge first.
///
/// `trusted_device` says whether the attempt carries a device token trusted
/// for this account. Nothing else about the client may change the answer:
/// an unknown username never has a trusted device, so any other exemption
/// (a trusted IP) would answer a real name differently from an unknown one.
pub(crate) fn check_account(
    rules: &LoginRules,
    pair: Option<Pair>,
    account: Option<Account>,
    trusted_device: impl FnOnce() -> bool,
    now: u64,
) -> Result<(Pair, Account, Pass), Refusal> {
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
    let mut pass = Pass::Allow;
    let slowed = exhausted(
        account.tat,
        now,
        rules.account_window,
        rules.account_interval,
    )
    .is_some();
    if slowed && !trusted_device() {
        let next = slowed_at.map(|at| at.saturating_add(rules.account_slowdown));
        match next {
            Some(next) if now < next => {
                if !rules.challenge_during_slowdown {
                    return Err((ThrottleReason::AccountSlowdown, next - now));
                }
                pass = Pass::Challenge;
            }
            _ => slowed_at = Some(now),
        }
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
    Ok((pair, account, pass))
}

/// The account after a successful login: the successful attempt, which the
/// check counted, is given back, and nothing else. The other IPs' failures
/// stay, and with them the slowdown while an attack is under way (a success
/// that reset the budget would give a distributed attacker fresh guesses
/// with every login of the real user). `None`: the budget is full again and
/// the state can go.
pub(crate) fn account_after_success(
    rules: &LoginRules,
    account: Account,
    now: u64,
) -> Option<Account> {
    refund(account.tat, now, rules.account_interval).map(|tat| Account {
        tat,
        slowed_at: account.slowed_at,
    })
}

/// Until when an account state matters: its budget's time, or the end of
/// the last unchallenged slowed attempt's interval if later.
pub(crate) fn account_expiry(rules: &LoginRules, account: &Account) -> u64 {
    let slowed_until = account
        .slowed_at
        .map_or(0, |at| at.saturating_add(rules.account_slowdown));
    account.tat.max(slowed_until)
}
