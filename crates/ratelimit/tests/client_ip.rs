#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Client-IP resolution: each test is named after the attack or the mistake
//! it stops, plus `IpNet` parsing, configuration and property tests over
//! arbitrary header bytes.

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use palisade_ratelimit::client_ip::{
    ClientIp, ClientIpConfig, ClientIpResolver, ForwardedHeader, IpNet,
};
use proptest::prelude::*;

const XFF: &str = "x-forwarded-for";
const FORWARDED: &str = "forwarded";
/// The proxy every request below arrives from, inside 10.0.0.0/8.
const PROXY: &str = "10.0.0.1";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn net(text: &str) -> IpNet {
    IpNet::parse(text).unwrap()
}

fn headers(name: &'static str, lines: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        headers.append(name, HeaderValue::from_str(line).unwrap());
    }
    headers
}

fn behind(header: ForwardedHeader) -> ClientIpResolver {
    ClientIpResolver::behind_proxies([net("10.0.0.0/8")], header)
}

/// The address the resolver picks for a request from `peer` with `lines` of
/// header `name`.
fn client(resolver: &ClientIpResolver, peer: &str, name: &'static str, lines: &[&str]) -> IpAddr {
    resolver.resolve(ip(peer), &headers(name, lines)).ip()
}

fn xff(lines: &[&str]) -> IpAddr {
    client(&behind(ForwardedHeader::XForwardedFor), PROXY, XFF, lines)
}

fn forwarded(lines: &[&str]) -> IpAddr {
    client(&behind(ForwardedHeader::Forwarded), PROXY, FORWARDED, lines)
}

fn peer_only_client(peer: &str) -> ClientIp {
    ClientIpResolver::peer_only().resolve(ip(peer), &HeaderMap::new())
}

#[test]
fn spoofed_leftmost_x_forwarded_for_entry_is_ignored() {
    assert_eq!(xff(&["1.1.1.1, 203.0.113.7"]), ip("203.0.113.7"));
    // However many entries the client prepends.
    assert_eq!(
        xff(&["1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.7"]),
        ip("203.0.113.7")
    );
}

#[test]
fn spoofed_leftmost_forwarded_entry_is_ignored() {
    assert_eq!(
        forwarded(&["for=1.1.1.1, for=203.0.113.7;proto=https"]),
        ip("203.0.113.7")
    );
}

#[test]
fn header_from_untrusted_peer_is_ignored() {
    let direct = "198.51.100.9";
    for (resolver, name, value) in [
        (behind(ForwardedHeader::XForwardedFor), XFF, "1.1.1.1"),
        (behind(ForwardedHeader::Forwarded), FORWARDED, "for=1.1.1.1"),
    ] {
        assert_eq!(client(&resolver, direct, name, &[value]), ip(direct));
    }
}

#[test]
fn peer_only_ignores_every_header() {
    let resolver = ClientIpResolver::default();
    let mut request = headers(XFF, &["1.1.1.1"]);
    request.append(FORWARDED, HeaderValue::from_static("for=2.2.2.2"));
    request.append("x-real-ip", HeaderValue::from_static("3.3.3.3"));
    // Even from a private address that looks like a proxy.
    assert_eq!(resolver.resolve(ip(PROXY), &request).ip(), ip(PROXY));
    assert_eq!(resolver.header(), None);
    assert!(resolver.trusted_proxies().is_empty());
}

#[test]
fn client_injected_forwarded_is_ignored_when_proxy_appends_x_forwarded_for() {
    // The proxy appends to X-Forwarded-For and passes Forwarded through.
    let mut request = headers(FORWARDED, &["for=1.1.1.1"]);
    request.append(XFF, HeaderValue::from_static("203.0.113.7"));
    let resolver = behind(ForwardedHeader::XForwardedFor);
    assert_eq!(
        resolver.resolve(ip(PROXY), &request).ip(),
        ip("203.0.113.7")
    );

    // And with no X-Forwarded-For at all, Forwarded is still not read.
    let only_forwarded = headers(FORWARDED, &["for=1.1.1.1"]);
    assert_eq!(resolver.resolve(ip(PROXY), &only_forwarded).ip(), ip(PROXY));
}

#[test]
fn client_injected_x_forwarded_for_is_ignored_when_proxy_sets_forwarded() {
    let mut request = headers(XFF, &["1.1.1.1"]);
    request.append(FORWARDED, HeaderValue::from_static("for=203.0.113.7"));
    let resolver = behind(ForwardedHeader::Forwarded);
    assert_eq!(
        resolver.resolve(ip(PROXY), &request).ip(),
        ip("203.0.113.7")
    );

    let only_xff = headers(XFF, &["1.1.1.1"]);
    assert_eq!(resolver.resolve(ip(PROXY), &only_xff).ip(), ip(PROXY));
}

