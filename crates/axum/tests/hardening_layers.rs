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
