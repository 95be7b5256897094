//! [`TrustedHosts`]: the `Host` a request names must be one of ours (400
//! otherwise).
//!
//! Why: a service that builds absolute URLs from `Host` (password-reset
//! links, redirects, cache keys) can be pointed at an attacker's domain by
//! a request that names it (host-header injection, cache poisoning).
//!
//! Rules:
//! - entries are exact names (`api.example.com`), `*.` patterns
//!   (`*.example.com`: one or more labels under `example.com`, not
//!   `example.com` itself), IPv4 literals or bracketed IPv6 literals
//!   (`[::1]`, compared in canonical form, so `[0:0::1]` is the same),
//!   each optionally with a port;
//! - an entry without a port matches the host on any port; an entry with a
//!   port (`localhost:8080`) only that port, and not a request that names
//!   no port (list `example.com` for the default ports);
//! - names compare in ASCII lowercase; one trailing dot is removed on both
//!   sides (`example.com.` is the same DNS name as `example.com`);
//!   non-ASCII names are refused (clients send IDNs as `xn--` labels);
//! - the host is read from the request URI's authority when there is one
//!   (HTTP/2 `:authority`, an HTTP/1.1 absolute-form target) **and** from
//!   `Host`; each present must be allowed, one of them must be present, and
//!   two `Host` headers are refused;
//! - `X-Forwarded-Host` is ignored unless the caller says the peer is a
//!   trusted proxy; then it must be a single host (no list) and replaces
//!   `Host` and the authority in the check;
//! - exempt paths ([`PathPattern`]) skip the check (a load balancer's health
//!   probe addresses the instance by IP);
//! - an empty allow-list is a [`ConfigError`] in production; elsewhere it
//!   accepts any host (a development convenience, logged when built).

use http::HeaderName;
use http::header::HOST;
use http::request::Parts;
use palisade_errors::ErrorKind;

use crate::limits::PathPattern;
use crate::{ConfigError, ConfigErrorKind, Refusal};

/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

#[derive(Clone, Debug, PartialEq, Eq)]
enum Name {
    Exact(String),
    /// `*.example.com`: the suffix `.example.com`.
    Subdomains(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: Name,
    port: Option<u16>,
}

/// The host allow-list. See the [module docs](self) for the rules.
///
/// ```
/// use palisade_validate::hosts::TrustedHosts;
///
/// let hosts = TrustedHosts::builder()
///     .allow("api.example.com")?
///     .allow("*.example.org")?
///     .allow("localhost:8080")?
///     .exempt_path("/health/*")?
///     .build(true)?;
/// assert!(hosts.is_allowed("API.example.com:443"));
/// assert!(hosts.is_allowed("eu.example.org"));
/// assert!(!hosts.is_allowed("example.org"));
/// assert!(!hosts.is_allowed("localhost:9090"));
/// assert!(!hosts.is_allowed("evil.com"));
/// // An empty allow-list cannot run in production.
/// assert!(TrustedHosts::builder().build(true).is_err());
/// # Ok::<(), palisade_validate::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedHosts {
    entries: Vec<Entry>,
    exempt: Vec<PathPattern>,
    any: bool,
}

/// Builds [`TrustedHosts`].
#[derive(Clone, Debug, Default)]
pub struct TrustedHostsBuilder {
    entries: Vec<Entry>,
    exempt: Vec<PathPattern>,
}

impl TrustedHostsBuilder {
    /// Allows `entry` (`name`, `*.name`, `name:port`, `[v6]:port`, ...).
    pub fn allow(mut self, entry: &str) -> Result<Self, ConfigError> {
        let invalid = || {
            ConfigError::new(
                ConfigErrorKind::InvalidHost,
                "trusted host: must be `name`, `*.name`, an IP literal, each with an optional `:port`",
            )
        };
        let (wildcard, rest) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let (host, port) = split_host(rest).ok_or_else(invalid)?;
        let name = if wildcard {
            if host.starts_with('[') {
                return Err(invalid());
            }
            Name::Subdomains(format!(".{host}"))
        } else {
            Name::Exact(host)
        };
        self.entries.push(Entry { name, port });
        Ok(self)
    }

    /// Skips the check for paths matching `pattern` (`/health/*`, `/ready`).
    pub fn exempt_path(mut self, pattern: &str) -> Result<Self, ConfigError> {
        self.exempt.push(PathPattern::parse(pattern)?);
        Ok(self)
    }

