//! The `headers` feature through a real axum router: the shared CORS table,
//! security headers on every kind of response, per-route overrides and nonces.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../headers/tests/cors_cases.rs"]
mod cors_cases;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::{any, get};
use http_body_util::BodyExt;
use palisade_axum::harden;
use palisade_axum::headers::{CorsLayer, Nonce, SecurityHeadersLayer};
use palisade_headers::csp::Csp;
use palisade_headers::{HeaderPolicy, Source};
use tower::ServiceExt;

const HANDLED: &str = "x-handled";

async fn handled() -> ([(&'static str, &'static str); 1], &'static str) {
    ([(HANDLED, "1")], "ok")
}

fn cors_app() -> Router {
    harden(
        Router::new()
            .route("/items", any(handled))
            .layer(CorsLayer::new(cors_cases::policy())),
    )
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, serde_json::Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

#[tokio::test]
async fn cors_table_through_axum() {
    let app = cors_app();
    for case in cors_cases::CASES {
        let mut request = Request::builder()
            .method(case.method)
            .uri("/items")
            .body(Body::empty())
            .unwrap();
        *request.headers_mut() = cors_cases::request_headers(case);
        let (status, mut headers, body) = send(&app, request).await;
        let forwarded = headers.remove(HANDLED).is_some();
        if status == StatusCode::FORBIDDEN {
            assert_eq!(body["error"]["code"], "cors_rejected", "{}", case.name);
            assert!(body["error"]["request_id"].is_string(), "{}", case.name);
        }
        cors_cases::check(
            case,
            cors_cases::Outcome {
                status: status.as_u16(),
                headers,
                forwarded,
            },
        );
    }
}

#[tokio::test]
async fn cors_headers_reach_framework_errors_too() {
    // A browser can only read a 404/405 envelope if it carries ACAO; and a
    // cache must still key it by Origin.
    let app = cors_app();
    let request = Request::builder()
        .uri("/missing")
        .header("origin", "https://app.example.com")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        headers
            .get_all("vary")
            .iter()
            .any(|v| v == "Origin" || v.to_str().unwrap().contains("Origin"))
    );
}

async fn boom() -> &'static str {
    panic!("boom")
}

fn headers_app() -> Router {
    let docs_csp = Csp::builder()
        .default_src([Source::SELF])
        .object_src([Source::NONE])
        .base_uri([Source::NONE])
        .frame_ancestors([Source::NONE])
        .nonces(true)
        .build()
        .unwrap();
    let docs_policy = HeaderPolicy::html()
        .csp(docs_csp)
        // Left out on purpose: the app-wide api() layer must not add it back.
        .frame_options(None)
        .build()
        .unwrap();
    let api = HeaderPolicy::api().build().unwrap();
    let router = Router::new()
        .route(
            "/items",
            get(|| async { ([("server", "hyper/1.0"), ("x-powered-by", "axum")], "[]") }),
        )
        .route("/panic", get(boom))
        .merge(
            Router::new()
                .route(
                    "/docs",
                    get(|Nonce(nonce): Nonce| async move {
                        let nonce = nonce.map(|nonce| nonce.to_string()).unwrap_or_default();
                        (
                            [("x-test-nonce", nonce.clone())],
                            format!("<script nonce=\"{nonce}\"></script>"),
                        )
                    }),
                )
                .route_layer(SecurityHeadersLayer::new(docs_policy)),
        );
    // Outermost, so panics, 404s and 405s get the headers too.
    harden(router).layer(SecurityHeadersLayer::new(api))
}

#[tokio::test]
async fn every_response_kind_gets_the_api_headers() {
    let app = headers_app();
    for (method, path, status) in [
        ("GET", "/items", StatusCode::OK),
        ("GET", "/missing", StatusCode::NOT_FOUND),
        ("DELETE", "/items", StatusCode::METHOD_NOT_ALLOWED),
        ("GET", "/panic", StatusCode::INTERNAL_SERVER_ERROR),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let (got, headers, _) = send(&app, request).await;
        assert_eq!(got, status, "{method} {path}");
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{method} {path}"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.contains_key("strict-transport-security"));
        assert_eq!(headers["cache-control"], "no-store");
        assert!(!headers.contains_key("server"), "{method} {path}");
        assert!(!headers.contains_key("x-powered-by"), "{method} {path}");
        assert!(headers.contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn per_route_policy_wins_and_nonce_reaches_header_and_handler() {
    let app = headers_app();
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let request = Request::builder().uri("/docs").body(Body::empty()).unwrap();
        let (status, headers, _) = send(&app, request).await;
        assert_eq!(status, StatusCode::OK);
        let nonce = headers["x-test-nonce"].to_str().unwrap().to_owned();
        assert_eq!(nonce.len(), 24, "a 16-byte base64 nonce");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'self'"),
            "the docs policy, not api(): {csp}"
        );
        assert!(
            csp.contains(&format!("script-src 'self' 'nonce-{nonce}'")),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("style-src 'self' 'nonce-{nonce}'")),
            "{csp}"
        );
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(
            headers["referrer-policy"],
            "strict-origin-when-cross-origin"
        );
        // The per-route policy was applied and the outer one skipped.
        assert!(!headers.contains_key("x-frame-options"));
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per request");
}