#[test]
fn multiple_trusted_hops_are_skipped() {
    // CDN edge (192.0.2.0/24) → load balancer (10.0.0.0/8) → us.
    let resolver = ClientIpResolver::behind_proxies(
        [net("10.0.0.0/8"), net("192.0.2.0/24")],
        ForwardedHeader::XForwardedFor,
    );
    assert_eq!(
        client(
            &resolver,
            PROXY,
            XFF,
            &["1.1.1.1, 203.0.113.7, 192.0.2.10, 10.1.2.3"]
        ),
        ip("203.0.113.7")
    );
    let resolver = ClientIpResolver::behind_proxies(
        [net("10.0.0.0/8"), net("2001:db8:ffff::/48")],
        ForwardedHeader::Forwarded,
    );
    assert_eq!(
        client(
            &resolver,
            PROXY,
            FORWARDED,
            &[r#"for=1.1.1.1, for="[2001:db8:1::7]", for="[2001:db8:ffff::1]:443", for=10.0.0.9"#]
        ),
        ip("2001:db8:1::7")
    );
}

#[test]
fn untrusted_hop_in_the_middle_is_the_client() {
    // 192.0.2.10 is not one of ours: everything left of it is its writing.
    assert_eq!(
        xff(&["203.0.113.7, 192.0.2.10, 10.1.2.3"]),
        ip("192.0.2.10")
    );
}

#[test]
fn repeated_header_lines_are_joined_in_order() {
    // The last line's rightmost element is the nearest hop.
    assert_eq!(
        xff(&["1.1.1.1, 2.2.2.2", "203.0.113.7, 10.0.0.2"]),
        ip("203.0.113.7")
    );
    assert_eq!(xff(&["1.1.1.1", "203.0.113.7"]), ip("203.0.113.7"));
    assert_eq!(
        forwarded(&["for=1.1.1.1", "for=203.0.113.7", "for=10.9.9.9"]),
        ip("203.0.113.7")
    );
    // All trusted: the leftmost of the first line.
    assert_eq!(xff(&["10.0.0.5", "10.0.0.6"]), ip("10.0.0.5"));
}

#[test]
fn quoted_string_does_not_run_on_into_the_next_line() {
    // Joined naively, the client's open quote would swallow the proxy's
    // element; split per line and walked from the right, the client's broken
    // line is never even read.
    assert_eq!(
        forwarded(&[r#"for="1.1.1.1"#, "for=203.0.113.7"]),
        ip("203.0.113.7")
    );
}

#[test]
fn malformed_element_falls_back_to_peer() {
    for value in [
        "garbage",
        "203.0.113.7 1.1.1.1",
        "203.0.113.999",
        "010.0.0.1",
        "fe80::1%eth0",
        "1.1.1.1, ",
        ",",
        "1.1.1.1,,",
        "1.1.1.1;203.0.113.7",
        "\"203.0.113.7\"",
        "[203.0.113.7]",
        "[2001:db8::1",
        "[2001:db8::1]x",
        "203.0.113.7:",
        "203.0.113.7:99999",
        "203.0.113.7:_obf",
        "203.0.113.7:80:80",
        "unknown",
        "_hidden",
        "localhost",
        "0x7f.1",
    ] {
        assert_eq!(xff(&[value]), ip(PROXY), "{value:?}");
    }
    let long = format!("1.1.1.1:{}", "1".repeat(100));
    assert_eq!(xff(&[&long]), ip(PROXY));
}

#[test]
fn malformed_elements_left_of_the_client_are_never_read() {
    // The client cannot push itself into the proxy's bucket by sending
    // garbage: only the walk up to the first untrusted hop is parsed.
    assert_eq!(xff(&["garbage, 203.0.113.7"]), ip("203.0.113.7"));
    assert_eq!(xff(&["1.1.1.1 \"junk", "203.0.113.7"]), ip("203.0.113.7"));
    assert_eq!(
        forwarded(&["for=unknown, by=x, for=203.0.113.7"]),
        ip("203.0.113.7")
    );
    let mut request = HeaderMap::new();
    request.append(XFF, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    request.append(XFF, HeaderValue::from_static("203.0.113.7"));
    let resolver = behind(ForwardedHeader::XForwardedFor);
    assert_eq!(
        resolver.resolve(ip(PROXY), &request).ip(),
        ip("203.0.113.7")
    );
}

#[test]
fn forwarded_for_unknown_falls_back_to_peer() {
    for value in [
        "for=unknown",
        "for=UNKNOWN",
        r#"for="unknown:4711""#,
        "for=_hidden",
        r#"for="_hidden:_port""#,
        r#"for="_gazonk""#,
    ] {
        assert_eq!(forwarded(&[value]), ip(PROXY), "{value:?}");
    }
}

#[test]
fn malformed_forwarded_element_falls_back_to_peer() {
    for value in [
        "",
        "proto=https",
        "for",
        "for=",
        r#"for="""#,
        "=1.1.1.1",
        "for=203.0.113.7;for=1.1.1.1",
        "for =203.0.113.7",
        "for=203.0.113.7:80",
        "for=[2001:db8::1]",
        r#"for="2001:db8::1""#,
        "for=2001:db8::1",
        r#"for="203.0.113.7"x"#,
        r#"for="203.0.113.7"#,
        r#"for="[2001:db8::1]:http""#,
        "for=203.0.113.7, ",
        "for=203.0.113.7,,",
        r#"for="[2001:db8::1]"; f"o=1"#,
        "for=1.1.1.1 for=2.2.2.2",
    ] {
        assert_eq!(forwarded(&[value]), ip(PROXY), "{value:?}");
    }
}

#[test]
fn forwarded_valid_forms() {
    for (value, expected) in [
        ("for=203.0.113.7", "203.0.113.7"),
        (r#"for="203.0.113.7""#, "203.0.113.7"),
        (r#"for="203.0.113.7:4711""#, "203.0.113.7"),
        (r#"for="203.0.113.7:_abc-1.x""#, "203.0.113.7"),
        (r#"for="[2001:db8:cafe::17]""#, "2001:db8:cafe::17"),
        (r#"for="[2001:db8:cafe::17]:4711""#, "2001:db8:cafe::17"),
        (r#"for="\[2001:db8::1\]:80""#, "2001:db8::1"),
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ("proto=https; for=192.0.2.60 ;host=\"a,b;c\"", "192.0.2.60"),
        (";;for=192.0.2.60;", "192.0.2.60"),
        ("  for=192.0.2.60\t", "192.0.2.60"),
        (r#"host="x"; for=192.0.2.60"#, "192.0.2.60"),
        (r#"for=192.0.2.60;ext="a\"b""#, "192.0.2.60"),
    ] {
        assert_eq!(forwarded(&[value]), ip(expected), "{value:?}");
    }
}

#[test]
fn forwarded_quoted_ipv6_with_port() {
    assert_eq!(
        forwarded(&[r#"for="[2001:db8::1]:4711""#]),
        ip("2001:db8::1")
    );
    assert_eq!(
        forwarded(&[r#"for=1.1.1.1, for="[2001:db8::1]:4711";proto=https"#]),
        ip("2001:db8::1")
    );
}

#[test]
fn forwarded_parameter_names_are_case_insensitive() {
    for value in [
        "For=203.0.113.7",
        "FOR=203.0.113.7",
        "fOr=203.0.113.7;Proto=https",
    ] {
        assert_eq!(forwarded(&[value]), ip("203.0.113.7"), "{value:?}");
    }
    // Two spellings of the same parameter are still two `for`s.
    assert_eq!(forwarded(&["for=1.1.1.1;FOR=203.0.113.7"]), ip(PROXY));
}

#[test]
fn ports_in_x_forwarded_for() {
    for (value, expected) in [
        ("203.0.113.7:4711", "203.0.113.7"),
        ("203.0.113.7:0", "203.0.113.7"),
        ("203.0.113.7:65535", "203.0.113.7"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        // A bare IPv6 address ending in a group is an address, not a port.
        ("2001:db8::1:80", "2001:db8::1:80"),
        ("1.1.1.1:1, 203.0.113.7:2, 10.0.0.3:3", "203.0.113.7"),
        ("  203.0.113.7\t", "203.0.113.7"),
        ("1.1.1.1,203.0.113.7", "203.0.113.7"),
    ] {
        assert_eq!(xff(&[value]), ip(expected), "{value:?}");
    }
}

#[test]
fn ipv4_mapped_peer_and_header_values_are_normalized() {
    let resolver = behind(ForwardedHeader::XForwardedFor);
    // A dual-stack socket reports the IPv4 proxy as ::ffff:10.0.0.1.
    let client = resolver.resolve(ip("::ffff:10.0.0.1"), &headers(XFF, &["203.0.113.7"]));
    assert_eq!(client.ip(), ip("203.0.113.7"));
    // A mapped client address is its IPv4 address, with the IPv4 key.
    let client = resolver.resolve(ip(PROXY), &headers(XFF, &["::ffff:203.0.113.7"]));
    assert_eq!(client.ip(), ip("203.0.113.7"));
    assert_eq!(client.rate_limit_key(), "ip4:203.0.113.7");
    // A mapped trusted hop is skipped like its IPv4 form.
    assert_eq!(
        xff(&["203.0.113.7, ::ffff:10.9.9.9, [::ffff:10.0.0.2]:80"]),
        ip("203.0.113.7")
    );
    assert_eq!(
        forwarded(&[r#"for="[::ffff:203.0.113.7]""#]),
        ip("203.0.113.7")
    );
    // An untrusted mapped peer is returned normalized.
    assert_eq!(
        resolver
            .resolve(ip("::ffff:198.51.100.9"), &headers(XFF, &["1.1.1.1"]))
            .ip(),
        ip("198.51.100.9")
    );
    assert_eq!(
        peer_only_client("::ffff:198.51.100.9").ip(),
        ip("198.51.100.9")
    );
    // `::1` and the deprecated IPv4-compatible form are not IPv4-mapped.
    assert_eq!(peer_only_client("::1").ip(), ip("::1"));
    assert_eq!(peer_only_client("::1.2.3.4").rate_limit_key(), "ip6:::/56");
}

#[test]
fn ipv6_clients_rotating_addresses_share_a_key_per_56() {
    let a = peer_only_client("2001:db8:ab:cd00::1");
    let b = peer_only_client("2001:db8:ab:cdff:ffff:ffff:ffff:ffff");
    let other = peer_only_client("2001:db8:ab:ce00::1");
    assert_eq!(a.rate_limit_key(), "ip6:2001:db8:ab:cd00::/56");
    assert_eq!(a.rate_limit_key(), b.rate_limit_key());
    assert_ne!(a.rate_limit_key(), other.rate_limit_key());
    assert_ne!(a, b, "the address itself is kept");
    assert_eq!(a.ipv6_prefix(), 56);
    assert_eq!(a.to_string(), "2001:db8:ab:cd00::1");
}

#[test]
fn ipv6_prefix_is_configurable() {
    let resolver = ClientIpResolver::peer_only().ipv6_prefix(64).unwrap();
    let key = |peer: &str| {
        resolver
            .resolve(ip(peer), &HeaderMap::new())
            .rate_limit_key()
    };
    assert_eq!(key("2001:db8:ab:cd01::1"), "ip6:2001:db8:ab:cd01::/64");
    assert_eq!(key("2001:db8:ab:cd01::1"), key("2001:db8:ab:cd01:1:2:3:4"));
    assert_ne!(key("2001:db8:ab:cd01::1"), key("2001:db8:ab:cd02::1"));
    // IPv4 keys are whole addresses whatever the IPv6 prefix.
    assert_eq!(key("203.0.113.7"), "ip4:203.0.113.7");

    let per_address = ClientIpResolver::peer_only().ipv6_prefix(128).unwrap();
    assert_eq!(
        per_address
            .resolve(ip("2001:db8::1"), &HeaderMap::new())
            .rate_limit_key(),
        "ip6:2001:db8::1/128"
    );
    let wide = ClientIpResolver::peer_only().ipv6_prefix(32).unwrap();
    assert_eq!(
        wide.resolve(ip("2001:db8:ffff::1"), &HeaderMap::new())
            .rate_limit_key(),
        "ip6:2001:db8::/32"
    );
    // The prefix travels from behind_proxies' resolver too.
    let resolver =
        ClientIpResolver::behind_proxies([net("10.0.0.0/8")], ForwardedHeader::Forwarded)
            .ipv6_prefix(48)
            .unwrap();
    let client = resolver.resolve(
        ip(PROXY),
        &headers(FORWARDED, &[r#"for="[2001:db8:1:2::3]""#]),
    );
    assert_eq!(client.rate_limit_key(), "ip6:2001:db8:1::/48");
}

#[test]
fn ipv6_prefix_that_lumps_an_isp_together_is_refused() {
    for prefix in [0, 1, 16, 31, 129, 255] {
        let error = ClientIpResolver::peer_only()
            .ipv6_prefix(prefix)
            .unwrap_err();
        assert!(error.to_string().contains("ipv6_prefix"), "{error}");
    }
}

#[test]
fn all_trusted_chain_resolves_to_leftmost() {
    // A request from inside (a health check, an internal service).
    assert_eq!(xff(&["10.0.0.7, 10.0.0.2"]), ip("10.0.0.7"));
    assert_eq!(xff(&["10.0.0.7"]), ip("10.0.0.7"));
    assert_eq!(forwarded(&["for=10.0.0.7, for=10.0.0.2"]), ip("10.0.0.7"));
}

#[test]
fn all_trusted_chain_with_malformed_leftmost_falls_back_to_peer() {
    assert_eq!(xff(&["junk, 10.0.0.7"]), ip(PROXY));
}

#[test]
fn absent_header_gives_peer() {
    let resolver = behind(ForwardedHeader::XForwardedFor);
    assert_eq!(
        resolver.resolve(ip(PROXY), &HeaderMap::new()).ip(),
        ip(PROXY)
    );
}

#[test]
fn empty_header_falls_back_to_peer() {
    assert_eq!(xff(&[""]), ip(PROXY));
    assert_eq!(xff(&["   "]), ip(PROXY));
    assert_eq!(forwarded(&[""]), ip(PROXY));
    // An empty last line is the nearest element.
    assert_eq!(xff(&["203.0.113.7", ""]), ip(PROXY));
}

#[test]
fn padding_left_of_the_client_cannot_make_it_the_proxy() {
    // Bucket switching: were the size of the whole header to decide, a
    // client could pad its own (left) part until the header is refused and
    // be keyed as the proxy, sharing (and draining) the proxy's bucket.
    let mut hops: Vec<String> = (0..200)
        .map(|i| format!("1.1.{}.{}", i / 250, i % 250))
        .collect();
    hops.push("203.0.113.7".to_owned());
    assert_eq!(xff(&[&hops.join(", ")]), ip("203.0.113.7"));
    let lines: Vec<&str> = hops.iter().map(String::as_str).collect();
    assert_eq!(xff(&lines), ip("203.0.113.7"));
    let padded = format!("{}, 203.0.113.7", "x".repeat(64 * 1024));
    assert_eq!(xff(&[&padded]), ip("203.0.113.7"));
    assert_eq!(xff(&[&",".repeat(5000), "203.0.113.7"]), ip("203.0.113.7"));
}

#[test]
fn too_many_trusted_hops_fall_back_to_peer() {
    // 64 elements are walked...
    let mut hops: Vec<String> = vec!["203.0.113.7".to_owned()];
    hops.extend((0..63).map(|i| format!("10.0.0.{i}")));
    assert_eq!(xff(&[&hops.join(", ")]), ip("203.0.113.7"));
    // ...65 are not, even split over lines.
    hops.insert(1, "10.0.1.1".to_owned());
    assert_eq!(xff(&[&hops.join(", ")]), ip(PROXY));
    let lines: Vec<&str> = hops.iter().map(String::as_str).collect();
    assert_eq!(xff(&lines), ip(PROXY));
    // Over 8 KiB walked before the client.
    let padded = format!("203.0.113.7,{}10.0.0.9", " ".repeat(8 * 1024));
    assert_eq!(xff(&[&padded]), ip(PROXY));
    let quoted = format!(r#"for=203.0.113.7;x="{}""#, "a".repeat(9000));
    assert_eq!(forwarded(&[&quoted]), ip(PROXY));
}

#[test]
fn ip_net_parse_table() {
    for (text, display) in [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.0.0.7", "10.0.0.7/32"),
        ("10.0.0.7/32", "10.0.0.7/32"),
        ("192.168.0.0/16", "192.168.0.0/16"),
        ("128.0.0.0/1", "128.0.0.0/1"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("::1", "::1/128"),
        ("fd00::/8", "fd00::/8"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:10.0.0.1", "10.0.0.1/32"),
        ("10.0.0.0/08", "10.0.0.0/8"),
    ] {
        let parsed = net(text);
        assert_eq!(parsed.to_string(), display, "{text}");
        assert_eq!(net(display), parsed, "round trip of {text}");
        assert_eq!(text.parse::<IpNet>().unwrap(), parsed);
    }
    assert_eq!(net("10.0.0.0/8").network(), ip("10.0.0.0"));
    assert_eq!(net("10.0.0.0/8").prefix_len(), 8);
    assert_eq!(
        IpNet::new(ip("2001:db8::"), 32).unwrap(),
        net("2001:db8::/32")
    );
    assert!(IpNet::new(ip("2001:db8::1"), 32).is_err());
}

#[test]
fn ip_net_parse_errors() {
    for (text, says) in [
        ("10.0.0.1/8", "10.0.0.0/8"),
        ("2001:db8::1/32", "2001:db8::/32"),
        ("0.0.0.0/0", "/0"),
        ("::/0", "/0"),
        ("::ffff:0.0.0.0/96", "/0"),
        ("10.0.0.0/33", "above 32"),
        ("::/129", "above 128"),
        ("10.0.0.0/256", "above 128"),
        ("10.0.0.0/", "prefix"),
        ("10.0.0.0/+8", "prefix"),
        ("10.0.0.0/-8", "prefix"),
        ("10.0.0.0/0008", "prefix"),
        ("10.0.0.0/8/8", "prefix"),
        ("", "not an IPv4 or IPv6"),
        (" 10.0.0.0/8", "not an IPv4 or IPv6"),
        ("10.0.0.0 /8", "not an IPv4 or IPv6"),
        ("010.0.0.0/8", "not an IPv4 or IPv6"),
        ("10.0.0/24", "not an IPv4 or IPv6"),
        ("fe80::1%eth0", "not an IPv4 or IPv6"),
        ("[::1]", "not an IPv4 or IPv6"),
        ("localhost", "not an IPv4 or IPv6"),
        ("*", "not an IPv4 or IPv6"),
    ] {
        let error = IpNet::parse(text).unwrap_err().to_string();
        assert!(error.contains(says), "{text:?}: {error}");
    }
}

#[test]
fn ip_net_contains_table() {
    for (network, address, inside) in [
        ("10.0.0.0/8", "10.0.0.0", true),
        ("10.0.0.0/8", "10.255.255.255", true),
        ("10.0.0.0/8", "11.0.0.0", false),
        ("10.0.0.0/8", "9.255.255.255", false),
        ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ("10.0.0.0/8", "::ffff:11.1.2.3", false),
        ("10.0.0.0/8", "::a00:1", false),
        ("10.0.0.7", "10.0.0.7", true),
        ("10.0.0.7", "10.0.0.8", false),
        ("128.0.0.0/1", "255.255.255.255", true),
        ("128.0.0.0/1", "127.255.255.255", false),
        ("::ffff:10.0.0.0/104", "10.9.9.9", true),
        ("2001:db8::/32", "2001:db8:ffff::1", true),
        ("2001:db8::/32", "2001:db9::", false),
        ("2001:db8::/32", "10.0.0.1", false),
        ("::1", "::1", true),
        ("::1", "127.0.0.1", false),
        ("::1", "::2", false),
        ("fd00::/8", "fdff:ffff::1", true),
        ("fd00::/8", "fe00::", false),
    ] {
        assert_eq!(
            net(network).contains(ip(address)),
            inside,
            "{network} contains {address}"
        );
    }
}

#[test]
fn config_deserializes() {
    let resolver: ClientIpResolver = serde_json::from_str(
        r#"{"trusted_proxies": ["10.0.0.0/8", "::1"], "header": "x-forwarded-for", "ipv6_prefix": 64}"#,
    )
    .unwrap();
    assert_eq!(resolver.header(), Some(ForwardedHeader::XForwardedFor));
    assert_eq!(
        resolver.trusted_proxies(),
        [net("10.0.0.0/8"), net("::1/128")]
    );
    assert_eq!(
        client(&resolver, PROXY, XFF, &["1.1.1.1, 2001:db8:0:1::5"]).to_string(),
        "2001:db8:0:1::5"
    );
    assert_eq!(
        resolver
            .resolve(ip("2001:db8:0:1::5"), &HeaderMap::new())
            .rate_limit_key(),
        "ip6:2001:db8:0:1::/64"
    );

    let resolver: ClientIpResolver =
        serde_json::from_str(r#"{"trusted_proxies": ["10.0.0.0/8"], "header": "forwarded"}"#)
            .unwrap();
    assert_eq!(resolver.header(), Some(ForwardedHeader::Forwarded));

    // Empty: peer only.
    let resolver: ClientIpResolver = serde_json::from_str("{}").unwrap();
    assert_eq!(resolver.header(), None);
    assert_eq!(client(&resolver, PROXY, XFF, &["1.1.1.1"]), ip(PROXY));

    let config: ClientIpConfig = serde_json::from_str(r#"{"ipv6_prefix": 48}"#).unwrap();
    let resolver = ClientIpResolver::try_from(config).unwrap();
    assert_eq!(
        resolver
            .resolve(ip("2001:db8:1:2::3"), &HeaderMap::new())
            .rate_limit_key(),
        "ip6:2001:db8:1::/48"
    );

    let header: ForwardedHeader = serde_json::from_str(r#""x-forwarded-for""#).unwrap();
    assert_eq!(header, ForwardedHeader::XForwardedFor);
    assert_eq!(header.to_string(), "x-forwarded-for");
    assert_eq!(header.header_name(), "x-forwarded-for");
    assert_eq!(
        ForwardedHeader::Forwarded.header_name(),
        http::header::FORWARDED
    );
    let parsed: IpNet = serde_json::from_str(r#""2001:db8::/32""#).unwrap();
    assert_eq!(parsed, net("2001:db8::/32"));
}

#[test]
fn config_errors() {
    for (json, says) in [
        (r#"{"trusted_proxies": ["10.0.0.0/8"]}"#, "header"),
        (
            r#"{"header": "x-forwarded-for"}"#,
            "trusted_proxies is empty",
        ),
        (
            r#"{"trusted_proxies": [], "header": "forwarded"}"#,
            "trusted_proxies is empty",
        ),
        (
            r#"{"trusted_proxies": ["10.0.0.1/8"], "header": "forwarded"}"#,
            "10.0.0.0/8",
        ),
        (
            r#"{"trusted_proxies": ["0.0.0.0/0"], "header": "forwarded"}"#,
            "/0",
        ),
        (
            r#"{"trusted_proxies": ["10.0.0.0/8"], "header": "x-real-ip"}"#,
            "unknown variant",
        ),
        (
            r#"{"trusted_proxies": ["10.0.0.0/8"], "header": "X-Forwarded-For"}"#,
            "unknown variant",
        ),
        (
            r#"{"trusted_proxies": ["10.0.0.0/8"], "header": "forwarded", "ipv6_prefix": 16}"#,
            "ipv6_prefix",
        ),
        (r#"{"ipv6_prefix": 300}"#, "u8"),
        (r#"{"trusted_proxy": ["10.0.0.0/8"]}"#, "unknown field"),
        (r#"{"trusted_proxies": "10.0.0.0/8"}"#, "sequence"),
        (r#"{"trusted_proxies": [10]}"#, "string"),
    ] {
        let error = serde_json::from_str::<ClientIpResolver>(json)
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{json}: {error}");
    }
}

/// Every IP address written in `text`, however it was written there: quoted
/// with `\` escapes, bracketed, with a port, IPv4-mapped.
fn addresses_in(text: &str) -> Vec<IpAddr> {
    let unescaped = text.replace('\\', "");
    unescaped
        .split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
        .flat_map(|token| {
            let without_port = token.split_once(':').map(|(address, _)| address);
            [Some(token), without_port]
        })
        .flatten()
        .filter_map(|candidate| candidate.parse::<IpAddr>().ok())
        .map(|address| address.to_canonical())
        .collect()
}

static VOCABULARY: [&str; 14] = [
    "203.0.113.7",
    "198.51.100.9:80",
    "10.0.0.2",
    "10.1.2.3:4711",
    "[2001:db8::7]:443",
    "2001:db8::8",
    "::ffff:192.0.2.1",
    "::1",
    "unknown",
    "_hidden",
    "garbage",
    "",
    " 192.0.2.2 ",
    "\"192.0.2.3\"",
];

fn resolve_bytes(
    resolver: &ClientIpResolver,
    name: &'static str,
    lines: &[Vec<u8>],
) -> Option<IpAddr> {
    let mut request = HeaderMap::new();
    for line in lines {
        request.append(name, HeaderValue::from_bytes(line).ok()?);
    }
    Some(resolver.resolve(ip(PROXY), &request).ip())
}

proptest! {
    #[test]
    fn resolve_never_panics_and_only_returns_peer_or_listed_address(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 0..4),
        use_forwarded in any::<bool>(),
    ) {
        let (header, name) = if use_forwarded {
            (ForwardedHeader::Forwarded, FORWARDED)
        } else {
            (ForwardedHeader::XForwardedFor, XFF)
        };
        let resolver = ClientIpResolver::behind_proxies([net("10.0.0.0/8"), net("::1")], header);
        if let Some(resolved) = resolve_bytes(&resolver, name, &lines) {
            let text: String = lines.iter().map(|line| String::from_utf8_lossy(line)).collect::<Vec<_>>().join(", ");
            prop_assert!(
                resolved == ip(PROXY) || addresses_in(&text).contains(&resolved),
                "{resolved} from {text:?}"
            );
        }
    }

    #[test]
    fn resolve_over_header_shaped_text_only_returns_peer_or_listed_address(
        elements in proptest::collection::vec(
            (proptest::sample::select(&VOCABULARY[..]), "[ ,;=\"\\[\\]:a-f0-9.]{0,6}", any::<bool>()),
            0..10,
        ),
        use_forwarded in any::<bool>(),
        lines in 1_usize..3,
    ) {
        let (header, name) = if use_forwarded {
            (ForwardedHeader::Forwarded, FORWARDED)
        } else {
            (ForwardedHeader::XForwardedFor, XFF)
        };
        let resolver = ClientIpResolver::behind_proxies([net("10.0.0.0/8"), net("::1")], header);
        let written: Vec<String> = elements
            .iter()
            .map(|(element, noise, noisy)| {
                let element = if *noisy { format!("{element}{noise}") } else { (*element).to_owned() };
                if use_forwarded { format!("for={element}") } else { element }
            })
            .collect();
        let chunk = written.len().div_ceil(lines).max(1);
        let lines: Vec<Vec<u8>> = written.chunks(chunk).map(|chunk| chunk.join(", ").into_bytes()).collect();
        if let Some(resolved) = resolve_bytes(&resolver, name, &lines) {
            let text = written.join(", ");
            prop_assert!(
                resolved == ip(PROXY) || addresses_in(&text).contains(&resolved),
                "{resolved} from {text:?}"
            );
        }
    }

    #[test]
    fn well_formed_x_forwarded_for_resolves_to_rightmost_untrusted(
        hops in proptest::collection::vec(
            proptest::sample::select(vec!["203.0.113.7", "198.51.100.9", "10.0.0.2", "10.3.3.3", "2001:db8::7", "::1"]),
            1..12,
        ),
    ) {
        let resolver = ClientIpResolver::behind_proxies([net("10.0.0.0/8"), net("::1")], ForwardedHeader::XForwardedFor);
        let trusted = |address: &IpAddr| resolver.trusted_proxies().iter().any(|n| n.contains(*address));
        let addresses: Vec<IpAddr> = hops.iter().map(|hop| ip(hop)).collect();
        let expected = addresses
            .iter()
            .rev()
            .find(|address| !trusted(address))
            .or(addresses.first())
            .copied()
            .unwrap();
        prop_assert_eq!(client(&resolver, PROXY, XFF, &[&hops.join(", ")]), expected);
    }
}

// Issue #12, 4: an open quote the client wrote left of the proxy's element.
#[test]
fn client_open_quote_in_forwarded_cannot_key_it_as_the_proxy() {
    // The client sent `for="` (or `x="`); the proxy appended its element.
    assert_eq!(forwarded(&[r#"for=", for=203.0.113.7"#]), ip("203.0.113.7"));
    assert_eq!(forwarded(&[r#"x=", for=203.0.113.7"#]), ip("203.0.113.7"));
    assert_eq!(
        forwarded(&[r#"for="1.1.1.1, for="[2001:db8::7]:4711""#]),
        ip("2001:db8::7")
    );
    assert_eq!(
        forwarded(&[r#"for="\", for=203.0.113.7;proto=https"#]),
        ip("203.0.113.7")
    );
    // Through trusted hops too: only the proxies' own elements are read.
    assert_eq!(
        forwarded(&[r#"for=", for=203.0.113.7, for=10.0.0.2"#]),
        ip("203.0.113.7")
    );
    // Padding (100 KB inside an open quote) changes nothing either.
    let padded = format!(r#"for="{}, for=203.0.113.7"#, "a,".repeat(50 * 1024));
    assert_eq!(forwarded(&[&padded]), ip("203.0.113.7"));
    // A byte no header may hold, left of what is walked, is never read.
    let resolver = behind(ForwardedHeader::Forwarded);
    let lines: [&[u8]; 1] = [b"for=\x01\", for=203.0.113.7"];
    assert_eq!(
        resolver.resolve_lines(ip(PROXY), lines).ip(),
        ip("203.0.113.7")
    );
    // The proxy's own element is still checked whole.
    assert_eq!(forwarded(&[r#"for=1.1.1.1, for="203.0.113.7"#]), ip(PROXY));
    assert_eq!(
        forwarded(&[r#"for=1.1.1.1, x=", for=203.0.113.7"#]),
        ip("203.0.113.7")
    );
    let lines: [&[u8]; 1] = [b"for=1.1.1.1, for=203.0.113.7\x01"];
    assert_eq!(resolver.resolve_lines(ip(PROXY), lines).ip(), ip(PROXY));
}
