//! Response headers for serving a stored upload without letting it act as
//! a page of your site.

use std::fmt::Write as _;

use http::header::{
    CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue};

use super::{DisplayName, FileType};

/// The `Content-Security-Policy` every served upload gets: `sandbox` puts
/// the document in a unique opaque origin with scripts, forms and plugins
/// off, even if a browser renders it; `default-src 'none'` loads nothing.
pub const UPLOAD_CSP: &str = "sandbox; default-src 'none'";

/// The headers to serve a stored upload with:
///
/// - `Content-Type`: the type checked at upload ([`FileType::mime`]), never
///   one the client declared;
/// - `Content-Disposition: attachment` with the display name, as an ASCII
///   `filename` fallback and the exact UTF-8 name in `filename*`
///   (RFC 6266 §4.3, RFC 8187 encoding): the browser downloads instead of
///   rendering it in your origin;
/// - `X-Content-Type-Options: nosniff`: the browser does not guess another
///   type (an image that is also HTML stays an image);
/// - `Content-Security-Policy: sandbox; default-src 'none'` ([`UPLOAD_CSP`]):
///   if it is rendered anyway (opened from the downloads list, an old
///   browser, a scriptable SVG or HTML a policy allowed), it runs in an
///   opaque origin with no script.
///
/// ```
/// use palisade_validate::{DisplayName, FileType, download_headers};
///
/// let name = DisplayName::sanitize("report \"Q3\" – final.pdf");
/// let headers = download_headers(&name, FileType::Pdf);
/// assert_eq!(headers["content-type"], "application/pdf");
/// assert_eq!(
///     headers["content-disposition"],
///     "attachment; filename=\"report _Q3_ _ final.pdf\"; \
///      filename*=UTF-8''report%20_Q3_%20%E2%80%93%20final.pdf"
/// );
/// assert_eq!(headers["x-content-type-options"], "nosniff");
/// assert_eq!(headers["content-security-policy"], "sandbox; default-src 'none'");
/// ```
pub fn download_headers(name: &DisplayName, file_type: FileType) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(file_type.mime()));
    headers.insert(CONTENT_DISPOSITION, content_disposition(name.as_str()));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(UPLOAD_CSP),
    );
    headers
}

/// `attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded>`.
fn content_disposition(name: &str) -> HeaderValue {
    let mut value = String::from("attachment; filename=\"");
    value.push_str(&ascii_fallback(name));
    value.push_str("\"; filename*=UTF-8''");
    for byte in name.bytes() {
        if is_attr_char(byte) {
            value.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(value, "%{byte:02X}");
        }
    }
    // Invariant: every character pushed is visible ASCII or a space inside
    // the quoted fallback, which HeaderValue accepts.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The name for clients that ignore `filename*`: printable ASCII only, with
/// `"` and `\` (quoted-string escapes some clients mishandle) and `%` (some
/// browsers percent-decode `filename`) replaced by `_`, as is anything
/// outside ASCII or any control character (CR/LF would split the header).
fn ascii_fallback(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            '"' | '\\' | '%' => '_',
            ' '..='~' => c,
            _ => '_',
        })
        .collect();
    if fallback.trim_matches(['_', ' ', '.']).is_empty() {
        super::filename::DEFAULT_DISPLAY_NAME.to_owned()
    } else {
        fallback
    }
}

/// RFC 8187 §3.2.1 `attr-char`: the bytes `filename*` may carry unencoded.
fn is_attr_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_injection_characters_never_reach_the_header() {
        // A display name is already clean; the encoder is safe on raw input too.
        let value = content_disposition("a\"; filename=evil.html\r\nSet-Cookie: x=1\\");
        let text = value.to_str().unwrap_or_default();
        assert!(!text.contains('\r') && !text.contains('\n'));
        assert!(
            text.starts_with("attachment; filename=\"a_; filename=evil.html__Set-Cookie: x=1_\";")
        );
        assert!(text.contains(
            "filename*=UTF-8''a%22%3B%20filename%3Devil.html%0D%0ASet-Cookie%3A%20x%3D1%5C"
        ));
    }

    #[test]
    fn non_ascii_names_get_a_default_fallback() {
        let value = content_disposition("日本語.pdf");
        assert_eq!(
            value.to_str().unwrap_or_default(),
            "attachment; filename=\"___.pdf\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.pdf"
        );
        assert_eq!(ascii_fallback("日本語"), "file");
    }
}
