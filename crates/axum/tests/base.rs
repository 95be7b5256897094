//! The adapter base, tested through a real axum `Router`: the same cases as
//! `palisade-actix`'s `tests/base.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::body::Body;
use axum::routing::{get, post};
use axum::{Extension, Router};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use palisade_axum::{ApiError, Json, Path, Query, harden};
use palisade_errors::testing::EventCapture;
use palisade_errors::{Error, ErrorKind, RequestId, SecurityEvent};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

#[derive(Deserialize)]
struct NewItem {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    quantity: u32,
}

#[derive(Deserialize)]
struct Page {
    #[allow(dead_code)]
    limit: u32,
}

async fn create(Json(_item): Json<NewItem>) -> &'static str {
    "created"
}

async fn show(Path(id): Path<u64>) -> String {
    format!("item {id}")
}

async fn list(Query(_page): Query<Page>) -> &'static str {
    "listed"
}

async fn limited() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::RateLimited)
        .with_retry_after(30)
        .into())
}

async fn invalid() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::ValidationFailed)
        .with_detail("email", "invalid_format")
        .with_source(std::io::Error::other("db: constraint users_email_key"))
        .into())
}

async fn boom() -> &'static str {
    panic!("database password is hunter2");
}

async fn whoami(Extension(id): Extension<RequestId>) -> String {
    id.to_string()
}

/// Logs a security event the way a core called from a handler does: with
/// no request id of its own.
async fn audited() -> &'static str {
    tracing::info!(
        event = SecurityEvent::AuthzFail.as_str(),
        reason = "missing_role",
        "refused inside the handler"
    );
    "audited"
}

fn app() -> Router {
    harden(
        Router::new()
            .route("/items", post(create).get(list))
            .route("/items/{id}", get(show))
            .route("/limited", get(limited))
            .route("/invalid", get(invalid))
            .route("/boom", get(boom))
            .route("/whoami", get(whoami))
            .route("/audited", get(audited)),
    )
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }

    /// Asserts the envelope shape and returns its code.
    fn envelope_code(&self) -> String {
        assert_eq!(self.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(self.headers[header::CACHE_CONTROL], "no-store");
        let json = self.json();
        let error = json["error"].as_object().expect("an error object");
        let id = self.headers["x-request-id"].to_str().unwrap();
        assert_eq!(error["request_id"], id, "envelope repeats the request id");
        let kind = ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.code() == error["code"])
            .expect("a known code");
        assert_eq!(error["message"], kind.message());
        assert_eq!(kind.status(), self.status);
        kind.code().to_owned()
    }
}

