//! Arbitrary bytes as a refresh request (`Cookie` lines, `Origin`, the
//! custom header, a device id, the body; NUL-separated) → reading it never
//! panics; a token taken from the cookie came with an allowed `Origin` and
//! the exact custom header; a token is never empty, and one that can be
//! written back into `Set-Cookie` reads back the same.

use std::sync::OnceLock;

use http::header::{COOKIE, ORIGIN};
use http::{HeaderMap, HeaderName, HeaderValue};
use palisade_auth_tokens::TokenPolicy;
use palisade_auth_tokens::cookie::{RefreshCookie, RefreshSource};

fn cookie() -> &'static RefreshCookie {
    static COOKIE: OnceLock<RefreshCookie> = OnceLock::new();
    COOKIE.get_or_init(|| {
        let policy = TokenPolicy::new("https://auth.example.com", "api").expect("policy");
        RefreshCookie::new(
            &policy,
            ["https://app.example.com", "http://localhost:3000"],
        )
        .expect("the fuzz cookie builds")
    })
}

/// The `Origin` spellings that name an allowed origin (case aside).
const ALLOWED: [&str; 3] = [
    "https://app.example.com",
    "https://app.example.com:443",
    "http://localhost:3000",
];

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let mut headers = HeaderMap::new();
    let names = [
        COOKIE,
        COOKIE,
        ORIGIN,
        HeaderName::from_static("x-requested-with"),
        HeaderName::from_static("x-device-id"),
    ];
    for name in names {
        let Some(part) = parts.next() else { break };
        if part.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(name, value);
        }
    }
    let body = parts.next().unwrap_or_default();
    let cookie = cookie();
    let Ok(request) = cookie.read_request(&headers, body) else {
        return;
    };
    assert!(!request.token.is_empty(), "an empty token is no token");
    if request.source == RefreshSource::Cookie {
        let origin = headers.get(ORIGIN).expect("a cookie token needs an Origin");
        let origin = String::from_utf8_lossy(origin.as_bytes()).to_ascii_lowercase();
        assert!(
            ALLOWED.contains(&origin.as_str()),
            "accepted Origin {origin:?}"
        );
        let csrf = headers.get("x-requested-with").expect("and the header");
        assert_eq!(csrf, "palisade");
        assert_eq!(headers.get_all(ORIGIN).iter().count(), 1);
    }
    if let Ok(set) = cookie.set_cookie(&request.token) {
        let set = set.to_str().expect("a Set-Cookie value is visible ASCII");
        let value = set
            .strip_prefix("__Host-refresh=")
            .and_then(|rest| rest.split(';').next())
            .expect("name=value; attributes");
        assert_eq!(value, request.token, "written back, it reads the same");
    }
}
