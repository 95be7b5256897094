//! Arbitrary quota strings (from configuration files and environment
//! variables) through the parser and, when accepted, the GCRA decision:
//! never a panic, and an accepted quota round-trips through its display form.

use palisade_ratelimit::gcra::{self, State};
use palisade_ratelimit::{MAX_QUOTAS, Mode, Policy, Quota, Timestamp};

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(quota) = Quota::parse(&text) else {
        let _ = serde_json::from_slice::<Policy>(data);
        return;
    };
    assert!(quota.limit() >= 1);
    if let Ok(again) = Quota::parse(&quota.to_string()) {
        assert_eq!(again, quota);
    }
    let policy = Policy::from(quota);
    let mut state: State = [0; MAX_QUOTAS];
    let mut now = 1_700_000_000_000_000u64;
    for (step, &byte) in data.iter().enumerate().take(64) {
        now = now.saturating_add(u64::from(byte) * 997 * (step as u64 + 1));
        let cost = u32::from(byte % 5);
        let (decision, next) = gcra::decide(&state, Timestamp(now), &policy, cost, Mode::Consume);
        if !decision.allowed {
            assert_eq!(next, state, "a refusal consumes nothing");
            assert!(decision.retry_after_secs().is_some_and(|secs| secs >= 1));
        }
        state = next;
    }
}
