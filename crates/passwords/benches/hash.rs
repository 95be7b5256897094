//! Palisade's password hashing against its peers, in one run (`cargo xtask
//! bench` prints the criterion ratios; this binary prints the argon2-cffi
//! comparison itself):
//!
//! - `argon2id_owasp_hash`: one argon2id hash at OWASP parameters (m = 19456
//!   KiB, t = 2, p = 1, 16-byte random salt, 32-byte tag, PHC string) through
//!   `PasswordHasher::hash`; then the same hash timed the same way (a plain
//!   loop, one hash at a time, single-threaded) in Palisade and in
//!   argon2-cffi's `PasswordHasher` (C) in a Python subprocess, printed as a
//!   ratio. The Python is `$PALISADE_PYTHON` (`cargo xtask bench` sets it to
//!   its venv with argon2-cffi pinned), else `python3`; without argon2-cffi
//!   the line says "skipped (reason)".
//! - `bcrypt_cost12_verify`: verify of a `$2b$12$` hash (made by Python
//!   bcrypt 4.0.1), Palisade against the `bcrypt` crate's `verify`.
//! - `blocklist_lookup`: a policy with only the blocklist on (the lookup
//!   plus NFKC and lowercasing, through `PasswordPolicy::check`), a listed
//!   and an unlisted password of the same length.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on stdout

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade_passwords::{PasswordHasher, PasswordPolicy, PolicyContext};
use secrecy::SecretString;

const PASSWORD: &str = "correct horse battery staple";
/// `bcrypt.hashpw(PASSWORD, bcrypt.gensalt(12))`, Python bcrypt 4.0.1.
const BCRYPT_12: &str = "$2b$12$p/3Vs8zJpX5xsYZ9d8oZV.UTMmCmEht5xEqWpD0uW7TlNlkj8/ecW";
/// Hashes per side in the argon2-cffi comparison (about 30 ms each).
const COMPARISON_HASHES: u32 = 60;

fn argon2id_hash(c: &mut Criterion) {
    let hasher = PasswordHasher::new();
    let password = SecretString::from(PASSWORD);
    let mut group = c.benchmark_group("argon2id_owasp_hash");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("palisade", |b| {
        b.iter(|| black_box(hasher.hash(&password).unwrap()));
    });
    group.finish();
}

fn bcrypt_verify(c: &mut Criterion) {
    let hasher = PasswordHasher::new();
    let password = SecretString::from(PASSWORD);
    assert!(bcrypt::verify(PASSWORD, BCRYPT_12).unwrap());
    assert!(hasher.verify(&password, BCRYPT_12).unwrap().needs_rehash);
    let mut group = c.benchmark_group("bcrypt_cost12_verify");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("palisade", |b| {
        b.iter(|| black_box(hasher.verify(&password, BCRYPT_12).unwrap()));
    });
    group.bench_function("peer", |b| {
        b.iter(|| black_box(bcrypt::verify(PASSWORD, BCRYPT_12).unwrap()));
    });
    group.finish();
}

fn blocklist_lookup(c: &mut Criterion) {
    let policy = PasswordPolicy::builder()
        .min_length(1)
        .context_words(false)
        .history(0)
        .build()
        .unwrap();
    let context = PolicyContext::new();
    let listed = SecretString::from("Password123");
    // The same length as `listed` (NFKC and lowercasing cost per character).
    let unlisted = SecretString::from("Qzvpmlkt817");
    assert!(policy.check(&listed, &context).is_err());
    assert!(policy.check(&unlisted, &context).is_ok());
    let mut group = c.benchmark_group("blocklist_lookup");
    group.bench_function("hit", |b| {
        b.iter(|| black_box(policy.check(black_box(&listed), &context).is_err()));
    });
    group.bench_function("miss", |b| {
        b.iter(|| black_box(policy.check(black_box(&unlisted), &context).is_ok()));
    });
    group.finish();
}

/// argon2-cffi's `PasswordHasher` with Palisade's parameters: a fresh
/// 16-byte salt per hash, a 32-byte tag, the encoded (PHC) string; 3 warm-up
/// hashes, then `n` timed one after another. Prints the version and the mean
/// seconds per hash.
const PEER_SCRIPT: &str = r#"
import sys, time
from importlib.metadata import version
from argon2 import PasswordHasher, Type
hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1,
                        hash_len=32, salt_len=16, type=Type.ID)
password, n = sys.argv[1], int(sys.argv[2])
for _ in range(3):
    hasher.hash(password)
started = time.perf_counter()
for _ in range(n):
    hasher.hash(password)
print(version("argon2-cffi"), (time.perf_counter() - started) / n)
"#;

/// Mean seconds per argon2-cffi hash, with its version, or why not.
fn argon2_cffi_mean() -> Result<(String, f64), String> {
    let python = std::env::var("PALISADE_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .args(["-c", PEER_SCRIPT, PASSWORD, &COMPARISON_HASHES.to_string()])
        .output()
        .map_err(|error| format!("cannot run {python}: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no output");
        return Err(format!("{python}: {last}"));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut fields = stdout.split_whitespace();
    let version = fields.next().unwrap_or_default().to_owned();
    let mean = fields
        .next()
        .and_then(|mean| mean.parse::<f64>().ok())
        .ok_or_else(|| format!("{python}: unexpected output {stdout:?}"))?;
    Ok((version, mean))
}

/// Mean seconds per Palisade hash, timed like the Python side.
fn palisade_mean(hasher: &PasswordHasher, password: &SecretString) -> f64 {
    for _ in 0..3 {
        black_box(hasher.hash(password).unwrap());
    }
    let started = Instant::now();
    for _ in 0..COMPARISON_HASHES {
        black_box(hasher.hash(password).unwrap());
    }
    started.elapsed().as_secs_f64() / f64::from(COMPARISON_HASHES)
}

/// Palisade, then argon2-cffi, then Palisade again (the mean of both
/// Palisade runs, so a change of machine load during the run is shared).
fn argon2_cffi_comparison(_: &mut Criterion) {
    let hasher = PasswordHasher::new();
    let password = SecretString::from(PASSWORD);
    let before = palisade_mean(&hasher, &password);
    let peer = argon2_cffi_mean();
    let after = palisade_mean(&hasher, &password);
    let palisade = (before + after) / 2.0;
    match peer {
        Ok((version, peer)) => println!(
            "argon2id hash at OWASP parameters (m=19456 KiB, t=2, p=1, one at a time, {COMPARISON_HASHES} each): palisade {:.2} ms vs argon2-cffi {version} {:.2} ms = {:.2}x",
            palisade * 1e3,
            peer * 1e3,
            palisade / peer
        ),
        Err(reason) => println!(
            "argon2id hash at OWASP parameters: palisade {:.2} ms; argon2-cffi skipped ({reason})",
            palisade * 1e3
        ),
    }
}

criterion_group!(
    benches,
    argon2id_hash,
    argon2_cffi_comparison,
    bcrypt_verify,
    blocklist_lookup
);
criterion_main!(benches);
