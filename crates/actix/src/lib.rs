#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(feature = "apikeys")]
pub mod apikeys;
#[cfg(feature = "auth")]
pub mod auth;
mod compose;
mod decorate;
mod error;
mod harden;
#[cfg(feature = "headers")]
pub mod headers;
mod identity;
#[cfg(feature = "ratelimit")]
pub mod ratelimit;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "validate")]
pub mod validate;

pub use compose::{Hardening, Layered, Stack};
pub use error::ApiError;
pub use harden::{Harden, HardenMiddleware};
pub use identity::AnonymousCaller;
