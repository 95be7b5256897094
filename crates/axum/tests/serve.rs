//! `palisade_axum::serve` over real TCP on 127.0.0.1: the connection cases
//! shared with the actix suite, with 500 ms timeouts.
#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: timings go to stderr

#[path = "support/connection_cases.rs"]
mod cases;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::{get, post};
use palisade_axum::harden;
use palisade_axum::serve::{ServeConfig, serve};
use palisade_errors::RequestId;
use tokio::sync::oneshot;

/// The request ids `/seen-id` was called with.
static SEEN_IDS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn app() -> Router {
    harden(
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route(
                "/seen-id",
                post(
                    |Extension(id): Extension<RequestId>, body: Body| async move {
                        SEEN_IDS.lock().unwrap().push(id.as_str().to_owned());
                        let body = axum::body::to_bytes(body, usize::MAX).await;
                        body.map_or(0, |bytes| bytes.len()).to_string()
                    },
                ),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(cases::SLOW).await;
                    "slow"
                }),
            ),
    )
}

fn config() -> ServeConfig {
    ServeConfig::builder()
        .header_read_timeout(cases::TIMEOUT)
        .body_read_timeout(cases::TIMEOUT)
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Starts the server; the sender stops it, the handle ends when it is drained.
async fn start() -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = serve(listener, app())
        .config(config())
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        });
    (address, stop, tokio::spawn(server.into_future()))
}

async fn run<T: Send + 'static>(case: impl FnOnce(SocketAddr) -> T + Send + 'static) -> T {
    let (address, _stop, _server) = start().await;
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || case(address))
        .await
        .unwrap();
    eprintln!("case took {:?}", started.elapsed());
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_at_the_header_timeout() {
    let last = run(cases::slowloris).await;
    eprintln!("last slow connection closed after {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_is_closed_at_the_header_timeout() {
    run(cases::idle_keep_alive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_gets_408_and_close() {
    run(cases::stalled_body).await;
}

/// The 408 of a body that stalls after the handler started carries the
/// id the handler ran (and logged) under: one request, one id, whether
/// `serve` or the router answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_408_after_the_handler_started_carries_the_handlers_request_id() {
    let answer = run(|address| {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        std::io::Write::write_all(
            &mut stream,
            b"POST /seen-id HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .unwrap();
        cases::read_answer(&mut stream)
    })
    .await;
    cases::assert_envelope(&answer, 408, "request_timeout");
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let seen = SEEN_IDS.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(json["error"]["request_id"], seen[0].as_str(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closing_clients_get_their_answer() {
    run(cases::half_close).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_over_the_cap_is_413_without_100() {
    run(cases::expect_over_cap).await;
    run(cases::expect_under_cap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_without_host_is_400() {
    run(cases::missing_host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let (address, stop, server) = start().await;
    tokio::task::spawn_blocking(move || {
        cases::graceful_shutdown(address, move || stop.send(()).unwrap());
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_the_envelope() {
    let (address, _stop, _server) = start().await;
    tokio::task::spawn_blocking(move || {
        let long = format!(
            "GET /{} HTTP/1.1\r\nHost: test\r\n\r\n",
            "a".repeat(9 * 1024)
        );
        cases::assert_envelope(&cases::request(address, &long), 414, "uri_too_long");
        let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
        let raw = format!("GET /health HTTP/1.1\r\nHost: test\r\n{many}\r\n");
        cases::assert_envelope(&cases::request(address, &raw), 431, "headers_too_large");
        let big = format!(
            "GET /health HTTP/1.1\r\nHost: test\r\nx-big: {}\r\n\r\n",
            "b".repeat(20 * 1024)
        );
        cases::assert_envelope(&cases::request(address, &big), 431, "headers_too_large");
        // Caller's valid request id is kept on a refusal.
        let answer = cases::request(
            address,
            "GET /health HTTP/1.1\r\nX-Request-Id: abc-1\r\n\r\n",
        );
        assert!(answer.head.contains("x-request-id: abc-1"), "{answer:?}");
    })
    .await
    .unwrap();
}

#[test]
fn config_defaults_builder_and_serde() {
    let defaults = ServeConfig::default();
    assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
    assert_eq!(defaults.body_read_timeout, Duration::from_secs(30));
    assert_eq!(defaults.max_body_bytes, 1024 * 1024);
    assert_eq!(defaults.max_connections, 10_000);
    assert!(defaults.keep_alive);
    let parsed: ServeConfig =
        serde_json::from_str(r#"{"header_read_timeout_ms": 2500, "max_body_bytes": 10}"#).unwrap();
    assert_eq!(parsed.header_read_timeout, Duration::from_millis(2500));
    assert_eq!(parsed.max_body_bytes, 10);
    assert_eq!(parsed.shutdown_timeout, defaults.shutdown_timeout);
    assert!(serde_json::from_str::<ServeConfig>(r#"{"nope": 1}"#).is_err());
    let error = ServeConfig::builder()
        .header_read_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("header_read_timeout"), "{error}");
}

/// The loop's own refusals never reach the router, so its header and CORS
/// layers never ran on them: a 431, 414, 413 or 408 went out without
/// `nosniff`, CSP or HSTS, and a front end could not read why it was
/// refused. `decorate_refusals` gives them what the router's layers give
/// every other answer; for a 408 (the request was in the router) it gets
/// the request's `Origin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loops_own_refusals_are_decorated_like_the_routers_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = serve(listener, app())
        .config(config())
        .decorate_refusals(|request, response| {
            response.headers_mut().insert(
                "x-content-type-options",
                http::HeaderValue::from_static("nosniff"),
            );
            if let Some(origin) = request.get(http::header::ORIGIN) {
                response
                    .headers_mut()
                    .insert("access-control-allow-origin", origin.clone());
            }
        });
    let _server = tokio::spawn(server.into_future());
    tokio::task::spawn_blocking(move || {
        let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
        let raw = format!(
            "GET /health HTTP/1.1\r\nHost: test\r\nOrigin: https://app.example\r\n{many}\r\n"
        );
        let refused = cases::request(address, &raw);
        cases::assert_envelope(&refused, 431, "headers_too_large");
        assert!(refused.head.contains("x-content-type-options: nosniff"), "{refused:?}");
        assert!(
            refused
                .head
                .contains("access-control-allow-origin: https://app.example"),
            "{refused:?}"
        );
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        std::io::Write::write_all(
            &mut stream,
            b"POST /echo HTTP/1.1\r\nHost: test\r\nOrigin: https://app.example\r\nContent-Length: 100\r\n\r\n0123",
        )
        .unwrap();
        let timed_out = cases::read_answer(&mut stream);
        cases::assert_envelope(&timed_out, 408, "request_timeout");
        assert!(timed_out.head.contains("x-content-type-options: nosniff"), "{timed_out:?}");
        assert!(
            timed_out
                .head
                .contains("access-control-allow-origin: https://app.example"),
            "{timed_out:?}"
        );
        // What the router answers is left to its own layers.
        let fine = cases::request(address, "GET /health HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(fine.status, 200);
    })
    .await
    .unwrap();
}
