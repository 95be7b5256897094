//! Request validation through `palisade_axum::validate` and the real
//! `serve` over TCP: the shared case table (`tests/validate_cases.rs`).
#![allow(clippy::unwrap_used)]

#[path = "support/connection_cases.rs"]
mod connection;
#[path = "../../../tests/validate_cases.rs"]
mod validate_cases;

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, patch, post};
use http_body_util::BodyExt;
use palisade_axum::harden;
use palisade_axum::serve::{ServeConfig, serve};
use palisade_axum::validate::{
    Id, IpNet, RequestLimitsLayer, RequestTimeoutLayer, RequireJsonLayer, TrustedHostLayer,
    ValidJson,
};
use palisade_validate::HexId;
use palisade_validate::content_type::JsonContentType;
use validate_cases::{ID_HANDLER_RUNS, Item, STREAMED, UserPatch};

async fn stream(body: Body) -> String {
    let mut body = body;
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return "broken".into();
        };
        if let Some(data) = frame.data_ref() {
            total += data.len() as u64;
            STREAMED.fetch_max(total, Ordering::SeqCst);
        }
    }
    total.to_string()
}

fn app() -> Router {
    let routes = Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route(
            "/items",
            post(
                |ValidJson(item): ValidJson<Item>| async move { format!("created:{}", item.name) },
            ),
        )
        .route("/stream", post(stream))
        .route("/uploads/file", post(stream))
        .route(
            "/raw",
            post(stream).route_layer(RequireJsonLayer::new(JsonContentType::new())),
        )
        .route(
            "/ids/{id}",
            get(|Id(id): Id<HexId<16>>| async move {
                ID_HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
                id.to_string()
            }),
        )
        .route(
            "/users/{id}",
            patch(
                |Id(_): Id<HexId<16>>, ValidJson(update): ValidJson<UserPatch>| async move {
                    validate_cases::describe(&update)
                },
            ),
        )
        .route("/slow", get(validate_cases::slow_handler))
        .layer(RequestTimeoutLayer::new(validate_cases::TIMEOUT))
        .layer(RequestLimitsLayer::new(validate_cases::limits()))
        .layer(TrustedHostLayer::new(validate_cases::hosts()));
    harden(routes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_cases_through_serve() {
    let limits = validate_cases::limits();
    // The documented set-up: the server's limits from RequestLimits, and
    // its header budget raised well above Palisade's 32 KiB, so hyper's
    // parser (twice the server's limits) lets a 100 KB header through to
    // the RequestLimitsLayer, which answers with the envelope.
    let config = ServeConfig::builder()
        .request_limits(&limits)
        .max_header_bytes(256 * 1024)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app()).config(config).into_future());
    tokio::task::spawn_blocking(move || validate_cases::run_all(address))
        .await
        .unwrap();
}

/// The 504 option: the `unavailable` envelope with status 504.
#[tokio::test]
async fn timeout_can_answer_504() {
    use tower::ServiceExt;
    let app = harden(
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .layer(RequestTimeoutLayer::new(Duration::from_millis(20)).gateway_timeout()),
    );
    let response = app
        .oneshot(http::Request::get("/slow").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["error"]["code"], "unavailable");
    assert_eq!(json["error"]["request_id"], id.as_str());
}

/// Each refusal through the layers is one `input_validation_fail` event
/// (the core's), with its reason and field, and the rejected value is in
/// no log line.
#[tokio::test]
async fn each_refusal_is_one_event_without_the_value() {
    use palisade_errors::SecurityEvent;
    use palisade_errors::testing::EventCapture;
    use tower::ServiceExt;

    const MARK: &str = "leak-marker-7f3a";
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let requests = [
        (
            "header_too_long",
            "GET",
            "/health/live",
            "localhost",
            "x-big",
            MARK.repeat(1000),
            String::new(),
        ),
        (
            "unsupported_media_type",
            "POST",
            "/items",
            "localhost",
            "content-type",
            format!("text/{MARK}"),
            String::new(),
        ),
        (
            "too_deep",
            "POST",
            "/items",
            "localhost",
            "content-type",
            "application/json".into(),
            format!("[\"{MARK}\",{}", "[".repeat(100)),
        ),
        (
            "syntax",
            "POST",
            "/items",
            "localhost",
            "content-type",
            "application/json".into(),
            format!("{{\"name\": \"{MARK}\" x"),
        ),
        (
            "untrusted_host",
            "GET",
            "/ids/0123456789abcdef",
            MARK,
            "x-a",
            "b".into(),
            String::new(),
        ),
        (
            "id_length",
            "GET",
            "/ids/zz",
            "localhost",
            "x-a",
            MARK.into(),
            String::new(),
        ),
        (
            "body_too_large",
            "POST",
            "/stream",
            "localhost",
            "x-a",
            "b".into(),
            MARK.repeat(2000),
        ),
    ];
    for (reason, method, path, host, name, value, body) in requests {
        let before = capture.named(SecurityEvent::InputValidationFail).len();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host)
            .header(name, value)
            .body(Body::from(body))
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert!(
            response.status().is_client_error(),
            "{reason}: {}",
            response.status()
        );
        let events = capture.named(SecurityEvent::InputValidationFail);
        assert_eq!(events.len(), before + 1, "{reason}: one event");
        let event = events.last().unwrap();
        assert_eq!(event.field("reason"), Some(reason), "{event:?}");
        assert!(event.field("field").is_some(), "{event:?}");
    }
    capture.assert_absent(MARK);
}

