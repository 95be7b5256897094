#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(feature = "apikeys")]
pub mod apikeys;
#[cfg(feature = "auth")]
pub mod auth;
mod compose;
mod error;
mod extract;
#[cfg(feature = "headers")]
pub mod headers;
mod identity;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
mod request_id;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "validate")]
pub mod validate;

pub use compose::{CatchPanicService, Hardening};
pub use error::ApiError;
pub use extract::{Json, Path, Query};
pub use identity::AnonymousCaller;
pub use request_id::{RequestIdFuture, RequestIdLayer, RequestIdService};

use axum::Router;

/// Applies the Palisade base to a router: request ids, the error envelope for
/// every error response (including axum's own 404/405/rejections) and panic
/// containment.
///
/// Call it last, after adding routes and other layers, so the base wraps them all.
/// With CORS, security headers, authentication or limits, use [`Hardening`]
/// instead: it puts them in the one order in which every response (a panic's
/// 500 and a refused preflight included) carries the request id, the headers
/// and CORS.
///
/// It sets no fallback of its own: a fallback added after the router's layers
/// would bypass them (no CORS headers on a 404), while axum's default fallback
/// runs through them and its bare 404 is turned into the envelope by
/// [`RequestIdLayer`].
pub fn harden<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Hardening::new().apply(router)
}
