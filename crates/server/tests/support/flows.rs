//! The flows both the memory and the Redis runs drive.

use super::{ADMIN_PASSWORD, GOOD_PASSWORD, Reply, Server};

/// `{access_token, refresh_token}` of a login answer.
pub struct Pair {
    pub access: String,
    pub refresh: String,
}

impl Pair {
    pub fn of(reply: &Reply) -> Pair {
        let json = reply.json();
        assert_eq!(json["token_type"], "Bearer", "{reply:?}");
        assert!(json["expires_in"].as_u64().unwrap() > 0, "{reply:?}");
        Pair {
            access: json["access_token"].as_str().unwrap().to_owned(),
            refresh: json["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    pub fn auth(&self) -> (&'static str, String) {
        super::bearer(&self.access)
    }
}

fn credentials(username: &str, password: &str) -> String {
    serde_json::json!({"username": username, "password": password}).to_string()
}

pub fn register(server: &Server, username: &str) -> String {
    let reply = server.post("/auth/register", &[], &credentials(username, GOOD_PASSWORD));
    reply.expect(201);
    reply.json()["id"].as_str().unwrap().to_owned()
}

/// A login from a fresh client address (`X-Forwarded-For` through the
/// trusted local proxy), so a flow's many logins stay under the 5/minute
/// login limit per IP, which `login_direct` exercises.
pub fn login(server: &Server, username: &str, password: &str) -> Reply {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    server.post(
        "/auth/login",
        &[("X-Forwarded-For", &ip)],
        &credentials(username, password),
    )
}

/// A login from the test's own address (no forwarding header).
pub fn login_direct(server: &Server, username: &str, password: &str) -> Reply {
    server.post("/auth/login", &[], &credentials(username, password))
}

pub fn login_ok(server: &Server, username: &str, password: &str) -> Pair {
    let reply = login(server, username, password);
    reply.expect(200);
    // Each login answers the client's device token (64 hex), which exempts
    // its next logins from the account-wide slowdown of a botnet attack.
    let device = reply.json()["device_token"].as_str().map(str::to_owned);
    assert!(
        device
            .is_some_and(|token| token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())),
        "{reply:?}"
    );
    Pair::of(&reply)
}

fn get_me(server: &Server, access: &str) -> Reply {
    let (name, value) = super::bearer(access);
    server.get("/me", &[(name, &value)])
}

fn refresh(server: &Server, token: &str) -> Reply {
    server.post(
        "/auth/refresh",
        &[],
        &serde_json::json!({"refresh_token": token}).to_string(),
    )
}

/// register → login → me → refresh → reuse detected (family revoked) →
/// logout → token refused; logout-all ends every session.
pub fn auth_flow(server: &Server, username: &str) {
    // Registration: the username is normalised, so a case variant is a
    // duplicate (attack: a look-alike account).
    let id = register(server, username);
    let twin = server.post(
        "/auth/register",
        &[],
        &credentials(&username.to_uppercase(), GOOD_PASSWORD),
    );
    twin.expect(409);
    assert_eq!(twin.code(), "conflict");
    // The password policy answers 422 with every failure.
    let weak = server.post(
        "/auth/register",
        &[],
        &credentials(&format!("{username}2"), "password"),
    );
    weak.expect(422);
    let details = weak.json()["error"]["details"].clone();
    assert!(details.to_string().contains("too_short"), "{weak:?}");
    assert!(details.to_string().contains("too_common"), "{weak:?}");
    assert!(!weak.body.contains("\"password\":\"password\""));

    // Attack: user enumeration. A wrong password and an unknown user get
    // the same 401 envelope.
    let wrong = login(server, username, "not the password at all 99");
    let unknown = login(
        server,
        &format!("{username}-nobody"),
        "not the password at all 99",
    );
    wrong.expect(401);
    unknown.expect(401);
    assert_eq!(wrong.code(), unknown.code());
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );

