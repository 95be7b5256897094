//! Quotas, the GCRA decision, the memory store and the limiter, on a manual
//! clock.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use palisade_ratelimit::gcra::{self, State};
use palisade_ratelimit::{
    FailMode, HeaderStyle, MAX_QUOTAS, ManualClock, MemoryStore, Mode, Policy, Quota, RateLimiter,
    RateStore, StoreError, Timestamp,
};
use proptest::prelude::*;

const START: Timestamp = Timestamp(1_700_000_000_000_000);

fn clock() -> ManualClock {
    ManualClock::new(START.into())
}

fn limiter(
    quotas: &[&str],
    clock: &ManualClock,
) -> RateLimiter<MemoryStore<ManualClock>, ManualClock> {
    RateLimiter::with_clock(
        "api",
        Policy::parse(quotas).unwrap(),
        MemoryStore::with_clock(clock.clone()).with_max_entries(10_000),
        clock.clone(),
    )
}

#[test]
fn quota_strings_parse() {
    for (text, limit, seconds) in [
        ("100/minute", 100, 60),
        ("5/min", 5, 60),
        ("10 per second", 10, 1),
        ("10 PER Second", 10, 1),
        (" 1000 / day ", 1000, 86_400),
        ("3/h", 3, 3600),
        ("7/s", 7, 1),
        ("2 per hours", 2, 3600),
    ] {
        let quota = Quota::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(
            (quota.limit(), quota.period()),
            (limit, Duration::from_secs(seconds)),
            "{text}"
        );
    }
    let quota: Quota = serde_json::from_str("\"100/minute\"").unwrap();
    assert_eq!(quota.to_string(), "100/minute");
}

#[test]
fn bad_quota_strings_are_config_errors_naming_the_value() {
    for text in [
        "",
        "100",
        "/minute",
        "x/minute",
        "-1/minute",
        "0/minute",
        "100/fortnight",
        "1.5/s",
        "100 minute",
        "99999999999/s",
        "2000000/second",
    ] {
        let error = Quota::parse(text).unwrap_err();
        assert!(
            error.to_string().contains(&format!("{text:?}")),
            "{text}: {error}"
        );
    }
    assert!(serde_json::from_str::<Quota>("\"10/parsec\"").is_err());
    assert!(Policy::parse::<[&str; 0]>([]).is_err());
    assert!(
        Policy::parse(["1/s", "2/s", "3/s", "4/s", "5/s"]).is_err(),
        "more than MAX_QUOTAS"
    );
    let policy: Policy = serde_json::from_str(r#"["100/minute", "10/second"]"#).unwrap();
    assert_eq!(policy.burst(), 10, "burst comes from the shortest quota");
}

#[tokio::test]
async fn burst_then_sustained_rate() {
    // Scraping: a client may burst to the limit at once, then gets exactly
    // the refill rate.
    let clock = clock();
    let limiter = limiter(&["10/second"], &clock);
    for _ in 0..10 {
        limiter.consume("client", 1).await.unwrap();
    }
    let refused = limiter.consume("client", 1).await.unwrap_err();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["retry-after"],
        "1",
        "100 ms rounds up to 1 s"
    );
    clock.advance(Duration::from_millis(99));
    assert!(
        limiter.consume("client", 1).await.is_err(),
        "one token takes 100 ms"
    );
    clock.advance(Duration::from_millis(1));
    assert!(limiter.consume("client", 1).await.is_ok());
    assert!(limiter.consume("client", 1).await.is_err());
}

#[tokio::test]
async fn every_quota_must_allow_and_a_refusal_spends_none() {
    // Burst 3/s AND sustained 5/minute: the minute quota stops a client that
    // paces itself under the burst limit.
    let clock = clock();
    let limiter = limiter(&["3/second", "5/minute"], &clock);
    for _ in 0..3 {
        limiter.consume("k", 1).await.unwrap();
    }
    assert!(limiter.consume("k", 1).await.is_err(), "burst quota");
    clock.advance(Duration::from_secs(1));
    limiter.consume("k", 1).await.unwrap();
    limiter.consume("k", 1).await.unwrap();
    let refused = limiter.consume("k", 1).await.unwrap_err();
    // The minute quota (12 s per request) decides the wait, not the second's.
    assert_eq!(refused.headers()["retry-after"], "11");
    // Refusals spent nothing: hammering while refused does not extend the wait.
    for _ in 0..50 {
        assert!(limiter.consume("k", 1).await.is_err());
    }
    clock.advance(Duration::from_secs(11));
    assert!(limiter.consume("k", 1).await.is_ok());
}

