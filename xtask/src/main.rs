//! `cargo xtask ci | audit | cluster | fuzz [TARGET] [--seconds N] | bench [load [--seconds N]]`
//!
//! Palisade's checks, as plain Rust: each subcommand is one function that
//! shells out with `std::process::Command` and stops at the first failure with
//! a message saying which step failed.

#![allow(clippy::print_stderr)] // a command-line tool: stderr is its interface

mod cluster;
mod load;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The folder cargo-deny 0.20 derives from the default advisory database URL.
const ADVISORY_DB_DIR: &str = "advisory-db-3157b0e258782691";
/// The cargo-deny whose database layout [`ADVISORY_DB_DIR`] is: a newer one
/// may derive another folder name and silently audit nothing offline.
const CARGO_DENY_VERSION: &str = "0.20.2";
/// cargo-hack, for the à-la-carte feature check.
const CARGO_HACK_VERSION: &str = "0.6.46";
/// Seconds each fuzz target runs in `ci`, and by default in `fuzz`...
const CI_FUZZ_SECONDS: u64 = 10;
/// ...and in `ci` once there are more than [`CI_FUZZ_SHORT_ABOVE`] targets,
/// so the smoke run stays a few minutes on a 2-core machine.
const CI_FUZZ_SECONDS_SHORT: u64 = 5;
const CI_FUZZ_SHORT_ABOVE: usize = 12;

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask ci | audit | cluster | fuzz [TARGET] [--seconds N] | \
                     bench [load [--seconds N]]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("audit") => audit(),
        Some("cluster") => cluster_tests(),
        Some("fuzz") => parse_fuzz_args(&args[1..])
            .and_then(|(target, seconds)| fuzz(target.as_deref(), seconds)),
        Some("bench") => match args.get(1).map(String::as_str) {
            None => bench(),
            Some("load") => parse_seconds(&args[2..], load::DEFAULT_SECONDS).and_then(load::load),
            Some(other) => Err(format!("unknown bench {other:?}: cargo xtask bench [load]")),
        },
        _ => Err(USAGE.to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(workspace_root());
    command
}

