//! End to end: the real binary (memory stores, development profile) driven
//! over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use support::flows::{self, login, login_direct, login_ok};
use support::{ADMIN_PASSWORD, GOOD_PASSWORD, Server};

#[test]
fn auth_flow_register_login_me_refresh_reuse_logout() {
    let server = Server::start(&[]);
    flows::auth_flow(&server, "Alice");
    // The log: JSON lines (the redacting writer keeps them whole), the
    // denials under the shared vocabulary, and no password or token.
    let log = server.log_text();
    for line in log.lines() {
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(line);
        let Ok(json) = parsed else {
            panic!("not a JSON line: {line}");
        };
        assert!(json["target"].is_string(), "no target: {line}");
    }
    for event in [
        "authn_login_fail",
        "authn_token_reuse",
        "authn_token_revoked",
        "session_created",
    ] {
        assert!(
            log.contains(&format!("\"event\":\"{event}\"")),
            "no {event} event:\n{log}"
        );
    }
    assert!(!log.contains(GOOD_PASSWORD));
    assert!(!log.contains("not the password at all"));
    assert!(!log.contains("eyJ"), "a token in the log");
    assert!(
        !log.to_lowercase().contains("\"alice\""),
        "a username in the log"
    );
}

#[test]
fn rbac_admin_from_env_user_and_moderator_refused() {
    let server = Server::start(&[]);
    flows::rbac_flow(&server, "bob");
}

#[test]
fn api_keys_issue_list_use_rotate_revoke() {
    let server = Server::start(&[]);
    flows::api_key_flow(&server, "kim", "lee");
}

#[test]
fn patch_me_is_tri_state() {
    let server = Server::start(&[]);
    flows::patch_flow(&server, "carol");
}

#[test]
fn password_change_returns_a_fresh_pair_and_revokes_every_other_session() {
    let server = Server::start(&[]);
    flows::register(&server, "dave");
    // Attack: a session stolen before the password change keeps working.
    let stolen = login_ok(&server, "dave", GOOD_PASSWORD);
    let mine = login_ok(&server, "dave", GOOD_PASSWORD);
    let (name, value) = mine.auth();
    let auth = [(name, value.as_str())];
    let new_password = "quartz lantern meadow 2031";
    // The current password must be right (401), the new one pass the
    // policy (422) and not be a recent one (422 recently_used).
    let body = |current: &str, new: &str| {
        serde_json::json!({"current_password": current, "new_password": new}).to_string()
    };
    server
        .post(
            "/me/password",
            &auth,
            &body("wrong password entirely 1", new_password),
        )
        .expect(401);
    server
        .post("/me/password", &auth, &body(GOOD_PASSWORD, "short"))
        .expect(422);
    let reused = server.post("/me/password", &auth, &body(GOOD_PASSWORD, GOOD_PASSWORD));
    reused.expect(422);
    assert!(reused.body.contains("recently_used"), "{reused:?}");

    let changed = server.post("/me/password", &auth, &body(GOOD_PASSWORD, new_password));
    changed.expect(200);
    // The history check is no login: only the wrong current password above
    // is a failed login in the log, as its two lines (the hasher's and the
    // throttle's); a false one would feed stuffing alerts.
    let failed_logins = server
        .log_text()
        .lines()
        .filter(|line| line.contains("\"authn_login_fail\""))
        .count();
    assert_eq!(failed_logins, 2, "{}", server.log_text());
    let fresh = flows::Pair::of(&changed);
    let (name, value) = stolen.auth();
    server.get("/me", &[(name, &value)]).expect(401);
    server
        .post(
            "/auth/refresh",
            &[],
            &serde_json::json!({"refresh_token": stolen.refresh}).to_string(),
        )
        .expect(401);
    server.get("/me", &auth).expect(401);
    let (name, value) = fresh.auth();
    server.get("/me", &[(name, &value)]).expect(200);
    login(&server, "dave", GOOD_PASSWORD).expect(401);
    login_ok(&server, "dave", new_password);
}

