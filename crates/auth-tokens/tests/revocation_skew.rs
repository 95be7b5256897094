//! Logout-everywhere against issuers whose clocks differ from the store's
//! by up to the leeway (issue #11): an instance 30 s ahead used to mint
//! tokens that survived a `revoke_subject` on the store's clock, and every
//! refresh stamped a later `iat`, so a stolen session outlived the password
//! change. Each scenario runs on the memory stores and, with the `redis`
//! feature, on Redis (127.0.0.1:6379; under `CI=true` an unreachable Redis
//! fails the test instead of skipping it).

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report; skips say why

use std::time::Duration;

use palisade_auth_tokens::refresh::{
    FamilyConfig, FamilyStore, MemoryFamilyStore, RefreshFamilies, TokenPair,
};
use palisade_auth_tokens::revocation::{MemoryRevocationStore, RevocationStore};
use palisade_auth_tokens::{
    Algorithm, Grant, Keyring, ManualClock, NoCustomClaims, SigningKey, TokenErrorKind,
    TokenIssuer, TokenPolicy, TokenVerifier,
};
use secrecy::SecretSlice;

const NOW: u64 = 1_800_000_000;
const LEEWAY: u64 = 30;

fn secret(bytes: &[u8]) -> SecretSlice<u8> {
    SecretSlice::from(bytes.to_vec())
}

fn policy() -> TokenPolicy {
    TokenPolicy::builder("https://auth.example.com", "api")
        .leeway(LEEWAY)
        .build()
        .unwrap()
}

/// One instance of the service: its own clock, the shared keys and stores.
struct Instance<F: FamilyStore> {
    clock: ManualClock,
    verifier: TokenVerifier<ManualClock>,
    families: RefreshFamilies<F, ManualClock>,
}

