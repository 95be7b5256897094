//! The [`Origin`] type and its parser: the part of CORS that reads
//! attacker-chosen bytes (fuzzed by `fuzz/fuzz_targets/cors_origin.rs`).

use std::net::{Ipv4Addr, Ipv6Addr};

use http::HeaderValue;

use super::bounded;
use crate::error::{ConfigError, ConfigErrorKind};

/// Longest origin accepted. Browsers send short serialized origins; the cap
/// bounds the work an attacker-chosen header costs.
const MAX_ORIGIN_LEN: usize = 2048;
/// Longest DNS name (RFC 1035 §2.3.4, without the trailing dot).
const MAX_HOST_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// A web origin: the `scheme://host[:port]` a browser puts in the `Origin`
/// header, normalized.
///
/// Parsing accepts only what a browser can send for a page that may be
/// granted access:
///
/// - scheme `http` or `https` (any case, stored lowercase);
/// - a host that is lowercase ASCII DNS labels (`[a-z0-9-]`, so internationalized
///   names must be given in punycode), a dotted-quad IPv4 address, or a bracketed
///   IPv6 address (stored in its canonical RFC 5952 form);
/// - an optional port `1`–`65535`, dropped when it is the scheme's default
///   (`https://a.com:443` is `https://a.com`).
///
/// It refuses the empty string, `null` (the opaque origin of sandboxed
/// iframes, `file:` and `data:` documents: allowing it allows all of them),
/// `*` and any wildcard, userinfo (`user@`), anything after the authority
/// (a path, query, fragment or even a trailing `/`), whitespace, control and
/// non-ASCII characters, a trailing dot, and anything over 2048 bytes.
///
/// ```
/// use palisade_headers::Origin;
///
/// let origin = Origin::parse("HTTPS://App.Example.com:443")?;
/// assert_eq!(origin.as_str(), "https://app.example.com");
/// assert_eq!(origin.host(), "app.example.com");
/// assert_eq!(origin.port(), None);
/// assert!(Origin::parse("https://app.example.com/").is_err());
/// assert!(Origin::parse("null").is_err());
/// # Ok::<(), palisade_headers::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    serialized: Box<str>,
    https: bool,
    host: Box<str>,
    port: Option<u16>,
}

impl Origin {
    /// Parses and normalizes an origin; the error (kind
    /// [`ConfigErrorKind::InvalidOrigin`]) names the value and the reason.
    pub fn parse(text: &str) -> Result<Origin, ConfigError> {
        Origin::parse_parts(text).map_err(|reason| {
            ConfigError::new(
                ConfigErrorKind::InvalidOrigin,
                format!("CORS origin {:?} {reason}", bounded(text)),
            )
        })
    }

    /// The origin a request's `Origin` header names, or `None` when the value
    /// is not one that can be allowed (`null`, malformed, non-ASCII...).
    pub fn from_header(value: &HeaderValue) -> Option<Origin> {
        let text = value.to_str().ok()?;
        Origin::parse_parts(text).ok()
    }

    /// The normalized form, `scheme://host[:port]`.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// The host: a lowercase DNS name, a dotted-quad IPv4 address, or an IPv6
    /// address in brackets (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, or `None` when it is the scheme's default (80 or 443).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the scheme is `https`.
    pub(super) fn is_https(&self) -> bool {
        self.https
    }

    /// Whether the host is an IP address rather than a DNS name.
    pub(super) fn has_ip_host(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<Ipv4Addr>().is_ok()
    }

