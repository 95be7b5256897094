//! The `headers` feature through a real actix-web `App`: the same CORS table
//! as the core and `palisade-axum`, security headers on every kind of
//! response, per-resource overrides and nonces.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "../../headers/tests/cors_cases.rs"]
mod cors_cases;

use actix_web::body::to_bytes;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, init_service, try_call_service};
use actix_web::{App, HttpResponse, web};
use palisade_actix::Harden;
use palisade_actix::headers::{Cors, SecureHeaders};
use palisade_headers::csp::Csp;
use palisade_headers::{CspNonce, HeaderPolicy, Source};

const HANDLED: &str = "x-handled";

async fn handled() -> HttpResponse {
    HttpResponse::Ok().insert_header((HANDLED, "1")).body("ok")
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: serde_json::Value,
}

/// Calls the app as actix's dispatcher would (an `Err` renders itself) and
/// converts the headers to `http` 1 for the shared assertions.
async fn call<S>(app: &S, request: TestRequest) -> Reply
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = ServiceResponse,
            Error = actix_web::Error,
        >,
{
    let response = match try_call_service(app, request.to_request()).await {
        Ok(response) => response.into_parts().1,
        Err(error) => error.error_response(),
    };
    let status = response.status();
    let mut headers = http::HeaderMap::new();
    for (name, value) in response.headers() {
        headers.append(
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    let body = to_bytes(response.into_body()).await.unwrap();
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

#[actix_web::test]
async fn cors_table_through_actix() {
    let app = init_service(
        App::new()
            .wrap(Cors::new(cors_cases::policy()))
            .wrap(Harden::new())
            .route("/items", web::route().to(handled)),
    )
    .await;
    for case in cors_cases::CASES {
        let mut request = TestRequest::default()
            .method(actix_web::http::Method::from_bytes(case.method.as_bytes()).unwrap())
            .uri("/items");
        for (name, value) in cors_cases::request_headers(case).iter() {
            request = request.append_header((name.as_str(), value.as_bytes()));
        }
        let mut reply = call(&app, request).await;
        let forwarded = reply.headers.remove(HANDLED).is_some();
        if reply.status == StatusCode::FORBIDDEN {
            assert_eq!(
                reply.body["error"]["code"], "cors_rejected",
                "{}",
                case.name
            );
            assert!(
                reply.body["error"]["request_id"].is_string(),
                "{}",
                case.name
            );
        }
        cors_cases::check(
            case,
            cors_cases::Outcome {
                status: reply.status.as_u16(),
                headers: reply.headers,
                forwarded,
            },
        );
    }
}

#[actix_web::test]
async fn cors_headers_reach_framework_errors_too() {
    let app = init_service(
        App::new()
            .wrap(Cors::new(cors_cases::policy()))
            .wrap(Harden::new())
            .route("/items", web::get().to(handled)),
    )
    .await;
    let reply = call(
        &app,
        TestRequest::get()
            .uri("/missing")
            .insert_header(("origin", "https://app.example.com")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body["error"]["code"], "not_found");
    assert_eq!(
        reply.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        reply
            .headers
            .get_all("vary")
            .iter()
            .any(|value| value.to_str().unwrap().contains("Origin"))
    );
}

async fn docs(nonce: Option<web::ReqData<CspNonce>>) -> HttpResponse {
    let nonce = nonce.map(|nonce| nonce.to_string()).unwrap_or_default();
    HttpResponse::Ok()
        .insert_header(("x-test-nonce", nonce.clone()))
        .body(format!("<script nonce=\"{nonce}\"></script>"))
}

async fn items() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("server", "actix-web/4"))
        .insert_header(("x-powered-by", "actix"))
        .body("[]")
}

async fn boom() -> HttpResponse {
    panic!("boom")
}

macro_rules! headers_app {
    () => {{
        let docs_csp = Csp::builder()
            .default_src([Source::SELF])
            .object_src([Source::NONE])
            .base_uri([Source::NONE])
            .frame_ancestors([Source::NONE])
            .nonces(true)
            .build()
            .unwrap();
        let docs_policy = HeaderPolicy::html()
            .csp(docs_csp)
            // Left out on purpose: the app-wide api() layer must not add it back.
            .frame_options(None)
            .build()
            .unwrap();
        init_service(
            App::new()
                .wrap(Harden::new())
                .wrap(SecureHeaders::new(HeaderPolicy::api().build().unwrap()))
                .service(
                    web::resource("/docs")
                        .wrap(SecureHeaders::new(docs_policy))
                        .route(web::get().to(docs)),
                )
                .service(web::resource("/items").route(web::get().to(items)))
                .route("/panic", web::get().to(boom)),
        )
        .await
    }};
}

#[actix_web::test]
async fn every_response_kind_gets_the_api_headers() {
    let app = headers_app!();
    for (request, status) in [
        (TestRequest::get().uri("/items"), StatusCode::OK),
        (TestRequest::get().uri("/missing"), StatusCode::NOT_FOUND),
        (
            TestRequest::delete().uri("/items"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            TestRequest::get().uri("/panic"),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ] {
        let reply = call(&app, request).await;
        assert_eq!(reply.status, status);
        let headers = &reply.headers;
        assert_eq!(
            headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'",
            "{status}"
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.contains_key("strict-transport-security"));
        assert_eq!(headers["cache-control"], "no-store");
        assert!(!headers.contains_key("server"), "{status}");
        assert!(!headers.contains_key("x-powered-by"), "{status}");
        assert!(headers.contains_key("x-request-id"));
    }
}

#[actix_web::test]
async fn per_resource_policy_wins_and_nonce_reaches_header_and_handler() {
    let app = headers_app!();
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let reply = call(&app, TestRequest::get().uri("/docs")).await;
        assert_eq!(reply.status, StatusCode::OK);
        let headers = &reply.headers;
        let nonce = headers["x-test-nonce"].to_str().unwrap().to_owned();
        assert_eq!(nonce.len(), 24, "a 16-byte base64 nonce");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'self'"),
            "the docs policy, not api(): {csp}"
        );
        assert!(
            csp.contains(&format!("script-src 'self' 'nonce-{nonce}'")),
            "{csp}"
        );
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(
            headers["referrer-policy"],
            "strict-origin-when-cross-origin"
        );
        // The per-route policy was applied and the outer one skipped.
        assert!(!headers.contains_key("x-frame-options"));
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a fresh nonce per request");
}

#[actix_web::test]
async fn errors_from_inner_middleware_keep_their_headers_and_get_cors() {
    // An inner middleware refusing with Err (e.g. a limiter's 429) must
    // keep its own Retry-After and still carry the CORS headers, or the
    // browser cannot read the refusal.
    use palisade_actix::ApiError;
    use palisade_errors::{Error, ErrorKind};
    let app = init_service(
        App::new()
            .wrap_fn(|_request, _service| {
                let error: actix_web::Error =
                    ApiError(Error::new(ErrorKind::RateLimited).with_retry_after(7)).into();
                std::future::ready(Err::<ServiceResponse, _>(error))
            })
            .wrap(Cors::new(cors_cases::policy()))
            .wrap(Harden::new())
            .route("/items", web::get().to(handled)),
    )
    .await;
    let reply = call(
        &app,
        TestRequest::get()
            .uri("/items")
            .insert_header(("origin", "https://app.example.com")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.body["error"]["code"], "rate_limited");
    assert_eq!(reply.headers["retry-after"], "7");
    assert_eq!(
        reply.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        reply
            .headers
            .get_all("vary")
            .iter()
            .any(|value| value.to_str().unwrap().contains("Origin"))
    );
}
