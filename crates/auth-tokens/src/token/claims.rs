//! The claims a token carries and the token types.

use serde::{Deserialize, Deserializer, Serialize};

/// Which kind of token: each has its own keyring, `typ` header and `type`
/// claim, so one can never be used as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived, sent with every request (`typ: at+jwt`, RFC 9068).
    Access,
    /// Long-lived, sent only to the refresh endpoint (`typ: rt+jwt`).
    Refresh,
}

impl TokenType {
    /// The `typ` header value.
    pub const fn typ(self) -> &'static str {
        match self {
            TokenType::Access => "at+jwt",
            TokenType::Refresh => "rt+jwt",
        }
    }
}

/// No claims beyond Palisade's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoCustomClaims {}

/// The claims of a Palisade token. Each field has one JSON type; a token
/// whose `exp` is a string or whose `sub` is an object is refused, not
/// coerced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims<T = NoCustomClaims> {
    /// The subject: the user id.
    pub sub: String,
    /// The token id: 128 random bits, what logout blacklists.
    pub jti: String,
    /// The session (refresh family) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expires at.
    pub exp: u64,
    /// The issuer.
    pub iss: String,
    /// The audience (a string or an array of strings in JSON).
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// The token type (the seeds' `type` claim, beside the `typ` header).
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Permissions granted in the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// OAuth2 scopes, space-separated (RFC 6749 §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The application's own claims.
    #[serde(flatten)]
    pub custom: T,
}

pub(super) fn one_or_many<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}
