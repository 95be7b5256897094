#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(feature = "auth")]
pub mod auth;
mod error;
mod extract;
#[cfg(feature = "headers")]
pub mod headers;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
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
///
/// It sets no fallback of its own: a fallback added after the router's layers
/// would bypass them (no CORS headers on a 404), while axum's default fallback
/// runs through them and its bare 404 is turned into the envelope by
/// [`RequestIdLayer`].
pub fn harden<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(RequestIdLayer::new())
}
