//! The store breaker of a [`RateLimiter`](crate::RateLimiter): it opens on a
//! failure rate over a window (or at once when the store is unreachable),
//! never on one slow reply, lets one probe through at a time while open, and
//! closes by itself when a probe succeeds.
//!
//! The fast path (closed, no failure in the current window) is one atomic
//! load of [`Breaker::state`] and reads no clock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;

use crate::{ConfigError, ConfigErrorKind, FailMode};

/// When a [`RateLimiter`](crate::RateLimiter) stops asking its store, and
/// what it does meanwhile. Durations are whole milliseconds, so the struct
/// reads the same in code, TOML and environment variables.
///
/// ```
/// use palisade_ratelimit::{BreakerConfig, FailMode};
///
/// let config: BreakerConfig = serde_json::from_str(r#"{"min_calls": 50, "fail_mode": "open"}"#)?;
/// assert_eq!(config.min_calls, 50);
/// assert_eq!(config.failure_rate_percent, 50);
/// assert_eq!(config.fail_mode, Some(FailMode::Open)); // explicit: unmetered while down
/// assert_eq!(BreakerConfig::default().fail_mode, None); // memory fallback
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// The window over which failed calls are counted, from the first
    /// failure after a quiet spell (default 10 000 ms).
    pub window_ms: u64,
    /// Failed calls, in percent of the calls of the window, that open the
    /// breaker (default 50).
    pub failure_rate_percent: u8,
    /// The fewest calls in the window before the rate counts (default 20):
    /// one slow reply never opens the breaker.
    pub min_calls: u32,
    /// How long the breaker stays open before one probe is let through
    /// (default 1000 ms). Keep it above the store's timeout, so only one
    /// probe is in flight at a time.
    pub open_ms: u64,
    /// Whether an unreachable store (a [`StoreErrorKind::Unavailable`]
    /// error: connection refused or dropped, an error reply) opens the
    /// breaker at once (default `true`). No slow reply is involved, and a
    /// dead Redis then costs one attempt per `open_ms`, not one per request.
    ///
    /// [`StoreErrorKind::Unavailable`]: crate::StoreErrorKind::Unavailable
    pub open_on_unreachable: bool,
    /// What a request whose store call failed or was skipped gets. `None`
    /// (the default): decided in a local memory fallback, so each instance
    /// still limits, at the full policy on its own traffic.
    /// [`FailMode::Open`] (unmetered) and [`FailMode::Closed`] (503) only
    /// when chosen. A fallback store set with
    /// [`RateLimiter::fallback`](crate::RateLimiter::fallback) wins over both.
    pub fail_mode: Option<FailMode>,
    /// How many instances share the limit (default 1): while the store
    /// fails, each instance's memory fallback enforces every quota's limit
    /// divided by this, rounded up (at least 1), so the instances together
    /// admit about the limit rather than this many times it. A request
    /// costing more than the share is refused meanwhile.
    pub fallback_instances: u32,
}

impl Default for BreakerConfig {
    fn default() -> BreakerConfig {
        BreakerConfig {
            window_ms: 10_000,
            failure_rate_percent: 50,
            min_calls: 20,
            open_ms: 1_000,
            open_on_unreachable: true,
            fail_mode: None,
            fallback_instances: 1,
        }
    }
}

const MAX_MS: u64 = 3_600_000;

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidBreaker,
            format!("rate-limit breaker: {name} = {value} is outside {min}..={max}"),
        ));
    }
    Ok(value)
}

impl BreakerConfig {
    /// Checks every setting against its bounds (windows 1 ms to 1 h, a rate
    /// of 1 to 100 %, 1 to 1 000 000 calls, 1 to 10 000 instances); the
    /// error names the setting.
    pub fn check(&self) -> Result<(), ConfigError> {
        in_range("window_ms", self.window_ms, 1, MAX_MS)?;
        in_range("failure_rate_percent", self.failure_rate_percent, 1, 100)?;
        in_range("min_calls", self.min_calls, 1, 1_000_000)?;
        in_range("open_ms", self.open_ms, 1, MAX_MS)?;
        in_range("fallback_instances", self.fallback_instances, 1, 10_000)?;
        Ok(())
    }
}

