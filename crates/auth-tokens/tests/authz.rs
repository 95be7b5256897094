#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(clippy::result_large_err)] // the checks return the envelope error as is
//! Authorization: roles, hierarchy, permissions, scopes, ownership and the
//! RFC 6750 challenges. Tests are named after the attack they stop.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use http::StatusCode;
use http::header::WWW_AUTHENTICATE;
use palisade_auth_tokens::authz::{
    Authorizer, AuthzConfigErrorKind, Concealment, Principal, Role, RoleHierarchy, RolePermissions,
};
use palisade_errors::{Error, SubjectHash};

// --- Helpers -------------------------------------------------------------------

fn permissions() -> RolePermissions {
    RolePermissions::builder()
        .grant("user", ["posts:create", "posts:read"])
        .grant("moderator", ["posts:delete"])
        .grant("admin", ["users:ban"])
        .build()
        .unwrap()
}

fn authz() -> Authorizer {
    Authorizer::new(RoleHierarchy::default(), permissions(), "api").unwrap()
}

fn with_role(subject: &str, role: Role) -> Principal {
    Principal::new(subject).with_role(role)
}

fn www_authenticate(error: &Error) -> Vec<&str> {
    error
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect()
}

fn assert_forbidden(error: &Error) {
    assert_eq!(error.status(), StatusCode::FORBIDDEN);
    assert_eq!(error.kind().code(), "forbidden");
}

