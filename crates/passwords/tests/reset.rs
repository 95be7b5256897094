//! Reset tokens over the memory store: single use, 30-minute lifetime on the
//! injected clock, bound to the password hash, newest wins, bounded store.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "support/reset_check.rs"]
mod reset_check;

use std::time::Duration;

use palisade_passwords::ManualClock;
use palisade_passwords::reset::{MemoryResetTokenStore, ResetErrorKind, ResetTokens, TOKEN_CHARS};
use secrecy::ExposeSecret;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
const NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdB$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";

fn resets() -> (ResetTokens<MemoryResetTokenStore<ManualClock>>, ManualClock) {
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    (
        ResetTokens::new(MemoryResetTokenStore::with_clock(clock.clone())),
        clock,
    )
}

#[tokio::test]
async fn a_token_is_url_safe_and_works_once() {
    let (resets, _) = resets();
    let token = resets.issue("user-42", HASH).await.unwrap();
    let text = token.expose_secret();
    assert_eq!(text.len(), TOKEN_CHARS);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    resets.redeem("user-42", text, HASH).await.unwrap();
    let replay = resets.redeem("user-42", text, HASH).await.unwrap_err();
    assert_eq!(replay.kind(), ResetErrorKind::UnknownOrExpired);
}

#[tokio::test]
async fn check_leaves_the_token_for_the_redeem() {
    let (resets, _) = resets();
    reset_check::check_spends_nothing(&resets, HASH).await;
}

#[tokio::test]
async fn check_refuses_an_expired_token() {
    let (resets, clock) = resets();
    let token = resets.issue("user-42", HASH).await.unwrap();
    clock.advance(Duration::from_secs(30 * 60 - 1));
    resets
        .check("user-42", token.expose_secret(), HASH)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let late = resets
        .check("user-42", token.expose_secret(), HASH)
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ResetErrorKind::UnknownOrExpired);
}

#[tokio::test]
async fn a_token_expires_after_thirty_minutes() {
    let (resets, clock) = resets();
    let token = resets.issue("user-42", HASH).await.unwrap();
    clock.advance(Duration::from_secs(30 * 60 - 1));
    let fresh = resets.issue("user-43", HASH).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let late = resets
        .redeem("user-42", token.expose_secret(), HASH)
        .await
        .unwrap_err();
    assert_eq!(late.kind(), ResetErrorKind::UnknownOrExpired);
    resets
        .redeem("user-43", fresh.expose_secret(), HASH)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_newer_token_invalidates_the_older_one() {
    let (resets, _) = resets();
    let older = resets.issue("user-42", HASH).await.unwrap();
    let newer = resets.issue("user-42", HASH).await.unwrap();
    let error = resets
        .redeem("user-42", older.expose_secret(), HASH)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ResetErrorKind::UnknownOrExpired);
    resets
        .redeem("user-42", newer.expose_secret(), HASH)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_dies_when_the_password_changed_since_it_was_issued() {
    let (resets, _) = resets();
    let token = resets.issue("user-42", HASH).await.unwrap();
    let error = resets
        .redeem("user-42", token.expose_secret(), NEW_HASH)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ResetErrorKind::PasswordChanged);
    let again = resets
        .redeem("user-42", token.expose_secret(), HASH)
        .await
        .unwrap_err();
    assert_eq!(
        again.kind(),
        ResetErrorKind::UnknownOrExpired,
        "consumed by the attempt"
    );
}

#[tokio::test]
async fn a_token_is_bound_to_its_user_and_a_wrong_guess_leaves_it_alone() {
    let (resets, _) = resets();
    let token = resets.issue("user-42", HASH).await.unwrap();
    let other = resets
        .redeem("user-43", token.expose_secret(), HASH)
        .await
        .unwrap_err();
    assert_eq!(other.kind(), ResetErrorKind::UnknownOrExpired);
    let guess = "A".repeat(TOKEN_CHARS);
    let wrong = resets.redeem("user-42", &guess, HASH).await.unwrap_err();
    assert_eq!(wrong.kind(), ResetErrorKind::UnknownOrExpired);
    for malformed in ["", "short", &"!".repeat(TOKEN_CHARS), &"A".repeat(44)] {
        let error = resets.redeem("user-42", malformed, HASH).await.unwrap_err();
        assert_eq!(error.kind(), ResetErrorKind::Malformed, "{malformed:?}");
    }
    resets
        .redeem("user-42", token.expose_secret(), HASH)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_memory_store_is_bounded_and_evicts_the_soonest_to_expire() {
    let clock = ManualClock::from_unix_secs(1_700_000_000);
    let store = MemoryResetTokenStore::with_clock(clock.clone()).with_max_entries(2);
    let resets = ResetTokens::new(store.clone());
    let first = resets.issue("a", HASH).await.unwrap();
    clock.advance(Duration::from_secs(60));
    let second = resets.issue("b", HASH).await.unwrap();
    let third = resets.issue("c", HASH).await.unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(store.evictions(), 1);
    assert!(
        resets
            .redeem("a", first.expose_secret(), HASH)
            .await
            .is_err()
    );
    resets
        .redeem("b", second.expose_secret(), HASH)
        .await
        .unwrap();
    resets
        .redeem("c", third.expose_secret(), HASH)
        .await
        .unwrap();
    assert!(store.is_empty());
}

#[test]
fn the_lifetime_is_bounded() {
    let store = MemoryResetTokenStore::new();
    assert!(
        ResetTokens::new(store.clone())
            .with_ttl(Duration::from_secs(59))
            .is_err()
    );
    assert!(
        ResetTokens::new(store.clone())
            .with_ttl(Duration::from_secs(25 * 3600))
            .is_err()
    );
    assert!(
        ResetTokens::new(store)
            .with_ttl(Duration::from_secs(15 * 60))
            .is_ok()
    );
}
