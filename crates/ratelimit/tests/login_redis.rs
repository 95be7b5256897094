#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The login throttle on Redis (127.0.0.1:6379). Each test has its own key
//! prefix, so they run in parallel. Without Redis they skip, except under
//! `CI=true`, where they fail.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use palisade_errors::redis::RedisConnection;
use palisade_errors::{Error, ErrorKind};
use palisade_ratelimit::login::{
    LoginDecision, LoginStore, LoginThrottle, LoginThrottleConfig, RedisLoginStore, ThrottleReason,
};
use palisade_ratelimit::{Clock, FailMode};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The Redis under test: 127.0.0.1:6379, or the private Redis Cluster
/// `cargo xtask ci` runs these tests on a second time.
fn url() -> String {
    redis_conformance::redis_url()
}
const SECRET: &[u8] = b"login-redis-test-secret-32-bytes";

#[allow(clippy::print_stderr)] // a skip must be visible in the test output
async fn connect() -> Option<RedisConnection> {
    let url = url();
    match palisade_errors::redis::connect(&url).await {
        Ok(connection) => Some(connection),
        Err(error) => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "Redis at {url} is unreachable under CI=true: {error}"
            );
            eprintln!("skipped: Redis at {url} is unreachable ({error})");
            None
        }
    }
}

/// A prefix no other test (or earlier run) uses.
fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "palisade:test:login:{}:{}:{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes a test's keys: trusted markers would otherwise stay 30 days.
async fn clean_up(mut connection: RedisConnection, prefix: &str) {
    let keys: Vec<String> = connection.keys(format!("{prefix}:*")).await.unwrap();
    if !keys.is_empty() {
        let () = connection.del(keys).await.unwrap();
    }
}

