//! The claims a token carries and the token types.

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::strict::{Key, StrictValue, fill, insert_unique};

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
///
/// Deserializing is strict (RFC 7519 §7.2): a JSON object only (an array
/// is not read by position), no key twice at any depth, and the claims the
/// verifier checks (`exp`, `nbf`, `iat`, `iss`, `aud`, `type`) read with
/// the same types the verifier checks them with. Keys that are not
/// Palisade's go to `custom`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims<T = NoCustomClaims> {
    /// The subject: the user id.
    pub sub: String,
    /// The token id: 128 random bits, what logout blacklists.
    pub jti: String,
    /// The session (refresh family) the token belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Issued at (seconds since the epoch). Optional (RFC 7519 §4.1.6;
    /// RFC 9068 issuers send it); checked not to be in the future when
    /// present. A token without it counts, for revocation, as issued at the
    /// earliest possible time: any logout-everywhere revokes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before. Optional; checked when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Expires at.
    pub exp: u64,
    /// The issuer.
    pub iss: String,
    /// The audience (a string or an array of strings in JSON).
    pub aud: Vec<String>,
    /// The token type (the seeds' `type` claim, beside the `typ` header).
    #[serde(rename = "type")]
    pub token_type: TokenType,
    /// The role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Permissions granted in the token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// OAuth2 scopes, space-separated (RFC 6749 §3.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The application's own claims.
    #[serde(flatten)]
    pub custom: T,
}

/// The registered claims the verifier checks, as read from a token: one
/// set of names and types for [`Claims`] and for the verifier's generic
/// path.
#[derive(Debug, Default)]
pub(super) struct Registered {
    pub(super) exp: Option<u64>,
    pub(super) nbf: Option<u64>,
    pub(super) iat: Option<u64>,
    pub(super) iss: Option<String>,
    pub(super) aud: Option<Vec<String>>,
    pub(super) token_type: Option<TokenType>,
}

/// One of the [`Registered`] claims.
#[derive(Clone, Copy, Debug)]
pub(super) enum RegisteredField {
    Exp,
    Nbf,
    Iat,
    Iss,
    Aud,
    Type,
}

impl RegisteredField {
    pub(super) const ALL: [(&'static str, RegisteredField); 6] = [
        ("exp", RegisteredField::Exp),
        ("nbf", RegisteredField::Nbf),
        ("iat", RegisteredField::Iat),
        ("iss", RegisteredField::Iss),
        ("aud", RegisteredField::Aud),
        ("type", RegisteredField::Type),
    ];

    pub(super) fn of(key: &str) -> Option<RegisteredField> {
        Some(match key {
            "exp" => RegisteredField::Exp,
            "nbf" => RegisteredField::Nbf,
            "iat" => RegisteredField::Iat,
            "iss" => RegisteredField::Iss,
            "aud" => RegisteredField::Aud,
            "type" => RegisteredField::Type,
            _ => return None,
        })
    }
}

impl Registered {
    /// Reads `field` from `value`, refusing a second value.
    pub(super) fn read<'de, D: Deserializer<'de>>(
        &mut self,
        field: RegisteredField,
        value: D,
    ) -> Result<(), D::Error> {
        match field {
            RegisteredField::Exp => fill(&mut self.exp, "exp", u64::deserialize(value)?),
            RegisteredField::Nbf => fill(&mut self.nbf, "nbf", u64::deserialize(value)?),
            RegisteredField::Iat => fill(&mut self.iat, "iat", u64::deserialize(value)?),
            RegisteredField::Iss => fill(&mut self.iss, "iss", String::deserialize(value)?),
            RegisteredField::Aud => fill(&mut self.aud, "aud", one_or_many(value)?),
            RegisteredField::Type => {
                fill(&mut self.token_type, "type", TokenType::deserialize(value)?)
            }
        }
    }
}

/// [`Registered::read`] as a seed, for a map's next value.
struct RegisteredSeed<'a> {
    registered: &'a mut Registered,
    field: RegisteredField,
}

impl<'de> DeserializeSeed<'de> for RegisteredSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.registered.read(self.field, deserializer)
    }
}

