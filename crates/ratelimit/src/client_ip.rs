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
//! obfuscated identifier, longer than 8 KiB or 64 elements) the peer — your
//! proxy — is used and the reason is logged at debug level: a guess could be
//! a value the client chose.
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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use http::{HeaderMap, HeaderName};
use serde::Deserialize;

use crate::ConfigError;

/// Most bytes walked from the right before the client's address is found.
/// A proxy chain of a few hops writes well under 1 KiB.
const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most elements (hops) walked from the right before the client's address.
const MAX_ELEMENTS: usize = 64;
/// Longest node (address and port) accepted:
/// `[0000:0000:0000:0000:0000:ffff:255.255.255.255]:65535` is 53 bytes.
const MAX_NODE_LEN: usize = 64;
/// Characters of a rejected value written to logs or error messages.
const MAX_LOGGED_CHARS: usize = 128;
/// IPv6 clients are keyed by this prefix unless configured otherwise.
const DEFAULT_IPV6_PREFIX: u8 = 56;
/// Shortest IPv6 key prefix allowed: a /32 is a whole ISP's allocation, so a
/// shorter key would put millions of subscribers in one bucket.
const MIN_IPV6_PREFIX: u8 = 32;

/// At most [`MAX_LOGGED_CHARS`] characters of possibly hostile text, for logs
/// and messages (cut by characters, never by bytes, so it cannot panic).
fn bounded(text: &str) -> String {
    text.chars().take(MAX_LOGGED_CHARS).collect()
}

fn bounded_bytes(bytes: &[u8]) -> String {
    bounded(&String::from_utf8_lossy(bytes))
}

/// The netmask of an IPv4 `/prefix` (`prefix` ≤ 32).
fn v4_mask(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(u32::from(32_u8.saturating_sub(prefix)))
        .unwrap_or(0)
}

/// The netmask of an IPv6 `/prefix` (`prefix` ≤ 128).
fn v6_mask(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(u32::from(128_u8.saturating_sub(prefix)))
        .unwrap_or(0)
}

