//! Authorization: roles in a hierarchy, permissions per role, OAuth2 scopes,
//! resource ownership, and the RFC 6750 `WWW-Authenticate: Bearer` challenges.
//!
//! Authentication (the token module) says *who* the caller is and hands over a
//! [`Principal`]; an [`Authorizer`] decides what that principal may do:
//!
//! - [`require_role`](Authorizer::require_role): the principal's role must be
//!   the required one or above it in the [`RoleHierarchy`] (an admin passes a
//!   moderator check). A role the hierarchy does not declare grants nothing,
//!   so a token carrying an invented `"superuser"` is not a way up.
//! - [`require_permission`](Authorizer::require_permission): a permission such
//!   as `posts:delete`, granted to the principal's role or a role below it by
//!   [`RolePermissions`], or carried in the token itself.
//! - [`require_scope`](Authorizer::require_scope): an OAuth2 scope the client
//!   was granted (RFC 6749 §3.3); a missing one answers 403 with the RFC 6750
//!   `insufficient_scope` challenge.
//! - [`owner_or`](Authorizer::owner_or): the resource's owner, or a role that
//!   may act on anyone's resources. Its failure can answer 404
//!   ([`Concealment::NotFound`]), so probing other users' ids (IDOR) does not
//!   even reveal which ones exist.
//!
//! Every denial is the safe error envelope (`forbidden`, or `not_found` when
//! concealed) plus one `tracing` event, `event = "authorization_denied"`, with
//! the subject, what was required and a machine-readable reason — never token
//! contents.
//!
//! [`challenge_missing`](Authorizer::challenge_missing) and
//! [`challenge_invalid_token`](Authorizer::challenge_invalid_token) build the
//! 401 answers of RFC 6750 §3 for the authentication step.
//!
//! ```
//! use palisade_auth_tokens::authz::{Authorizer, Principal, Role, RoleHierarchy, RolePermissions};
//!
//! let permissions = RolePermissions::builder()
//!     .grant("user", ["posts:create"])
//!     .grant("moderator", ["posts:delete"])
//!     .build()?;
//! let authz = Authorizer::new(RoleHierarchy::default(), permissions, "api")?;
//!
//! let admin = Principal::new("user-1").with_role(Role::admin());
//! assert!(authz.require_role(&admin, &Role::moderator()).is_ok());
//! assert!(authz.require_permission(&admin, "posts:delete").is_ok());
//!
//! let user = Principal::new("user-2").with_role(Role::user());
//! let denied = authz.require_role(&user, &Role::admin()).unwrap_err();
//! assert_eq!(denied.status(), 403);
//! assert_eq!(denied.kind().code(), "forbidden");
//! # Ok::<(), palisade_auth_tokens::authz::AuthzConfigError>(())
//! ```

// A refusal *is* the envelope error the adapters send, moved once per refused
// request; boxing it would only add an allocation (as in palisade-ratelimit).
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use http::HeaderValue;
use http::header::WWW_AUTHENTICATE;
use palisade_errors::{Error, ErrorKind};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest role name. Roles are short identifiers; the cap bounds what a
/// token's `role` claim can make us store and log.
const MAX_ROLE_LEN: usize = 64;
/// Longest permission string (`resource:action` with some namespacing).
const MAX_PERMISSION_LEN: usize = 128;
/// Longest realm. It is sent in every challenge, so it stays short.
const MAX_REALM_LEN: usize = 64;
/// Characters of a rejected or logged value shown in messages and events.
const MAX_SHOWN_CHARS: usize = 64;

/// At most [`MAX_SHOWN_CHARS`] characters of possibly hostile text, cut by
/// characters (never by bytes, so it cannot panic), for `{:?}` in messages.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_SHOWN_CHARS).collect()
}

