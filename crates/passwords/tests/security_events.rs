//! The crate's denials as captured log events: shared names and fields, and
//! no password, hash or token anywhere in them.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use palisade_passwords::reset::{MemoryResetTokenStore, ResetTokens};
use palisade_passwords::{
    Argon2Params, HasherConfig, PasswordHasher, PasswordPolicy, PolicyContext,
};
use secrecy::{ExposeSecret, SecretString};

const PASSWORD: &str = "Sup3r-Secret-Horse";

#[tokio::test]
async fn denials_are_logged_with_the_vocabulary_and_no_secret() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let hasher = PasswordHasher::new();
    let stored = hasher.hash(&SecretString::from(PASSWORD)).unwrap();
    assert!(
        hasher
            .verify(&SecretString::from("Sup3r-Secret-Horsf"), stored.as_str())
            .is_err()
    );
    let _ = hasher.dummy_verify(&SecretString::from(PASSWORD));
    // A password-history check is no login: its mismatches log nothing
    // (false `authn_login_fail` events would feed alerts on stuffing).
    let history_check = hasher.is_reused(&SecretString::from("a new one here"), [stored.as_str()]);
    assert!(!history_check.unwrap());
    let _ = hasher.hash(&SecretString::from(PASSWORD.repeat(100)));
    let _ = PasswordPolicy::nist().check(
        &SecretString::from("alice-password"),
        &PolicyContext::new().username("alice"),
    );
    let resets = ResetTokens::new(MemoryResetTokenStore::new());
    let token = resets.issue("alice", stored.as_str()).await.unwrap();
    resets
        .redeem("alice", token.expose_secret(), stored.as_str())
        .await
        .unwrap();
    let replay = resets
        .redeem("alice", token.expose_secret(), stored.as_str())
        .await;
    assert!(replay.is_err());

    capture.assert_vocabulary();
    let logins = capture.named(SecurityEvent::AuthnLoginFail);
    let reasons: Vec<_> = logins
        .iter()
        .map(|e| e.field("reason").unwrap().to_owned())
        .collect();
    assert_eq!(reasons, ["wrong_password", "unknown_user"]);
    let inputs = capture.named(SecurityEvent::InputValidationFail);
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0].field("reason"), Some("password_too_long"));
    assert_eq!(inputs[1].field("reason"), Some("password_policy"));
    assert_eq!(
        inputs[1].field("failures"),
        Some("too_short,contains_username")
    );
    let alice = palisade_errors::SubjectHash::of("alice").to_string();
    assert_eq!(inputs[1].field("subject_hash"), Some(alice.as_str()));
    let changes = capture.named(SecurityEvent::AuthnPasswordChange);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].field("reason"), Some("reset_token"));
    assert_eq!(changes[0].field("subject_hash"), Some(alice.as_str()));
    let refused = capture.named(SecurityEvent::AuthnPasswordChangeFail);
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].field("reason"),
        Some("unknown_or_expired_reset_token")
    );
    assert_eq!(refused[0].field("subject_hash"), Some(alice.as_str()));
    assert!(capture.named(SecurityEvent::AuthnTokenInvalid).is_empty());

    for secret in [
        PASSWORD,
        "alice-password",
        stored.as_str(),
        token.expose_secret(),
    ] {
        capture.assert_absent(secret);
    }
    capture.assert_absent("\"alice\"");
}

/// A link spent by a refusal (a reused password at a reset confirm) is
/// logged as a failed change with its reason, never as a change: the
/// password did not change, and an audit trail that said so would mislead.
/// The token is gone afterwards.
#[tokio::test]
async fn a_spent_reset_token_is_a_failed_change_not_a_change() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let resets = ResetTokens::new(MemoryResetTokenStore::new());
    let token = resets.issue("alice", "$argon2id$x").await.unwrap();
    resets
        .spend(
            "alice",
            token.expose_secret(),
            "$argon2id$x",
            "recently_used",
        )
        .await
        .unwrap();
    assert!(capture.named(SecurityEvent::AuthnPasswordChange).is_empty());
    let failed = capture.named(SecurityEvent::AuthnPasswordChangeFail);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].field("reason"), Some("recently_used"));
    let again = resets
        .redeem("alice", token.expose_secret(), "$argon2id$x")
        .await;
    assert!(again.is_err(), "spent");
    capture.assert_absent(token.expose_secret());
}

/// A verification that asks for a rehash is one `authn_password_rehash`
/// event whose reason says why; a current hash logs none.
#[test]
fn rehashes_are_logged_with_their_reason_and_no_secret() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let hasher = PasswordHasher::new();
    let legacy = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
    assert!(
        hasher
            .verify(&SecretString::from("U*U"), legacy)
            .unwrap()
            .needs_rehash
    );
    let cheaper = PasswordHasher::with_config(HasherConfig {
        argon2: Argon2Params {
            memory_kib: 7168,
            iterations: 5,
            parallelism: 1,
        },
        ..HasherConfig::default()
    })
    .unwrap();
    let weak = cheaper.hash(&SecretString::from(PASSWORD)).unwrap();
    assert!(
        hasher
            .verify(&SecretString::from(PASSWORD), weak.as_str())
            .unwrap()
            .needs_rehash
    );
    let current = hasher.hash(&SecretString::from(PASSWORD)).unwrap();
    assert!(
        !hasher
            .verify(&SecretString::from(PASSWORD), current.as_str())
            .unwrap()
            .needs_rehash
    );

    capture.assert_vocabulary();
    let rehashes = capture.named(SecurityEvent::AuthnPasswordRehash);
    let reasons: Vec<_> = rehashes
        .iter()
        .map(|e| (e.field("reason").unwrap(), e.field("scheme").unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("legacy_scheme", "bcrypt"),
            ("below_parameters", "argon2id")
        ]
    );
    for secret in [PASSWORD, "U*U", legacy, weak.as_str(), current.as_str()] {
        capture.assert_absent(secret);
    }
}
