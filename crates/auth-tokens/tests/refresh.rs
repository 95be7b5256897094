//! Refresh families on the memory store, on a manual clock: each test is
//! named after the attack (or failure) it handles.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;

use palisade_auth_tokens::refresh::{
    FamilyConfig, FamilyRef, FamilyStore, MemoryFamilyStore, RefreshFamilies, RotateOutcome,
    Rotation, TokenHash, TokenPair,
};
use palisade_auth_tokens::revocation::StoreError;
use palisade_auth_tokens::{
    Algorithm, Grant, Keyring, ManualClock, SigningKey, TokenErrorKind, TokenIssuer, TokenPolicy,
    TokenVerifier,
};
use secrecy::SecretSlice;

const NOW: u64 = 1_800_000_000;
const ACCESS_SECRET: &[u8] = b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const REFRESH_SECRET: &[u8] = b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa";
const SEALING_KEY: &[u8] = b"Qm3Zr7Tw1Yp5Ks9Lx2Vb6Nc0Hd4Jf8Ga";

fn secret(bytes: &[u8]) -> SecretSlice<u8> {
    SecretSlice::from(bytes.to_vec())
}

fn keyrings() -> (Keyring, Keyring) {
    let hmac =
        |kid: &str, bytes: &[u8]| SigningKey::hmac(kid, Algorithm::HS256, &secret(bytes)).unwrap();
    (
        Keyring::new([hmac("a1", ACCESS_SECRET)]).unwrap(),
        Keyring::new([hmac("r1", REFRESH_SECRET)]).unwrap(),
    )
}

fn families_on<S: FamilyStore>(
    store: S,
    clock: &ManualClock,
    config: FamilyConfig,
) -> RefreshFamilies<S, ManualClock> {
    let (access, refresh) = keyrings();
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let issuer = TokenIssuer::with_clock(
        access.clone(),
        refresh.clone(),
        policy.clone(),
        clock.clone(),
    );
    let verifier = TokenVerifier::with_clock(access, refresh, policy, clock.clone());
    RefreshFamilies::new(issuer, verifier, store, &secret(SEALING_KEY), config).unwrap()
}

struct Setup {
    clock: ManualClock,
    store: MemoryFamilyStore<ManualClock>,
    families: RefreshFamilies<MemoryFamilyStore<ManualClock>, ManualClock>,
}

fn setup(config: FamilyConfig) -> Setup {
    let clock = ManualClock::from_unix_secs(NOW);
    let store = MemoryFamilyStore::with_clock(clock.clone());
    let families = families_on(store.clone(), &clock, config);
    Setup {
        clock,
        store,
        families,
    }
}

fn grant(subject: &str, role: &str) -> Grant {
    Grant {
        subject: subject.into(),
        role: Some(palisade_auth_tokens::authz::Role::new(role).unwrap()),
        permissions: vec![format!("{role}:read")],
        ..Grant::default()
    }
}

/// The user store: every subject exists, with `role`.
fn users_with_role(role: &'static str) -> impl FnOnce(String) -> std::future::Ready<Option<Grant>> {
    move |subject| std::future::ready(Some(grant(&subject, role)))
}

fn access_role(families: &Setup, pair: &TokenPair) -> Option<String> {
    let (access, refresh) = keyrings();
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let verifier = TokenVerifier::with_clock(access, refresh, policy, families.clock.clone());
    let claims: palisade_auth_tokens::Claims = verifier.verify_access(&pair.access.token).unwrap();
    assert_eq!(claims.sid.as_deref(), Some(pair.sid.as_str()));
    claims.role
}

async fn login(setup: &Setup, subject: &str) -> TokenPair {
    setup
        .families
        .login(&grant(subject, "admin"))
        .await
        .unwrap()
        .pair
}

async fn refresh(setup: &Setup, token: &str) -> Result<TokenPair, TokenErrorKind> {
    setup
        .families
        .refresh_without_revocation_dangerously(token, users_with_role("admin"))
        .await
        .map_err(|error| error.kind())
}