fn reset_code(server: &Server) -> String {
    let log = server.log_text();
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("dev_reset_code"))
        .unwrap_or_else(|| panic!("no reset code logged:\n{log}"));
    let json: serde_json::Value = serde_json::from_str(line).unwrap();
    json["fields"]["dev_reset_code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn password_reset_answers_202_for_anyone_and_the_token_is_single_use() {
    let server = Server::start(&[]);
    flows::register(&server, "erin");
    let session = login_ok(&server, "erin", GOOD_PASSWORD);
    // An API key minted in the account before the reset (by an intruder,
    // say): account recovery must end it with the sessions.
    let (name, value) = session.auth();
    let planted = server.post(
        "/api-keys",
        &[(name, &value)],
        r#"{"name":"planted","scopes":["reports:read"]}"#,
    );
    planted.expect(201);
    let planted = planted.json()["key"].as_str().unwrap().to_owned();
    let report = "/reports/0123456789abcdef01234567";
    server.get(report, &[("X-API-Key", &planted)]).expect(200);
    // Attack: user enumeration through the reset form.
    let unknown = server.post(
        "/auth/password-reset/request",
        &[],
        r#"{"username":"nobody-here"}"#,
    );
    let known = server.post(
        "/auth/password-reset/request",
        &[],
        r#"{"username":"Erin"}"#,
    );
    unknown.expect(202);
    known.expect(202);
    assert_eq!(unknown.body, known.body);
    let code = reset_code(&server);
    let confirm = |token: &str, password: &str| {
        server.post(
            "/auth/password-reset/confirm",
            &[],
            &serde_json::json!({"token": token, "new_password": password}).to_string(),
        )
    };
    // A forged token, and a new password the policy refuses, which must
    // not burn the token (a user locked out of recovery by one mistyped
    // password): the token is spent only once the new hash is ready.
    confirm(
        &format!("{}.AAAA", code.split_once('.').unwrap().0),
        "quartz lantern meadow 2031",
    )
    .expect(401);
    confirm("no-dot-here", "quartz lantern meadow 2031").expect(401);
    confirm(&code, "short").expect(422);
    confirm(&code, "short").expect(422);
    // Attack: the link as a password oracle. "Recently used" tells its
    // holder the current (or a past) password, so that answer spends the
    // link: one guess a link, not 20 a second for 30 minutes.
    let reused = confirm(&code, GOOD_PASSWORD);
    reused.expect(422);
    assert!(reused.body.contains("recently_used"), "{reused:?}");
    confirm(&code, "quartz lantern meadow 2031").expect(401);
    login_ok(&server, "erin", GOOD_PASSWORD);
    // Logged as a failed change, not as a change: the password is as it was.
    let log = server.log_text();
    assert!(!log.contains("\"authn_password_change\""), "{log}");
    assert!(log.contains("spent without a password change"), "{log}");
    server
        .post(
            "/auth/password-reset/request",
            &[],
            r#"{"username":"erin"}"#,
        )
        .expect(202);
    let code = reset_code(&server);
    confirm(&code, "quartz lantern meadow 2031").expect(204);
    // Single use; the reset ended the sessions opened before it, and the
    // account's API keys.
    confirm(&code, "another fine passphrase 77").expect(401);
    let (name, value) = session.auth();
    server.get("/me", &[(name, &value)]).expect(401);
    server.get(report, &[("X-API-Key", &planted)]).expect(401);
    login(&server, "erin", GOOD_PASSWORD).expect(401);
    login_ok(&server, "erin", "quartz lantern meadow 2031");
}

#[test]
fn login_flood_gets_429_with_retry_after_and_health_stays_open() {
    let server = Server::start(&[]);
    // Attack: password spraying from one address. 5 logins a minute per IP
    // (on top of the global limit), whatever the usernames.
    for n in 0..5 {
        login_direct(&server, &format!("victim{n}"), "guess number one 123").expect(401);
    }
    let limited = login_direct(&server, "victim9", "guess number one 123");
    limited.expect(429);
    assert_eq!(limited.code(), "rate_limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{limited:?}");
    // The refusal carries the request id and the security headers too.
    assert!(limited.header("x-request-id").is_some());
    assert_eq!(limited.header("x-content-type-options"), Some("nosniff"));
    // Even the right password is refused while limited.
    login_direct(&server, "root", ADMIN_PASSWORD).expect(429);
    // Other routes and the probes are not the login's budget.
    server.get("/health/live", &[]).expect(200);
    server.get("/health/ready", &[]).expect(200);
}

#[test]
fn global_limit_per_ip_answers_429_but_never_on_health() {
    let server = Server::start(&[("PALISADE_RATE_LIMIT", "3/minute")]);
    for _ in 0..3 {
        server.get("/nope", &[]).expect(404);
    }
    let limited = server.get("/nope", &[]);
    limited.expect(429);
    assert!(limited.header("retry-after").is_some());
    assert!(limited.header("ratelimit-policy").is_some() || limited.header("ratelimit").is_some());
    for _ in 0..10 {
        server.get("/health/live", &[]).expect(200);
    }
}

