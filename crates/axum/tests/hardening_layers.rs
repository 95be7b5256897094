//! The real `AuthLayer` and `RateLimitLayer` in `Hardening`'s `identity`
//! and `limit` slots, real signed tokens: the shared table
//! `tests/hardening_layer_cases.rs` (each refusal × allowed, foreign and no
//! `Origin`), which `palisade-actix` runs too.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/hardening_cases.rs"]
mod hardening_cases;
#[path = "../../../tests/hardening_layer_cases.rs"]
mod hardening_layer_cases;
#[path = "../../../tests/identity_cases.rs"]
mod identity_cases;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use hardening_layer_cases::{LayerCase, Observed};
use http::Request;
use http_body_util::BodyExt;
use palisade_axum::Hardening;
use palisade_axum::auth::{AuthLayer, MemoryRevocationStore, Principal};
use palisade_axum::ratelimit::{ClientIpResolver, RateLimitLayer, by_extension, by_ip};
use palisade_errors::testing::EventCapture;
use tower::ServiceExt;

fn app(case: &LayerCase) -> Router {
    let routes = Router::new().route(
        "/items",
        get(|principal: Option<Extension<Principal>>| async move {
            identity_cases::answer(principal.as_ref().map(|p| &p.0))
        }),
    );
    Hardening::new()
        .security_headers(hardening_cases::header_policy())
        .cors(hardening_cases::cors_policy())
        .identity(AuthLayer::new(
            Arc::new(identity_cases::authenticator(MemoryRevocationStore::new())),
            case.mode,
        ))
        .limit(RateLimitLayer::new(
            identity_cases::limiter(),
            by_extension(identity_cases::subject_key).or_key(by_ip(ClientIpResolver::peer_only())),
        ))
        .apply(routes)
}

async fn send(app: &Router, case: &LayerCase, origin: Option<&str>) -> Observed {
    let mut request = Request::builder().uri("/items");
    if let Some(value) = identity_cases::authorization(case.caller) {
        request = request.header("authorization", value);
    }
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: SocketAddr = hardening_layer_cases::PEER.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let capture = EventCapture::new();
    let response = {
        let _guard = capture.set_default();
        app.clone().oneshot(request).await.unwrap()
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Observed {
        status,
        headers,
        body: body.to_vec(),
        events: capture
            .security_events()
            .iter()
            .filter(|event| event.level <= tracing::Level::INFO)
            .map(|event| event.field("event").unwrap().to_owned())
            .collect(),
    }
}

#[tokio::test]
async fn the_real_layers_in_the_slots_from_every_origin() {
    for case in hardening_layer_cases::LAYER_CASES {
        for origin in hardening_cases::ORIGINS {
            let app = app(case);
            for _ in 0..case.warm_up {
                let admitted = send(&app, case, origin).await;
                assert_eq!(admitted.status, 200, "{}: warm-up {admitted:?}", case.name);
            }
            let observed = send(&app, case, origin).await;
            hardening_layer_cases::check(case, origin, &observed);
        }
    }
}

/// A layer in the identity slot that panics in `call` itself, before any
/// future exists (a bug in third-party middleware).
#[derive(Clone)]
struct PanicsInCall;

impl<S> tower::Layer<S> for PanicsInCall {
    type Service = PanicsInCallService;

    fn layer(&self, _inner: S) -> PanicsInCallService {
        PanicsInCallService
    }
}

#[derive(Clone)]
struct PanicsInCallService;

impl tower::Service<Request<Body>> for PanicsInCallService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<axum::response::Response, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    #[allow(clippy::panic)] // the bug under test
    fn call(&mut self, _request: Request<Body>) -> Self::Future {
        panic!("middleware bug: secret=hunter2");
    }
}

/// A panic in a layer's synchronous `call` (not in the future it returns)
/// is contained like a handler's: a 500 envelope with the request id, the
/// security headers and CORS for the allowed origin, and no panic text.
#[tokio::test]
async fn a_panic_in_a_layers_call_is_the_500_envelope_with_headers_and_cors() {
    let app = Hardening::new()
        .security_headers(hardening_cases::header_policy())
        .cors(hardening_cases::cors_policy())
        .identity(PanicsInCall)
        .apply(Router::new().route("/items", get(|| async { "unreachable" })));
    let request = Request::builder()
        .uri("/items")
        .header("origin", hardening_cases::ALLOWED)
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 500);
    let headers = response.headers().clone();
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        headers["access-control-allow-origin"],
        hardening_cases::ALLOWED
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"]["code"], "internal");
    assert_eq!(json["error"]["request_id"], id.as_str());
}