#[tokio::test]
async fn weighted_cost_check_and_reset() {
    let clock = clock();
    let limiter = limiter(&["10/minute"], &clock);
    let admitted = limiter.consume("k", 4).await.unwrap();
    assert_eq!(admitted.decision().unwrap().remaining, 6);
    let dry = limiter.check("k", 7).await.unwrap();
    assert!(!dry.allowed);
    let dry = limiter.check("k", 6).await.unwrap();
    assert!(dry.allowed);
    assert_eq!(dry.remaining, 0);
    // The dry run spent nothing.
    assert_eq!(
        limiter
            .consume("k", 1)
            .await
            .unwrap()
            .decision()
            .unwrap()
            .remaining,
        5
    );
    // A cost above the limit can never pass.
    assert!(limiter.consume("fresh", 11).await.is_err());
    limiter.reset("k").await.unwrap();
    assert_eq!(
        limiter
            .consume("k", 1)
            .await
            .unwrap()
            .decision()
            .unwrap()
            .remaining,
        9
    );
}

#[tokio::test]
async fn limiters_and_keys_do_not_share_state() {
    let clock = clock();
    let store = MemoryStore::with_clock(clock.clone()).with_max_entries(1000);
    let login = RateLimiter::with_clock(
        "login",
        Policy::parse(["1/minute"]).unwrap(),
        store.clone(),
        clock.clone(),
    );
    let search = RateLimiter::with_clock(
        "search",
        Policy::parse(["1/minute"]).unwrap(),
        store,
        clock.clone(),
    );
    login.consume("ip4:203.0.113.7", 1).await.unwrap();
    search.consume("ip4:203.0.113.7", 1).await.unwrap();
    login.consume("ip4:203.0.113.8", 1).await.unwrap();
    assert!(login.consume("ip4:203.0.113.7", 1).await.is_err());
}

