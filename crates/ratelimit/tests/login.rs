#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The login throttle against the attacks it exists for, on the memory store
//! and a manual clock.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::RETRY_AFTER;
use palisade_errors::{Error, ErrorKind};
use palisade_ratelimit::login::{
    LoginDecision, LoginThrottle, LoginThrottleConfig, MemoryLoginStore, ThrottleReason,
};
use palisade_ratelimit::{ManualClock, Timestamp};

type Throttle = LoginThrottle<MemoryLoginStore, ManualClock>;

const START: Timestamp = Timestamp(1_700_000_000_000_000);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The i-th address of a botnet or of a stuffing list.
fn nth_ip(i: u32) -> IpAddr {
    IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8])
}

fn throttle_with(config: LoginThrottleConfig, store: MemoryLoginStore) -> (Throttle, ManualClock) {
    let clock = ManualClock::new(START.into());
    let throttle = LoginThrottle::with_clock(store, config, clock.clone()).unwrap();
    (throttle, clock)
}

fn throttle() -> (Throttle, ManualClock) {
    throttle_with(LoginThrottleConfig::default(), MemoryLoginStore::new())
}

use LoginDecision::Allow;

/// The answer during an attack on the account to an attempt without a
/// trusted device.
const CHALLENGE: LoginDecision = LoginDecision::Challenge {
    reason: ThrottleReason::AccountSlowdown,
};

/// `Ok(Allow)`, `Ok(CHALLENGE)` or the Retry-After of a 429 (any other error
/// fails the test).
fn outcome(result: Result<LoginDecision, Error>) -> Result<LoginDecision, u64> {
    result.map_err(|error| {
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert_eq!(error.status(), 429);
        error.headers()[RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    })
}

/// One login with a wrong password: check first, then report the failure
/// if the attempt got as far as the password.
async fn wrong_password(
    throttle: &Throttle,
    account: &str,
    from: IpAddr,
) -> Result<LoginDecision, u64> {
    let result = outcome(throttle.check(account, from, None).await);
    if result.is_ok() {
        throttle.record_failure(account, from).await;
    }
    result
}

async fn right_password(
    throttle: &Throttle,
    account: &str,
    from: IpAddr,
    device: Option<&str>,
) -> Result<LoginDecision, u64> {
    // On a challenge, the real user passes it and types the right password.
    let result = outcome(throttle.check(account, from, device).await);
    if result.is_ok() {
        throttle.record_success(account, from, device).await;
    }
    result
}

/// Drives `account` into its slowdown: 20 failures from 20 botnet IPs.
async fn botnet_burst(throttle: &Throttle, account: &str, first_ip: u32) {
    for i in first_ip..first_ip + 20 {
        assert_eq!(
            wrong_password(throttle, account, nth_ip(i)).await,
            Ok(Allow)
        );
    }
}

#[tokio::test]
async fn account_enumeration_unknown_and_known_usernames_get_identical_answers() {
    let (throttle, clock) = throttle();
    // "alice" exists and logs in regularly (from her own IP); "no-such-user"
    // has never existed. The throttle is told neither.
    assert_eq!(
        right_password(&throttle, "alice", ip("192.0.2.10"), None).await,
        Ok(Allow)
    );

    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..10 {
        known.push(wrong_password(&throttle, "alice", ip("203.0.113.1")).await);
        unknown.push(wrong_password(&throttle, "no-such-user", ip("203.0.113.2")).await);
        clock.advance(Duration::from_millis(700));
    }
    assert_eq!(known, unknown);
    // And the sequence is the backoff, not "always allowed".
    assert_eq!(
        known,
        [
            Ok(Allow),
            Ok(Allow),
            Ok(Allow),
            Ok(Allow),
            Ok(Allow),
            Err(1),
            Ok(Allow),
            Err(2),
            Err(1),
            Ok(Allow)
        ]
    );
}

#[tokio::test]
async fn online_brute_force_from_one_ip_backs_off_exponentially_up_to_an_hour() {
    let (throttle, clock) = throttle();
    let attacker = ip("198.51.100.66");
    for _ in 0..5 {
        assert_eq!(
            wrong_password(&throttle, "victim", attacker).await,
            Ok(Allow)
        );
    }
    // After the n-th consecutive failure (n ≥ 5): 2^(n−5) s, capped at 1 h.
    let mut expected_waits = Vec::new();
    for n in 5u32..=20 {
        let wait = (1u64 << (n - 5)).min(3600);
        expected_waits.push(wait);
        assert_eq!(
            wrong_password(&throttle, "victim", attacker).await,
            Err(wait),
            "after failure {n}"
        );
        // Rounded up, never early: 1 µs before the end it still says 1 s.
        clock.advance(Duration::from_secs(wait) - Duration::from_micros(1));
        assert_eq!(
            wrong_password(&throttle, "victim", attacker).await,
            Err(1),
            "after failure {n}"
        );
        clock.advance(Duration::from_micros(1));
        assert_eq!(
            wrong_password(&throttle, "victim", attacker).await,
            Ok(Allow),
            "after failure {n}"
        );
    }
    assert_eq!(
        expected_waits,
        [
            1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600, 3600, 3600
        ]
    );

    // Part-way through a wait the header rounds up: 3600 − 1799.5 = 1800.5 → 1801.
    clock.advance(Duration::from_micros(1_799_500_000));
    assert_eq!(
        wrong_password(&throttle, "victim", attacker).await,
        Err(1801)
    );
}

#[tokio::test]
async fn a_username_flood_cannot_evict_the_real_users_trust() {
    // Lockout through eviction: a flood of new usernames fills the bounded
    // store; were trust markers evicted like any entry, the victim would
    // lose the exemption from the account slowdown.
    let (throttle, clock) = throttle_with(
        LoginThrottleConfig::default(),
        MemoryLoginStore::new().with_max_entries(6_400),
    );
    let home = ip("192.0.2.10");
    assert_eq!(
        right_password(&throttle, "victim", home, Some("laptop")).await,
        Ok(Allow)
    );
    clock.advance(Duration::from_secs(60));
    for i in 0..20_000u32 {
        let _ = wrong_password(&throttle, &format!("user{i}"), nth_ip(50_000 + i)).await;
    }
    assert!(throttle.store().evictions() > 0, "the flood had to evict");
    botnet_burst(&throttle, "victim", 0).await;
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(100)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(101)).await,
        Ok(CHALLENGE),
        "strangers are challenged"
    );
    assert_eq!(
        outcome(throttle.check("victim", home, Some("laptop")).await),
        Ok(Allow),
        "her laptop is still trusted"
    );
}