#[tokio::test]
async fn rotation_consumes_the_token_and_keeps_the_family() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    let second = refresh(&s, &first.refresh.token).await.unwrap();
    assert_eq!(second.sid, first.sid);
    assert_ne!(second.refresh.jti, first.refresh.jti);
    assert_ne!(second.access.jti, first.access.jti);
    let third = refresh(&s, &second.refresh.token).await.unwrap();
    assert_eq!(third.sid, first.sid);
    assert_eq!(s.store.len(), 1);
}

#[tokio::test]
async fn stolen_refresh_token_replayed_after_grace_revokes_the_family() {
    let s = setup(FamilyConfig::default());
    let stolen = login(&s, "alice").await;
    // The legitimate client rotates; the thief kept the old token.
    let user = refresh(&s, &stolen.refresh.token).await.unwrap();
    s.clock.advance(Duration::from_secs(11));
    assert_eq!(
        refresh(&s, &stolen.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    // The whole family is gone: the user's current token fails too.
    assert_eq!(
        refresh(&s, &user.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert!(s.store.is_empty());
}

#[tokio::test]
async fn thief_using_the_stolen_token_first_is_detected_when_the_user_refreshes() {
    let s = setup(FamilyConfig::default());
    let stolen = login(&s, "alice").await;
    let thief = refresh(&s, &stolen.refresh.token).await.unwrap();
    s.clock.advance(Duration::from_secs(60));
    // The user's token was consumed by the thief: reuse, family revoked.
    assert_eq!(
        refresh(&s, &stolen.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert_eq!(
        refresh(&s, &thief.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test]
async fn token_two_rotations_old_is_reuse_even_within_grace() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    let second = refresh(&s, &first.refresh.token).await.unwrap();
    let _third = refresh(&s, &second.refresh.token).await.unwrap();
    // Only the token rotated last is replayable; the first is reuse.
    assert_eq!(
        refresh(&s, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert!(s.store.is_empty());
}

#[tokio::test]
async fn client_retry_within_grace_gets_the_identical_pair() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    let rotated = refresh(&s, &first.refresh.token).await.unwrap();
    s.clock.advance(Duration::from_secs(9));
    let retried = refresh(&s, &first.refresh.token).await.unwrap();
    assert_eq!(retried, rotated);
    // The successor still works, and the family continues.
    let next = refresh(&s, &rotated.refresh.token).await.unwrap();
    assert_eq!(next.sid, first.sid);
}

#[tokio::test]
async fn replay_at_the_end_of_the_grace_window_is_reuse() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    let _rotated = refresh(&s, &first.refresh.token).await.unwrap();
    s.clock.advance(Duration::from_secs(10));
    assert_eq!(
        refresh(&s, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert!(s.store.is_empty());
}

#[tokio::test]
async fn grace_zero_disables_replay() {
    let s = setup(FamilyConfig {
        grace_secs: 0,
        ..FamilyConfig::default()
    });
    let first = login(&s, "alice").await;
    let rotated = refresh(&s, &first.refresh.token).await.unwrap();
    let family = FamilyRef {
        subject: "alice",
        sid: &first.sid,
    };
    assert_eq!(s.store.sealed_successor(family), None);
    assert_eq!(
        refresh(&s, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert_eq!(
        refresh(&s, &rotated.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_token_get_one_successor() {
    let s = Arc::new(setup(FamilyConfig::default()));
    let first = login(&s, "alice").await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = Arc::clone(&s);
            let token = first.refresh.token.clone();
            tokio::spawn(async move { refresh(&s, &token).await })
        })
        .collect();
    let mut pairs = Vec::new();
    for task in tasks {
        pairs.push(task.await.unwrap().unwrap());
    }
    assert!(pairs.iter().all(|pair| *pair == pairs[0]));
}

#[tokio::test]
async fn demotion_takes_effect_at_the_next_refresh() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    assert_eq!(access_role(&s, &first).as_deref(), Some("admin"));
    let demoted = s
        .families
        .refresh_without_revocation_dangerously(&first.refresh.token, users_with_role("user"))
        .await
        .unwrap();
    assert_eq!(access_role(&s, &demoted).as_deref(), Some("user"));
}

#[tokio::test]
async fn user_lookup_cannot_move_the_token_to_another_subject_or_session() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    let next = s
        .families
        .refresh_without_revocation_dangerously(&first.refresh.token, |_| async {
            Some(Grant {
                subject: "mallory".into(),
                session: Some("other".into()),
                ..Grant::default()
            })
        })
        .await
        .unwrap();
    let (access, refresh) = keyrings();
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let verifier = TokenVerifier::with_clock(access, refresh, policy, s.clock.clone());
    let claims: palisade_auth_tokens::Claims = verifier.verify_access(&next.access.token).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.sid.as_deref(), Some(first.sid.as_str()));
}

#[tokio::test]
async fn deleted_user_cannot_refresh_and_the_family_ends() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    let refused = s
        .families
        .refresh_without_revocation_dangerously(&first.refresh.token, |_| async { None })
        .await;
    assert_eq!(refused.unwrap_err().kind(), TokenErrorKind::Revoked);
    // Even if the account comes back, that session is over.
    assert_eq!(
        refresh(&s, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert!(s.store.is_empty());
}

#[tokio::test]
async fn session_limit_ends_the_oldest_family() {
    let s = setup(FamilyConfig {
        max_sessions: 2,
        ..FamilyConfig::default()
    });
    let oldest = login(&s, "alice").await;
    let middle = login(&s, "alice").await;
    let _bob = login(&s, "bob").await;
    let newest = s.families.login(&grant("alice", "admin")).await.unwrap();
    assert_eq!(newest.evicted_sids, vec![oldest.sid.clone()]);
    assert_eq!(
        refresh(&s, &oldest.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    refresh(&s, &middle.refresh.token).await.unwrap();
    refresh(&s, &newest.pair.refresh.token).await.unwrap();
    assert_eq!(s.store.len(), 3);
}

#[tokio::test]
async fn idle_family_expires() {
    let s = setup(FamilyConfig {
        idle_secs: 3600,
        ..FamilyConfig::default()
    });
    let first = login(&s, "alice").await;
    s.clock.advance(Duration::from_secs(3000));
    // Use resets the idle timer.
    let second = refresh(&s, &first.refresh.token).await.unwrap();
    s.clock.advance(Duration::from_secs(3000));
    let third = refresh(&s, &second.refresh.token).await.unwrap();
    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        refresh(&s, &third.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
    assert!(s.store.is_empty());
}

#[tokio::test]
async fn absolute_lifetime_ends_an_active_family() {
    let s = setup(FamilyConfig {
        idle_secs: 3600,
        absolute_secs: 3 * 3600,
        ..FamilyConfig::default()
    });
    let mut pair = login(&s, "alice").await;
    for _ in 0..5 {
        s.clock.advance(Duration::from_secs(1800));
        pair = refresh(&s, &pair.refresh.token).await.unwrap();
    }
    s.clock.advance(Duration::from_secs(1800));
    // 3 h after login, although used every 30 min.
    assert_eq!(
        refresh(&s, &pair.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test]
async fn store_holds_the_successor_only_sealed_and_only_for_the_grace_window() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    let rotated = refresh(&s, &first.refresh.token).await.unwrap();
    let family = FamilyRef {
        subject: "alice",
        sid: &first.sid,
    };
    let sealed = s.store.sealed_successor(family).unwrap();
    for token in [&rotated.access.token, &rotated.refresh.token] {
        for part in token.split('.') {
            assert!(
                !sealed.windows(part.len()).any(|w| w == part.as_bytes()),
                "a token part is stored in plaintext"
            );
        }
    }
    for jti in [&rotated.access.jti, &rotated.refresh.jti] {
        assert!(!sealed.windows(jti.len()).any(|w| w == jti.as_bytes()));
    }
    s.clock.advance(Duration::from_secs(10));
    assert_eq!(s.store.sealed_successor(family), None);
}

#[tokio::test]
async fn sealed_pair_from_another_key_is_not_returned() {
    let clock = ManualClock::from_unix_secs(NOW);
    let store = MemoryFamilyStore::with_clock(clock.clone());
    let one = families_on(store.clone(), &clock, FamilyConfig::default());
    let (access, refresh) = keyrings();
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let other = RefreshFamilies::new(
        TokenIssuer::with_clock(
            access.clone(),
            refresh.clone(),
            policy.clone(),
            clock.clone(),
        ),
        TokenVerifier::with_clock(access, refresh, policy, clock.clone()),
        store,
        &secret(b"Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp"),
        FamilyConfig::default(),
    )
    .unwrap();
    let first = one.login(&grant("alice", "admin")).await.unwrap().pair;
    one.refresh_without_revocation_dangerously(&first.refresh.token, users_with_role("admin"))
        .await
        .unwrap();
    let replay = other
        .refresh_without_revocation_dangerously(&first.refresh.token, users_with_role("admin"))
        .await;
    assert_eq!(replay.unwrap_err().kind(), TokenErrorKind::StoreUnavailable);
}

#[tokio::test]
async fn access_token_is_not_accepted_as_a_refresh_token() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    // Refused by its `kid` (the refresh keyring lacks it) before its type.
    let refused = refresh(&s, &first.access.token).await.unwrap_err();
    assert!(matches!(
        refused,
        TokenErrorKind::UnknownKey | TokenErrorKind::WrongType
    ));
    // The family is untouched.
    refresh(&s, &first.refresh.token).await.unwrap();
}

#[tokio::test]
async fn logout_ends_the_family() {
    let s = setup(FamilyConfig::default());
    let first = login(&s, "alice").await;
    s.families.end("alice", &first.sid).await.unwrap();
    assert_eq!(
        refresh(&s, &first.refresh.token).await,
        Err(TokenErrorKind::Revoked)
    );
}

#[tokio::test]
async fn full_store_ends_the_family_closest_to_expiry() {
    let clock = ManualClock::from_unix_secs(NOW);
    let store = MemoryFamilyStore::with_clock(clock.clone()).with_max_entries(2);
    let s = Setup {
        families: families_on(store.clone(), &clock, FamilyConfig::default()),
        store,
        clock,
    };
    let first = login(&s, "a").await;
    s.clock.advance(Duration::from_secs(1));
    let second = login(&s, "b").await;
    let third = login(&s, "c").await;
    assert_eq!(s.store.len(), 2);
    assert_eq!(s.store.evictions(), 1);
    assert!(refresh(&s, &first.refresh.token).await.is_err());
    refresh(&s, &second.refresh.token).await.unwrap();
    refresh(&s, &third.refresh.token).await.unwrap();
}

#[test]
fn sealing_key_must_be_32_bytes() {
    let clock = ManualClock::from_unix_secs(NOW);
    let (access, refresh) = keyrings();
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    let result = RefreshFamilies::new(
        TokenIssuer::with_clock(
            access.clone(),
            refresh.clone(),
            policy.clone(),
            clock.clone(),
        ),
        TokenVerifier::with_clock(access, refresh, policy, clock.clone()),
        MemoryFamilyStore::with_clock(clock),
        &secret(b"too short"),
        FamilyConfig::default(),
    );
    assert!(result.is_err());
}

/// A store that never answers.
struct DownStore;

impl FamilyStore for DownStore {
    async fn start(
        &self,
        _: FamilyRef<'_>,
        _: &TokenHash,
        _: &FamilyConfig,
    ) -> Result<Vec<String>, StoreError> {
        Err(StoreError::unavailable("down"))
    }

    async fn rotate(
        &self,
        _: FamilyRef<'_>,
        _: Rotation<'_>,
        _: &FamilyConfig,
    ) -> Result<RotateOutcome, StoreError> {
        Err(StoreError::unavailable("down"))
    }

    async fn end(&self, _: FamilyRef<'_>) -> Result<(), StoreError> {
        Err(StoreError::unavailable("down"))
    }
}

#[tokio::test]
async fn store_outage_fails_closed() {
    let clock = ManualClock::from_unix_secs(NOW);
    let up = setup(FamilyConfig::default());
    let pair = login(&up, "alice").await;
    let down = families_on(DownStore, &clock, FamilyConfig::default());
    let login = down.login(&grant("alice", "admin")).await;
    assert_eq!(login.unwrap_err().kind(), TokenErrorKind::StoreUnavailable);
    let refreshed = down
        .refresh_without_revocation_dangerously(&pair.refresh.token, users_with_role("admin"))
        .await;
    assert_eq!(
        refreshed.unwrap_err().kind(),
        TokenErrorKind::StoreUnavailable
    );
}

mod with_revocations {
    use palisade_auth_tokens::revocation::{MemoryRevocationStore, RevocationStore};

    use super::*;

    fn verifier(clock: &ManualClock) -> TokenVerifier<ManualClock> {
        let (access, refresh) = keyrings();
        TokenVerifier::with_clock(
            access,
            refresh,
            TokenPolicy::new("https://auth.example.com", "api").unwrap(),
            clock.clone(),
        )
    }

    #[tokio::test]
    async fn password_change_logs_out_every_refresh_family() {
        // After a password change (log out everywhere), a refresh token
        // stolen before it must not mint new tokens.
        let s = setup(FamilyConfig::default());
        let revocations = MemoryRevocationStore::with_clock(s.clock.clone());
        let stolen = login(&s, "alice").await;
        s.clock.advance(Duration::from_secs(5));
        let not_before = revocations.revoke_subject("alice").await.unwrap();
        let refused = s
            .families
            .refresh_unrevoked(
                &stolen.refresh.token,
                users_with_role("admin"),
                &revocations,
            )
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), TokenErrorKind::Revoked);
        // The user's new login, a second later and stamped past the
        // not_before (issue #11: a plain login within the leeway is born
        // revoked, see `login_after`), works.
        s.clock.advance(Duration::from_secs(1));
        let fresh = s
            .families
            .login_after(&grant("alice", "admin"), Some(not_before))
            .await
            .unwrap()
            .pair;
        assert!(
            s.families
                .refresh_unrevoked(&fresh.refresh.token, users_with_role("admin"), &revocations)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_logout_everywhere_landing_mid_refresh_still_wins() {
        // Race: the password change lands after the refresh token passed the
        // revocation check but before the new pair (with a later iat) exists.
        let s = setup(FamilyConfig::default());
        let revocations = MemoryRevocationStore::with_clock(s.clock.clone());
        let stolen = login(&s, "alice").await;
        s.clock.advance(Duration::from_secs(5));
        let clock = s.clock.clone();
        let store = revocations.clone();
        let lookup = move |subject: String| async move {
            store.revoke_subject(&subject).await.unwrap();
            clock.advance(Duration::from_secs(1));
            Some(grant(&subject, "admin"))
        };
        let refused = s
            .families
            .refresh_unrevoked(&stolen.refresh.token, lookup, &revocations)
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), TokenErrorKind::Revoked);
        assert!(s.store.is_empty(), "the family ended");
    }

    #[tokio::test]
    async fn reuse_also_kills_the_access_tokens_already_issued_in_the_family() {
        let s = setup(FamilyConfig::default());
        let revocations = MemoryRevocationStore::with_clock(s.clock.clone());
        let stolen = login(&s, "alice").await;
        let thief = s
            .families
            .refresh_unrevoked(
                &stolen.refresh.token,
                users_with_role("admin"),
                &revocations,
            )
            .await
            .unwrap();
        s.clock.advance(Duration::from_secs(60));
        let reuse = s
            .families
            .refresh_unrevoked(
                &stolen.refresh.token,
                users_with_role("admin"),
                &revocations,
            )
            .await;
        assert_eq!(reuse.unwrap_err().kind(), TokenErrorKind::Revoked);
        let error = verifier(&s.clock)
            .verify_access_unrevoked::<palisade_auth_tokens::NoCustomClaims, _>(
                &thief.access.token,
                &revocations,
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            TokenErrorKind::Revoked,
            "the thief's access token died with the family"
        );
    }
}