    let first = login_ok(server, username, GOOD_PASSWORD);
    let me = get_me(server, &first.access);
    me.expect(200);
    let json = me.json();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["username"], username.to_lowercase());
    assert_eq!(json["role"], "user");
    assert_eq!(json["scopes"], serde_json::json!(["reports:read"]));
    assert!(json["display_name"].is_null());

    // Rotation: the refresh token is single use.
    let rotated = refresh(server, &first.refresh);
    rotated.expect(200);
    let second = Pair::of(&rotated);
    assert_ne!(second.refresh, first.refresh);
    get_me(server, &second.access).expect(200);
    // Attack: a stolen refresh token replayed after the client rotated it.
    // Reuse is refused and ends the whole family: the thief's token and the
    // legitimate client's latest token and access token all stop.
    refresh(server, &first.refresh).expect(401);
    refresh(server, &second.refresh).expect(401);
    get_me(server, &second.access).expect(401);

    // Logout: the access token stops at once, the refresh token too.
    let third = login_ok(server, username, GOOD_PASSWORD);
    let (name, value) = third.auth();
    let body = serde_json::json!({"refresh_token": third.refresh}).to_string();
    server
        .post("/auth/logout", &[(name, &value)], &body)
        .expect(204);
    let refused = get_me(server, &third.access);
    refused.expect(401);
    assert!(
        refused
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    refresh(server, &third.refresh).expect(401);
    // Logout without a token: 401 with the challenge.
    server.post("/auth/logout", &[], "").expect(401);
    // A client whose stored refresh token is corrupt still logs out: its
    // session ends (the bad token is reported, 401). It used to keep the
    // session alive, access and refresh token both.
    let fourth = login_ok(server, username, GOOD_PASSWORD);
    let (name, value) = fourth.auth();
    server
        .post(
            "/auth/logout",
            &[(name, &value)],
            r#"{"refresh_token":"garbage"}"#,
        )
        .expect(401);
    get_me(server, &fourth.access).expect(401);
    refresh(server, &fourth.refresh).expect(401);
    // `{}` is a logout without a refresh token.
    let fifth = login_ok(server, username, GOOD_PASSWORD);
    let (name, value) = fifth.auth();
    server
        .post("/auth/logout", &[(name, &value)], "{}")
        .expect(204);
    get_me(server, &fifth.access).expect(401);
    refresh(server, &fifth.refresh).expect(401);

    // Logout everywhere: every session of the user ends.
    let a = login_ok(server, username, GOOD_PASSWORD);
    let b = login_ok(server, username, GOOD_PASSWORD);
    let (name, value) = a.auth();
    server
        .request("POST", "/auth/logout-all", &[(name, &value)], None)
        .expect(204);
    get_me(server, &a.access).expect(401);
    get_me(server, &b.access).expect(401);
    refresh(server, &b.refresh).expect(401);
    // A login after it works (stamped past the revocation; the store's
    // whole-second `not_before` may need the next second).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fresh = login_ok(server, username, GOOD_PASSWORD);
    get_me(server, &fresh.access).expect(200);
}

