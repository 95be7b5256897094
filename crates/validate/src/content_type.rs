//! [`JsonContentType`]: a route that parses JSON requires a JSON media type
//! (415 otherwise).
//!
//! Accepted: `application/json`, compared case-insensitively (RFC 9110
//! §8.3.1), optionally with `charset=utf-8` (any case, quoted or not; RFC
//! 8259 §8.1 makes UTF-8 the only charset of JSON). Refused with 415
//! `unsupported_media_type`: a missing or repeated `Content-Type`, any other
//! type, another charset, any other parameter.
//!
//! **The `+json` suffix** (`application/merge-patch+json`,
//! `application/problem+json`, RFC 6839) is refused by default and accepted
//! with [`allow_json_suffix`](JsonContentType::allow_json_suffix). The
//! reason is precision, not CSRF: a cross-site form can send only
//! `application/x-www-form-urlencoded`, `multipart/form-data` and
//! `text/plain` without a CORS preflight, so every `application/*` JSON type
//! is equally out of a form's reach; a route opts in when it documents such
//! a type (a JSON Merge Patch endpoint).

use http::HeaderMap;
use http::header::CONTENT_TYPE;
use palisade_errors::ErrorKind;

use crate::Refusal;

/// The JSON media-type rule of a route. See the [module docs](self).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
/// use palisade_validate::content_type::JsonContentType;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("Application/JSON; charset=UTF-8"));
/// assert!(JsonContentType::new().check(&headers).is_ok());
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/merge-patch+json"));
/// assert!(JsonContentType::new().check(&headers).is_err());
/// assert!(JsonContentType::new().allow_json_suffix().check(&headers).is_ok());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonContentType {
    allow_suffix: bool,
}

impl JsonContentType {
    /// `application/json` only.
    pub fn new() -> JsonContentType {
        JsonContentType::default()
    }

    /// Also `application/<anything>+json`.
    pub fn allow_json_suffix(mut self) -> JsonContentType {
        self.allow_suffix = true;
        self
    }

    /// Whether the request's `Content-Type` is accepted (415 otherwise).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut values = headers.get_all(CONTENT_TYPE).iter();
        let accepted = match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok().is_some_and(|text| self.accepts(text)),
            _ => false,
        };
        if accepted {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorKind::UnsupportedMediaType,
                "unsupported_media_type",
                "content-type",
            ))
        }
    }

    /// Whether `value` (a `Content-Type` value) is accepted.
    pub fn accepts(&self, value: &str) -> bool {
        let mut parts = value.split(';');
        let essence = parts.next().unwrap_or_default().trim();
        let Some((kind, subtype)) = essence.split_once('/') else {
            return false;
        };
        let json = kind.eq_ignore_ascii_case("application")
            && (subtype.eq_ignore_ascii_case("json")
                || (self.allow_suffix && has_json_suffix(subtype)));
        json && parts.all(is_utf8_charset)
    }
}

/// Whether the request's headers announce a body: a `Content-Length` other
/// than `0`, or any `Transfer-Encoding` (what a content-type rule applies
/// to; a GET without a body needs no `Content-Type`).
///
/// Headers alone are not enough on HTTP/2 and HTTP/3, where a body may come
/// with neither: an adapter also treats a body stream that is not already
/// at its end as a body (`!http_body::Body::is_end_stream`).
pub fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get_all(http::header::CONTENT_LENGTH)
            .iter()
            .any(|length| length.as_bytes() != b"0")
}

fn has_json_suffix(subtype: &str) -> bool {
    let bytes = subtype.as_bytes();
    bytes.len() > 5
        && bytes[bytes.len() - 5..].eq_ignore_ascii_case(b"+json")
        && bytes[..bytes.len() - 5]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

fn is_utf8_charset(parameter: &str) -> bool {
    let Some((name, value)) = parameter.split_once('=') else {
        return false;
    };
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_with_or_without_utf8_charset_in_any_case() {
        let rule = JsonContentType::new();
        for ok in [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
            " application/json ; Charset=Utf-8 ",
        ] {
            assert!(rule.accepts(ok), "{ok}");
        }
    }

    /// A form post (`text/plain`, urlencoded, multipart: the types a
    /// cross-site form sends without preflight) never reaches a JSON parser.
    #[test]
    fn cross_site_form_types_and_lookalikes_are_refused() {
        let rule = JsonContentType::new();
        for refused in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; charset=utf-16",
            "application/json; boundary=x",
            "application/json;",
            "application/merge-patch+json",
            "application/json/x",
        ] {
            assert!(!rule.accepts(refused), "{refused}");
        }
        let suffix = rule.allow_json_suffix();
        assert!(suffix.accepts("application/merge-patch+json"));
        assert!(suffix.accepts("application/problem+JSON; charset=utf-8"));
        assert!(!suffix.accepts("application/+json"));
        assert!(!suffix.accepts("text/x+json"));
    }

    #[test]
    fn a_body_is_a_length_other_than_zero_or_any_transfer_encoding() {
        let mut headers = HeaderMap::new();
        assert!(!has_body(&headers));
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("0"),
        );
        assert!(!has_body(&headers));
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("7"),
        );
        assert!(has_body(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::TRANSFER_ENCODING,
            http::HeaderValue::from_static("chunked"),
        );
        assert!(has_body(&headers));
    }

    #[test]
    fn missing_or_repeated_header_is_415() {
        let rule = JsonContentType::new();
        let mut headers = HeaderMap::new();
        assert_eq!(
            rule.check(&headers).map_err(|r| r.kind()),
            Err(ErrorKind::UnsupportedMediaType)
        );
        headers.append(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        assert!(rule.check(&headers).is_ok());
        headers.append(CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        assert!(rule.check(&headers).is_err());
    }
}
