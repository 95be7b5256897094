//! The strict reading of a token's JOSE header and payload (untrusted bytes,
//! fuzzed by `jwt_verify`).
//!
//! RFC 7515 §5.2 and RFC 7519 §7.2: each part is the base64url of UTF-8
//! JSON, an object. serde alone is laxer: a derived struct reads a JSON
//! array by position, serde_json skips an ignored string without checking
//! its UTF-8 when reading bytes, and a repeated key silently keeps one of
//! its values (which one differs between libraries, so two verifiers would
//! read two different tokens). Here, each part is read once:
//!
//! - its bytes must be UTF-8 ([`std::str::from_utf8`], then serde_json reads
//!   the `&str`, so every string, ignored or not, is valid UTF-8);
//! - it must be a JSON object (the visitors accept maps only);
//! - no key may appear twice, at any depth ([`StrictValue`] for the values
//!   nobody reads as a type, typed slots that refuse a second value for the
//!   others).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON object's key: borrowed from the input when it has no escapes.
pub(super) struct Key<'de>(pub(super) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
            fn visit_string<E: de::Error>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Stores `value` in `slot`, refusing a second value for the same key.
pub(super) fn fill<T, E: de::Error>(
    slot: &mut Option<T>,
    key: &'static str,
    value: T,
) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(key));
    }
    *slot = Some(value);
    Ok(())
}

/// Inserts into the object of keys nobody reads as a type, refusing a
/// second value for the same key.
pub(super) fn insert_unique<E: de::Error>(
    map: &mut Map<String, Value>,
    key: Cow<'_, str>,
    value: Value,
) -> Result<(), E> {
    let key = key.into_owned();
    if map.contains_key(&key) {
        return Err(E::custom(format_args!("duplicate key {key:?}")));
    }
    map.insert(key, value);
    Ok(())
}

/// Any JSON value, with every object in it free of duplicate keys.
pub(super) struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            let value = map.next_value_seed(StrictValue)?;
            insert_unique(&mut object, key, value)?;
        }
        Ok(Value::Object(object))
    }
}

/// Reads one part of a token: base64url (no padding, no stray bits), UTF-8,
/// then `T` from the text. `T`'s deserializer decides the JSON shape (the
/// header's and the claims' accept objects only).
pub(super) fn read_part<T: de::DeserializeOwned>(
    part: &str,
    scratch: &mut Vec<u8>,
) -> Result<T, PartError> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    scratch.clear();
    URL_SAFE_NO_PAD
        .decode_vec(part, scratch)
        .map_err(|_| PartError::Base64)?;
    let text = std::str::from_utf8(scratch).map_err(|_| PartError::Utf8)?;
    serde_json::from_str(text).map_err(|_| PartError::Json)
}

/// Why a part could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PartError {
    /// Not base64url (without padding or stray bits).
    Base64,
    /// Not UTF-8.
    Utf8,
    /// Not the JSON this part must be.
    Json,
}

/// The JOSE header fields the verifier reads. Other parameters are read
/// (strictly) and ignored, `jwk`, `jku`, `x5u` and `x5c` among them: a key
/// the token brings along is the attacker's key.
#[derive(Debug)]
pub(super) struct Header {
    pub(super) alg: String,
    pub(super) typ: Option<String>,
    pub(super) kid: Option<String>,
    /// Whether `crit` is present at all (`"crit": null` included).
    pub(super) crit: bool,
    /// Whether `cty` is present at all: a nested JWT (RFC 7519 §5.2) or
    /// any other content type is not a Palisade token.
    pub(super) cty: bool,
}

impl<'de> de::Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Header, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
                let mut alg: Option<String> = None;
                let mut typ: Option<Option<String>> = None;
                let mut kid: Option<Option<String>> = None;
                let mut crit: Option<Value> = None;
                let mut cty: Option<Value> = None;
                // Parameters nobody reads, kept only to refuse repeats
                // (no allocation for a header without any).
                let mut others = Map::new();
                while let Some(Key(key)) = map.next_key()? {
                    match &*key {
                        "alg" => fill(&mut alg, "alg", map.next_value()?)?,
                        "typ" => fill(&mut typ, "typ", map.next_value()?)?,
                        "kid" => fill(&mut kid, "kid", map.next_value()?)?,
                        "crit" => fill(&mut crit, "crit", map.next_value_seed(StrictValue)?)?,
                        "cty" => fill(&mut cty, "cty", map.next_value_seed(StrictValue)?)?,
                        _ => {
                            let value = map.next_value_seed(StrictValue)?;
                            insert_unique(&mut others, key, value)?;
                        }
                    }
                }
                Ok(Header {
                    alg: alg.ok_or_else(|| de::Error::missing_field("alg"))?,
                    typ: typ.flatten(),
                    kid: kid.flatten(),
                    crit: crit.is_some(),
                    cty: cty.is_some(),
                })
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

/// A payload read as one strict JSON object, for the verifier's generic
/// path (claims types other than [`Claims`](super::Claims)).
pub(super) struct Object(pub(super) Map<String, Value>);

impl<'de> de::Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Object, D::Error> {
        match deserializer.deserialize_map(StrictValue)? {
            Value::Object(map) => Ok(Object(map)),
            _ => Err(de::Error::custom("expected a JSON object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StrictValue;
    use serde::de::DeserializeSeed;

    fn strict(text: &str) -> bool {
        StrictValue
            .deserialize(&mut serde_json::Deserializer::from_str(text))
            .is_ok()
    }

    #[test]
    fn headers_are_objects_of_unique_utf8_keys() {
        use super::{Header, PartError, read_part};
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let read = |bytes: &[u8]| {
            read_part::<Header>(&URL_SAFE_NO_PAD.encode(bytes), &mut Vec::new()).map(|_| ())
        };
        assert_eq!(read(br#"{"alg":"HS256","x":[1,{"y":null}]}"#), Ok(()));
        assert_eq!(read(br#"["HS256","at+jwt","a1"]"#), Err(PartError::Json));
        assert_eq!(
            read(b"{\"alg\":\"HS256\",\"x\":\"\xff\xfe\"}"),
            Err(PartError::Utf8)
        );
        assert_eq!(
            read(br#"{"alg":"HS256","alg":"HS256"}"#),
            Err(PartError::Json)
        );
        assert_eq!(
            read(br#"{"alg":"HS256","jwk":{"k":1,"k":2}}"#),
            Err(PartError::Json)
        );
        assert_eq!(read(br#"{"alg":"HS256"} "#), Ok(()));
        assert_eq!(read(br#"{"alg":"HS256"}{}"#), Err(PartError::Json));
    }

    #[test]
    fn duplicate_keys_are_refused_at_every_depth() {
        assert!(strict(r#"{"a":{"b":[{"c":1,"d":2}]}}"#));
        assert!(!strict(r#"{"a":1,"a":1}"#));
        assert!(!strict(r#"{"a":{"b":1,"b":2}}"#));
        assert!(!strict(r#"[{"b":1,"\u0062":2}]"#));
    }
}