#[tokio::test]
async fn botnet_lockout_attempt_slows_strangers_but_not_the_real_user() {
    let (throttle, clock) = throttle();
    let home = ip("192.0.2.10");
    // The victim logged in last week from home, with her laptop's device id.
    assert_eq!(
        right_password(&throttle, "victim", home, Some("laptop-device-id")).await,
        Ok(Allow)
    );
    clock.advance(Duration::from_secs(7 * 86_400));

    botnet_burst(&throttle, "victim", 0).await;
    // Slowdown: one attempt without a trusted device per 10 s for the whole
    // account; the others are challenged.
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(100)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(101)).await,
        Ok(CHALLENGE)
    );
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(102)).await,
        Ok(CHALLENGE)
    );

    // The real user gets in at once with her laptop, from home or a café.
    // The botnet's failures do not touch her. Her home address alone is no
    // pass (anyone behind it would have it: see shared_address_...).
    assert_eq!(
        outcome(
            throttle
                .check("victim", home, Some("laptop-device-id"))
                .await
        ),
        Ok(Allow)
    );
    assert_eq!(
        outcome(throttle.check("victim", home, None).await),
        Ok(CHALLENGE)
    );
    assert_eq!(
        outcome(
            throttle
                .check("victim", ip("203.0.113.99"), Some("laptop-device-id"))
                .await
        ),
        Ok(Allow)
    );
    // A device id she never verified gets no such pass.
    assert_eq!(
        outcome(
            throttle
                .check("victim", ip("203.0.113.98"), Some("guessed-device-id"))
                .await
        ),
        Ok(CHALLENGE)
    );

    // Never a lock: once the 10 s have passed, one attempt goes on
    // unchallenged again.
    clock.advance(Duration::from_secs(7));
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(103)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(104)).await,
        Ok(CHALLENGE)
    );
}

