//! Request validation through `palisade_actix::validate` and a real
//! `HttpServer` (configured by `palisade_actix::serve`) over TCP: the
//! shared case table (`tests/validate_cases.rs`).
#![allow(clippy::unwrap_used)]

#[path = "../../axum/tests/support/connection_cases.rs"]
mod connection;
#[path = "../../../tests/validate_cases.rs"]
mod validate_cases;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use actix_web::{App, HttpServer, web};
use futures_util::StreamExt;
use palisade_actix::Harden;
use palisade_actix::serve::{ServeConfig, configure};
use palisade_actix::validate::{
    EnforceLimits, Id, IpNet, RequestTimeout, RequireJson, TrustedHost, ValidJson,
};
use palisade_validate::HexId;
use palisade_validate::content_type::JsonContentType;
use validate_cases::{ID_HANDLER_RUNS, Item, STREAMED, UserPatch};

async fn stream(mut payload: web::Payload) -> String {
    let mut total = 0u64;
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return "broken".into();
        };
        total += chunk.len() as u64;
        STREAMED.fetch_max(total, Ordering::SeqCst);
    }
    total.to_string()
}

fn start() -> (SocketAddr, actix_web::dev::ServerHandle) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = configure(
                HttpServer::new(|| {
                    App::new()
                        .wrap(RequestTimeout::new(validate_cases::TIMEOUT))
                        .wrap(EnforceLimits::new(validate_cases::limits()))
                        .wrap(TrustedHost::new(validate_cases::hosts()))
                        .wrap(Harden::new())
                        .route("/health/live", web::get().to(|| async { "ok" }))
                        .route(
                            "/items",
                            web::post().to(|ValidJson(item): ValidJson<Item>| async move {
                                format!("created:{}", item.name)
                            }),
                        )
                        .route("/stream", web::post().to(stream))
                        .route("/uploads/file", web::post().to(stream))
                        .service(
                            web::resource("/raw")
                                .wrap(RequireJson::new(JsonContentType::new()))
                                .route(web::post().to(stream)),
                        )
                        .route(
                            "/ids/{id}",
                            web::get().to(|Id(id): Id<HexId<16>>| async move {
                                ID_HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
                                id.to_string()
                            }),
                        )
                        .route(
                            "/users/{id}",
                            web::patch().to(
                                |Id(_): Id<HexId<16>>, ValidJson(update): ValidJson<UserPatch>| async move {
                                    validate_cases::describe(&update)
                                },
                            ),
                        )
                        .route("/slow", web::get().to(validate_cases::slow_handler))
                }),
                &ServeConfig::default(),
            )
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
            let address = server.addrs()[0];
            let server = server.run();
            sender.send((address, server.handle())).unwrap();
            server.await.unwrap();
        });
    });
    receiver.recv().unwrap()
}

#[test]
fn shared_cases_through_http_server() {
    let (address, handle) = start();
    validate_cases::run_all(address);
    actix_rt::System::new().block_on(handle.stop(false));
}

