//! The memory revocation store, on a manual clock: each test is named after
//! the attack it stops.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use palisade_auth_tokens::ManualClock;
use palisade_auth_tokens::revocation::{
    DEFAULT_MAX_ENTRIES, DEFAULT_NOT_BEFORE_RETENTION, MemoryRevocationStore, RevocationStore,
    StoreError, TokenRef,
};

const START: u64 = 1_700_000_000;
const ACCESS_LIFETIME: u64 = 15 * 60;
const REFRESH_LIFETIME: u64 = 7 * 24 * 60 * 60;

fn store() -> (MemoryRevocationStore<ManualClock>, ManualClock) {
    let clock = ManualClock::from_unix_secs(START);
    (MemoryRevocationStore::with_clock(clock.clone()), clock)
}

fn access<'a>(jti: &'a str, sid: &'a str, issued_at: u64) -> TokenRef<'a> {
    TokenRef {
        subject: "user-42",
        jti,
        sid: Some(sid),
        issued_at,
    }
}

#[tokio::test]
async fn stolen_access_token_used_after_logout_is_revoked() {
    let (store, _) = store();
    let stolen = access("jti-stolen", "session-1", START);
    assert!(!store.is_revoked(stolen).await.unwrap());
    store
        .revoke_token("user-42", "jti-stolen", START + ACCESS_LIFETIME)
        .await
        .unwrap();
    assert!(store.is_revoked(stolen).await.unwrap());
    // Another token of the same subject (another device) is untouched.
    let other = access("jti-other", "session-2", START);
    assert!(!store.is_revoked(other).await.unwrap());
    // The same jti under another subject is another token.
    let foreign = TokenRef {
        subject: "user-43",
        ..stolen
    };
    assert!(!store.is_revoked(foreign).await.unwrap());
    // A jti is not a sid: no cross-talk between the kinds.
    let named_like_it = access("jti-x", "jti-stolen", START);
    assert!(!store.is_revoked(named_like_it).await.unwrap());
}

#[tokio::test]
async fn revoked_family_kills_access_and_refresh_tokens_of_the_session() {
    let (store, clock) = store();
    store
        .revoke_family("user-42", "session-1", START + REFRESH_LIFETIME)
        .await
        .unwrap();
    let access_token = access("a-1", "session-1", START);
    let refresh_token = TokenRef {
        jti: "r-1",
        ..access_token
    };
    assert!(store.is_revoked(access_token).await.unwrap());
    assert!(store.is_revoked(refresh_token).await.unwrap());
    // A rotation racing the logout mints a later token of the same family:
    // the family revocation kills it too.
    clock.advance(Duration::from_secs(120));
    let rotated = access("a-2", "session-1", START + 120);
    assert!(store.is_revoked(rotated).await.unwrap());
    // Other sessions, and tokens without a sid, are untouched.
    assert!(
        !store
            .is_revoked(access("a-3", "session-2", START))
            .await
            .unwrap()
    );
    let no_sid = TokenRef {
        sid: None,
        ..access("a-4", "session-1", START)
    };
    assert!(!store.is_revoked(no_sid).await.unwrap());
}

#[tokio::test]
async fn logout_everywhere_revokes_tokens_issued_at_or_before_not_before() {
    let (store, clock) = store();
    clock.advance(Duration::from_secs(30));
    let not_before = store.revoke_subject("user-42").await.unwrap();
    assert_eq!(not_before, START + 30);
    assert_eq!(store.not_before("user-42").await.unwrap(), Some(not_before));
    // Every session, including one issued in the very same second.
    for (jti, sid, issued_at) in [
        ("old", "session-1", START),
        ("just-before", "session-2", not_before - 1),
        ("same-second", "session-3", not_before),
    ] {
        assert!(
            store.is_revoked(access(jti, sid, issued_at)).await.unwrap(),
            "{jti}"
        );
    }
    // The new login one second later is valid.
    assert!(
        !store
            .is_revoked(access("new", "session-4", not_before + 1))
            .await
            .unwrap()
    );
    // Other subjects are untouched.
    let other = TokenRef {
        subject: "user-43",
        ..access("old", "session-1", START)
    };
    assert!(!store.is_revoked(other).await.unwrap());
    assert_eq!(store.not_before("user-43").await.unwrap(), None);
}