/// A subscriber that keeps every event's fields, to check the
/// `authorization_denied` event without a logging stack.
#[derive(Clone, Default)]
struct Capture {
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl tracing::Subscriber for Capture {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.events.lock().unwrap().push(fields.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs `f` and returns its result with the events it logged.
fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<BTreeMap<String, String>>) {
    let capture = Capture::default();
    let result = tracing::subscriber::with_default(capture.clone(), f);
    let events = capture.events.lock().unwrap().clone();
    (result, events)
}

// --- Roles and the hierarchy ---------------------------------------------------

#[test]
fn vertical_privilege_escalation_user_to_admin_route_is_forbidden() {
    let authz = authz();
    let user = with_role("user-1", Role::user());
    let error = authz.require_role(&user, &Role::admin()).unwrap_err();
    assert_forbidden(&error);
    assert!(
        www_authenticate(&error).is_empty(),
        "a role denial is not a bearer challenge"
    );
    let error = authz.require_role(&user, &Role::moderator()).unwrap_err();
    assert_forbidden(&error);
}

#[test]
fn admin_passes_moderator_and_user_checks() {
    let authz = authz();
    let admin = with_role("root-1", Role::admin());
    authz.require_role(&admin, &Role::admin()).unwrap();
    authz.require_role(&admin, &Role::moderator()).unwrap();
    authz.require_role(&admin, &Role::user()).unwrap();
}

#[test]
fn moderator_passes_below_but_not_above() {
    let authz = authz();
    let moderator = with_role("mod-1", Role::moderator());
    authz.require_role(&moderator, &Role::user()).unwrap();
    authz.require_role(&moderator, &Role::moderator()).unwrap();
    assert_forbidden(&authz.require_role(&moderator, &Role::admin()).unwrap_err());
}

#[test]
fn invented_role_in_token_gets_nothing() {
    let authz = authz();
    let superuser = Role::new("superuser").unwrap();
    let mallory = with_role("mallory", superuser.clone());
    assert_forbidden(&authz.require_role(&mallory, &Role::user()).unwrap_err());
    assert_forbidden(&authz.require_role(&mallory, &Role::admin()).unwrap_err());
    // Not even the invented role itself: an undeclared role includes nothing.
    assert_forbidden(&authz.require_role(&mallory, &superuser).unwrap_err());
    assert_forbidden(
        &authz
            .require_permission(&mallory, "posts:read")
            .unwrap_err(),
    );
    assert!(!authz.hierarchy().includes(&superuser, &superuser));
}

#[test]
fn principal_without_role_passes_no_role_check() {
    let authz = authz();
    let anonymous = Principal::new("client-7");
    assert_forbidden(&authz.require_role(&anonymous, &Role::user()).unwrap_err());
    assert_forbidden(
        &authz
            .require_any_role(&anonymous, &[Role::user(), Role::admin()])
            .unwrap_err(),
    );
    assert_forbidden(
        &authz
            .require_permission(&anonymous, "posts:read")
            .unwrap_err(),
    );
}

#[test]
fn required_role_missing_from_policy_fails_closed() {
    let authz = authz();
    let admin = with_role("root-1", Role::admin());
    let auditor = Role::new("auditor").unwrap();
    let (result, events) = capture(|| authz.require_role(&admin, &auditor));
    assert_forbidden(&result.unwrap_err());
    assert_eq!(events[0]["reason"], "required_role_not_declared");
}

#[test]
fn require_any_role_passes_on_one_and_refuses_an_empty_list() {
    let authz = authz();
    let moderator = with_role("mod-1", Role::moderator());
    authz
        .require_any_role(&moderator, &[Role::admin(), Role::moderator()])
        .unwrap();
    // `user` is below moderator, so a moderator passes a "user or billing" check.
    authz
        .require_any_role(&moderator, &[Role::new("billing").unwrap(), Role::user()])
        .unwrap();
    assert_forbidden(
        &authz
            .require_any_role(&moderator, &[Role::admin()])
            .unwrap_err(),
    );
    assert_forbidden(&authz.require_any_role(&moderator, &[]).unwrap_err());
}

#[test]
fn dag_hierarchy_keeps_sibling_branches_apart() {
    let hierarchy = RoleHierarchy::builder()
        .role("admin", ["moderator", "billing"])
        .role("moderator", ["user"])
        .role("billing", ["user"])
        .role("user", [])
        .build()
        .unwrap();
    let [admin, moderator, billing, user] =
        ["admin", "moderator", "billing", "user"].map(|name| Role::new(name).unwrap());
    assert!(hierarchy.includes(&admin, &billing));
    assert!(hierarchy.includes(&admin, &user));
    assert!(hierarchy.includes(&billing, &user));
    assert!(!hierarchy.includes(&billing, &moderator));
    assert!(!hierarchy.includes(&moderator, &billing));
    assert!(!hierarchy.includes(&user, &billing));
    assert!(hierarchy.includes(&user, &user));
}

#[test]
fn default_hierarchy_is_admin_over_moderator_over_user() {
    let built = RoleHierarchy::builder()
        .role("admin", ["moderator"])
        .role("moderator", ["user"])
        .role("user", [])
        .build()
        .unwrap();
    assert_eq!(built, RoleHierarchy::default());
    let roles: Vec<&str> = built.roles().map(Role::as_str).collect();
    assert_eq!(roles, ["admin", "moderator", "user"]);
    let below_admin: Vec<&str> = built
        .included_by(&Role::admin())
        .map(Role::as_str)
        .collect();
    assert_eq!(below_admin, ["admin", "moderator", "user"]);
}

#[test]
fn hierarchy_builder_rejects_cycles() {
    let two = RoleHierarchy::builder()
        .role("admin", ["moderator"])
        .role("moderator", ["admin"])
        .build()
        .unwrap_err();
    assert_eq!(two.kind(), AuthzConfigErrorKind::Cycle);
    assert!(two.to_string().contains("\"admin\""), "{two}");

    let own = RoleHierarchy::builder()
        .role("admin", ["admin"])
        .build()
        .unwrap_err();
    assert_eq!(own.kind(), AuthzConfigErrorKind::Cycle);

    let three = RoleHierarchy::builder()
        .role("root", ["admin"])
        .role("admin", ["moderator"])
        .role("moderator", ["user"])
        .role("user", ["admin"])
        .build()
        .unwrap_err();
    assert_eq!(three.kind(), AuthzConfigErrorKind::Cycle);
    assert_eq!(
        three.to_string(),
        r#"the role hierarchy has a cycle: "admin" > "moderator" > "user" > "admin""#
    );
}

#[test]
fn hierarchy_builder_rejects_unknown_parents() {
    let error = RoleHierarchy::builder()
        .role("admin", ["moderater"])
        .role("moderator", [])
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), AuthzConfigErrorKind::UnknownRole);
    assert!(error.to_string().contains("\"moderater\""), "{error}");
}

