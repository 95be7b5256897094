//! The refresh cookie through the real path (issue #11), as in
//! palisade-axum's `tests/refresh_cookie.rs`: login sets the `__Host-`
//! cookie, a cookie refresh with an allowed `Origin` and the custom header
//! rotates it, a missing header or a foreign `Origin` is a 403, logout
//! clears it, a body token needs no CSRF check, and a bound family refuses
//! another device.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::{Arc, Mutex};

use actix_web::body::to_bytes;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, init_service};
use actix_web::{App, HttpResponse, web};
use palisade_actix::ApiError;
use palisade_actix::auth::{
    Algorithm, Device, Grant, Keyring, MemoryFamilyStore, MemoryRevocationStore, RefreshCookie,
    RefreshCookies, RefreshFamilies, RefreshRequest, SecretSlice, SigningKey, SystemClock,
    TokenError, TokenIssuer, TokenPolicy, TokenVerifier, refresh_cookie_data,
};

const REFRESH_TTL: u64 = 1_209_600;
const APP: &str = "https://app.example.com";
const DEVICE: &str = "3f0c1d2e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";

struct State {
    families: RefreshFamilies<MemoryFamilyStore, SystemClock>,
    revocations: MemoryRevocationStore,
    presented: Mutex<Vec<String>>,
}

fn policy() -> TokenPolicy {
    TokenPolicy::builder("https://auth.example.com", "api")
        .refresh_ttl(REFRESH_TTL)
        .build()
        .unwrap()
}

fn state() -> Arc<State> {
    let secret = |byte: u8| SecretSlice::from((0..32).map(|i| byte ^ i).collect::<Vec<u8>>());
    let access =
        Keyring::new([SigningKey::hmac("a1", Algorithm::HS256, &secret(0x5a)).unwrap()]).unwrap();
    let refresh =
        Keyring::new([SigningKey::hmac("r1", Algorithm::HS256, &secret(0xa5)).unwrap()]).unwrap();
    let families = RefreshFamilies::new(
        TokenIssuer::new(access.clone(), refresh.clone(), policy()),
        TokenVerifier::new(access, refresh, policy()),
        MemoryFamilyStore::new(),
        &secret(0x3c),
        Default::default(),
    )
    .unwrap();
    Arc::new(State {
        families,
        revocations: MemoryRevocationStore::new(),
        presented: Mutex::new(Vec::new()),
    })
}

fn token_error(error: TokenError) -> ApiError {
    ApiError(error.into())
}

#[derive(serde::Deserialize)]
struct LoginBody {
    user: String,
}

async fn login(
    state: web::Data<Arc<State>>,
    cookies: RefreshCookies,
    Device(device): Device,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let grant = Grant {
        subject: body.into_inner().user,
        ..Grant::default()
    };
    let login = match &device {
        Some(device) => state.families.login_bound(&grant, device).await,
        None => state.families.login(&grant).await,
    }
    .map_err(token_error)?;
    Ok(HttpResponse::Ok()
        .append_header(cookies.set(&login.pair.refresh.token)?)
        .json(serde_json::json!({"access_token": login.pair.access.token})))
}

async fn refresh(
    state: web::Data<Arc<State>>,
    request: RefreshRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .presented
        .lock()
        .unwrap()
        .push(request.token().to_owned());
    let lookup = |subject: String| async move {
        Some(Grant {
            subject,
            ..Grant::default()
        })
    };
    let pair = state
        .families
        .refresh_unrevoked_bound(
            request.token(),
            request.device(),
            lookup,
            &state.revocations,
        )
        .await
        .map_err(token_error)?;
    if request.from_cookie() {
        Ok(HttpResponse::Ok()
            .append_header(request.cookies.set(&pair.refresh.token)?)
            .json(serde_json::json!({"access_token": pair.access.token})))
    } else {
        Ok(HttpResponse::Ok().json(serde_json::json!({
            "access_token": pair.access.token,
            "refresh_token": pair.refresh.token,
        })))
    }
}

async fn logout(
    state: web::Data<Arc<State>>,
    request: RefreshRequest,
) -> Result<HttpResponse, ApiError> {
    state
        .families
        .logout_unrevoked(request.token(), &state.revocations)
        .await
        .map_err(token_error)?;
    Ok(HttpResponse::NoContent()
        .append_header(request.cookies.clear()?)
        .finish())
}

struct Reply {
    status: StatusCode,
    set_cookie: Vec<String>,
    body: serde_json::Value,
}

struct TestApp<S> {
    service: S,
    state: Arc<State>,
}

