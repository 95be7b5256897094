//! API-key authentication as a layer, scope guards and per-key rate limits
//! through a real axum router, real issued keys, the real `ApiKeyLayer` and
//! the real `RateLimitLayer` (no stand-in): the shared table
//! `tests/apikey_cases.rs` (which `palisade-actix` runs too), one
//! verification per request, and a guard without the layer.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/apikey_cases.rs"]
mod apikey_cases;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use apikey_cases::{Call, Fixture, Missing, Outcome, Setup, Write};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use http_body_util::BodyExt;
// Everything from the adapter: one dependency suffices.
use palisade_axum::apikeys::{
    ApiKeyLayer, KeyInfo, KeyMode, RequireScope, VerifiedKey, VerifyFuture, VerifyKey,
};
use palisade_axum::harden;
use palisade_axum::ratelimit::{ClientIpResolver, RateLimitLayer, by_extension, by_ip};
use palisade_errors::testing::EventCapture;
use tower::ServiceExt;

fn app(fixture: &Fixture, setup: Setup) -> Router {
    let key = match setup.missing {
        Missing::Refuse => by_extension(apikey_cases::key_key).or_refuse(),
        Missing::FallbackToIp => {
            by_extension(apikey_cases::key_key).or_key(by_ip(ClientIpResolver::peer_only()))
        }
    };
    let limit = RateLimitLayer::new(apikey_cases::limiter(), key);
    let keys = ApiKeyLayer::new(Arc::clone(&fixture.keys), setup.mode)
        .header(HeaderName::from_static(setup.header))
        .client_ip(apikey_cases::resolver(setup.proxies));
    let items = get(|key: Option<Extension<KeyInfo>>| async move {
        apikey_cases::answer(key.as_ref().map(|key| &key.0))
    });
    let write = get(|key: RequireScope<Write>| async move { apikey_cases::answer(Some(&key)) });
    harden(
        Router::new()
            .route("/items", items)
            .route("/write", write)
            .route_layer(limit)
            .route_layer(keys),
    )
}

