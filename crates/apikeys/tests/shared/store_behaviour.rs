//! The behaviour every `KeyStore` must show under `ApiKeys`, as test bodies
//! generic over the store. `tests/memory_store.rs` and
//! `tests/redis_store.rs` run the same bodies through
//! `store_behaviour_tests!`, so the memory store and the Redis store are held
//! to one standard.

#![allow(dead_code, async_fn_in_trait, clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use palisade_apikeys::{
    ApiKeyError, ApiKeyErrorKind, ApiKeys, KeyId, KeyRecord, KeyRequest, KeyStatus, KeyStore,
    KeyUsage, ManualClock, NewKey, Pepper, StoreError,
};

pub const START: u64 = 1_700_000_000;

/// How a test gets a fresh, empty store.
pub trait Fixture {
    /// The store.
    type Store: KeyStore + Clone + 'static;

    /// A fresh store named for `test`, on `clock`; `None` to skip (only
    /// outside CI, when Redis is unreachable).
    async fn store(test: &str, clock: ManualClock) -> Option<Self::Store>;
}

/// A store wrapper counting the calls that write usage and all calls, and
/// holding one chosen call (see [`Counting::hold`]).
#[derive(Clone)]
pub struct Counting<S> {
    pub inner: S,
    usage_writes: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
    held: Arc<Mutex<Option<Hold>>>,
    lost: Arc<Mutex<Option<(&'static str, usize)>>>,
}

/// A call to hold: its method, whom to tell it got there, what releases it.
struct Hold {
    method: &'static str,
    reached: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Counting<S> {
        Counting {
            inner,
            usage_writes: Arc::default(),
            calls: Arc::default(),
            held: Arc::default(),
            lost: Arc::default(),
        }
    }

    /// After `skip` calls of `method`, the next one is carried out and then
    /// answers a timeout: a reply lost after the store acted on it.
    pub fn lose_reply(&self, method: &'static str, skip: usize) {
        *self.lost.lock().unwrap() = Some((method, skip));
    }

    fn reply_lost(&self, method: &'static str) -> bool {
        let mut lost = self.lost.lock().unwrap();
        match lost.as_mut() {
            Some((armed, 0)) if *armed == method => {
                *lost = None;
                true
            }
            Some((armed, skip)) if *armed == method => {
                *skip -= 1;
                false
            }
            _ => false,
        }
    }

    /// The next call of `method` stops (after a read, once it has read;
    /// before a write, before it writes) until the returned sender is
    /// used or dropped; the receiver hears when it got there. A race made
    /// to happen in one order, every time.
    pub fn hold(&self, method: &'static str) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (reached, reached_rx) = oneshot::channel();
        let (release_tx, release) = oneshot::channel();
        *self.held.lock().unwrap() = Some(Hold {
            method,
            reached,
            release,
        });
        (reached_rx, release_tx)
    }

