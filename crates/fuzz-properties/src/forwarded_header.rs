//! Arbitrary bytes as `X-Forwarded-For` / `Forwarded` header lines from a
//! trusted proxy → resolution never panics, and the client is always either
//! the peer or an address written in the header (never one made up by the
//! parser), with a well-formed rate-limit key.
//!
//! The first byte selects: bit 0 which header name the bytes are sent under
//! (so each resolver also sees the header it must ignore), bit 1 whether the
//! bytes are split into several lines at `\n`, bits 2.. the IPv6 key prefix.

use std::net::{IpAddr, Ipv4Addr};

use http::{HeaderMap, HeaderValue};
use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader, IpNet};

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn resolver(header: ForwardedHeader, ipv6_prefix: u8) -> ClientIpResolver {
    let trusted =
        ["10.0.0.0/8", "::1/128"].map(|text| IpNet::parse(text).expect("the fuzz networks parse"));
    ClientIpResolver::behind_proxies(trusted, header)
        .ipv6_prefix(ipv6_prefix)
        .expect("32..=95 is a valid prefix")
}

/// Every IP address written in `text`: quoted with `\` escapes, bracketed,
/// with a port, IPv4-mapped.
fn addresses_in(text: &str) -> Vec<IpAddr> {
    let unescaped = text.replace('\\', "");
    unescaped
        .split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
        .flat_map(|token| {
            [
                Some(token),
                token.split_once(':').map(|(address, _)| address),
            ]
        })
        .flatten()
        .filter_map(|candidate| candidate.parse::<IpAddr>().ok())
        .map(|address| address.to_canonical())
        .collect()
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let Some((&selector, header_bytes)) = data.split_first() else {
        return;
    };
    let name = if selector & 1 == 0 {
        "x-forwarded-for"
    } else {
        "forwarded"
    };
    let lines: Vec<&[u8]> = if selector & 2 == 0 {
        vec![header_bytes]
    } else {
        header_bytes.split(|&byte| byte == b'\n').collect()
    };
    let mut headers = HeaderMap::new();
    for line in &lines {
        let Ok(value) = HeaderValue::from_bytes(line) else {
            return;
        };
        headers.append(name, value);
    }
    let ipv6_prefix = 32 + (selector >> 2);
    let text = String::from_utf8_lossy(header_bytes);
    let written = addresses_in(&text);

    for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        let client = resolver(header, ipv6_prefix).resolve(PEER, &headers);
        let ip = client.ip();
        assert!(
            ip == PEER || written.contains(&ip),
            "{header}: {ip} is neither the peer nor in {text:?}"
        );
        if header.header_name() != name {
            assert_eq!(ip, PEER, "{header} resolver read {name}");
        }
        assert!(
            !matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()),
            "IPv4-mapped {ip} not normalized"
        );
        let key = client.rate_limit_key();
        match ip {
            IpAddr::V4(v4) => assert_eq!(key, format!("ip4:{v4}")),
            IpAddr::V6(_) => {
                assert!(key.starts_with("ip6:"), "{key}");
                assert!(key.ends_with(&format!("/{ipv6_prefix}")), "{key}");
            }
        }
    }
}