#[tokio::test]
async fn draft_headers_on_admitted_and_refused_responses() {
    let clock = clock();
    let limiter = limiter(&["2/second", "100/minute"], &clock);
    let admitted = limiter.consume("k", 1).await.unwrap();
    let headers = admitted.headers();
    assert_eq!(
        headers["ratelimit-policy"],
        "\"api-1s\";q=2;w=1, \"api-60s\";q=100;w=60"
    );
    assert_eq!(headers["ratelimit"], "\"api-1s\";r=1;t=1");
    limiter.consume("k", 1).await.unwrap();
    let refused = limiter.consume("k", 1).await.unwrap_err();
    assert_eq!(refused.headers()["ratelimit"], "\"api-1s\";r=0;t=1");
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = serde_json::from_slice(&refused.to_json(None)).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn legacy_headers_report_the_most_restrictive_quota() {
    let clock = clock();
    let limiter = RateLimiter::with_clock(
        "api",
        Policy::parse(["10/second", "12/minute"]).unwrap(),
        MemoryStore::with_clock(clock.clone()).with_max_entries(100),
        clock.clone(),
    )
    .headers(HeaderStyle::Legacy);
    for _ in 0..9 {
        limiter.consume("k", 1).await.unwrap();
    }
    let admitted = limiter.consume("k", 1).await.unwrap();
    let headers = admitted.headers();
    // After 10: the second quota has 0 left, the minute quota 2; 0 wins.
    assert_eq!(headers["x-ratelimit-limit"], "10");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(headers["x-ratelimit-reset"], "1");

    let epoch = RateLimiter::with_clock(
        "api",
        Policy::parse(["1/minute"]).unwrap(),
        MemoryStore::with_clock(clock.clone()).with_max_entries(100),
        clock.clone(),
    )
    .headers(HeaderStyle::LegacyEpoch);
    let admitted = epoch.consume("k", 1).await.unwrap();
    assert_eq!(
        admitted.headers()["x-ratelimit-reset"],
        (START.as_secs_ceil() + 60).to_string()
    );
    let none = RateLimiter::with_clock(
        "api",
        Policy::parse(["1/minute"]).unwrap(),
        MemoryStore::default(),
        clock,
    )
    .headers(HeaderStyle::None);
    assert!(none.consume("k", 1).await.unwrap().headers().is_empty());
}

/// A store that is down (Redis unreachable).
struct DownStore;

impl RateStore for DownStore {
    async fn decide(
        &self,
        _: &str,
        _: &Policy,
        _: u32,
        _: Mode,
    ) -> Result<palisade_ratelimit::Decision, StoreError> {
        Err(down())
    }

    async fn reset(&self, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
}

fn down() -> StoreError {
    StoreError::unavailable("connection refused")
}

#[tokio::test]
async fn store_failure_follows_the_fail_mode() {
    let policy = Policy::parse(["1/minute"]).unwrap();
    // Fail-open is an explicit choice (the default is the memory fallback).
    let open = RateLimiter::new("api", policy.clone(), DownStore).fail_mode(FailMode::Open);
    let admitted = open.consume("k", 1).await.unwrap();
    assert!(admitted.decision().is_none(), "admitted unmetered");
    assert!(open.consume("k", 1).await.is_ok());
    assert_eq!(
        (open.store_failures(), open.store_skips()),
        (1, 1),
        "the second skipped the dead store"
    );

    let closed = RateLimiter::new("login", policy.clone(), DownStore).fail_mode(FailMode::Closed);
    let refused = closed.consume("k", 1).await.unwrap_err();
    assert_eq!(refused.status(), 503);
    let body = String::from_utf8(refused.to_json(None)).unwrap();
    assert!(
        !body.contains("refused"),
        "the store error is logged, not sent: {body}"
    );

    // With a fallback, the limit still holds per instance.
    let fallback = RateLimiter::new("api", policy, DownStore)
        .fail_mode(FailMode::Closed)
        .fallback(MemoryStore::new().with_max_entries(100));
    assert!(fallback.consume("k", 1).await.is_ok());
    assert_eq!(fallback.consume("k", 1).await.unwrap_err().status(), 429);
}

/// A store that can be switched off, counting the calls it gets.
struct FlakyStore {
    up: AtomicBool,
    calls: AtomicU32,
    memory: MemoryStore<ManualClock>,
}

impl RateStore for FlakyStore {
    async fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> Result<palisade_ratelimit::Decision, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.up.load(Ordering::SeqCst) {
            Ok(self.memory.decide_now(key, policy, cost, mode))
        } else {
            Err(down())
        }
    }

    async fn reset(&self, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_dead_store_is_probed_once_per_cooldown_and_recovers() {
    // A Redis outage must not cost every request a timeout, and the limiter
    // must go back to Redis by itself once it answers.
    let clock = clock();
    let store = Arc::new(FlakyStore {
        up: AtomicBool::new(false),
        calls: AtomicU32::new(0),
        memory: MemoryStore::with_clock(clock.clone()).with_max_entries(100),
    });
    let limiter = RateLimiter::with_clock(
        "api",
        Policy::parse(["100/minute"]).unwrap(),
        Arc::clone(&store),
        clock.clone(),
    )
    .fail_mode(FailMode::Closed)
    .store_cooldown(Duration::from_secs(1));
    assert_eq!(limiter.consume("k", 1).await.unwrap_err().status(), 503);
    for _ in 0..10 {
        assert_eq!(limiter.consume("k", 1).await.unwrap_err().status(), 503);
    }
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        1,
        "skipped during the cool-down"
    );
    assert_eq!(limiter.store_skips(), 10);

    clock.advance(Duration::from_millis(1001));
    assert_eq!(limiter.consume("k", 1).await.unwrap_err().status(), 503);
    assert_eq!(limiter.consume("k", 1).await.unwrap_err().status(), 503);
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        2,
        "one probe after the cool-down"
    );
    assert_eq!(limiter.store_failures(), 2);

    // Back up: the next probe succeeds and every request is metered again.
    store.up.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_millis(1001));
    for call in 3..8 {
        assert!(limiter.consume("k", 1).await.unwrap().decision().is_some());
        assert_eq!(store.calls.load(Ordering::SeqCst), call);
    }

    // A wall clock stepping back does not stretch a cool-down.
    store.up.store(false, Ordering::SeqCst);
    assert!(limiter.consume("k", 1).await.is_err());
    store.up.store(true, Ordering::SeqCst);
    clock.set(Timestamp(START.as_micros()).into());
    assert!(
        limiter.consume("k", 1).await.is_ok(),
        "probed despite the clock going back"
    );
}