/// The admin from the environment; users and moderators are refused the
/// admin routes; a role change revokes the user's sessions and a refresh
/// re-reads the role.
pub fn rbac_flow(server: &Server, username: &str) {
    let admin = login_ok(server, "root", ADMIN_PASSWORD);
    let id = register(server, username);
    let user = login_ok(server, username, GOOD_PASSWORD);

    let (name, value) = admin.auth();
    let list = server.get("/admin/users", &[(name, &value)]);
    list.expect(200);
    let listed = list.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"root") && names.contains(&username),
        "{names:?}"
    );
    assert!(
        !list.body.contains("argon2"),
        "no password hash in the list"
    );

    // Attack: privilege escalation by a plain user.
    let (name, value) = user.auth();
    let denied = server.get("/admin/users", &[(name, &value)]);
    denied.expect(403);
    assert_eq!(denied.code(), "forbidden");
    let escalate = server.post(
        &format!("/admin/users/{id}/role"),
        &[(name, &value)],
        r#"{"role":"admin"}"#,
    );
    escalate.expect(403);
    server.get("/admin/users", &[]).expect(401);

    // The admin makes the user a moderator: the old tokens stop (they
    // carry the old role), the refresh token too; a new login carries the
    // new role, and a moderator is still not an admin.
    let (admin_name, admin_value) = admin.auth();
    let changed = server.post(
        &format!("/admin/users/{id}/role"),
        &[(admin_name, &admin_value)],
        r#"{"role":"moderator"}"#,
    );
    changed.expect(200);
    assert_eq!(changed.json()["role"], "moderator");
    get_me(server, &user.access).expect(401);
    refresh(server, &user.refresh).expect(401);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let moderator = login_ok(server, username, GOOD_PASSWORD);
    assert_eq!(
        get_me(server, &moderator.access).json()["role"],
        "moderator"
    );
    let (name, value) = moderator.auth();
    server.get("/admin/users", &[(name, &value)]).expect(403);
    // Refresh re-reads the role from the store.
    let rotated = Pair::of(refresh(server, &moderator.refresh).expect(200));
    assert_eq!(get_me(server, &rotated.access).json()["role"], "moderator");

    // Attack: a demoted moderator keeps acting with the old role through an
    // API key minted with it (a key keeps the scopes it was made with).
    // Demotion revokes the keys holding a scope the new role may not grant;
    // a key within it stays.
    let (name, value) = rotated.auth();
    let mint = |scopes: &str| {
        let created = server.post(
            "/api-keys",
            &[(name, &value)],
            &format!(r#"{{"name":"k","scopes":{scopes}}}"#),
        );
        created.expect(201);
        created.json()["key"].as_str().unwrap().to_owned()
    };
    let broad = mint(r#"["reports:read","users:read"]"#);
    let narrow = mint(r#"["reports:read"]"#);
    let report = "/reports/0123456789abcdef01234567";
    server.get(report, &[("X-API-Key", &broad)]).expect(200);
    server
        .post(
            &format!("/admin/users/{id}/role"),
            &[(admin_name, &admin_value)],
            r#"{"role":"user"}"#,
        )
        .expect(200);
    server.get(report, &[("X-API-Key", &broad)]).expect(401);
    server.get(report, &[("X-API-Key", &narrow)]).expect(200);

    // The last admin demoting themselves left the service with none: an
    // admin's own role is a 409.
    let admin_id = get_me(server, &admin.access).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let own = server.post(
        &format!("/admin/users/{admin_id}/role"),
        &[(admin_name, &admin_value)],
        r#"{"role":"user"}"#,
    );
    own.expect(409);
    assert_eq!(get_me(server, &admin.access).json()["role"], "admin");

    // Bad input to the admin route: an unknown role 422, a malformed id 404,
    // an unknown id 404.
    let unknown_role = server.post(
        &format!("/admin/users/{id}/role"),
        &[(admin_name, &admin_value)],
        r#"{"role":"superuser"}"#,
    );
    unknown_role.expect(422);
    server
        .post(
            "/admin/users/..%2f..%2fetc/role",
            &[(admin_name, &admin_value)],
            r#"{"role":"user"}"#,
        )
        .expect(404);
    server
        .post(
            &format!("/admin/users/{}/role", "0".repeat(32)),
            &[(admin_name, &admin_value)],
            r#"{"role":"user"}"#,
        )
        .expect(404);
}

/// PATCH /me: absent keeps, null clears, a string sets (validated).
pub fn patch_flow(server: &Server, username: &str) {
    register(server, username);
    let pair = login_ok(server, username, GOOD_PASSWORD);
    let (name, value) = pair.auth();
    let auth = [(name, value.as_str())];
    let patch = |body: &str| server.request("PATCH", "/me", &auth, Some(body));

    let set = patch(r#"{"display_name":"  Ada Lovelace "}"#);
    set.expect(200);
    assert_eq!(set.json()["display_name"], "Ada Lovelace");
    let kept = patch("{}");
    kept.expect(200);
    assert_eq!(kept.json()["display_name"], "Ada Lovelace");
    assert_eq!(
        server.get("/me", &auth).json()["display_name"],
        "Ada Lovelace"
    );
    let cleared = patch(r#"{"display_name":null}"#);
    cleared.expect(200);
    assert!(cleared.json()["display_name"].is_null());
    assert!(server.get("/me", &auth).json()["display_name"].is_null());

    // Attack: type confusion, the body as an array read by position
    // (`[]` kept the name, `["x"]` set it), past the checks that go by
    // field name. An array is no object: 422, on every JSON route.
    for positional in [r#"["arrayname"]"#, "[]"] {
        patch(positional).expect(422);
    }
    server
        .post(
            "/auth/register",
            &[],
            r#"["positional","marmalade kettle thunder 42"]"#,
        )
        .expect(422);
    server
        .post(
            "/auth/login",
            &[],
            &format!(r#"["{username}","{GOOD_PASSWORD}"]"#),
        )
        .expect(422);
    server
        .post("/auth/logout", &auth, r#"["a refresh token"]"#)
        .expect(400);
    assert!(server.get("/me", &auth).json()["display_name"].is_null());
    let pair = login_ok(server, username, GOOD_PASSWORD);
    let (name, value) = pair.auth();
    let auth = [(name, value.as_str())];
    let patch = |body: &str| server.request("PATCH", "/me", &auth, Some(body));

    // Invalid values: 422 with the field, and nothing changes.
    let too_long = patch(&serde_json::json!({"display_name": "x".repeat(65)}).to_string());
    too_long.expect(422);
    assert!(too_long.body.contains("display_name"), "{too_long:?}");
    // Attack: a bidi override that makes a name read differently to an admin.
    patch(&serde_json::json!({"display_name": "admin\u{202e}nimda"}).to_string()).expect(422);
    // Attack: an invisible name, or one with hidden characters (a zero-width
    // twin of another user's, a right-to-left mark, tag characters).
    for hidden in [
        "\u{200b}",
        "\u{3164}",
        " \u{115f}\u{2800} ",
        "Ada\u{200f}",
        "Ada\u{061c}",
        "Ad\u{200d}a",
        "Ada\u{e0041}",
    ] {
        let refused = patch(&serde_json::json!({"display_name": hidden}).to_string());
        refused.expect(422);
        assert!(
            refused.body.contains("display_name"),
            "{hidden:?}: {refused:?}"
        );
    }
    patch(r#"{"display_name":42}"#).expect(422);
    // Attack: mass assignment of the role through the profile.
    patch(r#"{"role":"admin"}"#).expect(422);
    assert_eq!(server.get("/me", &auth).json()["role"], "user");
    assert!(server.get("/me", &auth).json()["display_name"].is_null());
}

/// API keys: issued by their owner (scopes within the role), listed without
/// secrets, used on `/reports/{id}`, rotated, revoked; another user's key id
/// answers 404.
pub fn api_key_flow(server: &Server, owner: &str, other: &str) {
    register(server, owner);
    register(server, other);
    let pair = login_ok(server, owner, GOOD_PASSWORD);
    let (name, value) = pair.auth();
    let auth = [(name, value.as_str())];
    // Attack: scope escalation, a user minting a key with admin rights.
    let escalate = server.post(
        "/api-keys",
        &auth,
        r#"{"name":"ci","scopes":["reports:read","users:write"]}"#,
    );
    escalate.expect(422);
    server
        .post(
            "/api-keys",
            &auth,
            r#"{"name":"ci","scopes":["reports:read"],"expires_in_days":0}"#,
        )
        .expect(422);
    server
        .post(
            "/api-keys",
            &auth,
            r#"{"name":"ci","scopes":["reports:read"],"allowed_ips":["300.1.1.1/8"]}"#,
        )
        .expect(422);
    server
        .post(
            "/api-keys",
            &[],
            r#"{"name":"ci","scopes":["reports:read"]}"#,
        )
        .expect(401);

    let created = server.post(
        "/api-keys",
        &auth,
        r#"{"name":"ci deploys","scopes":["reports:read"],"expires_in_days":30}"#,
    );
    created.expect(201);
    let json = created.json();
    let id = json["id"].as_str().unwrap().to_owned();
    let key = json["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pal_live_"), "{json}");
    assert!(json["expires_at"].as_u64().is_some());

    let listed = server.get("/api-keys", &auth);
    listed.expect(200);
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
    assert!(!listed.body.contains(&key), "the secret is shown once only");
    assert_eq!(listed.json()[0]["id"], id.as_str());

    let report = "0123456789abcdef01234567";
    let with_key = server.get(&format!("/reports/{report}"), &[("X-API-Key", &key)]);
    with_key.expect(200);
    assert_eq!(with_key.json()["via"], "api_key");
    let with_bearer = server.get(&format!("/reports/{report}"), &auth);
    with_bearer.expect(200);
    assert_eq!(with_bearer.json()["via"], "bearer");
    // Ambiguous credentials, no credentials, a typo, a bad id.
    server
        .get(
            &format!("/reports/{report}"),
            &[("X-API-Key", &key), (name, &value)],
        )
        .expect(400);
    let anonymous = server.get(&format!("/reports/{report}"), &[]);
    anonymous.expect(401);
    let typo = key.replacen("pal_live_", "pal_live_x", 1);
    server
        .get(&format!("/reports/{report}"), &[("X-API-Key", &typo)])
        .expect(401);
    server
        .get("/reports/0123456789ABCDEF01234567", &[("X-API-Key", &key)])
        .expect(404);
    server
        .get("/reports/123", &[("X-API-Key", &key)])
        .expect(404);

    // Attack: another user revoking or rotating my key (IDOR): a 404, as
    // for an unknown id.
    let intruder = login_ok(server, other, GOOD_PASSWORD);
    let (iname, ivalue) = intruder.auth();
    server
        .request(
            "DELETE",
            &format!("/api-keys/{id}"),
            &[(iname, &ivalue)],
            None,
        )
        .expect(404);
    server
        .request(
            "POST",
            &format!("/api-keys/{id}/rotate"),
            &[(iname, &ivalue)],
            None,
        )
        .expect(404);
    assert_eq!(
        server
            .get("/api-keys", &[(iname, &ivalue)])
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Rotation: a new key, the old one in its grace.
    let rotated = server.request("POST", &format!("/api-keys/{id}/rotate"), &auth, None);
    rotated.expect(201);
    let new_key = rotated.json()["key"].as_str().unwrap().to_owned();
    let new_id = rotated.json()["id"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    server
        .get(&format!("/reports/{report}"), &[("X-API-Key", &new_key)])
        .expect(200);
    server
        .get(&format!("/reports/{report}"), &[("X-API-Key", &key)])
        .expect(200);
    // Revocation: refused at once.
    server
        .request("DELETE", &format!("/api-keys/{new_id}"), &auth, None)
        .expect(204);
    server
        .get(&format!("/reports/{report}"), &[("X-API-Key", &new_key)])
        .expect(401);
}
