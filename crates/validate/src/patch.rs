//! PATCH/PUT tri-state: [`Patch<T>`] tells an absent field from an explicit
//! `null` from a value, and [`UpdateRules`] says which fields may be nulled
//! and which a PUT must carry.
//!
//! With `Option<T>`, `{}` and `{"nickname": null}` deserialize alike, so a
//! PATCH that meant "leave it" clears the field, or one that meant "clear
//! it" is ignored. `Patch<T>` keeps the three apart.

use palisade_errors::{ErrorKind, FieldError, SecurityEvent};

/// One field of a PATCH or PUT body: absent, explicitly `null`, or a value.
///
/// Deserialize it as a field marked `#[serde(default)]`: serde calls
/// `Deserialize` only for keys that are present, so the `default` is what
/// makes a missing key [`Absent`](Patch::Absent) (without it serde reports
/// the field as missing). To write one back out, skip the absent ones:
///
/// ```
/// use palisade_validate::Patch;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize, Serialize)]
/// #[serde(deny_unknown_fields)]
/// struct UserPatch {
///     #[serde(default, skip_serializing_if = "Patch::is_absent")]
///     name: Patch<String>,
///     #[serde(default, skip_serializing_if = "Patch::is_absent")]
///     nickname: Patch<String>,
/// }
///
/// let patch: UserPatch = serde_json::from_str(r#"{"nickname": null}"#).unwrap();
/// assert!(patch.name.is_absent());
/// assert!(patch.nickname.is_null());
///
/// assert_eq!(serde_json::to_string(&patch).unwrap(), r#"{"nickname":null}"#);
///
/// let mut nickname = Some("bob".to_owned());
/// patch.nickname.apply_to(&mut nickname);
/// assert_eq!(nickname, None);
/// ```
///
/// `Patch<Option<T>>` cannot tell `null` from a `null` value: use `Patch<T>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Patch<T> {
    /// The key was not sent: leave the field as it is.
    #[default]
    Absent,
    /// The key was sent as `null`: clear the field.
    Null,
    /// The key was sent with a value: set the field.
    Value(T),
}

impl<T> Patch<T> {
    /// Whether the key was not sent.
    pub const fn is_absent(&self) -> bool {
        matches!(self, Patch::Absent)
    }

    /// Whether the key was sent as `null`.
    pub const fn is_null(&self) -> bool {
        matches!(self, Patch::Null)
    }

    /// Whether the key was sent with a value.
    pub const fn is_value(&self) -> bool {
        matches!(self, Patch::Value(_))
    }

    /// The value, if one was sent.
    pub const fn value(&self) -> Option<&T> {
        match self {
            Patch::Value(value) => Some(value),
            _ => None,
        }
    }

    /// A `Patch` of a reference to the value.
    pub const fn as_ref(&self) -> Patch<&T> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(value) => Patch::Value(value),
        }
    }

    /// Maps the value, keeping absent and null.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(value) => Patch::Value(f(value)),
        }
    }

    /// `None` when absent, `Some(None)` when null, `Some(Some(v))` for a value.
    pub fn into_option(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(value) => Some(Some(value)),
        }
    }

    /// Applies the change to a nullable field of a model: absent leaves it,
    /// null clears it, a value sets it.
    pub fn apply_to(self, field: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Null => *field = None,
            Patch::Value(value) => *field = Some(value),
        }
    }

    /// Applies the change to a field that cannot be null: a value sets it,
    /// absent leaves it. Returns `false` (and leaves the field) for a null,
    /// which [`UpdateRules::required`] refuses beforehand with a 422.
    #[must_use = "a null on a non-nullable field is refused, not applied"]
    pub fn apply_to_required(self, field: &mut T) -> bool {
        match self {
            Patch::Absent => true,
            Patch::Null => false,
            Patch::Value(value) => {
                *field = value;
                true
            }
        }
    }
}

impl<T> From<Option<Option<T>>> for Patch<T> {
    fn from(option: Option<Option<T>>) -> Patch<T> {
        match option {
            None => Patch::Absent,
            Some(None) => Patch::Null,
            Some(Some(value)) => Patch::Value(value),
        }
    }
}

/// A present key: `null` becomes [`Patch::Null`], anything else `T`'s value.
/// (A missing key never reaches `Deserialize`; see the type's docs.)
impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Patch<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| match value {
            None => Patch::Null,
            Some(value) => Patch::Value(value),
        })
    }
}

