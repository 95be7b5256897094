//! The refresh cookie through the real path (issue #11): login sets the
//! `__Host-` cookie, a cookie refresh with an allowed `Origin` and the
//! custom header rotates it, a missing header or a foreign `Origin` is a
//! 403, logout clears it, a body token needs no CSRF check, and a bound
//! family refuses another device.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "support/refresh_app.rs"]
mod refresh_app;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use refresh_app::{REFRESH_TTL, app};

const APP: &str = "https://app.example.com";
const DEVICE: &str = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";

struct Reply {
    status: StatusCode,
    set_cookie: Vec<String>,
    body: serde_json::Value,
}

async fn call(router: &Router, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        set_cookie,
        body,
    }
}

/// The token of a `Set-Cookie: __Host-refresh=<token>; ...`.
fn cookie_token(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("__Host-refresh=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
}

fn expected_set_cookie(token: &str) -> String {
    format!(
        "__Host-refresh={token}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={REFRESH_TTL}"
    )
}

async fn login(router: &Router, extra: &[(&str, &str)]) -> String {
    let reply = call(router, "/login", extra, r#"{"user":"alice"}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.set_cookie.len(), 1);
    let token = cookie_token(&reply.set_cookie[0]).to_owned();
    assert_eq!(reply.set_cookie[0], expected_set_cookie(&token));
    token
}

#[tokio::test]
async fn login_sets_the_host_cookie_and_a_csrf_safe_refresh_rotates_it() {
    let (router, record) = app(&[APP]);
    let first = login(&router, &[]).await;
    let cookie = format!("__Host-refresh={first}");
    let reply = call(
        &router,
        "/refresh",
        &[
            ("cookie", &cookie),
            ("origin", APP),
            ("x-requested-with", "palisade"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.set_cookie.len(), 1);
    let second = cookie_token(&reply.set_cookie[0]).to_owned();
    assert_ne!(second, first, "rotated");
    assert_eq!(reply.set_cookie[0], expected_set_cookie(&second));
    assert!(reply.body["access_token"].is_string());
    assert!(reply.body.get("refresh_token").is_none(), "the cookie only");
    assert_eq!(*record.presented.lock().unwrap(), vec![first]);
}

#[tokio::test]
async fn a_cookie_refresh_without_the_header_or_from_a_foreign_origin_is_403() {
    let (router, record) = app(&[APP]);
    let token = login(&router, &[]).await;
    let cookie = format!("__Host-refresh={token}");
    let cases: [&[(&str, &str)]; 4] = [
        &[("cookie", &cookie), ("origin", APP)],
        &[
            ("cookie", &cookie),
            ("origin", "https://blog.example.com"),
            ("x-requested-with", "palisade"),
        ],
        &[("cookie", &cookie), ("x-requested-with", "palisade")],
        &[
            ("cookie", &cookie),
            ("origin", APP),
            ("x-requested-with", "other"),
        ],
    ];
    for headers in cases {
        for path in ["/refresh", "/logout"] {
            let reply = call(&router, path, headers, "").await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {headers:?}");
            assert_eq!(reply.body["error"]["code"], "forbidden");
            assert!(reply.set_cookie.is_empty());
        }
    }
    // Refused before the handler: the token was never presented, and the
    // family is untouched.
    assert!(record.presented.lock().unwrap().is_empty());
    let reply = call(
        &router,
        "/refresh",
        &[
            ("cookie", &cookie),
            ("origin", APP),
            ("x-requested-with", "palisade"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn logout_clears_the_cookie() {
    let (router, _) = app(&[APP]);
    let token = login(&router, &[]).await;
    let cookie = format!("__Host-refresh={token}");
    let csrf = [
        ("cookie", cookie.as_str()),
        ("origin", APP),
        ("x-requested-with", "palisade"),
    ];
    let reply = call(&router, "/logout", &csrf, "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.set_cookie,
        vec!["__Host-refresh=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"]
    );
    // The family is gone: the old cookie no longer refreshes.
    let reply = call(&router, "/refresh", &csrf, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // No cookie, no body: 401.
    let reply = call(&router, "/refresh", &[], "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_body_token_needs_no_csrf_check_and_is_answered_in_the_body() {
    let (router, _) = app(&[APP]);
    let token = login(&router, &[]).await;
    let body = format!(r#"{{"refresh_token":"{token}"}}"#);
    let reply = call(&router, "/refresh", &[], &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.set_cookie.is_empty());
    assert!(reply.body["refresh_token"].is_string());
    let reply = call(&router, "/refresh", &[], "{not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_replay_from_another_device_is_refused_and_ends_the_family() {
    let (router, _) = app(&[APP]);
    let token = login(&router, &[("x-device-id", DEVICE)]).await;
    let cookie = format!("__Host-refresh={token}");
    let with = |device: &'static str| {
        [
            ("cookie", cookie.clone()),
            ("origin", APP.to_owned()),
            ("x-requested-with", "palisade".to_owned()),
            ("x-device-id", device.to_owned()),
        ]
    };
    let headers = with("ffffffff-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = call(&router, "/refresh", &headers, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.set_cookie.is_empty());
    // The family ended: even the right device is refused now.
    let headers = with(DEVICE);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = call(&router, "/refresh", &headers, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    // A new bound login refreshes from its own device.
    let token = login(&router, &[("x-device-id", DEVICE)]).await;
    let cookie = format!("__Host-refresh={token}");
    let reply = call(
        &router,
        "/refresh",
        &[
            ("cookie", &cookie),
            ("origin", APP),
            ("x-requested-with", "palisade"),
            ("x-device-id", DEVICE),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}
