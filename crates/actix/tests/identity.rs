//! Authentication as middleware and identity-keyed rate limits through a
//! real actix-web `App`, real signed tokens and the real `Authentication`
//! middleware (no stand-in): the shared table `tests/identity_cases.rs`
//! (which `palisade-axum` runs too), the verifier a logout revokes with,
//! and one verification per request.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/identity_cases.rs"]
mod identity_cases;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::body::to_bytes;
use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, init_service};
use actix_web::{App, HttpResponse, web};
use identity_cases::{Caller, Case, Missing, Order, Outcome, Setup};
// Everything from the adapter: one dependency suffices.
use palisade_actix::auth::{
    Authenticated, Authentication, MemoryRevocationStore, Principal, RequireRole, User, bearer,
};
use palisade_actix::ratelimit::{ClientIpResolver, KeyFn, RateLimit, by_extension, by_ip};
use palisade_actix::{ApiError, Harden};
use palisade_errors::testing::EventCapture;

async fn items(principal: Option<web::ReqData<Principal>>) -> String {
    identity_cases::answer(principal.as_deref())
}

fn key(setup: Setup) -> KeyFn {
    match setup.missing {
        Missing::Refuse => by_extension(identity_cases::subject_key).or_refuse(),
        Missing::FallbackToIp => {
            by_extension(identity_cases::subject_key).or_key(by_ip(ClientIpResolver::peer_only()))
        }
    }
}

fn auth(setup: Setup) -> Authentication<identity_cases::Auth> {
    Authentication::new(
        Arc::new(identity_cases::authenticator(MemoryRevocationStore::new())),
        setup.mode,
    )
}

async fn send<S>(app: &S, caller: Caller, peer: &str) -> Outcome
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let mut request = TestRequest::get()
        .uri("/items")
        .peer_addr(peer.parse().unwrap());
    if let Some(value) = identity_cases::authorization(caller) {
        request = request.insert_header(("authorization", value));
    }
    let capture = EventCapture::new();
    let response = {
        let _guard = capture.set_default();
        match app.call(request.to_request()).await {
            Ok(response) => response.into_parts().1,
            Err(error) => error.error_response(),
        }
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

async fn run<S>(app: &S, case: &Case)
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    for (index, call) in case.calls.iter().enumerate() {
        let outcome = send(app, call.caller, call.peer).await;
        identity_cases::check(case, index, &outcome);
    }
}

#[actix_web::test]
async fn the_shared_identity_cases() {
    for case in identity_cases::CASES {
        let setup = case.setup;
        let limit = RateLimit::new(identity_cases::limiter(), key(setup));
        let resource = web::resource("/items").route(web::get().to(items));
        match setup.order {
            Order::AuthFirst => {
                let resource = resource.wrap(limit).wrap(auth(setup));
                let app = init_service(App::new().service(resource).wrap(Harden::new())).await;
                run(&app, case).await;
            }
            Order::LimitFirst => {
                let resource = resource.wrap(auth(setup)).wrap(limit);
                let app = init_service(App::new().service(resource).wrap(Harden::new())).await;
                run(&app, case).await;
            }
        }
    }
}

#[actix_web::test]
async fn logout_revokes_with_the_verifier_behind_the_middleware() {
    let middleware =
        Authentication::required(identity_cases::authenticator(MemoryRevocationStore::new()));
    let auth = Arc::clone(middleware.authenticator());
    let app = init_service(
        App::new()
            .service(
                web::scope("")
                    .wrap(middleware)
                    .route(
                        "/items",
                        web::get().to(|who: Authenticated| async move { who.claims.sub.clone() }),
                    )
                    .route(
                        "/logout",
                        web::post().to(move |who: Authenticated| {
                            let auth = Arc::clone(&auth);
                            async move {
                                let store = auth.revocations().unwrap();
                                auth.verifier()
                                    .revoke(&who.claims, store, None)
                                    .await
                                    .map_err(|error| ApiError(error.into()))?;
                                Ok::<_, ApiError>(HttpResponse::NoContent().finish())
                            }
                        }),
                    ),
            )
            .wrap(Harden::new()),
    )
    .await;
    let token = identity_cases::authorization(Caller::Alice).unwrap();
    let status = |request: TestRequest| {
        let request = request
            .insert_header(("authorization", token.as_str()))
            .to_request();
        let response = app.call(request);
        async move {
            match response.await {
                Ok(response) => response.status(),
                Err(error) => error.error_response().status(),
            }
        }
    };
    assert_eq!(
        status(TestRequest::get().uri("/items")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(TestRequest::post().uri("/logout")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status(TestRequest::get().uri("/items")).await,
        StatusCode::UNAUTHORIZED
    );
}

/// Counts verifications.
struct Counting(identity_cases::Auth, AtomicU32);

impl bearer::Authenticate for Counting {
    fn authenticate<'a>(&'a self, credentials: bearer::Credentials<'a>) -> bearer::AuthFuture<'a> {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.authenticate(credentials)
    }

    fn authorizer(&self) -> &palisade_actix::auth::Authorizer {
        self.0.authorizer()
    }
}

#[actix_web::test]
async fn the_extractors_read_what_the_middleware_verified() {
    let middleware = Authentication::required(Counting(
        identity_cases::authenticator(MemoryRevocationStore::new()),
        AtomicU32::new(0),
    ));
    let counting = Arc::clone(middleware.authenticator());
    let app = init_service(
        App::new()
            .service(web::resource("/items").wrap(middleware).route(
                web::get().to(|who: Authenticated, _role: RequireRole<User>| async move {
                    who.claims.sub.clone()
                }),
            ))
            .wrap(Harden::new()),
    )
    .await;
    let request = TestRequest::get()
        .uri("/items")
        .insert_header((
            "authorization",
            identity_cases::authorization(Caller::Bob).unwrap(),
        ))
        .to_request();
    let response = app.call(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(counting.1.load(Ordering::SeqCst), 1, "verified once");
}
