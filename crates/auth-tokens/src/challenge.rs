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
/// pass text validated by [`is_realm`] (and scope-tokens), so that refusal
/// is a last line of defence rather than a path they rely on.
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

/// Longest realm. It is sent in every challenge, so it stays short.
pub(crate) const MAX_REALM_LEN: usize = 64;

/// The one realm rule, for the [`Authorizer`](crate::authz::Authorizer)'s
/// configuration and [`TokenError::to_error`](crate::TokenError::to_error)
/// alike: 1–64 characters of printable ASCII without space, `"` and `\`
/// (an RFC 6749 scope-token), so the realm sits in its quoted-string as it
/// is and cannot close the quote to inject or break parameters.
pub(crate) fn is_realm(realm: &str) -> bool {
    (1..=MAX_REALM_LEN).contains(&realm.len())
        && realm
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::{BearerError, bearer, is_realm};

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
    fn realms_are_short_scope_tokens() {
        for good in ["api", "my-api.example.com", "a", &"r".repeat(64)] {
            assert!(is_realm(good), "{good}");
        }
        for bad in [
            "",
            "my api",
            "a\"b",
            "a\\b",
            "caf\u{e9}",
            "a\n",
            &"r".repeat(65),
        ] {
            assert!(!is_realm(bad), "{bad:?}");
        }
    }
}
