//! End to end: the real `examples/server.rs` binary (the actix twin of
//! palisade-server), started on a free port and driven over HTTP/1.1 on a
//! plain `TcpStream`, as palisade-server's own e2e tests drive the axum
//! service. Cargo gives tests no `CARGO_BIN_EXE_` for examples (and
//! `cargo test --tests` does not build them), so the test builds the example
//! first with `cargo build --example server` and the features this test was
//! compiled with, into this test's own target directory: a no-op when the
//! same build already made it, a one-time build of the example otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "tangerine orbit quietly 1987";
const DEMO_PASSWORD: &str = "plum lantern sideways 2048";

/// The example binary, built (or found fresh) by cargo.
fn example_binary() -> PathBuf {
    // <target>/<profile>/deps/example_server-<hash>
    let test_exe = std::env::current_exe().unwrap();
    let profile_dir = test_exe.parent().unwrap().parent().unwrap().to_path_buf();
    let target_dir = profile_dir.parent().unwrap();
    let features: Vec<&str> = [
        ("headers", cfg!(feature = "headers")),
        ("ratelimit", cfg!(feature = "ratelimit")),
        ("auth", cfg!(feature = "auth")),
        ("apikeys", cfg!(feature = "apikeys")),
        ("serve", cfg!(feature = "serve")),
        ("validate", cfg!(feature = "validate")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--quiet", "--example", "server"]);
    if features.len() == 6 {
        // As `cargo xtask ci` builds (`--workspace --all-features`, whose
        // feature unification decides the artifacts): a no-op after its
        // nextest build, only the example after `cargo test --tests`.
        build.args(["--workspace", "--all-features"]);
    } else {
        build
            .args(["-p", "palisade-actix", "--features"])
            .arg(features.join(","));
    }
    build
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "cargo build --example server failed");
    profile_dir.join("examples").join("server")
}

/// The running example; killed on drop.
struct Twin {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Twin {
    fn start() -> Twin {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("palisade-actix-twin-{port}.log"));
        let mut command = Command::new(example_binary());
        for (name, _) in std::env::vars() {
            if name.starts_with("PALISADE_") {
                command.env_remove(name);
            }
        }
        command
            .env("PALISADE_ENV", "development")
            .env("PALISADE_ADDR", &address)
            .env("PALISADE_ADMIN_USERNAME", "root")
            .env("PALISADE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PALISADE_DEMO_PASSWORD", DEMO_PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
        let mut twin = Twin {
            child: command.spawn().unwrap(),
            address,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = twin.child.try_wait().unwrap() {
                panic!(
                    "the example exited at start ({status}):\n{}",
                    twin.log_text()
                );
            }
            if TcpStream::connect(&twin.address).is_ok()
                && twin.request("GET", "/health/live", &[], None).status == 200
            {
                return twin;
            }
            assert!(
                Instant::now() < deadline,
                "the example did not start:\n{}",
                twin.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut text =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        match body {
            Some(body) => text.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )),
            None => text.push_str("\r\n"),
        }
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(text.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        Reply::parse(&String::from_utf8_lossy(&bytes))
    }

    fn login(&self, username: &str, password: &str) -> Reply {
        let body = serde_json::json!({"username": username, "password": password}).to_string();
        self.request("POST", "/auth/login", &[], Some(&body))
    }

    fn get_as(&self, path: &str, token: &str) -> Reply {
        let bearer = format!("Bearer {token}");
        self.request("GET", path, &[("Authorization", &bearer)], None)
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(text: &str) -> Reply {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {text:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }

    #[track_caller]
    fn expect(&self, status: u16) -> &Reply {
        assert_eq!(self.status, status, "{self:?}");
        self
    }

    /// The envelope's code, after checking that the envelope carries this
    /// response's request id.
    #[track_caller]
    fn code(&self) -> String {
        let json = self.json();
        assert_eq!(
            json["error"]["request_id"].as_str(),
            self.header("x-request-id"),
            "{self:?}"
        );
        json["error"]["code"].as_str().unwrap().to_owned()
    }

    /// What two answers must share to be indistinguishable: status, header
    /// names and values but the request id, the date and the per-IP budget
    /// left (which the two requests spend in turn), and the body without the
    /// request id.
    fn shape(&self) -> (u16, Vec<(String, String)>, serde_json::Value) {
        let mut headers: Vec<_> = self
            .headers
            .iter()
            .filter(|(name, _)| {
                name != "x-request-id" && name != "date" && !name.contains("ratelimit")
            })
            .cloned()
            .collect();
        headers.sort();
        let mut body = self.json();
        body["error"]["request_id"] = serde_json::Value::Null;
        (self.status, headers, body)
    }

    /// The security headers and request id of every response, errors
    /// included.
    #[track_caller]
    fn assert_hardened(&self) {
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{self:?}"
        );
        assert_eq!(self.header("x-frame-options"), Some("DENY"), "{self:?}");
        assert_eq!(
            self.header("referrer-policy"),
            Some("no-referrer"),
            "{self:?}"
        );
        assert!(
            self.header("content-security-policy")
                .is_some_and(|csp| csp.contains("default-src 'none'")),
            "{self:?}"
        );
        assert!(
            self.header("vary")
                .is_some_and(|vary| vary.contains("Origin")),
            "{self:?}"
        );
        assert!(self.header("x-request-id").is_some(), "{self:?}");
        assert_eq!(self.header("server"), None, "fingerprint: {self:?}");
    }
}

fn access_token(reply: &Reply) -> String {
    let json = reply.json();
    assert_eq!(json["token_type"], "Bearer", "{reply:?}");
    assert!(json["expires_in"].as_u64().unwrap() > 0, "{reply:?}");
    assert!(json["refresh_token"].as_str().is_some(), "{reply:?}");
    json["access_token"].as_str().unwrap().to_owned()
}

/// The actix twin behaves as the reference service on its four routes:
/// login (no user enumeration, the 5/minute login flood limit), bearer
/// authentication, admin-only RBAC, liveness; every refusal hardened.
#[test]
fn the_actix_twin_serves_login_me_admin_and_health_end_to_end() {
    let twin = Twin::start();

    let live = twin.request("GET", "/health/live", &[], None);
    live.expect(200).assert_hardened();
    assert_eq!(live.json()["status"], "ok");

    // Login 1: the demo user (role `user`).
    let first = twin.login("demo", DEMO_PASSWORD);
    let user_token = access_token(first.expect(200));
    // The device token that exempts this client from a botnet's slowdown
    // of the account (palisade-server's `log_in`, shared by both twins).
    let device = first.json()["device_token"].as_str().unwrap().to_owned();
    assert!(
        device.len() == 64 && device.bytes().all(|b| b.is_ascii_hexdigit()),
        "{first:?}"
    );

    // Logins 2 and 3. Attack: user enumeration. A wrong password and an
    // unknown user get the same 401, byte for byte but the request id.
    let wrong = twin.login("demo", "not the password at all 1");
    let unknown = twin.login("nobody-here", "not the password at all 1");
    wrong.expect(401).assert_hardened();
    assert_eq!(wrong.code(), "unauthorized");
    assert_eq!(wrong.shape(), unknown.shape(), "{wrong:?}\n{unknown:?}");

    // /me: with the token, the account; without, 401 and the challenge.
    let me = twin.get_as("/me", &user_token);
    me.expect(200);
    assert_eq!(me.json()["username"], "demo");
    assert_eq!(me.json()["role"], "user");
    let anonymous = twin.request("GET", "/me", &[], None);
    anonymous.expect(401).assert_hardened();
    assert_eq!(anonymous.code(), "unauthorized");
    assert!(
        anonymous
            .header("www-authenticate")
            .is_some_and(|challenge| challenge.starts_with("Bearer")),
        "{anonymous:?}"
    );
    // Attack: a forged token is a 401 (invalid_token), never anonymous.
    let forged = twin.get_as("/me", &format!("{user_token}x"));
    forged.expect(401).assert_hardened();
    assert!(
        forged
            .header("www-authenticate")
            .is_some_and(|challenge| challenge.contains("invalid_token")),
        "{forged:?}"
    );

    // Attack: privilege escalation. /admin/users needs the admin role.
    let denied = twin.get_as("/admin/users", &user_token);
    denied.expect(403).assert_hardened();
    assert_eq!(denied.code(), "forbidden");
    twin.request("GET", "/admin/users", &[], None).expect(401);
    // Login 4: the admin of PALISADE_ADMIN_USERNAME.
    let admin_token = access_token(twin.login("root", ADMIN_PASSWORD).expect(200));
    let users = twin.get_as("/admin/users", &admin_token);
    users.expect(200);
    let mut names: Vec<String> = users
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["demo", "root"]);

    // Attack: password guessing from one address. Login 5 is admitted, the
    // 6th within the minute is refused by the 5/minute login limit.
    // (Login 5 sends the device token back: the same one is answered.)
    let body = serde_json::json!({
        "username": "demo",
        "password": DEMO_PASSWORD,
        "device_token": device,
    })
    .to_string();
    let fifth = twin.request("POST", "/auth/login", &[], Some(&body));
    assert_eq!(fifth.expect(200).json()["device_token"], device.as_str());
    let flood = twin.login("demo", DEMO_PASSWORD);
    flood.expect(429).assert_hardened();
    assert_eq!(flood.code(), "rate_limited");
    let retry_after: u64 = flood.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{flood:?}");
    // Only login has that budget: the token still works elsewhere.
    twin.get_as("/me", &user_token).expect(200);

    let log = twin.log_text();
    assert!(!log.contains("panicked"), "{log}");
    for secret in [ADMIN_PASSWORD, DEMO_PASSWORD, user_token.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}
