//! [`IpNet`]: CIDR networks, parsed strictly because they decide whose
//! forwarding headers are believed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

use super::bounded;
use crate::{ConfigError, ConfigErrorKind};

/// The netmask of an IPv4 `/prefix` (`prefix` ≤ 32).
fn v4_mask(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(u32::from(32_u8.saturating_sub(prefix)))
        .unwrap_or(0)
}

/// The netmask of an IPv6 `/prefix` (`prefix` ≤ 128).
pub(super) fn v6_mask(prefix: u8) -> u128 {
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
        IpNet::checked(address, prefix).map_err(|reason| {
            ConfigError::new(
                ConfigErrorKind::InvalidCidr,
                format!("CIDR {address}/{prefix} {reason}"),
            )
        })
    }

    /// Parses `address/prefix` or a bare address; the error names the value
    /// and the reason.
    pub fn parse(text: &str) -> Result<IpNet, ConfigError> {
        IpNet::parse_parts(text).map_err(|reason| {
            ConfigError::new(
                ConfigErrorKind::InvalidCidr,
                format!("CIDR {:?} {reason}", bounded(text)),
            )
        })
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
    fn messages_are_bounded() {
        let long = "1".repeat(5000);
        let error = IpNet::parse(&long).err().map(|error| error.to_string());
        assert!(error.is_some_and(|message| message.len() < 400));
    }
}
