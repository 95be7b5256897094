//! The permissions granted to each role.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{AuthzConfigError, AuthzConfigErrorKind, bounded};
use super::roles::Role;

/// Longest permission string (`resource:action` with some namespacing).
const MAX_PERMISSION_LEN: usize = 128;

/// `[a-z0-9_.:-]{1,128}`: no wildcard character exists, so `posts:*` can never
/// be configured or match; every permission is granted by its exact name.
pub(super) fn is_permission(permission: &str) -> bool {
    (1..=MAX_PERMISSION_LEN).contains(&permission.len())
        && permission.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b':' | b'-')
        })
}

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
    /// [`Authorizer::new`](super::Authorizer::new).
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
