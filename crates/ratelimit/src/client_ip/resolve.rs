//! [`ClientIpResolver`]: whether the peer is a trusted proxy, which element of
//! the forwarding header is the client, and the client's rate-limit key.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;
use serde::Deserialize;

use super::forwarded::{
    ElementsFromRight, ForwardedHeader, Unusable, WalkError, parse_forwarded, parse_x_forwarded_for,
};
use super::net::{IpNet, v6_mask};
use palisade_errors::SecurityEvent;

use crate::{ConfigError, ConfigErrorKind};

/// Most bytes walked from the right before the client's address is found.
/// A proxy chain of a few hops writes well under 1 KiB.
const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most elements (hops) walked from the right before the client's address.
const MAX_ELEMENTS: usize = 64;
/// IPv6 clients are keyed by this prefix unless configured otherwise.
const DEFAULT_IPV6_PREFIX: u8 = 56;
/// Shortest IPv6 key prefix allowed: a /32 is a whole ISP's allocation, so a
/// shorter key would put millions of subscribers in one bucket.
const MIN_IPV6_PREFIX: u8 = 32;

/// Decides which address a request counts against.
///
/// - [`peer_only`](Self::peer_only) (the [`Default`]): the socket peer,
///   always. Every forwarding header is ignored, because without a proxy in
///   front they are written by the client. Use it when clients connect
///   directly.
/// - [`behind_proxies`](Self::behind_proxies): when the peer is inside one of
///   the trusted networks, the configured header is walked from the right
///   past the trusted hops, as described in the [module docs](super).
///
/// It can also be deserialized from a [`ClientIpConfig`] (the same checks
/// run).
///
/// ```
/// use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};
///
/// let resolver = ClientIpResolver::behind_proxies(
///     [IpNet::parse("10.0.0.0/8")?, IpNet::parse("fd00::/8")?],
///     ForwardedHeader::Forwarded,
/// )
/// .ipv6_prefix(64)?;
/// assert_eq!(resolver.header(), Some(ForwardedHeader::Forwarded));
/// assert!(ClientIpResolver::peer_only().ipv6_prefix(16).is_err());
/// # Ok::<(), palisade_ratelimit::ConfigError>(())
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "ClientIpConfig")]
pub struct ClientIpResolver {
    /// `None`: peer only.
    proxies: Option<TrustedProxies>,
    ipv6_prefix: u8,
}

#[derive(Clone, Debug)]
struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl Default for ClientIpResolver {
    /// [`ClientIpResolver::peer_only`].
    fn default() -> ClientIpResolver {
        ClientIpResolver::peer_only()
    }
}

