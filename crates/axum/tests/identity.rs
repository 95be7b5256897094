//! Authentication as a layer and identity-keyed rate limits through a real
//! axum router, real signed tokens and the real `AuthLayer` (no stand-in):
//! the shared table `tests/identity_cases.rs` (which `palisade-actix` runs
//! too), the verifier a logout revokes with, and one verification per
//! request.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/identity_cases.rs"]
mod identity_cases;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http_body_util::BodyExt;
use identity_cases::{Caller, Missing, Order, Outcome, Setup};
// Everything from the adapter: one dependency suffices.
use palisade_axum::auth::{
    AuthLayer, Authenticated, MemoryRevocationStore, Principal, RequireRole, User, bearer,
};
use palisade_axum::ratelimit::{ClientIpResolver, RateLimitLayer, by_extension, by_ip};
use palisade_axum::{ApiError, harden};
use palisade_errors::testing::EventCapture;
use tower::ServiceExt;

fn app(setup: Setup) -> Router {
    let key = match setup.missing {
        Missing::Refuse => by_extension(identity_cases::subject_key).or_refuse(),
        Missing::FallbackToIp => {
            by_extension(identity_cases::subject_key).or_key(by_ip(ClientIpResolver::peer_only()))
        }
    };
    let limit = RateLimitLayer::new(identity_cases::limiter(), key);
    let auth = AuthLayer::new(
        Arc::new(identity_cases::authenticator(MemoryRevocationStore::new())),
        setup.mode,
    );
    let route = get(|principal: Option<Extension<Principal>>| async move {
        identity_cases::answer(principal.as_ref().map(|p| &p.0))
    });
    let router = Router::new().route("/items", route);
    harden(match setup.order {
        Order::AuthFirst => router.route_layer(limit).route_layer(auth),
        Order::LimitFirst => router.route_layer(auth).route_layer(limit),
    })
}

async fn send(router: &Router, caller: Caller, peer: &str) -> Outcome {
    let mut request = Request::builder().uri("/items");
    if let Some(value) = identity_cases::authorization(caller) {
        request = request.header("authorization", value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let capture = EventCapture::new();
    let response = {
        let _guard = capture.set_default();
        router.clone().oneshot(request).await.unwrap()
    };
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
    let body = response.into_body().collect().await.unwrap().to_bytes();
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

#[tokio::test]
async fn the_shared_identity_cases() {
    for case in identity_cases::CASES {
        let router = app(case.setup);
        for (index, call) in case.calls.iter().enumerate() {
            let outcome = send(&router, call.caller, call.peer).await;
            identity_cases::check(case, index, &outcome);
        }
    }
}

#[tokio::test]
async fn logout_revokes_with_the_verifier_behind_the_layer() {
    let layer = AuthLayer::required(identity_cases::authenticator(MemoryRevocationStore::new()));
    let auth = Arc::clone(layer.authenticator());
    let router = harden(
        Router::new()
            .route(
                "/items",
                get(|who: Authenticated| async move { who.claims.sub.clone() }),
            )
            .route(
                "/logout",
                post(move |who: Authenticated| async move {
                    let store = auth.revocations().unwrap();
                    auth.verifier()
                        .revoke(&who.claims, store, None)
                        .await
                        .map_err(|error| ApiError(error.into()))?;
                    Ok::<_, ApiError>(StatusCode::NO_CONTENT)
                }),
            )
            .route_layer(layer),
    );
    let token = identity_cases::authorization(Caller::Alice).unwrap();
    let call = |method: &str, path: &str| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", &token)
            .body(Body::empty())
            .unwrap();
        router.clone().oneshot(request)
    };
    assert_eq!(
        call("GET", "/items").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        call("POST", "/logout").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let after = call("GET", "/items").await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

/// Counts verifications.
struct Counting(identity_cases::Auth, AtomicU32);

impl bearer::Authenticate for Counting {
    fn authenticate<'a>(&'a self, credentials: bearer::Credentials<'a>) -> bearer::AuthFuture<'a> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.authenticate(credentials)
    }

    fn authorizer(&self) -> &palisade_axum::auth::Authorizer {
        self.0.authorizer()
    }
}

#[tokio::test]
async fn the_extractors_read_what_the_layer_verified() {
    let layer = AuthLayer::required(Counting(
        identity_cases::authenticator(MemoryRevocationStore::new()),
        AtomicU32::new(0),
    ));
    let counting = Arc::clone(layer.authenticator());
    let router = harden(
        Router::new()
            .route(
                "/items",
                get(|who: Authenticated, _role: RequireRole<User>| async move {
                    who.claims.sub.clone()
                }),
            )
            .route_layer(layer),
    );
    let request = Request::builder()
        .uri("/items")
        .header(
            "authorization",
            identity_cases::authorization(Caller::Bob).unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(counting.1.load(Ordering::SeqCst), 1, "verified once");
}
