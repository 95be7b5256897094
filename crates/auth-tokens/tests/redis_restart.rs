//! A Redis that restarts without persistence (issue #11): the revocations
//! are gone, and a revoked token used to verify OK again. Each test starts
//! its own `redis-server` on a free port with `--save "" --appendonly no`
//! (never the shared one), kills and restarts it on the same port. Without
//! a `redis-server` binary the tests skip, unless `CI=true`: then they fail.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report; skips say why

use std::time::{Duration, Instant};

use palisade_auth_tokens::refresh::{
    FamilyConfig, FamilyRef, FamilyStore, RedisFamilyStore, RotateOutcome, Rotation, token_hash,
};
use palisade_auth_tokens::revocation::{
    RedisRevocationStore, RevocationStore as _, StoreErrorKind,
};
use palisade_auth_tokens::{
    Algorithm, Grant, Keyring, ManualClock, NoCustomClaims, SigningKey, TokenErrorKind,
    TokenIssuer, TokenPolicy, TokenVerifier,
};
use palisade_errors::SecurityEvent;
use palisade_errors::testing::EventCapture;
use secrecy::SecretSlice;

#[path = "../../../tests/private_redis.rs"]
mod private_redis;

use private_redis::PrivateRedis;

fn secret(bytes: &[u8]) -> SecretSlice<u8> {
    SecretSlice::from(bytes.to_vec())
}