/// The claims as read, before the verifier's checks decide which missing
/// claim is which refusal.
#[derive(Debug)]
pub(super) struct ClaimsParts<T> {
    pub(super) registered: Registered,
    pub(super) sub: Option<String>,
    jti: Option<String>,
    sid: Option<Option<String>>,
    role: Option<Option<String>>,
    permissions: Option<Vec<String>>,
    scope: Option<Option<String>>,
    custom: T,
}

impl<T> ClaimsParts<T> {
    /// The claims, or the name of a required one that is missing (with the
    /// subject, for the log).
    pub(super) fn into_claims(self) -> Result<Claims<T>, (&'static str, Option<String>)> {
        let Registered {
            exp,
            nbf,
            iat,
            iss,
            aud,
            token_type,
        } = self.registered;
        let missing = [
            ("sub", self.sub.is_none()),
            ("jti", self.jti.is_none()),
            ("exp", exp.is_none()),
            ("iss", iss.is_none()),
            ("aud", aud.is_none()),
            ("type", token_type.is_none()),
        ]
        .into_iter()
        .find_map(|(name, missing)| missing.then_some(name));
        if let Some(missing) = missing {
            return Err((missing, self.sub));
        }
        let (Some(sub), Some(jti), Some(exp), Some(iss), Some(aud), Some(token_type)) =
            (self.sub, self.jti, exp, iss, aud, token_type)
        else {
            return Err(("sub", None));
        };
        Ok(Claims {
            sub,
            jti,
            sid: self.sid.flatten(),
            iat,
            nbf,
            exp,
            iss,
            aud,
            token_type,
            role: self.role.flatten(),
            permissions: self.permissions.unwrap_or_default(),
            scope: self.scope.flatten(),
            custom: self.custom,
        })
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for ClaimsParts<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PartsVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> Visitor<'de> for PartsVisitor<T> {
            type Value = ClaimsParts<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClaimsParts<T>, A::Error> {
                let mut registered = Registered::default();
                let (mut sub, mut jti, mut sid, mut role, mut permissions, mut scope) =
                    (None, None, None, None, None, None);
                let mut rest = Map::new();
                while let Some(Key(key)) = map.next_key()? {
                    if let Some(field) = RegisteredField::of(&key) {
                        map.next_value_seed(RegisteredSeed {
                            registered: &mut registered,
                            field,
                        })?;
                        continue;
                    }
                    match &*key {
                        "sub" => fill(&mut sub, "sub", map.next_value()?)?,
                        "jti" => fill(&mut jti, "jti", map.next_value()?)?,
                        "sid" => fill(&mut sid, "sid", map.next_value()?)?,
                        "role" => fill(&mut role, "role", map.next_value()?)?,
                        "permissions" => fill(&mut permissions, "permissions", map.next_value()?)?,
                        "scope" => fill(&mut scope, "scope", map.next_value()?)?,
                        _ => {
                            let value = map.next_value_seed(StrictValue)?;
                            insert_unique(&mut rest, key, value)?;
                        }
                    }
                }
                let custom = T::deserialize(Value::Object(rest)).map_err(de::Error::custom)?;
                Ok(ClaimsParts {
                    registered,
                    sub,
                    jti,
                    sid,
                    role,
                    permissions,
                    scope,
                    custom,
                })
            }
        }
        deserializer.deserialize_map(PartsVisitor(std::marker::PhantomData))
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Claims<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ClaimsParts::<T>::deserialize(deserializer)?
            .into_claims()
            .map_err(|(missing, _)| de::Error::missing_field(missing))
    }
}

impl<T> Claims<T> {
    /// The `iat` a revocation check compares with the subject's
    /// `not_before`: a token without `iat` counts as issued at the earliest
    /// possible time (0), so any logout-everywhere revokes it, never as
    /// fresh.
    pub fn revocation_issued_at(&self) -> u64 {
        self.iat.unwrap_or(0)
    }
}

/// `aud`: one string or an array of strings.
pub(super) fn one_or_many<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    struct OneOrMany;
    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: de::Error>(self, one: &str) -> Result<Vec<String>, E> {
            Ok(vec![one.to_owned()])
        }
        fn visit_string<E: de::Error>(self, one: String) -> Result<Vec<String>, E> {
            Ok(vec![one])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut many = Vec::new();
            while let Some(one) = seq.next_element()? {
                many.push(one);
            }
            Ok(many)
        }
    }
    deserializer.deserialize_any(OneOrMany)
}
