//! Rate limits through a real actix-web `App`: the behaviours the axum
//! adapter is tested for too (`palisade-axum` `tests/ratelimit.rs`). Limits
//! keyed by an authenticated identity run behind the real authentication
//! middleware in `tests/identity.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::body::to_bytes;
use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::test::{TestRequest, init_service};
use actix_web::{App, web};
use palisade_actix::Harden;
use palisade_actix::ratelimit::{RateLimit, by_ip, by_route_and_ip};
use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};
use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};

fn limiter(name: &str, quota: &str) -> Arc<RateLimiter<MemoryStore>> {
    Arc::new(RateLimiter::new(
        name,
        Policy::parse([quota]).unwrap(),
        MemoryStore::new().with_max_entries(1000),
    ))
}

macro_rules! app {
    ($resolver:expr, $handled:expr) => {{
        let handled = Arc::clone(&$handled);
        init_service(
            App::new()
                .service(
                    web::resource("/items")
                        .wrap(RateLimit::new(
                            limiter("anon", "2/minute"),
                            by_ip($resolver),
                        ))
                        .route(web::get().to(move || {
                            let handled = Arc::clone(&handled);
                            async move {
                                handled.fetch_add(1, Ordering::SeqCst);
                                "[]"
                            }
                        })),
                )
                .route("/health", web::get().to(|| async { "ok" }))
                .wrap(Harden::new()),
        )
        .await
    }};
}

async fn get_from<S>(
    app: &S,
    path: &str,
    peer: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, serde_json::Value)
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let mut request = TestRequest::get()
        .uri(path)
        .peer_addr(peer.parse().unwrap());
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let response = match app.call(request.to_request()).await {
        Ok(response) => response.into_parts().1,
        Err(error) => error.error_response(),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body()).await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[actix_web::test]
async fn refusal_is_the_429_envelope_and_never_reaches_the_handler() {
    let handled = Arc::new(AtomicU32::new(0));
    let app = app!(ClientIpResolver::peer_only(), handled);
    for remaining in ["1", "0"] {
        let (status, headers, _) = get_from(&app, "/items", "203.0.113.7:5000", &[]).await;
        assert_eq!(status, StatusCode::OK);
        let reset = if remaining == "1" { 30 } else { 60 };
        assert_eq!(
            headers.get("ratelimit").unwrap(),
            &format!("\"anon-60s\";r={remaining};t={reset}")
        );
        assert!(headers.contains_key("ratelimit-policy"));
    }
    let (status, headers, body) = get_from(&app, "/items", "203.0.113.7:5001", &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        body["error"]["request_id"],
        headers.get("x-request-id").unwrap().to_str().unwrap()
    );
    assert_eq!(headers.get("retry-after").unwrap(), "30");
    assert_eq!(headers.get("ratelimit").unwrap(), "\"anon-60s\";r=0;t=60");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "the refused request did no work"
    );
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

#[actix_web::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let handled = Arc::new(AtomicU32::new(0));
    let app = app!(ClientIpResolver::peer_only(), handled);
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

#[actix_web::test]
async fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
    let handled = Arc::new(AtomicU32::new(0));
    let resolver = ClientIpResolver::behind_proxies(
        [IpNet::parse("10.0.0.0/8").unwrap()],
        ForwardedHeader::XForwardedFor,
    );
    let app = app!(resolver.clone(), handled);
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

#[actix_web::test]
async fn path_parameters_do_not_mint_fresh_route_budgets() {
    let app = init_service(
        App::new()
            .service(
                web::resource("/items/{id}")
                    .wrap(RateLimit::new(
                        limiter("route", "2/minute"),
                        by_route_and_ip(ClientIpResolver::peer_only()),
                    ))
                    .route(web::get().to(|| async { "item" })),
            )
            .wrap(Harden::new()),
    )
    .await;
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
#[actix_web::test]
async fn a_cost_above_the_smallest_limit_is_refused_when_the_layer_is_built() {
    let fits = RateLimit::new(
        limiter("cost", "10/second"),
        by_ip(ClientIpResolver::peer_only()),
    )
    .cost(10);
    assert!(fits.is_ok());
    let error = RateLimit::new(
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
