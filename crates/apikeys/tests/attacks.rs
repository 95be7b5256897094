//! The attacks an API key must stand: each test is named for one.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use palisade_apikeys::{
    ApiKeyErrorKind, ApiKeys, KeyId, KeyRecord, KeyRequest, KeyStatus, KeyStore, KeyUsage,
    ManualClock, MemoryKeyStore, Pepper, StoreError,
};

/// A memory store that counts every call made to it.
#[derive(Clone)]
struct Counting {
    inner: MemoryKeyStore<ManualClock>,
    calls: Arc<AtomicUsize>,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl KeyStore for Counting {
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.count();
        self.inner.insert(record).await
    }
    async fn insert_capped(&self, record: KeyRecord, max_live: usize) -> Result<bool, StoreError> {
        self.count();
        self.inner.insert_capped(record, max_live).await
    }
    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.count();
        self.inner.get(key_id).await
    }
    async fn set_status(&self, key_id: &KeyId, status: KeyStatus) -> Result<bool, StoreError> {
        self.count();
        self.inner.set_status(key_id, status).await
    }
    async fn replace_status(
        &self,
        key_id: &KeyId,
        from: KeyStatus,
        to: KeyStatus,
    ) -> Result<bool, StoreError> {
        self.count();
        self.inner.replace_status(key_id, from, to).await
    }
    async fn record_usage(&self, batch: &[KeyUsage]) -> Result<(), StoreError> {
        self.count();
        self.inner.record_usage(batch).await
    }
    async fn list_owner(&self, owner: &str) -> Result<Vec<KeyRecord>, StoreError> {
        self.count();
        self.inner.list_owner(owner).await
    }
}

const START: u64 = 1_700_000_000;

fn setup() -> (ApiKeys<Counting, ManualClock>, Counting, ManualClock) {
    let clock = ManualClock::from_unix_secs(START);
    let store = Counting {
        inner: MemoryKeyStore::with_clock(clock.clone()),
        calls: Arc::default(),
    };
    let keys = ApiKeys::new(store.clone(), Pepper::new("p1", vec![7; 32]).unwrap())
        .with_clock(clock.clone());
    (keys, store, clock)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[tokio::test(flavor = "current_thread")]
async fn round_trip_generate_then_verify() {
    let (keys, _, _) = setup();
    let new = keys
        .issue(
            KeyRequest::new("alice", "laptop").scopes(["read"]),
            &["read"],
        )
        .await
        .unwrap();
    let key = new.key.expose_secret();
    assert_eq!(key.len(), "pal_live_".len() + 22 + 1 + 43 + 6);
    let info = keys.verify(key, ip("192.0.2.1"), &["read"]).await.unwrap();
    assert_eq!(info.key_id, new.info.key_id);
    assert_eq!(info.owner, "alice");
    assert_eq!(info.scopes, ["read"]);
}

/// Every one-character change anywhere in the key (every position, every
/// other base62 character or `_`) is refused by the checksum or the layout
/// check, with no store call.
#[tokio::test(flavor = "current_thread")]
async fn typod_key_is_rejected_before_the_store_is_touched() {
    let (keys, store, _) = setup();
    let key = keys
        .issue(KeyRequest::new("alice", "k"), &[])
        .await
        .unwrap()
        .key
        .expose_secret()
        .to_owned();
    let before = store.calls();
    let mut tried = 0;
    for position in 0..key.len() {
        for &replacement in BASE62.iter().chain(b"_-") {
            let mut typo = key.clone().into_bytes();
            if typo[position] == replacement {
                continue;
            }
            typo[position] = replacement;
            let typo = String::from_utf8(typo).unwrap();
            let error = keys.verify(&typo, ip("192.0.2.1"), &[]).await.unwrap_err();
            assert!(
                matches!(
                    error.kind(),
                    ApiKeyErrorKind::Malformed | ApiKeyErrorKind::WrongEnvironment
                ),
                "{position}: {:?}",
                error.kind()
            );
            tried += 1;
        }
    }
    assert!(tried > 80 * 60);
    // A dropped or doubled character, and garbage.
    for bad in [
        key.get(1..).unwrap().to_owned(),
        format!("{key}0"),
        String::new(),
        "pal_live_".to_owned(),
        "x".repeat(10_000),
        "pal_live_é".repeat(8),
    ] {
        let error = keys.verify(&bad, ip("192.0.2.1"), &[]).await.unwrap_err();
        assert_eq!(error.kind(), ApiKeyErrorKind::Malformed);
    }
    assert_eq!(store.calls(), before, "no store call for a malformed key");
}

/// Text shaped like a key but with a made-up secret (the attacker knows a
/// real key id) fails the checksum 1 - 1/2^32 of the time; one whose
/// checksum the attacker did compute still fails the HMAC.
#[tokio::test(flavor = "current_thread")]
async fn checksum_collision_attempt_still_fails_the_hmac() {
    let (keys, store, _) = setup();
    let real = keys
        .issue(KeyRequest::new("alice", "k"), &[])
        .await
        .unwrap();
    let id = real.info.key_id;
    let secret = "A".repeat(43);
    let body = format!("pal_live_{id}_{secret}");
    let before = store.calls();
    for sum in ["000000", "zzzzzz", "4gfFC3"] {
        let error = keys
            .verify(&format!("{body}{sum}"), ip("192.0.2.1"), &[])
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ApiKeyErrorKind::Malformed);
    }
    assert_eq!(store.calls(), before);
    // CRC32 is public: a forger can compute a valid checksum, which only
    // buys a store lookup and an HMAC mismatch.
    let forged = format!("{body}{}", checksum(&body));
    let error = keys
        .verify(&forged, ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::WrongSecret);
    assert_eq!(palisade_errors::Error::from(error).status(), 401);
}