/// A network in CIDR notation, such as the addresses of your reverse proxies.
///
/// [`IpNet::parse`] accepts `10.0.0.0/8`, `2001:db8::/32` and a bare address
/// (`10.0.0.7` is `10.0.0.7/32`, `::1` is `::1/128`). It refuses:
///
/// - **host bits after the prefix** (`10.0.0.1/8`): such a value is usually a
///   typo for either the host `10.0.0.1` or the network `10.0.0.0/8`, and
///   silently picking the network would trust 16 million addresses where one
///   was meant. The error names both readings;
/// - **a `/0`** (`0.0.0.0/0`, `::/0`): trusting every address as a proxy lets
///   every client choose the IP it is limited by;
/// - whitespace, zone ids (`fe80::1%eth0`), IPv4 octets with leading zeros
///   (`010.0.0.1`, octal to some parsers) and prefixes out of range.
///
/// IPv4-mapped IPv6 networks (`::ffff:10.0.0.0/104`) are stored as the IPv4
/// network they denote (`10.0.0.0/8`), and [`contains`](Self::contains)
/// treats an IPv4-mapped address as its IPv4 address, so a dual-stack socket
/// reporting `::ffff:10.0.0.1` still matches `10.0.0.0/8`.
///
/// ```
/// use palisade_ratelimit::client_ip::IpNet;
///
/// let proxies: IpNet = "10.0.0.0/8".parse()?;
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(proxies.contains("::ffff:10.1.2.3".parse().unwrap()));
/// assert!(!proxies.contains("11.0.0.1".parse().unwrap()));
/// assert_eq!(IpNet::parse("::1")?.to_string(), "::1/128");
/// assert!(IpNet::parse("10.0.0.1/8").is_err());
/// # Ok::<(), palisade_ratelimit::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNet {
    /// The network address: host bits are zero, never IPv4-mapped IPv6.
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network `address/prefix`, checked like [`IpNet::parse`].
    pub fn new(address: IpAddr, prefix: u8) -> Result<IpNet, ConfigError> {
        IpNet::checked(address, prefix)
            .map_err(|reason| ConfigError::new(format!("CIDR {address}/{prefix} {reason}")))
    }

    /// Parses `address/prefix` or a bare address; the error names the value
    /// and the reason.
    pub fn parse(text: &str) -> Result<IpNet, ConfigError> {
        IpNet::parse_parts(text)
            .map_err(|reason| ConfigError::new(format!("CIDR {:?} {reason}", bounded(text))))
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length: 1–32 for IPv4, 1–128 for IPv6.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this network. An IPv4-mapped IPv6 address is
    /// matched as its IPv4 address; otherwise IPv4 addresses only match IPv4
    /// networks and IPv6 only IPv6.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                u32::from(ip) & v4_mask(self.prefix) == u32::from(network)
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                u128::from(ip) & v6_mask(self.prefix) == u128::from(network)
            }
            _ => false,
        }
    }

    fn parse_parts(text: &str) -> Result<IpNet, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, digits)) => {
                if digits.is_empty()
                    || digits.len() > 3
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err("has a prefix length that is not 1 to 3 digits".to_owned());
                }
                let prefix = digits
                    .parse::<u8>()
                    .map_err(|_| "has a prefix length above 128".to_owned())?;
                (address, Some(prefix))
            }
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            "is not an IPv4 or IPv6 address with an optional /prefix (no spaces, zone ids or leading zeros)"
                .to_owned()
        })?;
        let prefix = prefix.unwrap_or(match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        });
        IpNet::checked(address, prefix)
    }

    fn checked(address: IpAddr, prefix: u8) -> Result<IpNet, String> {
        let longest = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > longest {
            return Err(format!("has a prefix length above {longest}"));
        }
        // `::ffff:a.b.c.d/(96 + n)` is the IPv4 network `a.b.c.d/n`; storing
        // it as IPv4 lets it match the IPv4 form of the same peers.
        let (network, prefix) = match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (address, prefix),
            },
            IpAddr::V4(_) => (address, prefix),
        };
        if prefix == 0 {
            return Err(
                "is /0, every address: trusting it lets any client choose the IP it is limited by"
                    .to_owned(),
            );
        }
        let masked = match network {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & v4_mask(prefix))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & v6_mask(prefix))),
        };
        if masked != network {
            return Err(format!(
                "has bits set after the /{prefix} prefix: write {masked}/{prefix} for the network or {network} for the one host"
            ));
        }
        Ok(IpNet { network, prefix })
    }
}

impl FromStr for IpNet {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<IpNet, ConfigError> {
        IpNet::parse(text)
    }
}

impl TryFrom<String> for IpNet {
    type Error = ConfigError;

    fn try_from(text: String) -> Result<IpNet, ConfigError> {
        IpNet::parse(&text)
    }
}

impl fmt::Display for IpNet {
    /// `network/prefix`, always with the prefix (`10.0.0.7/32`); parses back
    /// to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The one forwarding header your proxies set, and the only one read.
///
/// Configure the header your outermost proxy *overwrites or appends to*. A
/// resolver never falls back to the other header: if the proxy appends to
/// `X-Forwarded-For` but passes `Forwarded` through untouched, a client could
/// otherwise write its chosen address into `Forwarded`.
///
/// Deserializes from `"x-forwarded-for"` or `"forwarded"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`: the de facto standard, set
    /// by nginx, HAProxy, cloud load balancers. Elements are IPv4 or IPv6
    /// addresses, optionally `IPv4:port` or `[IPv6]:port`.
    XForwardedFor,
    /// `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"`
    /// (RFC 7239). Only the `for` parameter is used.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name (`x-forwarded-for` or `forwarded`).
    pub fn header_name(self) -> HeaderName {
        match self {
            ForwardedHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            ForwardedHeader::Forwarded => http::header::FORWARDED,
        }
    }
}