/// Host spoofing through `X-Forwarded-Host`: ignored from a direct client
/// (or a host outside the proxies' network), read (and checked) only from
/// a peer inside a configured proxy CIDR.
#[tokio::test]
async fn forwarded_host_is_read_only_from_a_trusted_proxy() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    use tower::ServiceExt;

    let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let client: SocketAddr = "203.0.113.7:5000".parse().unwrap();
    let mapped_proxy: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
    let mapped_client: SocketAddr = "[::ffff:203.0.113.7]:5000".parse().unwrap();
    let other_proxy: SocketAddr = "10.0.0.254:5000".parse().unwrap();
    let mapped_other_proxy: SocketAddr = "[::ffff:10.0.0.77]:5000".parse().unwrap();
    let outside: SocketAddr = "10.0.1.1:5000".parse().unwrap();
    let mapped_outside: SocketAddr = "[::ffff:10.0.1.1]:5000".parse().unwrap();
    let proxies: IpNet = "10.0.0.0/24".parse().unwrap();
    let app = harden(
        Router::new()
            .route("/", get(|| async { "ok" }))
            .layer(TrustedHostLayer::new(validate_cases::hosts()).trusted_proxies([proxies])),
    );
    for (peer, host, forwarded, status) in [
        (client, "localhost", "evil.com", 200), // spoofed header ignored
        (client, "evil.com", "localhost", 400), // and cannot vouch for a bad Host
        (proxy, "backend:8080", "localhost", 200),
        (proxy, "localhost", "evil.com", 400),
        (proxy, "localhost", "localhost, evil.com", 400),
        // The proxy seen on a dual-stack socket, as an IPv4-mapped address.
        (mapped_proxy, "backend:8080", "localhost", 200),
        (mapped_proxy, "localhost", "evil.com", 400),
        (mapped_client, "localhost", "evil.com", 200),
        (mapped_client, "evil.com", "localhost", 400),
        // Any proxy inside the configured 10.0.0.0/24 is trusted...
        (other_proxy, "backend:8080", "localhost", 200),
        (other_proxy, "localhost", "evil.com", 400),
        (mapped_other_proxy, "backend:8080", "localhost", 200),
        // ...an address just outside it (a neighbouring tenant) is not.
        (outside, "localhost", "evil.com", 200),
        (outside, "evil.com", "localhost", 400),
        (mapped_outside, "localhost", "evil.com", 200),
    ] {
        let mut request = http::Request::get("/")
            .header("host", host)
            .header("x-forwarded-host", forwarded)
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{peer} {host} {forwarded}");
    }
}

/// Host spoofing from a proxy's neighbour: a proxy named by its address
/// (`trusted_proxy_addresses`) trusts that one host, not its network.
#[tokio::test]
async fn a_proxy_address_trusts_only_that_host() {
    use axum::extract::ConnectInfo;
    use std::net::SocketAddr;
    use tower::ServiceExt;

    let app = harden(
        Router::new().route("/", get(|| async { "ok" })).layer(
            TrustedHostLayer::new(validate_cases::hosts())
                .trusted_proxy_addresses(["::ffff:10.0.0.1".parse().unwrap()]),
        ),
    );
    for (peer, status) in [("10.0.0.1:5000", 400), ("10.0.0.2:5000", 200)] {
        let peer: SocketAddr = peer.parse().unwrap();
        let mut request = http::Request::get("/")
            .header("host", "localhost")
            .header("x-forwarded-host", "evil.com")
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{peer}");
    }
}

/// Content-type confusion over HTTP/2: a body with neither `Content-Length`
/// nor `Transfer-Encoding` (HTTP/2 frames carry it) is still a body, so a
/// `text/plain` or untyped one is refused before the handler reads it.
#[tokio::test]
async fn require_json_sees_a_body_without_length_headers() {
    use tower::ServiceExt;

    let streamed = || {
        Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
            axum::body::Bytes::from_static(br#"{"a":1}"#),
        )]))
    };
    let send = |content_type: Option<&'static str>, body: Body| {
        let mut request = http::Request::post("/raw")
            .version(http::Version::HTTP_2)
            .header("host", "localhost");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        app().oneshot(request.body(body).unwrap())
    };
    for content_type in [Some("text/plain"), None] {
        let response = send(content_type, streamed()).await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
    }
    let response = send(Some("application/json"), streamed()).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"7");
    // No body at all: no content type needed.
    let response = send(None, Body::empty()).await.unwrap();
    assert_eq!(response.status(), 200);
}