fn checksum(body: &str) -> String {
    let mut n = crc32fast_hash(body.as_bytes());
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// The IEEE CRC32 (bitwise, independent of the crate's).
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test(flavor = "current_thread")]
async fn key_from_another_environment_is_refused() {
    let (live, store, clock) = setup();
    let test = ApiKeys::new(store.clone(), Pepper::new("p1", vec![7; 32]).unwrap())
        .with_clock(clock)
        .with_env("test")
        .unwrap();
    let test_key = test
        .issue(KeyRequest::new("alice", "k"), &[])
        .await
        .unwrap();
    assert!(test_key.key.expose_secret().starts_with("pal_test_"));
    test.verify(test_key.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    let before = store.calls();
    let error = live
        .verify(test_key.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::WrongEnvironment);
    assert_eq!(store.calls(), before, "refused before the lookup");
    assert_eq!(palisade_errors::Error::from(error).status(), 401);
}

#[tokio::test(flavor = "current_thread")]
async fn expired_key_is_refused_from_its_expiry_second() {
    let (keys, _, clock) = setup();
    let new = keys
        .issue(
            KeyRequest::new("alice", "k").expires_in(Duration::from_secs(3600)),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(new.info.expires_at, Some(START + 3600));
    clock.advance(Duration::from_secs(3599));
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let error = keys
        .verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::Expired);
    let envelope = palisade_errors::Error::from(error);
    assert_eq!(envelope.status(), 401);
    assert_eq!(envelope.headers()["www-authenticate"], "ApiKey");
}

#[tokio::test(flavor = "current_thread")]
async fn revoked_key_is_refused() {
    let (keys, _, _) = setup();
    let new = keys
        .issue(KeyRequest::new("alice", "k"), &[])
        .await
        .unwrap();
    // Another owner cannot revoke it (answered as not found).
    let error = keys.revoke("mallory", new.info.key_id).await.unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::NotFound);
    assert_eq!(palisade_errors::Error::from(error).status(), 404);
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    keys.revoke("alice", new.info.key_id).await.unwrap();
    let error = keys
        .verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::Revoked);
    assert_eq!(palisade_errors::Error::from(error).status(), 401);
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed[0].status, KeyStatus::Revoked);
}

#[tokio::test(flavor = "current_thread")]
async fn rotated_key_works_through_the_grace_and_not_one_second_after() {
    let (keys, _, clock) = setup();
    let keys = keys.with_rotation_grace(Duration::from_secs(600)).unwrap();
    let old = keys
        .issue(KeyRequest::new("alice", "ci").scopes(["read"]), &["read"])
        .await
        .unwrap();
    let error = keys.rotate("mallory", old.info.key_id).await.unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::NotFound);
    let new = keys.rotate("alice", old.info.key_id).await.unwrap();
    assert_ne!(new.info.key_id, old.info.key_id);
    assert_eq!(new.info.scopes, ["read"]);
    assert_eq!(new.info.name, "ci");
    // Attack: a leaked key kept alive by rotating it again (a retrying
    // client, a script that rotates "the leaked one" each run): each
    // rotation forked a new successor and restarted the old key's grace.
    // A key in its grace cannot be rotated (409); its grace runs on.
    clock.advance(Duration::from_secs(300));
    let again = keys.rotate("alice", old.info.key_id).await.unwrap_err();
    assert_eq!(again.kind(), ApiKeyErrorKind::AlreadyRotated);
    assert_eq!(palisade_errors::Error::from(again).status(), 409);
    assert_eq!(
        keys.list("alice").await.unwrap().len(),
        2,
        "no second successor"
    );
    clock.advance(Duration::from_secs(299));
    for key in [&old.key, &new.key] {
        keys.verify(key.expose_secret(), ip("192.0.2.1"), &["read"])
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let error = keys
        .verify(old.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::RotatedOut);
    assert_eq!(palisade_errors::Error::from(error).status(), 401);
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    // The rotated-out key cannot be rotated again.
    let error = keys.rotate("alice", old.info.key_id).await.unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::NotFound);
}

