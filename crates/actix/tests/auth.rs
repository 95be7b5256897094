//! Bearer authentication and role guards through a real actix-web `App`:
//! the behaviours `palisade-axum` `tests/auth.rs` checks too.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use actix_web::body::to_bytes;
use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::test::{TestRequest, init_service};
use actix_web::{App, web};
use palisade_actix::Harden;
use palisade_actix::auth::{Admin, Authenticated, Moderator, RequireRole, auth_data};
use palisade_auth_tokens::authz::{Authorizer, RoleHierarchy, RolePermissions};
use palisade_auth_tokens::bearer::BearerAuth;
use palisade_auth_tokens::revocation::MemoryRevocationStore;
use palisade_auth_tokens::{
    Algorithm, Claims, Grant, Keyring, NoCustomClaims, SigningKey, TokenIssuer, TokenPolicy,
    TokenVerifier,
};
use secrecy::SecretSlice;

fn ring(kid: &str, secret: &[u8]) -> Keyring {
    Keyring::new([
        SigningKey::hmac(kid, Algorithm::HS256, &SecretSlice::from(secret.to_vec())).unwrap(),
    ])
    .unwrap()
}

fn parts() -> (TokenIssuer, TokenVerifier) {
    let access = ring("a1", b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa");
    let refresh = ring("r1", b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa");
    let policy = TokenPolicy::new("https://auth.example.com", "api").unwrap();
    (
        TokenIssuer::new(access.clone(), refresh.clone(), policy.clone()),
        TokenVerifier::new(access, refresh, policy),
    )
}

async fn me(auth: Authenticated) -> String {
    auth.claims.sub.clone()
}

async fn moderate(auth: RequireRole<Moderator>) -> String {
    auth.claims.sub.clone()
}

async fn admin(auth: RequireRole<Admin>) -> String {
    auth.claims.sub.clone()
}

macro_rules! app {
    ($store:expr) => {{
        let (_, verifier) = parts();
        let authorizer =
            Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), "api").unwrap();
        init_service(
            App::new()
                .app_data(auth_data(BearerAuth::new(verifier, authorizer, $store)))
                .route("/me", web::get().to(me))
                .route("/moderate", web::get().to(moderate))
                .route("/admin", web::get().to(admin))
                .wrap(Harden::new()),
        )
        .await
    }};
}

fn token(role: &str) -> String {
    let grant = Grant {
        subject: format!("{role}-1"),
        role: Some(palisade_auth_tokens::authz::Role::new(role).unwrap()),
        ..Grant::default()
    };
    parts()
        .0
        .issue_access(&grant, NoCustomClaims {})
        .unwrap()
        .token
}

async fn call<S>(
    app: &S,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, HeaderMap, String)
where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let mut request = TestRequest::get().uri(path);
    if let Some(value) = authorization {
        request = request.insert_header(("authorization", value));
    }
    let response = match app.call(request.to_request()).await {
        Ok(response) => response.into_parts().1,
        Err(error) => error.error_response(),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(to_bytes(response.into_body()).await.unwrap().to_vec()).unwrap();
    (status, headers, body)
}

#[actix_web::test]
async fn missing_credentials_get_a_bare_bearer_challenge() {
    let app = app!(MemoryRevocationStore::new());
    let (status, headers, body) = call(&app, "/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers.get("www-authenticate").unwrap(),
        "Bearer realm=\"api\""
    );
    assert!(body.contains("\"unauthorized\""), "{body}");
}

#[actix_web::test]
async fn forged_or_foreign_credentials_get_invalid_token() {
    let app = app!(MemoryRevocationStore::new());
    let (issuer, _) = parts();
    let refresh = issuer.issue_refresh("user-1", "s1").unwrap().token;
    for value in [
        "Bearer not.a.token",
        "Bearer a b",
        "Bearer",
        &format!("Bearer {refresh}"),
    ] {
        let (status, headers, _) = call(&app, "/me", Some(value)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(
            headers.get("www-authenticate").unwrap(),
            "Bearer realm=\"api\", error=\"invalid_token\"",
            "{value}"
        );
    }
}

#[actix_web::test]
async fn a_valid_token_authenticates_and_roles_follow_the_hierarchy() {
    let app = app!(MemoryRevocationStore::new());
    let user = format!("Bearer {}", token("user"));
    let admin = format!("bearer  {}", token("admin"));
    assert_eq!(call(&app, "/me", Some(&user)).await.2, "user-1");
    let (status, _, body) = call(&app, "/admin", Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("\"forbidden\""), "{body}");
    assert_eq!(
        call(&app, "/moderate", Some(&user)).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, "/moderate", Some(&admin)).await.0,
        StatusCode::OK
    );
    assert_eq!(call(&app, "/admin", Some(&admin)).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn a_token_logged_out_is_refused() {
    let store = MemoryRevocationStore::new();
    let app = app!(store.clone());
    let token = token("user");
    let (_, verifier) = parts();
    let claims: Claims = verifier.verify_access(&token).unwrap();
    verifier.revoke(&claims, &store, None).await.unwrap();
    let (status, headers, _) = call(&app, "/me", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers.get("www-authenticate").unwrap(),
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
}

#[actix_web::test]
async fn another_scheme_gets_a_bare_challenge_and_two_headers_are_refused() {
    let app = app!(MemoryRevocationStore::new());
    let (status, headers, _) = call(&app, "/me", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers.get("www-authenticate").unwrap(),
        "Bearer realm=\"api\""
    );
    let good = format!("Bearer {}", token("admin"));
    let request = TestRequest::get()
        .uri("/me")
        .append_header(("authorization", good.as_str()))
        .append_header(("authorization", "Bearer forged.token.here"));
    let response = match app.call(request.to_request()).await {
        Ok(response) => response.into_parts().1,
        Err(error) => error.error_response(),
    };
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
}