    async fn pass(&self, method: &'static str) {
        let hold = {
            let mut held = self.held.lock().unwrap();
            match held.as_ref() {
                Some(hold) if hold.method == method => held.take(),
                _ => None,
            }
        };
        if let Some(hold) = hold {
            let _ = hold.reached.send(());
            let _ = hold.release.await;
        }
    }
    pub fn usage_writes(&self) -> usize {
        self.usage_writes.load(Ordering::SeqCst)
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

impl<S: KeyStore> KeyStore for Counting<S> {
    async fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        self.count();
        self.inner.insert(record).await
    }
    async fn insert_capped(&self, record: KeyRecord, max_live: usize) -> Result<bool, StoreError> {
        self.count();
        self.pass("insert_capped").await;
        self.inner.insert_capped(record, max_live).await
    }
    async fn get(&self, key_id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.count();
        let record = self.inner.get(key_id).await;
        self.pass("get").await;
        if self.reply_lost("get") {
            return Err(StoreError::timeout("api key get"));
        }
        record
    }
    async fn set_status(&self, key_id: &KeyId, status: KeyStatus) -> Result<bool, StoreError> {
        self.count();
        self.pass("set_status").await;
        self.inner.set_status(key_id, status).await
    }
    async fn replace_status(
        &self,
        key_id: &KeyId,
        from: KeyStatus,
        to: KeyStatus,
    ) -> Result<bool, StoreError> {
        self.count();
        let replaced = self.inner.replace_status(key_id, from, to).await;
        if self.reply_lost("replace_status") {
            return Err(StoreError::timeout("api key replace_status"));
        }
        replaced
    }
    async fn record_usage(&self, batch: &[KeyUsage]) -> Result<(), StoreError> {
        self.count();
        self.usage_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.record_usage(batch).await
    }
    async fn list_owner(&self, owner: &str) -> Result<Vec<KeyRecord>, StoreError> {
        self.count();
        self.inner.list_owner(owner).await
    }
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub fn pepper() -> Pepper {
    Pepper::new("p1", vec![7; 32]).unwrap()
}

async fn setup<F: Fixture>(
    test: &str,
) -> Option<(
    ApiKeys<Counting<F::Store>, ManualClock>,
    Counting<F::Store>,
    ManualClock,
)> {
    let clock = ManualClock::from_unix_secs(START);
    let store = Counting::new(F::store(test, clock.clone()).await?);
    let keys = ApiKeys::new(store.clone(), pepper()).with_clock(clock.clone());
    Some((keys, store, clock))
}

/// What is stored comes back whole: scopes with separators in them, IPv4
/// and IPv6 blocks, expiry; `get` of an unknown id is `None`, a status
/// change of one is `false`, usage of one is skipped (not re-created).
pub async fn records_round_trip<F: Fixture>() {
    let Some((keys, store, _)) = setup::<F>("round-trip").await else {
        return;
    };
    let scopes = ["read", "a:b,c", "2:x", "é🙂"];
    let new = keys
        .issue(
            KeyRequest::new("Mallory@Example.com", "ci: deploys")
                .scopes(scopes)
                .expires_in(Duration::from_secs(3600))
                .allowed_ips([
                    "203.0.113.0/24".parse().unwrap(),
                    "2001:db8::/32".parse().unwrap(),
                ]),
            &scopes,
        )
        .await
        .unwrap();
    let record = store.inner.get(&new.info.key_id).await.unwrap().unwrap();
    assert_eq!(record.owner, "Mallory@Example.com");
    assert_eq!(record.name, "ci: deploys");
    assert_eq!(record.scopes, new.info.scopes);
    assert_eq!(record.scopes.len(), 4);
    assert_eq!(record.expires_at, Some(START + 3600));
    assert_eq!(record.allowed_ips, new.info.allowed_ips);
    assert_eq!(record.status, KeyStatus::Active);
    assert_eq!(record.pepper_id, "p1");
    assert_eq!((record.use_count, record.last_used_at), (0, None));
    let info = keys
        .verify(new.key.expose_secret(), ip("2001:db8::7"), &["a:b,c"])
        .await
        .unwrap();
    assert_eq!(info, new.info);

    let unknown = KeyId::parse("0000000000000000000042").unwrap();
    assert_eq!(store.inner.get(&unknown).await.unwrap(), None);
    assert!(
        !store
            .inner
            .set_status(&unknown, KeyStatus::Revoked)
            .await
            .unwrap()
    );
    let usage = KeyUsage {
        key_id: unknown,
        count: 3,
        last_used_at: START,
        last_used_ip: ip("192.0.2.1"),
    };
    store.inner.record_usage(&[usage]).await.unwrap();
    assert_eq!(store.inner.get(&unknown).await.unwrap(), None);
}

/// Attack: a stolen key used after its owner revoked it.
pub async fn revoked_key_is_refused_and_still_listed<F: Fixture>() {
    let Some((keys, _, _)) = setup::<F>("revoke").await else {
        return;
    };
    let new = keys
        .issue(KeyRequest::new("alice", "k"), &[])
        .await
        .unwrap();
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    // Attack: another owner revokes (or probes) alice's key id.
    let error = keys.revoke("mallory", new.info.key_id).await.unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::NotFound);
    keys.revoke("alice", new.info.key_id).await.unwrap();
    let error = keys
        .verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::Revoked);
    assert_eq!(palisade_errors::Error::from(error).status(), 401);
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, KeyStatus::Revoked);
    assert!(keys.list("mallory").await.unwrap().is_empty());
}

/// A rotation of a fresh key of alice's, run as its own task and held at
/// its first call of `method` (see [`Counting::hold`]): the race each
/// rotation test sets up.
struct HeldRotation<S: KeyStore> {
    keys: Arc<ApiKeys<Counting<S>, ManualClock>>,
    old: NewKey,
    rotation: tokio::task::JoinHandle<Result<NewKey, ApiKeyError>>,
    release: oneshot::Sender<()>,
}

