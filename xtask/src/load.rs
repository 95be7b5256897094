//! `cargo xtask bench load`: palisade-server under `wrk`, against a bare axum
//! hello and the seeds' FastAPI stack, all measured in the same run on the
//! same machine, reported as ratios against the goals of issue 17.
//!
//! The run: build the server and the `bare_axum` example (release), start
//! the three services on free ports, measure `GET /health/live` on each,
//! register and log in enough accounts to get bearer tokens, measure an
//! authenticated `GET /me` on each (the same requests everywhere), then the
//! p99 of a paced `/health/live` probe idle and while 64 clients flood
//! `POST /auth/login`. Every process it starts is stopped on the way out,
//! on error too. A missed goal is reported, not an error (numbers vary on a
//! shared machine); a service that does not start or a non-2xx answer where
//! 200 is expected is.

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, cargo, python_venv_with, run, workspace_root};

/// Seconds each measured run lasts unless `--seconds` says otherwise.
pub const DEFAULT_SECONDS: u64 = 10;
/// Seconds of warm-up (results discarded) before each measured run.
const WARM_UP_SECONDS: u64 = 2;
/// wrk's threads and connections for the throughput runs.
const THREADS: u32 = 2;
const CONNECTIONS: u32 = 64;
/// The paced `/health/live` probe of the latency runs (see `probe.lua`).
const PROBE_CONNECTIONS: u32 = 16;
/// The clients hammering `POST /auth/login` during the flood.
const FLOOD_CONNECTIONS: u32 = 64;
/// Seconds the flood runs before the probe starts, so the probe sees the
/// hashing pool already saturated.
const FLOOD_LEAD_SECONDS: u64 = 2;

/// `PALISADE_RATE_LIMIT` for the run: far above what one machine can send,
/// so the per-IP limit is evaluated on every request but never refuses one.
const RATE_LIMIT: &str = "1000000/second";
/// palisade-server's per-subject limit (`config::SUBJECT_RATE_LIMIT`,
/// 600/minute, burst 600), which has no setting: the `/me` load is spread
/// over enough accounts that none of them reaches it.
const SUBJECT_BURST: f64 = 600.0;
const SUBJECT_PER_SECOND: f64 = 10.0;
const MIN_ACCOUNTS: usize = 16;
const MAX_ACCOUNTS: usize = 1024;
/// Accounts registered (and logged in) at once: enough to keep the server's
/// hashing pool busy, fewer than its queue (16 a worker) holds.
const ACCOUNT_WORKERS: usize = 4;

/// The seeds' stack, on top of the venv's [`crate::PYTHON_PACKAGES`].
const LOAD_PYTHON_PACKAGES: [&str; 3] = [
    "fastapi==0.165.0",
    "uvicorn[standard]==0.55.0",
    "slowapi==0.1.10",
];

/// The goals of issue 17.
const GOAL_HEALTH_VS_BARE: f64 = 0.85;
const GOAL_ME_VS_BARE: f64 = 0.60;
const GOAL_VS_FASTAPI: f64 = 50.0;
const GOAL_FLOOD_P99_MS: f64 = 20.0;
const GOAL_FLOOD_VS_IDLE: f64 = 3.0;