/// Null and absent both serialize as `null`; skip absent fields with
/// `#[serde(skip_serializing_if = "Patch::is_absent")]`.
impl<T: serde::Serialize> serde::Serialize for Patch<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Value(value) => serializer.serialize_some(value),
            Patch::Absent | Patch::Null => serializer.serialize_none(),
        }
    }
}

/// Whether a body replaces the resource (PUT) or changes part of it (PATCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpdateMode {
    /// PATCH (RFC 5789 with JSON Merge Patch semantics, RFC 7396): absent
    /// fields are left as they are.
    Patch,
    /// PUT (RFC 9110 §9.3.4): the body is the whole new state, so every
    /// required field must be present.
    Put,
}

/// The rules of one update body, checked field by field; every broken rule
/// is collected, then [`finish`](Self::finish) refuses them all at once as
/// a 422 with one `{field, code}` detail each.
///
/// | rule | `null` | absent on PUT |
/// |---|---|---|
/// | [`required`](Self::required) | `null_not_allowed` | `required` |
/// | [`nullable`](Self::nullable) | clears | `required` (send `null` to clear) |
/// | [`optional`](Self::optional) | `null_not_allowed` | left as it is |
/// | [`nullable_optional`](Self::nullable_optional) | clears | left as it is |
///
/// On PATCH, absent is always allowed.
///
/// ```
/// use palisade_validate::{Patch, UpdateMode, UpdateRules};
///
/// # fn main() -> Result<(), palisade_errors::Error> {
/// let name: Patch<String> = Patch::Null;
/// let nickname: Patch<String> = Patch::Null;
/// let refused = UpdateRules::new(UpdateMode::Patch)
///     .required("name", &name)
///     .nullable("nickname", &nickname)
///     .finish()
///     .unwrap_err();
/// assert_eq!(refused.fields()[0].field(), "name");
/// assert_eq!(refused.fields()[0].code(), "null_not_allowed");
/// let error = palisade_errors::Error::from(refused);
/// assert_eq!(error.status(), 422);
///
/// // PUT: every required field is present.
/// let name = Patch::Value("Ada".to_owned());
/// UpdateRules::new(UpdateMode::Put)
///     .required("name", &name)
///     .nullable("nickname", &nickname)
///     .finish()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "call finish() to get the verdict"]
pub struct UpdateRules {
    mode: UpdateMode,
    refused: Vec<FieldError>,
    /// The `'static` code of each refused field, in the same order.
    codes: Vec<&'static str>,
}

impl UpdateRules {
    /// No fields checked yet.
    pub fn new(mode: UpdateMode) -> UpdateRules {
        UpdateRules {
            mode,
            refused: Vec::new(),
            codes: Vec::new(),
        }
    }

    /// Rules for a PATCH body.
    pub fn patch() -> UpdateRules {
        UpdateRules::new(UpdateMode::Patch)
    }

    /// Rules for a PUT body.
    pub fn put() -> UpdateRules {
        UpdateRules::new(UpdateMode::Put)
    }

    fn refuse(&mut self, field: &str, code: &'static str) {
        self.refused.push(FieldError::new(field, code));
        self.codes.push(code);
    }

    fn check<T>(mut self, field: &str, value: &Patch<T>, nullable: bool, on_put: bool) -> Self {
        match value {
            Patch::Null if !nullable => self.refuse(field, "null_not_allowed"),
            Patch::Absent if on_put && self.mode == UpdateMode::Put => {
                self.refuse(field, "required");
            }
            _ => {}
        }
        self
    }

    /// A field that always has a value: `null` is refused; PUT must send it.
    pub fn required<T>(self, field: &str, value: &Patch<T>) -> UpdateRules {
        self.check(field, value, false, true)
    }

    /// A field that may be cleared with `null`; PUT must send it (a value
    /// or `null`), since PUT replaces the whole resource.
    pub fn nullable<T>(self, field: &str, value: &Patch<T>) -> UpdateRules {
        self.check(field, value, true, true)
    }

    /// A field that cannot be null but that a PUT may leave out (the
    /// stored value, or the model's default, stays).
    pub fn optional<T>(self, field: &str, value: &Patch<T>) -> UpdateRules {
        self.check(field, value, false, false)
    }

    /// A field that may be nulled and that a PUT may leave out.
    pub fn nullable_optional<T>(self, field: &str, value: &Patch<T>) -> UpdateRules {
        self.check(field, value, true, false)
    }