#[tokio::test]
async fn without_challenges_the_slowdown_refuses_with_retry_after() {
    // For an application with no CAPTCHA or second factor to offer: the
    // plain slowdown, one attempt per 10 s, the others 429.
    let config = LoginThrottleConfig {
        challenge_during_slowdown: false,
        ..LoginThrottleConfig::default()
    };
    let (throttle, clock) = throttle_with(config, MemoryLoginStore::new());
    assert_eq!(
        right_password(&throttle, "victim", ip("192.0.2.10"), Some("laptop")).await,
        Ok(Allow)
    );
    botnet_burst(&throttle, "victim", 0).await;
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(100)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(101)).await,
        Err(10)
    );
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(102)).await,
        Err(7)
    );
    assert_eq!(
        outcome(throttle.check("victim", ip("192.0.2.10"), None).await),
        Err(7),
        "an address is never trusted"
    );
    assert_eq!(
        outcome(throttle.check("victim", nth_ip(103), Some("laptop")).await),
        Ok(Allow)
    );
    clock.advance(Duration::from_secs(7));
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(104)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "victim", nth_ip(105)).await,
        Err(10)
    );
}

#[tokio::test]
async fn credential_stuffing_from_one_ip_is_cut_off_after_100_failures() {
    let (throttle, clock) = throttle();
    let stuffer = ip("198.51.100.200");
    for i in 0..100 {
        let account = format!("user-{i}@example.com");
        assert_eq!(
            wrong_password(&throttle, &account, stuffer).await,
            Ok(Allow),
            "{account}"
        );
    }
    // The budget refills one failure per 86400 / 100 = 864 s.
    assert_eq!(
        wrong_password(&throttle, "user-100@example.com", stuffer).await,
        Err(864)
    );
    assert_eq!(
        wrong_password(&throttle, "user-0@example.com", stuffer).await,
        Err(864)
    );
    // Other IPs are not affected, on the same accounts.
    assert_eq!(
        wrong_password(&throttle, "user-100@example.com", ip("192.0.2.1")).await,
        Ok(Allow)
    );
    // One attempt per refill.
    clock.advance(Duration::from_secs(864));
    assert_eq!(
        wrong_password(&throttle, "user-101@example.com", stuffer).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "user-102@example.com", stuffer).await,
        Err(864)
    );
}

#[tokio::test]
async fn shared_nat_logins_that_succeed_do_not_use_up_the_ip_budget() {
    let (throttle, _clock) = throttle();
    let office = ip("192.0.2.50");
    for i in 0..300 {
        let account = format!("employee-{i}");
        assert_eq!(
            right_password(&throttle, &account, office, None).await,
            Ok(Allow)
        );
    }
}

#[tokio::test]
async fn success_resets_the_account_and_its_own_ip_but_not_other_ips() {
    let (throttle, clock) = throttle();
    let attacker = ip("198.51.100.7");
    let user = ip("192.0.2.20");

    // The attacker: 7 failures, now waiting 4 s.
    for _ in 0..5 {
        assert_eq!(
            wrong_password(&throttle, "carol", attacker).await,
            Ok(Allow)
        );
    }
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        wrong_password(&throttle, "carol", attacker).await,
        Ok(Allow)
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        wrong_password(&throttle, "carol", attacker).await,
        Ok(Allow)
    );
    assert_eq!(wrong_password(&throttle, "carol", attacker).await, Err(4));

    // Carol mistypes five times, waits, and gets it right.
    for _ in 0..5 {
        assert_eq!(wrong_password(&throttle, "carol", user).await, Ok(Allow));
    }
    assert_eq!(wrong_password(&throttle, "carol", user).await, Err(1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        right_password(&throttle, "carol", user, None).await,
        Ok(Allow)
    );

    // Her pair starts again from five free failures...
    for _ in 0..5 {
        assert_eq!(wrong_password(&throttle, "carol", user).await, Ok(Allow));
    }
    assert_eq!(wrong_password(&throttle, "carol", user).await, Err(1));
    // ...while the attacker's pair still waits out its backoff.
    assert_eq!(wrong_password(&throttle, "carol", attacker).await, Err(3));
}