/// Runs `command`, failing with `step` in the message when it does not succeed.
fn run(step: &str, command: &mut Command) -> Result {
    eprintln!("xtask: == {step}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|error| format!("{step}: could not start {command:?}: {error}"))?;
    eprintln!("xtask: {step} took {:.0?}", started.elapsed());
    if status.success() {
        Ok(())
    } else {
        Err(format!("step `{step}` failed ({status})"))
    }
}

fn has_cargo_subcommand(name: &str) -> bool {
    cargo_subcommand_version(name).is_some()
}

/// What `cargo <name> --version` prints, if the subcommand is installed.
fn cargo_subcommand_version(name: &str) -> Option<String> {
    let output = cargo()
        .args([name, "--version"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Installs `krate` when `cargo <subcommand>` is missing or, with `version`,
/// when it is another version than the one the checks rely on.
fn ensure_installed(subcommand: &str, krate: &str, version: Option<&str>) -> Result {
    let installed = cargo_subcommand_version(subcommand);
    let fits = match (&installed, version) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(printed), Some(version)) => printed.split_whitespace().any(|word| word == version),
    };
    if fits {
        return Ok(());
    }
    let spec = match version {
        Some(version) => format!("{krate}@{version}"),
        None => krate.to_owned(),
    };
    run(
        &format!("install {spec}"),
        cargo().args(["install", "--locked", &spec]),
    )
}

/// What the venv under `target/py-venv` holds: PyJWT for the interop tests,
/// argon2-cffi for the passwords benchmark.
const PYTHON_PACKAGES: [&str; 2] = ["PyJWT==2.10.1", "argon2-cffi==25.1.0"];

/// The Python of a venv under `target/py-venv` with the interop and bench
/// peers ([`PYTHON_PACKAGES`]), created on first use from the machine's
/// `python3` (and topped up when the list changed).
fn python_venv() -> Result<PathBuf> {
    python_venv_with(&[])
}

/// [`python_venv`] with `extra` packages too (the load benchmark's FastAPI
/// stack, which the interop tests do not need). The venv records what it
/// holds, so a later call with fewer packages does not reinstall.
fn python_venv_with(extra: &[&str]) -> Result<PathBuf> {
    let venv = workspace_root().join("target").join("py-venv");
    let python = venv.join("bin").join("python");
    let ready = venv.join(".palisade-ready");
    let wanted: Vec<&str> = PYTHON_PACKAGES.iter().chain(extra).copied().collect();
    let recorded = std::fs::read_to_string(&ready).unwrap_or_default();
    let held: Vec<&str> = recorded.lines().collect();
    if !wanted.iter().all(|package| held.contains(package)) {
        if !python.exists() {
            run(
                "python venv",
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
            )?;
        }
        run(
            &format!("pip install {}", wanted.join(" ")),
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(&wanted),
        )?;
        let mut now_held = held.clone();
        now_held.extend(wanted.iter().filter(|package| !held.contains(package)));
        let text = now_held.iter().fold(String::new(), |mut text, package| {
            text.push_str(package);
            text.push('\n');
            text
        });
        std::fs::write(&ready, text)
            .map_err(|error| format!("writing {}: {error}", ready.display()))?;
    }
    Ok(python)
}

/// fmt, clippy, tests, doctests, docs, audit, fuzz smoke. Benches are compiled
/// by clippy `--all-targets`.
fn ci() -> Result {
    let started = Instant::now();
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    each_feature()?;
    // The interop tests check tokens against PyJWT in a venv of our own.
    let python = python_venv()?;
    if has_cargo_subcommand("nextest") {
        run(
            "tests (nextest)",
            cargo()
                .args([
                    "nextest",
                    "run",
                    "--workspace",
                    "--all-features",
                    "--no-fail-fast",
                    // Runs in the cluster pass below (they need a cluster).
                    "-E",
                    MAIN_TESTS,
                ])
                .env("PALISADE_PYTHON", &python),
        )?;
    } else {
        run(
            "tests",
            cargo()
                .args([
                    "test",
                    "--workspace",
                    "--all-features",
                    "--lib",
                    "--bins",
                    "--tests",
                ])
                .env("PALISADE_PYTHON", &python),
        )?;
    }
    cluster_tests()?;
    run(
        "doctests",
        cargo().args(["test", "--workspace", "--all-features", "--doc"]),
    )?;
    run(
        "docs",
        cargo()
            .args(["doc", "--workspace", "--all-features", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    audit()?;
    let seconds = if fuzz_targets()?.len() > CI_FUZZ_SHORT_ABOVE {
        CI_FUZZ_SECONDS_SHORT
    } else {
        CI_FUZZ_SECONDS
    };
    fuzz(None, seconds)?;
    eprintln!("xtask: ci passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Tests that run against a Redis Cluster as well as the single node: the
/// Redis store conformance suite of every core and the stores' behaviour
/// tests that read `PALISADE_TEST_REDIS_URL` (see tests/redis_conformance.rs);
/// and the cluster-only binaries: the failover drill, which starts a
/// cluster of its own (it kills a master), and the reference service's two
/// instances on the cluster (cluster_e2e).
const CLUSTER_TESTS: &str = "test(/_conformance::/) | binary(revocation_redis) \
     | binary(refresh_redis) | (package(palisade-ratelimit) & (binary(redis) | binary(login_redis))) \
     | (package(palisade-passwords) & binary(reset_redis)) \
     | (package(palisade-apikeys) & binary(redis_store)) \
     | binary(cluster_failover) | binary(cluster_e2e)";

/// The main test pass: everything but the cluster-only binaries (they run
/// in the cluster pass, [`CLUSTER_TESTS`]).
const MAIN_TESTS: &str = "not binary(cluster_failover) & not binary(cluster_e2e)";

/// The Redis tests a second time, on a private 3-master, 3-replica Redis
/// Cluster started here and stopped after (the same test bodies, with
/// `PALISADE_TEST_REDIS_URL=redis+cluster://…`). Under `CI=true` a cluster
/// that cannot start fails the step; elsewhere it is skipped with a word.
fn cluster_tests() -> Result {
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    if !cluster::available() {
        if in_ci {
            return Err("redis-server and redis-cli are needed for the cluster tests".to_owned());
        }
        eprintln!("xtask: no redis-server/redis-cli: cluster tests skipped");
        return Ok(());
    }
    let started = Instant::now();
    let cluster = cluster::start(&workspace_root().join("target"))?;
    eprintln!(
        "xtask: redis cluster up in {:.1?}: {}",
        started.elapsed(),
        cluster.url()
    );
    let mut command = cargo();
    if has_cargo_subcommand("nextest") {
        command.args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
            "-E",
            CLUSTER_TESTS,
        ]);
    } else {
        command.args([
            "test",
            "--workspace",
            "--all-features",
            "--tests",
            "_conformance::",
        ]);
    }
    command.env("PALISADE_TEST_REDIS_URL", cluster.url());
    let outcome = run("tests on a redis cluster", &mut command);
    drop(cluster);
    outcome
}

/// Every crate, one feature at a time and with none, without dev-dependencies:
/// `--workspace --all-features` unifies features and dev-dependencies across
/// crates and hides a crate that only compiles because a neighbour switched
/// a feature on — the way a user who picks one crate à la carte builds it.
fn each_feature() -> Result {
    ensure_installed("hack", "cargo-hack", Some(CARGO_HACK_VERSION))?;
    run(
        "each feature (cargo hack)",
        cargo().args([
            "hack",
            "check",
            "--workspace",
            "--each-feature",
            "--no-dev-deps",
        ]),
    )
}

/// `cargo deny --offline check` against the advisory snapshot in `../shared`.
///
/// cargo-deny reads its database from `<db-path>/advisory-db-3157b0e258782691`
/// and needs it to be a git repository with a commit (it reads HEAD's date), so
/// the snapshot is copied under `target/advisory-dbs` and committed there.
/// Without a snapshot (a user's own CI), the database is fetched online —
/// except under `CI=true` here, where there is no network to fetch it from.
fn audit() -> Result {
    ensure_installed("deny", "cargo-deny", Some(CARGO_DENY_VERSION))?;
    let root = workspace_root();
    let db = root.join("target/advisory-dbs").join(ADVISORY_DB_DIR);
    let configured = std::env::var_os("PALISADE_ADVISORY_DB").map(PathBuf::from);
    let snapshot = configured
        .clone()
        .unwrap_or_else(|| root.join("../shared/advisory-db"));
    if !snapshot.is_dir() {
        if configured.is_some() || std::env::var("CI").is_ok_and(|ci| ci == "true") {
            return Err(format!(
                "advisory database snapshot not found at {} (set PALISADE_ADVISORY_DB)",
                snapshot.display()
            ));
        }
        eprintln!(
            "xtask: no advisory snapshot at {}: cargo deny fetches the RustSec database online",
            snapshot.display()
        );
        // A copy committed by an earlier offline run has no remote to fetch from.
        if db.join(".palisade-snapshot").exists() {
            std::fs::remove_dir_all(&db)
                .map_err(|error| format!("removing {}: {error}", db.display()))?;
        }
        return run("cargo deny (online)", cargo().args(["deny", "check"]));
    }
    if db.exists() {
        std::fs::remove_dir_all(&db)
            .map_err(|error| format!("removing {}: {error}", db.display()))?;
    }
    copy_dir(&snapshot, &db)?;
    std::fs::write(
        db.join(".palisade-snapshot"),
        "copied by cargo xtask audit\n",
    )
    .map_err(|error| format!("marking {}: {error}", db.display()))?;
    let git = |args: &[&str]| {
        let mut command = Command::new("git");
        command
            .current_dir(&db)
            .args([
                "-c",
                "user.name=palisade",
                "-c",
                "user.email=palisade@localhost",
            ])
            .args(args)
            .stdout(std::process::Stdio::null());
        command
    };
    run("advisory db: git init", &mut git(&["init", "--quiet"]))?;
    run("advisory db: git add", &mut git(&["add", "-A"]))?;
    run(
        "advisory db: git commit",
        &mut git(&[
            "commit",
            "--quiet",
            "--no-gpg-sign",
            "-m",
            "advisory-db snapshot",
        ]),
    )?;
    // `--offline` keeps cargo-deny from fetching an advisory database; it
    // still reads every dependency's manifest (for every target platform),
    // so they must be in the local registry cache first.
    run("cargo fetch", cargo().args(["fetch", "--locked"]))?;
    run("cargo deny", cargo().args(["deny", "--offline", "check"]))
}

fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|error| format!("creating {}: {error}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|error| format!("reading {}: {error}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|error| format!("reading {}: {error}", from.display()))?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let kind = entry.file_type().map_err(|error| error.to_string())?;
        let target = to.join(&name);
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .map_err(|error| format!("copying {}: {error}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn parse_fuzz_args(args: &[String]) -> Result<(Option<String>, u64)> {
    let mut target = None;
    let mut seconds = CI_FUZZ_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            seconds = args
                .next()
                .and_then(|value| value.parse().ok())
                .ok_or("--seconds takes a whole number")?;
        } else if target.is_none() {
            target = Some(arg.clone());
        } else {
            return Err(format!("unexpected argument {arg:?}"));
        }
    }
    Ok((target, seconds))
}

/// `[--seconds N]`, and nothing else.
fn parse_seconds(args: &[String], default: u64) -> Result<u64> {
    match args {
        [] => Ok(default),
        [flag, value] if flag == "--seconds" => value
            .parse()
            .ok()
            .filter(|seconds| *seconds > 0)
            .ok_or_else(|| "--seconds takes a whole number above 0".to_owned()),
        _ => Err(format!(
            "unexpected arguments {args:?}: expected [--seconds N]"
        )),
    }
}

fn fuzz_targets() -> Result<Vec<String>> {
    let dir = workspace_root().join("fuzz/fuzz_targets");
    let mut targets: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|error| format!("reading {}: {error}", dir.display()))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    targets.sort();
    Ok(targets)
}

/// Builds every fuzz target once, then runs each (or just `target`) for
/// `seconds` on stable (`--sanitizer none`), starting from its committed seeds.
fn fuzz(target: Option<&str>, seconds: u64) -> Result {
    ensure_installed("fuzz", "cargo-fuzz", None)?;
    let targets = match target {
        Some(target) => vec![target.to_owned()],
        None => fuzz_targets()?,
    };
    run(
        "fuzz build",
        cargo().args(["fuzz", "build", "--sanitizer", "none"]),
    )?;
    let root = workspace_root();
    for target in targets {
        // New inputs go to a scratch corpus under target/, never into the
        // committed seeds.
        let corpus = root.join("target/fuzz-corpus").join(&target);
        std::fs::create_dir_all(&corpus)
            .map_err(|error| format!("creating {}: {error}", corpus.display()))?;
        let seeds = root.join("fuzz/seeds").join(&target);
        let mut command = cargo();
        command.args(["fuzz", "run", "--sanitizer", "none", &target]);
        command.arg(&corpus);
        if seeds.is_dir() {
            command.arg(&seeds);
        }
        command.args(["--", &format!("-max_total_time={seconds}")]);
        run(&format!("fuzz {target} ({seconds}s)"), &mut command)?;
    }
    Ok(())
}

/// Runs the criterion benches, then prints, for every benchmark group that
/// measured both a `palisade` and a `peer` function in this run, the ratio of
/// their mean times (below 1 means Palisade is faster). Peers outside Rust
/// (argon2-cffi, redis-benchmark) are compared by the bench binaries
/// themselves, on lines of their own output; they find the venv's Python in
/// `PALISADE_PYTHON`. So does the Redis Cluster bench (palisade-ratelimit's
/// `benches/cluster.rs`: decisions/s at 50 tasks on a private cluster it
/// starts vs the single node, as a ratio). Then the load benchmark of
/// palisade-server ([`load::load`], alone as `cargo xtask bench load`).
fn bench() -> Result {
    let started = std::time::SystemTime::now();
    let mut command = cargo();
    command.args(["bench", "--workspace", "--all-features"]);
    // Without the venv the benches still run; their Python peers say "skipped".
    match python_venv() {
        Ok(python) => {
            command.env("PALISADE_PYTHON", python);
        }
        Err(error) => eprintln!("xtask: bench without the Python peers: {error}"),
    }
    run("bench", &mut command)?;
    let criterion = workspace_root().join("target").join("criterion");
    let mut groups: Vec<PathBuf> = std::fs::read_dir(&criterion)
        .map_err(|error| format!("bench: no results in {}: {error}", criterion.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    groups.sort();
    eprintln!(
        "xtask: {:<40} {:>14} {:>14} {:>8}",
        "group", "palisade", "peer", "ratio"
    );
    for group in groups {
        let (Some(palisade), Some(peer)) = (
            mean_since(&group.join("palisade"), started),
            mean_since(&group.join("peer"), started),
        ) else {
            continue;
        };
        let name = group.file_name().unwrap_or_default().to_string_lossy();
        eprintln!(
            "xtask: {name:<40} {:>14} {:>14} {:>7.2}x",
            format_nanos(palisade),
            format_nanos(peer),
            palisade / peer
        );
    }
    load::load(load::DEFAULT_SECONDS)
}

/// The mean (ns) criterion estimated for one function, if measured in this run.
fn mean_since(function: &Path, since: std::time::SystemTime) -> Option<f64> {
    let path = function.join("new").join("estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|metadata| metadata.modified())
        .is_ok_and(|modified| modified >= since);
    if !fresh {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn format_nanos(nanos: f64) -> String {
    if nanos >= 1_000_000.0 {
        format!("{:.2} ms", nanos / 1_000_000.0)
    } else if nanos >= 1_000.0 {
        format!("{:.2} µs", nanos / 1_000.0)
    } else {
        format!("{nanos:.1} ns")
    }
}
