//! `cargo xtask bench load`: palisade-server under `wrk`, against a bare axum
//! hello and the seeds' FastAPI stack, all measured in the same run on the
//! same machine, reported as ratios against the goals of issue 17.
//!
//! The run: build the server and the `bare_axum` example (release), start
//! the services on free ports (bare axum twice: as a hello, and as the floor
//! for the same bytes, answering with palisade-server's `/health/live` body
//! and headers), measure `GET /health/live` on each,
//! register and log in enough accounts to get bearer tokens, measure an
//! authenticated `GET /me` on each (the same requests everywhere), then the
//! p99 of a paced `/health/live` probe idle and while 64 clients flood
//! `POST /auth/login`. Every process it starts is stopped on the way out,
//! on error too. A missed goal is reported, not an error (numbers vary on a
//! shared machine); a service that does not start or a non-2xx answer where
//! 200 is expected is.

mod http;
mod process;
mod report;
mod wrk;

use std::fmt::Write as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use self::http::http;
use self::process::{Guard, Service, free_port};
use self::report::Report;
use self::wrk::{latency_probe, parse_wrk, throughput};
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
/// Accounts whose tokens the `/me` runs spread over (`PALISADE_SUBJECT_RATE_LIMIT`
/// is [`RATE_LIMIT`] for the run, so the per-subject limit runs on every
/// request but never refuses one, whatever the rate).
const ACCOUNTS: usize = 16;
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
        // Login's own limit (5/minute per address by default) as high: every
        // attempt of the flood reaches the login throttle and the hashing
        // pool, the work the flood is meant to pile up...
        .env("PALISADE_LOGIN_RATE_LIMIT", RATE_LIMIT)
        .env("PALISADE_SUBJECT_RATE_LIMIT", RATE_LIMIT)
        // ...from many X-Forwarded-For addresses (see login.lua), which
        // come through wrk on loopback.
        .env("PALISADE_TRUSTED_PROXIES", "127.0.0.1")
        .env("PALISADE_JWT_ACCESS_SECRET", &access_secret)
        .env("PALISADE_JWT_REFRESH_SECRET", random_hex(32)?)
        .env("PALISADE_API_KEY_PEPPER", random_hex(32)?)
        .env("PALISADE_PRE_STOP_DELAY", "0s");
    let mut palisade = Service::start("palisade-server", palisade, &out)?;

    let mut bare = Command::new(release.join("examples").join("bare_axum"));
    palisade_env(&mut bare);
    let mut bare = Service::start("bare-axum", bare, &out)?;

    // The floor for the same bytes: bare axum answering with
    // palisade-server's `/health/live` body and headers, made once.
    let mut floor = Command::new(release.join("examples").join("bare_axum"));
    palisade_env(&mut floor);
    floor.env("BARE_AXUM_SECURITY_HEADERS", "1");
    let mut floor = Service::start("bare-axum-headers", floor, &out)?;

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

    for service in [&mut palisade, &mut bare, &mut floor, &mut fastapi] {
        service.wait_ready()?;
    }
    // The peer sends the same security headers (else it is not the seeds'
    // stack), the server really runs its header layer, and the floor
    // answers with them.
    for service in [&palisade, &floor, &fastapi] {
        let reply = http(service.addr, "GET", "/health/live", &[], None)?;
        if !reply.has_header("x-content-type-options", "nosniff") {
            return Err(format!(
                "{}: /health/live carries no X-Content-Type-Options: nosniff",
                service.name
            ));
        }
    }
    eprintln!(
        "xtask: load bench: palisade-server on {}, bare axum on {} (with palisade-server's headers on {}), \
         FastAPI ({cores} uvicorn workers) on {}; \
         PALISADE_RATE_LIMIT={RATE_LIMIT} so the per-IP limit runs on every request but never answers 429",
        palisade.addr, bare.addr, floor.addr, fastapi.addr
    );

    let health = |service: &Service| throughput(service, "/health/live", None, seconds);
    let bare_health = health(&bare)?;
    let floor_health = health(&floor)?;
    let palisade_health = health(&palisade)?;
    let fastapi_health = health(&fastapi)?;

    let count = ACCOUNTS;
    eprintln!("xtask: registering {count} accounts");
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

    for service in [palisade, bare, floor, fastapi] {
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
        floor_health,
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

/// Clears every inherited `PALISADE_*` and `BARE_AXUM_*` variable and `RUST_LOG`, so a
/// developer's shell (a Redis URL, a production profile, a debug filter)
/// does not change what is measured.
fn palisade_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("PALISADE_")
            || name_text.starts_with("BARE_AXUM_")
            || name == "RUST_LOG"
        {
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

struct Account {
    username: String,
    password: String,
    access_token: String,
}

/// Registers `count` accounts and logs each in once.
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
    let login = http(addr, "POST", "/auth/login", &[], Some(&credentials))?;
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
