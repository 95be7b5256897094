//! GCRA (the generic cell rate algorithm, virtual-scheduling form) as a pure
//! function of (state, now, policy, cost). Stores only persist the state; the
//! Redis script runs the same arithmetic.
//!
//! Per quota with emission interval `T` (period / limit) and capacity
//! `C = T × limit`, the state is the theoretical arrival time `tat` (µs). A
//! request of cost `k` is admitted iff `max(tat, now) + k·T ≤ now + C`; if so
//! the new `tat` is `max(tat, now) + k·T`.
//!
//! A stored `tat` is never taken as further than `C` ahead of `now`: it
//! cannot get there while the clock runs forward, so only a wall clock
//! stepping back puts it there, and the clamp makes such a step cost at
//! most one period (the quota counts as just used up) instead of the size
//! of the step. A refusal in [`Mode::Consume`] stores the clamped state, so
//! the key recovers from the new time on.

use std::time::Duration;

use crate::Timestamp;
use crate::quota::{MAX_QUOTAS, Policy, Quota};

/// The stored state of one key: one theoretical arrival time per quota (0
/// for a key never seen, which behaves like a fully recovered one).
pub type State = [u64; MAX_QUOTAS];

/// Whether a decision only looks or also spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Dry run: what would happen, without consuming anything.
    Check,
    /// Admit and consume, or refuse and consume nothing.
    Consume,
}