fn store(connection: impl Into<RedisConnection>, prefix: &str) -> RedisLoginStore {
    RedisLoginStore::new(connection, SECRET)
        .unwrap()
        .with_key_prefix(prefix)
        .unwrap()
        // Generous for a loaded test machine; the default is 50 ms.
        .with_timeout(Duration::from_secs(1))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn nth_ip(i: u32) -> IpAddr {
    IpAddr::from([10, 9, (i >> 8) as u8, i as u8])
}

use LoginDecision::Allow;

/// The answer during an attack on the account to an attempt without a
/// trusted device.
const CHALLENGE: LoginDecision = LoginDecision::Challenge {
    reason: ThrottleReason::AccountSlowdown,
};

fn outcome(result: Result<LoginDecision, Error>) -> Result<LoginDecision, u64> {
    result.map_err(|error| {
        assert_eq!(error.kind(), ErrorKind::RateLimited, "{error}");
        error.headers()[RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    })
}

async fn wrong_password<S: LoginStore, C: Clock>(
    throttle: &LoginThrottle<S, C>,
    account: &str,
    from: IpAddr,
) -> Result<LoginDecision, u64> {
    let result = outcome(throttle.check(account, from, None).await);
    if result.is_ok() {
        throttle.record_failure(account, from).await;
    }
    result
}

async fn right_password<S: LoginStore, C: Clock>(
    throttle: &LoginThrottle<S, C>,
    account: &str,
    from: IpAddr,
    device: Option<&str>,
) -> Result<LoginDecision, u64> {
    let result = outcome(throttle.check(account, from, device).await);
    if result.is_ok() {
        throttle.record_success(account, from, device).await;
    }
    result
}

#[tokio::test]
async fn online_brute_force_backs_off_on_redis_server_time() {
    let Some(connection) = connect().await else {
        return;
    };
    let config = LoginThrottleConfig {
        free_failures_per_account_ip: 1,
        ..LoginThrottleConfig::default()
    };
    let prefix = unique_prefix();
    let throttle = LoginThrottle::new(store(connection.clone(), &prefix), config).unwrap();
    let attacker = ip("198.51.100.66");

    assert_eq!(
        wrong_password(&throttle, "victim", attacker).await,
        Ok(Allow)
    );
    assert_eq!(wrong_password(&throttle, "victim", attacker).await, Err(1));
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert_eq!(
        wrong_password(&throttle, "victim", attacker).await,
        Ok(Allow)
    );
    assert_eq!(wrong_password(&throttle, "victim", attacker).await, Err(2));
    // Another IP is not affected.
    assert_eq!(
        wrong_password(&throttle, "victim", ip("192.0.2.1")).await,
        Ok(Allow)
    );
    clean_up(connection, &prefix).await;
}

#[tokio::test]
async fn success_resets_the_account_and_its_own_ip_but_not_other_ips() {
    let Some(connection) = connect().await else {
        return;
    };
    let config = LoginThrottleConfig {
        free_failures_per_account_ip: 3,
        account_failure_threshold: 8,
        ..LoginThrottleConfig::default()
    };
    let prefix = unique_prefix();
    let throttle = LoginThrottle::new(store(connection.clone(), &prefix), config).unwrap();
    let attacker = ip("198.51.100.7");
    let user = ip("192.0.2.20");

    for _ in 0..3 {
        assert_eq!(
            wrong_password(&throttle, "carol", attacker).await,
            Ok(Allow)
        );
    }
    assert_eq!(wrong_password(&throttle, "carol", attacker).await, Err(1));
    for _ in 0..2 {
        assert_eq!(wrong_password(&throttle, "carol", user).await, Ok(Allow));
    }
    assert_eq!(
        right_password(&throttle, "carol", user, None).await,
        Ok(Allow)
    );

    // Her pair starts from zero (without the reset her next attempt would
    // already be the fourth)...
    for _ in 0..3 {
        assert_eq!(wrong_password(&throttle, "carol", user).await, Ok(Allow));
    }
    assert_eq!(wrong_password(&throttle, "carol", user).await, Err(1));
    // ...the attacker's pair is untouched...
    assert_eq!(wrong_password(&throttle, "carol", attacker).await, Err(1));
    // ...and the account count did not restart (issue #12: it used to, so
    // every login handed an attacker fresh guesses): 3 + 2 + 3 failures,
    // the success given back, reach the threshold of 8 per window, so
    // strangers are slowed: one goes on, the next is challenged.
    assert_eq!(
        wrong_password(&throttle, "carol", nth_ip(1)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "carol", nth_ip(2)).await,
        Ok(CHALLENGE)
    );
    clean_up(connection, &prefix).await;
}

/// Attack: a stolen device token as an unthrottled guessing channel (see
/// `login_attacks.rs`), on Redis: the marker counts the attempts since the
/// device's last success, and the trust lapses at the budget.
#[tokio::test]
async fn a_stolen_device_token_buys_a_few_guesses_not_unlimited_ones() {
    let Some(connection) = connect().await else {
        return;
    };
    let config = LoginThrottleConfig {
        trusted_device_failures: 3,
        ..LoginThrottleConfig::default()
    };
    let prefix = unique_prefix();
    let throttle = LoginThrottle::new(store(connection.clone(), &prefix), config).unwrap();
    let home = ip("192.0.2.10");
    assert_eq!(
        right_password(&throttle, "victim", home, Some("laptop")).await,
        Ok(Allow)
    );
    for i in 0..21 {
        assert!(wrong_password(&throttle, "victim", nth_ip(i)).await.is_ok());
    }
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(21)).await,
        Ok(CHALLENGE)
    );
    let guess = |i: u32| {
        let throttle = &throttle;
        async move {
            let from = nth_ip(100 + i);
            let result = outcome(throttle.check("victim", from, Some("laptop")).await);
            if result.is_ok() {
                throttle.record_failure("victim", from).await;
            }
            result
        }
    };
    for i in 0..3 {
        assert_eq!(guess(i).await, Ok(Allow));
    }
    for i in 3..8 {
        assert_eq!(guess(i).await, Ok(CHALLENGE));
    }
    assert_eq!(
        right_password(&throttle, "victim", home, Some("laptop")).await,
        Ok(CHALLENGE)
    );
    assert_eq!(
        outcome(
            throttle
                .check("victim", ip("203.0.113.5"), Some("laptop"))
                .await
        ),
        Ok(Allow)
    );
    clean_up(connection, &prefix).await;
}

