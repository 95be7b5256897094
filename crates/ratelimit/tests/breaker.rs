//! The limiter's store breaker on test stores and a manual clock: it opens
//! on a failure rate (never on one slow reply), lets one probe through at a
//! time, closes by itself, and says so in `store_unavailable` and
//! `store_recovered` events.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use palisade_ratelimit::{
    BreakerConfig, ConfigErrorKind, Decision, FailMode, ManualClock, MemoryStore, Mode, Policy,
    RateLimiter, RateStore, StoreError,
};
use tokio::sync::Notify;

/// A store whose calls time out while `slow` is set, and wait for `gate`
/// while `held` is set; it counts the calls it gets.
struct TestStore {
    memory: MemoryStore,
    slow: AtomicBool,
    held: AtomicBool,
    gate: Notify,
    calls: AtomicU32,
}

impl TestStore {
    fn new() -> Arc<TestStore> {
        Arc::new(TestStore {
            memory: MemoryStore::new().with_max_entries(100),
            slow: AtomicBool::new(false),
            held: AtomicBool::new(false),
            gate: Notify::new(),
            calls: AtomicU32::new(0),
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl RateStore for TestStore {
    async fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> Result<Decision, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.held.load(Ordering::SeqCst) {
            self.gate.notified().await;
        }
        if self.slow.load(Ordering::SeqCst) {
            return Err(StoreError::timeout("test decision"));
        }
        Ok(self.memory.decide_now(key, policy, cost, mode))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.memory.reset_now(key);
        Ok(())
    }
}

/// Every test here captures events: a callsite first reached on a thread
/// with no subscriber would otherwise be cached as uninteresting for the
/// test that checks events.
fn capture() -> (EventCapture, tracing::subscriber::DefaultGuard) {
    let capture = EventCapture::new();
    let guard = capture.set_default();
    (capture, guard)
}

fn clock() -> ManualClock {
    ManualClock::from_unix_secs(1_700_000_000)
}

#[tokio::test]
async fn one_slow_reply_does_not_open_the_breaker() {
    let (_capture, _guard) = capture();
    let store = TestStore::new();
    let limiter = RateLimiter::with_clock(
        "api",
        Policy::parse(["100/minute"]).unwrap(),
        Arc::clone(&store),
        clock(),
    );
    store.slow.store(true, Ordering::SeqCst);
    let admitted = limiter.consume("k", 1).await.unwrap();
    assert!(
        admitted.decision().is_some(),
        "the default: metered by the memory fallback, not admitted unmetered"
    );
    store.slow.store(false, Ordering::SeqCst);
    for call in 2..=30 {
        limiter.consume("k", 1).await.unwrap();
        assert_eq!(store.calls(), call, "every request asks the store");
    }
    assert_eq!((limiter.store_failures(), limiter.store_skips()), (1, 0));
}

#[tokio::test]
async fn a_failure_rate_opens_the_breaker_and_one_probe_at_a_time_closes_it() {
    let (capture, _guard) = capture();
    let clock = clock();
    let store = TestStore::new();
    let config = BreakerConfig {
        min_calls: 5,
        failure_rate_percent: 50,
        window_ms: 10_000,
        open_ms: 1_000,
        ..BreakerConfig::default()
    };
    let limiter = Arc::new(
        RateLimiter::with_clock(
            "api",
            Policy::parse(["100/minute"]).unwrap(),
            Arc::clone(&store),
            clock.clone(),
        )
        .breaker(config)
        .unwrap(),
    );
    // 3 successes, then failures: 5 calls with 2 failures stay closed; the
    // rate reaches 50 % at the 6th call (3 of 6).
    for _ in 0..3 {
        limiter.consume("k", 1).await.unwrap();
    }
    store.slow.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        limiter.consume("k", 1).await.unwrap();
    }
    // The window started at the first failure: 3 failures of 3 calls is
    // under the minimum of 5 calls.
    assert_eq!(limiter.store_skips(), 0);
    limiter.consume("k", 1).await.unwrap();
    limiter.consume("k", 1).await.unwrap();
    assert_eq!(store.calls(), 8);
    assert_eq!(
        limiter.store_skips(),
        0,
        "5 failures in 5 calls: opened now"
    );
    for _ in 0..10 {
        limiter.consume("k", 1).await.unwrap();
    }
    assert_eq!(
        (store.calls(), limiter.store_skips()),
        (8, 10),
        "open: skipped"
    );
    let events = capture.named(SecurityEvent::StoreUnavailable);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].field("breaker"), Some("closed"));
    assert_eq!(events[0].field("trigger"), Some("call_failed"));
    assert_eq!(events[1].field("breaker"), Some("open"));
    assert_eq!(events[1].field("trigger"), Some("failure_rate"));
    for event in &events {
        assert_eq!(event.field("reason"), Some("memory_fallback"));
        assert_eq!(event.field("store_error"), Some("timeout"));
        assert_eq!(event.field("limiter"), Some("api"));
    }

