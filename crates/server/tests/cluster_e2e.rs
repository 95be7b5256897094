//! Two real `palisade-server` instances on a Redis Cluster behave as one:
//! the global limit is one budget, a logout on one is refused on the other
//! at once, a refresh token races to one successor, and readiness reports
//! the cluster's state.
//!
//! The cluster is the `redis+cluster://…` URL of `PALISADE_TEST_REDIS_URL`,
//! which `cargo xtask cluster` (and `cargo xtask ci`) sets for its private
//! 3-master, 3-replica cluster. Without it the tests skip with a word (the
//! main test pass leaves this binary out); with it, a cluster that does not
//! answer fails them.
// Tests: a panic is the failure report; skips and the figures measured
// are printed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]
#![cfg(unix)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::flows::{self, Pair, login_ok};
use support::{Reply, Server};

/// The cluster to run on, or `None` (with a word) to skip.
fn cluster_url(test: &str) -> Option<String> {
    match std::env::var("PALISADE_TEST_REDIS_URL") {
        Ok(url) if url.starts_with("redis+cluster://") || url.starts_with("rediss+cluster://") => {
            Some(url)
        }
        _ => {
            eprintln!(
                "{test}: skipped: PALISADE_TEST_REDIS_URL names no Redis Cluster \
                 (run `cargo xtask cluster`)"
            );
            None
        }
    }
}

/// A fresh key prefix on the cluster, whose keys are deleted when it is
/// dropped (the revocation store alone writes 16,384 epoch sentinels).
struct Prefix {
    name: String,
    url: String,
}

impl Prefix {
    fn new(url: &str, test: &str) -> Prefix {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Prefix {
            name: format!("pscluster:{test}:{}:{nanos}", std::process::id()),
            url: url.to_owned(),
        }
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(connection) = palisade_errors::redis::connect(&self.url).await else {
                return;
            };
            let timeout = Duration::from_secs(10);
            // KEYS asks every master: this is a test cluster of our own.
            let mut keys = redis::cmd("KEYS");
            keys.arg(format!("{}:*", self.name));
            let Ok(keys) =
                palisade_errors::redis::query::<Vec<String>>(&connection, timeout, "keys", &keys)
                    .await
            else {
                return;
            };
            for chunk in keys.chunks(1000) {
                // The client splits a DEL across the slots of its keys.
                let mut del = redis::cmd("DEL");
                del.arg(chunk);
                let _ =
                    palisade_errors::redis::query::<i64>(&connection, timeout, "del", &del).await;
            }
        });
    }
}

/// Two instances on the cluster under `prefix`, sharing their secrets,
/// with `env` on top, used at once: a fresh prefix starts a new revocation
/// epoch at start-up, and logins are stamped past it.
fn start_pair(url: &str, prefix: &Prefix, env: &[(&str, &str)]) -> (Server, Server) {
    let mut all = support::with_fixed_secrets(&[
        // The tests measure sharing, not the host: two busy cores run six
        // redis-servers, two debug builds and up to 200 client threads, and
        // a store call past the default 50 ms would be decided by the
        // store's fail mode (the rate limit in one instance's memory),
        // which the cores' own tests cover.
        ("PALISADE_REDIS_TIMEOUT", "1s"),
        ("PALISADE_REDIS_URL", url),
        ("PALISADE_REDIS_KEY_PREFIX", prefix.name.as_str()),
    ]);
    all.extend_from_slice(env);
    let one = Server::start(&all);
    let two = Server::start(&all);
    (one, two)
}