async fn held_rotation<F: Fixture>(
    test: &str,
    method: &'static str,
) -> Option<HeldRotation<F::Store>> {
    let (keys, store, _) = setup::<F>(test).await?;
    let keys = Arc::new(keys);
    let old = keys
        .issue(KeyRequest::new("alice", "ci"), &[])
        .await
        .unwrap();
    let id = old.info.key_id;
    let (reached, release) = store.hold(method);
    let rotation = tokio::spawn({
        let keys = Arc::clone(&keys);
        async move { keys.rotate("alice", id).await }
    });
    reached.await.unwrap();
    Some(HeldRotation {
        keys,
        old,
        rotation,
        release,
    })
}

/// Attack: the holder of a leaked key races its owner's rotation of it (or
/// a client retries a rotation): both rotations read the key active, and
/// each wrote a successor, one of them for the leaker. One wins; the other
/// is a 409 and mints nothing.
pub async fn concurrent_rotations_give_one_successor<F: Fixture>() {
    // The first rotation has read the key active; the second runs whole.
    let Some(held) = held_rotation::<F>("rotate-race", "get").await else {
        return;
    };
    let HeldRotation {
        keys,
        old,
        rotation,
        release,
    } = held;
    let second = keys.rotate("alice", old.info.key_id).await;
    release.send(()).unwrap();
    let first = rotation.await.unwrap();
    assert_eq!(
        usize::from(first.is_ok()) + usize::from(second.is_ok()),
        1,
        "exactly one rotation wins"
    );
    let lost = first.err().or(second.err()).unwrap();
    assert_eq!(lost.kind(), ApiKeyErrorKind::AlreadyRotated);
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed.len(), 2, "the old key and one successor");
    let active = listed
        .iter()
        .filter(|key| key.status == KeyStatus::Active)
        .count();
    assert_eq!(active, 1);
}

/// Attack: the owner revokes a leaked key while a rotation of it (the
/// leaker's, from a session not yet ended) is in flight: the rotation's
/// grace overwrote the revocation, so the revoked key worked again and had
/// an heir. The revocation stands and the rotation is a 404.
pub async fn a_revocation_mid_rotation_is_never_undone<F: Fixture>() {
    let Some(held) = held_rotation::<F>("rotate-revoke", "get").await else {
        return;
    };
    let HeldRotation {
        keys,
        old,
        rotation,
        release,
    } = held;
    keys.revoke("alice", old.info.key_id).await.unwrap();
    release.send(()).unwrap();
    let error = rotation.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::NotFound);
    let error = keys
        .verify(old.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::Revoked);
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed.len(), 1, "no heir");
    assert_eq!(listed[0].status, KeyStatus::Revoked);
}

/// Attack: an account recovery (`revoke_all`) runs while an intruder's
/// rotation is writing its successor: the successor was written after the
/// keys were listed, and the predecessor came back for its grace. Neither
/// outlives the recovery.
pub async fn revoke_all_leaves_no_heir_of_a_rotation_in_flight<F: Fixture>() {
    // The rotation has moved the key into its grace and is about to write
    // the successor.
    let Some(held) = held_rotation::<F>("rotate-revoke-all", "insert_capped").await else {
        return;
    };
    let HeldRotation {
        keys,
        old,
        rotation,
        release,
    } = held;
    assert_eq!(keys.revoke_all("alice", "password_reset").await.unwrap(), 1);
    release.send(()).unwrap();
    let error = rotation.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::NotFound);
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed.len(), 2, "the successor was written, then revoked");
    assert!(
        listed.iter().all(|key| key.status == KeyStatus::Revoked),
        "{listed:?}"
    );
    let error = keys
        .verify(old.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::Revoked);
}

/// A rotation that cannot write its successor (the store refused it) puts
/// the old key back to work: it does not die at the end of a grace with
/// nothing to rotate to.
pub async fn a_failed_rotation_keeps_the_old_key_active<F: Fixture>() {
    let Some((keys, store, _)) = setup::<F>("rotate-undo").await else {
        return;
    };
    let keys = keys.with_max_keys_per_owner(1).unwrap();
    let old = keys
        .issue(KeyRequest::new("alice", "ci"), &[])
        .await
        .unwrap();
    // A key over the cap (an older grace key) leaves no room for a successor.
    let spare = KeyRecord {
        key_id: KeyId::parse("0000000000000000000001").unwrap(),
        ..store.inner.get(&old.info.key_id).await.unwrap().unwrap()
    };
    store.inner.insert(spare).await.unwrap();
    let error = keys.rotate("alice", old.info.key_id).await.unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::TooManyKeys);
    let record = store.inner.get(&old.info.key_id).await.unwrap().unwrap();
    assert_eq!(record.status, KeyStatus::Active);
}