#[tokio::test]
async fn password_change_after_logout_everywhere_never_moves_not_before_backwards() {
    let (store, clock) = store();
    clock.advance(Duration::from_secs(1_000));
    let first = store.revoke_subject("user-42").await.unwrap();
    // A clock stepped back (NTP) must not re-validate tokens issued
    // between the two values.
    clock.set(UNIX_EPOCH + Duration::from_secs(START + 10));
    let second = store.revoke_subject("user-42").await.unwrap();
    assert_eq!(second, first);
    assert!(
        store
            .is_revoked(access("between", "s", START + 500))
            .await
            .unwrap()
    );
    // Forward moves as usual.
    clock.set(UNIX_EPOCH + Duration::from_secs(START + 2_000));
    assert_eq!(
        store.revoke_subject("user-42").await.unwrap(),
        START + 2_000
    );
}

#[tokio::test]
async fn revocations_expire_only_once_the_token_is_dead() {
    let clock = ManualClock::from_unix_secs(START);
    // Small enough for one shard, so `len` sees the sweep.
    let store = MemoryRevocationStore::with_clock(clock.clone()).with_max_entries(100);
    let token = access("a-1", "session-1", START);
    store
        .revoke_token("user-42", "a-1", START + ACCESS_LIFETIME)
        .await
        .unwrap();
    clock.set(UNIX_EPOCH + Duration::from_secs(START + ACCESS_LIFETIME - 1));
    assert!(store.is_revoked(token).await.unwrap(), "alive until exp");
    clock.set(UNIX_EPOCH + Duration::from_secs(START + ACCESS_LIFETIME));
    assert!(!store.is_revoked(token).await.unwrap(), "gone at exp");
    // The next update of its shard drops the dead entry.
    store
        .revoke_token("user-42", "a-2", START + ACCESS_LIFETIME + 60)
        .await
        .unwrap();
    assert_eq!(store.len(), 1);

    // A second revocation never shortens the first.
    store
        .revoke_family("user-42", "session-1", START + REFRESH_LIFETIME)
        .await
        .unwrap();
    store
        .revoke_family("user-42", "session-1", START + ACCESS_LIFETIME + 10)
        .await
        .unwrap();
    clock.set(UNIX_EPOCH + Duration::from_secs(START + REFRESH_LIFETIME - 1));
    assert!(store.is_revoked(token).await.unwrap());
    clock.set(UNIX_EPOCH + Duration::from_secs(START + REFRESH_LIFETIME));
    assert!(!store.is_revoked(token).await.unwrap());
}

#[tokio::test]
async fn token_at_the_edge_of_its_life_is_revoked_for_at_least_a_second() {
    let (store, clock) = store();
    let token = access("edge", "s", START - ACCESS_LIFETIME);
    // Already past exp by our clock (the verifier may still be in leeway).
    store
        .revoke_token("user-42", "edge", START - 5)
        .await
        .unwrap();
    assert!(store.is_revoked(token).await.unwrap());
    clock.advance(Duration::from_secs(1));
    assert!(!store.is_revoked(token).await.unwrap());
}

#[tokio::test]
async fn not_before_outlives_the_longest_token_then_expires() {
    let (store, clock) = store();
    let not_before = store.revoke_subject("user-42").await.unwrap();
    let retention = DEFAULT_NOT_BEFORE_RETENTION.as_secs();
    assert!(retention > REFRESH_LIFETIME);
    // A refresh token issued just before it is still refused on its last day.
    clock.set(UNIX_EPOCH + Duration::from_secs(not_before + REFRESH_LIFETIME - 1));
    assert!(
        store
            .is_revoked(access("r", "s", not_before))
            .await
            .unwrap()
    );
    clock.set(UNIX_EPOCH + Duration::from_secs(not_before + retention - 1));
    assert_eq!(store.not_before("user-42").await.unwrap(), Some(not_before));
    clock.set(UNIX_EPOCH + Duration::from_secs(not_before + retention));
    assert_eq!(store.not_before("user-42").await.unwrap(), None);

    // Configurable, rounded up to whole seconds.
    let store = MemoryRevocationStore::with_clock(clock.clone())
        .not_before_retention(Duration::from_millis(1_500));
    let at = store.revoke_subject("user-42").await.unwrap();
    clock.set(UNIX_EPOCH + Duration::from_secs(at + 1));
    assert_eq!(store.not_before("user-42").await.unwrap(), Some(at));
    clock.set(UNIX_EPOCH + Duration::from_secs(at + 2));
    assert_eq!(store.not_before("user-42").await.unwrap(), None);
}

