//! The [`Authorizer`]: the policy that decides, and answers refusals.

// A refusal *is* the envelope error the adapters send, moved once per refused
// request; boxing it would only add an allocation (as in palisade-ratelimit).
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};

use http::HeaderValue;
use http::header::WWW_AUTHENTICATE;
use palisade_errors::{Error, ErrorKind, SecurityEvent, SubjectHash};
use serde::Deserialize;

use crate::challenge::{self, BearerError};

use super::error::{AuthzConfigError, AuthzConfigErrorKind, bounded, loggable};
use super::permissions::{RolePermissions, is_permission};
use super::principal::{Principal, is_scope_token};
use super::roles::{Role, RoleHierarchy};

/// What an [`Authorizer::owner_or`] denial answers.
///
/// ```
/// use palisade_auth_tokens::authz::Concealment;
///
/// assert_eq!(Concealment::default(), Concealment::NotFound);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Concealment {
    /// 403 `forbidden`: the resource exists and the caller may know it.
    Forbidden,
    /// 404 `not_found`, the same answer as for an id that does not exist, so
    /// enumerating ids (IDOR probing) does not reveal which resources exist.
    /// The default.
    #[default]
    NotFound,
}

/// The authorization policy: a [`RoleHierarchy`], the [`RolePermissions`] and
/// the realm named in `WWW-Authenticate` challenges.
///
/// Every `require_*` check returns `Ok(())` or the error to answer with, and
/// logs one `authz_fail` event on denial. The `has_*` methods are the
/// same decisions as plain booleans, without logging (for deciding what to
/// show rather than what to refuse).
///
/// Deserializes from `{"realm": "...", "hierarchy": {...}, "permissions": {...}}`
/// (`hierarchy` defaults to `admin > moderator > user`, `permissions` to none;
/// unknown fields are refused).
///
/// ```
/// use palisade_auth_tokens::authz::{Authorizer, Concealment, Principal, Role};
///
/// let authz: Authorizer = serde_json::from_str(
///     r#"{"realm": "api", "permissions": {"moderator": ["posts:delete"]}}"#,
/// )
/// .unwrap();
///
/// let mallory = Principal::new("mallory").with_role(Role::user());
/// let denied = authz
///     .owner_or(&mallory, "alice", &Role::admin(), Concealment::NotFound)
///     .unwrap_err();
/// assert_eq!(denied.status(), 404);
///
/// let missing = authz.challenge_missing();
/// assert_eq!(missing.status(), 401);
/// assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="api""#);
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "AuthorizerConfig")]
pub struct Authorizer {
    hierarchy: RoleHierarchy,
    permissions: RolePermissions,
    /// Each declared role and its permissions, those of included roles merged in.
    effective: BTreeMap<Role, BTreeSet<String>>,
    realm: String,
    missing_challenge: HeaderValue,
    invalid_token_challenge: HeaderValue,
    /// The `insufficient_scope` challenge without a `scope` parameter.
    insufficient_scope_challenge: HeaderValue,
}

/// The serialized form of an [`Authorizer`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorizerConfig {
    realm: String,
    #[serde(default)]
    hierarchy: RoleHierarchy,
    #[serde(default)]
    permissions: RolePermissions,
}

impl TryFrom<AuthorizerConfig> for Authorizer {
    type Error = AuthzConfigError;

    fn try_from(config: AuthorizerConfig) -> Result<Authorizer, AuthzConfigError> {
        Authorizer::new(config.hierarchy, config.permissions, &config.realm)
    }
}

/// A challenge for the validated realm, built once at configuration time.
fn configured_challenge(
    realm: &str,
    error: Option<BearerError>,
) -> Result<HeaderValue, AuthzConfigError> {
    challenge::bearer(realm, error, None).map_err(|invalid| {
        AuthzConfigError::new(
            AuthzConfigErrorKind::InvalidRealm,
            format!(
                "challenge {:?} is not a valid header value",
                bounded(&invalid.text)
            ),
        )
    })
}

