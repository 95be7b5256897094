//! Bearer authentication and role guards through a real axum router: the
//! behaviours `palisade-actix` `tests/auth.rs` checks too.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use palisade_auth_tokens::authz::{Authorizer, RoleHierarchy, RolePermissions};
use palisade_auth_tokens::bearer::BearerAuth;
use palisade_auth_tokens::revocation::MemoryRevocationStore;
use palisade_auth_tokens::{
    Algorithm, Claims, Grant, Keyring, NoCustomClaims, SigningKey, TokenIssuer, TokenPolicy,
    TokenVerifier,
};
use palisade_axum::auth::{Admin, Authenticated, Moderator, RequireRole, auth_extension};
use palisade_axum::harden;
use secrecy::SecretSlice;
use tower::ServiceExt;

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

fn app(revocations: MemoryRevocationStore) -> Router {
    let (_, verifier) = parts();
    let authorizer =
        Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), "api").unwrap();
    harden(
        Router::new()
            .route(
                "/me",
                get(|auth: Authenticated| async move { auth.claims.sub.clone() }),
            )
            .route(
                "/moderate",
                get(|auth: RequireRole<Moderator>| async move { auth.claims.sub.clone() }),
            )
            .route(
                "/admin",
                get(|auth: RequireRole<Admin>| async move { auth.claims.sub.clone() }),
            )
            .layer(auth_extension(BearerAuth::new(
                verifier,
                authorizer,
                revocations,
            ))),
    )
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

async fn call(
    app: &Router,
    path: &str,
    authorization: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder().uri(path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn missing_credentials_get_a_bare_bearer_challenge() {
    let (status, headers, body) = call(&app(MemoryRevocationStore::new()), "/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"api\"");
    assert!(body.contains("\"unauthorized\""), "{body}");
}

#[tokio::test]
async fn forged_or_foreign_credentials_get_invalid_token() {
    let app = app(MemoryRevocationStore::new());
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
            headers["www-authenticate"], "Bearer realm=\"api\", error=\"invalid_token\"",
            "{value}"
        );
    }
}

#[tokio::test]
async fn a_valid_token_authenticates_and_roles_follow_the_hierarchy() {
    let app = app(MemoryRevocationStore::new());
    let user = format!("Bearer {}", token("user"));
    let admin = format!("bearer  {}", token("admin"));
    assert_eq!(call(&app, "/me", Some(&user)).await.2, "user-1");
    // Privilege escalation: a user on an admin route.
    let (status, _, body) = call(&app, "/admin", Some(&user)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("\"forbidden\""), "{body}");
    assert_eq!(
        call(&app, "/moderate", Some(&user)).await.0,
        StatusCode::FORBIDDEN
    );
    // Admins pass moderator checks.
    assert_eq!(
        call(&app, "/moderate", Some(&admin)).await.0,
        StatusCode::OK
    );
    assert_eq!(call(&app, "/admin", Some(&admin)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_token_logged_out_is_refused() {
    let store = MemoryRevocationStore::new();
    let app = app(store.clone());
    let token = token("user");
    let (_, verifier) = parts();
    let claims: Claims = verifier.verify_access(&token).unwrap();
    verifier.revoke(&claims, &store, None).await.unwrap();
    let (status, headers, _) = call(&app, "/me", Some(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
}

#[tokio::test]
async fn another_scheme_gets_a_bare_challenge_and_two_headers_are_refused() {
    let app = app(MemoryRevocationStore::new());
    // RFC 6750 §3.1: an unsupported scheme is "no credentials": no error code.
    let (status, headers, _) = call(&app, "/me", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"api\"");
    // Two Authorization headers: a proxy checking one and the service
    // using the other would disagree; refused.
    let good = format!("Bearer {}", token("admin"));
    let request = Request::builder()
        .uri("/me")
        .header("authorization", good.as_str())
        .header("authorization", "Bearer forged.token.here")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
}