async fn test_app()
-> TestApp<impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>>
{
    let state = state();
    let cookie = RefreshCookie::new(&policy(), [APP]).unwrap();
    let service = init_service(
        App::new()
            .app_data(web::Data::new(Arc::clone(&state)))
            .app_data(refresh_cookie_data(cookie))
            .route("/login", web::post().to(login))
            .route("/refresh", web::post().to(refresh))
            .route("/logout", web::post().to(logout)),
    )
    .await;
    TestApp { service, state }
}

async fn call<S>(app: &TestApp<S>, path: &str, headers: &[(&str, &str)], body: &str) -> Reply
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let mut request = TestRequest::post().uri(path);
    for (name, value) in headers {
        request = request.append_header((*name, *value));
    }
    if !body.is_empty() {
        request = request.append_header(("content-type", "application/json"));
    }
    let response = app
        .service
        .call(request.set_payload(body.to_owned()).to_request())
        .await
        .unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let bytes = to_bytes(response.into_body()).await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        set_cookie,
        body,
    }
}

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

async fn log_in<S>(app: &TestApp<S>, extra: &[(&str, &str)]) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    let reply = call(app, "/login", extra, r#"{"user":"alice"}"#).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.set_cookie.len(), 1);
    let token = cookie_token(&reply.set_cookie[0]).to_owned();
    assert_eq!(reply.set_cookie[0], expected_set_cookie(&token));
    token
}

#[actix_rt::test]
async fn login_sets_the_host_cookie_and_a_csrf_safe_refresh_rotates_it() {
    let app = test_app().await;
    let first = log_in(&app, &[]).await;
    let cookie = format!("__Host-refresh={first}");
    let csrf = [
        ("cookie", cookie.as_str()),
        ("origin", APP),
        ("x-requested-with", "palisade"),
    ];
    let reply = call(&app, "/refresh", &csrf, "").await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.set_cookie.len(), 1);
    let second = cookie_token(&reply.set_cookie[0]).to_owned();
    assert_ne!(second, first, "rotated");
    assert_eq!(reply.set_cookie[0], expected_set_cookie(&second));
    assert!(reply.body.get("refresh_token").is_none(), "the cookie only");
    assert_eq!(*app.state.presented.lock().unwrap(), vec![first]);
}

#[actix_rt::test]
async fn a_cookie_refresh_without_the_header_or_from_a_foreign_origin_is_403() {
    let app = test_app().await;
    let token = log_in(&app, &[]).await;
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
            let reply = call(&app, path, headers, "").await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} {headers:?}");
            assert_eq!(reply.body["error"]["code"], "forbidden");
            assert!(reply.set_cookie.is_empty());
        }
    }
    assert!(app.state.presented.lock().unwrap().is_empty());
    let csrf = [
        ("cookie", cookie.as_str()),
        ("origin", APP),
        ("x-requested-with", "palisade"),
    ];
    assert_eq!(
        call(&app, "/refresh", &csrf, "").await.status,
        StatusCode::OK
    );
}

#[actix_rt::test]
async fn logout_clears_the_cookie() {
    let app = test_app().await;
    let token = log_in(&app, &[]).await;
    let cookie = format!("__Host-refresh={token}");
    let csrf = [
        ("cookie", cookie.as_str()),
        ("origin", APP),
        ("x-requested-with", "palisade"),
    ];
    let reply = call(&app, "/logout", &csrf, "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.set_cookie,
        vec!["__Host-refresh=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"]
    );
    let reply = call(&app, "/refresh", &csrf, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = call(&app, "/refresh", &[], "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[actix_rt::test]
async fn a_body_token_needs_no_csrf_check_and_is_answered_in_the_body() {
    let app = test_app().await;
    let token = log_in(&app, &[]).await;
    let body = format!(r#"{{"refresh_token":"{token}"}}"#);
    let reply = call(&app, "/refresh", &[], &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert!(reply.set_cookie.is_empty());
    assert!(reply.body["refresh_token"].is_string());
    let reply = call(&app, "/refresh", &[], "{not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[actix_rt::test]
async fn a_replay_from_another_device_is_refused_and_ends_the_family() {
    let app = test_app().await;
    let token = log_in(&app, &[("x-device-id", DEVICE)]).await;
    let cookie = format!("__Host-refresh={token}");
    let with = |device| {
        [
            ("cookie", cookie.as_str()),
            ("origin", APP),
            ("x-requested-with", "palisade"),
            ("x-device-id", device),
        ]
    };
    let other = "ffffffff-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
    let reply = call(&app, "/refresh", &with(other), "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.set_cookie.is_empty());
    let reply = call(&app, "/refresh", &with(DEVICE), "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "the family ended");

    let token = log_in(&app, &[("x-device-id", DEVICE)]).await;
    let cookie = format!("__Host-refresh={token}");
    let reply = call(
        &app,
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