#[tokio::test(flavor = "current_thread")]
async fn ip_outside_the_allowed_cidrs_is_forbidden() {
    let (keys, _, _) = setup();
    let new = keys
        .issue(
            KeyRequest::new("alice", "k").allowed_ips([
                "203.0.113.0/24".parse().unwrap(),
                "2001:db8:42::/48".parse().unwrap(),
            ]),
            &[],
        )
        .await
        .unwrap();
    for inside in ["203.0.113.77", "2001:db8:42::9", "::ffff:203.0.113.1"] {
        keys.verify(new.key.expose_secret(), ip(inside), &[])
            .await
            .unwrap();
    }
    for outside in ["203.0.114.1", "2001:db8:43::1", "127.0.0.1"] {
        let error = keys
            .verify(new.key.expose_secret(), ip(outside), &[])
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ApiKeyErrorKind::IpNotAllowed);
        assert_eq!(palisade_errors::Error::from(error).status(), 403);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn scope_escalation_is_refused_at_issue_and_at_use() {
    let (keys, store, _) = setup();
    // The creator may grant `read` only: asking for `admin` is a 422, no key.
    let error = keys
        .issue(
            KeyRequest::new("alice", "k").scopes(["read", "admin"]),
            &["read"],
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::ScopeNotGrantable);
    assert_eq!(palisade_errors::Error::from(error).status(), 422);
    assert!(store.inner.is_empty());
    let new = keys
        .issue(KeyRequest::new("alice", "k").scopes(["read"]), &["read"])
        .await
        .unwrap();
    let error = keys
        .verify(new.key.expose_secret(), ip("192.0.2.1"), &["read", "write"])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::MissingScope);
    assert_eq!(palisade_errors::Error::from(error).status(), 403);
}