/// [`bounded`], with control characters replaced: a subject or permission
/// with a newline in it must not forge a second line in a text log.
fn loggable(text: &str) -> String {
    text.chars()
        .take(MAX_SHOWN_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// `[a-z0-9_-]{1,64}`. Lowercase only, with no case folding: `Admin` and
/// `admin` being the same role in one component and different roles in
/// another is how a role check gets bypassed, so only one spelling exists.
fn is_role_name(name: &str) -> bool {
    (1..=MAX_ROLE_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// `[a-z0-9_.:-]{1,128}`: no wildcard character exists, so `posts:*` can never
/// be configured or match; every permission is granted by its exact name.
fn is_permission(permission: &str) -> bool {
    (1..=MAX_PERMISSION_LEN).contains(&permission.len())
        && permission.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-')
        })
}

/// RFC 6749 §3.3 `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`: printable
/// ASCII without space, `"` and `\`, so it can sit inside a quoted-string of a
/// challenge without escaping (and cannot close the quote to inject parameters).
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Printable ASCII without space, `"` and `\`, 1–64 characters: the realm is
/// written into a quoted-string, and a quote or backslash in it would let the
/// configuration inject or break challenge parameters.
fn is_realm(realm: &str) -> bool {
    (1..=MAX_REALM_LEN).contains(&realm.len()) && is_scope_token(realm)
}

// --- Configuration errors ------------------------------------------------------

/// Why a role, hierarchy, permission table or [`Authorizer`] could not be built.
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
    fn new(kind: AuthzConfigErrorKind, detail: impl Into<String>) -> AuthzConfigError {
        AuthzConfigError {
            kind,
            detail: detail.into(),
        }
    }

    fn invalid_role(name: &str) -> AuthzConfigError {
        AuthzConfigError::new(
            AuthzConfigErrorKind::InvalidRole,
            format!(
                "role {:?} is not 1-64 characters of a-z, 0-9, '_' and '-'",
                bounded(name)
            ),
        )
    }

    fn invalid_permission(permission: &str) -> AuthzConfigError {
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

// --- Role ----------------------------------------------------------------------

/// A role name: 1–64 characters of `[a-z0-9_-]`.
///
/// Parsing is strict and never folds case, so one role has exactly one
/// spelling. Serialized as a plain string; deserializing validates.
///
/// ```
/// use palisade_auth_tokens::authz::Role;
///
/// let role = Role::new("billing-admin")?;
/// assert_eq!(role.as_str(), "billing-admin");
/// assert_eq!(Role::admin().to_string(), "admin");
/// assert!(Role::new("Admin").is_err());
/// assert!(Role::new("admin ").is_err());
/// # Ok::<(), palisade_auth_tokens::authz::AuthzConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(Cow<'static, str>);

impl Role {
    /// Parses a role name; the error (kind [`AuthzConfigErrorKind::InvalidRole`])
    /// names the value.
    pub fn new(name: &str) -> Result<Role, AuthzConfigError> {
        if is_role_name(name) {
            Ok(Role(Cow::Owned(name.to_owned())))
        } else {
            Err(AuthzConfigError::invalid_role(name))
        }
    }

    /// `admin`, the top of the default hierarchy.
    pub const fn admin() -> Role {
        Role(Cow::Borrowed("admin"))
    }

    /// `moderator`, the middle of the default hierarchy.
    pub const fn moderator() -> Role {
        Role(Cow::Borrowed("moderator"))
    }

    /// `user`, the bottom of the default hierarchy.
    pub const fn user() -> Role {
        Role(Cow::Borrowed("user"))
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Role {
    type Err = AuthzConfigError;

    fn from_str(name: &str) -> Result<Role, AuthzConfigError> {
        Role::new(name)
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Role, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        Role::new(&name).map_err(de::Error::custom)
    }
}

// --- Role hierarchy ------------------------------------------------------------

/// Which roles include which: a higher role holds every right of the roles
/// below it.
///
/// The hierarchy is a directed acyclic graph, so besides a chain
/// (`admin > moderator > user`, the [`Default`]) a role may include several
/// unrelated ones (`admin` over both `moderator` and `billing`). Building it
/// refuses cycles, references to undeclared roles and roles declared twice.
///
/// A role that is not declared includes nothing, not even itself: a token
/// that carries an invented role name (`"superuser"`, `"root"`) must not be a
/// path to privilege, and a check for a role the policy forgot to declare
/// fails closed.
///
/// Deserializes from a map of role to the roles it directly includes:
///
/// ```
/// use palisade_auth_tokens::authz::{Role, RoleHierarchy};
///
/// let built = RoleHierarchy::builder()
///     .role("admin", ["moderator"])
///     .role("moderator", ["user"])
///     .role("user", [])
///     .build()?;
/// assert_eq!(built, RoleHierarchy::default());
/// assert!(built.includes(&Role::admin(), &Role::user()));
/// assert!(!built.includes(&Role::user(), &Role::moderator()));
///
/// let from_json: RoleHierarchy =
///     serde_json::from_str(r#"{"admin": ["moderator"], "moderator": ["user"], "user": []}"#)
///         .unwrap();
/// assert_eq!(from_json, built);
/// # Ok::<(), palisade_auth_tokens::authz::AuthzConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleHierarchy {
    /// Each declared role and the roles it directly includes.
    direct: BTreeMap<Role, BTreeSet<Role>>,
    /// Each declared role and every role it includes, itself among them.
    reachable: BTreeMap<Role, BTreeSet<Role>>,
}

impl RoleHierarchy {
    /// An empty builder.
    pub fn builder() -> RoleHierarchyBuilder {
        RoleHierarchyBuilder::default()
    }

    /// Whether a principal holding `held` satisfies a check for `required`:
    /// `held` is declared and is `required` or above it.
    pub fn includes(&self, held: &Role, required: &Role) -> bool {
        self.reachable
            .get(held)
            .is_some_and(|included| included.contains(required))
    }

    /// Whether `role` is declared.
    pub fn contains(&self, role: &Role) -> bool {
        self.direct.contains_key(role)
    }

    /// The declared roles, in name order.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.direct.keys()
    }

    /// The roles `role` includes, itself among them (empty when `role` is
    /// not declared), in name order.
    pub fn included_by(&self, role: &Role) -> impl Iterator<Item = &Role> {
        self.reachable.get(role).into_iter().flatten()
    }
}

impl Default for RoleHierarchy {
    /// `admin > moderator > user`.
    fn default() -> RoleHierarchy {
        let direct = BTreeMap::from([
            (Role::admin(), BTreeSet::from([Role::moderator()])),
            (Role::moderator(), BTreeSet::from([Role::user()])),
            (Role::user(), BTreeSet::new()),
        ]);
        let reachable = reachability(&direct);
        RoleHierarchy { direct, reachable }
    }
}

/// Builds a [`RoleHierarchy`]; all checks run in [`build`](Self::build).
#[derive(Clone, Debug, Default)]
pub struct RoleHierarchyBuilder {
    declared: Vec<(String, Vec<String>)>,
}

impl RoleHierarchyBuilder {
    /// Declares `name` and the roles directly below it (each of which must be
    /// declared too, by its own call).
    #[must_use]
    pub fn role<'a>(
        mut self,
        name: &str,
        includes: impl IntoIterator<Item = &'a str>,
    ) -> RoleHierarchyBuilder {
        self.declared.push((
            name.to_owned(),
            includes.into_iter().map(str::to_owned).collect(),
        ));
        self
    }

    /// Checks the names, that every included role is declared, that no role is
    /// declared twice and that there is no cycle.
    pub fn build(self) -> Result<RoleHierarchy, AuthzConfigError> {
        let mut direct = BTreeMap::new();
        for (name, includes) in &self.declared {
            let role = Role::new(name)?;
            let includes = includes
                .iter()
                .map(|included| Role::new(included))
                .collect::<Result<BTreeSet<_>, _>>()?;
            if direct.insert(role, includes).is_some() {
                return Err(AuthzConfigError::new(
                    AuthzConfigErrorKind::DuplicateRole,
                    format!(
                        "role {:?} is declared twice in the hierarchy",
                        bounded(name)
                    ),
                ));
            }
        }
        for (role, includes) in &direct {
            if let Some(unknown) = includes
                .iter()
                .find(|included| !direct.contains_key(included))
            {
                return Err(AuthzConfigError::new(
                    AuthzConfigErrorKind::UnknownRole,
                    format!(
                        "role {:?} includes {:?}, which the hierarchy does not declare",
                        role.as_str(),
                        unknown.as_str()
                    ),
                ));
            }
        }
        if let Some(cycle) = find_cycle(&direct) {
            let path = cycle
                .iter()
                .map(|role| format!("{:?}", role.as_str()))
                .collect::<Vec<_>>()
                .join(" > ");
            return Err(AuthzConfigError::new(
                AuthzConfigErrorKind::Cycle,
                format!("the role hierarchy has a cycle: {path}"),
            ));
        }
        let reachable = reachability(&direct);
        Ok(RoleHierarchy { direct, reachable })
    }
}

/// A cycle of `direct` as the path `a > b > … > a`, if there is one.
///
/// Iterative depth-first search with the usual three marks, so a long chain
/// in a configuration file cannot overflow the stack.
fn find_cycle(direct: &BTreeMap<Role, BTreeSet<Role>>) -> Option<Vec<&Role>> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mark {
        Unvisited,
        OnPath,
        Done,
    }
    let mut marks: BTreeMap<&Role, Mark> =
        direct.keys().map(|role| (role, Mark::Unvisited)).collect();
    for (start, start_includes) in direct {
        if marks.get(start) != Some(&Mark::Unvisited) {
            continue;
        }
        marks.insert(start, Mark::OnPath);
        let mut path = vec![(start, start_includes.iter())];
        while let Some(&mut (role, ref mut includes)) = path.last_mut() {
            match includes.next() {
                None => {
                    marks.insert(role, Mark::Done);
                    path.pop();
                }
                Some(next) => match marks.get(next) {
                    Some(Mark::OnPath) => {
                        let mut cycle: Vec<&Role> = path
                            .iter()
                            .map(|(on_path, _)| *on_path)
                            .skip_while(|on_path| *on_path != next)
                            .collect();
                        cycle.push(next);
                        return Some(cycle);
                    }
                    Some(Mark::Unvisited) => match direct.get(next) {
                        Some(next_includes) => {
                            marks.insert(next, Mark::OnPath);
                            path.push((next, next_includes.iter()));
                        }
                        // Undeclared roles are refused before this search runs.
                        None => {
                            marks.insert(next, Mark::Done);
                        }
                    },
                    Some(Mark::Done) | None => {}
                },
            }
        }
    }
    None
}