impl Authorizer {
    /// The policy for `hierarchy` and `permissions`, challenging with `realm`.
    ///
    /// Refuses a realm that is empty, longer than 64 characters, or holds a
    /// space, `"`, `\`, a control or a non-ASCII character (it is written into
    /// a quoted-string of every challenge), and permissions granted to a role
    /// the hierarchy does not declare (a typo would silently grant nothing).
    pub fn new(
        hierarchy: RoleHierarchy,
        permissions: RolePermissions,
        realm: &str,
    ) -> Result<Authorizer, AuthzConfigError> {
        if !challenge::is_realm(realm) {
            return Err(AuthzConfigError::new(
                AuthzConfigErrorKind::InvalidRealm,
                format!(
                    "realm {:?} is not 1-64 printable ASCII characters without spaces, '\"' or '\\'",
                    bounded(realm)
                ),
            ));
        }
        if let Some(unknown) = permissions.roles().find(|role| !hierarchy.contains(role)) {
            return Err(AuthzConfigError::new(
                AuthzConfigErrorKind::UnknownRole,
                format!(
                    "permissions are granted to role {:?}, which the hierarchy does not declare",
                    unknown.as_str()
                ),
            ));
        }
        let effective = hierarchy
            .roles()
            .map(|role| {
                let merged = hierarchy
                    .included_by(role)
                    .flat_map(|included| permissions.granted(included))
                    .map(str::to_owned)
                    .collect();
                (role.clone(), merged)
            })
            .collect();
        Ok(Authorizer {
            missing_challenge: configured_challenge(realm, None)?,
            invalid_token_challenge: configured_challenge(realm, Some(BearerError::InvalidToken))?,
            insufficient_scope_challenge: configured_challenge(
                realm,
                Some(BearerError::InsufficientScope),
            )?,
            hierarchy,
            permissions,
            effective,
            realm: realm.to_owned(),
        })
    }

    /// The role hierarchy.
    pub fn hierarchy(&self) -> &RoleHierarchy {
        &self.hierarchy
    }

    /// The permissions per role, as configured (without inheritance).
    pub fn permissions(&self) -> &RolePermissions {
        &self.permissions
    }

    /// The realm named in challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Whether `principal`'s role is `required` or above it.
    pub fn has_role(&self, principal: &Principal, required: &Role) -> bool {
        self.role_shortfall(principal, std::slice::from_ref(required))
            .is_none()
    }

    /// Whether `principal` holds `permission`, through its role or itself.
    pub fn has_permission(&self, principal: &Principal, permission: &str) -> bool {
        self.permission_shortfall(principal, permission).is_none()
    }

    /// Whether `principal` was granted `scope` (compared exactly, case
    /// included, as RFC 6749 §3.3 scopes are case-sensitive).
    pub fn has_scope(&self, principal: &Principal, scope: &str) -> bool {
        is_scope_token(scope) && principal.scopes.iter().any(|held| held == scope)
    }

    /// Passes when the principal's role is `required` or above it in the
    /// hierarchy (an admin passes a moderator check). Stops vertical privilege
    /// escalation: a user calling an admin-only route gets 403 `forbidden`.
    pub fn require_role(&self, principal: &Principal, required: &Role) -> Result<(), Error> {
        match self.role_shortfall(principal, std::slice::from_ref(required)) {
            None => Ok(()),
            Some(reason) => {
                Err(self.deny(principal, required.as_str(), reason, ErrorKind::Forbidden))
            }
        }
    }

    /// Passes when the principal's role is, or is above, any one of
    /// `required`. An empty list passes nobody.
    pub fn require_any_role(&self, principal: &Principal, required: &[Role]) -> Result<(), Error> {
        match self.role_shortfall(principal, required) {
            None => Ok(()),
            Some(reason) => {
                let names = required
                    .iter()
                    .map(Role::as_str)
                    .collect::<Vec<_>>()
                    .join("|");
                Err(self.deny(principal, &names, reason, ErrorKind::Forbidden))
            }
        }
    }

    /// Passes when the principal holds `permission`: granted to its role or a
    /// role below it, or listed in the principal itself. Otherwise 403
    /// `forbidden`. A `permission` that is not a valid permission string
    /// passes nobody.
    pub fn require_permission(&self, principal: &Principal, permission: &str) -> Result<(), Error> {
        match self.permission_shortfall(principal, permission) {
            None => Ok(()),
            Some(reason) => Err(self.deny(principal, permission, reason, ErrorKind::Forbidden)),
        }
    }

    /// Passes when the principal was granted `scope`. Otherwise 403
    /// `forbidden` with the RFC 6750 §3.1 challenge
    /// `Bearer realm="…", error="insufficient_scope", scope="…"`, which tells
    /// the client which scope to ask its authorization server for.
    ///
    /// A `scope` that is not an RFC 6749 scope-token passes nobody and its
    /// challenge carries no `scope` parameter (it could not be quoted safely).
    pub fn require_scope(&self, principal: &Principal, scope: &str) -> Result<(), Error> {
        if self.has_scope(principal, scope) {
            return Ok(());
        }
        let (reason, value) = if is_scope_token(scope) {
            // A scope-token holds neither `"` nor `\` nor controls, so quoting
            // it as is yields a valid header value; the fallback is unreachable.
            let value = challenge::bearer(
                &self.realm,
                Some(BearerError::InsufficientScope),
                Some(scope),
            )
            .unwrap_or_else(|_| self.insufficient_scope_challenge.clone());
            ("missing_scope", value)
        } else {
            (
                "invalid_required_scope",
                self.insufficient_scope_challenge.clone(),
            )
        };
        Err(self
            .deny(principal, scope, reason, ErrorKind::Forbidden)
            .with_header(WWW_AUTHENTICATE, value))
    }

