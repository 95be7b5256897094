//! The load benchmark's floor: a bare axum "hello" with none of Palisade's
//! layers, on the same runtime as `palisade-server` (`#[tokio::main]`, the
//! multi-thread scheduler with a worker per core) and allocator (mimalloc), so `cargo xtask bench
//! load` can report the reference service's throughput as a share of what
//! axum alone serves on this machine.
//!
//! `PALISADE_ADDR=127.0.0.1:9000 cargo run --release -p palisade-server --example bare_axum`
//!
//! `GET /health/live` and `GET /me` both answer 200 `ok` (the `/me` route
//! ignores any `Authorization` header), so the benchmark sends the very
//! same requests to this server and to the real one.
//!
//! With `BARE_AXUM_SECURITY_HEADERS=1` both answer what palisade-server's
//! `/health/live` answers instead, byte for byte but the request id: its JSON
//! body and its response headers (the `HeaderPolicy::api()` security headers,
//! `Vary: Origin`, an `X-Request-Id`), made once at start and copied into
//! each response. That is the benchmark's floor for the same bytes: what a
//! response carrying the security headers costs the server, the kernel and
//! the load generator, with none of the work of Palisade's layers.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::get;
use http::header::{CONTENT_TYPE, VARY};
use http::{HeaderMap, HeaderValue};
use palisade_errors::{REQUEST_ID_HEADER, RequestId};
use palisade_headers::HeaderPolicy;

/// The server's allocator: the floor differs from the service by its layers
/// alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn hello() -> &'static str {
    "ok"
}

/// palisade-server's `/health/live` body.
const LIVE_BODY: &str = r#"{"status":"ok"}"#;

/// The headers palisade-server's `/health/live` answers with (but `Date`
/// and `Content-Length`, which hyper writes for both), one request id for
/// every response.
fn palisade_headers() -> Result<HeaderMap, String> {
    let policy = HeaderPolicy::api()
        .build()
        .map_err(|error| error.to_string())?;
    let mut headers = HeaderMap::new();
    policy.apply(&mut headers, None);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(VARY, HeaderValue::from_static("Origin"));
    let id = RequestId::from_random_bytes(uuid::Uuid::new_v4().into_bytes());
    let id = HeaderValue::from_str(id.as_str()).map_err(|error| error.to_string())?;
    headers.insert(REQUEST_ID_HEADER, id);
    Ok(headers)
}

/// The floor's answer: the prepared headers copied (as palisade-server's
/// header layer copies its template) over the body.
fn same_bytes(headers: &HeaderMap) -> Response {
    let mut response = Response::new(Body::from(LIVE_BODY));
    *response.headers_mut() = headers.clone();
    response
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr: SocketAddr = match std::env::var("PALISADE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()
    {
        Ok(addr) => addr,
        Err(error) => {
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("bare_axum: PALISADE_ADDR: {error}");
            }
            return ExitCode::from(2);
        }
    };
    let app = if std::env::var_os("BARE_AXUM_SECURITY_HEADERS").is_some_and(|on| on == "1") {
        let headers = match palisade_headers() {
            Ok(headers) => std::sync::Arc::new(headers),
            Err(error) => {
                #[allow(clippy::print_stderr)] // the operator's one message
                {
                    eprintln!("bare_axum: security headers: {error}");
                }
                return ExitCode::from(2);
            }
        };
        let answer = move || {
            let headers = std::sync::Arc::clone(&headers);
            async move { same_bytes(&headers) }
        };
        Router::new()
            .route("/health/live", get(answer.clone()))
            .route("/me", get(answer))
    } else {
        Router::new()
            .route("/health/live", get(hello))
            .route("/me", get(hello))
    };
    let served = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => axum::serve(listener, app).await,
        Err(error) => Err(error),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("bare_axum: {addr}: {error}");
            }
            ExitCode::FAILURE
        }
    }
}