/// Runs the load benchmark; `seconds` is the length of each measured run.
pub fn load(seconds: u64) -> Result {
    let started = Instant::now();
    ensure_wrk()?;
    let python = python_venv_with(&LOAD_PYTHON_PACKAGES)?;
    run(
        "build palisade-server and the bare_axum example (release)",
        cargo().args([
            "build",
            "--release",
            "-p",
            "palisade-server",
            "--bin",
            "palisade-server",
            "--example",
            "bare_axum",
        ]),
    )?;
    let target = target_dir()?;
    let out = target.join("bench");
    std::fs::create_dir_all(&out)
        .map_err(|error| format!("creating {}: {error}", out.display()))?;
    let scripts = workspace_root().join("xtask").join("bench");
    let release = target.join("release");
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let load_before = load_average();

    // The access secret is shared with the FastAPI app, which verifies the
    // server's tokens with PyJWT.
    let access_secret = random_hex(32)?;

    let mut palisade = Command::new(release.join("palisade-server"));
    palisade_env(&mut palisade);
    palisade
        .env("PALISADE_ENV", "development")
        .env("PALISADE_RATE_LIMIT", RATE_LIMIT)
        // The flood's X-Forwarded-For addresses come through wrk on loopback.
        .env("PALISADE_TRUSTED_PROXIES", "127.0.0.1")
        .env("PALISADE_JWT_ACCESS_SECRET", &access_secret)
        .env("PALISADE_JWT_REFRESH_SECRET", random_hex(32)?)
        .env("PALISADE_API_KEY_PEPPER", random_hex(32)?)
        .env("PALISADE_PRE_STOP_DELAY", "0s");
    let mut palisade = Service::start("palisade-server", palisade, &out)?;

    let mut bare = Command::new(release.join("examples").join("bare_axum"));
    palisade_env(&mut bare);
    let mut bare = Service::start("bare-axum", bare, &out)?;

    let mut fastapi = Command::new(&python);
    palisade_env(&mut fastapi);
    let fastapi_port = free_port()?;
    fastapi
        .args(["-m", "uvicorn", "fastapi_app:app", "--app-dir"])
        .arg(&scripts)
        .args(["--host", "127.0.0.1", "--port"])
        .arg(fastapi_port.port().to_string())
        .args(["--workers", &cores.to_string()])
        // As palisade-server: no access log for 2xx, no `Server` header.
        .args([
            "--log-level",
            "warning",
            "--no-access-log",
            "--no-server-header",
        ])
        .env("PALISADE_JWT_ACCESS_SECRET", &access_secret);
    let mut fastapi = Service::start_at("fastapi", fastapi, fastapi_port, &out)?;

    for service in [&mut palisade, &mut bare, &mut fastapi] {
        service.wait_ready()?;
    }
    // The peer sends the same security headers (else it is not the seeds'
    // stack), and the server really runs its header layer.
    for service in [&palisade, &fastapi] {
        let reply = http(service.addr, "GET", "/health/live", &[], None)?;
        if !reply.has_header("x-content-type-options", "nosniff") {
            return Err(format!(
                "{}: /health/live carries no X-Content-Type-Options: nosniff",
                service.name
            ));
        }
    }
    eprintln!(
        "xtask: load bench: palisade-server on {}, bare axum on {}, FastAPI ({cores} uvicorn workers) on {}; \
         PALISADE_RATE_LIMIT={RATE_LIMIT} so the per-IP limit runs on every request but never answers 429",
        palisade.addr, bare.addr, fastapi.addr
    );

    let health = |service: &Service| throughput(service, "/health/live", None, seconds);
    let bare_health = health(&bare)?;
    let palisade_health = health(&palisade)?;
    let fastapi_health = health(&fastapi)?;

    let count = accounts_needed(palisade_health.requests_per_second, seconds);
    eprintln!(
        "xtask: registering {count} accounts (each verified subject may make 600 requests a minute)"
    );
    let registering = Instant::now();
    let accounts = create_accounts(palisade.addr, count)?;
    eprintln!(
        "xtask: {count} accounts registered and logged in ({:.0?})",
        registering.elapsed()
    );
    let scratch = Scratch(vec![out.join("tokens.txt"), out.join("credentials.txt")]);
    write_lines(
        &scratch.0[0],
        accounts.iter().map(|a| a.access_token.clone()),
    )?;
    write_lines(
        &scratch.0[1],
        accounts
            .iter()
            .map(|a| format!("{} {}", a.username, a.password)),
    )?;
    let me_script = scripts.join("me.lua");
    let me = |service: &Service| {
        throughput(
            service,
            "/me",
            Some((me_script.as_path(), scratch.0[0].as_path())),
            seconds,
        )
    };
    let bare_me = me(&bare)?;
    let palisade_me = me(&palisade).map_err(|error| {
        format!(
            "{error} (palisade-server limits each subject to 600 requests a minute, with no \
             setting to raise it; the run spread /me over {count} accounts)"
        )
    })?;
    let fastapi_me = me(&fastapi)?;

    let probe = scripts.join("probe.lua");
    let idle = latency_probe(&palisade, &probe, seconds, "idle")?;
    let flood_output = out.join("login-flood.txt");
    let flood_file = std::fs::File::create(&flood_output)
        .map_err(|error| format!("creating {}: {error}", flood_output.display()))?;
    let mut flood_command = Command::new("wrk");
    flood_command
        .args(["-t1", &format!("-c{FLOOD_CONNECTIONS}")])
        .arg(format!("-d{}s", seconds + FLOOD_LEAD_SECONDS + 2))
        .arg("-s")
        .arg(scripts.join("login.lua"))
        .arg(palisade.url("/auth/login"))
        .arg("--")
        .arg(&scratch.0[1])
        .stdout(flood_file)
        .stderr(Stdio::inherit());
    eprintln!("xtask: == login flood: {FLOOD_CONNECTIONS} clients on POST /auth/login");
    let mut flood = Guard::spawn("wrk login flood", flood_command)?;
    std::thread::sleep(Duration::from_secs(FLOOD_LEAD_SECONDS));
    if let Some(status) = flood.try_wait()? {
        return Err(format!(
            "the login flood (wrk) exited early ({status}); see {}",
            flood_output.display()
        ));
    }
    let flooded = latency_probe(&palisade, &probe, seconds, "during the login flood")?;
    let status = flood.wait()?;
    let flood_text = std::fs::read_to_string(&flood_output)
        .map_err(|error| format!("reading {}: {error}", flood_output.display()))?;
    if !status.success() {
        return Err(format!(
            "the login flood (wrk) failed ({status}): {flood_text}"
        ));
    }
    let flood_stats = parse_wrk(&flood_text)?;
    drop(flood);

    for service in [palisade, bare, fastapi] {
        service.stop();
    }
    drop(scratch);

    let report = Report {
        seconds,
        cores,
        load_before,
        load_after: load_average(),
        accounts: count,
        bare_health,
        palisade_health,
        fastapi_health,
        bare_me,
        palisade_me,
        fastapi_me,
        idle,
        flooded,
        flood: flood_stats,
    };
    let markdown = report.markdown();
    for line in markdown.lines() {
        eprintln!("xtask: {line}");
    }
    let path = out.join("load.md");
    std::fs::write(&path, &markdown)
        .map_err(|error| format!("writing {}: {error}", path.display()))?;
    eprintln!(
        "xtask: load bench written to {} ({:.0?})",
        path.display(),
        started.elapsed()
    );
    Ok(())
}

