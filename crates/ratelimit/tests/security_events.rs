#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Every denial and store event of the crate, captured: the shared
//! vocabulary's names, the stable fields, and no username or password in
//! any log line. Current-thread runtimes: `EventCapture` is per thread.

use std::net::IpAddr;
use std::time::Duration;

use http::HeaderMap;
use palisade_errors::testing::{CapturedEvent, EventCapture};
use palisade_errors::{SecurityEvent, SubjectHash};
use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};
use palisade_ratelimit::login::{
    FailingLoginStore, LoginThrottle, LoginThrottleConfig, MemoryLoginStore,
};
use palisade_ratelimit::{
    Decision, FailMode, ManualClock, MemoryStore, Mode, Policy, RateLimiter, RateStore, StoreError,
};

const USERNAME: &str = "alice.liddell@example.com";
/// What the application would have checked; never given to the throttle,
/// and it must not appear anywhere.
const PASSWORD: &str = "correct horse battery staple";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn one(capture: &EventCapture, event: SecurityEvent) -> CapturedEvent {
    let events = capture.named(event);
    assert_eq!(events.len(), 1, "{event}: {events:?}");
    events.into_iter().next().unwrap()
}

fn assert_clean(capture: &EventCapture) {
    capture.assert_vocabulary();
    capture.assert_absent(USERNAME);
    capture.assert_absent("alice.liddell");
    capture.assert_absent(PASSWORD);
}

#[tokio::test]
async fn a_rate_limit_refusal_is_excess_rate_limit_exceeded() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let limiter = RateLimiter::new(
        "api",
        Policy::parse(["1/minute"]).unwrap(),
        MemoryStore::new(),
    );
    limiter.consume("ip4:203.0.113.7", 1).await.unwrap();
    assert!(
        capture.security_events().is_empty(),
        "an admission is no event"
    );
    let refused = limiter.consume("ip4:203.0.113.7", 1).await.unwrap_err();
    assert_eq!(refused.status(), 429);

    let event = one(&capture, SecurityEvent::ExcessRateLimitExceeded);
    assert_eq!(event.field("reason"), Some("quota_exhausted"));
    assert_eq!(event.field("client_ip"), Some("203.0.113.7"));
    assert_eq!(event.field("limiter"), Some("api"));
    assert_eq!(
        event.field("subject_hash"),
        Some(SubjectHash::of("ip4:203.0.113.7").as_str())
    );

    // A key that is not a client address has no client_ip, only its hash.
    limiter.consume(USERNAME, 1).await.unwrap();
    limiter.consume(USERNAME, 1).await.unwrap_err();
    let events = capture.named(SecurityEvent::ExcessRateLimitExceeded);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].field("client_ip"), None);
    assert_eq!(
        events[1].field("subject_hash"),
        Some(SubjectHash::of(USERNAME).as_str())
    );
    assert_clean(&capture);
}

#[tokio::test]
async fn a_login_failure_and_a_lock_are_authn_events_with_the_subject_hash() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let config = LoginThrottleConfig {
        free_failures_per_account_ip: 1,
        ..LoginThrottleConfig::default()
    };
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let throttle = LoginThrottle::with_clock(MemoryLoginStore::new(), config, clock).unwrap();
    let from = ip("198.51.100.4");

    let _allowed = throttle.check(USERNAME, from, None).await.unwrap();
    throttle.record_failure(USERNAME, from).await;
    let failed = one(&capture, SecurityEvent::AuthnLoginFail);
    assert_eq!(failed.field("reason"), Some("bad_credentials"));
    assert_eq!(
        failed.field("subject_hash"),
        Some(SubjectHash::of(USERNAME).as_str())
    );
    assert_eq!(failed.field("client_ip"), Some("198.51.100.4"));

    let refused = throttle.check(USERNAME, from, None).await.unwrap_err();
    assert_eq!(refused.status(), 429);
    let locked = one(&capture, SecurityEvent::AuthnLoginLock);
    assert_eq!(locked.field("reason"), Some("account_ip_backoff"));
    assert_eq!(
        locked.field("subject_hash"),
        Some(SubjectHash::of(USERNAME).as_str())
    );
    assert_eq!(locked.field("client_ip"), Some("198.51.100.4"));
    assert_eq!(locked.field("retry_after_secs"), Some("1"));
    assert_clean(&capture);
}

