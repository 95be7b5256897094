//! Configuration errors, and how possibly hostile text is shown in them and
//! in denial events.

use std::fmt;

/// Characters of a rejected or logged value shown in messages and events.
const MAX_SHOWN_CHARS: usize = 64;

/// At most [`MAX_SHOWN_CHARS`] characters of possibly hostile text, cut by
/// characters (never by bytes, so it cannot panic), for `{:?}` in messages.
pub(super) fn bounded(text: &str) -> String {
    text.chars().take(MAX_SHOWN_CHARS).collect()
}

/// [`bounded`], with control characters replaced: a subject or permission
/// with a newline in it must not forge a second line in a text log.
pub(super) fn loggable(text: &str) -> String {
    text.chars()
        .take(MAX_SHOWN_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Why a role, hierarchy, permission table or [`Authorizer`](super::Authorizer)
/// could not be built.
///
/// The message names the offending value (with `{:?}`, at most 64 characters
/// of it) and the reason, so a bad configuration fails at start-up with
/// something an operator can act on.
///
/// ```
/// use palisade_auth_tokens::authz::{AuthzConfigErrorKind, Role};
///
/// let error = Role::new("Admin").unwrap_err();
/// assert_eq!(error.kind(), AuthzConfigErrorKind::InvalidRole);
/// assert!(error.to_string().contains("\"Admin\""));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzConfigError {
    kind: AuthzConfigErrorKind,
    detail: String,
}

/// The class of an [`AuthzConfigError`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthzConfigErrorKind {
    /// A role name is not 1–64 characters of `[a-z0-9_-]`.
    InvalidRole,
    /// A permission is not 1–128 characters of `[a-z0-9_.:-]`.
    InvalidPermission,
    /// The realm is empty, longer than 64 characters, or holds a space, a
    /// quote, a backslash, a control or a non-ASCII character.
    InvalidRealm,
    /// A role is declared twice (in the hierarchy or in the permission table):
    /// one of the two lists would otherwise be silently lost.
    DuplicateRole,
    /// A role is referred to (as an included role, or in the permission table)
    /// but not declared in the hierarchy: a typo that would silently grant
    /// nothing, or grant to a role no token can hold.
    UnknownRole,
    /// The hierarchy has a cycle, so "higher" means nothing (every role in the
    /// cycle would include every other).
    Cycle,
}

impl AuthzConfigError {
    pub(super) fn new(kind: AuthzConfigErrorKind, detail: impl Into<String>) -> AuthzConfigError {
        AuthzConfigError {
            kind,
            detail: detail.into(),
        }
    }

    pub(super) fn invalid_role(name: &str) -> AuthzConfigError {
        AuthzConfigError::new(
            AuthzConfigErrorKind::InvalidRole,
            format!(
                "role {:?} is not 1-64 characters of a-z, 0-9, '_' and '-'",
                bounded(name)
            ),
        )
    }

    pub(super) fn invalid_permission(permission: &str) -> AuthzConfigError {
        AuthzConfigError::new(
            AuthzConfigErrorKind::InvalidPermission,
            format!(
                "permission {:?} is not 1-128 characters of a-z, 0-9, '_', '.', ':' and '-'",
                bounded(permission)
            ),
        )
    }

    /// The class of the error.
    pub fn kind(&self) -> AuthzConfigErrorKind {
        self.kind
    }
}

impl fmt::Display for AuthzConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for AuthzConfigError {}

/// An authorization policy that cannot be built is a configuration mistake:
/// 500 `internal`, the error kept as the source, for the log.
impl From<AuthzConfigError> for palisade_errors::Error {
    fn from(error: AuthzConfigError) -> palisade_errors::Error {
        palisade_errors::Error::new(palisade_errors::ErrorKind::Internal).with_source(error)
    }
}
