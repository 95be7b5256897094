//! `#[derive(Deserialize)]` settings from the environment: each field of a
//! flat struct is read from `<prefix><FIELD>` (or its `_FILE`), parsed by the
//! type serde asks for, and every problem is recorded, not only the first.
//!
//! Serde stops at the first error, so a field whose value does not parse is
//! recorded and handed to serde as a placeholder (`false`, `0`, `""`, the
//! first variant), and a missing required field is recorded and the struct
//! read again with a placeholder for it: the operator gets the whole list.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::error::{ConfigError, ConfigErrorKind};
use crate::value::FromEnvValue;

/// Reads `T` with `read` looking up each variable; the problems go to `errors`.
pub(crate) fn from_env<T: DeserializeOwned>(
    read: &dyn Fn(&str) -> Result<Option<String>, ConfigError>,
    prefix: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let mut placeholders: BTreeSet<&'static str> = BTreeSet::new();
    // Fields whose own Deserialize failed: reported, then left out.
    let mut skipped: BTreeSet<&'static str> = BTreeSet::new();
    let mut field_errors = Vec::new();
    loop {
        let recorded = RefCell::new(Vec::new());
        let deserializer = EnvDeserializer {
            read,
            prefix,
            errors: &recorded,
            placeholders: &placeholders,
            skipped: &skipped,
        };
        let result = T::deserialize(deserializer);
        let mut recorded = recorded.into_inner();
        match result {
            Err(DeError {
                missing: Some(field),
                ..
            }) if !placeholders.contains(field) && !skipped.contains(field) => {
                placeholders.insert(field);
            }
            Err(DeError {
                failed_field: Some(field),
                message,
                ..
            }) if !skipped.contains(field) => {
                field_errors.push(ConfigError::new(
                    ConfigErrorKind::Invalid,
                    variable(prefix, field),
                    message,
                ));
                skipped.insert(field);
            }
            result => {
                let missing = placeholders.iter().map(|field| {
                    let variable = variable(prefix, field);
                    ConfigError::new(
                        ConfigErrorKind::Missing,
                        &variable,
                        format!("required, not set (set {variable} or {variable}_FILE)"),
                    )
                });
                recorded.extend(field_errors);
                recorded.extend(missing);
                let value = match result {
                    Ok(value) => Some(value),
                    // A skipped field that has no default: already reported.
                    Err(DeError {
                        missing: Some(field),
                        ..
                    }) if skipped.contains(field) => None,
                    Err(error) => {
                        recorded.push(ConfigError::new(
                            ConfigErrorKind::Invalid,
                            prefix.trim_end_matches('_'),
                            error.message,
                        ));
                        None
                    }
                };
                let clean = recorded.is_empty();
                errors.extend(recorded);
                return value.filter(|_| clean);
            }
        }
    }
}

fn variable(prefix: &str, field: &str) -> String {
    format!("{prefix}{}", field.to_ascii_uppercase())
}

#[derive(Debug)]
struct DeError {
    /// A required field serde did not get.
    missing: Option<&'static str>,
    /// The field whose value failed its type's own `Deserialize`.
    failed_field: Option<&'static str>,
    message: String,
    /// Written by this module, so free of values; a foreign message (a
    /// type's own `Deserialize`) may quote the value and is not shown.
    ours: bool,
}

impl DeError {
    fn ours(message: impl Into<String>) -> DeError {
        DeError {
            missing: None,
            failed_field: None,
            message: message.into(),
            ours: true,
        }
    }
}

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(message: T) -> DeError {
        DeError {
            missing: None,
            failed_field: None,
            message: message.to_string(),
            ours: false,
        }
    }

    fn missing_field(field: &'static str) -> DeError {
        DeError {
            missing: Some(field),
            failed_field: None,
            message: format!("missing field `{field}`"),
            ours: true,
        }
    }
}

struct EnvDeserializer<'a> {
    read: &'a dyn Fn(&str) -> Result<Option<String>, ConfigError>,
    prefix: &'a str,
    errors: &'a RefCell<Vec<ConfigError>>,
    placeholders: &'a BTreeSet<&'static str>,
    skipped: &'a BTreeSet<&'static str>,
}