/// Attack: `revoke_all` (an account recovery) listed the keys, and a
/// rotation in flight wrote its successor and finished before the listed
/// keys were revoked; the successor, never listed, outlived the recovery.
/// The next pass finds it.
pub async fn revoke_all_lists_again_for_a_successor_written_behind_it<F: Fixture>() {
    let Some((keys, store, _)) = setup::<F>("revoke-all-again").await else {
        return;
    };
    let keys = Arc::new(keys);
    let old = keys
        .issue(KeyRequest::new("alice", "ci"), &[])
        .await
        .unwrap();
    let (reached, release) = store.hold("set_status");
    let recovery = tokio::spawn({
        let keys = Arc::clone(&keys);
        async move { keys.revoke_all("alice", "password_reset").await }
    });
    // The recovery listed the old key and is about to revoke it; a
    // rotation runs whole meanwhile.
    reached.await.unwrap();
    keys.rotate("alice", old.info.key_id).await.unwrap();
    release.send(()).unwrap();
    assert_eq!(recovery.await.unwrap().unwrap(), 2);
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|key| key.status == KeyStatus::Revoked),
        "{listed:?}"
    );
}

/// A rotation whose store call was carried out but whose reply was lost
/// (a Redis timeout after the write) left the key in its grace with no
/// successor: the retry was refused as already rotated, and the key died
/// at the end of the grace. The key goes back to work and the retry
/// rotates it; so after a lost re-read.
pub async fn a_rotation_cut_short_by_the_store_can_be_retried<F: Fixture>() {
    let Some((keys, store, _)) = setup::<F>("rotate-lost").await else {
        return;
    };
    for (method, skip) in [("replace_status", 0), ("get", 1)] {
        let old = keys
            .issue(KeyRequest::new("alice", method), &[])
            .await
            .unwrap();
        store.lose_reply(method, skip);
        let error = keys.rotate("alice", old.info.key_id).await.unwrap_err();
        assert_eq!(error.kind(), ApiKeyErrorKind::Store, "{method}");
        let record = store.inner.get(&old.info.key_id).await.unwrap().unwrap();
        assert_eq!(record.status, KeyStatus::Active, "{method}");
        keys.rotate("alice", old.info.key_id).await.unwrap();
    }
    // The lost re-read's successor was revoked: one live successor each.
    let listed = keys.list("alice").await.unwrap();
    let active = listed
        .iter()
        .filter(|key| key.status == KeyStatus::Active)
        .count();
    assert_eq!(active, 2, "{listed:?}");
}

/// Attack: a key replaced by a rotation keeps being used after its grace.
pub async fn rotated_key_stops_at_the_end_of_its_grace<F: Fixture>() {
    let Some((keys, _, clock)) = setup::<F>("rotate").await else {
        return;
    };
    let keys = keys.with_rotation_grace(Duration::from_secs(600)).unwrap();
    let old = keys
        .issue(KeyRequest::new("alice", "ci").scopes(["read"]), &["read"])
        .await
        .unwrap();
    let new = keys.rotate("alice", old.info.key_id).await.unwrap();
    clock.advance(Duration::from_secs(599));
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
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &["read"])
        .await
        .unwrap();
    let listed = keys.list("alice").await.unwrap();
    assert_eq!(listed.len(), 2);
    let listed_old = listed
        .iter()
        .find(|info| info.key_id == old.info.key_id)
        .unwrap();
    assert_eq!(
        listed_old.status,
        KeyStatus::RotatedGrace { until: START + 600 }
    );
}

/// Attack: a leaked key used after its expiry.
pub async fn expired_key_is_refused_from_its_expiry_second<F: Fixture>() {
    let Some((keys, _, clock)) = setup::<F>("expiry").await else {
        return;
    };
    let new = keys
        .issue(
            KeyRequest::new("alice", "k").expires_in(Duration::from_secs(60)),
            &[],
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(59));
    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let error = keys
        .verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::Expired);
}