#[test]
fn hierarchy_builder_rejects_duplicates() {
    let error = RoleHierarchy::builder()
        .role("admin", ["user"])
        .role("user", [])
        .role("admin", [])
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), AuthzConfigErrorKind::DuplicateRole);
    assert!(error.to_string().contains("\"admin\""), "{error}");
}

#[test]
fn hierarchy_builder_rejects_bad_names() {
    for (name, includes) in [("Admin", "user"), ("admin", "us er"), ("", "user")] {
        let error = RoleHierarchy::builder()
            .role(name, [includes])
            .role("user", [])
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), AuthzConfigErrorKind::InvalidRole, "{name:?}");
    }
}

// --- Permissions -----------------------------------------------------------------

#[test]
fn permission_inherited_through_hierarchy() {
    let authz = authz();
    let admin = with_role("root-1", Role::admin());
    let moderator = with_role("mod-1", Role::moderator());
    let user = with_role("user-1", Role::user());
    for permission in ["posts:create", "posts:read", "posts:delete", "users:ban"] {
        authz.require_permission(&admin, permission).unwrap();
    }
    authz
        .require_permission(&moderator, "posts:delete")
        .unwrap();
    authz
        .require_permission(&moderator, "posts:create")
        .unwrap();
    assert_forbidden(
        &authz
            .require_permission(&moderator, "users:ban")
            .unwrap_err(),
    );
    authz.require_permission(&user, "posts:read").unwrap();
    assert_forbidden(&authz.require_permission(&user, "posts:delete").unwrap_err());
}

#[test]
fn token_permissions_honoured_with_role_permissions() {
    let authz = authz();
    let user = with_role("user-1", Role::user()).with_permissions(["reports:export"]);
    authz.require_permission(&user, "reports:export").unwrap();
    authz.require_permission(&user, "posts:create").unwrap();
    assert_forbidden(&authz.require_permission(&user, "posts:delete").unwrap_err());

    let service = Principal::new("svc-backup").with_permissions(["backups:run"]);
    authz.require_permission(&service, "backups:run").unwrap();
}

#[test]
fn permission_is_matched_whole_not_by_prefix_case_or_wildcard() {
    let authz = authz();
    let user = Principal::new("user-1").with_permissions([
        "posts:*",
        "POSTS:DELETE",
        "posts:delete ",
        "posts",
        "posts:delete:own",
    ]);
    assert_forbidden(&authz.require_permission(&user, "posts:delete").unwrap_err());
}

#[test]
fn invalid_required_permission_passes_nobody() {
    let authz = authz();
    let weird = "posts:*";
    let principal = Principal::new("user-1").with_permissions([weird]);
    let (result, events) = capture(|| authz.require_permission(&principal, weird));
    assert_forbidden(&result.unwrap_err());
    assert_eq!(events[0]["reason"], "invalid_required_permission");
}

#[test]
fn permissions_for_undeclared_role_are_rejected() {
    let permissions = RolePermissions::builder()
        .grant("moderater", ["posts:delete"])
        .build()
        .unwrap();
    let error = Authorizer::new(RoleHierarchy::default(), permissions, "api").unwrap_err();
    assert_eq!(error.kind(), AuthzConfigErrorKind::UnknownRole);
    assert!(error.to_string().contains("\"moderater\""), "{error}");
}

#[test]
fn permissions_builder_rejects_duplicate_roles() {
    let error = RolePermissions::builder()
        .grant("user", ["posts:read"])
        .grant("user", ["posts:create"])
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), AuthzConfigErrorKind::DuplicateRole);
}

#[test]
fn bad_permission_strings_rejected() {
    let too_long = "p".repeat(129);
    for bad in [
        "",
        "posts delete",
        "posts:delete ",
        "Posts:delete",
        "posts:*",
        "posts:\"delete\"",
        "posts\ndelete",
        "posts:\u{0}",
        "pösts:delete",
        too_long.as_str(),
    ] {
        let error = RolePermissions::builder()
            .grant("user", [bad])
            .build()
            .unwrap_err();
        assert_eq!(
            error.kind(),
            AuthzConfigErrorKind::InvalidPermission,
            "{bad:?}"
        );
    }
    let longest = "p".repeat(128);
    RolePermissions::builder()
        .grant("user", ["a.b_c:d-e0", longest.as_str()])
        .build()
        .unwrap();
}