    // Half-open: one probe, held in the store; everyone else skips meanwhile.
    store.slow.store(false, Ordering::SeqCst);
    store.held.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_millis(1_001));
    let probe = tokio::spawn({
        let limiter = Arc::clone(&limiter);
        async move { limiter.consume("k", 1).await.is_ok() }
    });
    while store.calls() < 9 {
        tokio::task::yield_now().await;
    }
    for _ in 0..5 {
        limiter.consume("k", 1).await.unwrap();
    }
    assert_eq!(store.calls(), 9, "one probe at a time");
    store.held.store(false, Ordering::SeqCst);
    store.gate.notify_one();
    assert!(probe.await.unwrap());
    for call in 10..15 {
        limiter.consume("k", 1).await.unwrap();
        assert_eq!(store.calls(), call, "closed again, by itself");
    }
    let recovered = capture.named(SecurityEvent::StoreRecovered);
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].field("limiter"), Some("api"));
    capture.assert_vocabulary();
}

#[tokio::test]
async fn a_failed_probe_keeps_it_open_for_another_period() {
    let (_capture, _guard) = capture();
    let clock = clock();
    let store = TestStore::new();
    let limiter = RateLimiter::with_clock(
        "api",
        Policy::parse(["100/minute"]).unwrap(),
        Arc::clone(&store),
        clock.clone(),
    )
    .breaker(BreakerConfig {
        min_calls: 2,
        ..BreakerConfig::default()
    })
    .unwrap();
    store.slow.store(true, Ordering::SeqCst);
    for _ in 0..4 {
        limiter.consume("k", 1).await.unwrap();
    }
    assert_eq!(store.calls(), 2);
    clock.advance(Duration::from_millis(1_001));
    limiter.consume("k", 1).await.unwrap();
    limiter.consume("k", 1).await.unwrap();
    assert_eq!(store.calls(), 3, "one failed probe, then open again");
    store.slow.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_millis(1_001));
    limiter.consume("k", 1).await.unwrap();
    limiter.consume("k", 1).await.unwrap();
    assert_eq!(store.calls(), 5, "recovered");
}

#[tokio::test]
async fn each_instance_falls_back_to_its_share() {
    let (_capture, _guard) = capture();
    let store = TestStore::new();
    store.slow.store(true, Ordering::SeqCst);
    let limiter = RateLimiter::new(
        "api",
        Policy::parse(["10/minute"]).unwrap(),
        Arc::clone(&store),
    )
    .breaker(BreakerConfig {
        fallback_instances: 4,
        ..BreakerConfig::default()
    })
    .unwrap();
    let mut admitted = 0;
    for _ in 0..10 {
        if limiter.consume("k", 1).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 3, "10 / 4 instances, rounded up");
}

#[tokio::test]
async fn fail_open_and_closed_stay_explicit_choices() {
    let (_capture, _guard) = capture();
    let store = TestStore::new();
    store.slow.store(true, Ordering::SeqCst);
    let policy = Policy::parse(["1/minute"]).unwrap();
    let open = RateLimiter::new("api", policy.clone(), Arc::clone(&store))
        .breaker(serde_json::from_str(r#"{"fail_mode": "open"}"#).unwrap())
        .unwrap();
    for _ in 0..3 {
        assert!(open.consume("k", 1).await.unwrap().decision().is_none());
    }
    let closed =
        RateLimiter::new("api", policy.clone(), Arc::clone(&store)).fail_mode(FailMode::Closed);
    assert_eq!(closed.consume("k", 1).await.unwrap_err().status(), 503);
    let default = RateLimiter::new("api", policy, Arc::clone(&store));
    assert!(default.consume("k", 1).await.is_ok());
    assert_eq!(default.consume("k", 1).await.unwrap_err().status(), 429);
}

#[test]
fn a_breaker_config_is_read_and_checked() {
    let (_capture, _guard) = capture();
    let config: BreakerConfig = serde_json::from_str(
        r#"{"window_ms": 5000, "failure_rate_percent": 80, "min_calls": 50, "open_ms": 500}"#,
    )
    .unwrap();
    assert_eq!(
        (
            config.window_ms,
            config.failure_rate_percent,
            config.min_calls,
            config.open_ms
        ),
        (5_000, 80, 50, 500)
    );
    assert!(config.open_on_unreachable);
    assert_eq!(config.fail_mode, None);
    assert!(serde_json::from_str::<BreakerConfig>(r#"{"windw_ms": 1}"#).is_err());
    for bad in [
        r#"{"min_calls": 0}"#,
        r#"{"failure_rate_percent": 101}"#,
        r#"{"window_ms": 0}"#,
        r#"{"open_ms": 0}"#,
        r#"{"fallback_instances": 0}"#,
    ] {
        let config: BreakerConfig = serde_json::from_str(bad).unwrap();
        let error = RateLimiter::new(
            "api",
            Policy::parse(["1/second"]).unwrap(),
            TestStore::new(),
        )
        .breaker(config)
        .unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::InvalidBreaker, "{bad}");
    }
}