/// For each role, every role it reaches through `direct`, itself included.
fn reachability(direct: &BTreeMap<Role, BTreeSet<Role>>) -> BTreeMap<Role, BTreeSet<Role>> {
    direct
        .keys()
        .map(|start| {
            let mut reached = BTreeSet::from([start.clone()]);
            let mut pending = vec![start];
            while let Some(role) = pending.pop() {
                for included in direct.get(role).into_iter().flatten() {
                    if reached.insert(included.clone()) {
                        pending.push(included);
                    }
                }
            }
            (start.clone(), reached)
        })
        .collect()
}

impl Serialize for RoleHierarchy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.direct.len()))?;
        for (role, includes) in &self.direct {
            map.serialize_entry(role, includes)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RoleHierarchy {
    /// From a map of role to the roles it directly includes. A role listed
    /// twice is refused rather than letting the last entry win.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RoleHierarchy, D::Error> {
        struct HierarchyVisitor;

        impl<'de> Visitor<'de> for HierarchyVisitor {
            type Value = RoleHierarchy;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of role name to the list of role names it includes")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RoleHierarchy, A::Error> {
                let mut builder = RoleHierarchy::builder();
                while let Some((name, includes)) = map.next_entry::<String, Vec<String>>()? {
                    builder = builder.role(&name, includes.iter().map(String::as_str));
                }
                builder.build().map_err(de::Error::custom)
            }
        }

        deserializer.deserialize_map(HierarchyVisitor)
    }
}

