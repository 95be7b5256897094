//! The Redis store against a real Redis (127.0.0.1:6379; under `CI=true` an
//! unreachable Redis fails these tests instead of skipping them), and against
//! a private `redis-server` this file starts and kills for the failure modes.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report; skips say why

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use palisade_ratelimit::gcra::State;
use palisade_ratelimit::{
    FailMode, MAX_QUOTAS, ManualClock, MemoryStore, Mode, Policy, Quota, RateLimiter, RateStore,
    RedisStore, Timestamp,
};
use proptest::prelude::*;

/// The Redis under test: 127.0.0.1:6379, or the private Redis Cluster
/// `cargo xtask ci` runs these tests on a second time.
fn url() -> String {
    redis_conformance::redis_url()
}
const START: Timestamp = Timestamp(1_700_000_000_000_000);

/// A key prefix no other test (or earlier run) uses.
fn unique_prefix(test: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "palisade-test:{test}:{}:{nanos}:{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The shared Redis under a fresh key prefix (returned too), or `None`
/// (skip) when it is down outside CI.
async fn shared_store_with_prefix(test: &str) -> Option<(RedisStore, String)> {
    let prefix = unique_prefix(test);
    let store = shared_store_at(&prefix).await?;
    Some((store, prefix))
}

async fn shared_store(test: &str) -> Option<RedisStore> {
    shared_store_at(&unique_prefix(test)).await
}

async fn shared_store_at(prefix: &str) -> Option<RedisStore> {
    let store = RedisStore::connect_lazy(&url())
        .unwrap()
        .with_key_prefix(prefix)
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let probe = store
        .decide(
            "probe",
            &Policy::parse(["1000/second"]).unwrap(),
            0,
            Mode::Check,
        )
        .await;
    match probe {
        Ok(_) => Some(store),
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Redis at {} is required under CI=true: {error}",
                url()
            );
            eprintln!("skipping: Redis at {} is unreachable: {error}", url());
            None
        }
    }
}