fn instance<F: FamilyStore>(store: F, now: u64) -> Instance<F> {
    let hmac =
        |kid: &str, bytes: &[u8]| SigningKey::hmac(kid, Algorithm::HS256, &secret(bytes)).unwrap();
    let access = Keyring::new([hmac("a1", b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa")]).unwrap();
    let refresh = Keyring::new([hmac("r1", b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa")]).unwrap();
    let clock = ManualClock::from_unix_secs(now);
    let issuer = TokenIssuer::with_clock(access.clone(), refresh.clone(), policy(), clock.clone());
    let verifier = TokenVerifier::with_clock(access, refresh, policy(), clock.clone());
    let families = RefreshFamilies::new(
        issuer,
        verifier.clone(),
        store,
        &secret(b"Qm3Zr7Tw1Yp5Ks9Lx2Vb6Nc0Hd4Jf8Ga"),
        FamilyConfig::default(),
    )
    .unwrap();
    Instance {
        clock,
        verifier,
        families,
    }
}

fn grant(subject: &str) -> Grant {
    Grant {
        subject: subject.into(),
        ..Grant::default()
    }
}

fn users() -> impl FnOnce(String) -> std::future::Ready<Option<Grant>> {
    |subject| std::future::ready(Some(grant(&subject)))
}

async fn access_check<F: FamilyStore, R: RevocationStore>(
    at: &Instance<F>,
    pair: &TokenPair,
    revocations: &R,
) -> Result<(), TokenErrorKind> {
    at.verifier
        .verify_access_unrevoked::<NoCustomClaims, _>(&pair.access.token, revocations)
        .await
        .map(|_| ())
        .map_err(|error| error.kind())
}

async fn refresh<F: FamilyStore, R: RevocationStore>(
    at: &Instance<F>,
    pair: &TokenPair,
    revocations: &R,
) -> Result<TokenPair, TokenErrorKind> {
    at.families
        .refresh_unrevoked(&pair.refresh.token, users(), revocations)
        .await
        .map_err(|error| error.kind())
}

/// `skewed` runs `skew` seconds off the store's clock (`store_now`), `exact`
/// on it; both share `families_store` and `revocations`.
async fn logout_everywhere_beats_skew<F, R>(
    families_store: F,
    revocations: &R,
    store_now: u64,
    skew: i64,
    subject: &str,
) where
    F: FamilyStore + Clone,
    R: RevocationStore,
{
    let skewed = instance(
        families_store.clone(),
        store_now.saturating_add_signed(skew),
    );
    let exact = instance(families_store, store_now);
    // The victim logs in on the skewed instance, then a thief copies the
    // session; the victim changes their password right away.
    let stolen = skewed.families.login(&grant(subject)).await.unwrap().pair;
    assert_eq!(access_check(&exact, &stolen, revocations).await, Ok(()));
    let not_before = revocations.revoke_subject(subject).await.unwrap();
    for at in [&skewed, &exact] {
        assert_eq!(
            access_check(at, &stolen, revocations).await,
            Err(TokenErrorKind::Revoked),
            "skew {skew}: the access token minted before the logout survived it"
        );
    }
    assert_eq!(
        refresh(&exact, &stolen, revocations).await.unwrap_err(),
        TokenErrorKind::Revoked,
        "skew {skew}: the refresh token minted before the logout survived it"
    );
    // The user's new login, a second later, on either instance, is valid
    // on the instance at the store's clock and refreshes there, and its
    // successors stay valid.
    // (On Redis the store's clock may have ticked since `store_now`.)
    let exact_now = store_now.max(not_before) + 1;
    let set = |clock: &ManualClock, now: u64| {
        clock.set(std::time::UNIX_EPOCH + Duration::from_secs(now));
    };
    set(&exact.clock, exact_now);
    set(&skewed.clock, exact_now.saturating_add_signed(skew));
    for at in [&skewed, &exact] {
        let fresh = at
            .families
            .login_after(&grant(subject), Some(not_before))
            .await
            .unwrap()
            .pair;
        assert_eq!(access_check(&exact, &fresh, revocations).await, Ok(()));
        let next = refresh(&exact, &fresh, revocations).await.unwrap();
        assert_eq!(access_check(&exact, &next, revocations).await, Ok(()));
        if skew > 0 {
            // An instance ahead accepts them too (one behind the store
            // refuses a stamp past `not_before + leeway` as issued in the
            // future until its clock catches up: see `issue_access_after`).
            assert_eq!(access_check(&skewed, &next, revocations).await, Ok(()));
            let again = refresh(&skewed, &next, revocations).await.unwrap();
            assert_eq!(access_check(&exact, &again, revocations).await, Ok(()));
        }
    }
}

#[tokio::test]
async fn issuer_clock_ahead_or_behind_within_leeway_cannot_outlive_logout_everywhere_memory() {
    for skew in [LEEWAY as i64, 1, -(LEEWAY as i64)] {
        let store_clock = ManualClock::from_unix_secs(NOW);
        let revocations = MemoryRevocationStore::with_clock(store_clock.clone());
        let families = MemoryFamilyStore::with_clock(store_clock);
        logout_everywhere_beats_skew(families, &revocations, NOW, skew, "alice").await;
    }
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn issuer_clock_ahead_or_behind_within_leeway_cannot_outlive_logout_everywhere_redis() {
    use palisade_auth_tokens::refresh::RedisFamilyStore;
    use palisade_auth_tokens::revocation::RedisRevocationStore;

    const URL: &str = "redis://127.0.0.1:6379/0";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("palisade-test:skew:{}:{nanos}", std::process::id());
    let revocations = RedisRevocationStore::connect_lazy(URL)
        .unwrap()
        .with_key_prefix(&format!("{prefix}:rv"))
        .unwrap()
        .with_timeout(Duration::from_millis(500))
        .with_epoch_ttl(Duration::from_secs(30));
    if let Err(error) = revocations.not_before("probe").await {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Redis at {URL} is required under CI=true: {error}"
        );
        eprintln!("skipping: Redis at {URL} is unreachable: {error}");
        return;
    }
    let families = RedisFamilyStore::connect_lazy(URL)
        .unwrap()
        .with_key_prefix(&format!("{prefix}:rf"))
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let mut connection = redis::Client::open(URL)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (n, skew) in [LEEWAY as i64, -(LEEWAY as i64)].into_iter().enumerate() {
        let (store_now, _micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut connection)
            .await
            .unwrap();
        let subject = format!("alice-{n}");
        // A store in use for an hour: its epoch began before these logins.
        // (A store's first epoch refuses tokens issued, by the verifier's
        // reckoning, before it: see `RedisRevocationStore::readiness`.)
        // Written whether or not the store's first-use write of every
        // slot's sentinel reached this slot yet: under load it may not have
        // within the store's timeout, and the slot would then start its
        // first epoch at the login below.
        let _: () = redis::cmd("SET")
            .arg(revocations.epoch_key(&subject))
            .arg(store_now - 3_600)
            .arg("EX")
            .arg(600)
            .query_async(&mut connection)
            .await
            .unwrap();
        logout_everywhere_beats_skew(families.clone(), &revocations, store_now, skew, &subject)
            .await;
    }
}