// --- Permissions per role ------------------------------------------------------

/// The permissions granted to each role, such as `moderator` →
/// `{"posts:delete"}`.
///
/// A role also holds every permission of the roles its hierarchy includes, so
/// with the default hierarchy an admin can delete posts when moderators can.
/// Permissions are compared whole: there are no wildcards (`*` is not even a
/// valid character), so nothing is granted by accident of a prefix.
///
/// Deserializes from a map of role to a list of permissions:
///
/// ```
/// use palisade_auth_tokens::authz::{Role, RolePermissions};
///
/// let built = RolePermissions::builder()
///     .grant("user", ["posts:create", "posts:read"])
///     .grant("moderator", ["posts:delete"])
///     .build()?;
/// assert!(built.granted(&Role::moderator()).eq(["posts:delete"]));
///
/// let from_json: RolePermissions = serde_json::from_str(
///     r#"{"user": ["posts:create", "posts:read"], "moderator": ["posts:delete"]}"#,
/// )
/// .unwrap();
/// assert_eq!(from_json, built);
/// # Ok::<(), palisade_auth_tokens::authz::AuthzConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolePermissions {
    granted: BTreeMap<Role, BTreeSet<String>>,
}

impl RolePermissions {
    /// An empty builder.
    pub fn builder() -> RolePermissionsBuilder {
        RolePermissionsBuilder::default()
    }

