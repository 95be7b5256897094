//! The failover drill (issue 18): a private 3-master, 3-replica Redis
//! Cluster of this test's own (it kills a node, so never the shared one),
//! revocation checks and rate-limit decisions under load on one master's
//! slots, that master killed (`SIGKILL`, a crash), and the time until
//! decisions are correct again measured and printed.
//!
//! The attack it stops: a revoked (stolen, logged-out) token accepted
//! again because the master that held its revocation died — before its
//! replica had the revocation, or while the cluster had no master for its
//! slot. Revocations are written with `WAIT 1`, so the promoted replica
//! still refuses the token; during the gap checks fail closed (an error,
//! 503 at the HTTP layer) and the rate limiter follows its fail mode.
//!
//! Needs `redis-server` and `redis-cli`: under `CI=true` their absence (or
//! a cluster that cannot start) fails the test; elsewhere it is skipped.
//! `cargo xtask cluster` (and `ci`) runs it, not the main test pass.

#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::print_stdout)] // tests: a panic is the failure report; the drill prints its numbers

#[path = "../../../xtask/src/cluster.rs"]
mod cluster;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use palisade_auth_tokens::revocation::{RedisRevocationStore, RevocationStore, TokenRef};
use palisade_errors::redis::{RedisConnection, key_slot};
use palisade_errors::{Error, StoreErrorKind};
use palisade_ratelimit::{FailMode, Policy, Quota, RateLimiter, RedisStore};

/// Tasks driving load, half revocation checks, half rate-limit decisions.
const TASKS: usize = 20;
/// Every store call's bound in the drill (a CI machine is busy).
const STORE_TIMEOUT: Duration = Duration::from_millis(250);
/// Load before the kill.
const WARM_UP: Duration = Duration::from_secs(1);
/// Correct decisions for this long, without an error, end the drill.
const STEADY: Duration = Duration::from_secs(2);
/// The hard bound on the recovery (the goal is 5 s).
const RECOVERY_BOUND: Duration = Duration::from_secs(15);
/// The drill gives up this long after the kill.
const DRILL_LIMIT: Duration = Duration::from_secs(25);
const LIMITER: &str = "drill";

fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A master of the cluster: its port, its slot ranges, its replicas' ports.
#[derive(Debug)]
struct Master {
    port: u16,
    slots: Vec<(u16, u16)>,
    replicas: Vec<u16>,
}

impl Master {
    fn owns(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }
}

/// The masters, as `CLUSTER NODES` on `port` tells them.
async fn masters(port: u16) -> Vec<Master> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut connection)
        .await
        .unwrap();
    let lines: Vec<Vec<&str>> = nodes
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let port_of = |address: &str| -> u16 {
        let host_port = address.split('@').next().unwrap();
        host_port.rsplit(':').next().unwrap().parse().unwrap()
    };
    lines
        .iter()
        .filter(|fields| fields[2].split(',').any(|flag| flag == "master"))
        .filter(|fields| !fields[2].contains("fail"))
        .map(|fields| Master {
            port: port_of(fields[1]),
            slots: fields[8..]
                .iter()
                .filter(|range| !range.starts_with('['))
                .map(|range| match range.split_once('-') {
                    Some((first, last)) => (first.parse().unwrap(), last.parse().unwrap()),
                    None => (range.parse().unwrap(), range.parse().unwrap()),
                })
                .collect(),
            replicas: lines
                .iter()
                .filter(|other| other[3] == fields[0])
                .map(|replica| port_of(replica[1]))
                .collect(),
        })
        .collect()
}

/// One command to the node on `port` (not through the cluster client).
async fn node_query<T: redis::FromRedisValue>(port: u16, command: &redis::Cmd) -> T {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    command.query_async(&mut connection).await.unwrap()
}