#[test]
fn error_responses_carry_request_id_security_headers_and_cors() {
    let origin = "https://app.example.com";
    let server = Server::start(&[("PALISADE_CORS_ORIGINS", origin)]);
    // The serve loop's own refusals too (the router never sees them): too
    // many headers (431), a target past the limit (414), a declared body
    // past the largest cap (413), two Host headers (400).
    let many: Vec<(String, String)> = (0..120)
        .map(|n| (format!("X-A{n}"), "v".to_owned()))
        .chain(std::iter::once(("Origin".to_owned(), origin.to_owned())))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let long_target = format!("/me?{}", "a=1&".repeat(3000));
    let huge_body = format!(
        "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\n\
         Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
    );
    let two_hosts = format!("GET /me HTTP/1.1\r\nHost: a\r\nHost: b\r\nOrigin: {origin}\r\n\r\n");
    for (reply, status) in [
        (server.get("/health/live", &many), 431),
        (server.get(&long_target, &[("Origin", origin)]), 414),
        (server.raw(huge_body.as_bytes()), 413),
        (server.raw(two_hosts.as_bytes()), 400),
    ] {
        reply.expect(status);
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{reply:?}"
        );
        assert!(
            reply.header("strict-transport-security").is_some(),
            "{reply:?}"
        );
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(origin),
            "{reply:?}"
        );
        assert!(
            reply
                .header("vary")
                .is_some_and(|vary| vary.contains("Origin"))
        );
        assert!(reply.header("x-request-id").is_some());
    }
    for reply in [
        server.get("/nope", &[("Origin", origin)]),
        server.get("/me", &[("Origin", origin)]),
        server.request("DELETE", "/me", &[("Origin", origin)], None),
        server.post("/auth/login", &[("Origin", origin)], "{not json"),
    ] {
        assert!(reply.status >= 400, "{reply:?}");
        let id = reply.header("x-request-id").unwrap();
        assert_eq!(reply.json()["error"]["request_id"], id);
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-frame-options"), Some("DENY"));
        assert!(reply.header("content-security-policy").is_some());
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some(origin),
            "{reply:?}"
        );
        assert!(reply.header("vary").unwrap().contains("Origin"));
        assert!(
            reply.header("server").is_none(),
            "no Server header: {reply:?}"
        );
    }
    // Attack: a foreign origin reading the API in a user's browser.
    let foreign = server.get("/health/live", &[("Origin", "https://evil.example")]);
    assert!(foreign.header("access-control-allow-origin").is_none());
    let preflight = server.request(
        "OPTIONS",
        "/me",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    );
    preflight.expect(403);
    assert!(preflight.header("x-request-id").is_some());
}