// --- Roles as strings ------------------------------------------------------------

#[test]
fn bad_role_strings_rejected() {
    let too_long = "r".repeat(65);
    for bad in [
        "",
        "Admin",
        "ADMIN",
        "ad min",
        " admin",
        "admin\n",
        "admin\r\nx-injected: 1",
        "ad\"min",
        "ad\\min",
        "admin\u{0}",
        "admín",
        "admin:all",
        "admin.x",
        too_long.as_str(),
    ] {
        let error = Role::new(bad).unwrap_err();
        assert_eq!(error.kind(), AuthzConfigErrorKind::InvalidRole, "{bad:?}");
    }
    let longest = "r".repeat(64);
    for good in ["admin", "read-only_2", "0", longest.as_str()] {
        assert_eq!(Role::new(good).unwrap().as_str(), good);
    }
    assert_eq!("moderator".parse::<Role>().unwrap(), Role::moderator());
    assert_eq!(Role::user().to_string(), "user");
}

#[test]
fn config_error_names_value_escaped_and_bounded() {
    let hostile = format!("\"\n{}", "x".repeat(500));
    let message = Role::new(&hostile).unwrap_err().to_string();
    assert!(!message.contains('\n'), "control characters are escaped");
    assert!(message.contains("\\\"\\n"), "{message}");
    assert!(message.contains(&"x".repeat(62)));
    assert!(!message.contains(&"x".repeat(63)), "at most 64 characters");
}

// --- Scopes ----------------------------------------------------------------------

