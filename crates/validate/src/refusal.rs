//! [`Refusal`]: one refused request, already logged as `input_validation_fail`.

use std::borrow::Cow;

use palisade_errors::{Error, ErrorKind, SecurityEvent};

/// A request this crate refused: the status class, a snake_case reason and
/// the field it concerns (`uri`, `query`, `header:x-trace`, `body`,
/// `content-type`, `host`, `$.items[2]`), never the rejected value.
///
/// Building one emits its one `input_validation_fail` event (fields
/// `reason`, `field`, `status`), so the core that decided is the one that
/// logs; it converts into the envelope [`Error`] (with one `{field, code}`
/// detail), marked [logged](Error::logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    kind: ErrorKind,
    reason: &'static str,
    field: Cow<'static, str>,
}

impl Refusal {
    /// Records the refusal (one `input_validation_fail` event) and returns it.
    pub(crate) fn new(
        kind: ErrorKind,
        reason: &'static str,
        field: impl Into<Cow<'static, str>>,
    ) -> Refusal {
        let field = field.into();
        tracing::info!(
            event = SecurityEvent::InputValidationFail.as_str(),
            reason,
            field = %field,
            status = kind.status().as_u16(),
            "request refused"
        );
        Refusal {
            kind,
            reason,
            field,
        }
    }

    /// The same refusal again, not logged a second time.
    pub(crate) fn silent(
        kind: ErrorKind,
        reason: &'static str,
        field: impl Into<Cow<'static, str>>,
    ) -> Refusal {
        Refusal {
            kind,
            reason,
            field: field.into(),
        }
    }

    /// The envelope kind: 400, 413, 414, 415, 422 or 431.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Why, in snake_case (`header_too_long`, `body_too_large`, ...).
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The field or part of the request it concerns.
    pub fn field(&self) -> &str {
        &self.field
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} refused: {}", self.field, self.reason)
    }
}

impl std::error::Error for Refusal {}

/// The envelope: the refusal's kind, one `{field, code}` detail, the
/// refusal kept as the source; marked logged (its event was emitted).
impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Error {
        Error::new(refusal.kind)
            .with_detail(refusal.field.as_ref(), refusal.reason)
            .with_source(refusal)
            .logged()
    }
}
