//! The adapter base, tested through a real actix-web `App`: the same cases as
//! `palisade-axum`'s `tests/base.rs`.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use actix_web::body::to_bytes;
use actix_web::http::{StatusCode, header};
use actix_web::test::{TestRequest, init_service, try_call_service};
use actix_web::{App, HttpMessage, HttpRequest, web};
use palisade_actix::{ApiError, Harden};
use palisade_errors::testing::EventCapture;
use palisade_errors::{Error, ErrorKind, RequestId, SecurityEvent};
use serde::Deserialize;
use serde_json::Value;

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

async fn create(_item: web::Json<NewItem>) -> &'static str {
    "created"
}

async fn show(id: web::Path<u64>) -> String {
    format!("item {id}")
}

async fn list(_page: web::Query<Page>) -> &'static str {
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

async fn whoami(request: HttpRequest) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default()
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

macro_rules! app {
    () => {
        init_service(
            App::new()
                .wrap(Harden::new())
                .service(
                    web::resource("/items")
                        .route(web::post().to(create))
                        .route(web::get().to(list)),
                )
                .route("/items/{id}", web::get().to(show))
                .route("/limited", web::get().to(limited))
                .route("/invalid", web::get().to(invalid))
                .route("/boom", web::get().to(boom))
                .route("/whoami", web::get().to(whoami))
                .route("/audited", web::get().to(audited)),
        )
        .await
    };
}

struct Reply {
    status: StatusCode,
    headers: header::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: impl header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .expect("header present")
            .to_str()
            .unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }

    /// Asserts the envelope shape and returns its code.
    fn envelope_code(&self) -> String {
        assert_eq!(self.header(header::CONTENT_TYPE), "application/json");
        assert_eq!(self.header(header::CACHE_CONTROL), "no-store");
        let json = self.json();
        let error = json["error"].as_object().expect("an error object");
        let id = self.header("x-request-id");
        assert_eq!(error["request_id"], id, "envelope repeats the request id");
        let kind = ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.code() == error["code"])
            .expect("a known code");
        assert_eq!(error["message"], kind.message());
        assert_eq!(kind.status().as_u16(), self.status.as_u16());
        kind.code().to_owned()
    }
}

/// Calls the app as actix's dispatcher would: an `Err` from the middleware
/// stack is turned into its own `error_response()`.
async fn call<S>(app: &S, request: TestRequest) -> Reply
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let response = match try_call_service(app, request.to_request()).await {
        Ok(response) => response.into_parts().1,
        Err(error) => error.error_response(),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body()).await.unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn send(request: TestRequest) -> Reply {
    let app = app!();
    call(&app, request).await
}

fn json_post(body: &str) -> TestRequest {
    TestRequest::post()
        .uri("/items")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body.to_owned())
}

#[actix_rt::test]
async fn handler_error_is_the_envelope_with_its_headers() {
    let reply = send(TestRequest::get().uri("/limited")).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.envelope_code(), "rate_limited");
    assert_eq!(reply.header(header::RETRY_AFTER), "30");
}

#[actix_rt::test]
async fn validation_details_name_fields_and_the_source_stays_internal() {
    let reply = send(TestRequest::get().uri("/invalid")).await;
    assert_eq!(reply.envelope_code(), "validation_failed");
    assert_eq!(
        reply.json()["error"]["details"],
        serde_json::json!([{"field": "email", "code": "invalid_format"}])
    );
    assert!(!reply.body.contains("users_email_key"));
}

