//! API-key authentication as middleware, scope guards and per-key rate
//! limits through a real actix-web `App`, real issued keys, the real
//! `ApiKeyAuth` and the real `RateLimit` middleware (no stand-in): the
//! shared table `tests/apikey_cases.rs` (which `palisade-axum` runs too),
//! one verification per request, and a guard without the middleware.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/apikey_cases.rs"]
mod apikey_cases;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::body::to_bytes;
use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use actix_web::test::{TestRequest, init_service};
use actix_web::{App, web};
use apikey_cases::{Call, Fixture, Key, Missing, Outcome, Setup, Write};
// Everything from the adapter: one dependency suffices.
use palisade_actix::Harden;
use palisade_actix::apikeys::{
    ApiKeyAuth, KeyInfo, KeyMode, OptionalKey, RequireScope, VerifiedKey, VerifyFuture, VerifyKey,
};
use palisade_actix::ratelimit::{ClientIpResolver, KeyFn, RateLimit, by_extension, by_ip};
use palisade_errors::testing::EventCapture;

async fn items(key: Option<web::ReqData<KeyInfo>>) -> String {
    apikey_cases::answer(key.as_deref())
}

async fn write(key: RequireScope<Write>) -> String {
    apikey_cases::answer(Some(&key))
}

fn key(setup: Setup) -> KeyFn {
    match setup.missing {
        Missing::Refuse => by_extension(apikey_cases::key_key).or_refuse(),
        Missing::FallbackToIp => {
            by_extension(apikey_cases::key_key).or_key(by_ip(ClientIpResolver::peer_only()))
        }
    }
}

fn auth(fixture: &Fixture, setup: Setup) -> ApiKeyAuth {
    ApiKeyAuth::new(Arc::clone(&fixture.keys), setup.mode)
        .header(HeaderName::from_static(setup.header))
        .client_ip(apikey_cases::resolver(setup.proxies))
}

async fn send<S>(app: &S, fixture: &Fixture, setup: &Setup, call: &Call) -> Outcome
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let mut request = TestRequest::get()
        .uri(call.route.path())
        .peer_addr(call.peer.parse().unwrap());
    for (name, value) in fixture.headers(setup, call) {
        request = request.append_header((name, value));
    }
    let capture = EventCapture::new();
    let response = {
        let _guard = capture.set_default();
        match app.call(request.to_request()).await {
            Ok(response) => response.into_parts().1,
            Err(error) => error.error_response(),
        }
    };
    fixture.assert_no_secret_logged(&capture);
    capture.assert_vocabulary();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let (www_authenticate, retry_after, ratelimit, request_id) = (
        header("www-authenticate"),
        header("retry-after"),
        header("ratelimit"),
        header("x-request-id"),
    );
    let status = response.status().as_u16();
    let body = to_bytes(response.into_body()).await.unwrap();
    Outcome {
        status,
        www_authenticate,
        retry_after,
        ratelimit,
        request_id,
        body: String::from_utf8(body.to_vec()).unwrap(),
        events: capture
            .security_events()
            .iter()
            .map(|event| event.field("event").unwrap().to_owned())
            .collect(),
    }
}

#[actix_web::test]
async fn the_shared_apikey_cases() {
    for case in apikey_cases::CASES {
        let fixture = Fixture::new().await;
        let setup = case.setup;
        let limit = RateLimit::new(apikey_cases::limiter(), key(setup));
        let scope = web::scope("")
            .wrap(limit)
            .wrap(auth(&fixture, setup))
            .route("/items", web::get().to(items))
            .route("/write", web::get().to(write));
        let app = init_service(App::new().service(scope).wrap(Harden::new())).await;
        for (index, call) in case.calls.iter().enumerate() {
            let outcome = send(&app, &fixture, &case.setup, call).await;
            apikey_cases::check(&fixture, case, index, &outcome);
        }
    }
}

/// Counts verifications.
struct Counting(Arc<apikey_cases::Keys>, AtomicU32);

impl VerifyKey for Counting {
    fn verify_key<'a>(&'a self, presented: &'a str, client_ip: IpAddr) -> VerifyFuture<'a> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.verify_key(presented, client_ip)
    }
}

fn get_request(path: &str, key: &str, peer: Option<&str>) -> actix_http::Request {
    let mut request = TestRequest::get()
        .uri(path)
        .insert_header(("x-api-key", key));
    if let Some(peer) = peer {
        request = request.peer_addr(peer.parse().unwrap());
    }
    request.to_request()
}

