//! `Hardening`'s captured log through a real axum router (its own test
//! binary: `tracing` caches callsite interest globally, and a test without a
//! subscriber running beside it could hide events).

#![cfg(feature = "headers")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/hardening_cases.rs"]
mod hardening_cases;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use palisade_axum::{ApiError, Hardening, Json};
use palisade_errors::testing::EventCapture;
use palisade_errors::{Error, ErrorKind, SecurityEvent};
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Deserialize)]
struct NewItem {
    #[allow(dead_code)]
    name: String,
}

async fn unauthorized() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Unauthorized).into())
}

async fn forbidden() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Forbidden).into())
}

async fn limited() -> StatusCode {
    // A bare status, no `ApiError`: still the handler's refusal.
    StatusCode::TOO_MANY_REQUESTS
}

async fn failing() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Internal)
        .with_source(std::io::Error::other("db: connection refused to pg-7"))
        .into())
}

async fn boom() -> &'static str {
    panic!("handler exploded");
}

fn app() -> Router {
    let routes = Router::new()
        .route(
            "/items",
            get(|| async { "items" }).post(|Json(_item): Json<NewItem>| async { "created" }),
        )
        .layer(DefaultBodyLimit::max(hardening_cases::BODY_LIMIT))
        .route("/unauthorized", get(unauthorized))
        .route("/forbidden", get(forbidden))
        .route("/limited", get(limited))
        .route("/failing", get(failing))
        .route("/boom", get(boom));
    Hardening::new()
        .security_headers(hardening_cases::header_policy())
        .cors(hardening_cases::cors_policy())
        .apply(routes)
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

#[tokio::test]
async fn errors_and_denials_are_logged_once_with_the_request_id_and_no_secret() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let app = app();
    let send_with = |method: &str, path: &str, id: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("x-request-id", id)
            .header("authorization", "Bearer s3cr3t-t0ken")
            .header("cookie", "session=c00kie-value")
            .header("origin", hardening_cases::ALLOWED)
            .body(Body::empty())
            .unwrap()
    };
    send(&app, send_with("GET", "/failing", "req-500")).await;
    send(&app, send_with("GET", "/boom", "req-panic")).await;
    send(&app, send_with("DELETE", "/items", "req-405")).await;
    send(&app, send_with("GET", "/unauthorized", "req-401")).await;
    send(&app, send_with("GET", "/forbidden", "req-403")).await;
    send(&app, send_with("GET", "/limited", "req-429")).await;
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/items")
        .header("x-request-id", "req-cors")
        .header("origin", hardening_cases::FOREIGN)
        .header("access-control-request-method", "GET")
        .body(Body::empty())
        .unwrap();
    send(&app, preflight).await;

    let errors: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|event| event.level == tracing::Level::ERROR)
        .collect();
    let failed = errors
        .iter()
        .find(|event| event.span_field("request_id") == Some("req-500"))
        .expect("the 500 at ERROR");
    assert!(
        failed
            .field("source")
            .is_some_and(|source| source.contains("pg-7")),
        "{failed:?}"
    );
    let crash = capture.named(SecurityEvent::SysCrash);
    assert_eq!(crash.len(), 1);
    assert_eq!(crash[0].level, tracing::Level::ERROR);
    assert_eq!(crash[0].span_field("request_id"), Some("req-panic"));

    let refused = capture.named(SecurityEvent::InputValidationFail);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].span_field("request_id"), Some("req-405"));
    assert_eq!(refused[0].field("reason"), Some("method_not_allowed"));
    let cors = capture.named(SecurityEvent::MaliciousCors);
    assert_eq!(cors.len(), 1, "{cors:?}");
    assert_eq!(cors[0].span_field("request_id"), Some("req-cors"));
    assert!(cors[0].level <= tracing::Level::INFO);

    // The handlers' own refusals: one event each, with the request id.
    for (event, id) in [
        (SecurityEvent::AuthnTokenInvalid, "req-401"),
        (SecurityEvent::AuthzFail, "req-403"),
        (SecurityEvent::ExcessRateLimitExceeded, "req-429"),
    ] {
        let logged = capture.named(event);
        assert_eq!(logged.len(), 1, "{event:?}: {logged:?}");
        assert_eq!(logged[0].span_field("request_id"), Some(id));
        assert_eq!(logged[0].field("reason"), Some("handler"));
        assert!(logged[0].level <= tracing::Level::INFO);
    }

    capture.assert_vocabulary();
    capture.assert_absent("s3cr3t-t0ken");
    capture.assert_absent("c00kie-value");
}