#[tokio::test]
async fn two_instances_sharing_redis_see_the_same_counters() {
    let (Some(first), Some(second)) = (connect().await, connect().await) else {
        return;
    };
    let prefix = unique_prefix();
    // The plain slowdown (429s), so the Retry-After is shared too.
    let config = LoginThrottleConfig {
        account_failure_threshold: 4,
        challenge_during_slowdown: false,
        ..LoginThrottleConfig::default()
    };
    let a = LoginThrottle::new(store(first.clone(), &prefix), config.clone()).unwrap();
    let b = LoginThrottle::new(store(second, &prefix), config).unwrap();
    let attacker = ip("198.51.100.5");

    // Guesses spread over both instances add up.
    for i in 0..5 {
        let instance = if i % 2 == 0 { &a } else { &b };
        assert_eq!(wrong_password(instance, "dave", attacker).await, Ok(Allow));
    }
    assert_eq!(wrong_password(&a, "dave", attacker).await, Err(1));
    assert_eq!(wrong_password(&b, "dave", attacker).await, Err(1));

    // So does the account's slowdown: four failures started it and the
    // fifth guess took its one attempt per 10 s, on either instance.
    assert_eq!(wrong_password(&a, "dave", nth_ip(1)).await, Err(10));
    assert_eq!(wrong_password(&b, "dave", nth_ip(2)).await, Err(10));

    // A success on one instance is trusted by the other.
    let home = ip("192.0.2.30");
    assert_eq!(
        right_password(&a, "erin", home, Some("device-1")).await,
        Ok(Allow)
    );
    for i in 10..14 {
        assert_eq!(wrong_password(&a, "erin", nth_ip(i)).await, Ok(Allow));
    }
    assert_eq!(wrong_password(&b, "erin", nth_ip(20)).await, Ok(Allow));
    assert_eq!(wrong_password(&b, "erin", nth_ip(21)).await, Err(10));
    // Her address alone is no pass (issue #12: it told her name from an
    // unknown one); her device is.
    assert_eq!(outcome(b.check("erin", home, None).await), Err(10));
    assert_eq!(
        outcome(b.check("erin", ip("203.0.113.3"), Some("device-1")).await),
        Ok(Allow)
    );

    // A different secret is a different keyspace: nothing is shared.
    let other = RedisLoginStore::new(
        connect().await.unwrap(),
        b"another secret of 32 bytes here!",
    )
    .unwrap()
    .with_key_prefix(&prefix)
    .unwrap()
    .with_timeout(Duration::from_secs(1));
    let c = LoginThrottle::new(other, LoginThrottleConfig::default()).unwrap();
    assert_eq!(wrong_password(&c, "dave", attacker).await, Ok(Allow));
    clean_up(first, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_attempts_during_a_slowdown_let_only_one_through() {
    let Some(connection) = connect().await else {
        return;
    };
    let config = LoginThrottleConfig {
        account_failure_threshold: 3,
        ..LoginThrottleConfig::default()
    };
    let prefix = unique_prefix();
    let throttle =
        Arc::new(LoginThrottle::new(store(connection.clone(), &prefix), config).unwrap());
    for i in 0..3 {
        assert_eq!(
            wrong_password(&*throttle, "frank", nth_ip(i)).await,
            Ok(Allow)
        );
    }
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let throttle = Arc::clone(&throttle);
            tokio::spawn(
                async move { outcome(throttle.check("frank", nth_ip(100 + i), None).await) },
            )
        })
        .collect();
    // One unchallenged attempt per 10 s; the others are challenged.
    let mut passed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Allow) => passed += 1,
            other => assert_eq!(other, Ok(CHALLENGE)),
        }
    }
    assert_eq!(passed, 1);
    clean_up(connection, &prefix).await;
}

#[tokio::test]
async fn credential_stuffing_budget_is_per_ip_across_accounts() {
    let Some(connection) = connect().await else {
        return;
    };
    let config = LoginThrottleConfig {
        ip_failures_per_window: 3,
        ..LoginThrottleConfig::default()
    };
    let prefix = unique_prefix();
    let throttle = LoginThrottle::new(store(connection.clone(), &prefix), config).unwrap();
    let stuffer = ip("198.51.100.200");
    for account in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(wrong_password(&throttle, account, stuffer).await, Ok(Allow));
    }
    // One failure back per 86400 / 3 s.
    assert_eq!(
        wrong_password(&throttle, "d@example.com", stuffer).await,
        Err(28_800)
    );
    assert_eq!(
        wrong_password(&throttle, "d@example.com", ip("192.0.2.9")).await,
        Ok(Allow)
    );
    clean_up(connection, &prefix).await;
}