impl<'de> de::Deserializer<'de> for EnvDeserializer<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(DeError::ours(
            "settings from the environment must be a struct with named fields",
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let mut entries = Vec::new();
        for &field in fields.iter().filter(|field| !self.skipped.contains(*field)) {
            let variable = variable(self.prefix, field);
            match (self.read)(&variable) {
                Ok(Some(text)) => entries.push((field, variable, Some(text))),
                Ok(None) if self.placeholders.contains(field) => {
                    entries.push((field, variable, None));
                }
                Ok(None) => {}
                Err(error) => {
                    self.errors.borrow_mut().push(error);
                    entries.push((field, variable, None));
                }
            }
        }
        visitor.visit_map(Fields {
            entries: entries.into_iter(),
            value: None,
            errors: self.errors,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

type Entry = (&'static str, String, Option<String>);

struct Fields<'a> {
    entries: std::vec::IntoIter<Entry>,
    value: Option<Entry>,
    errors: &'a RefCell<Vec<ConfigError>>,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((field, variable, text)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some((field, variable, text));
        seed.deserialize(field.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let (field, variable, text) = self
            .value
            .take()
            .ok_or_else(|| DeError::ours("a value without its key"))?;
        seed.deserialize(Value {
            variable: &variable,
            text: text.as_deref(),
            errors: self.errors,
        })
        .map_err(|error| match error {
            DeError {
                missing: None,
                failed_field: None,
                message,
                ours,
            } => DeError {
                failed_field: Some(field),
                message: if ours {
                    message
                } else {
                    "not a valid value for this setting".to_owned()
                },
                ..DeError::ours("")
            },
            other => other,
        })
    }
}

/// One variable's value; `None` is a placeholder for a value already
/// reported as missing or invalid.
struct Value<'a> {
    variable: &'a str,
    text: Option<&'a str>,
    errors: &'a RefCell<Vec<ConfigError>>,
}

impl<'de, 'a> IntoDeserializer<'de, DeError> for Value<'a> {
    type Deserializer = Value<'a>;

    fn into_deserializer(self) -> Value<'a> {
        self
    }
}

impl Value<'_> {
    /// `text` parsed, or the placeholder when absent or invalid (recorded).
    fn parse<T: FromEnvValue>(&self, placeholder: T) -> T {
        let Some(text) = self.text else {
            return placeholder;
        };
        T::from_env_value(text).unwrap_or_else(|reason| {
            self.invalid(reason);
            placeholder
        })
    }

    fn parse_std<T: std::str::FromStr>(&self, placeholder: T, reason: &'static str) -> T {
        let Some(text) = self.text else {
            return placeholder;
        };
        text.trim().parse().unwrap_or_else(|_| {
            self.invalid(reason);
            placeholder
        })
    }

    fn invalid(&self, reason: &str) {
        self.errors.borrow_mut().push(ConfigError::new(
            ConfigErrorKind::Invalid,
            self.variable,
            reason,
        ));
    }
}

macro_rules! parsed {
    ($($method:ident $visit:ident $ty:ty = $placeholder:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.$visit(self.parse::<$ty>($placeholder))
        }
    )*};
}

macro_rules! parsed_std {
    ($($method:ident $visit:ident $ty:ty = $placeholder:expr, $reason:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.$visit(self.parse_std::<$ty>($placeholder, $reason))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_string(self.text.unwrap_or_default().to_owned())
    }

    parsed! {
        deserialize_bool visit_bool bool = false;
        deserialize_u8 visit_u8 u8 = 0;
        deserialize_u16 visit_u16 u16 = 0;
        deserialize_u32 visit_u32 u32 = 0;
        deserialize_u64 visit_u64 u64 = 0;
        deserialize_i32 visit_i32 i32 = 0;
        deserialize_i64 visit_i64 i64 = 0;
    }

    parsed_std! {
        deserialize_i8 visit_i8 i8 = 0, "expected an integer that fits in i8";
        deserialize_i16 visit_i16 i16 = 0, "expected an integer that fits in i16";
        deserialize_i128 visit_i128 i128 = 0, "expected an integer that fits in i128";
        deserialize_u128 visit_u128 u128 = 0, "expected an integer that fits in u128";
        deserialize_f32 visit_f32 f32 = 0.0, "expected a number";
        deserialize_f64 visit_f64 f64 = 0.0, "expected a number";
        deserialize_char visit_char char = '\0', "expected one character";
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_byte_buf(self.text.unwrap_or_default().as_bytes().to_vec())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text {
            Some(_) => visitor.visit_some(self),
            None => visitor.visit_none(),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    /// A comma-separated list, each entry parsed as the element type.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let entries: Vec<&str> = self
            .text
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let errors = self.errors;
        let variable = self.variable;
        visitor.visit_seq(de::value::SeqDeserializer::new(entries.into_iter().map(
            move |entry| Value {
                variable,
                text: Some(entry),
                errors,
            },
        )))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(DeError::ours(
            "nested settings are not read from one variable",
        ))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    /// A unit variant by name (case-insensitive); an unknown name is
    /// recorded and the first variant stands in.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let placeholder = variants.first().copied().unwrap_or_default();
        let chosen = match self.text {
            None => placeholder,
            Some(text) => match variants
                .iter()
                .find(|variant| variant.eq_ignore_ascii_case(text.trim()))
            {
                Some(variant) => *variant,
                None => {
                    self.invalid(&format!("expected one of: {}", variants.join(", ")));
                    placeholder
                }
            },
        };
        visitor.visit_enum(chosen.into_deserializer())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}