impl fmt::Display for ForwardedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        })
    }
}

/// Decides which address a request counts against.
///
/// - [`peer_only`](Self::peer_only) (the [`Default`]): the socket peer,
///   always. Every forwarding header is ignored, because without a proxy in
///   front they are written by the client. Use it when clients connect
///   directly.
/// - [`behind_proxies`](Self::behind_proxies): when the peer is inside one of
///   the trusted networks, the configured header is walked from the right
///   past the trusted hops, as described in the [module docs](self).
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

/// Why a forwarding header could not be used; logged, never returned.
struct Unusable {
    reason: &'static str,
    /// The offending element (bounded), or empty when the whole header is.
    element: String,
}

impl Unusable {
    fn header(reason: &'static str) -> Unusable {
        Unusable {
            reason,
            element: String::new(),
        }
    }

    fn element(reason: &'static str, element: &[u8]) -> Unusable {
        Unusable {
            reason,
            element: bounded_bytes(element),
        }
    }
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
            return Err(ConfigError::new(format!(
                "ipv6_prefix {prefix} is outside 32..=128: below /32 one key covers a whole ISP's customers, above 128 is not a prefix"
            )));
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
    /// `_name`, empty or over-long; a header over 8 KiB or 64 elements), with
    /// the reason logged at debug level. Elements to the left of the client
    /// are never looked at: they are the client's own writing.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        let peer = peer.to_canonical();
        let ip = match &self.proxies {
            Some(proxies) if proxies.trusts(peer) => match proxies.client_from_header(headers) {
                Ok(Some(client)) => client,
                Ok(None) => peer,
                Err(unusable) => {
                    tracing::debug!(
                        event = "client_ip_header_unusable",
                        header = %proxies.header,
                        peer = %peer,
                        reason = unusable.reason,
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
    /// The limits count only what is walked, from the right: the part left
    /// of the client's address is the client's own writing, and letting its
    /// size decide (a padded header falling back to the peer) would let a
    /// client choose to be keyed as the proxy.
    fn client_from_header(&self, headers: &HeaderMap) -> Result<Option<IpAddr>, Unusable> {
        let quoted_strings = self.header == ForwardedHeader::Forwarded;
        let lines: Vec<&[u8]> = headers
            .get_all(self.header.header_name())
            .iter()
            .map(|line| line.as_bytes())
            .collect();
        let mut walked = 0_usize;
        let mut walked_len = 0_usize;
        let mut leftmost_trusted = None;
        let mut elements: Vec<&[u8]> = Vec::new();
        // Lines are joined in order with ", " (RFC 9110 §5.3): the last
        // line holds the nearest hops. Each line is split on its own, so a
        // quoted string never runs on into the next line.
        for line in lines.iter().rev() {
            elements.clear();
            split_list(line, b',', quoted_strings, &mut elements)?;
            for element in elements.iter().rev() {
                walked += 1;
                walked_len = walked_len.saturating_add(element.len() + 2);
                if walked > MAX_ELEMENTS {
                    return Err(Unusable::header("more than 64 hops before the client"));
                }
                if walked_len > MAX_HEADER_LEN {
                    return Err(Unusable::header("more than 8 KiB before the client"));
                }
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

/// Appends the `delimiter`-separated parts of `text` to `parts`. With
/// `quoted_strings`, delimiters inside `"..."` (with `\` escapes) do not
/// split, and an unterminated quoted string is an error: where it ends is
/// then anyone's guess.
fn split_list<'a>(
    text: &'a [u8],
    delimiter: u8,
    quoted_strings: bool,
    parts: &mut Vec<&'a [u8]>,
) -> Result<(), Unusable> {
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (index, &byte) in text.iter().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_quotes = false;
            }
        } else if quoted_strings && byte == b'"' {
            in_quotes = true;
        } else if byte == delimiter {
            parts.push(text.get(start..index).unwrap_or_default());
            start = index + 1;
        }
    }
    if in_quotes {
        return Err(Unusable::element("an unterminated quoted string", text));
    }
    parts.push(text.get(start..).unwrap_or_default());
    Ok(())
}

/// Without the optional whitespace (SP, HTAB) HTTP allows around list
/// elements and parameters.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = bytes.iter().position(|byte| !is_ows(byte));
    let end = bytes.iter().rposition(|byte| !is_ows(byte));
    match (start, end) {
        (Some(start), Some(end)) => bytes.get(start..=end).unwrap_or_default(),
        _ => &[],
    }
}

/// An RFC 9110 `tchar`.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// One `X-Forwarded-For` element: `IPv4`, `IPv6`, `IPv4:port` or
/// `[IPv6]:port`, surrounding whitespace ignored.
fn parse_x_forwarded_for(element: &[u8]) -> Result<IpAddr, &'static str> {
    let node = trim_ows(element);
    if node.is_empty() {
        return Err("an empty element");
    }
    let node = std::str::from_utf8(node).map_err(|_| "not an address (non-ASCII bytes)")?;
    parse_node(node, ForwardedHeader::XForwardedFor)
}

/// The `for` parameter of one RFC 7239 `forwarded-element`
/// (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn parse_forwarded(element: &[u8]) -> Result<IpAddr, &'static str> {
    let mut pairs = Vec::new();
    split_list(trim_ows(element), b';', true, &mut pairs).map_err(|unusable| unusable.reason)?;
    let mut for_value = None;
    for pair in pairs {
        let pair = trim_ows(pair);
        if pair.is_empty() {
            // `forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )`
            continue;
        }
        let equals = pair
            .iter()
            .position(|&byte| byte == b'=')
            .ok_or("a parameter without =")?;
        let (name, value) = (
            pair.get(..equals).unwrap_or_default(),
            pair.get(equals + 1..).unwrap_or_default(),
        );
        if name.is_empty() || !name.iter().copied().all(is_tchar) {
            return Err("a parameter name that is not a token");
        }
        if name.eq_ignore_ascii_case(b"for") {
            // RFC 7239 §4: a parameter occurs at most once per element;
            // two would leave the choice to the parser.
            if for_value.is_some() {
                return Err("for= twice in one element");
            }
            for_value = Some(value);
        }
    }
    let value = for_value.ok_or("an element without for=")?;
    let node = if value.first() == Some(&b'"') {
        unquote(value).ok_or("a malformed quoted string")?
    } else if !value.is_empty() && value.iter().copied().all(is_tchar) {
        value.to_vec()
    } else {
        // `[`, `]` and `:` are not token characters: IPv6 addresses and ports
        // must be quoted (RFC 7239 §6).
        return Err("an unquoted for= value that is not a token (IPv6 and ports must be quoted)");
    };
    let node = std::str::from_utf8(&node).map_err(|_| "not an address (non-ASCII bytes)")?;
    parse_node(node, ForwardedHeader::Forwarded)
}

/// The content of an RFC 9110 `quoted-string` that is all of `value`.
fn unquote(value: &[u8]) -> Option<Vec<u8>> {
    let inner = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let mut content = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\\' => content.push(*bytes.next()?),
            // `"a"b"`: the string ended before the value did.
            b'"' => return None,
            _ => content.push(byte),
        }
    }
    Some(content)
}