#[tokio::test]
async fn logout_flood_cannot_grow_memory_and_not_before_markers_survive_it() {
    let clock = ManualClock::from_unix_secs(START);
    let store = MemoryRevocationStore::with_clock(clock.clone()).with_max_entries(100);
    assert_eq!(store.max_entries(), 100);
    // Ten subjects logged out everywhere, then an attacker logs in and out
    // 3× the bound.
    for victim in 0..10 {
        store
            .revoke_subject(&format!("victim-{victim}"))
            .await
            .unwrap();
    }
    for round in 0..300u64 {
        store
            .revoke_token("attacker", &format!("jti-{round}"), START + 900 + round)
            .await
            .unwrap();
        assert!(store.len() <= 100);
    }
    assert_eq!(store.len(), 100);
    // 210 to fit the flood, plus one: the first evicted revocation became
    // the attacker's `not_before`, which took a slot of its own (#11).
    assert_eq!(store.evictions(), 211);
    for victim in 0..10 {
        assert_eq!(
            store.not_before(&format!("victim-{victim}")).await.unwrap(),
            Some(START),
            "victim-{victim}'s logout-everywhere was evicted"
        );
    }
    // The evicted ones are the revocations closest to expiry; the latest
    // survive as themselves, the evicted ones as the attacker's
    // `not_before` (issue #11: eviction used to make them valid again).
    let revoked = |jti: &'static str| TokenRef {
        subject: "attacker",
        jti,
        sid: None,
        issued_at: START,
    };
    assert!(store.is_revoked(revoked("jti-299")).await.unwrap());
    assert!(store.is_revoked(revoked("jti-0")).await.unwrap());
    assert_eq!(store.not_before("attacker").await.unwrap(), Some(START));

    // Markers go too, but only when nothing else is left, and then into
    // their shard's floor: still refused (issue #11: they used to be lost).
    for victim in 10..200 {
        store
            .revoke_subject(&format!("victim-{victim}"))
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 100);
    assert!(store.is_revoked(revoked("jti-299")).await.unwrap());
    assert!(store.is_revoked(revoked("jti-0")).await.unwrap());
}

#[tokio::test]
async fn logout_flood_past_the_bound_never_unrevokes_a_token() {
    // Issue #11: a full store evicted live revocations, so revocation
    // failed open under a logout flood. Now it degrades to the subject's
    // `not_before`, then to its shard's floor, never to nothing.
    let clock = ManualClock::from_unix_secs(START);
    let store = MemoryRevocationStore::with_clock(clock.clone()).with_max_entries(50);
    let mut revoked = Vec::new();
    for round in 0..400u64 {
        let subject = format!("user-{}", round % 37);
        let jti = format!("jti-{round}");
        let sid = format!("sid-{round}");
        if round % 3 == 0 {
            store
                .revoke_family(&subject, &sid, START + 86_400 + round)
                .await
                .unwrap();
        } else {
            store
                .revoke_token(&subject, &jti, START + 900 + round)
                .await
                .unwrap();
        }
        if round % 50 == 0 {
            store
                .revoke_subject(&format!("other-{round}"))
                .await
                .unwrap();
        }
        revoked.push((subject, jti, sid, START + round / 10));
        assert!(store.len() <= 50);
        clock.set(UNIX_EPOCH + Duration::from_secs(START + (round + 1) / 10));
    }
    assert!(store.evictions() > 300, "{}", store.evictions());
    for (subject, jti, sid, issued_at) in &revoked {
        let token = TokenRef {
            subject,
            jti,
            sid: Some(sid),
            issued_at: *issued_at,
        };
        assert!(
            store.is_revoked(token).await.unwrap(),
            "{jti} of {subject} is valid again"
        );
    }
    // Still within its lifetime, not for ever: once every revocation would
    // have expired, a new token of the same subject is valid.
    clock.advance(Duration::from_secs(2 * 86_400));
    let later = TokenRef {
        subject: "user-1",
        jti: "fresh",
        sid: None,
        issued_at: START + 2 * 86_400,
    };
    assert!(!store.is_revoked(later).await.unwrap());
}

