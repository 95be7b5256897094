//! Rate limits through a real axum router: the behaviours the actix adapter
//! is tested for too (`palisade-actix` `tests/ratelimit.rs`). Limits keyed
//! by an authenticated identity run behind the real authentication layer in
//! `tests/identity.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use palisade_axum::harden;
use palisade_axum::ratelimit::{RateLimitLayer, by_ip, by_route_and_ip};
use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};
use tower::ServiceExt;

fn limiter(name: &str, quota: &str) -> Arc<RateLimiter<MemoryStore>> {
    Arc::new(RateLimiter::new(
        name,
        Policy::parse([quota]).unwrap(),
        MemoryStore::new().with_max_entries(1000),
    ))
}

struct App {
    router: Router,
    handled: Arc<AtomicU32>,
}

fn app(resolver: ClientIpResolver) -> App {
    let handled = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&handled);
    let router = Router::new()
        .route(
            "/items",
            get(move || async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "[]"
            }),
        )
        .route_layer(RateLimitLayer::new(
            limiter("anon", "2/minute"),
            by_ip(resolver),
        ))
        // Added after the route layers: not limited.
        .route("/health", get(|| async { "ok" }));
    App {
        router: harden(router),
        handled,
    }
}

async fn get_from(
    app: &App,
    path: &str,
    peer: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, serde_json::Value) {
    let mut request = Request::builder().uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn refusal_is_the_429_envelope_and_never_reaches_the_handler() {
    let app = app(ClientIpResolver::peer_only());
    for remaining in ["1", "0"] {
        let (status, headers, _) = get_from(&app, "/items", "203.0.113.7:5000", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers["ratelimit"],
            format!(
                "\"anon-60s\";r={remaining};t={}",
                if remaining == "1" { 30 } else { 60 }
            )
        );
        assert!(headers.contains_key("ratelimit-policy"));
    }
    let (status, headers, body) = get_from(&app, "/items", "203.0.113.7:5001", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        body["error"]["request_id"],
        headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(headers["ratelimit"], "\"anon-60s\";r=0;t=60");
    assert_eq!(
        app.handled.load(Ordering::SeqCst),
        2,
        "the refused request did no work"
    );
    // Another client is not affected; unlimited routes are not limited.
    assert_eq!(
        get_from(&app, "/items", "203.0.113.8:5000", &[]).await.0,
        StatusCode::OK
    );
    for _ in 0..5 {
        assert_eq!(
            get_from(&app, "/health", "203.0.113.7:5000", &[]).await.0,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // X-Forwarded-For spoofing: a client rotating fake addresses in the
    // header would get a fresh budget per request.
    let app = app(ClientIpResolver::peer_only());
    for i in 0..2 {
        let spoof = format!("198.51.100.{i}");
        assert_eq!(
            get_from(
                &app,
                "/items",
                "203.0.113.7:5000",
                &[("x-forwarded-for", &spoof)]
            )
            .await
            .0,
            StatusCode::OK
        );
    }
    let (status, ..) = get_from(
        &app,
        "/items",
        "203.0.113.7:5000",
        &[("x-forwarded-for", "198.51.100.99")],
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
    let resolver = ClientIpResolver::behind_proxies(
        [IpNet::parse("10.0.0.0/8").unwrap()],
        ForwardedHeader::XForwardedFor,
    );
    let app = app(resolver);
    // Two clients behind the same proxy get separate budgets; the leftmost
    // value (client-controlled) does not matter.
    for spoof in ["1.1.1.1", "2.2.2.2"] {
        let xff = format!("{spoof}, 198.51.100.20");
        assert_eq!(
            get_from(&app, "/items", "10.0.0.1:443", &[("x-forwarded-for", &xff)])
                .await
                .0,
            StatusCode::OK
        );
    }
    let (status, ..) = get_from(
        &app,
        "/items",
        "10.0.0.1:443",
        &[("x-forwarded-for", "3.3.3.3, 198.51.100.20")],
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, ..) = get_from(
        &app,
        "/items",
        "10.0.0.1:443",
        &[("x-forwarded-for", "198.51.100.21")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn path_parameters_do_not_mint_fresh_route_budgets() {
    // Limit bypass: keyed by the raw path, /items/1, /items/2, ... would
    // each get a fresh budget.
    let router = harden(
        Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .route_layer(RateLimitLayer::new(
                limiter("route", "2/minute"),
                by_route_and_ip(ClientIpResolver::peer_only()),
            )),
    );
    let app = App {
        router,
        handled: Arc::new(AtomicU32::new(0)),
    };
    for id in 1..=2 {
        let (status, ..) = get_from(&app, &format!("/items/{id}"), "203.0.113.7:1", &[]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, ..) = get_from(&app, "/items/3", "203.0.113.7:1", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, ..) = get_from(&app, "/items/3", "203.0.113.8:1", &[]).await;
    assert_eq!(status, StatusCode::OK, "another client has its own budget");
}

/// A fixed cost above the smallest limit could never be admitted: a client
/// would be told to retry for ever. The builder refuses it at start-up.
#[tokio::test]
async fn a_cost_above_the_smallest_limit_is_refused_when_the_layer_is_built() {
    let fits = RateLimitLayer::new(
        limiter("cost", "10/second"),
        by_ip(ClientIpResolver::peer_only()),
    )
    .cost(10);
    assert!(fits.is_ok());
    let error = RateLimitLayer::new(
        limiter("cost", "10/second"),
        by_ip(ClientIpResolver::peer_only()),
    )
    .cost(11)
    .err()
    .expect("a cost of 11 never fits 10/second");
    assert_eq!(
        error.kind(),
        palisade_ratelimit::ConfigErrorKind::InvalidCost
    );
}
