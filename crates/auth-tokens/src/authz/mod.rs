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
//! concealed) plus one `tracing` event, `event = "authz_fail"`, with the
//! subject's hash (`subject_hash`), what was required and a machine-readable
//! `reason` — never the subject or token contents.
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

mod authorizer;
mod error;
mod permissions;
mod principal;
mod roles;

pub use authorizer::{Authorizer, Concealment};
pub use error::{AuthzConfigError, AuthzConfigErrorKind};
pub use permissions::{RolePermissions, RolePermissionsBuilder};
pub use principal::Principal;
pub use roles::{Role, RoleHierarchy, RoleHierarchyBuilder};