#[tokio::test]
async fn expired_revocations_make_room_before_any_live_one_is_evicted() {
    let clock = ManualClock::from_unix_secs(START);
    let store = MemoryRevocationStore::with_clock(clock.clone()).with_max_entries(10);
    for n in 0..10 {
        store
            .revoke_token("u", &format!("short-{n}"), START + 60)
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(60));
    for n in 0..10 {
        store
            .revoke_token("u", &format!("long-{n}"), START + 6_000)
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 10);
    assert_eq!(store.evictions(), 0, "only dead entries were dropped");
}

#[tokio::test]
async fn a_large_store_stays_within_its_bound_across_shards() {
    let clock = ManualClock::from_unix_secs(START);
    let store = MemoryRevocationStore::with_clock(clock.clone()).with_max_entries(50_000);
    let subjects = 150_000u64;
    for n in 0..subjects {
        store.revoke_token_now(&format!("user-{n}"), "jti", START + 900 + n % 600);
    }
    assert!(store.len() <= 50_000, "{}", store.len());
    assert!(store.len() >= 49_000, "shards fill evenly: {}", store.len());
    // At least one eviction per entry that did not fit; more, since an
    // evicted revocation becomes its subject's `not_before`, which takes a
    // slot too (issue #11: evictions degrade, never unrevoke).
    assert!(store.evictions() >= subjects - store.len() as u64);
    for n in (0..subjects).step_by(997) {
        let subject = format!("user-{n}");
        let token = TokenRef {
            subject: &subject,
            jti: "jti",
            sid: None,
            issued_at: START,
        };
        assert!(store.is_revoked_now(token), "user-{n}");
    }
}

#[tokio::test]
async fn resizing_keeps_existing_revocations() {
    let (store, _) = store();
    assert_eq!(store.max_entries(), DEFAULT_MAX_ENTRIES);
    store
        .revoke_token("user-42", "a-1", START + 60)
        .await
        .unwrap();
    let not_before = store.revoke_subject("user-43").await.unwrap();
    let store = store.with_max_entries(1_000);
    assert!(
        store
            .is_revoked(access("a-1", "s", START + 1))
            .await
            .unwrap()
    );
    assert_eq!(store.not_before("user-43").await.unwrap(), Some(not_before));
}

#[tokio::test]
async fn clones_and_arcs_share_one_set_of_revocations() {
    let (store, _) = store();
    let clone = store.clone();
    let shared = Arc::new(store);
    shared
        .revoke_token("user-42", "a-1", START + 60)
        .await
        .unwrap();
    assert!(clone.is_revoked(access("a-1", "s", START)).await.unwrap());
    assert!(is_revoked_via_trait(&shared, access("a-1", "s", START)).await);
}

async fn is_revoked_via_trait<S: RevocationStore>(store: &S, token: TokenRef<'_>) -> bool {
    store.is_revoked(token).await.unwrap()
}

#[test]
fn store_errors_fail_closed_as_503_without_leaking_detail() {
    let error: palisade_errors::Error = StoreError::unavailable("redis: connection refused").into();
    assert_eq!(error.status(), 503);
    let body = String::from_utf8(error.to_json(None)).unwrap();
    assert!(body.contains("unavailable"), "{body}");
    assert!(!body.contains("redis"), "{body}");
}

#[test]
fn debug_output_holds_no_revoked_ids() {
    let (store, _) = store();
    store.revoke_token_now("user-42", "jti-secret", START + 60);
    let debug = format!("{store:?}");
    assert!(
        !debug.contains("user-42") && !debug.contains("jti-secret"),
        "{debug}"
    );
}
