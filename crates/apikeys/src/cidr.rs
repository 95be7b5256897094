//! IP allow-lists: CIDR blocks of IPv4 or IPv6.

use std::net::IpAddr;
use std::str::FromStr;

use crate::config::{ConfigError, ConfigErrorKind};

/// One CIDR block (`203.0.113.0/24`, `2001:db8::/32`; a bare address is a
/// block of one). An IPv4 client seen as an IPv4-mapped IPv6 address
/// (`::ffff:203.0.113.9`) is matched as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The block `network/prefix`; host bits must be zero.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidCidr`] for a prefix longer than the address
    /// or host bits set.
    pub fn new(network: IpAddr, prefix: u8) -> Result<Cidr, ConfigError> {
        let bits = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let cidr = Cidr { network, prefix };
        if prefix > bits || masked(network, prefix) != network {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidCidr,
                "allowed_ips: a CIDR prefix is longer than the address or has host bits set",
            ));
        }
        Ok(cidr)
    }

    /// Whether `ip` lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        matches!(
            (self.network, ip),
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
        ) && masked(ip, self.prefix) == self.network
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

impl FromStr for Cidr {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Cidr, ConfigError> {
        let invalid = || {
            ConfigError::new(
                ConfigErrorKind::InvalidCidr,
                "allowed_ips: not an address or address/prefix",
            )
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let prefix = match prefix {
            Some(prefix) if prefix.bytes().all(|b| b.is_ascii_digit()) => {
                prefix.parse().map_err(|_| invalid())?
            }
            Some(_) => return Err(invalid()),
            None if network.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(network, prefix)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn v4_and_v6_blocks() {
        let v4: Cidr = "203.0.113.0/24".parse().unwrap();
        assert!(v4.contains(ip("203.0.113.200")));
        assert!(v4.contains(ip("::ffff:203.0.113.9")));
        assert!(!v4.contains(ip("203.0.114.1")));
        assert!(!v4.contains(ip("2001:db8::1")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("203.0.113.1")));
        let everything: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("198.51.100.7")));
        let one: Cidr = "198.51.100.7".parse().unwrap();
        assert!(one.contains(ip("198.51.100.7")));
        assert!(!one.contains(ip("198.51.100.8")));
        assert_eq!(one.to_string(), "198.51.100.7/32");
    }

    #[test]
    fn malformed_blocks_are_config_errors() {
        for bad in [
            "203.0.113.1/24",
            "203.0.113.0/33",
            "2001:db8::/129",
            "nope",
            "1.2.3.0/+8",
            "1.2.3.0/",
        ] {
            let error = bad.parse::<Cidr>().unwrap_err();
            assert_eq!(error.kind(), ConfigErrorKind::InvalidCidr, "{bad}");
        }
    }
}