    /// A potentially trustworthy loopback host (W3C Secure Contexts §3.2):
    /// `localhost` and `*.localhost`, `127.0.0.0/8` and `[::1]`. Traffic to
    /// these never leaves the machine, so plain http there is not exposed to
    /// a network attacker.
    pub(super) fn is_loopback(&self) -> bool {
        self.host.as_ref() == "localhost"
            || self.host.ends_with(".localhost")
            || self.host.as_ref() == "[::1]"
            || self
                .host
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether `self` is `https://<one or more labels>.<parent host>` with the
    /// parent's scheme and port. The `.` before the parent host is required,
    /// so `notexample.org` and `example.org.evil.com` never match `example.org`.
    pub(super) fn is_subdomain_of(&self, parent: &Origin) -> bool {
        self.https == parent.https
            && self.port == parent.port
            && self
                .host
                .strip_suffix(parent.host.as_ref())
                .and_then(|labels| labels.strip_suffix('.'))
                .is_some_and(|labels| !labels.is_empty())
    }

    fn parse_parts(text: &str) -> Result<Origin, &'static str> {
        if text.is_empty() {
            return Err("is empty");
        }
        if text.len() > MAX_ORIGIN_LEN {
            return Err("is longer than 2048 bytes");
        }
        // Browsers send the ASCII serialization. Anything else is either not
        // from a browser or an attempt to slip past a comparison (a tab or
        // space that one layer trims and another does not).
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "contains whitespace, control or non-ASCII characters (give internationalized names in punycode)",
            );
        }
        if text.eq_ignore_ascii_case("null") {
            return Err(
                "is the opaque origin `null`, sent by sandboxed iframes, file: and data: documents and cross-origin redirects: allowing it allows every one of them",
            );
        }
        if text.contains('*') {
            return Err(
                "contains a wildcard: list the origins, or use allow_subdomains_of for a domain's subdomains",
            );
        }
        let (scheme, authority) = text
            .split_once("://")
            .ok_or("is not scheme://host[:port]")?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err("does not use the http or https scheme");
        };
        // `https://app.example.com@evil.net` is a URL for evil.net: userinfo
        // is how a look-alike origin is written. Browsers never send it.
        if authority.contains('@') {
            return Err(
                "contains userinfo (user@): browsers never send it and it can disguise the real host",
            );
        }
        // The WHATWG URL parser treats `\` like `/` for http(s).
        if authority.contains(['/', '?', '#', '\\']) {
            return Err(
                "has a path, query or fragment (an origin ends after the host and port, without a trailing /)",
            );
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (address, rest) = bracketed
                .split_once(']')
                .ok_or("has an unterminated IPv6 address")?;
            let address: Ipv6Addr = address.parse().map_err(|_| "has an invalid IPv6 address")?;
            let port = if rest.is_empty() {
                None
            } else {
                Some(
                    rest.strip_prefix(':')
                        .ok_or("has text after the IPv6 address")?,
                )
            };
            (format!("[{address}]"), port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            (parse_host(host)?, port)
        };
        let port = match port {
            None => None,
            Some(digits) => {
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err("has a port that is not 1 to 5 digits");
                }
                match digits.parse::<u16>() {
                    Ok(0) | Err(_) => return Err("has a port outside 1-65535"),
                    Ok(443) if https => None,
                    Ok(80) if !https => None,
                    Ok(port) => Some(port),
                }
            }
        };
        let scheme = if https { "https" } else { "http" };
        let serialized = match port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        Ok(Origin {
            serialized: serialized.into(),
            https,
            host: host.into(),
            port,
        })
    }
}

/// A DNS name or dotted-quad IPv4 address, lowercased.
fn parse_host(host: &str) -> Result<String, &'static str> {
    if host.is_empty() {
        return Err("has no host");
    }
    if host.len() > MAX_HOST_LEN {
        return Err("has a host longer than 253 characters");
    }
    let host = host.to_ascii_lowercase();
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty DNS label (a leading, trailing or doubled dot)");
        }
        if label.len() > MAX_LABEL_LEN {
            return Err("has a DNS label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("has a host with characters other than a-z, 0-9, - and .");
        }
    }
    // A host whose last label is a number is an IPv4 address to a browser,
    // which rewrites short and hex forms (`127.1`, `0x7f.0.0.1`) to a dotted
    // quad before sending it. Only the canonical form can match what is sent.
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        match host.parse::<Ipv4Addr>() {
            Ok(ip) if ip.to_string() == host => {}
            _ => {
                return Err(
                    "has a host that looks like an IPv4 address but is not a canonical dotted quad",
                );
            }
        }
    }
    Ok(host)
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.serialized)
    }
}

impl std::str::FromStr for Origin {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Origin, ConfigError> {
        Origin::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    #[test]
    fn subdomain_matching_is_label_bounded() {
        let parent = origin("https://example.org");
        assert!(origin("https://api.example.org").is_subdomain_of(&parent));
        assert!(origin("https://a.b.example.org").is_subdomain_of(&parent));
        assert!(!origin("https://example.org").is_subdomain_of(&parent));
        assert!(!origin("https://notexample.org").is_subdomain_of(&parent));
        assert!(!origin("https://example.org.evil.com").is_subdomain_of(&parent));
        assert!(!origin("http://api.example.org").is_subdomain_of(&parent));
        assert!(!origin("https://api.example.org:8443").is_subdomain_of(&parent));
    }

    #[test]
    fn loopback_hosts() {
        for text in [
            "http://localhost:3000",
            "http://dev.localhost",
            "http://127.0.0.1",
            "http://127.9.9.9:81",
            "http://[::1]:3000",
        ] {
            assert!(origin(text).is_loopback(), "{text}");
        }
        for text in [
            "http://localhost.evil.com",
            "http://10.0.0.1",
            "http://[::2]",
            "http://notlocalhost",
        ] {
            assert!(!origin(text).is_loopback(), "{text}");
        }
    }

    #[test]
    fn messages_are_bounded() {
        let long = format!("https://{}", "a".repeat(5000));
        let error = Origin::parse(&long).unwrap_err();
        assert!(error.to_string().len() < 400, "{}", error.to_string().len());
    }
}