async fn status<S>(app: &S, request: actix_http::Request) -> (StatusCode, String)
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let response = match app.call(request).await {
        Ok(response) => response.into_parts().1,
        Err(error) => error.error_response(),
    };
    let status = response.status();
    let body = to_bytes(response.into_body()).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[actix_web::test]
async fn the_extractors_read_what_the_middleware_verified() {
    let fixture = Fixture::new().await;
    let counting = Arc::new(Counting(Arc::clone(&fixture.keys), AtomicU32::new(0)));
    let app =
        init_service(
            App::new()
                .service(
                    web::resource("/write")
                        .wrap(ApiKeyAuth::new(Arc::clone(&counting), KeyMode::Required))
                        .route(
                            web::get().to(
                                |key: VerifiedKey,
                                 scoped: RequireScope<Write>,
                                 maybe: OptionalKey| async move {
                                    assert_eq!(key.key_id, scoped.key_id);
                                    assert!(maybe.0.is_some());
                                    format!("{} {}", key.owner, key.client_ip())
                                },
                            ),
                        ),
                )
                .wrap(Harden::new()),
        )
        .await;
    let key = fixture.presented(Key::Alice2).unwrap();
    let (status, body) = status(&app, get_request("/write", key, Some("192.0.2.7:4000"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "alice 192.0.2.7");
    assert_eq!(counting.1.load(Ordering::SeqCst), 1, "verified once");
}

/// A guard on a route the middleware does not cover is a
/// misconfiguration: 500, never "allowed", never a verification of its own.
#[actix_web::test]
async fn a_guard_without_the_middleware_is_a_500() {
    let fixture = Fixture::new().await;
    let app = init_service(
        App::new()
            .route(
                "/write",
                web::get().to(|_key: RequireScope<Write>| async { "unreachable" }),
            )
            .route(
                "/maybe",
                web::get().to(|_key: OptionalKey| async { "unreachable" }),
            )
            .wrap(Harden::new()),
    )
    .await;
    let key = fixture.presented(Key::Alice2).unwrap();
    for path in ["/write", "/maybe"] {
        let capture = EventCapture::new();
        let (status, _) = {
            let _guard = capture.set_default();
            status(&app, get_request(path, key, Some("192.0.2.7:4000"))).await
        };
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let events: Vec<_> = capture
            .security_events()
            .iter()
            .map(|event| event.field("event").unwrap().to_owned())
            .collect();
        assert_eq!(events, ["sys_misconfigured"], "{path}");
    }
}

/// Without a peer address the client address is unknown: an allow-listed
/// key is refused (fail closed), an unrestricted one still works, and the
/// misconfiguration is logged.
#[actix_web::test]
async fn without_a_peer_address_allow_lists_fail_closed() {
    let fixture = Fixture::new().await;
    let app = init_service(
        App::new()
            .service(
                web::resource("/items")
                    .wrap(ApiKeyAuth::new(
                        Arc::clone(&fixture.keys),
                        KeyMode::Required,
                    ))
                    .route(web::get().to(|key: VerifiedKey| async move { key.owner.clone() })),
            )
            .wrap(Harden::new()),
    )
    .await;
    for (key, expected) in [
        (Key::IpLocked, StatusCode::FORBIDDEN),
        (Key::Alice1, StatusCode::OK),
    ] {
        let capture = EventCapture::new();
        let (status, _) = {
            let _guard = capture.set_default();
            status(
                &app,
                get_request("/items", fixture.presented(key).unwrap(), None),
            )
            .await
        };
        assert_eq!(status, expected, "{key:?}");
        assert!(
            !capture
                .named(palisade_errors::SecurityEvent::SysMisconfigured)
                .is_empty()
        );
    }
}

#[actix_web::test]
async fn a_store_outage_fails_closed() {
    let fixture = Fixture::new().await;
    let app = init_service(
        App::new()
            .service(
                web::resource("/items")
                    .wrap(ApiKeyAuth::new(
                        apikey_cases::keys_down(),
                        KeyMode::Required,
                    ))
                    .route(web::get().to(|key: VerifiedKey| async move { key.owner.clone() })),
            )
            .wrap(Harden::new()),
    )
    .await;
    let setup = apikey_cases::CASES[0].setup;
    for (index, &(key, _, _)) in apikey_cases::OUTAGE.iter().enumerate() {
        let call = Call {
            key,
            sent: apikey_cases::Sent::Header,
            route: apikey_cases::Route::Items,
            peer: "192.0.2.7:4000",
            forwarded: None,
            status: 0,
            event: None,
        };
        let outcome = send(&app, &fixture, &setup, &call).await;
        apikey_cases::check_outage(index, &outcome);
    }
}
