//! Which client a request came from, for keying rate limits.
//!
//! A per-IP limit is only as good as the IP it is keyed by. Two mistakes make
//! it worthless:
//!
//! - **Believing a forwarding header from anyone.** `X-Forwarded-For` and
//!   `Forwarded` are plain request headers: a client connecting directly
//!   writes whatever it likes into them and gets a fresh rate-limit bucket per
//!   request. So by default ([`ClientIpResolver::peer_only`]) the client is
//!   the socket peer and every header is ignored. Headers are read only when
//!   the peer is one of the proxies you listed
//!   ([`ClientIpResolver::behind_proxies`]).
//! - **Taking the leftmost address.** Proxies *append* the address they saw,
//!   so in `X-Forwarded-For: 1.1.1.1, 203.0.113.7` the `1.1.1.1` is whatever
//!   the client sent and only `203.0.113.7`, added by your proxy, is known.
//!   The list is walked from the right, skipping your own proxies, and the
//!   first address that is not one of them is the client.
//!
//! Exactly one header is read, the one your proxy sets. Reading "whichever is
//! present" lets a client send the other one, which the proxy passes through
//! untouched. When the header is unusable (malformed, `for=unknown`, an
//! obfuscated identifier, more than 8 KiB or 64 elements walked before the
//! client) the peer — your
//! proxy — is used and the reason is logged at debug level: a guess could be
//! a value the client chose. Both headers are walked from the right, element
//! by element (`Forwarded` quoted strings included), so nothing the client
//! wrote left of your proxies' elements, an open quote or 100 KB of padding,
//! changes which element is read.
//!
//! IPv6 clients are keyed by their /56 ([`ClientIpResolver::ipv6_prefix`]):
//! one subscriber usually gets a /56 or a /64 and can rotate through 2^64 or
//! more addresses, a fresh bucket each. IPv4-mapped IPv6 addresses
//! (`::ffff:203.0.113.7`, what a dual-stack socket reports for IPv4 peers)
//! are treated as the IPv4 address everywhere, so one client has one key.
//!
//! ```
//! use std::net::IpAddr;
//! use http::{HeaderMap, HeaderValue};
//! use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};
//!
//! let resolver = ClientIpResolver::behind_proxies(
//!     [IpNet::parse("10.0.0.0/8")?],
//!     ForwardedHeader::XForwardedFor,
//! );
//! let mut headers = HeaderMap::new();
//! // The client wrote 1.1.1.1; the proxy at 10.0.0.1 appended what it saw.
//! headers.insert("x-forwarded-for", HeaderValue::from_static("1.1.1.1, 203.0.113.7"));
//!
//! let proxy: IpAddr = "10.0.0.1".parse().unwrap();
//! let client = resolver.resolve(proxy, &headers);
//! assert_eq!(client.ip().to_string(), "203.0.113.7");
//! assert_eq!(client.rate_limit_key(), "ip4:203.0.113.7");
//!
//! // The same header from a peer that is not a listed proxy is ignored.
//! let direct: IpAddr = "198.51.100.9".parse().unwrap();
//! assert_eq!(resolver.resolve(direct, &headers).ip(), direct);
//! # Ok::<(), palisade_ratelimit::ConfigError>(())
//! ```

mod forwarded;
mod net;
mod resolve;

pub use forwarded::ForwardedHeader;
pub use net::IpNet;
pub use resolve::{ClientIp, ClientIpConfig, ClientIpResolver};

/// Characters of a rejected value written to logs or error messages.
const MAX_LOGGED_CHARS: usize = 128;

/// At most [`MAX_LOGGED_CHARS`] characters of possibly hostile text, for logs
/// and messages (cut by characters, never by bytes, so it cannot panic).
fn bounded(text: &str) -> String {
    text.chars().take(MAX_LOGGED_CHARS).collect()
}