fn ring() -> Keyring {
    Keyring::new([SigningKey::hmac(
        "a1",
        Algorithm::HS256,
        &secret(b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa"),
    )
    .unwrap()])
    .unwrap()
}

fn policy() -> TokenPolicy {
    TokenPolicy::new("https://auth.example.com", "api").unwrap()
}

/// `call` until Redis answers (the connection comes back by itself after
/// the restart), at most 10 s.
async fn answered<T, E: std::fmt::Debug, F: Future<Output = Result<T, E>>>(
    mut call: impl FnMut() -> F,
    is_store_error: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let started = Instant::now();
    loop {
        match call().await {
            Err(error) if is_store_error(&error) && started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// The revocation store on `redis`, an issuer and a verifier on a manual
/// clock set to Redis' time, and the grant of `user-42`.
fn tokens(
    redis: &PrivateRedis,
) -> (
    RedisRevocationStore,
    ManualClock,
    TokenIssuer<ManualClock>,
    TokenVerifier<ManualClock>,
    Grant,
) {
    let store = RedisRevocationStore::connect_lazy(&redis.url())
        .unwrap()
        .with_timeout(Duration::from_millis(2_000));
    let clock = ManualClock::from_unix_secs(redis.now());
    let issuer = TokenIssuer::with_clock(ring(), ring(), policy(), clock.clone());
    let verifier = TokenVerifier::with_clock(ring(), ring(), policy(), clock.clone());
    let grant = Grant {
        subject: "user-42".into(),
        ..Grant::default()
    };
    (store, clock, issuer, verifier, grant)
}

#[tokio::test]
async fn redis_restart_without_persistence_cannot_unrevoke_a_token() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let (store, clock, issuer, verifier, grant) = tokens(&redis);
    // A store in use for an hour: the token was issued in its epoch.
    store.readiness().await.unwrap_err();
    store.readiness().await.unwrap();
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(store.epoch_key("user-42"))
        .arg(clock.now_secs() - 3_600)
        .arg("EX")
        .arg(3_600)
        .query_async(&mut connection)
        .await
        .unwrap();

    let stolen = issuer.issue_access(&grant, NoCustomClaims {}).unwrap();
    let claims = verifier
        .verify_access_unrevoked::<NoCustomClaims, _>(&stolen.token, &store)
        .await
        .unwrap();
    verifier.revoke(&claims, &store, None).await.unwrap();
    let verify = || verifier.verify_access_unrevoked::<NoCustomClaims, _>(&stolen.token, &store);
    assert_eq!(verify().await.unwrap_err().kind(), TokenErrorKind::Revoked);

    let capture = EventCapture::new();
    let _guard = capture.set_default();
    redis.restart();
    let losses = store.data_losses();
    let after = answered(verify, |error| {
        error.kind() == TokenErrorKind::StoreUnavailable
    })
    .await;
    assert_eq!(
        after.unwrap_err().kind(),
        TokenErrorKind::Revoked,
        "the revoked token verified after Redis lost its data"
    );
    // And it stays refused.
    assert_eq!(verify().await.unwrap_err().kind(), TokenErrorKind::Revoked);
    assert_eq!(store.data_losses(), losses + 1);
    let lost: Vec<_> = capture
        .named(SecurityEvent::StoreUnavailable)
        .into_iter()
        .filter(|event| event.field("reason") == Some("data_lost"))
        .collect();
    assert_eq!(lost.len(), 1, "{:?}", capture.events());
    capture.assert_absent(&stolen.token);
    capture.assert_absent("user-42");
    // Readiness reports the loss once; the store is consistent again after.
    assert_eq!(
        store.readiness().await.unwrap_err().kind(),
        StoreErrorKind::DataLost
    );
    store.readiness().await.unwrap();

    // A new login after the loss (a leeway past it, or through
    // `login_after`) is valid. The new epoch began at Redis' time when the
    // loss was found, seconds after the test started on a loaded machine:
    // the clock moves to Redis' time now, then a leeway on.
    clock.set(std::time::UNIX_EPOCH + Duration::from_secs(redis.now() + policy().leeway() + 1));
    let fresh = issuer.issue_access(&grant, NoCustomClaims {}).unwrap();
    verifier
        .verify_access_unrevoked::<NoCustomClaims, _>(&fresh.token, &store)
        .await
        .unwrap();
}

/// The other side of a new epoch: logins right after it. A first start,
/// or a Redis that lost its data, starts an epoch at Redis' time, and
/// every token issued before it counts as revoked, with the leeway applied
/// to its `iat`. A login that asks the store for the subject's `not_before`
/// (as `login_after` and palisade-server do) gets the epoch too and stamps
/// its tokens past it: valid at once, instead of refused as revoked for
/// the leeway (30 s of 401s, and clients logging in again into the login
/// limit).
#[tokio::test]
async fn a_login_right_after_a_new_epoch_is_valid_at_once() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let (store, clock, issuer, verifier, grant) = tokens(&redis);
    for moment in ["first start", "after a restart without persistence"] {
        if moment != "first start" {
            redis.restart();
        }
        let not_before = answered(
            || store.not_before("user-42"),
            |error| {
                error.kind() == StoreErrorKind::Unavailable
                    || error.kind() == StoreErrorKind::Timeout
            },
        )
        .await
        .unwrap();
        assert!(not_before.is_some(), "{moment}: the epoch is a not_before");
        // The instance's clock at Redis' time now, the epoch's second or
        // later. (In an epoch's first second, an instance whose clock is
        // behind Redis' mints a token not valid for up to a second, the
        // whole-second edge `issue_access_after` documents; before, it was
        // refused as revoked for the leeway.)
        clock.set(std::time::UNIX_EPOCH + Duration::from_secs(redis.now()));
        let login = issuer
            .issue_access_after(&grant, NoCustomClaims {}, not_before)
            .unwrap();
        verifier
            .verify_access_unrevoked::<NoCustomClaims, _>(&login.token, &store)
            .await
            .unwrap_or_else(|error| panic!("{moment}: {error:?}"));
        // A token stamped before the epoch stays refused (fail closed).
        let before = issuer.issue_access(&grant, NoCustomClaims {}).unwrap();
        assert_eq!(
            verifier
                .verify_access_unrevoked::<NoCustomClaims, _>(&before.token, &store)
                .await
                .unwrap_err()
                .kind(),
            TokenErrorKind::Revoked,
            "{moment}"
        );
    }
}

#[tokio::test]
async fn redis_restart_without_persistence_ends_every_refresh_family() {
    // The family store holds what makes a refresh token valid (the
    // family's current token), not what makes it invalid: a store that lost
    // it refuses every refresh (fail closed), it never accepts a rotated one.
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let store = RedisFamilyStore::connect_lazy(&redis.url())
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let family = FamilyRef {
        subject: "user-42",
        sid: "session-1",
    };
    let config = FamilyConfig::default();
    let (first, second, third) = (token_hash("r-1"), token_hash("r-2"), token_hash("r-3"));
    store.start(family, &first, &config).await.unwrap();
    let rotation = |presented, successor| Rotation {
        presented,
        successor,
        sealed_pair: b"sealed",
    };
    assert_eq!(
        store
            .rotate(family, rotation(&first, &second), &config)
            .await
            .unwrap(),
        RotateOutcome::Rotated
    );
    redis.restart();
    let rotate_stolen = || store.rotate(family, rotation(&first, &third), &config);
    let rotate_current = || store.rotate(family, rotation(&second, &third), &config);
    let is_down = |error: &palisade_auth_tokens::revocation::StoreError| {
        error.kind() != StoreErrorKind::DataLost
    };
    for rotate in [
        answered(rotate_stolen, is_down).await,
        answered(rotate_current, is_down).await,
    ] {
        assert_eq!(rotate.unwrap(), RotateOutcome::Unknown);
    }
}

/// Whole seconds of a manual clock.
trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> u64 {
        palisade_auth_tokens::Clock::now(self)
    }
}
