//! `Hardening` through a real actix-web `App`, routes registered with
//! `App::route` (the README's way): the shared case table (every response
//! class × allowed, foreign and no `Origin`).

#![cfg(feature = "headers")]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../../tests/hardening_cases.rs"]
mod hardening_cases;

use actix_web::body::to_bytes;
use actix_web::test::{TestRequest, init_service, try_call_service};
use actix_web::{App, web};
use palisade_actix::{ApiError, Hardening};
use palisade_errors::{Error, ErrorKind};
use serde::Deserialize;

#[derive(Deserialize)]
struct NewItem {
    #[allow(dead_code)]
    name: String,
}

async fn create(_item: web::Json<NewItem>) -> &'static str {
    "created"
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

async fn boom() -> &'static str {
    panic!("handler exploded");
}

#[actix_rt::test]
async fn every_response_class_from_every_origin() {
    let app = init_service(
        Hardening::new()
            .security_headers(hardening_cases::header_policy())
            .cors(hardening_cases::cors_policy())
            .apply(
                App::new()
                    .app_data(web::JsonConfig::default().limit(hardening_cases::BODY_LIMIT))
                    .route("/items", web::get().to(|| async { "items" }))
                    .route("/items", web::post().to(create))
                    .route("/unauthorized", web::get().to(unauthorized))
                    .route("/forbidden", web::get().to(forbidden))
                    .route("/limited", web::get().to(limited))
                    .route("/boom", web::get().to(boom)),
            ),
    )
    .await;
    for case in hardening_cases::cases() {
        for origin in hardening_cases::ORIGINS {
            let mut request = TestRequest::default()
                .method(
                    actix_web::http::Method::from_bytes(case.method.as_str().as_bytes()).unwrap(),
                )
                .uri(case.path)
                .set_payload(case.body);
            for (name, value) in &hardening_cases::request_headers(&case, origin) {
                request = request.insert_header((name.as_str(), value.as_bytes()));
            }
            let response = match try_call_service(&app, request.to_request()).await {
                Ok(response) => response.into_parts().1,
                Err(error) => error.error_response(),
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
            hardening_cases::check(&case, origin, status, &headers, &body);
        }
    }
}
