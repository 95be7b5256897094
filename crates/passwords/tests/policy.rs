//! Policy presets, every failure at once, the blocklist, context words,
//! zxcvbn's bound, history, expiry and serde.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::{Duration, Instant};

use palisade_passwords::{
    Clock, ConfigErrorKind, ManualClock, PasswordHasher, PasswordPolicy, PolicyContext,
    PolicyFailure, blocklist_len,
};
use secrecy::SecretString;

fn failures(
    policy: &PasswordPolicy,
    password: &str,
    context: &PolicyContext<'_>,
) -> Vec<PolicyFailure> {
    match policy.check(&SecretString::from(password), context) {
        Ok(()) => Vec::new(),
        Err(violation) => violation.failures().to_vec(),
    }
}

#[test]
fn nist_counts_code_points_after_nfkc_and_has_no_composition_rules() {
    let nist = PasswordPolicy::nist();
    let none = PolicyContext::new();
    assert_eq!(failures(&nist, "all lowercase words here", &none), []);
    // 14 code points of U+00E9 written decomposed (28 code points raw).
    assert_eq!(
        failures(&nist, &"e\u{301}".repeat(14), &none),
        [PolicyFailure::TooShort]
    );
    assert_eq!(failures(&nist, &"é".repeat(15), &none), []);
    assert_eq!(
        failures(&nist, &"x".repeat(129), &none),
        [PolicyFailure::TooLong]
    );
    assert_eq!(
        failures(&PasswordPolicy::nist_with_mfa(), "zq8-vk3!", &none),
        []
    );
}

#[test]
fn classic_reports_every_failure_at_once() {
    let classic = PasswordPolicy::classic();
    let context = PolicyContext::new()
        .username("Bob")
        .email("bob.smith@example.com")
        .service_name("Palisade");
    assert_eq!(
        failures(&classic, "palisade", &context),
        [
            PolicyFailure::MissingUppercase,
            PolicyFailure::MissingDigit,
            PolicyFailure::MissingSpecial,
            PolicyFailure::ContainsServiceName,
        ]
    );
    assert_eq!(
        failures(&classic, "Bob.Smith-42", &context),
        [
            PolicyFailure::ContainsUsername,
            PolicyFailure::ContainsEmail
        ]
    );
    assert_eq!(failures(&classic, "Tr0ub4dor&3x", &context), []);
    assert_eq!(
        failures(&classic, "short", &PolicyContext::new()).first(),
        Some(&PolicyFailure::TooShort)
    );
}

#[test]
fn the_blocklist_is_case_insensitive_and_fast() {
    assert!(blocklist_len() > 400_000);
    let policy = PasswordPolicy::nist_with_mfa();
    for common in ["password1", "PASSWORD1", "Qwerty123", "iloveyou2"] {
        assert!(
            failures(&policy, common, &PolicyContext::new()).contains(&PolicyFailure::TooCommon),
            "{common}"
        );
    }
    let started = Instant::now();
    for i in 0..10_000 {
        let _ = policy.check(
            &SecretString::from(format!("candidate-{i}")),
            &PolicyContext::new(),
        );
    }
    let per_check = started.elapsed() / 10_000;
    assert!(
        per_check < Duration::from_millis(1),
        "{per_check:?} per check"
    );
}

#[test]
fn zxcvbn_scores_and_stays_fast_on_adversarial_input() {
    let policy = PasswordPolicy::builder()
        .min_length(8)
        .min_strength(3)
        .build()
        .unwrap();
    let weak = failures(&policy, "abcabcabcabc1", &PolicyContext::new());
    assert_eq!(weak, [PolicyFailure::TooWeak]);
    assert_eq!(
        failures(&policy, "gV7#qpL2!zR9wm", &PolicyContext::new()),
        []
    );
    let long = PasswordPolicy::builder()
        .min_length(8)
        .max_length(1024)
        .min_strength(3)
        .build()
        .unwrap();
    for adversarial in [
        "a1!".repeat(3333) + "a",
        "0".repeat(1000),
        "qwertyuiop".repeat(100),
    ] {
        let started = Instant::now();
        let _ = long.check(
            &SecretString::from(adversarial.clone()),
            &PolicyContext::new(),
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "{} chars took {took:?}",
            adversarial.len()
        );
    }
}

#[test]
fn history_refuses_the_last_n_passwords_only() {
    let hasher = PasswordHasher::new();
    let policy = PasswordPolicy::builder().history(2).build().unwrap();
    let hashes: Vec<String> = [
        "first pass phrase",
        "second pass phrase",
        "third pass phrase",
    ]
    .iter()
    .map(|pw| hasher.hash(&SecretString::from(*pw)).unwrap().into_string())
    .collect();
    let newest_first: Vec<&str> = hashes.iter().rev().map(String::as_str).collect();
    let reused = policy
        .check_history(
            &hasher,
            &SecretString::from("second pass phrase"),
            newest_first.clone(),
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(reused.failures(), [PolicyFailure::RecentlyUsed]);
    assert!(
        policy
            .check_history(
                &hasher,
                &SecretString::from("first pass phrase"),
                newest_first.clone()
            )
            .unwrap()
            .is_ok(),
        "older than the last 2"
    );
    assert!(
        policy
            .check_history(
                &hasher,
                &SecretString::from("a fresh one"),
                ["garbage", "$2b$99$x"]
            )
            .unwrap()
            .is_ok()
    );
    // A check that could not run fails closed: it was read as "not reused".
    let too_long = SecretString::from("x".repeat(2000));
    let error = policy
        .check_history(&hasher, &too_long, newest_first)
        .unwrap_err();
    assert_eq!(
        error.kind(),
        palisade_passwords::HashErrorKind::PasswordTooLong
    );
}

#[test]
fn expiry_is_off_by_default_and_follows_the_clock_when_set() {
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let changed = clock.now();
    assert!(!PasswordPolicy::nist().must_change(0, &clock));
    let policy = PasswordPolicy::builder()
        .max_age(Duration::from_secs(90 * 86_400))
        .build()
        .unwrap();
    assert!(!policy.must_change(changed, &clock));
    clock.advance(Duration::from_secs(90 * 86_400));
    assert!(policy.must_change(changed, &clock));
}

#[test]
fn serde_reads_partial_settings_and_checks_them() {
    let policy: PasswordPolicy =
        serde_json::from_str(r#"{"min_length": 12, "min_strength": 2}"#).unwrap();
    assert_eq!(policy.min_length(), 12);
    assert_eq!(policy.max_length(), 128);
    let round: PasswordPolicy =
        serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
    assert_eq!(round, policy);
    for bad in [
        r#"{"min_length": 0}"#,
        r#"{"max_length": 32}"#,
        r#"{"min_strength": 5}"#,
        r#"{"color": 1}"#,
    ] {
        assert!(
            serde_json::from_str::<PasswordPolicy>(bad).is_err(),
            "{bad}"
        );
    }
    let error = PasswordPolicy::builder()
        .max_age(Duration::from_secs(60))
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidPolicy);
}

#[tokio::test]
async fn the_check_runs_on_the_pool_from_async_code() {
    let pool = palisade_passwords::HashPool::with_limits(1, 4).unwrap();
    let policy = PasswordPolicy::builder().min_strength(3).build().unwrap();
    let result = policy
        .check_on(
            &pool,
            SecretString::from("aaaaaaaaaaaaaaaa"),
            &PolicyContext::new(),
        )
        .await
        .unwrap();
    assert!(
        result
            .unwrap_err()
            .failures()
            .contains(&PolicyFailure::TooWeak)
    );
}