/// Set in [`Breaker::state`] while the breaker is open; the other bits are
/// the time (µs) until which it stays open. Without it, a non-zero state is
/// the end of the window in which failures are being counted.
const OPEN: u64 = 1 << 63;

/// What the breaker lets a call do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Closed, no failure lately: call the store, count nothing.
    Quiet,
    /// Closed, a failure in the current window: call the store and count.
    Counting,
    /// Open, and this call is its one probe.
    Probe,
    /// Open: do not call the store.
    Skip,
}

/// What a call's outcome changed, for the limiter's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    /// The first failure of a window; the breaker is still closed.
    FirstFailure,
    /// The breaker opened on the failure rate.
    OpenedOnRate {
        calls: u32,
        failures: u32,
    },
    /// The breaker opened because the store is unreachable.
    OpenedUnreachable,
    /// A probe succeeded: closed again.
    Recovered,
}

pub(crate) struct Breaker {
    /// 0: closed and quiet (the fast path). See [`OPEN`].
    state: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    window: u64,
    open_for: u64,
    rate_percent: u64,
    min_calls: u32,
    open_on_unreachable: bool,
}

impl Breaker {
    pub(crate) fn new(config: &BreakerConfig) -> Breaker {
        Breaker {
            state: AtomicU64::new(0),
            calls: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            window: config.window_ms.saturating_mul(1_000).max(1),
            open_for: config.open_ms.saturating_mul(1_000).max(1),
            rate_percent: u64::from(config.failure_rate_percent),
            min_calls: config.min_calls.max(1),
            open_on_unreachable: config.open_on_unreachable,
        }
    }

    pub(crate) fn set_open_for(&mut self, open_for: Duration) {
        self.open_for = u64::try_from(open_for.as_micros())
            .unwrap_or(u64::MAX >> 2)
            .clamp(1, u64::MAX >> 2);
    }

    /// Whether the store may be called. `now` (µs) is read only off the
    /// fast path.
    #[inline]
    pub(crate) fn gate(&self, now: impl FnOnce() -> u64) -> Gate {
        let state = self.state.load(Ordering::Acquire);
        if state == 0 {
            return Gate::Quiet;
        }
        self.gate_slow(state, now())
    }

    #[cold]
    fn gate_slow(&self, state: u64, now: u64) -> Gate {
        if state & OPEN == 0 {
            // A window of counted failures. Over (or further away than one
            // window: a clock stepped back), it ends quietly.
            if now >= state || state - now > self.window {
                let _ = self
                    .state
                    .compare_exchange(state, 0, Ordering::AcqRel, Ordering::Acquire);
                return Gate::Quiet;
            }
            return Gate::Counting;
        }
        let until = state & !OPEN;
        // A clock that stepped back must not stretch the open time: an
        // `until` further away than one open time counts as expired.
        let cooling = now < until && until - now <= self.open_for;
        if cooling {
            return Gate::Skip;
        }
        // Half-open: the one call that moves `until` on is the probe; the
        // others keep skipping until it answers or its open time ends (a
        // probe whose future was dropped cannot wedge the breaker).
        let claimed = self
            .state
            .compare_exchange(
                state,
                OPEN | self.until(now),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if claimed { Gate::Probe } else { Gate::Skip }
    }

    fn until(&self, now: u64) -> u64 {
        now.saturating_add(self.open_for).clamp(1, !OPEN)
    }

    /// A call the gate let through answered.
    #[cold]
    pub(crate) fn on_success(&self, gate: Gate) -> Transition {
        match gate {
            Gate::Probe => {
                self.calls.store(0, Ordering::Relaxed);
                self.failures.store(0, Ordering::Relaxed);
                self.state.store(0, Ordering::Release);
                Transition::Recovered
            }
            Gate::Counting => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                Transition::None
            }
            Gate::Quiet | Gate::Skip => Transition::None,
        }
    }