    /// The verdict: `Ok` when every rule held, else every broken rule.
    ///
    /// # Errors
    ///
    /// An [`UpdateRefused`] listing each refused field and why; it is
    /// logged here as one `input_validation_fail` event naming the fields.
    pub fn finish(self) -> Result<(), UpdateRefused> {
        if self.refused.is_empty() {
            return Ok(());
        }
        let fields = self
            .refused
            .iter()
            .map(|refused| format!("{}:{}", refused.field(), refused.code()))
            .collect::<Vec<_>>()
            .join(",");
        tracing::info!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason = "update_rules",
            fields = %fields,
            "an update body broke its field rules"
        );
        Err(UpdateRefused {
            fields: self.refused,
            codes: self.codes,
        })
    }
}

/// An update body that broke its [`UpdateRules`]: a 422 `validation_failed`
/// with one `{field, code}` detail per broken rule (`null_not_allowed`,
/// `required`), never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateRefused {
    fields: Vec<FieldError>,
    codes: Vec<&'static str>,
}

impl UpdateRefused {
    /// The refused fields and why.
    pub fn fields(&self) -> &[FieldError] {
        &self.fields
    }
}

impl std::fmt::Display for UpdateRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} field(s) broke the update rules", self.fields.len())
    }
}

impl std::error::Error for UpdateRefused {}

/// 422 `validation_failed`, with the field details; already logged.
impl From<UpdateRefused> for palisade_errors::Error {
    fn from(refused: UpdateRefused) -> palisade_errors::Error {
        let mut error = palisade_errors::Error::new(ErrorKind::ValidationFailed);
        for (field, code) in refused.fields.iter().zip(&refused.codes) {
            error = error.with_detail(field.field(), code);
        }
        error.with_source(refused).logged()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        #[serde(default)]
        name: Patch<String>,
        #[serde(default)]
        age: Patch<u32>,
    }

    #[test]
    fn absent_null_and_value_are_three_states() {
        let body: Body = serde_json::from_str(r#"{"name": null, "age": 7}"#).unwrap();
        assert_eq!(body.name, Patch::Null);
        assert_eq!(body.age, Patch::Value(7));
        let body: Body = serde_json::from_str("{}").unwrap();
        assert_eq!(body.name, Patch::Absent);
        assert_eq!(body.age, Patch::Absent);
        assert!(serde_json::from_str::<Body>(r#"{"age": "7"}"#).is_err());
    }

    #[test]
    fn apply_follows_merge_patch() {
        let mut field = Some(1);
        Patch::Absent.apply_to(&mut field);
        assert_eq!(field, Some(1));
        Patch::Value(2).apply_to(&mut field);
        assert_eq!(field, Some(2));
        Patch::Null.apply_to(&mut field);
        assert_eq!(field, None);
        let mut required = 5;
        assert!(!Patch::Null.apply_to_required(&mut required));
        assert_eq!(required, 5);
        assert!(Patch::Value(6).apply_to_required(&mut required));
        assert_eq!(required, 6);
        assert_eq!(Patch::Value(2).map(|v| v * 2), Patch::Value(4));
        assert_eq!(Patch::<u8>::Null.into_option(), Some(None));
        assert_eq!(Patch::from(Some(Some(3))), Patch::Value(3));
    }

    #[test]
    fn rules_collect_every_broken_field() {
        let refused = UpdateRules::put()
            .required("name", &Patch::<u8>::Absent)
            .required("email", &Patch::<u8>::Null)
            .nullable("nickname", &Patch::<u8>::Null)
            .optional("age", &Patch::<u8>::Absent)
            .nullable_optional("bio", &Patch::<u8>::Absent)
            .finish()
            .unwrap_err();
        let pairs: Vec<_> = refused
            .fields()
            .iter()
            .map(|f| (f.field(), f.code()))
            .collect();
        assert_eq!(pairs, [("name", "required"), ("email", "null_not_allowed")]);
        let error = palisade_errors::Error::from(refused);
        assert_eq!(error.kind(), ErrorKind::ValidationFailed);
        assert_eq!(error.details().len(), 2);
        assert_eq!(error.details()[1].code(), "null_not_allowed");
    }

    #[test]
    fn patch_allows_absent_everywhere() {
        UpdateRules::patch()
            .required("name", &Patch::<u8>::Absent)
            .nullable("nickname", &Patch::<u8>::Absent)
            .finish()
            .unwrap();
    }
}