    /// The allow-list. Empty: a [`ConfigError`] when `production`, else a
    /// list that accepts any host.
    pub fn build(self, production: bool) -> Result<TrustedHosts, ConfigError> {
        let any = self.entries.is_empty();
        if any && production {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidHost,
                "trusted hosts: the allow-list is empty (required in production)",
            ));
        }
        if any {
            tracing::warn!(
                "trusted hosts: empty allow-list, any Host is accepted (not production)"
            );
        }
        Ok(TrustedHosts {
            entries: self.entries,
            exempt: self.exempt,
            any,
        })
    }
}

impl TrustedHosts {
    /// A builder with no entries.
    pub fn builder() -> TrustedHostsBuilder {
        TrustedHostsBuilder::default()
    }

    /// Whether `host` (`name[:port]`, as in `Host`) is allowed.
    pub fn is_allowed(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if self.any {
            return true;
        }
        self.entries.iter().any(|entry| {
            let name_ok = match &entry.name {
                Name::Exact(exact) => *exact == name,
                Name::Subdomains(suffix) => {
                    name.len() > suffix.len() && name.ends_with(suffix.as_str())
                }
            };
            name_ok && (entry.port.is_none() || entry.port == port)
        })
    }

    /// Whether `path` skips the check.
    pub fn is_exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|pattern| pattern.matches(path))
    }

    /// Checks the request's host (see the [module docs](self)).
    /// `forwarded_trusted`: the adapter established that the peer is a
    /// trusted proxy, so `X-Forwarded-Host` is read.
    pub fn check(&self, parts: &Parts, forwarded_trusted: bool) -> Result<(), Refusal> {
        if self.is_exempt(parts.uri.path()) {
            return Ok(());
        }
        let refuse = |reason| Err(Refusal::new(ErrorKind::BadRequest, reason, "host"));
        if forwarded_trusted {
            let mut forwarded = parts.headers.get_all(X_FORWARDED_HOST).iter();
            match (forwarded.next(), forwarded.next()) {
                (None, _) => {}
                (Some(value), None) => {
                    let host = value.to_str().unwrap_or_default();
                    if host.contains(',') {
                        return refuse("forwarded_host_ambiguous");
                    }
                    return if self.is_allowed(host.trim()) {
                        Ok(())
                    } else {
                        refuse("untrusted_host")
                    };
                }
                _ => return refuse("forwarded_host_ambiguous"),
            }
        }
        let mut hosts = parts.headers.get_all(HOST).iter();
        let header = match (hosts.next(), hosts.next()) {
            (header, None) => header,
            _ => return refuse("several_hosts"),
        };
        let authority = parts.uri.authority().map(http::uri::Authority::as_str);
        if header.is_none() && authority.is_none() {
            // HTTP/1.0 may omit `Host`, but with an allow-list there is
            // nothing to check: refused like an HTTP/1.1 request without one.
            return refuse("missing_host");
        }
        let header_ok = header.is_none_or(|value| {
            value
                .to_str()
                .ok()
                .is_some_and(|host| self.is_allowed(host))
        });
        let authority_ok = authority.is_none_or(|host| self.is_allowed(host));
        if header_ok && authority_ok {
            Ok(())
        } else {
            refuse("untrusted_host")
        }
    }
}

