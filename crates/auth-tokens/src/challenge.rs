//! The RFC 6750 §3 `WWW-Authenticate: Bearer` challenge, written in one place
//! so the authorizer's challenges and a token refusal's cannot drift apart.

use std::fmt::Write as _;

use http::HeaderValue;

/// The RFC 6750 §3.1 error codes this crate answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BearerError {
    /// `invalid_token`: malformed, badly signed, expired or revoked.
    InvalidToken,
    /// `insufficient_scope`: the token lacks a scope the request needs.
    InsufficientScope,
}

impl BearerError {
    const fn code(self) -> &'static str {
        match self {
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
        }
    }
}

/// A challenge that cannot be sent: a quoted value holds `"` or `\`, or the
/// text is not a valid header value. Holds the text, for the caller's message.
#[derive(Debug)]
pub(crate) struct InvalidChallenge {
    pub(crate) text: String,
}

/// `Bearer realm="…"`, then `, error="…"` and `, scope="…"` when given, in
/// that order.
///
/// Values are quoted as they are, never escaped: one holding `"` or `\` is
/// refused, since it could close the quote and inject parameters. Callers
/// pass validated or [`quotable_realm`]-cleaned text, so that refusal is a
/// last line of defence rather than a path they rely on.
pub(crate) fn bearer(
    realm: &str,
    error: Option<BearerError>,
    scope: Option<&str>,
) -> Result<HeaderValue, InvalidChallenge> {
    let mut text = format!("Bearer realm=\"{realm}\"");
    if let Some(error) = error {
        let _ = write!(text, ", error=\"{}\"", error.code());
    }
    if let Some(scope) = scope {
        let _ = write!(text, ", scope=\"{scope}\"");
    }
    let unquotable = |value: &str| value.contains(['"', '\\']);
    if unquotable(realm) || scope.is_some_and(unquotable) {
        return Err(InvalidChallenge { text });
    }
    match HeaderValue::from_str(&text) {
        Ok(value) => Ok(value),
        Err(_) => Err(InvalidChallenge { text }),
    }
}

/// An unvalidated realm made safe to quote: printable ASCII and spaces
/// without `"` and `\`, at most 64 characters. For callers that have a bare
/// realm string rather than an [`Authorizer`](crate::authz::Authorizer)'s
/// validated one, and must still answer with a challenge.
pub(crate) fn quotable_realm(realm: &str) -> String {
    realm
        .chars()
        .filter(|c| (c.is_ascii_graphic() && *c != '"' && *c != '\\') || *c == ' ')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{BearerError, bearer, quotable_realm};

    #[test]
    fn parameters_come_in_rfc_6750_order() {
        let header = |realm, error, scope| bearer(realm, error, scope).unwrap();
        assert_eq!(header("api", None, None), r#"Bearer realm="api""#);
        assert_eq!(
            header("api", Some(BearerError::InvalidToken), None),
            r#"Bearer realm="api", error="invalid_token""#
        );
        assert_eq!(
            header(
                "api",
                Some(BearerError::InsufficientScope),
                Some("posts:read")
            ),
            r#"Bearer realm="api", error="insufficient_scope", scope="posts:read""#
        );
    }

    #[test]
    fn a_value_that_could_close_its_quote_is_refused() {
        for realm in [r#"a", error="x"#, r"a\"] {
            let refused = bearer(realm, None, None).unwrap_err();
            assert!(
                refused.text.starts_with("Bearer realm="),
                "{}",
                refused.text
            );
        }
        assert!(bearer("api", Some(BearerError::InsufficientScope), Some("a\"b")).is_err());
        assert!(bearer("api\n", None, None).is_err());
    }

    #[test]
    fn quotable_realm_keeps_spaces_and_drops_what_cannot_be_quoted() {
        assert_eq!(quotable_realm("my \"api\"\\\n"), "my api");
        assert_eq!(quotable_realm(&"r".repeat(100)).len(), 64);
    }
}