#[tokio::test]
async fn keys_hold_no_usernames_and_all_expire() {
    let Some(connection) = connect().await else {
        return;
    };
    let prefix = unique_prefix();
    let mut inspect = connection.clone();
    let throttle =
        LoginThrottle::new(store(connection, &prefix), LoginThrottleConfig::default()).unwrap();
    let from = ip("192.0.2.77");
    assert_eq!(
        wrong_password(&throttle, "alice@example.com", from).await,
        Ok(Allow)
    );
    assert_eq!(
        right_password(
            &throttle,
            "alice@example.com",
            from,
            Some("secret-device-cookie")
        )
        .await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "alice@example.com", ip("192.0.2.78")).await,
        Ok(Allow)
    );

    let keys: Vec<String> = inspect.keys(format!("{prefix}:*")).await.unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    for key in &keys {
        assert!(!key.contains("alice"), "{key}");
        assert!(!key.contains("secret-device-cookie"), "{key}");
        let ttl: i64 = inspect.pttl(key).await.unwrap();
        assert!(ttl > 0, "{key} has no TTL");
    }
    // Cluster: one account's keys share one hash tag (the IP's budget,
    // `<prefix>:{<ip hash>}:budget`, has its own).
    let tags: std::collections::BTreeSet<&str> = keys
        .iter()
        .filter(|key| !key.ends_with(":budget"))
        .filter_map(|key| key.split('{').nth(1)?.split('}').next())
        .collect();
    assert_eq!(tags.len(), 1, "{keys:?}");
    clean_up(inspect, &prefix).await;
}

#[tokio::test]
async fn a_redis_that_does_not_answer_fails_closed_by_default_and_open_when_configured() {
    // Connect-only check that the test machine has Redis at all (CI rule).
    if connect().await.is_none() {
        return;
    }
    // A "Redis" that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            sockets.push(socket);
        }
    });
    let silent_store = || {
        let client = redis::Client::open(format!("redis://{address}/")).unwrap();
        let connection =
            ConnectionManager::new_lazy_with_config(client, ConnectionManagerConfig::new())
                .unwrap();
        RedisLoginStore::new(connection, SECRET)
            .unwrap()
            .with_key_prefix(&unique_prefix())
            .unwrap()
            .with_timeout(Duration::from_millis(100))
    };

    let closed = LoginThrottle::new(silent_store(), LoginThrottleConfig::default()).unwrap();
    let error = closed
        .check("gina", ip("192.0.2.5"), None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.status(), 503);
    assert_eq!(closed.store_failures(), 1);

    let config = LoginThrottleConfig {
        fail_mode: FailMode::Open,
        ..LoginThrottleConfig::default()
    };
    let open = LoginThrottle::new(silent_store(), config).unwrap();
    assert!(open.check("gina", ip("192.0.2.5"), None).await.is_ok());
    // Both steps timed out and were counted.
    assert_eq!(open.store_failures(), 2);
}

/// The Lua scripts and the memory store's Rust take the same decisions, step
/// for step, on a manual clock (the test-only script variant that takes the
/// time as an argument).
#[cfg(all(feature = "test-util", debug_assertions))]
mod same_as_memory {
    use super::*;
    use palisade_ratelimit::login::MemoryLoginStore;
    use palisade_ratelimit::{ManualClock, Timestamp};

    fn config() -> LoginThrottleConfig {
        LoginThrottleConfig {
            ip_failures_per_window: 12,
            ..LoginThrottleConfig::default()
        }
    }

    /// Brute force with waits, a botnet slowdown with a trusted IP and
    /// device, that device past its budget, a success, and stuffing into
    /// the IP budget.
    async fn scenario<S: LoginStore>(
        throttle: &LoginThrottle<S, ManualClock>,
        clock: &ManualClock,
    ) -> Vec<Result<LoginDecision, u64>> {
        let mut seen = Vec::new();
        let attacker = ip("198.51.100.1");
        seen.push(right_password(throttle, "victim", ip("192.0.2.1"), Some("dev")).await);
        for step in 0..40u64 {
            seen.push(wrong_password(throttle, "victim", attacker).await);
            clock.advance(Duration::from_millis(300 * step));
        }
        for i in 0..25 {
            seen.push(wrong_password(throttle, "victim", nth_ip(i)).await);
            clock.advance(Duration::from_millis(1_700));
        }
        seen.push(outcome(
            throttle.check("victim", ip("203.0.113.5"), None).await,
        ));
        seen.push(outcome(
            throttle.check("victim", ip("203.0.113.2"), Some("x")).await,
        ));
        seen.push(outcome(
            throttle.check("victim", ip("192.0.2.1"), None).await,
        ));
        seen.push(outcome(
            throttle
                .check("victim", ip("203.0.113.1"), Some("dev"))
                .await,
        ));
        // The device's token, stolen: past its budget of attempts since its
        // last success it is slowed like any other.
        for i in 0..12 {
            let from = nth_ip(700 + i);
            let result = outcome(throttle.check("victim", from, Some("dev")).await);
            if result.is_ok() {
                throttle.record_failure("victim", from).await;
            }
            seen.push(result);
        }
        // One attempt of its 10 was spent just above.
        let stolen = &seen[seen.len() - 12..];
        assert!(
            stolen[..9].iter().all(|seen| *seen == Ok(Allow)),
            "{stolen:?}"
        );
        assert!(
            stolen[9..].iter().all(|seen| *seen != Ok(Allow)),
            "{stolen:?}"
        );
        clock.advance(Duration::from_secs(10));
        seen.push(right_password(throttle, "victim", ip("203.0.113.4"), None).await);
        seen.push(wrong_password(throttle, "victim", nth_ip(500)).await);
        let stuffer = ip("198.51.100.99");
        for i in 0..15 {
            seen.push(wrong_password(throttle, &format!("user{i}"), stuffer).await);
            clock.advance(Duration::from_secs(1_000));
        }
        clock.advance(Duration::from_secs(2 * 86_400));
        seen.push(wrong_password(throttle, "victim", attacker).await);
        seen.push(wrong_password(throttle, "user0", stuffer).await);
        seen
    }