#[test]
fn missing_scope_is_403_with_insufficient_scope_challenge() {
    let authz = authz();
    let client = Principal::new("client-1").with_scopes(["profile"]);
    let error = authz.require_scope(&client, "reports:read").unwrap_err();
    assert_forbidden(&error);
    assert_eq!(
        www_authenticate(&error),
        [r#"Bearer realm="api", error="insufficient_scope", scope="reports:read""#]
    );
}

#[test]
fn scope_present_passes() {
    let authz = authz();
    let client = Principal::new("client-1")
        .with_scopes(Principal::scopes_from_claim("profile reports:read"));
    authz.require_scope(&client, "reports:read").unwrap();
    authz.require_scope(&client, "profile").unwrap();
    assert!(authz.has_scope(&client, "profile"));
}

#[test]
fn scope_is_matched_exactly_and_case_sensitively() {
    let authz = authz();
    let client = Principal::new("client-1").with_scopes(["reports:read:all", "Reports:Read"]);
    assert_forbidden(&authz.require_scope(&client, "reports:read").unwrap_err());
    assert_forbidden(&authz.require_scope(&client, "reports").unwrap_err());
    // A raw, unsplit claim in one element grants none of its parts.
    let unsplit = Principal::new("client-2").with_scopes(["profile reports:read"]);
    assert_forbidden(&authz.require_scope(&unsplit, "reports:read").unwrap_err());
}

#[test]
fn required_scope_that_cannot_be_quoted_passes_nobody_and_injects_nothing() {
    let authz = authz();
    let injected = r#"x", error="invalid_token"#;
    let client = Principal::new("client-1").with_scopes([injected]);
    let error = authz.require_scope(&client, injected).unwrap_err();
    assert_forbidden(&error);
    assert_eq!(
        www_authenticate(&error),
        [r#"Bearer realm="api", error="insufficient_scope""#]
    );
}

#[test]
fn scope_claim_parsing() {
    assert_eq!(
        Principal::scopes_from_claim("openid profile"),
        ["openid", "profile"]
    );
    assert_eq!(
        Principal::scopes_from_claim("  openid   profile  "),
        ["openid", "profile"]
    );
    assert!(Principal::scopes_from_claim("").is_empty());
    assert!(Principal::scopes_from_claim("    ").is_empty());
    assert_eq!(
        Principal::scopes_from_claim("b a b a"),
        ["b", "a"],
        "repeats dropped, order kept"
    );
    // Only the ASCII space separates (RFC 6749 §3.3); a tab is not a separator,
    // and a token holding one is not a scope-token, so it grants nothing.
    assert_eq!(Principal::scopes_from_claim("a\tb c"), ["c"]);
    assert_eq!(
        Principal::scopes_from_claim("ok \"quoted\" back\\slash nbsp\u{a0}x ünï"),
        ["ok"]
    );
    assert_eq!(
        Principal::scopes_from_claim("reports:read !#$%&'()*+,-./[]^_`{|}~"),
        ["reports:read", "!#$%&'()*+,-./[]^_`{|}~"]
    );
}

// --- Ownership (IDOR) --------------------------------------------------------------

#[test]
fn idor_other_users_resource_is_404_when_concealed() {
    let authz = authz();
    let mallory = with_role("mallory", Role::user());
    let error = authz
        .owner_or(&mallory, "alice", &Role::admin(), Concealment::NotFound)
        .unwrap_err();
    assert_eq!(error.status(), StatusCode::NOT_FOUND);
    assert_eq!(error.kind().code(), "not_found");
    assert!(www_authenticate(&error).is_empty());
    assert_eq!(Concealment::default(), Concealment::NotFound);
}

#[test]
fn idor_other_users_resource_is_403_when_not_concealed() {
    let authz = authz();
    let mallory = with_role("mallory", Role::moderator());
    let error = authz
        .owner_or(&mallory, "alice", &Role::admin(), Concealment::Forbidden)
        .unwrap_err();
    assert_forbidden(&error);
}

#[test]
fn owner_passes() {
    let authz = authz();
    let alice = with_role("alice", Role::user());
    authz
        .owner_or(&alice, "alice", &Role::admin(), Concealment::NotFound)
        .unwrap();
    // Ownership needs no role at all.
    let bare = Principal::new("alice");
    authz
        .owner_or(&bare, "alice", &Role::admin(), Concealment::NotFound)
        .unwrap();
}

#[test]
fn idor_subject_is_compared_whole() {
    let authz = authz();
    for subject in ["alic", "alice ", "Alice", "alice\0", "alicex"] {
        let principal = Principal::new(subject);
        assert_eq!(
            authz
                .owner_or(&principal, "alice", &Role::admin(), Concealment::NotFound)
                .unwrap_err()
                .status(),
            StatusCode::NOT_FOUND,
            "{subject:?}"
        );
    }
}

#[test]
fn admin_bypass_passes() {
    let authz = authz();
    let admin = with_role("root-1", Role::admin());
    authz
        .owner_or(&admin, "alice", &Role::admin(), Concealment::NotFound)
        .unwrap();
    // A bypass for moderators lets the admins above them through too.
    authz
        .owner_or(&admin, "alice", &Role::moderator(), Concealment::NotFound)
        .unwrap();
}

#[test]
fn empty_subject_owns_nothing() {
    let authz = authz();
    let nobody = with_role("", Role::user());
    assert_eq!(
        authz
            .owner_or(&nobody, "", &Role::admin(), Concealment::NotFound)
            .unwrap_err()
            .status(),
        StatusCode::NOT_FOUND
    );
}

// --- Challenges and realm ----------------------------------------------------------

#[test]
fn no_credentials_challenge_has_no_error_code() {
    let error = authz().challenge_missing();
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error.kind().code(), "unauthorized");
    assert_eq!(www_authenticate(&error), [r#"Bearer realm="api""#]);
}

#[test]
fn invalid_token_challenge_says_invalid_token() {
    let error = authz().challenge_invalid_token();
    assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error.kind().code(), "unauthorized");
    assert_eq!(
        www_authenticate(&error),
        [r#"Bearer realm="api", error="invalid_token""#]
    );
    let response = error.to_response(None);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        r#"Bearer realm="api", error="invalid_token""#
    );
}

#[test]
fn bad_realm_strings_rejected() {
    let too_long = "r".repeat(65);
    for bad in [
        "",
        "my api",
        " api",
        "api\"",
        r#"api", error="invalid_token"#,
        "api\\",
        "api\r\nSet-Cookie: x=1",
        "api\t",
        "api\u{7f}",
        "äpi",
        too_long.as_str(),
    ] {
        let error =
            Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), bad).unwrap_err();
        assert_eq!(error.kind(), AuthzConfigErrorKind::InvalidRealm, "{bad:?}");
    }
    let longest = "r".repeat(64);
    for good in [
        "api",
        "palisade.example.com",
        "Api-v2/internal",
        longest.as_str(),
    ] {
        let authz =
            Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), good).unwrap();
        assert_eq!(authz.realm(), good);
        assert_eq!(
            www_authenticate(&authz.challenge_missing()),
            [format!("Bearer realm=\"{good}\"")]
        );
    }
}

