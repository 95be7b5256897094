//! Fault test: the real binary on a private `redis-server` (its own free
//! port, `--save "" --appendonly no`, never the shared one), Redis killed
//! under load and restarted empty on the same port, the service never
//! restarted. Without a `redis-server` binary the test skips, unless
//! `CI=true`: then it fails.
//!
//! What the configuration says, and the test asserts:
//! - rate limits decide in a local memory fallback while their store is
//!   down (palisade-ratelimit's default: neither fail open nor 503), so the
//!   limited routes keep answering, and keep limiting (the 5/minute login
//!   limit still answers 429 + `Retry-After` on the 6th request);
//! - revocation fails closed: a bearer request answers the 503 envelope,
//!   never 200; so does a login (the login throttle fails closed and the
//!   accounts are in Redis);
//! - `/health/ready` answers 503 `{status, checks: {redis: "down"}}`, and
//!   `/health/live` 200;
//! - no panic, the process stays up;
//! - once Redis is back, readiness is 200 again within 10 s without a
//!   restart. Redis came back *empty*: the accounts are gone (a login is the
//!   401 of an unknown user), and the revocation store sees its epoch
//!   sentinels gone and starts a new epoch, so the access tokens issued
//!   before the loss are refused (401) rather than trusted without their
//!   revocations: the designed fail-closed behaviour. An account registered
//!   again logs in and its fresh token works at once: the epoch sweep
//!   (`PALISADE_REVOCATION_SWEEP`) has started every slot's new epoch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
#![cfg(unix)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::flows::{self, Pair};
use support::{GOOD_PASSWORD, Reply, Server, bearer};

#[path = "../../../tests/private_redis.rs"]
mod private_redis;

use private_redis::PrivateRedis;

/// One request of the background load: when it started, what it was, and
/// its status (`None`: no HTTP answer at all).
struct Sample {
    started: Instant,
    route: &'static str,
    status: Option<u16>,
}

/// A request that cannot panic the load thread (a refused connection is a
/// sample without a status).
fn try_request(address: &str, raw: &[u8]) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(raw).ok()?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.split(' ').nth(1)?.parse().ok()
}

