//! The Palisade reference hardened API.
//!
//! Today it serves the health endpoint behind the full adapter base (request
//! ids, the error envelope on every error, panic containment); each Palisade
//! crate adds its layer here as it lands.
#![warn(missing_docs)]

use axum::Router;
use axum::routing::get;
use palisade_axum::{Json, harden};
use serde::Serialize;

/// The liveness answer: the process is up and serving.
#[derive(Debug, Serialize)]
pub struct Liveness {
    /// Always `"ok"` when the endpoint answers at all.
    pub status: &'static str,
}

async fn live() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// The service's router, with the Palisade base applied.
pub fn app() -> Router {
    harden(Router::new().route("/health/live", get(live)))
}