/// Unknown id, wrong secret, revoked, expired, rotated out and malformed
/// answer with byte-identical 401 responses, so none is an oracle; unknown
/// id and wrong secret also make the same store calls (one lookup).
#[tokio::test(flavor = "current_thread")]
async fn timing_independent_refusal_path() {
    let (keys, store, clock) = setup();
    let keys = keys.with_rotation_grace(Duration::ZERO).unwrap();
    let live = keys.issue(KeyRequest::new("a", "k"), &[]).await.unwrap();
    let revoked = keys.issue(KeyRequest::new("a", "r"), &[]).await.unwrap();
    keys.revoke("a", revoked.info.key_id).await.unwrap();
    let expiring = keys
        .issue(
            KeyRequest::new("a", "e").expires_in(Duration::from_secs(1)),
            &[],
        )
        .await
        .unwrap();
    let rotated = keys.issue(KeyRequest::new("a", "o"), &[]).await.unwrap();
    keys.rotate("a", rotated.info.key_id).await.unwrap();
    clock.advance(Duration::from_secs(1));
    let other = ApiKeys::new(
        MemoryKeyStore::new(),
        Pepper::new("p1", vec![7; 32]).unwrap(),
    );
    let unknown = other.issue(KeyRequest::new("a", "u"), &[]).await.unwrap();
    let body = live.key.expose_secret().get(..32).unwrap().to_owned();
    let wrong_secret = {
        let forged = format!("{body}{}", "B".repeat(43));
        format!("{forged}{}", checksum(&forged))
    };

    let mut responses = Vec::new();
    let mut calls = Vec::new();
    for presented in [
        unknown.key.expose_secret(),
        wrong_secret.as_str(),
        revoked.key.expose_secret(),
        expiring.key.expose_secret(),
        rotated.key.expose_secret(),
        "pal_live_nonsense",
    ] {
        let before = store.calls();
        let error = keys
            .verify(presented, ip("192.0.2.1"), &[])
            .await
            .unwrap_err();
        calls.push(store.calls() - before);
        let envelope = palisade_errors::Error::from(error);
        assert!(envelope.is_logged());
        let response = envelope.to_response(None);
        responses.push((
            response.status(),
            response.headers().clone(),
            response.into_body(),
        ));
    }
    assert!(responses.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(calls, [1, 1, 1, 1, 1, 0]);
}

#[tokio::test(flavor = "current_thread")]
async fn too_many_keys_for_one_owner_is_a_conflict_and_dead_keys_do_not_count() {
    let (keys, _, _) = setup();
    let keys = keys.with_max_keys_per_owner(2).unwrap();
    let first = keys.issue(KeyRequest::new("a", "1"), &[]).await.unwrap();
    keys.issue(KeyRequest::new("a", "2"), &[]).await.unwrap();
    let error = keys
        .issue(KeyRequest::new("a", "3"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::TooManyKeys);
    assert_eq!(palisade_errors::Error::from(error).status(), 409);
    keys.issue(KeyRequest::new("b", "1"), &[]).await.unwrap();
    keys.revoke("a", first.info.key_id).await.unwrap();
    keys.issue(KeyRequest::new("a", "3"), &[]).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn listing_shows_metadata_and_usage_but_no_secret() {
    let (keys, _, clock) = setup();
    let new = keys
        .issue(
            KeyRequest::new("alice", "laptop").scopes(["read"]),
            &["read"],
        )
        .await
        .unwrap();
    keys.issue(KeyRequest::new("bob", "other"), &[])
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key_id, new.info.key_id);
    assert_eq!(listed[0].name, "laptop");
    assert_eq!(listed[0].created_at, START);
    assert_eq!(listed[0].last_used_at, Some(START + 5));
    let shown = format!("{listed:?}");
    let secret = new.key.expose_secret().get(32..75).unwrap();
    assert!(!shown.contains(secret));
}

/// A key made under an old pepper still verifies once a new pepper takes
/// over, as long as the old one is kept; new keys use the new pepper.
#[tokio::test(flavor = "current_thread")]
async fn pepper_rotation_keeps_old_keys_working() {
    let store = MemoryKeyStore::new();
    let old = ApiKeys::new(store.clone(), Pepper::new("p1", vec![1; 32]).unwrap());
    let issued = old.issue(KeyRequest::new("a", "k"), &[]).await.unwrap();
    let new = ApiKeys::new(store.clone(), Pepper::new("p2", vec![2; 32]).unwrap())
        .with_old_pepper(Pepper::new("p1", vec![1; 32]).unwrap())
        .unwrap();
    new.verify(issued.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    let without_old = ApiKeys::new(store.clone(), Pepper::new("p2", vec![2; 32]).unwrap());
    let error = without_old
        .verify(issued.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::WrongSecret);
    let fresh = new.issue(KeyRequest::new("a", "k2"), &[]).await.unwrap();
    let record = store.get(&fresh.info.key_id).await.unwrap().unwrap();
    assert_eq!(record.pepper_id, "p2");
    // The store holds the HMAC, not the secret.
    assert!(!format!("{record:?}").contains(fresh.key.expose_secret().get(32..75).unwrap()));
}

/// Account takeover outliving its recovery: an intruder who held the
/// account minted API keys, and the owner's password reset ended every
/// session but left the keys working. `revoke_all` ends every live key of
/// the owner (one in its rotation grace and its successor too), and no one
/// else's.
#[tokio::test(flavor = "current_thread")]
async fn revoke_all_ends_every_live_key_of_the_owner_and_no_other() {
    let (keys, _, _) = setup();
    let keys = keys.with_rotation_grace(Duration::from_secs(600)).unwrap();
    let planted = keys
        .issue(KeyRequest::new("alice", "planted"), &[])
        .await
        .unwrap();
    let leaving = keys
        .issue(KeyRequest::new("alice", "ci"), &[])
        .await
        .unwrap();
    let successor = keys.rotate("alice", leaving.info.key_id).await.unwrap();
    let other = keys.issue(KeyRequest::new("bob", "ci"), &[]).await.unwrap();
    assert_eq!(keys.revoke_all("alice", "password_reset").await.unwrap(), 3);
    for key in [&planted.key, &leaving.key, &successor.key] {
        let error = keys
            .verify(key.expose_secret(), ip("192.0.2.1"), &[])
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ApiKeyErrorKind::Revoked);
    }
    keys.verify(other.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    // Nothing left to revoke.
    assert_eq!(keys.revoke_all("alice", "password_reset").await.unwrap(), 0);
}