/// `clients` threads sending a bearer `/me`, a liveness probe and a
/// malformed login in turn, each from its own forwarded address (through
/// the trusted loopback proxy), until `stop`.
fn load(
    server: &Server,
    access: &str,
    clients: u8,
    stop: &Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<()>>, Arc<Mutex<Vec<Sample>>>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let threads = (0..clients)
        .map(|client| {
            let address = server.address.clone();
            let (name, value) = bearer(access);
            let stop = Arc::clone(stop);
            let samples = Arc::clone(&samples);
            std::thread::spawn(move || {
                let mut n: u32 = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let ip = format!("10.77.{client}.{}", n % 250 + 1);
                    let forwarded = ("X-Forwarded-For", ip.as_str());
                    let (route, raw) = match n % 3 {
                        0 => (
                            "/me",
                            support::build("GET", "/me", &[(name, &value), forwarded], None),
                        ),
                        1 => (
                            "/health/live",
                            support::build("GET", "/health/live", &[forwarded], None),
                        ),
                        _ => (
                            "/auth/login",
                            support::build("POST", "/auth/login", &[forwarded], Some("{}")),
                        ),
                    };
                    let started = Instant::now();
                    let status = try_request(&address, &raw);
                    samples.lock().unwrap().push(Sample {
                        started,
                        route,
                        status,
                    });
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    (threads, samples)
}

/// Polls `/health/ready` until it answers `status`, at most `limit`.
fn ready_becomes(server: &Server, status: u16, limit: Duration) -> (Reply, Duration) {
    let started = Instant::now();
    loop {
        let reply = server.get("/health/ready", &[]);
        if reply.status == status {
            return (reply, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "/health/ready still {} after {limit:?}: {reply:?}",
            reply.status
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `send()` again while it answers 503 (a Redis call past its 50 ms timeout
/// on a loaded machine), for at most 10 s; the first other answer.
fn settled(send: impl Fn() -> Reply) -> Reply {
    let started = Instant::now();
    loop {
        let reply = send();
        if reply.status != 503 || started.elapsed() > Duration::from_secs(10) {
            return reply;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /me` with the pair's access token.
fn me(server: &Server, pair: &Pair) -> Reply {
    let (name, value) = pair.auth();
    server.get("/me", &[(name, &value)])
}

fn credentials(username: &str, password: &str) -> String {
    serde_json::json!({"username": username, "password": password}).to_string()
}

#[test]
fn redis_killed_under_load_fails_as_configured_and_recovers_without_restart() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let url = redis.url();
    // A store's first epoch begins at start-up; logins are stamped past it
    // (with the default leeway), so the first one works at once.
    let mut server = Server::start(&[
        ("PALISADE_REDIS_URL", &url),
        ("PALISADE_REVOCATION_SWEEP", "1s"),
    ]);

    // Healthy: an account, a session, readiness 200 with Redis ok.
    flows::register(&server, "alice");
    let before = flows::login_ok(&server, "alice", GOOD_PASSWORD);
    settled(|| me(&server, &before)).expect(200);
    let (ready, _) = ready_becomes(&server, 200, Duration::from_secs(5));
    assert_eq!(ready.json()["checks"]["redis"], "ok", "{ready:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let (threads, samples) = load(&server, &before.access, 4, &stop);
    std::thread::sleep(Duration::from_millis(500));

    // Redis dies under load.
    redis.kill();
    let (ready, detected) = ready_becomes(&server, 503, Duration::from_secs(5));
    let body = ready.json();
    assert_eq!(body["checks"]["redis"], "down", "{ready:?}");
    assert_eq!(body["status"], "unavailable", "{ready:?}");
    eprintln!("readiness 503 {detected:?} after the kill");
    let outage_confirmed = Instant::now();

    // Attack: a revoked token must not pass while the revocations cannot
    // be read. Revocation fails closed: 503, never 200.
    for _ in 0..3 {
        let me = me(&server, &before);
        me.expect(503);
        assert_eq!(me.code(), "unavailable");
        assert!(me.header("x-request-id").is_some(), "{me:?}");
        assert_eq!(me.header("x-content-type-options"), Some("nosniff"));
        // When to come back, so clients do not retry in a tight loop.
        assert_eq!(me.header("retry-after"), Some("1"), "{me:?}");
    }
    // A login cannot be checked (throttle fails closed, accounts in Redis).
    let login = server.post(
        "/auth/login",
        &[("X-Forwarded-For", "10.78.0.1")],
        &credentials("alice", GOOD_PASSWORD),
    );
    login.expect(503);
    assert_eq!(login.code(), "unavailable");
    assert_eq!(login.header("retry-after"), Some("1"), "{login:?}");
    // Attack: password guessing while Redis is down. The limits still
    // answer and still limit, from their local memory fallback: five
    // (malformed) logins from one address reach the handler (422), the
    // sixth is refused by the 5/minute login limit.
    let flood = || {
        server.post(
            "/auth/login",
            &[("X-Forwarded-For", "10.78.0.2")],
            r#"{"username": 1}"#,
        )
    };
    for _ in 0..5 {
        flood().expect(422);
    }
    let refused = flood();
    refused.expect(429);
    assert_eq!(refused.code(), "rate_limited");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    server.get("/health/live", &[]).expect(200);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died with Redis:\n{}",
        server.log_text()
    );

    // Redis comes back, empty (no persistence); the server is not restarted.
    redis.start_again();
    let (_, recovered) = ready_becomes(&server, 200, Duration::from_secs(10));
    eprintln!("readiness 200 {recovered:?} after Redis restarted");
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }

    // The data loss is detected, not silently trusted: the token issued
    // before it is refused (a new revocation epoch), and the account is
    // gone with the rest of Redis' data (a login is an unknown user's 401).
    let old = settled(|| me(&server, &before));
    old.expect(401);
    assert_eq!(old.code(), "unauthorized");
    settled(|| flows::login(&server, "alice", GOOD_PASSWORD)).expect(401);
    // Full recovery: register again, log in, and the fresh token works at
    // once: the login is stamped past the new epoch (there was a 30 s
    // window of 401s here, with the default leeway).
    settled(|| server.post("/auth/register", &[], &credentials("alice", GOOD_PASSWORD)))
        .expect(201);
    let login = settled(|| flows::login(&server, "alice", GOOD_PASSWORD));
    login.expect(200);
    let after = Pair::of(&login);
    let reply = me(&server, &after);
    reply.expect(200);
    assert_eq!(reply.json()["username"], "alice");

    // The load saw answers only: no dropped connection, no 500; and no
    // bearer request started after the outage was confirmed got a 200.
    let samples = samples.lock().unwrap();
    assert!(samples.len() > 50, "too little load: {}", samples.len());
    let mut counts = std::collections::BTreeMap::new();
    for sample in samples.iter() {
        *counts.entry((sample.route, sample.status)).or_insert(0u32) += 1;
        let status = sample
            .status
            .unwrap_or_else(|| panic!("{} got no answer", sample.route));
        assert_ne!(status, 500, "{}", sample.route);
        if sample.route == "/me" && sample.started > outage_confirmed {
            assert_ne!(
                status, 200,
                "a bearer request passed while revocation was down"
            );
        }
    }
    eprintln!("load: {counts:?}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