#[tokio::test]
async fn a_success_during_an_attack_leaves_the_slowdown_in_place_for_other_ips() {
    // Issue #12: each success used to delete the account-wide budget and
    // slowdown, handing a distributed attacker 20 fresh guesses per login
    // of the real user.
    let (throttle, clock) = throttle();
    botnet_burst(&throttle, "dave", 0).await;
    assert_eq!(
        wrong_password(&throttle, "dave", nth_ip(50)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "dave", nth_ip(51)).await,
        Ok(CHALLENGE)
    );

    // Dave, from a new place and a new phone, passes the challenge and logs in.
    let dave = ip("192.0.2.30");
    assert_eq!(
        right_password(&throttle, "dave", dave, Some("phone")).await,
        Ok(CHALLENGE)
    );
    // The attack goes on: strangers are still slowed and challenged...
    assert_eq!(
        wrong_password(&throttle, "dave", nth_ip(52)).await,
        Ok(CHALLENGE)
    );
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        wrong_password(&throttle, "dave", nth_ip(53)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "dave", nth_ip(54)).await,
        Ok(CHALLENGE)
    );
    // ...including Dave's own address without his phone, whose own
    // (account, IP) count the success did reset...
    assert_eq!(
        outcome(throttle.check("dave", dave, None).await),
        Ok(CHALLENGE)
    );
    // ...while his phone, trusted by the success, goes straight through.
    assert_eq!(
        right_password(&throttle, "dave", nth_ip(55), Some("phone")).await,
        Ok(Allow)
    );

    // Without the challenge the same holds as a 429 for the strangers.
    let config = LoginThrottleConfig {
        challenge_during_slowdown: false,
        ..LoginThrottleConfig::default()
    };
    let (throttle, clock) = throttle_with(config, MemoryLoginStore::new());
    botnet_burst(&throttle, "dave", 0).await;
    assert_eq!(
        wrong_password(&throttle, "dave", nth_ip(50)).await,
        Ok(Allow)
    );
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        right_password(&throttle, "dave", dave, None).await,
        Ok(Allow)
    );
    assert_eq!(wrong_password(&throttle, "dave", nth_ip(52)).await, Err(10));
}