/// The outcome of one rate-limit decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The limit of the quota reported in headers (the most restrictive one
    /// right now).
    pub limit: u32,
    /// The period of that quota.
    pub period: Duration,
    /// Requests of cost 1 every quota would still admit after this one (in
    /// [`Mode::Check`], as if this one had been spent). For a refused
    /// request, which spends nothing, those admissible now: a refused
    /// request of cost 5 with 4 left reports 4.
    pub remaining: u32,
    /// Until that quota is fully recovered.
    pub reset_after: Duration,
    /// For a refused request: until it would be admitted (never earlier).
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// `Retry-After` in whole seconds, rounded up so a client that waits
    /// exactly that long is admitted (at least 1 for a refusal).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|wait| {
            u64::try_from(wait.as_micros().div_ceil(1_000_000))
                .unwrap_or(u64::MAX)
                .max(1)
        })
    }

    /// `reset_after` in whole seconds, rounded up.
    pub fn reset_after_secs(&self) -> u64 {
        u64::try_from(self.reset_after.as_micros().div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

/// Decides a request of `cost` against `state` at `now`. Returns the
/// decision and the state to store: changed only when the request is
/// admitted in [`Mode::Consume`] (or, refused, after the clock stepped back:
/// then clamped, see the module docs). A cost above a quota's limit is never
/// admitted, however long the caller waits: check costs with
/// [`Policy::check_cost`] first (the limiter does, and answers such a cost
/// with a configuration error).
pub fn decide(
    state: &State,
    now: Timestamp,
    policy: &Policy,
    cost: u32,
    mode: Mode,
) -> (Decision, State) {
    let now = now.as_micros();
    let cost = u64::from(cost);
    let mut next = *state;
    let mut allowed = true;
    // The reported quota: while admitted, the one with the least remaining;
    // when refused, the one that makes the caller wait longest.
    let mut least = (0usize, u64::MAX, 0u64); // (index, remaining, reset_after)
    let mut longest = (0usize, 0u64); // (index, wait)
    for (index, ((quota, &stored), slot)) in
        policy.quotas().iter().zip(state).zip(&mut next).enumerate()
    {
        let interval = quota.emission_interval();
        let horizon = now.saturating_add(quota.capacity());
        // Branch-free clamp: a clock that stepped back costs one period.
        let tat = stored.max(now).min(horizon);
        let new_tat = tat.saturating_add(interval.saturating_mul(cost));
        if new_tat <= horizon {
            let remaining = (horizon - new_tat) / interval;
            if remaining < least.1 {
                least = (index, remaining, new_tat - now);
            }
            *slot = new_tat;
        } else {
            allowed = false;
            let wait = new_tat - horizon;
            if wait > longest.1 {
                longest = (index, wait);
            }
        }
    }
    let quotas = policy.quotas();
    let decision = if allowed {
        let (index, remaining, reset_after) = least;
        let quota = quotas.get(index);
        Decision {
            allowed: true,
            limit: quota.map_or(0, Quota::limit),
            period: quota.map(Quota::period).unwrap_or_default(),
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_after: Duration::from_micros(reset_after),
            retry_after: None,
        }
    } else {
        let (index, wait) = longest;
        let quota = quotas.get(index);
        let tat = clamp(state.get(index).copied().unwrap_or(0), now, quota);
        // Nothing was spent: what every quota still admits at cost 1.
        let remaining = quotas
            .iter()
            .zip(state)
            .map(|(quota, &stored)| {
                let horizon = now.saturating_add(quota.capacity());
                (horizon - clamp(stored, now, Some(quota))) / quota.emission_interval()
            })
            .min()
            .unwrap_or(0);
        Decision {
            allowed: false,
            limit: quota.map_or(0, Quota::limit),
            period: quota.map(Quota::period).unwrap_or_default(),
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_after: Duration::from_micros(tat - now),
            retry_after: Some(Duration::from_micros(wait)),
        }
    };
    let stored = match (allowed, mode) {
        (true, Mode::Consume) => next,
        // Unchanged unless the clock stepped back past a stored `tat`.
        (false, Mode::Consume) => {
            let mut clamped = *state;
            for (slot, quota) in clamped.iter_mut().zip(quotas) {
                *slot = (*slot).min(now.saturating_add(quota.capacity()));
            }
            clamped
        }
        (_, Mode::Check) => *state,
    };
    (decision, stored)
}

/// [`decide`] for a policy of one quota, on that quota's `tat` alone: the
/// same decision and the same stored value (the other slots of a [`State`]
/// are untouched by [`decide`] too), without the loop over quotas. The
/// memory store's hot path; `tests/limiter.rs` checks it against [`decide`].
#[inline]
pub fn decide_one(
    stored: u64,
    now: Timestamp,
    quota: &Quota,
    cost: u32,
    mode: Mode,
) -> (Decision, u64) {
    let now = now.as_micros();
    let interval = quota.emission_interval();
    let horizon = now.saturating_add(quota.capacity());
    // The clamp of `decide`: a clock that stepped back costs one period.
    let tat = stored.max(now).min(horizon);
    let new_tat = tat.saturating_add(interval.saturating_mul(u64::from(cost)));
    if new_tat <= horizon {
        let decision = Decision {
            allowed: true,
            limit: quota.limit(),
            period: quota.period(),
            remaining: u32::try_from((horizon - new_tat) / interval).unwrap_or(u32::MAX),
            reset_after: Duration::from_micros(new_tat - now),
            retry_after: None,
        };
        let next = match mode {
            Mode::Consume => new_tat,
            Mode::Check => stored,
        };
        (decision, next)
    } else {
        let decision = Decision {
            allowed: false,
            limit: quota.limit(),
            period: quota.period(),
            remaining: u32::try_from((horizon - tat) / interval).unwrap_or(u32::MAX),
            reset_after: Duration::from_micros(tat - now),
            retry_after: Some(Duration::from_micros(new_tat - horizon)),
        };
        let next = match mode {
            Mode::Consume => stored.min(horizon),
            Mode::Check => stored,
        };
        (decision, next)
    }
}

/// A stored `tat` as the decision sees it at `now`: at least `now`, and at
/// most the quota's capacity ahead of it.
fn clamp(stored: u64, now: u64, quota: Option<&Quota>) -> u64 {
    let capacity = quota.map_or(0, Quota::capacity);
    stored.max(now).min(now.saturating_add(capacity))
}

/// Whether a key's state has fully recovered at `now` (every quota's
/// theoretical arrival time is past): forgetting it then changes nothing.
pub fn recovered(state: &State, now: Timestamp) -> bool {
    state.iter().all(|&tat| tat <= now.as_micros())
}