#[test]
fn memory_stays_bounded_under_a_distributed_flood() {
    // 10 million source addresses would exhaust an unbounded map; here three
    // times the cap of distinct keys keeps the store at its cap.
    let clock = clock();
    let store = MemoryStore::with_clock(clock.clone()).with_max_entries(5_000);
    let policy = Policy::parse(["5/minute"]).unwrap();
    for i in 0..15_000u32 {
        let decision = store.decide_now(&format!("ip4:{i}"), &policy, 1, Mode::Consume);
        assert!(decision.allowed);
    }
    let stats = store.stats();
    assert!(stats.keys <= store.max_keys(), "{stats:?}");
    assert!(store.max_keys() >= 5_000 && store.max_keys() < 5_000 + 5_000 / 2);
    assert!(stats.lossy_evictions > 0, "live keys had to go: {stats:?}");

    // Recovered entries are reclaimed first: after a minute every key has
    // recovered, and new keys evict nothing live.
    clock.advance(Duration::from_secs(61));
    let lossy = stats.lossy_evictions;
    let old_keys = stats.keys as u64;
    for i in 0..15_000u32 {
        store.decide_now(&format!("ip6:{i}"), &policy, 1, Mode::Consume);
        clock.advance(Duration::from_micros(1));
    }
    let stats = store.stats();
    assert_eq!(
        stats.reclaimed, old_keys,
        "every recovered entry went first"
    );
    assert!(stats.keys <= store.max_keys());
    // Only the new keys beyond the cap were evicted live.
    let new_lossy = stats.lossy_evictions - lossy;
    assert!(new_lossy <= 15_000 - 4_500, "{stats:?}");
}

#[test]
fn a_store_below_its_cap_never_evicts_live_keys() {
    // Uneven hashing must not reset limits while the store as a whole has
    // room (each lossy eviction hands a client a fresh quota).
    let policy = Policy::parse(["5/hour"]).unwrap();
    for max_keys in [100, 1_000, 5_000, 10_000, 50_000] {
        for round in 0..5 {
            let store = MemoryStore::with_clock(clock()).with_max_entries(max_keys);
            for i in 0..max_keys * 95 / 100 {
                store.decide_now(&format!("{round}:{i}"), &policy, 1, Mode::Consume);
            }
            assert_eq!(store.stats().lossy_evictions, 0, "max_keys {max_keys}");
        }
    }
}

#[test]
fn eviction_prefers_the_least_recently_seen() {
    let clock = clock();
    let store = MemoryStore::with_clock(clock.clone()).with_max_entries(1_000);
    let policy = Policy::parse(["2/hour"]).unwrap();
    // The victim key is active; a flood of one-shot keys fills the store.
    store.decide_now("victim", &policy, 1, Mode::Consume);
    for i in 0..5_000u32 {
        clock.advance(Duration::from_millis(1));
        if i % 100 == 0 {
            // The victim keeps being seen (and refused: it spent its 2/hour).
            store.decide_now("victim", &policy, 1, Mode::Consume);
        }
        store.decide_now(&format!("flood:{i}"), &policy, 1, Mode::Consume);
    }
    let decision = store.decide_now("victim", &policy, 1, Mode::Consume);
    assert!(
        !decision.allowed,
        "an active key is not evicted (which would reset its limit)"
    );
}