/// Installs wrk with apt-get when it is missing (as `ensure_installed` does
/// for cargo tools).
fn ensure_wrk() -> Result {
    match Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        // wrk prints its version and usage and exits 1: it is installed.
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let installed = run(
                "install wrk (apt-get)",
                Command::new("apt-get").args(["install", "-y", "wrk"]),
            );
            if installed.is_ok() {
                return Ok(());
            }
            run("apt-get update", Command::new("apt-get").arg("update"))?;
            run(
                "install wrk (apt-get)",
                Command::new("apt-get").args(["install", "-y", "wrk"]),
            )
        }
        Err(error) => Err(format!("wrk: {error}")),
    }
}

/// Clears every inherited `PALISADE_*` variable and `RUST_LOG`, so a
/// developer's shell (a Redis URL, a production profile, a debug filter)
/// does not change what is measured.
fn palisade_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PALISADE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
}

/// The target directory cargo builds into (`CARGO_TARGET_DIR` included).
fn target_dir() -> Result<PathBuf> {
    let output = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cargo metadata: {error}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| format!("cargo metadata: {error}"))?;
    json["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata: no target_directory".to_owned())
}

fn free_port() -> Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("finding a free port: {error}"))
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0_u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut buffer))
        .map_err(|error| format!("/dev/urandom: {error}"))?;
    Ok(buffer.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    }))
}

