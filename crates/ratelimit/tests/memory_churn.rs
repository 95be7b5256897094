//! Bytes per key of the memory store at its cap under churn, counted by the
//! allocator (deterministic: no timing). One test in this binary, so that no
//! other test allocates while it counts.

#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::time::Duration;

use palisade_ratelimit::{ManualClock, MemoryStore, Mode, Policy};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const MAX_KEYS: usize = 200_000;
/// What a store filled once to its cap holds per key (about 62 B at this
/// cap, 59 B at 1M): churn must not add to it.
const BOUND: f64 = 72.0;

fn live_bytes(region: &Region<'_, System>) -> f64 {
    let stats = region.change();
    (stats.bytes_allocated as f64 - stats.bytes_deallocated as f64) / MAX_KEYS as f64
}

#[test]
fn bytes_per_key_hold_under_churn_at_the_cap() {
    let keys: Vec<String> = (0..MAX_KEYS * 4).map(|i| format!("ip4:{i}")).collect();
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    // Three quotas, the longest a day: every entry stays live.
    let policy = Policy::parse(["10/second", "100/minute", "1000/day"]).unwrap();

    let region = Region::new(GLOBAL);
    let store = MemoryStore::with_clock(clock.clone()).with_max_entries(MAX_KEYS);
    for key in &keys[..MAX_KEYS] {
        store.decide_now(key, &policy, 1, Mode::Consume);
    }
    let filled = live_bytes(&region);
    assert_eq!(store.evictions(), 0);
    assert!(filled <= BOUND, "filled: {filled:.1} B/key");

    // Churn of live keys: three times the cap of new keys, each one
    // evicting the least recently seen (tombstones in a full table).
    for key in &keys[MAX_KEYS..] {
        clock.advance(Duration::from_micros(1));
        store.decide_now(key, &policy, 1, Mode::Consume);
    }
    assert!(store.evictions() > 0);
    let live_churn = live_bytes(&region);
    assert!(
        live_churn <= BOUND,
        "live churn: {live_churn:.1} B/key (filled {filled:.1})"
    );

    // Churn of recovered keys: a day later every entry has recovered and is
    // reclaimed (swept, tombstones again) as new keys arrive.
    clock.advance(Duration::from_secs(86_401));
    for key in &keys[..MAX_KEYS * 2] {
        clock.advance(Duration::from_micros(1));
        store.decide_now(key, &policy, 1, Mode::Consume);
    }
    let reclaim_churn = live_bytes(&region);
    assert!(
        reclaim_churn <= BOUND,
        "reclaim churn: {reclaim_churn:.1} B/key (filled {filled:.1})"
    );
    // Resets (removals by the application) leave tombstones too.
    for (i, key) in keys[MAX_KEYS * 2..].iter().enumerate() {
        store.reset_now(&keys[i]);
        store.decide_now(key, &policy, 1, Mode::Consume);
    }
    let reset_churn = live_bytes(&region);
    assert!(
        reset_churn <= BOUND,
        "reset churn: {reset_churn:.1} B/key (filled {filled:.1})"
    );
    println!(
        "B/key at {MAX_KEYS} keys: filled {filled:.1}, live churn {live_churn:.1}, reclaim churn {reclaim_churn:.1}, reset churn {reset_churn:.1}"
    );
    drop(store);
}