#[tokio::test]
async fn a_login_challenge_is_authn_login_lock_with_reason_challenge() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let config = LoginThrottleConfig {
        account_failure_threshold: 1,
        ..LoginThrottleConfig::default()
    };
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let throttle = LoginThrottle::with_clock(MemoryLoginStore::new(), config, clock).unwrap();
    // One failure puts the account under attack, the next goes on as the
    // slowdown's one, the third is challenged.
    for from in ["198.51.100.5", "198.51.100.6"] {
        let decision = throttle.check(USERNAME, ip(from), None).await.unwrap();
        assert!(!decision.is_challenge());
    }
    assert!(capture.named(SecurityEvent::AuthnLoginLock).is_empty());
    let decision = throttle
        .check(USERNAME, ip("198.51.100.7"), Some("device-token"))
        .await
        .unwrap();
    assert!(decision.is_challenge());
    let challenged = one(&capture, SecurityEvent::AuthnLoginLock);
    assert_eq!(challenged.field("reason"), Some("challenge"));
    assert_eq!(challenged.field("rule"), Some("account_slowdown"));
    assert_eq!(
        challenged.field("subject_hash"),
        Some(SubjectHash::of(USERNAME).as_str())
    );
    assert_eq!(challenged.field("client_ip"), Some("198.51.100.7"));
    assert_clean(&capture);
    capture.assert_absent("device-token");
}

#[tokio::test]
async fn a_failing_login_store_is_store_unavailable_with_the_fail_mode() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let closed =
        LoginThrottle::new(FailingLoginStore::new(), LoginThrottleConfig::default()).unwrap();
    let refused = closed
        .check(USERNAME, ip("192.0.2.8"), None)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 503);
    let events = capture.named(SecurityEvent::StoreUnavailable);
    assert!(!events.is_empty());
    for event in &events {
        assert_eq!(event.field("reason"), Some("fail_closed"));
        assert_eq!(
            event.field("subject_hash"),
            Some(SubjectHash::of(USERNAME).as_str())
        );
        assert_eq!(event.field("client_ip"), Some("192.0.2.8"));
        assert_eq!(event.field("store_error"), Some("unavailable"));
    }
    assert_eq!(events[0].field("operation"), Some("check_ip"));

    let open = LoginThrottle::new(
        FailingLoginStore::new(),
        LoginThrottleConfig {
            fail_mode: FailMode::Open,
            ..LoginThrottleConfig::default()
        },
    )
    .unwrap();
    let _allowed = open.check(USERNAME, ip("192.0.2.8"), None).await.unwrap();
    let last = capture.named(SecurityEvent::StoreUnavailable);
    assert_eq!(last.last().unwrap().field("reason"), Some("fail_open"));
    assert!(capture.named(SecurityEvent::AuthnLoginLock).is_empty());
    assert_clean(&capture);
}

/// A store that is down until told otherwise.
struct FlakyStore {
    memory: MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

impl RateStore for FlakyStore {
    async fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> Result<Decision, StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::unavailable("test store down"));
        }
        self.memory.decide(key, policy, cost, mode).await
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.memory.reset(key).await
    }
}