/// Attack: an owner hoarding keys past the cap. Revoked, expired and
/// rotated-out keys free their slot; a rotation may take the owner one over
/// the cap while the old key leaves, never two.
pub async fn the_cap_counts_live_keys_only<F: Fixture>() {
    let Some((keys, _, clock)) = setup::<F>("cap").await else {
        return;
    };
    let keys = keys
        .with_max_keys_per_owner(2)
        .unwrap()
        .with_rotation_grace(Duration::from_secs(100))
        .unwrap();
    let first = keys.issue(KeyRequest::new("a", "1"), &[]).await.unwrap();
    let _expiring = keys
        .issue(
            KeyRequest::new("a", "2").expires_in(Duration::from_secs(10)),
            &[],
        )
        .await
        .unwrap();
    let error = keys
        .issue(KeyRequest::new("a", "3"), &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::TooManyKeys);
    keys.issue(KeyRequest::new("b", "1"), &[]).await.unwrap();
    clock.advance(Duration::from_secs(10));
    let third = keys.issue(KeyRequest::new("a", "3"), &[]).await.unwrap();
    keys.revoke("a", first.info.key_id).await.unwrap();
    keys.issue(KeyRequest::new("a", "4"), &[]).await.unwrap();
    // At the cap (2 live): one rotation is allowed (3 live during its
    // grace), a second is not.
    let rotated = keys.rotate("a", third.info.key_id).await.unwrap();
    let error = keys.rotate("a", rotated.info.key_id).await.unwrap_err();
    assert_eq!(error.kind(), ApiKeyErrorKind::TooManyKeys);
    clock.advance(Duration::from_secs(100));
    keys.rotate("a", rotated.info.key_id).await.unwrap();
    let live = keys
        .list("a")
        .await
        .unwrap()
        .iter()
        .filter(|info| info.status == KeyStatus::Active && info.expires_at.is_none())
        .count();
    assert_eq!(live, 2);
}

/// Attack: a burst of concurrent issue requests for one owner racing the
/// cap check. Exactly `max` succeed, the rest are a 409.
pub async fn concurrent_issues_never_pass_the_cap<F: Fixture>() {
    let Some((keys, _, _)) = setup::<F>("cap-race").await else {
        return;
    };
    const MAX: usize = 7;
    let keys = Arc::new(keys.with_max_keys_per_owner(MAX).unwrap());
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let keys = Arc::clone(&keys);
            tokio::spawn(async move {
                keys.issue(KeyRequest::new("racer", format!("k{n}")), &[])
                    .await
                    .map(|new| new.info.key_id)
                    .map_err(|error| error.kind())
            })
        })
        .collect();
    let mut issued = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => issued += 1,
            Err(ApiKeyErrorKind::TooManyKeys) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((issued, refused), (MAX, 50 - MAX));
    assert_eq!(keys.list("racer").await.unwrap().len(), MAX);
}

/// Usage costs no store write per request: 1000 verifications write
/// nothing until the flush, which writes once with exact counts.
pub async fn usage_is_batched_and_exact<F: Fixture>() {
    let Some((keys, store, clock)) = setup::<F>("usage").await else {
        return;
    };
    let keys = keys
        .with_usage_flush_interval(Duration::from_secs(60))
        .unwrap();
    let a = keys.issue(KeyRequest::new("o", "a"), &[]).await.unwrap();
    let b = keys.issue(KeyRequest::new("o", "b"), &[]).await.unwrap();
    for n in 0..1000u32 {
        let (key, from) = if n % 4 == 0 {
            (&b.key, ip("2001:db8::1"))
        } else {
            (&a.key, ip("192.0.2.1"))
        };
        if n == 999 {
            clock.advance(Duration::from_secs(59));
        }
        keys.verify(key.expose_secret(), from, &[]).await.unwrap();
    }
    assert_eq!(store.usage_writes(), 0, "no store write before the flush");
    assert_eq!(keys.pending_usage(), 2);
    // A listing already counts what is pending.
    let listed = keys.list("o").await.unwrap();
    let listed_a = listed
        .iter()
        .find(|info| info.key_id == a.info.key_id)
        .unwrap();
    let listed_b = listed
        .iter()
        .find(|info| info.key_id == b.info.key_id)
        .unwrap();
    assert_eq!((listed_a.use_count, listed_b.use_count), (750, 250));
    assert_eq!(listed_a.last_used_at, Some(START + 59));
    assert_eq!(listed_a.last_used_ip, Some(ip("192.0.2.1")));
    keys.flush().await.unwrap();
    assert_eq!(store.usage_writes(), 1);
    assert_eq!(keys.pending_usage(), 0);
    let a_record = store.inner.get(&a.info.key_id).await.unwrap().unwrap();
    let b_record = store.inner.get(&b.info.key_id).await.unwrap().unwrap();
    assert_eq!(a_record.use_count, 750);
    assert_eq!(a_record.last_used_at, Some(START + 59));
    assert_eq!(a_record.last_used_ip, Some(ip("192.0.2.1")));
    assert_eq!(b_record.use_count, 250);
    assert_eq!(b_record.last_used_at, Some(START));
    assert_eq!(b_record.last_used_ip, Some(ip("2001:db8::1")));
    // The flush interval passed: the verification that sees it writes.
    clock.advance(Duration::from_secs(60));
    keys.verify(a.key.expose_secret(), ip("192.0.2.9"), &[])
        .await
        .unwrap();
    assert_eq!(store.usage_writes(), 2);
    let a_record = store.inner.get(&a.info.key_id).await.unwrap().unwrap();
    assert_eq!(a_record.use_count, 751);
    assert_eq!(a_record.last_used_ip, Some(ip("192.0.2.9")));
    assert_eq!(keys.usage_dropped(), 0);
}