fn schedule() -> impl Strategy<Value = Vec<(u64, u32)>> {
    prop::collection::vec((0u64..400_000, 1u32..4), 1..120)
}

proptest! {
    #[test]
    fn never_more_than_burst_plus_rate_times_elapsed(
        limits in prop::collection::vec((1u32..20, 1u64..5), 1..=MAX_QUOTAS),
        events in schedule(),
    ) {
        // The same property `tests/redis.rs` checks against the Redis store.
        let quotas: Vec<Quota> = limits.iter().map(|&(limit, secs)| Quota::new(limit, Duration::from_secs(secs)).unwrap()).collect();
        let policy = Policy::new(quotas.clone()).unwrap();
        let clock = clock();
        let store = MemoryStore::with_clock(clock.clone()).with_max_entries(100);
        let mut elapsed = 0u64;
        let mut admitted: u64 = 0;
        for (advance, cost) in events {
            clock.advance(Duration::from_micros(advance));
            elapsed += advance;
            let before = store.decide_now("k", &policy, 1, Mode::Check);
            let decision = store.decide_now("k", &policy, cost, Mode::Consume);
            if decision.allowed {
                admitted += u64::from(cost);
            } else {
                let after = store.decide_now("k", &policy, 1, Mode::Check);
                prop_assert_eq!(before, after, "a refusal consumes nothing");
                prop_assert!(decision.retry_after.is_some());
            }
            for quota in &quotas {
                let interval = quota.period().as_micros() as u64 / u64::from(quota.limit());
                let bound = u64::from(quota.limit()) + elapsed / interval.max(1);
                prop_assert!(admitted <= bound, "{} admitted, bound {} for {}", admitted, bound, quota);
            }
        }
        store.reset_now("k");
        let full = quotas.iter().map(Quota::limit).min().unwrap();
        prop_assert!(store.decide_now("k", &policy, full, Mode::Consume).allowed, "reset restores every quota");
    }

    #[test]
    fn gcra_refusal_leaves_the_state_untouched(
        used in 0u32..30, cost in 1u32..10, advance in 0u64..2_000_000,
    ) {
        let policy = Policy::parse(["5/second", "20/minute"]).unwrap();
        let mut state: State = [0; MAX_QUOTAS];
        for _ in 0..used {
            state = gcra::decide(&state, START, &policy, 1, Mode::Consume).1;
        }
        let now = Timestamp(START.as_micros() + advance);
        let (decision, next) = gcra::decide(&state, now, &policy, cost, Mode::Consume);
        if !decision.allowed {
            prop_assert_eq!(next, state);
        }
        let (_, checked) = gcra::decide(&state, now, &policy, cost, Mode::Check);
        prop_assert_eq!(checked, state, "a dry run never changes the state");
    }

    #[test]
    fn retry_after_is_never_early(limit in 1u32..50, secs in 1u64..120, cost in 1u32..5, used in 0u32..60) {
        let policy = Policy::new([Quota::new(limit, Duration::from_secs(secs)).unwrap()]).unwrap();
        let mut state: State = [0; MAX_QUOTAS];
        for _ in 0..used {
            state = gcra::decide(&state, START, &policy, 1, Mode::Consume).1;
        }
        let (decision, _) = gcra::decide(&state, START, &policy, cost, Mode::Consume);
        if let Some(wait) = decision.retry_after {
            let at = START.saturating_add(wait);
            let (later, _) = gcra::decide(&state, at, &policy, cost, Mode::Consume);
            prop_assert!(later.allowed || cost > limit, "admitted once Retry-After has passed");
            let secs = decision.retry_after_secs().unwrap();
            prop_assert!(Duration::from_secs(secs) >= wait);
        }
    }

    #[test]
    fn quota_parse_never_panics(text in "\\PC{0,24}") {
        let _ = Quota::parse(&text);
    }
}

