#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod extract;
mod request_id;

pub use error::ApiError;
pub use extract::{Json, Path, Query};
pub use request_id::{RequestIdLayer, RequestIdService};

use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

/// Applies the Palisade base to a router: request ids, the error envelope for
/// every error response (including axum's own 404/405/rejections) and panic
/// containment.
///
/// Call it last, after adding routes and other layers, so the base wraps them all.
pub fn harden<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(RequestIdLayer::new())
}

async fn not_found() -> ApiError {
    ApiError::from(palisade_errors::ErrorKind::NotFound)
}