#[tokio::test]
async fn a_failing_rate_store_is_store_unavailable_then_store_recovered() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let store = std::sync::Arc::new(FlakyStore {
        memory: MemoryStore::new(),
        down: true.into(),
    });
    let limiter = RateLimiter::with_clock(
        "api",
        Policy::parse(["5/second"]).unwrap(),
        std::sync::Arc::clone(&store),
        clock.clone(),
    )
    .fallback(MemoryStore::new().with_max_entries(100))
    .store_cooldown(Duration::from_secs(1));
    limiter.consume("ip4:192.0.2.9", 1).await.unwrap();
    let down = one(&capture, SecurityEvent::StoreUnavailable);
    assert_eq!(down.field("reason"), Some("memory_fallback"));
    assert_eq!(down.field("limiter"), Some("api"));

    let closed = RateLimiter::new("login", Policy::parse(["5/second"]).unwrap(), FailingRate)
        .fail_mode(FailMode::Closed);
    assert_eq!(
        closed
            .consume("ip4:192.0.2.9", 1)
            .await
            .unwrap_err()
            .status(),
        503
    );
    let events = capture.named(SecurityEvent::StoreUnavailable);
    assert_eq!(events.last().unwrap().field("reason"), Some("fail_closed"));

    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_secs(2));
    limiter.consume("ip4:192.0.2.9", 1).await.unwrap();
    let recovered = one(&capture, SecurityEvent::StoreRecovered);
    assert_eq!(recovered.field("limiter"), Some("api"));
    assert_clean(&capture);
}

struct FailingRate;

impl RateStore for FailingRate {
    async fn decide(&self, _: &str, _: &Policy, _: u32, _: Mode) -> Result<Decision, StoreError> {
        Err(StoreError::timeout("test decision"))
    }

    async fn reset(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError::timeout("test reset"))
    }
}

#[tokio::test]
async fn evicting_live_state_is_store_eviction() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let store = MemoryStore::with_clock(clock).with_max_entries(64);
    let policy = Policy::parse(["1/hour"]).unwrap();
    for i in 0..200u32 {
        store.decide_now(
            &format!("ip4:10.0.{}.{}", i >> 8, i & 0xff),
            &policy,
            1,
            Mode::Consume,
        );
    }
    assert!(store.evictions() > 0);
    let events = capture.named(SecurityEvent::StoreEviction);
    assert!(!events.is_empty());
    assert_eq!(events[0].field("reason"), Some("rate_limit_store_full"));

    let logins = LoginThrottle::new(
        MemoryLoginStore::new().with_max_entries(64),
        LoginThrottleConfig::default(),
    )
    .unwrap();
    for i in 0..200u32 {
        let from = IpAddr::from([10, 1, (i >> 8) as u8, i as u8]);
        let _allowed = logins.check(&format!("user{i}"), from, None).await.unwrap();
    }
    assert!(logins.store().evictions() > 0);
    let events = capture.named(SecurityEvent::StoreEviction);
    assert!(
        events
            .iter()
            .any(|event| event.field("reason") == Some("login_store_full"))
    );
    assert_clean(&capture);
}

#[tokio::test]
async fn an_unusable_forwarding_header_is_input_validation_fail() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let resolver = ClientIpResolver::behind_proxies(
        [IpNet::parse("10.0.0.0/8").unwrap()],
        ForwardedHeader::XForwardedFor,
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-forwarded-for",
        "203.0.113.7, not-an-address".parse().unwrap(),
    );
    let client = resolver.resolve(ip("10.0.0.1"), &headers);
    assert_eq!(client.ip(), ip("10.0.0.1"), "the proxy, not a guess");
    let event = one(&capture, SecurityEvent::InputValidationFail);
    assert_eq!(event.field("reason"), Some("forwarding_header_unusable"));
    assert_eq!(event.field("client_ip"), Some("10.0.0.1"));

    // The same through raw lines (the actix path), including a line no
    // header value may hold.
    let lines: [&[u8]; 2] = [b"203.0.113.7", b"198.51.100.1\x01"];
    assert_eq!(
        resolver.resolve_lines(ip("10.0.0.1"), lines).ip(),
        ip("10.0.0.1")
    );
    assert_eq!(capture.named(SecurityEvent::InputValidationFail).len(), 2);
    assert_clean(&capture);
}
