//! `Hardening` through a real axum router: the shared case table (every
//! response class × allowed, foreign and no `Origin`) and the captured log.

#![cfg(feature = "headers")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/hardening_cases.rs"]
mod hardening_cases;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use palisade_axum::{ApiError, Hardening, Json};
use palisade_errors::{Error, ErrorKind};
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Deserialize)]
struct NewItem {
    #[allow(dead_code)]
    name: String,
}

async fn unauthorized() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Unauthorized).into())
}

async fn forbidden() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Forbidden).into())
}

async fn limited() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::RateLimited)
        .with_retry_after(30)
        .into())
}

async fn failing() -> Result<&'static str, ApiError> {
    Err(Error::new(ErrorKind::Internal)
        .with_source(std::io::Error::other("db: connection refused to pg-7"))
        .into())
}

async fn boom() -> &'static str {
    panic!("handler exploded");
}

fn app() -> Router {
    let routes = Router::new()
        .route(
            "/items",
            get(|| async { "items" }).post(|Json(_item): Json<NewItem>| async { "created" }),
        )
        .layer(DefaultBodyLimit::max(hardening_cases::BODY_LIMIT))
        .route("/unauthorized", get(unauthorized))
        .route("/forbidden", get(forbidden))
        .route("/limited", get(limited))
        .route("/failing", get(failing))
        .route("/boom", get(boom));
    Hardening::new()
        .security_headers(hardening_cases::header_policy())
        .cors(hardening_cases::cors_policy())
        .apply(routes)
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

fn request(case: &hardening_cases::Case, origin: Option<&str>) -> Request<Body> {
    let mut request = Request::builder()
        .method(case.method.clone())
        .uri(case.path)
        .body(Body::from(case.body))
        .unwrap();
    *request.headers_mut() = hardening_cases::request_headers(case, origin);
    request
}

#[tokio::test]
async fn every_response_class_from_every_origin() {
    let app = app();
    for case in hardening_cases::cases() {
        for origin in hardening_cases::ORIGINS {
            let (status, headers, body) = send(&app, request(&case, origin)).await;
            hardening_cases::check(&case, origin, status.as_u16(), &headers, &body);
        }
    }
}
