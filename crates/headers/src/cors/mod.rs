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

/// Request bytes (an `Origin`, a requested method or header name: attacker
/// text) as a log field: printable ASCII kept, every other byte (control
/// characters, `\`, anything non-ASCII) written as `\xNN`, and cut after
/// [`MAX_LOGGED_CHARS`] characters of output (marked by a trailing `...`).
/// The result cannot forge a log line or smuggle a terminal escape.
fn log_safe(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len().min(MAX_LOGGED_CHARS + 3));
    for &byte in bytes {
        let width = if (0x20..0x7f).contains(&byte) && byte != b'\\' {
            1
        } else {
            4
        };
        if text.len() + width > MAX_LOGGED_CHARS {
            text.push_str("...");
            break;
        }
        if width == 1 {
            text.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            text.push_str("\\x");
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_safe_escapes_and_bounds() {
        assert_eq!(log_safe(b"https://a.example"), "https://a.example");
        assert_eq!(log_safe(b"a\tb\\c\xc2\x85"), "a\\x09b\\x5cc\\xc2\\x85");
        let long = [b'a'; 300];
        let logged = log_safe(&long);
        assert!(logged.ends_with("..."));
        assert_eq!(logged.len(), MAX_LOGGED_CHARS + 3);
        // An escape is never cut in half.
        let mut escapes = vec![b'a'; MAX_LOGGED_CHARS - 2];
        escapes.push(b'\n');
        assert_eq!(
            log_safe(&escapes),
            format!("{}...", "a".repeat(MAX_LOGGED_CHARS - 2))
        );
    }
}