#[actix_rt::test]
async fn panicking_handler_answers_500_without_the_panic_text_and_keeps_serving() {
    let app = app!();
    let reply = call(&app, TestRequest::get().uri("/boom")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.envelope_code(), "internal");
    assert!(!reply.body.contains("hunter2"));
    assert!(!reply.body.contains("panic"));
    // The same app instance still answers.
    let ok = call(&app, TestRequest::get().uri("/items/7")).await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[actix_rt::test]
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

#[actix_rt::test]
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

#[actix_rt::test]
async fn json_without_json_content_type_is_415() {
    let request = TestRequest::post()
        .uri("/items")
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload(r#"{"name":"a","quantity":1}"#);
    let reply = send(request).await;
    assert_eq!(reply.envelope_code(), "unsupported_media_type");
}

#[actix_rt::test]
async fn malformed_path_id_is_404() {
    let reply = send(TestRequest::get().uri("/items/abc")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.envelope_code(), "not_found");
}

#[actix_rt::test]
async fn bad_query_value_is_422() {
    let reply = send(TestRequest::get().uri("/items?limit=lots")).await;
    assert_eq!(reply.envelope_code(), "validation_failed");
}

#[actix_rt::test]
async fn unknown_route_is_404_envelope() {
    let reply = send(TestRequest::get().uri("/no/such/route")).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.envelope_code(), "not_found");
}

#[actix_rt::test]
async fn wrong_method_is_405_envelope_with_allow() {
    let reply = send(TestRequest::delete().uri("/items")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.envelope_code(), "method_not_allowed");
    let allow = reply.header(header::ALLOW);
    for method in ["GET", "POST"] {
        assert!(allow.contains(method), "Allow: {allow}");
    }
}

#[actix_rt::test]
async fn envelope_snapshot() {
    let request = TestRequest::get()
        .uri("/limited")
        .insert_header(("x-request-id", "snap-1"));
    let reply = send(request).await;
    assert_eq!(
        reply.body,
        r#"{"error":{"code":"rate_limited","message":"Too many requests","request_id":"snap-1"}}"#
    );
}

#[actix_rt::test]
async fn valid_request_id_is_echoed_and_visible_to_handlers() {
    let request = TestRequest::get()
        .uri("/whoami")
        .insert_header(("x-request-id", "abc.DEF_123-x"));
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-request-id"), "abc.DEF_123-x");
    assert_eq!(reply.body, "abc.DEF_123-x");
}

#[actix_rt::test]
async fn missing_request_id_is_generated_as_uuid_v4() {
    let reply = send(TestRequest::get().uri("/whoami")).await;
    let id = reply.header("x-request-id");
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'4', "version nibble");
    assert_eq!(reply.body, id);
}

#[actix_rt::test]
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
        let value = header::HeaderValue::from_bytes(candidate).unwrap();
        let request = TestRequest::get()
            .uri("/whoami")
            .insert_header(("x-request-id", value));
        let reply = send(request).await;
        let id = reply.header("x-request-id");
        assert_ne!(id.as_bytes(), candidate);
        assert!(RequestId::parse(id).is_some());
        assert_eq!(id.len(), 36, "a generated UUID replaced {candidate:?}");
    }
}

/// Over a real socket: a panic in one request neither kills the worker nor
/// leaks its message, and the next request on a new connection is served.
#[actix_rt::test]
async fn real_server_survives_a_panicking_handler() {
    use std::io::{Read, Write};

    let server = actix_web::HttpServer::new(|| {
        App::new()
            .wrap(Harden::new())
            .route("/boom", web::get().to(boom))
            .route("/items/{id}", web::get().to(show))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let address = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);

    let fetch = move |path: &'static str| {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let boom = actix_rt::task::spawn_blocking(move || fetch("/boom"))
        .await
        .unwrap();
    assert!(boom.starts_with("HTTP/1.1 500"), "{boom}");
    assert!(boom.contains(r#""code":"internal""#), "{boom}");
    assert!(
        boom.to_ascii_lowercase().contains("x-request-id: "),
        "{boom}"
    );
    assert!(!boom.contains("hunter2"));
    let ok = actix_rt::task::spawn_blocking(move || fetch("/items/9"))
        .await
        .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with("item 9"), "{ok}");
    handle.stop(true).await;
}

#[actix_rt::test]
async fn events_inside_a_handler_are_in_a_span_carrying_the_request_id() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let app = app!();

    let request = TestRequest::get()
        .uri("/audited")
        .insert_header(("x-request-id", "audit-req-1"));
    let reply = call(&app, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    // A generated id is in the span too.
    let reply = call(&app, TestRequest::get().uri("/audited")).await;
    let generated = reply.header("x-request-id").to_owned();

    let events = capture.named(SecurityEvent::AuthzFail);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].span_field("request_id"), Some("audit-req-1"));
    assert_eq!(events[0].span_field("path"), Some("/audited"));
    assert_eq!(events[0].field("request_id"), None, "the span carries it");
    assert_eq!(events[1].span_field("request_id"), Some(generated.as_str()));
    capture.assert_vocabulary();
}

#[actix_rt::test]
async fn a_panic_is_one_sys_crash_event_with_the_request_id() {
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let request = TestRequest::get()
        .uri("/boom")
        .insert_header(("x-request-id", "boom-req-1"));
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);

    let events = capture.security_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event(), Some(SecurityEvent::SysCrash));
    assert_eq!(events[0].field("reason"), Some("handler_panicked"));
    assert_eq!(events[0].span_field("request_id"), Some("boom-req-1"));
    capture.assert_vocabulary();
}