    /// A call the gate let through failed; `unreachable` for an error that
    /// says the store cannot be reached (rather than a slow reply).
    #[cold]
    pub(crate) fn on_failure(&self, gate: Gate, unreachable: bool, now: u64) -> Transition {
        if gate == Gate::Probe {
            self.state.store(OPEN | self.until(now), Ordering::Release);
            return Transition::None;
        }
        if unreachable && self.open_on_unreachable {
            return if self.open(now) {
                Transition::OpenedUnreachable
            } else {
                Transition::None
            };
        }
        let window_end = now.saturating_add(self.window).clamp(1, !OPEN);
        let first = self
            .state
            .compare_exchange(0, window_end, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        let (calls, failures) = if first {
            self.calls.store(1, Ordering::Relaxed);
            self.failures.store(1, Ordering::Relaxed);
            (1, 1)
        } else {
            (
                self.calls.fetch_add(1, Ordering::Relaxed) + 1,
                self.failures.fetch_add(1, Ordering::Relaxed) + 1,
            )
        };
        let over = calls >= self.min_calls
            && u64::from(failures) * 100 >= self.rate_percent * u64::from(calls);
        if over && self.open(now) {
            return Transition::OpenedOnRate { calls, failures };
        }
        if first {
            Transition::FirstFailure
        } else {
            Transition::None
        }
    }

    /// Opens the breaker; `true` if it was closed.
    fn open(&self, now: u64) -> bool {
        let previous = self.state.swap(OPEN | self.until(now), Ordering::AcqRel);
        previous & OPEN == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(min_calls: u32) -> Breaker {
        Breaker::new(&BreakerConfig {
            min_calls,
            ..BreakerConfig::default()
        })
    }

    #[test]
    fn one_slow_reply_does_not_open_it() {
        let breaker = breaker(20);
        assert_eq!(breaker.gate(|| 0), Gate::Quiet);
        assert_eq!(
            breaker.on_failure(Gate::Quiet, false, 1_000),
            Transition::FirstFailure
        );
        for _ in 0..30 {
            let gate = breaker.gate(|| 2_000);
            assert_eq!(gate, Gate::Counting);
            breaker.on_success(gate);
        }
        // The window ends quietly.
        assert_eq!(breaker.gate(|| 1_000 + 10_000_000), Gate::Quiet);
        assert_eq!(breaker.gate(|| 0), Gate::Quiet);
    }

    #[test]
    fn a_failure_rate_opens_it_then_one_probe_closes_it() {
        let breaker = breaker(4);
        let mut opened = None;
        for i in 0..4 {
            let gate = breaker.gate(|| 10);
            opened = Some(breaker.on_failure(gate, false, 10 + i));
        }
        assert_eq!(
            opened,
            Some(Transition::OpenedOnRate {
                calls: 4,
                failures: 4
            })
        );
        assert_eq!(breaker.gate(|| 20), Gate::Skip);
        let probe = breaker.gate(|| 2_000_000);
        assert_eq!(probe, Gate::Probe);
        assert_eq!(
            breaker.gate(|| 2_000_001),
            Gate::Skip,
            "one probe at a time"
        );
        assert_eq!(breaker.on_success(probe), Transition::Recovered);
        assert_eq!(breaker.gate(|| 2_000_002), Gate::Quiet);
    }

    #[test]
    fn an_unreachable_store_opens_it_at_once() {
        let breaker = breaker(20);
        assert_eq!(
            breaker.on_failure(Gate::Quiet, true, 5),
            Transition::OpenedUnreachable
        );
        assert_eq!(breaker.gate(|| 6), Gate::Skip);
    }

    #[test]
    fn bounds_are_checked() {
        let bad = BreakerConfig {
            failure_rate_percent: 0,
            ..BreakerConfig::default()
        };
        let error = bad.check().unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::InvalidBreaker);
        assert!(error.to_string().contains("failure_rate_percent"));
        assert!(BreakerConfig::default().check().is_ok());
    }
}
