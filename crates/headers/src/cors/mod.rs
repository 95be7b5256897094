//! Strict CORS, following the Fetch standard's CORS protocol.
//!
//! CORS does not protect the server: any non-browser client sends whatever it
//! likes. It decides which *web pages* a user's browser lets read responses
//! (and, with credentials, responses made with the user's cookies). A policy
//! that lets the wrong origin in hands that origin the user's data, so:
//!
//! - origins are parsed into [`Origin`] and compared whole (scheme, host and
//!   port), never by prefix, suffix or regular expression;
//! - the allowed origin is echoed only after it matched, never reflected blindly;
//! - `null`, wildcards and `*` with credentials cannot be configured;
//! - every response says `Vary: Origin`, so a cache never serves one origin's
//!   `Access-Control-Allow-Origin` to another.
//!
//! [`CorsPolicy::evaluate`] turns a request into a [`CorsDecision`]: answer the
//! preflight, refuse it, or forward the request and add a [`CorsResponse`]'s
//! headers to the application's response.

mod builder;
mod config;
mod evaluate;
mod origin;
mod policy;

pub use builder::CorsBuilder;
pub use config::CorsConfig;
pub use evaluate::{CorsDecision, CorsResponse};
pub use origin::Origin;
pub use policy::{CorsPolicy, UnsafeCors};

/// Characters of a rejected value written to logs or error messages.
const MAX_LOGGED_CHARS: usize = 128;

/// At most [`MAX_LOGGED_CHARS`] characters of possibly hostile text, for logs
/// and messages (cut by characters, never by bytes, so it cannot panic).
fn bounded(text: &str) -> String {
    text.chars().take(MAX_LOGGED_CHARS).collect()
}
