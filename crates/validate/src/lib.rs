#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;

// Typed input: ids, PATCH tri-state, strings, URLs, redirects, LIKE, HTML.

// Request limits: body, headers, URL, query, content type, JSON shape, hosts.

// Uploads.

pub use error::{ConfigError, ConfigErrorKind};