/// The process id of the node on `port`.
async fn pid_of(port: u16) -> String {
    let info: String = node_query(port, redis::cmd("INFO").arg("server")).await;
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Sends `signal` (`-STOP`, `-CONT`) to the process `pid` (a node this
/// test's cluster started).
fn signal(pid: &str, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The first name `<stem>-<n>` whose Redis key, as `key_of` makes it, is
/// on a slot `wanted` accepts.
fn name_on(stem: &str, key_of: impl Fn(&str) -> String, wanted: impl Fn(u16) -> bool) -> String {
    (0..100_000)
        .map(|n| format!("{stem}-{n}"))
        .find(|name| wanted(key_slot(key_of(name).as_bytes())))
        .unwrap()
}

/// What one decision of the load was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The right answer: a revoked token refused, a valid one accepted, a
    /// request admitted under a limit it cannot reach.
    Correct,
    /// No decision: the store failed, fail closed — 503 at the HTTP layer.
    Unavailable,
    /// A wrong answer (a revoked token accepted, ...): the drill fails.
    Wrong,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Revocation,
    RateLimit,
}

/// One decision: when it was answered (since the drill began), on which
/// master's slots (the killed one or another), what it was.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Duration,
    kind: Kind,
    on_killed: bool,
    outcome: Outcome,
}

/// A store failure as the client sees it: must be 503.
fn unavailable(error: impl Into<Error>) -> Outcome {
    let error: Error = error.into();
    if error.status() == 503 {
        Outcome::Unavailable
    } else {
        Outcome::Wrong
    }
}

struct Drill {
    revocations: RedisRevocationStore,
    limiter: RateLimiter<RedisStore>,
    /// Revoked before the drill: refused before, during and after it.
    revoked: (String, String),
    /// Never revoked: accepted whenever there is an answer.
    valid: (String, String),
    issued_at: u64,
    /// Subject (revocation) and rate-limit key on the killed master, and on
    /// a master that survives.
    subjects: [String; 2],
    rate_keys: [String; 2],
}

impl Drill {
    async fn revocation_check(&self, target: usize, revoked: bool) -> Outcome {
        let (jti, sid) = if revoked { &self.revoked } else { &self.valid };
        let token = TokenRef {
            subject: &self.subjects[target],
            jti,
            sid: Some(sid),
            issued_at: self.issued_at,
        };
        match self.revocations.is_revoked(token).await {
            Ok(answer) if answer == revoked => Outcome::Correct,
            Ok(_) => Outcome::Wrong,
            Err(error) => unavailable(error),
        }
    }

    async fn rate_decision(&self, target: usize) -> Outcome {
        match self.limiter.consume(&self.rate_keys[target], 1).await {
            Ok(_) => Outcome::Correct,
            Err(error) => unavailable(error),
        }
    }
}

/// Drives load until `stop`: task `index` checks revocations (even) or
/// asks the limiter (odd), on the killed master's slots three times in four.
async fn load(
    drill: Arc<Drill>,
    index: usize,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let on_killed = !round.is_multiple_of(4);
        let target = usize::from(!on_killed);
        let (kind, outcome) = if index.is_multiple_of(2) {
            let revoked = round.is_multiple_of(2);
            (
                Kind::Revocation,
                drill.revocation_check(target, revoked).await,
            )
        } else {
            (Kind::RateLimit, drill.rate_decision(target).await)
        };
        samples.push(Sample {
            at: started.elapsed(),
            kind,
            on_killed,
            outcome,
        });
        if outcome == Outcome::Unavailable {
            // A failed call returns at once or after its timeout: pace the
            // retries like a client would rather than spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_master_never_lets_a_revoked_token_through_and_recovers_within_bound() {
    if !cluster::available() {
        assert!(
            !in_ci(),
            "redis-server and redis-cli are needed for the failover drill under CI=true"
        );
        eprintln!("skipping the failover drill: no redis-server/redis-cli");
        return;
    }
    let mut cluster = match cluster::start(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))) {
        Ok(cluster) => cluster,
        Err(error) => {
            assert!(!in_ci(), "the drill's Redis Cluster did not start: {error}");
            eprintln!("skipping the failover drill: {error}");
            return;
        }
    };
    let connection: RedisConnection = palisade_errors::redis::connect(&cluster.url())
        .await
        .unwrap();

    // The master to kill, and one that survives, with a replica each.
    let all = masters(cluster.ports()[0]).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all.iter().all(|master| master.replicas.len() == 1),
        "{all:?}"
    );
    let (doomed, survivor) = (&all[0], &all[1]);

    let prefix = format!("palisade-drill:{}", std::process::id());
    let revocations = RedisRevocationStore::new(connection.clone())
        .with_key_prefix(&format!("{prefix}:rv"))
        .unwrap()
        .with_timeout(STORE_TIMEOUT);
    // A new store: its first epoch starts now (reported as a "loss"). The
    // 16,384 sentinels get a generous bound (clones share the epoch state).
    let setup = revocations.clone().with_timeout(Duration::from_secs(10));
    match setup.readiness().await {
        Ok(()) => {}
        Err(error) => assert_eq!(error.kind(), StoreErrorKind::DataLost, "{error}"),
    }
    let first_epoch = revocations.data_losses();
    let rate_store = RedisStore::new(connection.clone())
        .with_key_prefix(&format!("{prefix}:rl"))
        .unwrap()
        .with_timeout(STORE_TIMEOUT);
    // The limiter's Redis key for a request key (RateLimiter scopes keys
    // by its name as `<len>.<name>:<key>`; checked against Redis below).
    let rate_key_of = {
        let rate_store = rate_store.clone();
        move |key: &str| rate_store.redis_key(&format!("{}.{LIMITER}:{key}", LIMITER.len()))
    };
    // A limit the drill never reaches, over a long period so a key's state
    // (its TTL is the time to recover) outlives the check below.
    let policy =
        Policy::new([Quota::new(1_000_000, Duration::from_secs(10 * 86_400)).unwrap()]).unwrap();
    let limiter = RateLimiter::new(LIMITER, policy, rate_store)
        .fail_mode(FailMode::Closed)
        .store_cooldown(Duration::from_millis(100));

    let subject_key = |subject: &str| revocations.subject_key_prefix(subject);
    let subjects = [
        name_on("user", subject_key, |slot| doomed.owns(slot)),
        name_on("user", subject_key, |slot| survivor.owns(slot)),
    ];
    let rate_keys = [
        name_on("ip", &rate_key_of, |slot| doomed.owns(slot)),
        name_on("ip", &rate_key_of, |slot| survivor.owns(slot)),
    ];
    let issued_at = unix_now() + 1;
    let expires_at = unix_now() + 600;
    // Set-up, not under test: a replica of a cluster just formed may still
    // be syncing, and its acknowledgement can take longer than the drill's
    // 250 ms (seen once in CI on a loaded machine).
    for subject in &subjects {
        setup
            .revoke_token(subject, "jti-revoked", expires_at)
            .await
            .unwrap();
    }

    // A logout no replica acknowledges in time (the replica is frozen) is
    // reported as a failure (503: the client retries), not as done — a
    // failover could undo it unseen — though the master enforces it.
    let frozen = pid_of(survivor.replicas[0]).await;
    signal(&frozen, "-STOP");
    let unacknowledged = revocations
        .revoke_token(&subjects[1], "jti-unacknowledged", expires_at)
        .await;
    signal(&frozen, "-CONT");
    let error = unacknowledged.expect_err("a logout no replica has must not report success");
    assert_eq!(error.kind(), StoreErrorKind::Timeout, "{error}");
    assert_eq!(Error::from(error).status(), 503);
    let on_master = TokenRef {
        subject: &subjects[1],
        jti: "jti-unacknowledged",
        sid: None,
        issued_at,
    };
    assert!(revocations.is_revoked(on_master).await.unwrap());

    let drill = Arc::new(Drill {
        revocations: revocations.clone(),
        limiter,
        revoked: ("jti-revoked".to_owned(), "sid-revoked".to_owned()),
        valid: ("jti-valid".to_owned(), "sid-valid".to_owned()),
        issued_at,
        subjects,
        rate_keys,
    });
    for target in 0..2 {
        assert_eq!(drill.revocation_check(target, true).await, Outcome::Correct);
        assert_eq!(
            drill.revocation_check(target, false).await,
            Outcome::Correct
        );
        assert_eq!(drill.rate_decision(target).await, Outcome::Correct);
        let exists: bool = palisade_errors::redis::query(
            &connection,
            STORE_TIMEOUT,
            "drill",
            redis::cmd("EXISTS").arg(rate_key_of(&drill.rate_keys[target])),
        )
        .await
        .unwrap();
        assert!(exists, "the drill computes the limiter's Redis keys wrong");
    }

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|index| tokio::spawn(load(drill.clone(), index, started, stop.clone())))
        .collect();
    tokio::time::sleep(WARM_UP).await;

    // A logout the instant before the crash: only `WAIT 1` (the call
    // returns once a replica has it) makes it survive for certain.
    drill
        .revocations
        .revoke_token(&drill.subjects[0], "jti-last-second", expires_at)
        .await
        .unwrap();
    let on_replica: Vec<String> = node_query(
        doomed.replicas[0],
        redis::cmd("KEYS").arg(format!(
            "{}:jti:*",
            drill.revocations.subject_key_prefix(&drill.subjects[0])
        )),
    )
    .await;
    assert_eq!(
        on_replica.len(),
        2,
        "the replica lacks an acknowledged revocation"
    );
    cluster.kill(doomed.port).unwrap();
    let killed_at = started.elapsed();
    eprintln!(
        "drill: killed master 127.0.0.1:{} at {killed_at:.2?}",
        doomed.port
    );

    // Until every kind of decision on the killed master's slots has been
    // correct for STEADY without an error, or the limit.
    let recovered_by = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = started.elapsed();
        if now > killed_at + DRILL_LIMIT {
            break None;
        }
        let revocation_ok = drill.revocation_check(0, true).await == Outcome::Correct;
        let rate_ok = drill.rate_decision(0).await == Outcome::Correct;
        if !(revocation_ok && rate_ok) {
            continue;
        }
        // Probe repeatedly: recovered once nothing failed for STEADY.
        let probe_started = started.elapsed();
        let mut steady = true;
        while started.elapsed() < probe_started + STEADY {
            let checks = [
                drill.revocation_check(0, true).await,
                drill.revocation_check(0, false).await,
                drill.rate_decision(0).await,
            ];
            if checks.iter().any(|&outcome| outcome != Outcome::Correct) {
                steady = false;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if steady {
            break Some(probe_started);
        }
    };
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("a load task panicked"));
    }

    let wrong: Vec<&Sample> = samples
        .iter()
        .filter(|sample| sample.outcome == Outcome::Wrong)
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong decisions (e.g. a revoked token accepted): {wrong:?}"
    );
    let after_kill = |sample: &&Sample| sample.at > killed_at;
    let failures = |kind: Kind, on_killed: bool| {
        samples
            .iter()
            .filter(after_kill)
            .filter(|sample| sample.kind == kind && sample.on_killed == on_killed)
            .filter(|sample| sample.outcome == Outcome::Unavailable)
            .count()
    };
    let last_failure = samples
        .iter()
        .filter(after_kill)
        .filter(|sample| sample.on_killed && sample.outcome == Outcome::Unavailable)
        .map(|sample| sample.at)
        .max();
    let first_correct = |kind: Kind| {
        samples
            .iter()
            .filter(after_kill)
            .filter(|sample| sample.kind == kind && sample.on_killed)
            .filter(|sample| sample.outcome == Outcome::Correct)
            .map(|sample| sample.at)
            .min()
    };
    let recovery = last_failure.map_or(Duration::ZERO, |at| at - killed_at);
    println!(
        "drill: {} decisions by {TASKS} tasks; recovery (kill → last failed decision on its slots) {recovery:.2?} \
         (goal ≤ 5 s, bound {RECOVERY_BOUND:?}); first correct after the kill: revocation {:.2?}, rate limit {:.2?}; \
         failed during the gap on the killed master: {} revocation checks, {} rate-limit decisions; \
         on the surviving master: {}, {}",
        samples.len(),
        first_correct(Kind::Revocation).map(|at| at - killed_at),
        first_correct(Kind::RateLimit).map(|at| at - killed_at),
        failures(Kind::Revocation, true),
        failures(Kind::RateLimit, true),
        failures(Kind::Revocation, false),
        failures(Kind::RateLimit, false),
    );
    let recovered_by =
        recovered_by.expect("decisions were not correct again within the drill's limit");
    assert!(recovered_by - killed_at <= RECOVERY_BOUND + STEADY);
    assert!(
        recovery <= RECOVERY_BOUND,
        "decisions correct again only {recovery:?} after the kill"
    );
    // The gap was real, and fail closed: checks on the dead master's slots
    // were errors (503) — never an answer — and the limiter, fail mode
    // closed, refused with 503 as configured.
    assert!(
        failures(Kind::Revocation, true) > 0,
        "no gap seen: was the master killed?"
    );
    assert!(
        failures(Kind::RateLimit, true) > 0,
        "no gap seen: was the master killed?"
    );

    // After the failover: the promoted replica had every revocation (the
    // last-second one included) and every epoch sentinel (no data loss
    // detected, so valid sessions were not logged out).
    let last_second = TokenRef {
        subject: &drill.subjects[0],
        jti: "jti-last-second",
        sid: None,
        issued_at,
    };
    assert!(drill.revocations.is_revoked(last_second).await.unwrap());
    assert_eq!(drill.revocations.data_losses(), first_epoch);
    // The promoted master has no replica now: a revocation is not waited
    // on (it would block WAIT's whole timeout) and takes effect.
    let revoke_started = Instant::now();
    drill
        .revocations
        .revoke_token(&drill.subjects[0], "jti-after", expires_at)
        .await
        .unwrap();
    assert!(revoke_started.elapsed() < STORE_TIMEOUT);
    let after = TokenRef {
        subject: &drill.subjects[0],
        jti: "jti-after",
        sid: None,
        issued_at,
    };
    assert!(drill.revocations.is_revoked(after).await.unwrap());
    let promoted = masters(survivor.port).await;
    assert!(
        promoted.iter().any(|master| master.replicas.is_empty()
            && master.owns(key_slot(
                drill
                    .revocations
                    .subject_key_prefix(&drill.subjects[0])
                    .as_bytes()
            ))),
        "the dead master's slots should be on its promoted replica: {promoted:?}"
    );
    drop(cluster);
}