    #[tokio::test]
    async fn redis_scripts_decide_exactly_like_the_memory_store() {
        let Some(connection) = connect().await else {
            return;
        };
        let start = Timestamp(1_700_000_000_123_456);

        let memory_clock = ManualClock::new(start.into());
        let memory =
            LoginThrottle::with_clock(MemoryLoginStore::new(), config(), memory_clock.clone())
                .unwrap();
        let expected = scenario(&memory, &memory_clock).await;

        let redis_clock = ManualClock::new(start.into());
        let prefix = unique_prefix();
        let redis_store = store(connection.clone(), &prefix).with_caller_time_for_tests();
        let redis = LoginThrottle::with_clock(redis_store, config(), redis_clock.clone()).unwrap();
        let seen = scenario(&redis, &redis_clock).await;

        assert_eq!(seen, expected);
        // The scenario went through every rule: pair backoff, the IP budget
        // (waits over an hour), the slowdown with its trusted IP and device.
        assert!(expected.iter().filter(|o| o.is_ok()).count() > 20);
        assert!(expected.iter().any(|o| matches!(o, Err(n) if *n > 3_600)));
        let after_botnet = expected.get(66..70).unwrap();
        // A made-up device and the victim's address alone are challenged
        // (issue #12: a trusted address told real names from unknown ones);
        // her device goes through.
        assert!(
            matches!(after_botnet, [_, Ok(CHALLENGE), Ok(CHALLENGE), Ok(Allow)]),
            "{after_botnet:?}"
        );
        clean_up(connection, &prefix).await;
    }
}

/// Issue #12's login attacks, decided by the Lua scripts and by the memory
/// store alike.
#[cfg(all(feature = "test-util", debug_assertions))]
mod attacks_same_as_memory {
    use super::*;
    use palisade_ratelimit::login::MemoryLoginStore;
    use palisade_ratelimit::{ManualClock, Timestamp};

    /// A guesser at the real user's shared address during an attack on a
    /// real and an unknown name; a success during the attack; a short
    /// botnet replay with the real user on new devices.
    async fn scenario<S: LoginStore>(
        throttle: &LoginThrottle<S, ManualClock>,
        clock: &ManualClock,
    ) -> Vec<Result<LoginDecision, u64>> {
        let mut seen = Vec::new();
        let office = ip("192.0.2.50");
        seen.push(right_password(throttle, "alice", office, Some("laptop")).await);
        clock.advance(Duration::from_secs(3_600));
        for (offset, name) in [(0, "alice"), (100, "no-such-user")] {
            for i in 0..21 {
                seen.push(wrong_password(throttle, name, nth_ip(offset + i)).await);
            }
        }
        for _ in 0..12 {
            seen.push(wrong_password(throttle, "alice", office).await);
            seen.push(wrong_password(throttle, "no-such-user", office).await);
            clock.advance(Duration::from_millis(1_300));
        }
        // Alice logs in from a new place during the attack; it goes on.
        seen.push(right_password(throttle, "alice", ip("198.51.100.3"), Some("phone")).await);
        seen.push(wrong_password(throttle, "alice", nth_ip(300)).await);
        // (From another address: the guesser has the office's own pair in
        // backoff.)
        seen.push(outcome(
            throttle
                .check("alice", ip("198.51.100.4"), Some("laptop"))
                .await,
        ));
        // Two seconds of a 100/s botnet, the real user every 100 ms.
        for tick in 0..200u32 {
            seen.push(wrong_password(throttle, "alice", nth_ip(400 + tick)).await);
            if tick % 10 == 0 {
                let device = format!("new-device-{tick}");
                seen.push(
                    right_password(throttle, "alice", ip("203.0.113.77"), Some(&device)).await,
                );
            }
            clock.advance(Duration::from_millis(10));
        }
        seen
    }