    /// The roles that were granted permissions, in name order.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.granted.keys()
    }

    /// The permissions granted to `role` directly (not through the
    /// hierarchy), in name order.
    pub fn granted(&self, role: &Role) -> impl Iterator<Item = &str> {
        self.granted
            .get(role)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// Builds a [`RolePermissions`]; all checks run in [`build`](Self::build).
#[derive(Clone, Debug, Default)]
pub struct RolePermissionsBuilder {
    grants: Vec<(String, Vec<String>)>,
}

impl RolePermissionsBuilder {
    /// Grants `permissions` to `role`. Each role is granted once, with its
    /// whole list.
    #[must_use]
    pub fn grant<'a>(
        mut self,
        role: &str,
        permissions: impl IntoIterator<Item = &'a str>,
    ) -> RolePermissionsBuilder {
        self.grants.push((
            role.to_owned(),
            permissions.into_iter().map(str::to_owned).collect(),
        ));
        self
    }

    /// Checks the role names and permissions, and that no role is granted
    /// twice. Whether the roles exist in the hierarchy is checked by
    /// [`Authorizer::new`].
    pub fn build(self) -> Result<RolePermissions, AuthzConfigError> {
        let mut granted = BTreeMap::new();
        for (name, permissions) in self.grants {
            let role = Role::new(&name)?;
            if let Some(bad) = permissions
                .iter()
                .find(|permission| !is_permission(permission))
            {
                return Err(AuthzConfigError::invalid_permission(bad));
            }
            if granted
                .insert(role, permissions.into_iter().collect::<BTreeSet<_>>())
                .is_some()
            {
                return Err(AuthzConfigError::new(
                    AuthzConfigErrorKind::DuplicateRole,
                    format!("role {:?} is granted permissions twice", bounded(&name)),
                ));
            }
        }
        Ok(RolePermissions { granted })
    }
}

impl Serialize for RolePermissions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.granted.len()))?;
        for (role, permissions) in &self.granted {
            map.serialize_entry(role, permissions)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RolePermissions {
    /// From a map of role to a list of permissions. A role listed twice is
    /// refused rather than letting the last entry win.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RolePermissions, D::Error> {
        struct PermissionsVisitor;

        impl<'de> Visitor<'de> for PermissionsVisitor {
            type Value = RolePermissions;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of role name to a list of permissions")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RolePermissions, A::Error> {
                let mut builder = RolePermissions::builder();
                while let Some((role, permissions)) = map.next_entry::<String, Vec<String>>()? {
                    builder = builder.grant(&role, permissions.iter().map(String::as_str));
                }
                builder.build().map_err(de::Error::custom)
            }
        }

        deserializer.deserialize_map(PermissionsVisitor)
    }
}

// --- Principal -----------------------------------------------------------------

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

// --- Authorizer ----------------------------------------------------------------

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
/// logs one `authorization_denied` event on denial. The `has_*` methods are the
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

/// A challenge built from the validated realm (and static text).
fn challenge(text: &str) -> Result<HeaderValue, AuthzConfigError> {
    HeaderValue::from_str(text).map_err(|_| {
        AuthzConfigError::new(
            AuthzConfigErrorKind::InvalidRealm,
            format!("challenge {:?} is not a valid header value", bounded(text)),
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
        if !is_realm(realm) {
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
            missing_challenge: challenge(&format!("Bearer realm=\"{realm}\""))?,
            invalid_token_challenge: challenge(&format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\""
            ))?,
            insufficient_scope_challenge: challenge(&format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\""
            ))?,
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
            let value = HeaderValue::from_str(&format!(
                "Bearer realm=\"{}\", error=\"insufficient_scope\", scope=\"{scope}\"",
                self.realm
            ))
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

    /// The denial event and envelope. Only the subject (an id), what was
    /// required and why are logged — never token contents.
    fn deny(
        &self,
        principal: &Principal,
        required: &str,
        reason: &'static str,
        kind: ErrorKind,
    ) -> Error {
        tracing::info!(
            event = "authorization_denied",
            subject = %loggable(&principal.subject),
            required = %loggable(required),
            reason,
            "authorization denied"
        );
        Error::new(kind)
    }
}