/// `name[:port]` → the normalised name and the port; `None` for anything
/// that is not a host.
fn split_host(host: &str) -> Option<(String, Option<u16>)> {
    if host.is_empty() || !host.is_ascii() {
        return None;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        // Canonical text, so `[0:0::1]` and `[::1]` are one host.
        let address = inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{address}]"), port)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (host.to_owned(), None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    let mut name = name.to_ascii_lowercase();
    if !name.starts_with('[') {
        if name.ends_with('.') {
            name.pop();
        }
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            && name.len() <= 253;
        if !valid {
            return None;
        }
    }
    Some((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> TrustedHosts {
        TrustedHosts::builder()
            .allow("api.example.com")
            .and_then(|b| b.allow("*.example.org"))
            .and_then(|b| b.allow("localhost:8080"))
            .and_then(|b| b.allow("[::1]"))
            .and_then(|b| b.allow("10.0.0.1:443"))
            .and_then(|b| b.allow("trailing.example."))
            .and_then(|b| b.exempt_path("/health/*"))
            .and_then(|b| b.build(true))
            .unwrap()
    }

    fn parts(host: Option<&str>, uri: &str) -> Parts {
        let mut request = http::Request::builder().uri(uri);
        if let Some(host) = host {
            request = request.header(HOST, host);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn exact_wildcard_port_ipv6_and_trailing_dot() {
        let hosts = hosts();
        for allowed in [
            "api.example.com",
            "API.EXAMPLE.COM",
            "api.example.com:1234",
            "api.example.com.",
            "api.example.com.:80",
            "a.example.org",
            "a.b.example.org:8443",
            "localhost:8080",
            "[::1]",
            "[::1]:3000",
            "[0:0:0:0:0:0:0:1]",
            "[0::1]:80",
            "10.0.0.1:443",
            "trailing.example",
        ] {
            assert!(hosts.is_allowed(allowed), "{allowed}");
        }
        for refused in [
            "evil.com",
            "api.example.com.evil.com",
            "evilapi.example.com",
            "example.org",
            ".example.org",
            "xexample.org",
            "localhost",
            "localhost:8081",
            "10.0.0.1",
            "10.0.0.1:80",
            "[::2]",
            "[::1",
            "api.example.com:",
            "api.example.com:99999",
            "api.example.com:+80",
            "api.example.com..",
            "api example.com",
            "api.exämple.com",
            "",
            "*.example.org",
            "user@api.example.com",
        ] {
            assert!(!hosts.is_allowed(refused), "{refused}");
        }
    }

    /// Host-header injection: a reset link built from `Host: evil.com`.
    #[test]
    fn host_header_injection_is_400() {
        let hosts = hosts();
        let refused = hosts
            .check(&parts(Some("evil.com"), "/reset"), false)
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::BadRequest);
        assert_eq!(
            (refused.reason(), refused.field()),
            ("untrusted_host", "host")
        );
        assert!(
            hosts
                .check(&parts(Some("api.example.com"), "/reset"), false)
                .is_ok()
        );
        assert!(hosts.check(&parts(None, "/reset"), false).is_err());
    }

    /// HTTP/2 `:authority` (the URI's authority) is checked as well as `Host`.
    #[test]
    fn authority_is_checked_too() {
        let hosts = hosts();
        assert!(
            hosts
                .check(&parts(None, "https://api.example.com/x"), false)
                .is_ok()
        );
        assert!(
            hosts
                .check(&parts(None, "https://evil.com/x"), false)
                .is_err()
        );
        assert!(
            hosts
                .check(&parts(Some("api.example.com"), "https://evil.com/x"), false)
                .is_err()
        );
        assert!(
            hosts
                .check(&parts(Some("evil.com"), "https://api.example.com/x"), false)
                .is_err()
        );
    }

    /// Spoofed `X-Forwarded-Host` from a direct client is ignored; from a
    /// trusted proxy it is the host checked, and must be one value.
    #[test]
    fn forwarded_host_only_from_a_trusted_proxy() {
        let hosts = hosts();
        let mut spoofed = parts(Some("api.example.com"), "/");
        spoofed
            .headers
            .insert(X_FORWARDED_HOST, http::HeaderValue::from_static("evil.com"));
        assert!(hosts.check(&spoofed, false).is_ok());
        assert!(hosts.check(&spoofed, true).is_err());
        let mut proxied = parts(Some("backend:9000"), "/");
        proxied.headers.insert(
            X_FORWARDED_HOST,
            http::HeaderValue::from_static("api.example.com"),
        );
        assert!(hosts.check(&proxied, true).is_ok());
        assert!(hosts.check(&proxied, false).is_err());
        proxied.headers.insert(
            X_FORWARDED_HOST,
            http::HeaderValue::from_static("api.example.com, evil.com"),
        );
        assert_eq!(
            hosts.check(&proxied, true).unwrap_err().reason(),
            "forwarded_host_ambiguous"
        );
    }

    #[test]
    fn two_host_headers_are_refused_and_health_is_exempt() {
        let hosts = hosts();
        let mut twice = parts(Some("api.example.com"), "/");
        twice
            .headers
            .append(HOST, http::HeaderValue::from_static("evil.com"));
        assert_eq!(
            hosts.check(&twice, false).unwrap_err().reason(),
            "several_hosts"
        );
        assert!(
            hosts
                .check(&parts(Some("10.1.2.3"), "/health/live"), false)
                .is_ok()
        );
        assert!(
            hosts
                .check(&parts(Some("10.1.2.3"), "/healthz"), false)
                .is_err()
        );
    }

    #[test]
    fn entries_and_empty_lists_are_checked_when_built() {
        for bad in [
            "",
            "*",
            "*.",
            "a.*.com",
            "[::1",
            "host:port",
            "ex ample.com",
            "*.[::1]",
        ] {
            assert!(TrustedHosts::builder().allow(bad).is_err(), "{bad}");
        }
        let error = TrustedHosts::builder().build(true).unwrap_err();
        assert_eq!(error.kind(), ConfigErrorKind::InvalidHost);
        let dev = TrustedHosts::builder().build(false).unwrap();
        assert!(dev.is_allowed("anything.test"));
    }
}