impl ClientIpResolver {
    /// The client is the socket peer; no header is ever read. The secure
    /// default: without a proxy in front, forwarding headers are whatever the
    /// client wrote.
    pub fn peer_only() -> ClientIpResolver {
        ClientIpResolver {
            proxies: None,
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Behind reverse proxies: when the peer is inside `trusted`, the client
    /// is the rightmost address in `header` that is not inside `trusted`.
    ///
    /// List every proxy hop you run (load balancer, ingress, sidecar), and
    /// nothing else: an address wrongly listed lets whoever holds it choose
    /// its IP; a proxy missing from the list becomes "the client", so all
    /// traffic through it shares one bucket. With an empty `trusted` the
    /// header is never read.
    pub fn behind_proxies(
        trusted: impl IntoIterator<Item = IpNet>,
        header: ForwardedHeader,
    ) -> ClientIpResolver {
        ClientIpResolver {
            proxies: Some(TrustedProxies {
                networks: trusted.into_iter().collect(),
                header,
            }),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Keys IPv6 clients by their `/prefix` (default 56, allowed 32–128).
    ///
    /// A subscriber typically gets a /48, /56 or /64, and can use any address
    /// in it: keyed per address, it gets a fresh bucket for each of 2^64 or
    /// more addresses. Shorter prefixes put more subscribers in one bucket
    /// (below /32, a whole ISP), so they are refused; 128 keys each address
    /// and should only be used when clients cannot choose theirs.
    pub fn ipv6_prefix(mut self, prefix: u8) -> Result<ClientIpResolver, ConfigError> {
        if !(MIN_IPV6_PREFIX..=128).contains(&prefix) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidClientIp,
                format!(
                    "ipv6_prefix {prefix} is outside 32..=128: below /32 one key covers a whole ISP's customers, above 128 is not a prefix"
                ),
            ));
        }
        self.ipv6_prefix = prefix;
        Ok(self)
    }

    /// The trusted proxy networks (empty for [`peer_only`](Self::peer_only)).
    pub fn trusted_proxies(&self) -> &[IpNet] {
        self.proxies
            .as_ref()
            .map_or(&[], |proxies| proxies.networks.as_slice())
    }

    /// The header read behind trusted proxies (`None` for
    /// [`peer_only`](Self::peer_only)).
    pub fn header(&self) -> Option<ForwardedHeader> {
        self.proxies.as_ref().map(|proxies| proxies.header)
    }

    /// The client of a request that arrived from the socket address `peer`.
    ///
    /// The peer, unless it is a trusted proxy and the configured header names
    /// a client behind it: then the rightmost listed address outside the
    /// trusted networks (repeated header lines count as one list, in order),
    /// or the leftmost when every listed address is trusted (the request came
    /// from inside). An absent header gives the peer; so does an unusable one
    /// (an element walked that is not an address, `unknown`, an obfuscated
    /// `_name`, empty or over-long; more than 8 KiB or 64 elements walked
    /// before the client), with the reason logged at debug level. Elements
    /// to the left of the client are never looked at, not even to find
    /// where they end (an open quote there changes nothing): they are the
    /// client's own writing.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        match self.header() {
            Some(header) => self.resolve_lines(
                peer,
                headers
                    .get_all(header.header_name())
                    .iter()
                    .map(http::HeaderValue::as_bytes),
            ),
            None => self.resolve_lines(peer, std::iter::empty()),
        }
    }

    /// [`resolve`](Self::resolve) for a framework without `http` 1 header
    /// maps: `lines` are the raw values of the configured
    /// [`header`](Self::header) (every line of it, in order, and no other
    /// header). A byte no header value may hold (a control character other
    /// than tab) in the part walked makes the header unusable: the peer is
    /// used, as for any unusable header. Lines are walked from the right,
    /// element by element, so the work is bounded whatever their size.
    ///
    /// ```
    /// use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};
    ///
    /// let resolver = ClientIpResolver::behind_proxies(
    ///     [IpNet::parse("10.0.0.0/8")?],
    ///     ForwardedHeader::XForwardedFor,
    /// );
    /// let proxy = "10.0.0.1".parse().unwrap();
    /// let lines: [&[u8]; 2] = [b"1.1.1.1", b"203.0.113.7"];
    /// assert_eq!(resolver.resolve_lines(proxy, lines).ip().to_string(), "203.0.113.7");
    /// # Ok::<(), palisade_ratelimit::ConfigError>(())
    /// ```
    pub fn resolve_lines<'a>(
        &self,
        peer: IpAddr,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> ClientIp {
        let peer = peer.to_canonical();
        let ip = match &self.proxies {
            Some(proxies) if proxies.trusts(peer) => match proxies.client_from_lines(lines) {
                Ok(Some(client)) => client,
                Ok(None) => peer,
                Err(unusable) => {
                    tracing::debug!(
                        event = SecurityEvent::InputValidationFail.as_str(),
                        reason = "forwarding_header_unusable",
                        header = %proxies.header,
                        client_ip = %peer,
                        detail = unusable.reason,
                        element = %unusable.element,
                        "forwarding header not usable; keying the request by the proxy's address"
                    );
                    peer
                }
            },
            _ => peer,
        };
        ClientIp {
            ip,
            ipv6_prefix: self.ipv6_prefix,
        }
    }
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(ip))
    }

    /// `Ok(None)` when the header is absent.
    ///
    /// Walked from the right, one element at a time (never a split of the
    /// whole line), so the work per request is bounded by the limits
    /// whatever the header's size. The limits count only what is walked:
    /// the part left of the client's address is the client's own writing,
    /// and letting its size or content decide (a padded header, an open
    /// quote falling back to the peer) would let a client choose to be keyed
    /// as the proxy.
    fn client_from_lines<'a>(
        &self,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Option<IpAddr>, Unusable> {
        let quoted_strings = self.header == ForwardedHeader::Forwarded;
        let lines: Vec<&[u8]> = lines.into_iter().collect();
        let mut walked = 0_usize;
        let mut walked_len = 0_usize;
        let mut leftmost_trusted = None;
        // Lines are joined in order with ", " (RFC 9110 §5.3): the last
        // line holds the nearest hops. Each line is walked on its own, so a
        // quoted string never runs on into the next line.
        for line in lines.iter().rev() {
            let mut elements = ElementsFromRight::new(line, quoted_strings);
            while elements.has_next() {
                if walked >= MAX_ELEMENTS {
                    return Err(Unusable::header("more than 64 hops before the client"));
                }
                let budget = MAX_HEADER_LEN.saturating_sub(walked_len.saturating_add(2));
                let element = match elements.next_within(budget) {
                    None => break,
                    Some(Ok(element)) => element,
                    Some(Err(WalkError::TooLong)) => {
                        return Err(Unusable::header("more than 8 KiB before the client"));
                    }
                    Some(Err(WalkError::Unusable(unusable))) => return Err(unusable),
                };
                walked += 1;
                walked_len = walked_len.saturating_add(element.len() + 2);
                let ip = match self.header {
                    ForwardedHeader::XForwardedFor => parse_x_forwarded_for(element),
                    ForwardedHeader::Forwarded => parse_forwarded(element),
                }
                .map_err(|reason| Unusable::element(reason, element))?
                .to_canonical();
                if !self.trusts(ip) {
                    return Ok(Some(ip));
                }
                leftmost_trusted = Some(ip);
            }
        }
        Ok(leftmost_trusted)
    }
}