/// Sends `count` requests at once (released together by a barrier), the
/// even ones to `one` and the odd ones to `two`, and returns each reply
/// with the instance that answered it (0 or 1).
fn concurrently(
    one: &Server,
    two: &Server,
    count: usize,
    request: impl Fn(&Server) -> Reply + Sync,
) -> Vec<(usize, Reply)> {
    let barrier = Barrier::new(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|n| {
                let (barrier, request) = (&barrier, &request);
                let server = if n % 2 == 0 { one } else { two };
                scope.spawn(move || {
                    barrier.wait();
                    (n % 2, request(server))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    })
}

/// How many replies had each status.
fn tally(replies: &[(usize, Reply)]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for (_, reply) in replies {
        *counts.entry(reply.status).or_insert(0) += 1;
    }
    counts
}

/// The warnings and errors both instances logged (a store that did not
/// answer in time, a fail mode), for a failure message. Stops them first:
/// their log writer flushes on exit.
fn store_trouble(one: &mut Server, two: &mut Server) -> String {
    for server in [&mut *one, &mut *two] {
        server.terminate();
        server.wait_exit(Duration::from_secs(10));
    }
    [one.log_text(), two.log_text()]
        .iter()
        .flat_map(|log| log.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| line.contains("\"WARN\"") || line.contains("\"ERROR\""))
        .take(20)
        .collect::<Vec<_>>()
        .join("\n")
}

fn refresh(server: &Server, token: &str) -> Reply {
    server.post(
        "/auth/refresh",
        &[],
        &serde_json::json!({"refresh_token": token}).to_string(),
    )
}

fn me(server: &Server, access: &str) -> Reply {
    let (name, value) = support::bearer(access);
    server.get("/me", &[(name, &value)])
}

/// Attack: a flood spread over the instances behind a load balancer (each
/// instance counting alone would admit its own 100). The per-IP limit's
/// counters live in the cluster, so the two instances share one budget:
/// of 200 requests at once from one address, exactly 100 get through.
#[test]
fn global_limit_of_100_admits_exactly_100_of_200_across_two_instances() {
    let Some(url) = cluster_url("global_limit") else {
        return;
    };
    let prefix = Prefix::new(&url, "limit");
    // 100 an hour: the GCRA burst is 100 and the next slot 36 s away, so
    // the test's own duration frees none.
    let (mut one, mut two) = start_pair(&url, &prefix, &[("PALISADE_RATE_LIMIT", "100/hour")]);
    let started = Instant::now();
    // `/me` without a token: past the limit a 401 (admitted, then refused
    // by the route), a 429 when the limit refuses it.
    let replies = concurrently(&one, &two, 200, |server| server.get("/me", &[]));
    let elapsed = started.elapsed();
    let counts = tally(&replies);
    eprintln!("200 requests at once over two instances in {elapsed:.2?}: {counts:?}");
    assert_eq!(
        counts,
        BTreeMap::from([(401, 100), (429, 100)]),
        "the shared budget is 100; store trouble:\n{}",
        store_trouble(&mut one, &mut two)
    );
    // Both instances refused some: the budget is one, not one each.
    for instance in 0..2 {
        assert!(
            replies
                .iter()
                .any(|(which, reply)| *which == instance && reply.status == 429),
            "instance {instance} refused nothing"
        );
    }
    for (_, reply) in replies.iter().filter(|(_, reply)| reply.status == 429) {
        assert_eq!(reply.code(), "rate_limited", "{reply:?}");
        assert!(reply.header("retry-after").is_some(), "{reply:?}");
    }
    // And the budget stays spent on either instance.
    one.get("/me", &[]).expect(429);
    two.get("/me", &[]).expect(429);
}

/// Attack: a stolen access token replayed against another instance after
/// its owner logged out on the first. The revocation is in the cluster, so
/// the other instance refuses it on the very next request; a refresh
/// token ended by the logout is refused there too. Several users, so the
/// revocations land on different slots (and masters).
#[test]
fn logout_on_one_instance_is_refused_on_the_other_at_once() {
    let Some(url) = cluster_url("logout") else {
        return;
    };
    let prefix = Prefix::new(&url, "logout");
    let (one, two) = start_pair(&url, &prefix, &[]);
    for name in ["dora", "eve", "finn", "gus"] {
        flows::register(&one, name);
        let pair = login_ok(&two, name, support::GOOD_PASSWORD);
        me(&one, &pair.access).expect(200);
        me(&two, &pair.access).expect(200);
        let (header, value) = pair.auth();
        let body = serde_json::json!({"refresh_token": pair.refresh}).to_string();
        let started = Instant::now();
        one.post("/auth/logout", &[(header, &value)], &body)
            .expect(204);
        let refused = me(&two, &pair.access);
        let elapsed = started.elapsed();
        refused.expect(401);
        assert!(
            refused
                .header("www-authenticate")
                .is_some_and(|challenge| challenge.contains("invalid_token")),
            "{refused:?}"
        );
        eprintln!("{name}: logout on one, refused on two, {elapsed:.2?} after the logout began");
        refresh(&two, &pair.refresh).expect(401);
    }
}

/// Attack: a stolen refresh token raced against its owner's (or a client
/// retrying in parallel) across instances, to fork the session. 100
/// refreshes of one token at once over both instances, without a grace
/// window: one rotates, the others present a rotated token, which is
/// reuse (401) and ends the family — the one successor included, so the
/// winner's own answer is a 401 too when a loser's reuse lands before its
/// closing revocation check. At most one 200, never two successors, and
/// afterwards nothing of the family works on either instance.
#[test]
fn concurrent_refreshes_across_two_instances_give_one_successor() {
    let Some(url) = cluster_url("refresh_race") else {
        return;
    };
    let prefix = Prefix::new(&url, "race");
    // The support's base environment sets no grace (`PALISADE_REFRESH_GRACE=0s`).
    let (mut one, mut two) = start_pair(&url, &prefix, &[]);
    flows::register(&one, "hana");
    let pair = login_ok(&two, "hana", support::GOOD_PASSWORD);
    let started = Instant::now();
    let replies = concurrently(&one, &two, 100, |server| refresh(server, &pair.refresh));
    let elapsed = started.elapsed();
    let counts = tally(&replies);
    eprintln!("100 refreshes at once over two instances in {elapsed:.2?}: {counts:?}");
    let successes = counts.get(&200).copied().unwrap_or(0);
    assert!(
        successes <= 1 && successes + counts.get(&401).copied().unwrap_or(0) == 100,
        "{counts:?}; store trouble:\n{}",
        store_trouble(&mut one, &mut two)
    );
    // Reuse was detected (the 99 losers presented a rotated token).
    assert!(
        [&one, &two]
            .iter()
            .any(|server| server.log_text().contains("authn_token_reuse")),
        "no reuse detected"
    );
    // The family is ended on both instances: the winner's pair (if its
    // answer got out) and the raced token are refused.
    for server in [&one, &two] {
        refresh(server, &pair.refresh).expect(401);
        me(server, &pair.access).expect(401);
        if let Some((_, winner)) = replies.iter().find(|(_, reply)| reply.status == 200) {
            let successor = Pair::of(winner);
            refresh(server, &successor.refresh).expect(401);
            me(server, &successor.access).expect(401);
        }
    }
}

/// The same race with the production default grace window (10 s: a client
/// whose response was lost may retry): every racer gets the same one
/// successor pair, never a fork of the family, and it keeps working on
/// both instances.
#[test]
fn concurrent_refreshes_within_the_grace_window_share_one_successor() {
    let Some(url) = cluster_url("refresh_grace") else {
        return;
    };
    let prefix = Prefix::new(&url, "grace");
    let (mut one, mut two) = start_pair(&url, &prefix, &[("PALISADE_REFRESH_GRACE", "10s")]);
    flows::register(&one, "ines");
    let pair = login_ok(&two, "ines", support::GOOD_PASSWORD);
    let started = Instant::now();
    let replies = concurrently(&one, &two, 100, |server| refresh(server, &pair.refresh));
    let elapsed = started.elapsed();
    let counts = tally(&replies);
    eprintln!("100 refreshes at once within the grace in {elapsed:.2?}: {counts:?}");
    assert_eq!(
        counts,
        BTreeMap::from([(200, 100)]),
        "store trouble:\n{}",
        store_trouble(&mut one, &mut two)
    );
    let successors: BTreeSet<String> = replies
        .iter()
        .map(|(_, reply)| Pair::of(reply).refresh)
        .collect();
    assert_eq!(successors.len(), 1, "the family forked");
    let accesses: BTreeSet<String> = replies
        .iter()
        .map(|(_, reply)| Pair::of(reply).access)
        .collect();
    assert_eq!(accesses.len(), 1, "the family forked");
    let successor = Pair::of(&replies[0].1);
    assert_ne!(successor.refresh, pair.refresh);
    me(&one, &successor.access).expect(200);
    me(&two, &successor.access).expect(200);
    refresh(&one, &successor.refresh).expect(200);
}

/// Readiness on a cluster reports it: `checks.redis` answers, and
/// `checks.redis_cluster` is `{state: ok, masters: 3}` on both instances
/// (a load balancer sends traffic only to instances whose every slot has
/// a master).
#[test]
fn readiness_reports_the_cluster_state() {
    let Some(url) = cluster_url("readiness") else {
        return;
    };
    let prefix = Prefix::new(&url, "ready");
    let (one, two) = start_pair(&url, &prefix, &[]);
    for server in [&one, &two] {
        let ready = server.get("/health/ready", &[]);
        ready.expect(200);
        let json = ready.json();
        assert_eq!(json["status"], "ok", "{ready:?}");
        assert_eq!(json["checks"]["redis"], "ok", "{ready:?}");
        assert_eq!(
            json["checks"]["redis_cluster"],
            serde_json::json!({"state": "ok", "masters": 3}),
            "{ready:?}"
        );
    }
}
