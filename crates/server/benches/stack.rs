//! The reference service's whole middleware stack, in process (no sockets,
//! no HTTP parsing): `GET /health/live` and an authenticated `GET /me`
//! through [`palisade_server::app`] against the same requests to a bare
//! axum router, in one run, with the service's own log subscriber
//! installed (its `request` span is part of the cost). `cargo xtask bench`
//! prints the ratio; `cargo xtask bench load` measures the same over HTTP
//! with `wrk`, where the sockets dilute it.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use palisade_secrets::{MapEnv, Redactor};
use palisade_server::metrics::Metrics;
use palisade_server::{Config, app, log_subscriber, state};
use tower::ServiceExt as _;

const PASSWORD: &str = "marmalade kettle thunder 42";

fn config() -> Config {
    let env = MapEnv::default()
        .with("PALISADE_ENV", "development")
        // Far above what one thread sends: the limits run on every request
        // but never refuse one.
        .with("PALISADE_RATE_LIMIT", "1000000/second")
        .with("PALISADE_SUBJECT_RATE_LIMIT", "1000000/second")
        .with(
            "PALISADE_JWT_ACCESS_SECRET",
            "bench access 0123456789abcdefghijklmnopqrstuv",
        )
        .with(
            "PALISADE_JWT_REFRESH_SECRET",
            "bench refresh 0123456789abcdefghijklmnopqrstu",
        )
        .with(
            "PALISADE_API_KEY_PEPPER",
            "bench pepper 0123456789abcdefghijklmnopqrstuvw",
        );
    Config::from_env(env).expect("the bench configuration is valid")
}

fn request(method: &str, path: &str, token: Option<&str>, body: Option<String>) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "localhost");
    if let Some(token) = token {
        builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    let mut request = builder
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("a valid request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    request
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, axum::body::Bytes) {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("in-memory bodies")
        .to_bytes();
    (status, body)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let metrics = Arc::new(Metrics::new());
    // Every line written goes to standard error, as in the service; the
    // routes measured write none at the default level.
    tracing::subscriber::set_global_default(log_subscriber(Redactor::new(), Some(&metrics)))
        .expect("the only subscriber");
    let config = config();
    let state = state::build_with_metrics(&config, state::memory_stores(), metrics)
        .expect("the state builds");
    let palisade = app(state, &config).expect("the app builds");
    let bare = Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/me", get(|| async { "ok" }));

    let token = runtime.block_on(async {
        let credentials =
            serde_json::json!({"username": "bench", "password": PASSWORD}).to_string();
        let (status, _) = send(
            &palisade,
            request("POST", "/auth/register", None, Some(credentials.clone())),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = send(
            &palisade,
            request("POST", "/auth/login", None, Some(credentials)),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let pair: serde_json::Value = serde_json::from_slice(&body).expect("a JSON pair");
        pair["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned()
    });

    for (group, path, token) in [
        ("server_stack_health_live", "/health/live", None),
        ("server_stack_me", "/me", Some(token.as_str())),
    ] {
        let mut group = c.benchmark_group(group);
        for (name, router) in [("palisade", &palisade), ("peer", &bare)] {
            group.bench_function(name, |b| {
                b.iter(|| {
                    let (status, body) = runtime
                        .block_on(send(black_box(router), request("GET", path, token, None)));
                    assert_eq!(status, StatusCode::OK);
                    black_box(body)
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
