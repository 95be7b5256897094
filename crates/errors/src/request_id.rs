use http::{HeaderName, HeaderValue};

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id accepted from a caller.
const MAX_LEN: usize = 64;

/// A request id that is safe to echo anywhere: 1–64 characters of `[A-Za-z0-9._-]`.
///
/// A caller's `X-Request-Id` is only propagated when it parses; anything else
/// (CR/LF for header or log injection, a 1 KB blob to bloat logs, unicode
/// look-alikes) is replaced by a freshly generated id. Parsing up front means a
/// `RequestId` can be put into a header, a log line or JSON without escaping.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Box<str>);

impl RequestId {
    /// Parses a caller-supplied id, or `None` when it is empty, longer than 64
    /// characters or holds anything outside `[A-Za-z0-9._-]`.
    pub fn parse(candidate: &str) -> Option<RequestId> {
        let valid = !candidate.is_empty()
            && candidate.len() <= MAX_LEN
            && candidate
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        valid.then(|| RequestId(candidate.into()))
    }

    /// Parses the raw bytes of an `X-Request-Id` header value.
    pub fn from_header(value: &HeaderValue) -> Option<RequestId> {
        std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(RequestId::parse)
    }

    /// Builds a fresh id from 16 random bytes, formatted as a UUIDv4
    /// (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    ///
    /// This crate has no random source of its own; the adapters pass bytes from
    /// the operating system's CSPRNG.
    pub fn from_random_bytes(mut bytes: [u8; 16]) -> RequestId {
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Written into a fixed buffer, then copied once (it runs on every
        // request without an id of its own).
        let mut text = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            text[at] = HEX[usize::from(byte >> 4)];
            text[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        // Invariant: hex digits and dashes are ASCII.
        RequestId(
            std::str::from_utf8(&text)
                .expect("hex digits and dashes are ASCII")
                .into(),
        )
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn to_header_value(&self) -> HeaderValue {
        // Invariant: `parse` and `from_random_bytes` only ever hold visible ASCII.
        HeaderValue::from_str(&self.0).expect("request ids are visible ASCII")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet_up_to_64_chars() {
        assert!(RequestId::parse("abc-DEF_123.x").is_some());
        assert!(RequestId::parse(&"a".repeat(64)).is_some());
    }

    #[test]
    fn header_injection_and_log_bloat_ids_are_refused() {
        for bad in [
            "",
            "a\r\nSet-Cookie: x=1",
            "id\n",
            "id with space",
            "ünïcode",
            "ｒｅｑ", // full-width look-alikes
            "a/b",
            "<script>",
            &"a".repeat(65),
            &"x".repeat(1024),
        ] {
            assert!(RequestId::parse(bad).is_none(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn generated_ids_are_uuid_v4_and_parse_back() {
        let id = RequestId::from_random_bytes([0xff; 16]);
        assert_eq!(id.as_str(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = RequestId::from_random_bytes([0; 16]);
        assert_eq!(id.as_str(), "00000000-0000-4000-8000-000000000000");
        assert_eq!(RequestId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.to_header_value(), id.as_str());
        // Every byte lands in its place (the dashes after bytes 4, 6, 8, 10).
        let id = RequestId::from_random_bytes(std::array::from_fn(|i| i as u8));
        assert_eq!(id.as_str(), "00010203-0405-4607-8809-0a0b0c0d0e0f");
    }

    #[test]
    fn from_header_rejects_non_utf8_bytes() {
        let value = HeaderValue::from_bytes(b"req\xff1").unwrap();
        assert!(RequestId::from_header(&value).is_none());
        let value = HeaderValue::from_static("req-1");
        assert_eq!(RequestId::from_header(&value).unwrap().as_str(), "req-1");
    }
}