/// A node: `IPv4[:port]` or `[IPv6][:port]`, and for X-Forwarded-For also a
/// bare IPv6 address. In `Forwarded` (RFC 7239 §6) an IPv6 address must be in
/// brackets, and `unknown` or an obfuscated `_identifier` names no address.
fn parse_node(node: &str, syntax: ForwardedHeader) -> Result<IpAddr, &'static str> {
    if node.len() > MAX_NODE_LEN {
        return Err("longer than any address with a port");
    }
    if let Some(bracketed) = node.strip_prefix('[') {
        let (address, rest) = bracketed
            .split_once(']')
            .ok_or("an unterminated [ before an IPv6 address")?;
        let address: Ipv6Addr = address
            .parse()
            .map_err(|_| "not an IPv6 address inside [ ]")?;
        let port = if rest.is_empty() {
            None
        } else {
            Some(
                rest.strip_prefix(':')
                    .ok_or("text after ] that is not :port")?,
            )
        };
        check_port(port, syntax)?;
        return Ok(IpAddr::V6(address));
    }
    if let Ok(address) = node.parse::<Ipv6Addr>() {
        return match syntax {
            ForwardedHeader::XForwardedFor => Ok(IpAddr::V6(address)),
            ForwardedHeader::Forwarded => Err("an IPv6 address without [ ] (RFC 7239 §6)"),
        };
    }
    let (address, port) = match node.split_once(':') {
        Some((address, port)) => (address, Some(port)),
        None => (node, None),
    };
    if syntax == ForwardedHeader::Forwarded {
        if address.eq_ignore_ascii_case("unknown") {
            return Err("for=unknown: the proxy did not know the client");
        }
        if address.starts_with('_') {
            return Err("an obfuscated identifier instead of an address");
        }
    }
    let address: Ipv4Addr = address.parse().map_err(|_| "not an IP address")?;
    check_port(port, syntax)?;
    Ok(IpAddr::V4(address))
}

