//! The real `Authentication` and `RateLimit` middleware in `Hardening`'s
//! `identity` and `limit` slots, real signed tokens, routes registered with
//! `App::route`: the shared table `tests/hardening_layer_cases.rs` (each
//! refusal × allowed, foreign and no `Origin`), which `palisade-axum` runs
//! too.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/hardening_cases.rs"]
mod hardening_cases;
#[path = "../../../tests/hardening_layer_cases.rs"]
mod hardening_layer_cases;
#[path = "../../../tests/identity_cases.rs"]
mod identity_cases;

use std::sync::Arc;

use actix_web::body::to_bytes;
use actix_web::dev::Service;
use actix_web::test::{TestRequest, init_service};
use actix_web::{App, web};
use hardening_layer_cases::{LayerCase, Observed};
use palisade_actix::Hardening;
use palisade_actix::auth::{Authentication, MemoryRevocationStore, Principal};
use palisade_actix::ratelimit::{ClientIpResolver, RateLimit, by_extension, by_ip};
use palisade_errors::testing::EventCapture;

async fn items(principal: Option<web::ReqData<Principal>>) -> String {
    identity_cases::answer(principal.as_deref())
}

async fn send<S>(app: &S, case: &LayerCase, origin: Option<&str>) -> Observed
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let mut request = TestRequest::get()
        .uri("/items")
        .peer_addr(hardening_layer_cases::PEER.parse().unwrap());
    if let Some(value) = identity_cases::authorization(case.caller) {
        request = request.insert_header(("authorization", value));
    }
    if let Some(origin) = origin {
        request = request.insert_header(("origin", origin));
    }
    let capture = EventCapture::new();
    let response = {
        let _guard = capture.set_default();
        match app.call(request.to_request()).await {
            Ok(response) => response.into_parts().1,
            Err(error) => error.error_response(),
        }
    };
    let status = response.status().as_u16();
    let mut headers = http::HeaderMap::new();
    for (name, value) in response.headers() {
        headers.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let body = to_bytes(response.into_body()).await.unwrap();
    Observed {
        status,
        headers,
        body: body.to_vec(),
        events: capture
            .security_events()
            .iter()
            .filter(|event| event.level <= tracing::Level::INFO)
            .map(|event| event.field("event").unwrap().to_owned())
            .collect(),
    }
}

#[actix_rt::test]
async fn the_real_layers_in_the_slots_from_every_origin() {
    for case in hardening_layer_cases::LAYER_CASES {
        for origin in hardening_cases::ORIGINS {
            let app = init_service(
                Hardening::new()
                    .security_headers(hardening_cases::header_policy())
                    .cors(hardening_cases::cors_policy())
                    .identity(Authentication::new(
                        Arc::new(identity_cases::authenticator(MemoryRevocationStore::new())),
                        case.mode,
                    ))
                    .limit(RateLimit::new(
                        identity_cases::limiter(),
                        by_extension(identity_cases::subject_key)
                            .or_key(by_ip(ClientIpResolver::peer_only())),
                    ))
                    .apply(App::new().route("/items", web::get().to(items))),
            )
            .await;
            for _ in 0..case.warm_up {
                let admitted = send(&app, case, origin).await;
                assert_eq!(admitted.status, 200, "{}: warm-up {admitted:?}", case.name);
            }
            let observed = send(&app, case, origin).await;
            hardening_layer_cases::check(case, origin, &observed);
        }
    }
}

/// Several middleware in the identity slot run in the order added, the
/// first outermost (as palisade-axum's `Hardening`): a per-IP limit added
/// before authentication meters the requests authentication then refuses.
/// Attack: token guessing, which must spend the guesser's address budget;
/// with authentication outermost every guess would be a free 401.
#[actix_rt::test]
async fn identity_slot_runs_its_middleware_in_the_order_added() {
    let statuses = |per_ip_first: bool| async move {
        let per_ip = RateLimit::new(
            identity_cases::limiter(), // 3/minute
            by_ip(ClientIpResolver::peer_only()),
        );
        let auth =
            Authentication::required(identity_cases::authenticator(MemoryRevocationStore::new()));
        let app = App::new().route("/items", web::get().to(items));
        let mut statuses = Vec::new();
        macro_rules! drive {
            ($hardening:expr) => {{
                let app = init_service($hardening.apply(app)).await;
                for _ in 0..4 {
                    let request = TestRequest::get()
                        .uri("/items")
                        .peer_addr(hardening_layer_cases::PEER.parse().unwrap())
                        .insert_header(("authorization", "Bearer not.a.token"))
                        .to_request();
                    let response = app.call(request).await.unwrap();
                    statuses.push(response.status().as_u16());
                }
            }};
        }
        if per_ip_first {
            drive!(Hardening::new().identity(per_ip).identity(auth));
        } else {
            drive!(Hardening::new().identity(auth).identity(per_ip));
        }
        statuses
    };
    assert_eq!(statuses(true).await, [401, 401, 401, 429]);
    assert_eq!(statuses(false).await, [401, 401, 401, 401]);
}