// --- The denial event --------------------------------------------------------------

#[test]
fn every_denial_logs_authz_fail_without_token_contents() {
    let authz = authz();
    let user = with_role("user-1", Role::user()).with_scopes(["profile"]);
    let (results, events) = capture(|| {
        [
            authz.require_role(&user, &Role::admin()),
            authz.require_permission(&user, "users:ban"),
            authz.require_scope(&user, "reports:read"),
            authz.owner_or(&user, "alice", &Role::admin(), Concealment::NotFound),
            authz.require_any_role(&user, &[Role::admin(), Role::moderator()]),
        ]
    });
    assert!(results.iter().all(Result::is_err));
    let denied: Vec<_> = events
        .iter()
        .filter(|event| event.get("event").map(String::as_str) == Some("authz_fail"))
        .collect();
    assert_eq!(denied.len(), 5, "{events:?}");
    let summary: Vec<(&str, &str, &str)> = denied
        .iter()
        .map(|event| {
            (
                event["subject_hash"].as_str(),
                event["required"].as_str(),
                event["reason"].as_str(),
            )
        })
        .collect();
    // The subject's hash, never the subject.
    let user_1 = SubjectHash::of("user-1").to_string();
    let user_1 = user_1.as_str();
    assert_eq!(
        summary,
        [
            (user_1, "admin", "insufficient_role"),
            (user_1, "users:ban", "missing_permission"),
            (user_1, "reports:read", "missing_scope"),
            (user_1, "owner|admin", "not_owner"),
            (user_1, "admin|moderator", "insufficient_role"),
        ]
    );
    assert!(events.iter().all(|event| !event.contains_key("subject")));
}

