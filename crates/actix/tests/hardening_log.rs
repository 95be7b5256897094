//! `Hardening`'s captured log through a real actix-web `App` (its own test
//! binary: `tracing` caches callsite interest globally, and a test without a
//! subscriber running beside it could hide events). Mirrors
//! `palisade-axum`'s `tests/hardening_log.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/hardening_cases.rs"]
mod hardening_cases;

use actix_web::test::{TestRequest, init_service, try_call_service};
use actix_web::{App, HttpResponse, web};
use palisade_actix::{ApiError, Hardening};
use palisade_errors::testing::EventCapture;
use palisade_errors::{Error, ErrorKind, SecurityEvent};

async fn unauthorized() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Unauthorized).into())
}

async fn forbidden() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Forbidden).into())
}

async fn limited() -> HttpResponse {
    // A bare status, no `ApiError`: still the handler's refusal.
    HttpResponse::TooManyRequests().finish()
}

async fn failing() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Internal)
        .with_source(std::io::Error::other("db: connection refused to pg-7"))
        .into())
}

async fn boom() -> &'static str {
    panic!("handler exploded");
}

fn request(method: &str, path: &str, id: &str) -> TestRequest {
    TestRequest::default()
        .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .insert_header(("x-request-id", id))
        .insert_header(("authorization", "Bearer s3cr3t-t0ken"))
        .insert_header(("cookie", "session=c00kie-value"))
        .insert_header(("origin", hardening_cases::ALLOWED))
}

#[actix_rt::test]
async fn errors_and_denials_are_logged_once_with_the_request_id_and_no_secret() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let app = init_service(
        Hardening::new()
            .security_headers(hardening_cases::header_policy())
            .cors(hardening_cases::cors_policy())
            .apply(
                App::new()
                    .route("/items", web::get().to(|| async { "items" }))
                    .route("/items", web::post().to(|| async { "created" }))
                    .route("/unauthorized", web::get().to(unauthorized))
                    .route("/forbidden", web::get().to(forbidden))
                    .route("/limited", web::get().to(limited))
                    .route("/failing", web::get().to(failing))
                    .route("/boom", web::get().to(boom)),
            ),
    )
    .await;
    let preflight = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/items")
        .insert_header(("x-request-id", "req-cors"))
        .insert_header(("origin", hardening_cases::FOREIGN))
        .insert_header(("access-control-request-method", "GET"));
    for (request, status) in [
        (request("GET", "/failing", "req-500"), 500),
        (request("GET", "/boom", "req-panic"), 500),
        (request("DELETE", "/items", "req-405"), 405),
        (request("GET", "/unauthorized", "req-401"), 401),
        (request("GET", "/forbidden", "req-403"), 403),
        (request("GET", "/limited", "req-429"), 429),
        (preflight, 403),
    ] {
        let response = match try_call_service(&app, request.to_request()).await {
            Ok(response) => response.into_parts().1,
            Err(error) => error.error_response(),
        };
        assert_eq!(response.status().as_u16(), status);
    }

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
    assert_eq!(crash.len(), 1, "{crash:?}");
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