/// The 1-minute load average now (the machine's other work, for the report).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> Result {
    let text = lines.fold(String::new(), |mut text, line| {
        text.push_str(&line);
        text.push('\n');
        text
    });
    std::fs::write(path, text).map_err(|error| format!("writing {}: {error}", path.display()))
}

/// Files holding the run's throwaway tokens and passwords, removed at the end.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A process this run started: stopped when dropped (SIGTERM, so uvicorn
/// stops its workers and the server drains; SIGKILL after 10 s).
struct Guard {
    name: &'static str,
    child: Child,
}

impl Guard {
    fn spawn(name: &'static str, mut command: Command) -> Result<Guard> {
        let child = command
            .spawn()
            .map_err(|error| format!("{name}: could not start {command:?}: {error}"))?;
        Ok(Guard { name, child })
    }

    fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child
            .try_wait()
            .map_err(|error| format!("{}: {error}", self.name))
    }

    fn wait(&mut self) -> Result<std::process::ExitStatus> {
        self.child
            .wait()
            .map_err(|error| format!("{}: {error}", self.name))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break,
            }
        }
        eprintln!("xtask: {} did not stop on SIGTERM: killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service under test, listening on `addr`, its output in a log file.
struct Service {
    name: &'static str,
    addr: SocketAddr,
    log: PathBuf,
    process: Guard,
}

impl Service {
    /// Starts `command` with `PALISADE_ADDR` set to a free port.
    fn start(name: &'static str, mut command: Command, out: &Path) -> Result<Service> {
        let addr = free_port()?;
        command.env("PALISADE_ADDR", addr.to_string());
        Service::start_at(name, command, addr, out)
    }

    /// Starts `command`, which listens on `addr`.
    fn start_at(
        name: &'static str,
        mut command: Command,
        addr: SocketAddr,
        out: &Path,
    ) -> Result<Service> {
        let log = out.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .map_err(|error| format!("creating {}: {error}", log.display()))?;
        let copy = file
            .try_clone()
            .map_err(|error| format!("{}: {error}", log.display()))?;
        command.stdin(Stdio::null()).stdout(copy).stderr(file);
        let process = Guard::spawn(name, command)?;
        Ok(Service {
            name,
            addr,
            log,
            process,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits for `GET /health/live` to answer 200 (60 s at most), failing
    /// at once if the process exits.
    fn wait_ready(&mut self) -> Result {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.try_wait()? {
                return Err(format!(
                    "{} exited before it was ready ({status}); its log: {}",
                    self.name,
                    self.log.display()
                ));
            }
            if http(self.addr, "GET", "/health/live", &[], None)
                .is_ok_and(|reply| reply.status == 200)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer 200 on /health/live within 60 s; its log: {}",
                    self.name,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the process now, failing loudly in the log if it had died.
    fn stop(mut self) {
        if let Ok(Some(status)) = self.process.try_wait() {
            eprintln!(
                "xtask: {} had exited during the run ({status}); its log: {}",
                self.name,
                self.log.display()
            );
        }
        drop(self);
    }
}

/// How many accounts keep `/me` under the per-subject limit for a warm-up
/// and a measured run at `requests_per_second` of `/health/live`, with a
/// 15% margin on top of the real one: `/me` is the same stack plus a token
/// check and a store read, so it is slower (each account costs a hash and
/// a verification on the server's one-worker pool on 2 cores, ~60 ms).
fn accounts_needed(requests_per_second: f64, seconds: u64) -> usize {
    let span = (WARM_UP_SECONDS + seconds) as f64;
    let budget = SUBJECT_BURST + SUBJECT_PER_SECOND * span;
    let needed = (requests_per_second * span * 1.15 / budget).ceil();
    let needed = if needed.is_finite() && needed > 0.0 {
        needed.min(1e6) as usize
    } else {
        MIN_ACCOUNTS
    };
    needed.clamp(MIN_ACCOUNTS, MAX_ACCOUNTS)
}

struct Account {
    username: String,
    password: String,
    access_token: String,
}

/// Registers `count` accounts and logs each in once. Each login comes from
/// its own `X-Forwarded-For` address (the server trusts loopback as a proxy
/// for this run), since login allows 5 a minute per client address.
fn create_accounts(addr: SocketAddr, count: usize) -> Result<Vec<Account>> {
    let run = random_hex(4)?;
    let results: Vec<Result<Vec<(usize, Account)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..ACCOUNT_WORKERS)
            .map(|worker| {
                let run = run.as_str();
                scope.spawn(move || {
                    (worker..count)
                        .step_by(ACCOUNT_WORKERS)
                        .map(|index| create_account(addr, run, index).map(|a| (index, a)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|_| Err("an account worker panicked".to_owned()))
            })
            .collect()
    });
    let mut accounts = Vec::with_capacity(count);
    for result in results {
        accounts.extend(result?);
    }
    accounts.sort_by_key(|(index, _)| *index);
    Ok(accounts.into_iter().map(|(_, account)| account).collect())
}

fn create_account(addr: SocketAddr, run: &str, index: usize) -> Result<Account> {
    let username = format!("bench-{run}-{index}");
    let password = format!("{} load bench", random_hex(12)?);
    let credentials = serde_json::json!({ "username": username, "password": password }).to_string();
    let registered = http(addr, "POST", "/auth/register", &[], Some(&credentials))?;
    if registered.status != 201 {
        return Err(format!(
            "POST /auth/register answered {} (expected 201): {}",
            registered.status, registered.body
        ));
    }
    let forwarded = format!("10.99.{}.{}", (index / 256) % 256, index % 256);
    let login = http(
        addr,
        "POST",
        "/auth/login",
        &[("X-Forwarded-For", &forwarded)],
        Some(&credentials),
    )?;
    if login.status != 200 {
        return Err(format!(
            "POST /auth/login answered {} (expected 200): {}",
            login.status, login.body
        ));
    }
    let json: serde_json::Value = serde_json::from_str(&login.body)
        .map_err(|error| format!("POST /auth/login: not JSON: {error}"))?;
    let access_token = json["access_token"]
        .as_str()
        .ok_or("POST /auth/login: no access_token")?
        .to_owned();
    Ok(Account {
        username,
        password,
        access_token,
    })
}

/// One HTTP/1.1 answer.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn has_header(&self, name: &str, value: &str) -> bool {
        self.head.lines().skip(1).any(|line| {
            line.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case(name) && v.trim().eq_ignore_ascii_case(value)
            })
        })
    }
}

/// A one-shot HTTP/1.1 request (`Connection: close`) with an optional JSON
/// body: enough for the set-up calls, without an HTTP client dependency.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> Result<Reply> {
    let what = format!("{method} {path} on {addr}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|error| format!("{what}: {error}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|error| format!("{what}: {error}"))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    if let Some(body) = json {
        let _ = write!(
            request,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    request.push_str(json.unwrap_or_default());
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("{what}: {error}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|error| format!("{what}: {error}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{what}: no complete response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{what}: no status line"))?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body).ok_or_else(|| format!("{what}: bad chunked body"))?
    } else {
        body.to_owned()
    };
    Ok(Reply {
        status,
        head: head.to_owned(),
        body,
    })
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// What one wrk run measured.
#[derive(Debug, Default, Clone, PartialEq)]
struct WrkStats {
    requests: u64,
    requests_per_second: f64,
    /// wrk's "Non-2xx or 3xx responses" (it counts statuses above 399).
    non_2xx: u64,
    socket_errors: Option<String>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// The login flood's `login statuses: 200=… 429=…` line.
    statuses: Option<String>,
}

/// Reads wrk's report (with or without `--latency`).
fn parse_wrk(text: &str) -> Result<WrkStats> {
    let mut stats = WrkStats::default();
    let mut seen_rate = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            stats.requests_per_second = rate
                .trim()
                .parse()
                .map_err(|_| format!("wrk: bad rate line {line:?}"))?;
            seen_rate = true;
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            stats.non_2xx = count
                .trim()
                .parse()
                .map_err(|_| format!("wrk: bad line {line:?}"))?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            stats.socket_errors = Some(errors.trim().to_owned());
        } else if let Some(p50) = line.strip_prefix("50%") {
            stats.p50_ms = parse_wrk_duration_ms(p50.trim());
        } else if let Some(p99) = line.strip_prefix("99%") {
            stats.p99_ms = parse_wrk_duration_ms(p99.trim());
        } else if let Some(statuses) = line.strip_prefix("login statuses:") {
            stats.statuses = Some(statuses.trim().to_owned());
        } else if line.contains(" requests in ") {
            stats.requests = line
                .split_whitespace()
                .next()
                .and_then(|count| count.parse().ok())
                .ok_or_else(|| format!("wrk: bad line {line:?}"))?;
        }
    }
    if !seen_rate {
        return Err(format!("wrk: no Requests/sec line in its output:\n{text}"));
    }
    Ok(stats)
}

/// `250.00us`, `1.25ms`, `2.00s`, `1.00m` in milliseconds.
fn parse_wrk_duration_ms(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(number) = text.strip_suffix("us") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix("ms") {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1_000.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000.0)
    } else if let Some(number) = text.strip_suffix('h') {
        (number, 3_600_000.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|value| value * scale)
}

/// Runs wrk with `args`, failing when it fails, gets no answer, or gets a
/// non-2xx answer where 200 is expected.
fn wrk(label: &str, args: &[String]) -> Result<WrkStats> {
    let output = Command::new("wrk")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("{label}: could not start wrk: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("{label}: wrk failed ({}):\n{text}", output.status));
    }
    let stats = parse_wrk(&text).map_err(|error| format!("{label}: {error}"))?;
    if stats.requests == 0 {
        return Err(format!("{label}: no request completed:\n{text}"));
    }
    if stats.non_2xx > 0 {
        return Err(format!(
            "{label}: {} of {} answers were not 2xx (every one should be 200):\n{text}",
            stats.non_2xx, stats.requests
        ));
    }
    Ok(stats)
}

/// A warm-up, then a measured closed-loop run of `path` (with a script and
/// its one argument file, if given).
fn throughput(
    service: &Service,
    path: &str,
    script: Option<(&Path, &Path)>,
    seconds: u64,
) -> Result<WrkStats> {
    let label = format!("{} GET {path}", service.name);
    let args = |seconds: u64| {
        let mut args = vec![
            format!("-t{THREADS}"),
            format!("-c{CONNECTIONS}"),
            format!("-d{seconds}s"),
            "--latency".to_owned(),
        ];
        if let Some((script, _)) = script {
            args.extend(["-s".to_owned(), script.display().to_string()]);
        }
        args.push(service.url(path));
        if let Some((_, argument)) = script {
            args.extend(["--".to_owned(), argument.display().to_string()]);
        }
        args
    };
    eprintln!("xtask: == {label}: {WARM_UP_SECONDS}s warm-up, {seconds}s measured");
    wrk(&format!("{label} (warm-up)"), &args(WARM_UP_SECONDS))?;
    let stats = wrk(&label, &args(seconds))?;
    eprintln!(
        "xtask: {label}: {:.0} requests/s, p99 {}",
        stats.requests_per_second,
        format_ms(stats.p99_ms)
    );
    Ok(stats)
}

/// The paced `/health/live` probe (see `probe.lua`), with `--latency`.
fn latency_probe(service: &Service, script: &Path, seconds: u64, when: &str) -> Result<WrkStats> {
    let label = format!("{} GET /health/live p99 {when}", service.name);
    eprintln!("xtask: == {label}");
    let stats = wrk(
        &label,
        &[
            "-t1".to_owned(),
            format!("-c{PROBE_CONNECTIONS}"),
            format!("-d{seconds}s"),
            "--latency".to_owned(),
            "-s".to_owned(),
            script.display().to_string(),
            service.url("/health/live"),
        ],
    )?;
    eprintln!(
        "xtask: {label}: p50 {}, p99 {} ({:.0} requests/s)",
        format_ms(stats.p50_ms),
        format_ms(stats.p99_ms),
        stats.requests_per_second
    );
    Ok(stats)
}

fn format_ms(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms < 1.0 => format!("{:.0} µs", ms * 1000.0),
        Some(ms) => format!("{ms:.2} ms"),
        None => "n/a".to_owned(),
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// Everything one run measured.
struct Report {
    seconds: u64,
    cores: usize,
    load_before: String,
    load_after: String,
    accounts: usize,
    bare_health: WrkStats,
    palisade_health: WrkStats,
    fastapi_health: WrkStats,
    bare_me: WrkStats,
    palisade_me: WrkStats,
    fastapi_me: WrkStats,
    idle: WrkStats,
    flooded: WrkStats,
    flood: WrkStats,
}

impl Report {
    fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# palisade-server load benchmark\n");
        let _ = writeln!(
            md,
            "wrk -t{THREADS} -c{CONNECTIONS}, {WARM_UP_SECONDS}s warm-up then {}s measured per row; \
             {} cores; load average {} before, {} after. palisade-server: release build, \
             development profile, memory stores, `PALISADE_RATE_LIMIT={RATE_LIMIT}` (the per-IP \
             limit runs on every request but never refuses one, so this measures the stack, not \
             429s); `/me` spread over {} accounts (each subject has 600 requests a minute). \
             FastAPI: uvicorn, {} workers, slowapi (limit far above the load), security-header \
             middleware, PyJWT HS256.\n",
            self.seconds, self.cores, self.load_before, self.load_after, self.accounts, self.cores,
        );
        let _ = writeln!(
            md,
            "| measure | palisade | against | ratio | goal | result |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
        let rps = |stats: &WrkStats| format!("{:.0} req/s", stats.requests_per_second);
        let share = |ours: &WrkStats, theirs: &WrkStats| {
            ours.requests_per_second / theirs.requests_per_second
        };
        let health_share = share(&self.palisade_health, &self.bare_health);
        let _ = writeln!(
            md,
            "| GET /health/live vs bare axum | {} | {} | {:.0}% | ≥ {:.0}% | {} |",
            rps(&self.palisade_health),
            rps(&self.bare_health),
            health_share * 100.0,
            GOAL_HEALTH_VS_BARE * 100.0,
            verdict(health_share >= GOAL_HEALTH_VS_BARE)
        );
        let me_share = share(&self.palisade_me, &self.bare_me);
        let _ = writeln!(
            md,
            "| GET /me (Bearer) vs bare axum hello | {} | {} | {:.0}% | ≥ {:.0}% | {} |",
            rps(&self.palisade_me),
            rps(&self.bare_me),
            me_share * 100.0,
            GOAL_ME_VS_BARE * 100.0,
            verdict(me_share >= GOAL_ME_VS_BARE)
        );
        for (route, ours, theirs) in [
            (
                "GET /health/live",
                &self.palisade_health,
                &self.fastapi_health,
            ),
            ("GET /me (Bearer)", &self.palisade_me, &self.fastapi_me),
        ] {
            let times = share(ours, theirs);
            let _ = writeln!(
                md,
                "| {route} vs FastAPI | {} | {} | {times:.1}× | ≥ {GOAL_VS_FASTAPI:.0}× | {} |",
                rps(ours),
                rps(theirs),
                verdict(times >= GOAL_VS_FASTAPI)
            );
        }
        let flood_p99 = self.flooded.p99_ms.unwrap_or(f64::INFINITY);
        let idle_p99 = self.idle.p99_ms.unwrap_or(f64::INFINITY);
        let _ = writeln!(
            md,
            "| /health/live p99 during login flood | {} | — | — | < {GOAL_FLOOD_P99_MS:.0} ms | {} |",
            format_ms(self.flooded.p99_ms),
            verdict(flood_p99 < GOAL_FLOOD_P99_MS)
        );
        let growth = flood_p99 / idle_p99;
        let _ = writeln!(
            md,
            "| /health/live p99 flood vs idle | {} | {} | {growth:.1}× | ≤ {GOAL_FLOOD_VS_IDLE:.0}× | {} |",
            format_ms(self.flooded.p99_ms),
            format_ms(self.idle.p99_ms),
            verdict(growth <= GOAL_FLOOD_VS_IDLE)
        );
        let _ = writeln!(md, "\n## Runs\n");
        let _ = writeln!(
            md,
            "| run | req/s | requests | p50 | p99 | non-2xx | socket errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---|");
        for (name, stats) in [
            ("bare axum GET /health/live", &self.bare_health),
            ("palisade-server GET /health/live", &self.palisade_health),
            ("FastAPI GET /health/live", &self.fastapi_health),
            ("bare axum GET /me", &self.bare_me),
            ("palisade-server GET /me", &self.palisade_me),
            ("FastAPI GET /me", &self.fastapi_me),
            ("palisade-server /health/live probe, idle", &self.idle),
            (
                "palisade-server /health/live probe, login flood",
                &self.flooded,
            ),
            ("login flood POST /auth/login", &self.flood),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {:.0} | {} | {} | {} | {} | {} |",
                stats.requests_per_second,
                stats.requests,
                format_ms(stats.p50_ms),
                format_ms(stats.p99_ms),
                stats.non_2xx,
                stats.socket_errors.as_deref().unwrap_or("none")
            );
        }
        let _ = writeln!(
            md,
            "\nThe probe is wrk -t1 -c{PROBE_CONNECTIONS}, each connection pausing 10 ms between \
             requests. The flood is wrk -t1 -c{FLOOD_CONNECTIONS} posting valid credentials of \
             the accounts above from 4096 `X-Forwarded-For` addresses (loopback is a trusted \
             proxy for this run), so the 5/minute login limit per address lets about 340 \
             logins a second through to the hashing pool, more than it verifies: the pool is \
             saturated for the whole probe, and the rest are refused (429 from the limit, 503 \
             from a full hashing queue). Flood answers by status: {}.",
            self.flood.statuses.as_deref().unwrap_or("not counted")
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_REPORT: &str = "Running 10s test @ http://127.0.0.1:8080/health/live
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.05ms  30.12ms   90.12%
    Req/Sec    15.42k     1.20k   18.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    2.50ms
     90%    3.10ms
     99%    5.20ms
  306912 requests in 10.00s, 40.12MB read
  Socket errors: connect 0, read 12, write 0, timeout 0
  Non-2xx or 3xx responses: 3
Requests/sec:  30690.12
Transfer/sec:      4.01MB
login statuses: 200=250 429=9000 503=1200
";

    #[test]
    fn wrk_report_yields_rate_percentiles_errors_and_statuses() {
        let stats = parse_wrk(WRK_REPORT).expect("a complete report");
        assert_eq!(stats.requests, 306_912);
        assert!((stats.requests_per_second - 30_690.12).abs() < 1e-6);
        assert_eq!(stats.non_2xx, 3);
        assert_eq!(
            stats.socket_errors.as_deref(),
            Some("connect 0, read 12, write 0, timeout 0")
        );
        assert_eq!(stats.p50_ms, Some(0.812));
        assert_eq!(stats.p99_ms, Some(5.2));
        assert_eq!(stats.statuses.as_deref(), Some("200=250 429=9000 503=1200"));
    }

    #[test]
    fn a_report_without_a_rate_is_an_error_not_zero() {
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }

    #[test]
    fn wrk_durations_in_every_unit() {
        assert_eq!(parse_wrk_duration_ms("250.00us"), Some(0.25));
        assert_eq!(parse_wrk_duration_ms("1.50ms"), Some(1.5));
        assert_eq!(parse_wrk_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_wrk_duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(parse_wrk_duration_ms("fast"), None);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n").as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(dechunk("zz\r\n"), None);
    }

    #[test]
    fn accounts_cover_the_per_subject_budget() {
        // 12 s at 10 000 req/s, 720 requests an account, 15% margin.
        assert_eq!(accounts_needed(10_000.0, 10), 192);
        assert_eq!(accounts_needed(1.0, 10), MIN_ACCOUNTS);
        assert_eq!(accounts_needed(1e9, 10), MAX_ACCOUNTS);
        assert_eq!(accounts_needed(f64::NAN, 10), MIN_ACCOUNTS);
    }
}