// Issue #12, 1: a cost no quota can ever admit.
#[tokio::test]
async fn a_cost_above_the_smallest_limit_is_a_config_error_not_a_429_loop() {
    let clock = clock();
    for (quotas, cost) in [
        (&["10/second", "100/minute"][..], 11),
        (&["1/second"][..], 3),
    ] {
        let limiter = limiter(quotas, &clock);
        for _ in 0..3 {
            // Every retry used to get the same 429 and `Retry-After: 1` for ever.
            let error = limiter.consume("k", cost).await.unwrap_err();
            assert_eq!(error.status(), 500, "{quotas:?} cost {cost}");
            assert!(error.headers().get("retry-after").is_none());
            let source = std::error::Error::source(&error).unwrap().to_string();
            assert!(source.contains("cost"), "{source}");
            clock.advance(Duration::from_secs(1));
        }
        assert!(limiter.check("k", cost).await.is_err(), "a dry run too");
        // What the store holds is untouched: the whole burst is still there.
        let burst = limiter.policy().max_cost();
        assert!(limiter.consume("k", burst).await.is_ok());
    }
}

// Issue #12, 1: where a cost is fixed, it is refused at configuration time.
#[test]
fn a_fixed_cost_above_the_smallest_limit_is_refused_at_configuration() {
    let policy = Policy::parse(["100/minute", "10/second"]).unwrap();
    assert_eq!(policy.max_cost(), 10);
    assert_eq!(policy.check_cost(10).unwrap(), 10);
    let error = policy.check_cost(11).unwrap_err();
    assert_eq!(
        error.kind(),
        palisade_ratelimit::ConfigErrorKind::InvalidCost
    );
    assert!(error.to_string().contains("11"), "{error}");
    // The smallest limit need not be the shortest quota's.
    let policy = Policy::parse(["100/second", "5/minute"]).unwrap();
    assert_eq!(policy.max_cost(), 5);
    let limiter = RateLimiter::new("api", policy, MemoryStore::new());
    assert!(limiter.check_cost(5).is_ok());
    assert_eq!(
        palisade_errors::Error::from(limiter.check_cost(6).unwrap_err()).status(),
        500
    );
}

// Issue #12, 2: `remaining` on a refusal is what the state still admits.
#[tokio::test]
async fn a_refused_weighted_request_reports_the_cost_1_requests_still_admitted() {
    let clock = clock();
    let minute = limiter(&["10/minute"], &clock);
    minute.consume("k", 6).await.unwrap();
    let refused = minute.consume("k", 5).await.unwrap_err();
    assert_eq!(refused.headers()["ratelimit"], "\"api-60s\";r=4;t=36");
    let dry = minute.check("k", 5).await.unwrap();
    assert!(!dry.allowed);
    assert_eq!(dry.remaining, 4);
    for _ in 0..4 {
        minute.consume("k", 1).await.unwrap();
    }
    assert_eq!(minute.check("k", 1).await.unwrap().remaining, 0);

    let legacy = limiter(&["3/second", "10/minute"], &clock).headers(HeaderStyle::Legacy);
    legacy.consume("k", 1).await.unwrap();
    let refused = legacy.consume("k", 3).await.unwrap_err();
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "2");

    // The pure function alike (the Redis store reports through it).
    let policy = Policy::parse(["5/second", "20/minute"]).unwrap();
    let (_, state) = gcra::decide(&[0; MAX_QUOTAS], START, &policy, 2, Mode::Consume);
    let (refused, _) = gcra::decide(&state, START, &policy, 4, Mode::Consume);
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 3);
}