async fn send(router: &Router, fixture: &Fixture, setup: &Setup, call: &Call) -> Outcome {
    let mut request = Request::builder().uri(call.route.path());
    for (name, value) in fixture.headers(setup, call) {
        request = request.header(name, value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: SocketAddr = call.peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let capture = EventCapture::new();
    let response = {
        let _guard = capture.set_default();
        router.clone().oneshot(request).await.unwrap()
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let (www_authenticate, retry_after, ratelimit, request_id) = (
        header("www-authenticate"),
        header("retry-after"),
        header("ratelimit"),
        header("x-request-id"),
    );
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    fixture.assert_no_secret_logged(&capture);
    capture.assert_vocabulary();
    Outcome {
        status,
        www_authenticate,
        retry_after,
        ratelimit,
        request_id,
        body: String::from_utf8(body.to_vec()).unwrap(),
        events: capture
            .security_events()
            .iter()
            .map(|event| event.field("event").unwrap().to_owned())
            .collect(),
    }
}

#[tokio::test]
async fn the_shared_apikey_cases() {
    for case in apikey_cases::CASES {
        let fixture = Fixture::new().await;
        let router = app(&fixture, case.setup);
        for (index, call) in case.calls.iter().enumerate() {
            let outcome = send(&router, &fixture, &case.setup, call).await;
            apikey_cases::check(&fixture, case, index, &outcome);
        }
    }
}

/// Counts verifications.
struct Counting(Arc<apikey_cases::Keys>, AtomicU32);

impl VerifyKey for Counting {
    fn verify_key<'a>(&'a self, presented: &'a str, client_ip: IpAddr) -> VerifyFuture<'a> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.verify_key(presented, client_ip)
    }
}

fn get_request(path: &str, key: &str, peer: Option<&str>) -> Request<Body> {
    let mut request = Request::builder()
        .uri(path)
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    if let Some(peer) = peer {
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    request
}

#[tokio::test]
async fn the_extractors_read_what_the_layer_verified() {
    let fixture = Fixture::new().await;
    let counting = Arc::new(Counting(Arc::clone(&fixture.keys), AtomicU32::new(0)));
    let router = harden(
        Router::new()
            .route(
                "/write",
                get(|key: VerifiedKey, scoped: RequireScope<Write>| async move {
                    assert_eq!(key.key_id, scoped.key_id);
                    format!("{} {}", key.owner, key.client_ip())
                }),
            )
            .route_layer(ApiKeyLayer::new(Arc::clone(&counting), KeyMode::Required)),
    );
    let key = fixture.presented(apikey_cases::Key::Alice2).unwrap();
    let response = router
        .oneshot(get_request("/write", key, Some("192.0.2.7:4000")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"alice 192.0.2.7");
    assert_eq!(counting.1.load(Ordering::SeqCst), 1, "verified once");
}

/// A guard on a route the layer does not cover is a misconfiguration: 500,
/// never "allowed", never a verification of its own.
#[tokio::test]
async fn a_guard_without_the_layer_is_a_500() {
    let fixture = Fixture::new().await;
    let router = harden(
        Router::new()
            .route(
                "/write",
                get(|_key: RequireScope<Write>| async { "unreachable" }),
            )
            .route(
                "/maybe",
                get(|_key: Option<VerifiedKey>| async { "unreachable" }),
            ),
    );
    let key = fixture.presented(apikey_cases::Key::Alice2).unwrap();
    for path in ["/write", "/maybe"] {
        let capture = EventCapture::new();
        let response = {
            let _guard = capture.set_default();
            router
                .clone()
                .oneshot(get_request(path, key, Some("192.0.2.7:4000")))
                .await
                .unwrap()
        };
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}"
        );
        let events: Vec<_> = capture
            .security_events()
            .iter()
            .map(|event| event.field("event").unwrap().to_owned())
            .collect();
        assert_eq!(events, ["sys_misconfigured"], "{path}");
    }
}

/// Without `ConnectInfo` the client address is unknown: an allow-listed
/// key is refused (fail closed), an unrestricted one still works, and the
/// misconfiguration is logged.
#[tokio::test]
async fn without_a_peer_address_allow_lists_fail_closed() {
    let fixture = Fixture::new().await;
    let router = harden(
        Router::new()
            .route(
                "/items",
                get(|key: VerifiedKey| async move { key.owner.clone() }),
            )
            .route_layer(ApiKeyLayer::new(
                Arc::clone(&fixture.keys),
                KeyMode::Required,
            )),
    );
    let status = |key: apikey_cases::Key| {
        let request = get_request("/items", fixture.presented(key).unwrap(), None);
        let router = router.clone();
        async move {
            let capture = EventCapture::new();
            let _guard = capture.set_default();
            let status = router.oneshot(request).await.unwrap().status();
            assert!(
                !capture
                    .named(palisade_errors::SecurityEvent::SysMisconfigured)
                    .is_empty()
            );
            status
        }
    };
    assert_eq!(
        status(apikey_cases::Key::IpLocked).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(status(apikey_cases::Key::Alice1).await, StatusCode::OK);
}

#[tokio::test]
async fn a_store_outage_fails_closed() {
    let fixture = Fixture::new().await;
    let router = harden(
        Router::new()
            .route(
                "/items",
                get(|key: VerifiedKey| async move { key.owner.clone() }),
            )
            .route_layer(ApiKeyLayer::new(
                apikey_cases::keys_down(),
                KeyMode::Required,
            )),
    );
    let setup = apikey_cases::CASES[0].setup;
    for (index, &(key, _, _)) in apikey_cases::OUTAGE.iter().enumerate() {
        let call = Call {
            key,
            sent: apikey_cases::Sent::Header,
            route: apikey_cases::Route::Items,
            peer: "192.0.2.7:4000",
            forwarded: None,
            status: 0,
            event: None,
        };
        let outcome = send(&router, &fixture, &setup, &call).await;
        apikey_cases::check_outage(index, &outcome);
    }
}