#[tokio::test]
async fn two_instances_sharing_redis_enforce_one_global_limit() {
    // Without a shared store, N instances would each admit the full quota.
    let Some((store, prefix)) = shared_store_with_prefix("global").await else {
        return;
    };
    let policy = Policy::parse(["100/hour"]).unwrap();
    let first = Arc::new(
        RateLimiter::new("api", policy.clone(), store.clone()).fail_mode(FailMode::Closed),
    );
    // A second instance: its own connection, the same Redis and prefix.
    let second_store = shared_store_at(&prefix).await.unwrap();
    let second =
        Arc::new(RateLimiter::new("api", policy, second_store).fail_mode(FailMode::Closed));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let limiter = if i % 2 == 0 {
            Arc::clone(&first)
        } else {
            Arc::clone(&second)
        };
        tasks.push(tokio::spawn(async move {
            match limiter.consume("ip4:198.51.100.1", 1).await {
                Ok(_) => 1u32,
                Err(error) => {
                    assert_eq!(
                        error.status(),
                        429,
                        "no request may fail for another reason"
                    );
                    0
                }
            }
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.unwrap();
    }
    assert_eq!(admitted, 100);
}

#[tokio::test]
async fn keys_expire_and_reset_works() {
    let Some((store, prefix)) = shared_store_with_prefix("ttl").await else {
        return;
    };
    let policy = Policy::parse(["2/second", "3/minute"]).unwrap();
    let limiter = RateLimiter::new("api", policy, store.clone());
    limiter.consume("k}{evil", 1).await.unwrap();
    limiter.consume("k}{evil", 1).await.unwrap();
    assert_eq!(
        limiter.consume("k}{evil", 1).await.unwrap_err().status(),
        429
    );
    limiter.reset("k}{evil").await.unwrap();
    assert!(limiter.consume("k}{evil", 1).await.is_ok());

    // The key carries a TTL no longer than the time to full recovery.
    let mut connection = redis_conformance::raw_connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    // A fixed-length digest: no user text in Redis, and a hash tag the
    // user part (with its braces) cannot choose.
    let key = &keys[0];
    assert_eq!(key, &store.redis_key("3.api:k}{evil"));
    let (tag, rest) = key
        .strip_prefix(&format!("{prefix}:{{"))
        .unwrap()
        .split_once('}')
        .unwrap();
    assert_eq!((tag.len(), rest.len()), (16, 48));
    assert!(
        tag.bytes()
            .chain(rest.bytes())
            .all(|b| b.is_ascii_hexdigit())
    );
    assert!(!key.contains("evil"));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 20_001,
        "ttl {ttl} ms (one of 3/minute spent: 20 s)"
    );
}

#[tokio::test]
async fn noscript_after_a_script_flush_is_handled() {
    let Some(store) = shared_store("noscript").await else {
        return;
    };
    let policy = Policy::parse(["5/minute"]).unwrap();
    store.decide("k", &policy, 1, Mode::Consume).await.unwrap();
    let mut connection = redis_conformance::raw_connection().await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .unwrap();
    let decision = store.decide("k", &policy, 1, Mode::Consume).await.unwrap();
    assert_eq!(decision.remaining, 3);
}

/// Runs a schedule on the memory store (manual clock) and on Redis (the
/// test-only script variant at the same times): same decisions.
async fn equivalent(
    store: &RedisStore,
    key: &str,
    policy: &Policy,
    events: &[(u64, u32, bool)],
) -> Result<(), String> {
    let clock = ManualClock::new(START.into());
    let memory = MemoryStore::with_clock(clock.clone()).with_max_entries(100);
    let mut now = START;
    for &(advance, cost, consume) in events {
        clock.advance(Duration::from_micros(advance));
        now = Timestamp(now.as_micros() + advance);
        let mode = if consume { Mode::Consume } else { Mode::Check };
        let expected = memory.decide_now(key, policy, cost, mode);
        let got = store
            .decide_at(key, policy, cost, mode, now)
            .await
            .map_err(|e| e.to_string())?;
        if expected != got {
            return Err(format!(
                "at +{} µs cost {cost} {mode:?}: memory {expected:?}, redis {got:?}",
                now.as_micros() - START.as_micros()
            ));
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn memory_and_redis_decide_alike(
        limits in prop::collection::vec((1u32..15, 1u64..4), 1..=MAX_QUOTAS),
        events in prop::collection::vec((0u64..700_000, 1u32..4, any::<bool>()), 1..60),
    ) {
        let runtime = runtime();
        let Some(store) = runtime.block_on(shared_store("equivalence")) else { return Ok(()) };
        let quotas: Vec<Quota> = limits.iter().map(|&(limit, secs)| Quota::new(limit, Duration::from_secs(secs)).unwrap()).collect();
        let policy = Policy::new(quotas).unwrap();
        let outcome = runtime.block_on(equivalent(&store, "k", &policy, &events));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }

    #[test]
    fn redis_never_admits_more_than_burst_plus_rate(
        limit in 1u32..20, secs in 1u64..5,
        events in prop::collection::vec((0u64..300_000, 1u32..3), 1..80),
    ) {
        let runtime = runtime();
        let Some(store) = runtime.block_on(shared_store("bound")) else { return Ok(()) };
        let quota = Quota::new(limit, Duration::from_secs(secs)).unwrap();
        let policy = Policy::from(quota);
        let interval = secs * 1_000_000 / u64::from(limit);
        let mut now = START.as_micros();
        let mut admitted = 0u64;
        for (advance, cost) in events {
            now += advance;
            let before = runtime.block_on(store.decide_at("k", &policy, 1, Mode::Check, Timestamp(now))).unwrap();
            let decision = runtime.block_on(store.decide_at("k", &policy, cost, Mode::Consume, Timestamp(now))).unwrap();
            if decision.allowed {
                admitted += u64::from(cost);
            } else {
                let after = runtime.block_on(store.decide_at("k", &policy, 1, Mode::Check, Timestamp(now))).unwrap();
                prop_assert_eq!(before, after, "a refusal consumed nothing");
            }
            prop_assert!(admitted <= u64::from(limit) + (now - START.as_micros()) / interval);
        }
        runtime.block_on(store.reset("k")).unwrap();
        let fresh = runtime.block_on(store.decide_at("k", &policy, limit, Mode::Consume, Timestamp(now))).unwrap();
        prop_assert!(fresh.allowed, "reset restores the full burst");
    }
}

#[test]
fn state_type_is_inline() {
    // One quota state per slot, no allocation per key.
    assert_eq!(size_of::<State>(), 8 * MAX_QUOTAS);
}

/// A `redis-server` of this test's own, on a free port: stopping it never
/// disturbs the shared one other tests use.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(port: Option<u16>) -> PrivateRedis {
        let port = port.unwrap_or_else(|| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run installs it)");
        let mut redis = PrivateRedis {
            port,
            child: Some(child),
        };
        redis.wait_until_up();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn wait_until_up(&mut self) {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not come up on port {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_follows_each_fail_mode_then_recovers() {
    let mut redis = PrivateRedis::start(None);
    let policy = Policy::parse(["2/minute"]).unwrap();
    let timeout = Duration::from_millis(50);
    let connect = || {
        RedisStore::connect_lazy(&redis.url())
            .unwrap()
            .with_timeout(timeout)
    };
    let open = RateLimiter::new("open", policy.clone(), connect())
        .fail_mode(FailMode::Open)
        .store_cooldown(Duration::from_millis(100));
    let closed = RateLimiter::new("closed", policy.clone(), connect())
        .fail_mode(FailMode::Closed)
        .store_cooldown(Duration::from_millis(100));
    let fallback = RateLimiter::new("fallback", policy, connect())
        .fail_mode(FailMode::Closed)
        .fallback(MemoryStore::new().with_max_entries(100))
        .store_cooldown(Duration::from_millis(100));
    for limiter in [&open, &closed, &fallback] {
        assert!(
            limiter.consume("k", 1).await.unwrap().decision().is_some(),
            "metered by Redis"
        );
    }

    redis.kill();
    let started = std::time::Instant::now();
    // Open: admitted unmetered (a limiter outage is not an API outage).
    for _ in 0..5 {
        assert!(open.consume("k", 1).await.unwrap().decision().is_none());
    }
    // Closed: 503, never "allowed".
    assert_eq!(closed.consume("k", 1).await.unwrap_err().status(), 503);
    // Fallback: the limit holds in memory (this instance's share).
    assert!(fallback.consume("k", 1).await.unwrap().decision().is_some());
    assert!(fallback.consume("k", 1).await.is_ok());
    assert_eq!(fallback.consume("k", 1).await.unwrap_err().status(), 429);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a dead Redis costs a timeout per cool-down, not the client's retry schedule: {:?}",
        started.elapsed()
    );
    assert!(open.store_failures() >= 1);

    // Redis comes back on the same port: after the cool-down each limiter
    // meters through it again, by itself.
    let port = redis.port;
    drop(redis);
    let _redis = PrivateRedis::start(Some(port));
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if open.consume("k2", 1).await.unwrap().decision().is_some()
            && closed.consume("k2", 1).await.is_ok()
        {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "limiters did not go back to Redis");
}

#[macro_use]
#[path = "../../../tests/redis_conformance.rs"]
mod redis_conformance;

/// The store as the conformance tests drive it: one real decision per call.
struct RateConformance(RedisStore);

impl redis_conformance::Subject for RateConformance {
    fn build(url: &str, prefix: &str) -> Result<Self, String> {
        RedisStore::connect_lazy(url)
            .map_err(|error| error.to_string())?
            .with_key_prefix(prefix)
            .map(RateConformance)
            .map_err(|error| error.to_string())
    }

    fn with_timeout(self, timeout: Duration) -> Self {
        RateConformance(self.0.with_timeout(timeout))
    }

    async fn exercise(&self, user_text: &str) -> Result<(), palisade_ratelimit::StoreError> {
        let policy = Policy::parse(["10/second", "100/minute"]).unwrap();
        self.0
            .decide(user_text, &policy, 1, Mode::Consume)
            .await
            .map(|_| ())
    }
}

redis_conformance_tests!(rate_store_conformance, RateConformance);

// Issue #12, 3: the Redis script clamps like the pure function.
#[tokio::test]
async fn a_wall_clock_stepping_back_costs_at_most_one_period_in_redis() {
    let Some(store) = shared_store("clock-back").await else {
        return;
    };
    let policy = Policy::parse(["10/second"]).unwrap();
    for (key, step_back) in [("a", 60), ("b", 600)] {
        let first = store
            .decide_at(key, &policy, 1, Mode::Consume, START)
            .await
            .unwrap();
        assert!(first.allowed);
        let back = Timestamp(START.as_micros() - step_back * 1_000_000);
        let refused = store
            .decide_at(key, &policy, 1, Mode::Consume, back)
            .await
            .unwrap();
        assert!(!refused.allowed);
        assert_eq!(
            refused.retry_after_secs(),
            Some(1),
            "stepped back {step_back} s"
        );
        let later = Timestamp(back.as_micros() + 1_000_000);
        for _ in 0..10 {
            let decision = store
                .decide_at(key, &policy, 1, Mode::Consume, later)
                .await
                .unwrap();
            assert!(decision.allowed, "stepped back {step_back} s");
        }
    }
}

// Issue #12, 2: the remaining count of a refusal, through the script.
#[tokio::test]
async fn a_refused_weighted_request_reports_the_cost_1_requests_still_admitted_in_redis() {
    let Some(store) = shared_store("remaining").await else {
        return;
    };
    let policy = Policy::parse(["10/minute"]).unwrap();
    store
        .decide_at("k", &policy, 6, Mode::Consume, START)
        .await
        .unwrap();
    let refused = store
        .decide_at("k", &policy, 5, Mode::Consume, START)
        .await
        .unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 4);
}

// Issue #12, 3: with a clock that also steps back, the two stores agree.
proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn memory_and_redis_decide_alike_when_the_clock_steps_back(
        limits in prop::collection::vec((1u32..15, 1u64..4), 1..=MAX_QUOTAS),
        events in prop::collection::vec((-3_000_000i64..700_000, 1u32..4, any::<bool>()), 1..40),
    ) {
        let runtime = runtime();
        let Some(store) = runtime.block_on(shared_store("equivalence-back")) else { return Ok(()) };
        let quotas: Vec<Quota> = limits.iter().map(|&(limit, secs)| Quota::new(limit, Duration::from_secs(secs)).unwrap()).collect();
        let policy = Policy::new(quotas).unwrap();
        let clock = ManualClock::new(START.into());
        let memory = MemoryStore::with_clock(clock.clone()).with_max_entries(100);
        let mut now = START.as_micros();
        for (step, cost, consume) in events {
            now = now.saturating_add_signed(step);
            clock.set(Timestamp(now).into());
            let mode = if consume { Mode::Consume } else { Mode::Check };
            let expected = memory.decide_now("k", &policy, cost, mode);
            let got = runtime.block_on(store.decide_at("k", &policy, cost, mode, Timestamp(now))).unwrap();
            prop_assert_eq!(expected, got, "at {} µs", i128::from(now) - i128::from(START.as_micros()));
        }
    }
}