/// Configuration for a [`ClientIpResolver`], e.g. from TOML:
///
/// ```toml
/// [client_ip]
/// trusted_proxies = ["10.0.0.0/8", "fd00::/8"]
/// header = "x-forwarded-for"   # or "forwarded"; required with trusted_proxies
/// ipv6_prefix = 56             # the default
/// ```
///
/// Empty (the default) is [`ClientIpResolver::peer_only`]. `trusted_proxies`
/// without `header` is refused (which header to read must be stated, never
/// guessed), and so is `header` without `trusted_proxies` (it would never be
/// read, which is not what whoever wrote it meant).
///
/// ```
/// use palisade_ratelimit::client_ip::{ClientIpConfig, ClientIpResolver};
///
/// let config: ClientIpConfig = serde_json::from_str(
///     r#"{"trusted_proxies": ["10.0.0.0/8"], "header": "forwarded"}"#,
/// )?;
/// let resolver = ClientIpResolver::try_from(config)?;
/// assert_eq!(resolver.trusted_proxies().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientIpConfig {
    /// The networks of your reverse proxies; see
    /// [`ClientIpResolver::behind_proxies`].
    pub trusted_proxies: Vec<IpNet>,
    /// The one header those proxies set; required with `trusted_proxies`.
    pub header: Option<ForwardedHeader>,
    /// See [`ClientIpResolver::ipv6_prefix`]; `None` keeps 56.
    pub ipv6_prefix: Option<u8>,
}

impl TryFrom<ClientIpConfig> for ClientIpResolver {
    type Error = ConfigError;

    fn try_from(config: ClientIpConfig) -> Result<ClientIpResolver, ConfigError> {
        let resolver = match (config.trusted_proxies.is_empty(), config.header) {
            (true, None) => ClientIpResolver::peer_only(),
            (false, Some(header)) => {
                ClientIpResolver::behind_proxies(config.trusted_proxies, header)
            }
            (false, None) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidClientIp,
                    "client_ip: trusted_proxies is set but header is not: name the one header your proxies set (\"x-forwarded-for\" or \"forwarded\"); reading whichever is present lets clients spoof through the other",
                ));
            }
            (true, Some(header)) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidClientIp,
                    format!(
                        "client_ip: header = \"{header}\" is set but trusted_proxies is empty, so it would never be read: list your proxies' networks, or remove header"
                    ),
                ));
            }
        };
        match config.ipv6_prefix {
            Some(prefix) => resolver.ipv6_prefix(prefix),
            None => Ok(resolver),
        }
    }
}

/// The client a request is attributed to, made by
/// [`ClientIpResolver::resolve`] (and only there, so that a value of this
/// type has been through the trusted-proxy rules).
///
/// It carries the resolver's IPv6 prefix, so [`rate_limit_key`](Self::rate_limit_key)
/// needs no argument.
///
/// ```
/// use http::HeaderMap;
/// use palisade_ratelimit::client_ip::ClientIpResolver;
///
/// let resolver = ClientIpResolver::peer_only();
/// let client = resolver.resolve("2001:db8:ab:cd12::1".parse().unwrap(), &HeaderMap::new());
/// assert_eq!(client.to_string(), "2001:db8:ab:cd12::1");
/// assert_eq!(client.rate_limit_key(), "ip6:2001:db8:ab:cd00::/56");
///
/// let mapped = resolver.resolve("::ffff:203.0.113.7".parse().unwrap(), &HeaderMap::new());
/// assert_eq!(mapped.rate_limit_key(), "ip4:203.0.113.7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp {
    /// Never IPv4-mapped IPv6.
    ip: IpAddr,
    ipv6_prefix: u8,
}

impl ClientIp {
    /// The client's address; an IPv4-mapped IPv6 address is given as IPv4.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The IPv6 prefix length [`rate_limit_key`](Self::rate_limit_key) masks to.
    pub fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix
    }

    /// The rate-limit key: `ip4:203.0.113.7` for IPv4, and for IPv6 the
    /// network of the configured prefix, `ip6:2001:db8:ab00::/56`, so that a
    /// client rotating through its own addresses stays in one bucket. The
    /// prefix is part of the key, so changing it never mixes old and new
    /// buckets.
    pub fn rate_limit_key(&self) -> String {
        match self.ip {
            IpAddr::V4(v4) => format!("ip4:{v4}"),
            IpAddr::V6(v6) => {
                let network = Ipv6Addr::from(u128::from(v6) & v6_mask(self.ipv6_prefix));
                format!("ip6:{network}/{}", self.ipv6_prefix)
            }
        }
    }
}

impl fmt::Display for ClientIp {
    /// The address alone (not the key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.ip, f)
    }
}