async fn send(request: Request<Body>) -> Reply {
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

fn json_post(body: &str) -> Request<Body> {
    Request::post("/items")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn handler_error_is_the_envelope_with_its_headers() {
    let reply = send(get_request("/limited")).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.envelope_code(), "rate_limited");
    assert_eq!(reply.headers[header::RETRY_AFTER], "30");
}

#[tokio::test]
async fn validation_details_name_fields_and_the_source_stays_internal() {
    let reply = send(get_request("/invalid")).await;
    assert_eq!(reply.envelope_code(), "validation_failed");
    assert_eq!(
        reply.json()["error"]["details"],
        serde_json::json!([{"field": "email", "code": "invalid_format"}])
    );
    assert!(!reply.body.contains("users_email_key"));
}

#[tokio::test]
async fn panicking_handler_answers_500_without_the_panic_text_and_keeps_serving() {
    let service = app();
    let response = service.clone().oneshot(get_request("/boom")).await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let reply = Reply {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        headers,
        body,
    };
    assert_eq!(reply.envelope_code(), "internal");
    assert!(!reply.body.contains("hunter2"));
    assert!(!reply.body.contains("panic"));
    // The same service instance still answers.
    let ok = service.oneshot(get_request("/items/7")).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_is_400() {
    let reply = send(json_post(r#"{"name": "a", "quantity": "#)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.envelope_code(), "bad_request");
    assert!(
        !reply.body.contains("EOF"),
        "no parser detail: {}",
        reply.body
    );
}

#[tokio::test]
async fn json_type_mismatch_is_422() {
    let reply = send(json_post(r#"{"name": "a", "quantity": "three"}"#)).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.envelope_code(), "validation_failed");
    assert!(
        !reply.body.contains("quantity"),
        "no serde detail: {}",
        reply.body
    );
}

#[tokio::test]
async fn json_without_json_content_type_is_415() {
    let request = Request::post("/items")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"name":"a","quantity":1}"#))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.envelope_code(), "unsupported_media_type");
}

#[tokio::test]
async fn malformed_path_id_is_404() {
    let reply = send(get_request("/items/abc")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.envelope_code(), "not_found");
}

#[tokio::test]
async fn bad_query_value_is_422() {
    let reply = send(get_request("/items?limit=lots")).await;
    assert_eq!(reply.envelope_code(), "validation_failed");
}

#[tokio::test]
async fn unknown_route_is_404_envelope() {
    let reply = send(get_request("/no/such/route")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.envelope_code(), "not_found");
}

#[tokio::test]
async fn wrong_method_is_405_envelope_with_allow() {
    let request = Request::delete("/items").body(Body::empty()).unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.envelope_code(), "method_not_allowed");
    let allow = reply.headers[header::ALLOW].to_str().unwrap();
    for method in ["GET", "POST"] {
        assert!(allow.contains(method), "Allow: {allow}");
    }
}

#[tokio::test]
async fn envelope_snapshot() {
    let request = Request::get("/limited")
        .header("x-request-id", "snap-1")
        .body(Body::empty())
        .unwrap();
    let reply = send(request).await;
    assert_eq!(
        reply.body,
        r#"{"error":{"code":"rate_limited","message":"Too many requests","request_id":"snap-1"}}"#
    );
}

#[tokio::test]
async fn valid_request_id_is_echoed_and_visible_to_handlers() {
    let request = Request::get("/whoami")
        .header("x-request-id", "abc.DEF_123-x")
        .body(Body::empty())
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["x-request-id"], "abc.DEF_123-x");
    assert_eq!(reply.body, "abc.DEF_123-x");
}

#[tokio::test]
async fn missing_request_id_is_generated_as_uuid_v4() {
    let reply = send(get_request("/whoami")).await;
    let id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'4', "version nibble");
    assert_eq!(reply.body, id);
}

#[tokio::test]
async fn log_and_header_injection_request_ids_are_replaced() {
    let long = "a".repeat(1024);
    let candidates: [&[u8]; 5] = [
        long.as_bytes(),
        "ïd-ünïcode".as_bytes(),
        b"id with spaces",
        b"id\tTab",
        b"id%0d%0aSet-Cookie:x",
    ];
    for candidate in candidates {
        let request = Request::get("/whoami")
            .header(
                "x-request-id",
                http::HeaderValue::from_bytes(candidate).unwrap(),
            )
            .body(Body::empty())
            .unwrap();
        let reply = send(request).await;
        let id = reply.headers["x-request-id"].to_str().unwrap();
        assert_ne!(id.as_bytes(), candidate);
        assert!(RequestId::parse(id).is_some());
        assert_eq!(id.len(), 36, "a generated UUID replaced {candidate:?}");
    }
}

#[tokio::test]
async fn events_inside_a_handler_are_in_a_span_carrying_the_request_id() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();

    let request = Request::get("/audited")
        .header("x-request-id", "audit-req-1")
        .body(Body::empty())
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    // A generated id is in the span too.
    let reply = send(get_request("/audited")).await;
    let generated = reply.headers["x-request-id"].to_str().unwrap().to_owned();

    let events = capture.named(SecurityEvent::AuthzFail);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].span_field("request_id"), Some("audit-req-1"));
    assert_eq!(events[0].span_field("path"), Some("/audited"));
    assert_eq!(events[0].field("request_id"), None, "the span carries it");
    assert_eq!(events[1].span_field("request_id"), Some(generated.as_str()));
    capture.assert_vocabulary();
}

#[tokio::test]
async fn a_panic_is_one_sys_crash_event_with_the_request_id() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let request = Request::get("/boom")
        .header("x-request-id", "boom-req-1")
        .body(Body::empty())
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);

    let events = capture.security_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event(), Some(SecurityEvent::SysCrash));
    assert_eq!(events[0].field("reason"), Some("handler_panicked"));
    assert_eq!(events[0].span_field("request_id"), Some("boom-req-1"));
    capture.assert_vocabulary();
}

/// Logs when dropped: stands for whatever a handler's cleanup logs.
struct LogsWhenDropped;

impl Drop for LogsWhenDropped {
    fn drop(&mut self) {
        tracing::warn!(
            event = SecurityEvent::AuthzFail.as_str(),
            reason = "dropped_unfinished",
            "handler dropped before it answered"
        );
    }
}

/// A client that goes away mid-request drops the handler's future: what the
/// handler's cleanup logs then must still carry the request id (an
/// investigator follows a request by it), as with tracing's `Instrumented`.
#[tokio::test]
async fn a_handler_dropped_unfinished_logs_inside_the_request_span() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let app = harden(Router::new().route(
        "/hangs",
        get(|| async {
            let _cleanup = LogsWhenDropped;
            std::future::pending::<()>().await;
            "never"
        }),
    ));
    let request = Request::get("/hangs")
        .header("x-request-id", "gone-req-1")
        .body(Body::empty())
        .unwrap();
    let answer = tokio::time::timeout(std::time::Duration::from_millis(50), app.oneshot(request));
    assert!(answer.await.is_err(), "the handler never answers");

    let events = capture.named(SecurityEvent::AuthzFail);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].field("reason"), Some("dropped_unfinished"));
    assert_eq!(events[0].span_field("request_id"), Some("gone-req-1"));
}