#[test]
fn denial_event_reasons_for_missing_and_invented_roles() {
    let authz = authz();
    let no_role = Principal::new("client-1");
    let invented = with_role("mallory", Role::new("superuser").unwrap());
    let (_, events) = capture(|| {
        let _ = authz.require_role(&no_role, &Role::user());
        let _ = authz.require_role(&invented, &Role::user());
    });
    let reasons: Vec<&str> = events
        .iter()
        .map(|event| event["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["no_role", "unknown_role"]);
}

#[test]
fn denial_event_cannot_forge_log_lines() {
    let authz = authz();
    let hostile = with_role("eve\nevent=authorization_granted", Role::user());
    let (_, events) = capture(|| authz.require_role(&hostile, &Role::admin()));
    let subject = &events[0]["subject_hash"];
    assert!(!subject.contains('\n'), "{subject:?}");
    assert_eq!(
        subject,
        SubjectHash::of("eve\nevent=authorization_granted").as_str()
    );
}

#[test]
fn passing_checks_and_challenges_log_nothing() {
    let authz = authz();
    let admin = with_role("root-1", Role::admin()).with_scopes(["profile"]);
    let (_, events) = capture(|| {
        authz.require_role(&admin, &Role::user()).unwrap();
        authz.require_permission(&admin, "posts:delete").unwrap();
        authz.require_scope(&admin, "profile").unwrap();
        authz
            .owner_or(&admin, "alice", &Role::admin(), Concealment::NotFound)
            .unwrap();
        assert!(!authz.has_role(&admin, &Role::new("auditor").unwrap()));
        let _ = authz.challenge_missing();
        let _ = authz.challenge_invalid_token();
    });
    assert!(events.is_empty(), "{events:?}");
}

// --- Configuration through serde ---------------------------------------------------

#[test]
fn role_serde_is_a_validated_string() {
    assert_eq!(serde_json::to_string(&Role::admin()).unwrap(), "\"admin\"");
    assert_eq!(
        serde_json::from_str::<Role>("\"moderator\"").unwrap(),
        Role::moderator()
    );
    for bad in ["\"Admin\"", "\"\"", "\"a b\"", "\"a\\nb\"", "1", "null"] {
        assert!(serde_json::from_str::<Role>(bad).is_err(), "{bad}");
    }
}

#[test]
fn hierarchy_serde_round_trip() {
    let json =
        r#"{"admin":["billing","moderator"],"billing":["user"],"moderator":["user"],"user":[]}"#;
    let hierarchy: RoleHierarchy = serde_json::from_str(json).unwrap();
    assert!(hierarchy.includes(&Role::admin(), &Role::new("billing").unwrap()));
    assert_eq!(serde_json::to_string(&hierarchy).unwrap(), json);
    let default_json = serde_json::to_string(&RoleHierarchy::default()).unwrap();
    assert_eq!(
        default_json,
        r#"{"admin":["moderator"],"moderator":["user"],"user":[]}"#
    );
}

#[test]
fn hierarchy_serde_rejects_bad_configuration() {
    for (json, needle) in [
        (r#"{"admin":["user"],"user":["admin"]}"#, "cycle"),
        (r#"{"admin":["moderater"],"user":[]}"#, "\"moderater\""),
        (r#"{"admin":["user"],"user":[],"admin":[]}"#, "twice"),
        (r#"{"Admin":[]}"#, "\"Admin\""),
        (r#"{"admin":["us er"]}"#, "\"us er\""),
        (r#"{"admin":"user"}"#, "sequence"),
        (r#"["admin","user"]"#, "map"),
    ] {
        let error = serde_json::from_str::<RoleHierarchy>(json).unwrap_err();
        assert!(error.to_string().contains(needle), "{json}: {error}");
    }
}

#[test]
fn permissions_serde_round_trip() {
    let json = r#"{"moderator":["posts:delete"],"user":["posts:create","posts:read"]}"#;
    let permissions: RolePermissions = serde_json::from_str(json).unwrap();
    assert_eq!(permissions, {
        RolePermissions::builder()
            .grant("user", ["posts:read", "posts:create"])
            .grant("moderator", ["posts:delete"])
            .build()
            .unwrap()
    });
    assert_eq!(serde_json::to_string(&permissions).unwrap(), json);
}

#[test]
fn permissions_serde_rejects_bad_configuration() {
    for (json, needle) in [
        (r#"{"user":["posts:*"]}"#, "\"posts:*\""),
        (r#"{"user":["posts read"]}"#, "\"posts read\""),
        (r#"{"user":[""]}"#, "permission \"\""),
        (r#"{"User":["posts:read"]}"#, "\"User\""),
        (
            r#"{"user":["posts:read"],"user":["posts:create"]}"#,
            "twice",
        ),
        (r#"{"user":"posts:read"}"#, "sequence"),
    ] {
        let error = serde_json::from_str::<RolePermissions>(json).unwrap_err();
        assert!(error.to_string().contains(needle), "{json}: {error}");
    }
}

#[test]
fn authorizer_from_configuration() {
    let authz: Authorizer = serde_json::from_str(
        r#"{
            "realm": "api",
            "hierarchy": {"admin": ["moderator"], "moderator": ["user"], "user": []},
            "permissions": {"moderator": ["posts:delete"]}
        }"#,
    )
    .unwrap();
    let admin = with_role("root-1", Role::admin());
    authz.require_permission(&admin, "posts:delete").unwrap();
    assert_eq!(
        www_authenticate(&authz.challenge_missing()),
        [r#"Bearer realm="api""#]
    );

    let defaults: Authorizer = serde_json::from_str(r#"{"realm": "api"}"#).unwrap();
    assert_eq!(defaults.hierarchy(), &RoleHierarchy::default());
    assert_eq!(defaults.permissions(), &RolePermissions::default());
}

#[test]
fn authorizer_configuration_rejects_mistakes() {
    for (json, needle) in [
        (r#"{"realm": "my api"}"#, "realm"),
        (r#"{}"#, "realm"),
        (
            r#"{"realm": "api", "permissions": {"moderater": ["posts:delete"]}}"#,
            "\"moderater\"",
        ),
        (r#"{"realm": "api", "permisions": {}}"#, "permisions"),
    ] {
        let error = serde_json::from_str::<Authorizer>(json).unwrap_err();
        assert!(error.to_string().contains(needle), "{json}: {error}");
    }
}
