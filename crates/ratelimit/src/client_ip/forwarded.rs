//! The grammar of forwarding header values: `X-Forwarded-For` elements and
//! the `for` parameter of RFC 7239 `Forwarded` elements, down to one address.
//! Which elements are walked, and which address is the client, is the
//! resolver's business.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderName;
use serde::Deserialize;

use super::bounded;

/// Longest node (address and port) accepted:
/// `[0000:0000:0000:0000:0000:ffff:255.255.255.255]:65535` is 53 bytes.
const MAX_NODE_LEN: usize = 64;

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

/// Why a forwarding header could not be used; logged, never returned.
pub(super) struct Unusable {
    pub(super) reason: &'static str,
    /// The offending element (bounded), or empty when the whole header is.
    pub(super) element: String,
}

impl Unusable {
    pub(super) fn header(reason: &'static str) -> Unusable {
        Unusable {
            reason,
            element: String::new(),
        }
    }

    pub(super) fn element(reason: &'static str, element: &[u8]) -> Unusable {
        Unusable {
            reason,
            element: bounded_bytes(element),
        }
    }
}

fn bounded_bytes(bytes: &[u8]) -> String {
    bounded(&String::from_utf8_lossy(bytes))
}

/// Appends the `delimiter`-separated parts of `text` to `parts`. With
/// `quoted_strings`, delimiters inside `"..."` (with `\` escapes) do not
/// split, and an unterminated quoted string is an error: where it ends is
/// then anyone's guess.
pub(super) fn split_list<'a>(
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

/// The list elements of one header line, walked from the right, one at a
/// time: each element's extent is found by scanning leftwards from its end
/// (with `quoted_strings`, commas inside `"..."` do not split; a quote is
/// escaped when an odd run of `\` precedes it). Bytes left of an element
/// therefore cannot change where it starts, and nothing left of the last
/// element asked for is ever read: the client writes the left of the line.
pub(super) struct ElementsFromRight<'a> {
    line: &'a [u8],
    /// Where the next element ends (exclusive); `None` once the line is done.
    end: Option<usize>,
    quoted_strings: bool,
}

/// Why an element walked from the right is unusable.
pub(super) enum WalkError {
    /// Longer than the budget the caller gave.
    TooLong,
    /// Anything else (an open quote, a control character).
    Unusable(Unusable),
}

impl<'a> ElementsFromRight<'a> {
    pub(super) fn new(line: &'a [u8], quoted_strings: bool) -> ElementsFromRight<'a> {
        ElementsFromRight {
            line,
            end: Some(line.len()),
            quoted_strings,
        }
    }

    /// Whether an element is left to walk.
    pub(super) fn has_next(&self) -> bool {
        self.end.is_some()
    }

    /// The next element leftwards (`None` when the line is done), reading at
    /// most `budget` bytes of it: a longer one is [`WalkError::TooLong`].
    pub(super) fn next_within(&mut self, budget: usize) -> Option<Result<&'a [u8], WalkError>> {
        let end = self.end?;
        let line = self.line.get(..end).unwrap_or_default();
        let mut start = end;
        let mut in_quotes = false;
        while let Some(&byte) = start.checked_sub(1).and_then(|index| line.get(index)) {
            if end - start >= budget {
                self.end = None;
                return Some(Err(WalkError::TooLong));
            }
            // A byte no header value may hold (from a framework that does
            // not check) could shift the hops: the header is unusable.
            if (byte < 0x20 && byte != b'\t') || byte == 0x7f {
                self.end = None;
                return Some(Err(WalkError::Unusable(Unusable::header(
                    "a control character in the part walked",
                ))));
            }
            if in_quotes {
                if byte == b'"' {
                    let before = line.get(..start - 1).unwrap_or_default();
                    let backslashes = before
                        .iter()
                        .rev()
                        .take(budget)
                        .take_while(|&&b| b == b'\\')
                        .count();
                    in_quotes = backslashes % 2 == 1;
                }
            } else if self.quoted_strings && byte == b'"' {
                in_quotes = true;
            } else if byte == b',' {
                self.end = Some(start - 1);
                return Some(Ok(line.get(start..).unwrap_or_default()));
            }
            start -= 1;
        }
        self.end = None;
        if in_quotes {
            return Some(Err(WalkError::Unusable(Unusable::element(
                "an unterminated quoted string",
                line,
            ))));
        }
        Some(Ok(line))
    }
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
pub(super) fn parse_x_forwarded_for(element: &[u8]) -> Result<IpAddr, &'static str> {
    let node = trim_ows(element);
    if node.is_empty() {
        return Err("an empty element");
    }
    let node = std::str::from_utf8(node).map_err(|_| "not an address (non-ASCII bytes)")?;
    parse_node(node, ForwardedHeader::XForwardedFor)
}

/// The `for` parameter of one RFC 7239 `forwarded-element`
/// (`for=192.0.2.60;proto=http;by=203.0.113.43`).
pub(super) fn parse_forwarded(element: &[u8]) -> Result<IpAddr, &'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_aware_split() {
        let mut parts = Vec::new();
        assert!(split_list(br#"for="a,b";x=1, for=c"#, b',', true, &mut parts).is_ok());
        assert_eq!(parts, [&br#"for="a,b";x=1"#[..], b" for=c"]);
        let mut parts = Vec::new();
        assert!(split_list(br#"for="a\",b"#, b',', true, &mut parts).is_err());
    }

    #[test]
    fn elements_from_the_right() {
        let walk = |line: &[u8]| {
            let mut elements = ElementsFromRight::new(line, true);
            let mut found = Vec::new();
            while let Some(element) = elements.next_within(1024) {
                match element {
                    Ok(element) => found.push(String::from_utf8_lossy(element).into_owned()),
                    Err(_) => {
                        found.push("!".to_owned());
                        break;
                    }
                }
            }
            found
        };
        assert_eq!(
            walk(br#"for="a,b";x=1, for=c"#),
            [" for=c", r#"for="a,b";x=1"#]
        );
        assert_eq!(walk(br#"for=", for=c"#), [" for=c", "!"]);
        assert_eq!(
            walk(br#"x="a\\", y="b\",c""#),
            [r#" y="b\",c""#, r#"x="a\\""#]
        );
        assert_eq!(walk(b"a,,b"), ["b", "", "a"]);
        let mut long = ElementsFromRight::new(b"a, bbbb", false);
        assert!(matches!(long.next_within(4), Some(Err(WalkError::TooLong))));
    }

    #[test]
    fn unquoting() {
        assert_eq!(unquote(br#""[::1]:80""#).as_deref(), Some(&b"[::1]:80"[..]));
        assert_eq!(unquote(br#""1.2\.3.4""#).as_deref(), Some(&b"1.2.3.4"[..]));
        assert_eq!(unquote(br#""a"b""#), None);
        assert_eq!(unquote(br#""a\""#), None);
        assert_eq!(unquote(b"\""), None);
    }
}
