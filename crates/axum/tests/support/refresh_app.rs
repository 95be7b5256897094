//! An application with login, refresh and logout through the refresh
//! cookie (palisade-axum's `RefreshRequest`, `RefreshCookies`, `Device`),
//! on real tokens and real refresh families, recording what it saw.

#![allow(dead_code)] // each test file reads part of the record

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Json, Request, State};
use axum::http::StatusCode;
use axum::http::header::{COOKIE, ORIGIN};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use palisade_axum::ApiError;
use palisade_axum::auth::{
    Algorithm, Device, Grant, Keyring, MemoryFamilyStore, MemoryRevocationStore, RefreshCookie,
    RefreshCookies, RefreshFamilies, RefreshRequest, SecretSlice, SigningKey, SystemClock,
    TokenIssuer, TokenPolicy, TokenVerifier, refresh_cookie_extension,
};

/// The refresh lifetime, so the `Max-Age` the tests expect.
pub const REFRESH_TTL: u64 = 1_209_600;

/// One request as the application saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub origin: Option<String>,
    pub had_cookie: bool,
    pub status: u16,
}

#[derive(Default)]
pub struct Record {
    /// Every request, in order.
    pub seen: Mutex<Vec<Seen>>,
    /// Refresh tokens issued (login, refresh), in order.
    pub issued: Mutex<Vec<String>>,
    /// Refresh tokens presented to /refresh (cookie or body), in order.
    pub presented: Mutex<Vec<String>>,
}

struct App {
    families: RefreshFamilies<MemoryFamilyStore, SystemClock>,
    revocations: MemoryRevocationStore,
    record: Arc<Record>,
}

fn families() -> RefreshFamilies<MemoryFamilyStore, SystemClock> {
    let secret = |byte: u8| SecretSlice::from((0..32).map(|i| byte ^ i).collect::<Vec<u8>>());
    let access =
        Keyring::new([SigningKey::hmac("a1", Algorithm::HS256, &secret(0x5a)).unwrap()]).unwrap();
    let refresh =
        Keyring::new([SigningKey::hmac("r1", Algorithm::HS256, &secret(0xa5)).unwrap()]).unwrap();
    let policy = TokenPolicy::builder("https://auth.example.com", "api")
        .refresh_ttl(REFRESH_TTL)
        .build()
        .unwrap();
    RefreshFamilies::new(
        TokenIssuer::new(access.clone(), refresh.clone(), policy.clone()),
        TokenVerifier::new(access, refresh, policy),
        MemoryFamilyStore::new(),
        &secret(0x3c),
        Default::default(),
    )
    .unwrap()
}

/// The application; `allowed_origins` for the CSRF rule.
pub fn app(allowed_origins: &[&str]) -> (Router, Arc<Record>) {
    let policy = TokenPolicy::builder("https://auth.example.com", "api")
        .refresh_ttl(REFRESH_TTL)
        .build()
        .unwrap();
    let cookie = RefreshCookie::new(&policy, allowed_origins.iter().copied()).unwrap();
    let record = Arc::new(Record::default());
    let state = Arc::new(App {
        families: families(),
        revocations: MemoryRevocationStore::new(),
        record: Arc::clone(&record),
    });
    let router = Router::new()
        .route("/login", post(login))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .layer(refresh_cookie_extension(cookie))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state);
    (router, record)
}

async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let origin = request
        .headers()
        .get(ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let had_cookie = request
        .headers()
        .get_all(COOKIE)
        .iter()
        .any(|value| value.to_str().is_ok_and(|v| v.contains("__Host-refresh=")));
    let response = next.run(request).await;
    app.record.seen.lock().unwrap().push(Seen {
        method,
        path,
        origin,
        had_cookie,
        status: response.status().as_u16(),
    });
    response
}

#[derive(serde::Deserialize)]
struct LoginBody {
    user: String,
}

fn token_error(error: palisade_axum::auth::TokenError) -> ApiError {
    ApiError(error.into())
}

async fn login(
    State(app): State<Arc<App>>,
    cookies: RefreshCookies,
    Device(device): Device,
    Json(body): Json<LoginBody>,
) -> Result<impl IntoResponse, ApiError> {
    // (A real login checks a password first.)
    let grant = Grant {
        subject: body.user,
        ..Grant::default()
    };
    let login = match &device {
        Some(device) => app.families.login_bound(&grant, device).await,
        None => app.families.login(&grant).await,
    }
    .map_err(token_error)?;
    let pair = login.pair;
    app.record
        .issued
        .lock()
        .unwrap()
        .push(pair.refresh.token.clone());
    let set = cookies.set(&pair.refresh.token)?;
    Ok((
        set,
        Json(serde_json::json!({"access_token": pair.access.token})),
    ))
}

async fn refresh(
    State(app): State<Arc<App>>,
    request: RefreshRequest,
) -> Result<impl IntoResponse, ApiError> {
    app.record
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
    let pair = app
        .families
        .refresh_unrevoked_bound(request.token(), request.device(), lookup, &app.revocations)
        .await
        .map_err(token_error)?;
    app.record
        .issued
        .lock()
        .unwrap()
        .push(pair.refresh.token.clone());
    if request.from_cookie() {
        let set = request.cookies.set(&pair.refresh.token)?;
        Ok((
            Some(set),
            Json(serde_json::json!({"access_token": pair.access.token})),
        ))
    } else {
        Ok((
            None,
            Json(serde_json::json!({
                "access_token": pair.access.token,
                "refresh_token": pair.refresh.token,
            })),
        ))
    }
}

async fn logout(
    State(app): State<Arc<App>>,
    request: RefreshRequest,
) -> Result<impl IntoResponse, ApiError> {
    app.families
        .logout_unrevoked(request.token(), &app.revocations)
        .await
        .map_err(token_error)?;
    Ok((request.cookies.clear(), StatusCode::NO_CONTENT))
}