// Issue #12, 3: a wall clock stepping back.
#[tokio::test]
async fn a_wall_clock_stepping_back_costs_at_most_one_period() {
    for step_back in [60, 600] {
        let clock = clock();
        let limiter = limiter(&["10/second"], &clock);
        limiter.consume("k", 1).await.unwrap();
        clock.set(std::time::SystemTime::from(START) - Duration::from_secs(step_back));
        let refused = limiter.consume("k", 1).await.unwrap_err();
        assert_eq!(
            refused.headers()["retry-after"],
            "1",
            "stepped back {step_back} s"
        );
        clock.advance(Duration::from_secs(1));
        for _ in 0..10 {
            limiter.consume("k", 1).await.unwrap();
        }
        assert!(limiter.consume("k", 1).await.is_err(), "and no more");
    }
    // The pure function: the theoretical arrival time never runs more than
    // the capacity ahead of now.
    let policy = Policy::parse(["10/second", "100/minute"]).unwrap();
    let (_, state) = gcra::decide(&[0; MAX_QUOTAS], START, &policy, 1, Mode::Consume);
    let back = Timestamp(START.as_micros() - 600_000_000);
    let (decision, _) = gcra::decide(&state, back, &policy, 1, Mode::Check);
    assert!(
        decision.retry_after.unwrap() <= Duration::from_secs(1),
        "{decision:?}"
    );
    assert!(
        decision.reset_after <= Duration::from_secs(60),
        "{decision:?}"
    );
}

// Issue #12, 5: draft header names and windows.
#[tokio::test]
async fn draft_header_names_are_unique_per_quota_and_windows_exact() {
    let clock = clock();
    let limiter = limiter(&["10/second", "20/second"], &clock);
    let admitted = limiter.consume("k", 1).await.unwrap();
    let policy = admitted.headers()["ratelimit-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let names: Vec<&str> = policy
        .split(", ")
        .map(|item| item.split(';').next().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{policy}");
    assert_ne!(names[0], names[1], "{policy}");
    // The RateLimit field names the quota that decided (10/second).
    let current = admitted.headers()["ratelimit"].to_str().unwrap().to_owned();
    let named = current.split(';').next().unwrap();
    assert!(
        policy.contains(&format!("{named};q=10;w=1")),
        "{current} in {policy}"
    );

    let half = RateLimiter::with_clock(
        "api",
        Policy::new([Quota::new(5, Duration::from_millis(500)).unwrap()]).unwrap(),
        MemoryStore::with_clock(clock.clone()),
        clock.clone(),
    );
    let headers = half.consume("k", 1).await.unwrap().headers().clone();
    let policy = headers["ratelimit-policy"].to_str().unwrap();
    assert!(
        !policy.contains("w=1"),
        "a 500 ms window is not 1 s: {policy}"
    );
    assert!(!policy.contains("-1s\""), "nor named so: {policy}");
}

proptest! {
    // The memory store's single-quota path (`gcra::decide_one`) against the
    // general `gcra::decide`: the same decision and stored value, clock
    // steps back (a stored `tat` far ahead of now) included.
    #[test]
    fn the_single_quota_path_decides_exactly_like_decide(
        limit in 1u32..2_000,
        period_ms in 1u64..100_000_000,
        ahead in 0u64..4,
        offset in 0u64..u64::from(u32::MAX),
        behind in any::<bool>(),
        cost in 0u32..2_010,
        others in any::<[u64; MAX_QUOTAS - 1]>(),
        check in any::<bool>(),
    ) {
        let Ok(quota) = Quota::new(limit, Duration::from_millis(period_ms)) else {
            return Ok(());
        };
        let policy = Policy::new([quota]).unwrap();
        let capacity = quota.period().as_micros() as u64 + u64::from(limit);
        // A stored `tat` from long recovered to several capacities ahead.
        let stored = if behind {
            START.as_micros().saturating_sub(offset)
        } else {
            START.as_micros() + ahead * capacity + offset % capacity.max(1)
        };
        let mode = if check { Mode::Check } else { Mode::Consume };
        let mut state: State = [0; MAX_QUOTAS];
        state[0] = stored;
        state[1..].copy_from_slice(&others);
        let (expected, next) = gcra::decide(&state, START, &policy, cost, mode);
        let (decision, tat) = gcra::decide_one(stored, START, &quota, cost, mode);
        prop_assert_eq!(decision, expected);
        prop_assert_eq!(tat, next[0]);
        prop_assert_eq!(&next[1..], &others[..], "the other slots are untouched");
    }
}
