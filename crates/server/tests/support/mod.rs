//! Starts the real `palisade-server` binary on a free port and talks HTTP/1.1
//! to it over a plain `TcpStream` (no HTTP client in the tree is needed).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod flows;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A password the NIST policy accepts.
pub const GOOD_PASSWORD: &str = "marmalade kettle thunder 42";
/// The admin's password in the tests.
pub const ADMIN_PASSWORD: &str = "tangerine orbit quietly 1987";

/// Fixed, production-strength secrets: every instance a test starts with
/// them verifies the others' tokens and API keys (development would give
/// each start random ones), and production accepts them.
pub const FIXED_SECRETS: [(&str, &str); 3] = [
    (
        "PALISADE_JWT_ACCESS_SECRET",
        "k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa",
    ),
    (
        "PALISADE_JWT_REFRESH_SECRET",
        "Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa",
    ),
    (
        "PALISADE_API_KEY_PEPPER",
        "Jm3Vd8Qs1Hx6Lt0Rw5Nb9Pk2Fg7Cz4Ye",
    ),
];

/// `env` with [`FIXED_SECRETS`] added.
pub fn with_fixed_secrets<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = FIXED_SECRETS.to_vec();
    all.extend_from_slice(env);
    all
}

/// A running server; killed on drop.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// A free local port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The command for the binary with a development base environment:
/// nothing inherited from `PALISADE_*`, a short pre-stop delay, no grace on
/// refresh reuse, an admin account.
pub fn command(address: &str, env: &[(&str, &str)], log: &std::fs::File) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_palisade-server"));
    for (name, _) in std::env::vars() {
        if name.starts_with("PALISADE_") {
            command.env_remove(name);
        }
    }
    command
        .env("PALISADE_ENV", "development")
        .env("PALISADE_ADDR", address)
        .env("PALISADE_PRE_STOP_DELAY", "200ms")
        .env("PALISADE_REFRESH_GRACE", "0s")
        .env("PALISADE_ADMIN_USERNAME", "root")
        .env("PALISADE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // The flows log in from many addresses through a "proxy" on
        // loopback; the global limit is high enough for a flow's bursts
        // (the tests of the limits set their own).
        .env("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32")
        .env("PALISADE_RATE_LIMIT", "200/second,5000/minute")
        .env("RUST_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .stdout(Stdio::null())
        .stderr(Stdio::from(log.try_clone().unwrap()));
    command
}

impl Server {
    /// Starts the binary with `env` on top of the base environment and waits
    /// until `/health/live` answers.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let child = command(&address, env, &log).spawn().unwrap();
        let mut server = Server {
            child,
            address,
            log: log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("server exited at start ({status}):\n{}", server.log_text());
            }
            if TcpStream::connect(&server.address).is_ok()
                && server.get("/health/live", &[]).status == 200
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "server did not start:\n{}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `raw` (a whole request) and reads the answer.
    pub fn raw(&self, raw: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(raw).unwrap();
        read_reply(&mut stream)
    }

    /// A request with `headers` and an optional JSON body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        self.raw(&build(method, path, headers, body))
    }

    /// `GET path`.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request("GET", path, headers, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        self.request("POST", path, headers, Some(body))
    }

    /// Sends SIGTERM with the `kill` command.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bytes of a request (`Connection: close`, `Host: localhost` unless
/// `headers` has one).
pub fn build(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        text.push_str("Host: localhost\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            text.push_str("Content-Type: application/json\r\n");
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    } else {
        text.push_str("\r\n");
    }
    text.into_bytes()
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self:?}"))
    }

    /// The envelope's error code.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Asserts the status, printing the reply otherwise.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Reply {
        assert_eq!(self.status, status, "{self:?}");
        self
    }
}

/// Reads one response (to EOF: every request says `Connection: close`).
pub fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        let (chunk, tail) = after.split_at(size);
        out.push_str(chunk);
        rest = tail.strip_prefix("\r\n").unwrap_or(tail);
    }
    out
}

/// `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// The service in process on memory stores, as `main` builds it: its
/// configuration from `env` (with [`FIXED_SECRETS`]), its state, and the
/// admin of `PALISADE_ADMIN_*` created. `palisade_server::app` turns the
/// two into the router.
pub async fn in_process(
    env: &[(&str, &str)],
) -> (
    std::sync::Arc<palisade_server::state::App<palisade_server::state::Memory>>,
    palisade_server::Config,
) {
    use palisade_server::state;
    let config = palisade_server::Config::from_env(palisade_secrets::MapEnv::from_iter(
        with_fixed_secrets(env),
    ))
    .unwrap();
    let app = state::build_with_metrics(
        &config,
        state::memory_stores(),
        std::sync::Arc::new(palisade_server::metrics::Metrics::new()),
    )
    .unwrap();
    state::ensure_admin(&app, &config).await.unwrap();
    (app, config)
}

/// A JSON `POST` for the in-process router, from `peer` (the
/// `ConnectInfo` that `serve` adds to every request).
pub fn json_post(path: &str, body: String, peer: [u8; 4]) -> http::Request<axum::body::Body> {
    let mut request = http::Request::post(path)
        .header(http::header::HOST, "localhost")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body))
        .unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            peer, 40000,
        ))));
    request
}
