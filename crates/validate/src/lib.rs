#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;

// Typed input: ids, PATCH tri-state, strings, URLs, redirects, LIKE, HTML.
mod ids;
mod patch;
pub use ids::{HexId, HexIdAnyCase, IdError, IdErrorKind, IdRejection, PathId, Ulid, Uuid};
pub use patch::{Patch, UpdateMode, UpdateRefused, UpdateRules};

// Request limits: body, headers, URL, query, content type, JSON shape, hosts.
pub mod content_type;
pub mod hosts;
pub mod json;
pub mod limits;
mod refusal;

// Uploads.

pub use error::{ConfigError, ConfigErrorKind};
pub use refusal::Refusal;
