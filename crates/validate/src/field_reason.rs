//! [`FieldReason`]: a validator's error, placed at a field, becomes the
//! crate's one refusal shape, [`Refusal`](crate::Refusal) (a 422 with a
//! `{field, code}` detail, logged once as `input_validation_fail`).

use palisade_errors::ErrorKind;

use crate::Refusal;

/// A typed-input validator's error that can name the field it was found in.
///
/// Every typed-input validator's error ([`TextError`](crate::TextError)
/// and the URL, SSRF and redirect errors) implements it: `.at("email")`
/// logs the refusal (the field and the code, never the value) and turns it
/// into a 422 [`Refusal`].
pub trait FieldReason: std::error::Error + Send + Sync + 'static + Sized {
    /// The snake_case code sent in the `{field, code}` detail and logged as
    /// the event's `reason`.
    fn code(&self) -> &'static str;

    /// The refusal of the value of `field` (a path such as
    /// `"contacts[2].email"`), logged here.
    fn at(self, field: &str) -> Refusal {
        // Field paths may hold request text (a JSON key): one line, bounded.
        let field: String = field
            .chars()
            .filter(|c| !c.is_control())
            .take(128)
            .collect();
        Refusal::new(ErrorKind::ValidationFailed, self.code(), field)
    }
}