#[tokio::test]
async fn a_success_outside_an_attack_gives_back_only_its_own_attempt() {
    // 19 failures from other IPs, then the real user logs in: her attempt
    // would have been the 20th, the one that starts the slowdown; given
    // back, the account is still one failure short of it.
    let (throttle, _clock) = throttle();
    for i in 0..19 {
        assert_eq!(
            wrong_password(&throttle, "olga", nth_ip(i)).await,
            Ok(Allow)
        );
    }
    assert_eq!(
        right_password(&throttle, "olga", ip("192.0.2.31"), None).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "olga", nth_ip(19)).await,
        Ok(Allow)
    );
    // The 20 other failures remain: now the account is slowed.
    assert_eq!(
        wrong_password(&throttle, "olga", nth_ip(20)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "olga", nth_ip(21)).await,
        Ok(CHALLENGE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_attempts_during_a_slowdown_let_only_one_through() {
    let (throttle, _clock) = throttle();
    botnet_burst(&throttle, "erin", 0).await;
    let throttle = Arc::new(throttle);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let throttle = Arc::clone(&throttle);
            tokio::spawn(
                async move { outcome(throttle.check("erin", nth_ip(1000 + i), None).await) },
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    // One goes on unchallenged; the others are challenged.
    assert_eq!(outcomes.iter().filter(|o| **o == Ok(Allow)).count(), 1);
    assert!(
        outcomes
            .iter()
            .all(|o| *o == Ok(Allow) || *o == Ok(CHALLENGE))
    );

    // Without challenges, the others are refused.
    let config = LoginThrottleConfig {
        challenge_during_slowdown: false,
        ..LoginThrottleConfig::default()
    };
    let (throttle, _clock) = throttle_with(config, MemoryLoginStore::new());
    botnet_burst(&throttle, "erin", 0).await;
    let throttle = Arc::new(throttle);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let throttle = Arc::clone(&throttle);
            tokio::spawn(
                async move { outcome(throttle.check("erin", nth_ip(1000 + i), None).await) },
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(outcomes.iter().all(|o| *o == Ok(Allow) || *o == Err(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn parallel_guesses_from_one_ip_cannot_outrun_the_backoff() {
    // Failures are counted when the attempt is let through, not when the
    // slow password check reports back: 64 guesses fired at once get the
    // five free ones, not 64.
    let (throttle, _clock) = throttle();
    let throttle = Arc::new(throttle);
    let attacker = ip("198.51.100.9");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let throttle = Arc::clone(&throttle);
            tokio::spawn(async move { outcome(throttle.check("frank", attacker, None).await) })
        })
        .collect();
    let mut passed = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            passed += 1;
        }
    }
    assert_eq!(passed, 5);
}

#[tokio::test]
async fn ipv6_attacker_rotating_addresses_within_a_56_is_one_client() {
    let (throttle, _clock) = throttle();
    for i in 1..=5 {
        let address = ip(&format!("2001:db8:aa:bb::{i:x}"));
        assert_eq!(wrong_password(&throttle, "grace", address).await, Ok(Allow));
    }
    // Another /64 inside the same /56: the same client.
    assert_eq!(
        wrong_password(&throttle, "grace", ip("2001:db8:aa:cc:ffff::1")).await,
        Err(1)
    );
    // Another /56 is another client.
    assert_eq!(
        wrong_password(&throttle, "grace", ip("2001:db8:aa:1bb::1")).await,
        Ok(Allow)
    );
}

#[tokio::test]
async fn window_expiry_the_ip_budget_refills_after_its_window() {
    let (throttle, clock) = throttle();
    let stuffer = ip("198.51.100.201");
    for i in 0..100 {
        assert_eq!(
            wrong_password(&throttle, &format!("u{i}"), stuffer).await,
            Ok(Allow)
        );
    }
    assert_eq!(wrong_password(&throttle, "u100", stuffer).await, Err(864));
    clock.advance(Duration::from_secs(86_400));
    for i in 200..300 {
        assert_eq!(
            wrong_password(&throttle, &format!("u{i}"), stuffer).await,
            Ok(Allow)
        );
    }
    assert_eq!(wrong_password(&throttle, "u300", stuffer).await, Err(864));
}

#[tokio::test]
async fn window_expiry_the_account_slowdown_ends_after_its_window() {
    let (throttle, clock) = throttle();
    botnet_burst(&throttle, "heidi", 0).await;
    assert_eq!(
        wrong_password(&throttle, "heidi", nth_ip(30)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "heidi", nth_ip(31)).await,
        Ok(CHALLENGE)
    );

    // 15 minutes later (the 22 attempts so far, the challenged one counted
    // too, are 15 min + 90 s of budget, so wait that): a full budget of 20
    // again, then the 21st is the first slowed attempt and the 22nd is
    // challenged.
    clock.advance(Duration::from_secs(900 + 90));
    botnet_burst(&throttle, "heidi", 40).await;
    assert_eq!(
        wrong_password(&throttle, "heidi", nth_ip(60)).await,
        Ok(Allow)
    );
    assert_eq!(
        wrong_password(&throttle, "heidi", nth_ip(61)).await,
        Ok(CHALLENGE)
    );
}

#[tokio::test]
async fn window_expiry_pair_failures_are_forgotten_after_a_day() {
    let (throttle, clock) = throttle();
    let from = ip("198.51.100.77");
    for _ in 0..5 {
        assert_eq!(wrong_password(&throttle, "ivan", from).await, Ok(Allow));
    }
    // An hour later the five are still remembered: the next failure is the
    // sixth, and the one after it waits 2 s.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(wrong_password(&throttle, "ivan", from).await, Ok(Allow));
    assert_eq!(wrong_password(&throttle, "ivan", from).await, Err(2));

    // A day after the last failure they are forgotten: five free again.
    clock.advance(Duration::from_secs(86_400));
    for _ in 0..5 {
        assert_eq!(wrong_password(&throttle, "ivan", from).await, Ok(Allow));
    }
    assert_eq!(wrong_password(&throttle, "ivan", from).await, Err(1));
}

#[tokio::test]
async fn trust_expires_after_thirty_days() {
    let (throttle, clock) = throttle();
    let home = ip("192.0.2.40");
    assert_eq!(
        right_password(&throttle, "judy", home, Some("laptop")).await,
        Ok(Allow)
    );
    clock.advance(Duration::from_secs(30 * 86_400 - 1));
    botnet_burst(&throttle, "judy", 0).await;
    assert_eq!(
        wrong_password(&throttle, "judy", nth_ip(20)).await,
        Ok(Allow)
    );
    assert_eq!(
        outcome(throttle.check("judy", home, Some("laptop")).await),
        Ok(Allow)
    );
    // Thirty days on, her laptop is a stranger like any other.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        outcome(throttle.check("judy", home, Some("laptop")).await),
        Ok(CHALLENGE)
    );
}

#[tokio::test]
async fn memory_stays_bounded_under_a_flood_of_distinct_ips() {
    let cap = 1_000;
    let (throttle, _clock) = throttle_with(
        LoginThrottleConfig::default(),
        MemoryLoginStore::new().with_max_entries(cap),
    );
    // Each attempt leaves three entries (IP budget, account, pair).
    for i in 0..3 * cap as u32 {
        let account = format!("target-{i}");
        assert_eq!(
            wrong_password(&throttle, &account, nth_ip(i)).await,
            Ok(Allow)
        );
        assert!(throttle.store().len() <= cap);
    }
    assert!(throttle.store().len() <= cap);
    assert!(
        throttle.store().evictions() >= (9 * cap - cap) as u64,
        "evictions: {}",
        throttle.store().evictions()
    );
    // Still working: the newest state survived.
    let last = 3 * cap as u32 - 1;
    for _ in 0..4 {
        assert_eq!(
            wrong_password(&throttle, &format!("target-{last}"), nth_ip(last)).await,
            Ok(Allow)
        );
    }
    assert_eq!(
        wrong_password(&throttle, &format!("target-{last}"), nth_ip(last)).await,
        Err(1)
    );
}

#[test]
fn unusable_settings_are_refused_at_start_up() {
    let config = LoginThrottleConfig {
        account_failure_threshold: 0,
        ..LoginThrottleConfig::default()
    };
    let error = LoginThrottle::new(MemoryLoginStore::new(), config).unwrap_err();
    assert!(error.to_string().contains("account_failure_threshold"));
}

#[cfg(feature = "test-util")]
mod store_down {
    use super::*;
    use palisade_ratelimit::FailMode;
    use palisade_ratelimit::login::FailingLoginStore;

    #[tokio::test]
    async fn a_failing_store_fails_closed_by_default() {
        let throttle =
            LoginThrottle::new(FailingLoginStore::new(), LoginThrottleConfig::default()).unwrap();
        let error = throttle
            .check("kim", ip("192.0.2.1"), None)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(error.status(), 503);
        assert!(error.headers().get(RETRY_AFTER).is_none());
        assert_eq!(throttle.store_failures(), 1);
    }

    #[tokio::test]
    async fn a_failing_store_fails_open_when_configured() {
        let config = LoginThrottleConfig {
            fail_mode: FailMode::Open,
            ..LoginThrottleConfig::default()
        };
        let throttle = LoginThrottle::new(FailingLoginStore::new(), config).unwrap();
        assert!(throttle.check("kim", ip("192.0.2.1"), None).await.is_ok());
        // Both steps failed, both were counted.
        assert_eq!(throttle.store_failures(), 2);
        // Reporting the outcome never fails the login.
        throttle.record_success("kim", ip("192.0.2.1"), None).await;
        throttle.record_failure("kim", ip("192.0.2.1")).await;
        assert_eq!(throttle.store_failures(), 4);
    }
}