    /// Passes when the principal owns the resource (its subject is
    /// `owner_subject`) or holds `bypass_role` (or a role above it), such as
    /// an admin acting on anyone's account. Otherwise 404 `not_found` with
    /// [`Concealment::NotFound`], so that a caller probing other users' ids
    /// (IDOR) cannot tell an existing resource from a missing one, or 403
    /// `forbidden` with [`Concealment::Forbidden`].
    ///
    /// An empty subject owns nothing, so a principal without a subject never
    /// matches a resource without an owner. Subjects are compared with plain
    /// `==`, not in constant time: they are identifiers, not secrets — knowing
    /// one grants nothing, because the principal's subject comes from a
    /// verified token the caller cannot forge.
    pub fn owner_or(
        &self,
        principal: &Principal,
        owner_subject: &str,
        bypass_role: &Role,
        on_denied: Concealment,
    ) -> Result<(), Error> {
        let owns = !principal.subject.is_empty() && principal.subject == owner_subject;
        if owns || self.has_role(principal, bypass_role) {
            return Ok(());
        }
        let kind = match on_denied {
            Concealment::Forbidden => ErrorKind::Forbidden,
            Concealment::NotFound => ErrorKind::NotFound,
        };
        let required = format!("owner|{bypass_role}");
        Err(self.deny(principal, &required, "not_owner", kind))
    }

    /// 401 `unauthorized` for a request without credentials, with
    /// `WWW-Authenticate: Bearer realm="…"` and no error code: RFC 6750 §3 says
    /// a request that lacks authentication information gets no error
    /// information (the client may not even know authentication is needed).
    ///
    /// No event is logged here: the caller knows why it challenges and logs that.
    pub fn challenge_missing(&self) -> Error {
        Error::new(ErrorKind::Unauthorized)
            .with_header(WWW_AUTHENTICATE, self.missing_challenge.clone())
    }

    /// 401 `unauthorized` for a token that is malformed, badly signed,
    /// expired or revoked, with
    /// `WWW-Authenticate: Bearer realm="…", error="invalid_token"` (RFC 6750
    /// §3.1). There is deliberately no `error_description`: which check failed
    /// helps an attacker tune forgeries and is for the logs only.
    ///
    /// No event is logged here: the caller knows why it challenges and logs that.
    pub fn challenge_invalid_token(&self) -> Error {
        Error::new(ErrorKind::Unauthorized)
            .with_header(WWW_AUTHENTICATE, self.invalid_token_challenge.clone())
    }

    /// Why `principal` passes none of `required`, or `None` when it passes one.
    fn role_shortfall(&self, principal: &Principal, required: &[Role]) -> Option<&'static str> {
        let Some(held) = &principal.role else {
            return Some("no_role");
        };
        if !self.hierarchy.contains(held) {
            return Some("unknown_role");
        }
        if required
            .iter()
            .any(|required| self.hierarchy.includes(held, required))
        {
            return None;
        }
        if required.is_empty() || !required.iter().any(|role| self.hierarchy.contains(role)) {
            // The route asks for roles the policy never declared: a
            // configuration mistake, refused for everyone.
            return Some("required_role_not_declared");
        }
        Some("insufficient_role")
    }

    /// Why `principal` lacks `permission`, or `None` when it holds it.
    fn permission_shortfall(
        &self,
        principal: &Principal,
        permission: &str,
    ) -> Option<&'static str> {
        if !is_permission(permission) {
            return Some("invalid_required_permission");
        }
        let in_token = principal.permissions.iter().any(|held| held == permission);
        let through_role = principal
            .role
            .as_ref()
            .and_then(|role| self.effective.get(role))
            .is_some_and(|granted| granted.contains(permission));
        if in_token || through_role {
            None
        } else {
            Some("missing_permission")
        }
    }

    /// The denial event and envelope. Only the subject's hash, what was
    /// required and why are logged — never the subject or token contents.
    fn deny(
        &self,
        principal: &Principal,
        required: &str,
        reason: &'static str,
        kind: ErrorKind,
    ) -> Error {
        tracing::info!(
            event = SecurityEvent::AuthzFail.as_str(),
            reason,
            subject_hash = %SubjectHash::of(&principal.subject),
            required = %loggable(required),
            "authorization denied"
        );
        Error::new(kind).logged()
    }
}