/// Concurrent verifications while flushes happen lose no use.
pub async fn concurrent_verifies_lose_nothing<F: Fixture>() {
    let Some((keys, store, clock)) = setup::<F>("usage-race").await else {
        return;
    };
    let keys = Arc::new(
        keys.with_usage_flush_interval(Duration::from_secs(1))
            .unwrap(),
    );
    let mut issued = Vec::new();
    for n in 0..4 {
        issued.push(Arc::new(
            keys.issue(KeyRequest::new("o", format!("{n}")), &[])
                .await
                .unwrap(),
        ));
    }
    let ticker = {
        let clock = clock.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                clock.advance(Duration::from_secs(1));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let keys = Arc::clone(&keys);
            let new = Arc::clone(&issued[task % 4]);
            tokio::spawn(async move {
                for _ in 0..250 {
                    keys.verify(new.key.expose_secret(), ip("192.0.2.1"), &[])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    ticker.await.unwrap();
    keys.flush().await.unwrap();
    assert!(store.usage_writes() >= 1);
    for new in &issued {
        let record = store.inner.get(&new.info.key_id).await.unwrap().unwrap();
        assert_eq!(record.use_count, 500, "two tasks of 250 per key");
    }
    assert_eq!(keys.usage_dropped(), 0);
}

/// The behaviour tests for fixture `$fixture`, in a module named `$module`.
macro_rules! store_behaviour_tests {
    ($module:ident, $fixture:ty) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn records_round_trip() {
                crate::store_behaviour::records_round_trip::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn revoked_key_is_refused_and_still_listed() {
                crate::store_behaviour::revoked_key_is_refused_and_still_listed::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_rotations_give_one_successor() {
                crate::store_behaviour::concurrent_rotations_give_one_successor::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_revocation_mid_rotation_is_never_undone() {
                crate::store_behaviour::a_revocation_mid_rotation_is_never_undone::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn revoke_all_leaves_no_heir_of_a_rotation_in_flight() {
                crate::store_behaviour::revoke_all_leaves_no_heir_of_a_rotation_in_flight::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_failed_rotation_keeps_the_old_key_active() {
                crate::store_behaviour::a_failed_rotation_keeps_the_old_key_active::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn revoke_all_lists_again_for_a_successor_written_behind_it() {
                crate::store_behaviour::revoke_all_lists_again_for_a_successor_written_behind_it::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_rotation_cut_short_by_the_store_can_be_retried() {
                crate::store_behaviour::a_rotation_cut_short_by_the_store_can_be_retried::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rotated_key_stops_at_the_end_of_its_grace() {
                crate::store_behaviour::rotated_key_stops_at_the_end_of_its_grace::<$fixture>()
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn expired_key_is_refused_from_its_expiry_second() {
                crate::store_behaviour::expired_key_is_refused_from_its_expiry_second::<$fixture>()
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn the_cap_counts_live_keys_only() {
                crate::store_behaviour::the_cap_counts_live_keys_only::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_issues_never_pass_the_cap() {
                crate::store_behaviour::concurrent_issues_never_pass_the_cap::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn usage_is_batched_and_exact() {
                crate::store_behaviour::usage_is_batched_and_exact::<$fixture>().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_verifies_lose_nothing() {
                crate::store_behaviour::concurrent_verifies_lose_nothing::<$fixture>().await;
            }
        }
    };
}
