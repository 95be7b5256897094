//! Roles and the hierarchy that says which role includes which.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{AuthzConfigError, AuthzConfigErrorKind, bounded};

/// Longest role name. Roles are short identifiers; the cap bounds what a
/// token's `role` claim can make us store and log.
const MAX_ROLE_LEN: usize = 64;

/// `[a-z0-9_-]{1,64}`. Lowercase only, with no case folding: `Admin` and
/// `admin` being the same role in one component and different roles in
/// another is how a role check gets bypassed, so only one spelling exists.
fn is_role_name(name: &str) -> bool {
    (1..=MAX_ROLE_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

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
