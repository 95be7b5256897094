//! The principal every check runs against, and the OAuth2 scope-tokens it
//! may hold.

use super::roles::Role;

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: printable
/// ASCII without space, `"` and `\`, so it can sit inside a quoted-string of a
/// challenge without escaping (and cannot close the quote to inject parameters).
pub(super) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Who is asking, as far as authorization is concerned: what every check runs
/// against.
///
/// The token module builds it from a verified token's claims; it can also be
/// built directly (from a session, an API key, a test). Permissions listed
/// here are honoured in addition to those the policy grants to the role.
///
/// ```
/// use palisade_auth_tokens::authz::{Principal, Role};
///
/// let principal = Principal::new("user-42")
///     .with_role(Role::user())
///     .with_permissions(["reports:export"])
///     .with_scopes(Principal::scopes_from_claim("reports:read  profile"));
/// assert_eq!(principal.scopes, ["reports:read", "profile"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Principal {
    /// The stable id of the user or client (a token's `sub`). Not a secret:
    /// it is logged with every denial.
    pub subject: String,
    /// The role, when the principal has one. `None` passes no role check.
    pub role: Option<Role>,
    /// Permissions granted to this principal itself (for example in a token),
    /// on top of those of its role.
    pub permissions: Vec<String>,
    /// OAuth2 scopes granted to the client (RFC 6749 §3.3).
    pub scopes: Vec<String>,
}

impl Principal {
    /// A principal with `subject` and no role, permissions or scopes.
    pub fn new(subject: impl Into<String>) -> Principal {
        Principal {
            subject: subject.into(),
            ..Principal::default()
        }
    }

    /// Sets the role.
    #[must_use]
    pub fn with_role(mut self, role: Role) -> Principal {
        self.role = Some(role);
        self
    }

    /// Adds permissions held by the principal itself.
    #[must_use]
    pub fn with_permissions<I, S>(mut self, permissions: I) -> Principal
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Adds scopes.
    #[must_use]
    pub fn with_scopes<I, S>(mut self, scopes: I) -> Principal
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The scopes of an OAuth2 `scope` claim or parameter: a list of
    /// scope-tokens delimited by spaces (RFC 6749 §3.3).
    ///
    /// Splits on the ASCII space only; runs of spaces and leading or trailing
    /// ones produce no empty scope. A token holding characters a scope-token
    /// cannot (a tab, a quote, a backslash, a control or non-ASCII character)
    /// is dropped: it grants nothing rather than something a lenient parser
    /// elsewhere would read differently. Repeats are dropped, order is kept.
    pub fn scopes_from_claim(claim: &str) -> Vec<String> {
        let mut scopes: Vec<String> = Vec::new();
        for scope in claim.split(' ').filter(|scope| is_scope_token(scope)) {
            if !scopes.iter().any(|seen| seen == scope) {
                scopes.push(scope.to_owned());
            }
        }
        scopes
    }
}