#[test]
fn bad_input_gets_the_envelope_with_the_right_status() {
    let server = Server::start(&[
        ("PALISADE_MAX_BODY_BYTES", "1024"),
        ("PALISADE_TRUSTED_HOSTS", "api.example.com"),
    ]);
    let host = [("Host", "api.example.com")];
    let check = |reply: support::Reply, status: u16, code: &str| {
        reply.expect(status);
        assert_eq!(reply.code(), code, "{reply:?}");
        assert!(!reply.body.contains("serde"), "no internals: {reply:?}");
    };
    check(
        server.post("/auth/login", &host, "{not json"),
        400,
        "bad_request",
    );
    check(
        server.request(
            "POST",
            "/auth/login",
            &[("Host", "api.example.com"), ("Content-Type", "text/plain")],
            Some("{}"),
        ),
        415,
        "unsupported_media_type",
    );
    check(
        server.post("/auth/login", &host, r#"{"username":1,"password":"x"}"#),
        422,
        "validation_failed",
    );
    check(
        server.post(
            "/auth/register",
            &host,
            r#"{"username":"frank","password":"x","role":"admin"}"#,
        ),
        422,
        "validation_failed",
    );
    check(
        server.post(
            "/auth/register",
            &host,
            r#"{"username":"a b","password":"quartz lantern meadow 2031"}"#,
        ),
        422,
        "validation_failed",
    );
    // Oversized: declared, and chunked (no length to check up front).
    let big = format!(r#"{{"username":"x","password":"{}"}}"#, "a".repeat(4000));
    check(
        server.post("/auth/login", &host, &big),
        413,
        "payload_too_large",
    );
    let mut chunked = b"POST /auth/register HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..8 {
        chunked.extend_from_slice(format!("200\r\n{}\r\n", "a".repeat(0x200)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    check(server.raw(&chunked), 413, "payload_too_large");
    // Attack: Host-header injection. Probes with an IP as Host still pass.
    check(
        server.get("/me", &[("Host", "evil.example")]),
        400,
        "bad_request",
    );
    server
        .get("/health/live", &[("Host", "10.0.0.7")])
        .expect(200);
    server
        .get("/health/ready", &[("Host", "10.0.0.7:8080")])
        .expect(200);
    // A target past the limit: 414.
    let long = format!("/me?{}", "a=1&".repeat(3000));
    let reply = server.get(&long, &host);
    assert!(matches!(reply.status, 414 | 400), "{reply:?}");
    // A forged token is a 401, never anonymous.
    let forged = server.get(
        "/me",
        &[
            ("Host", "api.example.com"),
            (
                "Authorization",
                "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
            ),
        ],
    );
    forged.expect(401);
}

#[test]
fn production_misconfiguration_exits_non_zero_naming_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let port = support::free_port();
    let address = format!("127.0.0.1:{port}");
    let output = support::command(
        &address,
        &[
            ("PALISADE_ENV", "production"),
            ("PALISADE_DEBUG", "true"),
            ("PALISADE_CORS_ORIGINS", "*"),
            ("PALISADE_JWT_ACCESS_SECRET", "secret"),
            ("PALISADE_JWT_REFRESH_SECRET", "secret"),
        ],
        &log,
    )
    .stderr(std::process::Stdio::piped())
    .output()
    .unwrap();
    assert!(!output.status.success());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for variable in [
        "PALISADE_DEBUG",
        "PALISADE_CORS_ORIGINS",
        "PALISADE_TRUSTED_HOSTS",
        "PALISADE_JWT_ACCESS_SECRET",
        "PALISADE_JWT_REFRESH_SECRET",
        "PALISADE_API_KEY_PEPPER",
    ] {
        assert!(stderr.contains(variable), "{variable} not named:\n{stderr}");
    }
    assert!(!stderr.contains("\"secret\""), "no secret value printed");
    // It never bound.
    assert!(TcpStream::connect(&address).is_err());
}

#[test]
fn production_with_every_setting_right_serves_only_its_hosts() {
    let server = Server::start(&support::with_fixed_secrets(&[
        ("PALISADE_ENV", "production"),
        ("PALISADE_CORS_ORIGINS", "https://app.example.com"),
        ("PALISADE_TRUSTED_HOSTS", "api.example.com"),
    ]));
    let host = [("Host", "api.example.com")];
    server
        .post(
            "/auth/register",
            &host,
            r#"{"username":"prod","password":"quartz lantern meadow 2031"}"#,
        )
        .expect(201);
    server.get("/me", &[("Host", "localhost")]).expect(400);
    // No reset token in a production log.
    server
        .post(
            "/auth/password-reset/request",
            &host,
            r#"{"username":"prod"}"#,
        )
        .expect(202);
    assert!(!server.log_text().contains("dev_reset_code"));
    assert!(
        !server
            .log_text()
            .contains("generated a random development secret")
    );
}

#[test]
fn the_old_bind_variable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let output = support::command("127.0.0.1:1", &[("PALISADE_BIND", "127.0.0.1:9")], &log)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("PALISADE_ADDR"));
}

#[test]
fn sigterm_turns_readiness_503_then_drains_the_request_in_flight() {
    let mut server = Server::start(&[("PALISADE_PRE_STOP_DELAY", "1s")]);
    // A registration whose body is still arriving when SIGTERM comes.
    let body = serde_json::json!({"username": "slowpoke", "password": GOOD_PASSWORD}).to_string();
    let (first, rest) = body.split_at(10);
    let mut slow = TcpStream::connect(&server.address).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        slow,
        "POST /auth/register HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    // Within the pre-stop delay: still accepting, readiness says go away.
    let ready = server.get("/health/ready", &[]);
    ready.expect(503);
    assert_eq!(ready.json()["status"], "draining");
    server.get("/health/live", &[]).expect(200);

    // After the delay the listener is closed, the slow request still ends.
    std::thread::sleep(Duration::from_millis(1200));
    slow.write_all(rest.as_bytes()).unwrap();
    let reply = support::read_reply(&mut slow);
    reply.expect(201);
    assert_eq!(reply.json()["username"], "slowpoke");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(&server.address).is_err());
}