/// A port after a node: 1 to 5 digits within `u16`; in `Forwarded` also an
/// obfuscated `_port` (RFC 7239 §6.3). The port itself is not used.
fn check_port(port: Option<&str>, syntax: ForwardedHeader) -> Result<(), &'static str> {
    let Some(port) = port else {
        return Ok(());
    };
    let numeric = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok();
    let obfuscated = syntax == ForwardedHeader::Forwarded
        && port.strip_prefix('_').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if numeric || obfuscated {
        Ok(())
    } else {
        Err("a port that is not 1 to 5 digits")
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
                    "client_ip: trusted_proxies is set but header is not: name the one header your proxies set (\"x-forwarded-for\" or \"forwarded\"); reading whichever is present lets clients spoof through the other",
                ));
            }
            (true, Some(header)) => {
                return Err(ConfigError::new(format!(
                    "client_ip: header = \"{header}\" is set but trusted_proxies is empty, so it would never be read: list your proxies' networks, or remove header"
                )));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(v4_mask(0), 0);
        assert_eq!(v4_mask(8), 0xff00_0000);
        assert_eq!(v4_mask(32), u32::MAX);
        assert_eq!(v6_mask(0), 0);
        assert_eq!(v6_mask(56), u128::MAX << 72);
        assert_eq!(v6_mask(128), u128::MAX);
    }

    #[test]
    fn quote_aware_split() {
        let mut parts = Vec::new();
        assert!(split_list(br#"for="a,b";x=1, for=c"#, b',', true, &mut parts).is_ok());
        assert_eq!(parts, [&br#"for="a,b";x=1"#[..], b" for=c"]);
        let mut parts = Vec::new();
        assert!(split_list(br#"for="a\",b"#, b',', true, &mut parts).is_err());
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote(br#""[::1]:80""#).as_deref(), Some(&b"[::1]:80"[..]));
        assert_eq!(unquote(br#""1.2\.3.4""#).as_deref(), Some(&b"1.2.3.4"[..]));
        assert_eq!(unquote(br#""a"b""#), None);
        assert_eq!(unquote(br#""a\""#), None);
        assert_eq!(unquote(b"\""), None);
    }

    #[test]
    fn messages_are_bounded() {
        let long = "1".repeat(5000);
        let error = IpNet::parse(&long).err().map(|error| error.to_string());
        assert!(error.is_some_and(|message| message.len() < 400));
    }
}