    async fn run_both(config: LoginThrottleConfig) -> Option<Vec<Result<LoginDecision, u64>>> {
        let connection = connect().await?;
        let start = Timestamp(1_700_000_000_654_321);
        let memory_clock = ManualClock::new(start.into());
        let memory = LoginThrottle::with_clock(
            MemoryLoginStore::new(),
            config.clone(),
            memory_clock.clone(),
        )
        .unwrap();
        let expected = scenario(&memory, &memory_clock).await;

        let redis_clock = ManualClock::new(start.into());
        let prefix = unique_prefix();
        let redis_store = store(connection.clone(), &prefix).with_caller_time_for_tests();
        let redis = LoginThrottle::with_clock(redis_store, config, redis_clock.clone()).unwrap();
        let seen = scenario(&redis, &redis_clock).await;
        clean_up(connection, &prefix).await;
        assert_eq!(seen, expected);
        Some(seen)
    }

    #[tokio::test]
    async fn redis_scripts_decide_like_memory_on_shared_addresses_successes_and_botnets() {
        let Some(seen) = run_both(LoginThrottleConfig::default()).await else {
            return;
        };
        // The shared address: the real and the unknown name alike.
        let pairs = seen.get(43..67).unwrap();
        for pair in pairs.chunks(2) {
            assert_eq!(pair.first(), pair.get(1), "{pairs:?}");
        }
        assert!(pairs.contains(&Ok(CHALLENGE)));
        // The success left the attack's slowdown in place; the trusted
        // laptop goes through.
        assert_eq!(
            seen.get(67..70).unwrap(),
            [Ok(CHALLENGE), Ok(CHALLENGE), Ok(Allow)]
        );
        // The real user on new devices: challenged, never refused.
        let user: Vec<_> = seen.get(70..).unwrap().iter().skip(1).step_by(11).collect();
        assert_eq!(user.len(), 20);
        assert!(user.iter().all(|o| **o == Ok(CHALLENGE)), "{user:?}");

        let refusing = run_both(LoginThrottleConfig {
            challenge_during_slowdown: false,
            ..LoginThrottleConfig::default()
        })
        .await
        .unwrap();
        let pairs = refusing.get(43..67).unwrap();
        for pair in pairs.chunks(2) {
            assert_eq!(pair.first(), pair.get(1), "{pairs:?}");
        }
        assert!(pairs.iter().any(|o| matches!(o, Err(1..=10))));
    }
}

#[macro_use]
#[path = "../../../tests/redis_conformance.rs"]
mod redis_conformance;

/// The store as the conformance tests drive it: one login attempt by the
/// user's text, counted as a failure (the IP's budget and the account's
/// state), as the throttle's `check` does.
struct LoginConformance(RedisLoginStore);

impl redis_conformance::Subject for LoginConformance {
    fn build(url: &str, prefix: &str) -> Result<Self, String> {
        let hasher = palisade_ratelimit::login::IdHasher::from_secret(SECRET).unwrap();
        RedisLoginStore::connect_lazy(url, hasher)
            .map_err(|error| error.to_string())?
            .with_key_prefix(prefix)
            .map(LoginConformance)
            .map_err(|error| error.to_string())
    }

    fn with_timeout(self, timeout: Duration) -> Self {
        LoginConformance(self.0.with_timeout(timeout))
    }

    async fn exercise(&self, user_text: &str) -> Result<(), palisade_ratelimit::StoreError> {
        use palisade_ratelimit::login::IpKey;
        let rules = LoginThrottleConfig::default().rules().unwrap();
        let now = palisade_ratelimit::SystemClock.now();
        let ip = IpKey::from(ip("198.51.100.23"));
        let account = self.0.id_hasher().account(user_text);
        self.0.check_ip(ip, &rules, now).await?;
        self.0
            .check_account(account, ip, None, &rules, now)
            .await
            .map(|_| ())
    }
}

redis_conformance_tests!(login_store_conformance, LoginConformance);