/// Each refusal through the middleware is one `input_validation_fail`
/// event (the core's), with its reason and field, and the rejected value
/// is in no log line.
#[actix_rt::test]
async fn each_refusal_is_one_event_without_the_value() {
    use actix_web::test;
    use palisade_errors::SecurityEvent;
    use palisade_errors::testing::EventCapture;

    const MARK: &str = "leak-marker-7f3a";
    let capture = EventCapture::new();
    let _guard = capture.set_default();
    let app = test::init_service(
        App::new()
            .wrap(EnforceLimits::new(validate_cases::limits()))
            .wrap(TrustedHost::new(validate_cases::hosts()))
            .wrap(Harden::new())
            .route("/health/live", web::get().to(|| async { "ok" }))
            .route(
                "/items",
                web::post().to(|ValidJson(item): ValidJson<Item>| async move { item.name }),
            )
            .route("/stream", web::post().to(stream))
            .route(
                "/ids/{id}",
                web::get().to(|Id(id): Id<HexId<16>>| async move { id.to_string() }),
            ),
    )
    .await;
    let requests = [
        (
            "header_too_long",
            "/health/live",
            "localhost",
            "x-big",
            MARK.repeat(1000),
            String::new(),
        ),
        (
            "unsupported_media_type",
            "/items",
            "localhost",
            "content-type",
            format!("text/{MARK}"),
            String::new(),
        ),
        (
            "too_deep",
            "/items",
            "localhost",
            "content-type",
            "application/json".into(),
            format!("[\"{MARK}\",{}", "[".repeat(100)),
        ),
        (
            "syntax",
            "/items",
            "localhost",
            "content-type",
            "application/json".into(),
            format!("{{\"name\": \"{MARK}\" x"),
        ),
        (
            "untrusted_host",
            "/ids/0123456789abcdef",
            MARK,
            "x-a",
            "b".into(),
            String::new(),
        ),
        (
            "id_length",
            "/ids/zz",
            "localhost",
            "x-a",
            MARK.into(),
            String::new(),
        ),
        (
            "body_too_large",
            "/stream",
            "localhost",
            "x-a",
            "b".into(),
            MARK.repeat(2000),
        ),
    ];
    for (reason, path, host, name, value, body) in requests {
        let before = capture.named(SecurityEvent::InputValidationFail).len();
        let method = if body.is_empty() && name != "content-type" {
            "GET"
        } else {
            "POST"
        };
        let request = test::TestRequest::default()
            .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .insert_header(("host", host))
            .insert_header((name, value))
            .set_payload(body)
            .to_request();
        let status = match test::try_call_service(&app, request).await {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        assert!(status.is_client_error(), "{reason}: {status}");
        let events = capture.named(SecurityEvent::InputValidationFail);
        assert_eq!(events.len(), before + 1, "{reason}: one event: {events:?}");
        let event = events.last().unwrap();
        assert_eq!(event.field("reason"), Some(reason), "{event:?}");
        assert!(event.field("field").is_some(), "{event:?}");
    }
    capture.assert_absent(MARK);
}

/// Host spoofing through `X-Forwarded-Host`: ignored from a direct client
/// (or a host outside the proxies' network), read (and checked) only from
/// a peer inside a configured proxy CIDR.
#[actix_rt::test]
async fn forwarded_host_is_read_only_from_a_trusted_proxy() {
    use actix_web::test;
    use std::net::SocketAddr;

    let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let client: SocketAddr = "203.0.113.7:5000".parse().unwrap();
    let mapped_proxy: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
    let mapped_client: SocketAddr = "[::ffff:203.0.113.7]:5000".parse().unwrap();
    let other_proxy: SocketAddr = "10.0.0.254:5000".parse().unwrap();
    let mapped_other_proxy: SocketAddr = "[::ffff:10.0.0.77]:5000".parse().unwrap();
    let outside: SocketAddr = "10.0.1.1:5000".parse().unwrap();
    let mapped_outside: SocketAddr = "[::ffff:10.0.1.1]:5000".parse().unwrap();
    let proxies: IpNet = "10.0.0.0/24".parse().unwrap();
    let app = test::init_service(
        App::new()
            .wrap(TrustedHost::new(validate_cases::hosts()).trusted_proxies([proxies]))
            .wrap(Harden::new())
            .route("/", web::get().to(|| async { "ok" })),
    )
    .await;
    for (peer, host, forwarded, status) in [
        (client, "localhost", "evil.com", 200),
        (client, "evil.com", "localhost", 400),
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
        let request = test::TestRequest::get()
            .uri("/")
            .peer_addr(peer)
            .insert_header(("host", host))
            .insert_header(("x-forwarded-host", forwarded))
            .to_request();
        let got = match test::try_call_service(&app, request).await {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        assert_eq!(got.as_u16(), status, "{peer} {host} {forwarded}");
    }
}
