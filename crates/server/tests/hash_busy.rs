//! A refusal of the full hashing pool is held (`PALISADE_HASH_BUSY_DELAY`)
//! before it is answered, through the real router, on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use palisade_secrets::MapEnv;
use palisade_server::state::{App, Memory};
use palisade_server::{Config, app};
use support::{ADMIN_PASSWORD, in_process, json_post, with_fixed_secrets};
use tower::ServiceExt as _;

async fn service(delay: Option<&str>) -> (Arc<App<Memory>>, Router) {
    let mut vars = vec![
        ("PALISADE_ENV", "development"),
        ("PALISADE_ADMIN_USERNAME", "root"),
        ("PALISADE_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("PALISADE_RATE_LIMIT", "100000/second"),
        ("PALISADE_LOGIN_RATE_LIMIT", "100000/second"),
    ];
    if let Some(delay) = delay {
        vars.push(("PALISADE_HASH_BUSY_DELAY", delay));
    }
    let (state, config) = in_process(&vars).await;
    let router = app(Arc::clone(&state), &config).unwrap();
    (state, router)
}

fn post(path: &str, body: String) -> http::Request<Body> {
    json_post(path, body, [203, 0, 113, 9])
}

/// How long (on the paused clock) `request` took, its status and its
/// `Retry-After`.
async fn timed(
    router: &Router,
    request: http::Request<Body>,
) -> (Duration, http::StatusCode, Option<String>) {
    let started = tokio::time::Instant::now();
    let response = router.clone().oneshot(request).await.unwrap();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    (started.elapsed(), response.status(), retry_after)
}

fn login() -> http::Request<Body> {
    post(
        "/auth/login",
        format!(r#"{{"username":"root","password":"{ADMIN_PASSWORD}"}}"#),
    )
}

fn register(name: &str) -> http::Request<Body> {
    post(
        "/auth/register",
        format!(r#"{{"username":"{name}","password":"a long and unusual passphrase 7"}}"#),
    )
}

/// Login flood (credential stuffing on keep-alive connections): each
/// refusal of the full pool is cheap, so a client sending its next attempt
/// as soon as it has an answer would loop on 503s and take the CPU other
/// requests need. Held 250 ms by default, each connection gets at most four
/// refusals a second; registrations are held alike.
#[tokio::test(start_paused = true)]
async fn a_refusal_of_the_full_pool_is_held_before_its_503() {
    let (state, router) = service(None).await;
    let flood: Vec<_> = std::iter::from_fn(|| state.hasher.reserve().ok()).collect();
    assert!(!flood.is_empty());
    for request in [login(), register("newcomer")] {
        let (took, status, retry_after) = timed(&router, request).await;
        assert_eq!(status, 503);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_millis(300), "{took:?}");
    }
    // With a place free, nothing is held: the login is checked and passes
    // (on the real clock: hashing runs on a blocking thread, and a paused
    // clock would jump to the request timeout while it works).
    drop(flood);
    tokio::time::resume();
    let response = router.clone().oneshot(login()).await.unwrap();
    assert_eq!(response.status(), 200);
}

/// A reset confirm that meets a full pool (a flood, or a busy hour) is a
/// 503 like the others, and the user's link survives it, so the retry
/// works. (Here the pool is full from the start, at the policy check; the
/// token is spent only once the new hash is ready, so a pool that fills
/// later, at the history check or the hash, leaves it too.)
#[tokio::test(start_paused = true)]
async fn a_reset_confirm_refused_by_the_full_pool_keeps_its_token() {
    use secrecy::ExposeSecret as _;

    let (state, router) = service(None).await;
    let root = state.users.by_username("root").await.unwrap().unwrap();
    let secret = state
        .resets
        .issue(&root.id, &root.password_hash)
        .await
        .unwrap();
    let confirm = || {
        post(
            "/auth/password-reset/confirm",
            serde_json::json!({
                "token": format!("{}.{}", root.id, secret.expose_secret()),
                "new_password": "a brand new passphrase 2032",
            })
            .to_string(),
        )
    };
    let flood: Vec<_> = std::iter::from_fn(|| state.hasher.reserve().ok()).collect();
    let (took, status, retry_after) = timed(&router, confirm()).await;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert!(took >= Duration::from_millis(250), "{took:?}");
    drop(flood);
    tokio::time::resume();
    let response = router.clone().oneshot(confirm()).await.unwrap();
    assert_eq!(response.status(), 204);
    let replay = router.clone().oneshot(confirm()).await.unwrap();
    assert_eq!(replay.status(), 401, "single use");
}

#[tokio::test(start_paused = true)]
async fn the_hold_follows_the_setting_and_zero_answers_at_once() {
    for (setting, expected) in [("1s", Duration::from_secs(1)), ("0s", Duration::ZERO)] {
        let (state, router) = service(Some(setting)).await;
        let flood: Vec<_> = std::iter::from_fn(|| state.hasher.reserve().ok()).collect();
        let (took, status, _) = timed(&router, login()).await;
        assert_eq!(status, 503, "{setting}");
        assert!(took >= expected, "{setting}: {took:?}");
        assert!(
            took < expected + Duration::from_millis(50),
            "{setting}: {took:?}"
        );
        drop(flood);
    }
}

#[test]
fn a_hold_over_five_seconds_or_past_the_request_timeout_is_refused_at_start() {
    // Past the request timeout, a held refusal would be the timeout's
    // answer instead: no `Retry-After`, and a warning line per refusal.
    for env in [
        vec![("PALISADE_HASH_BUSY_DELAY", "6s")],
        vec![
            ("PALISADE_HASH_BUSY_DELAY", "2s"),
            ("PALISADE_REQUEST_TIMEOUT", "2s"),
        ],
    ] {
        let problems = Config::from_env(MapEnv::from_iter(with_fixed_secrets(&env))).unwrap_err();
        assert!(
            format!("{problems}").contains("PALISADE_HASH_BUSY_DELAY"),
            "{problems}"
        );
    }
    let env = with_fixed_secrets(&[
        ("PALISADE_HASH_BUSY_DELAY", "2s"),
        ("PALISADE_REQUEST_TIMEOUT", "3s"),
    ]);
    assert!(Config::from_env(MapEnv::from_iter(env)).is_ok());
}
