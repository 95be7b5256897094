//! End to end with every store in Redis (127.0.0.1:6379, a fresh key prefix
//! per run). Without Redis the tests skip, except under `CI=true`, where
//! they fail. Two instances share the Redis: a session opened on one is
//! revoked on the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::flows::{self, login_ok};
use support::{GOOD_PASSWORD, Server};

const URL: &str = "redis://127.0.0.1:6379";

fn redis_up() -> bool {
    match std::net::TcpStream::connect("127.0.0.1:6379") {
        Ok(_) => true,
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "Redis at {URL} is required under CI=true: {error}"
            );
            false
        }
    }
}

/// A fresh key prefix, whose keys are deleted when it is dropped (the
/// revocation store alone writes 16,384 epoch sentinels per prefix).
struct Prefix(String);

impl Prefix {
    fn new(test: &str) -> Prefix {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Prefix(format!("pstest:{test}:{}:{nanos}", std::process::id()))
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(URL) else {
            return;
        };
        let Ok(mut connection) = client.get_connection() else {
            return;
        };
        let keys = scan(&mut connection, &self.0);
        for chunk in keys.chunks(1000) {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(chunk).query(&mut connection);
        }
    }
}

/// The keys under `prefix`, by SCAN (KEYS would block the shared Redis,
/// and other tests' 50 ms store timeouts with it).
fn scan(connection: &mut redis::Connection, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, mut batch)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(2000)
            .query(connection)
        else {
            return keys;
        };
        keys.append(&mut batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// A server on the shared Redis, used at once. A fresh prefix starts a new
/// revocation epoch at start-up, and a token issued before an epoch counts
/// as revoked (fail closed); logins are stamped past it (the revocation
/// store's `not_before` includes the epoch), so they work at once, with
/// the default leeway.
fn start(prefix: &str) -> Server {
    // Both instances of a test must share their keys.
    Server::start(&support::with_fixed_secrets(&[
        ("PALISADE_REDIS_URL", URL),
        ("PALISADE_REDIS_KEY_PREFIX", prefix),
    ]))
}

#[test]
fn redis_auth_flow_rbac_and_patch() {
    if !redis_up() {
        return;
    }
    let prefix = Prefix::new("flow");
    let server = start(&prefix.0);
    let ready = server.get("/health/ready", &[]);
    ready.expect(200);
    assert_eq!(ready.json()["checks"]["redis"], "ok");
    // A single node has no cluster state to report.
    assert!(
        ready.json()["checks"].get("redis_cluster").is_none(),
        "{ready:?}"
    );
    flows::auth_flow(&server, "alice");
    flows::rbac_flow(&server, "bob");
    flows::patch_flow(&server, "carol");
    flows::api_key_flow(&server, "kim", "lee");

    // No user text in any key (usernames are hashed into the hash tags).
    let client = redis::Client::open(URL).unwrap();
    let mut connection = client.get_connection().unwrap();
    let keys = scan(&mut connection, &prefix.0);
    assert!(keys.iter().any(|key| key.contains(":users:")), "{keys:?}");
    for key in &keys {
        let lower = key.to_lowercase();
        for name in ["alice", "bob", "carol", "root", "kim", "lee"] {
            assert!(!lower.contains(name), "user text in a Redis key: {key}");
        }
    }
    // Every key but the accounts' has a TTL. A rate-limit key lives only
    // until its state has recovered (a few milliseconds for a lightly used
    // quota), so it may be about to go (0) or gone (-2) by the time it is
    // asked about. Only -1, a key with no expiry, is a leak.
    for key in keys.iter().filter(|key| !key.contains(":users:")).take(200) {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut connection).unwrap();
        assert!(ttl != -1, "{key} has no TTL");
    }
    drop(server);
}

#[test]
fn redis_two_instances_behave_as_one() {
    if !redis_up() {
        return;
    }
    let prefix = Prefix::new("pair");
    let one = start(&prefix.0);
    let two = start(&prefix.0);
    // An account made on one logs in on the other; a duplicate is a 409
    // on either.
    flows::register(&one, "dora");
    two.post(
        "/auth/register",
        &[],
        &serde_json::json!({"username": "DORA", "password": GOOD_PASSWORD}).to_string(),
    )
    .expect(409);
    let pair = login_ok(&two, "dora", GOOD_PASSWORD);
    let (name, value) = pair.auth();
    one.get("/me", &[(name, &value)]).expect(200);
    // Logout on one: the token stops on the other at once.
    one.request("POST", "/auth/logout", &[(name, &value)], None)
        .expect(204);
    two.get("/me", &[(name, &value)]).expect(401);
    // The login limit is shared: 5 a minute per IP across both instances.
    for n in 0..3 {
        flows::login_direct(&one, &format!("ghost{n}"), "guess number one 123").expect(401);
    }
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses
            .push(flows::login_direct(&two, &format!("ghost{n}"), "guess number one 123").status);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

/// Lost updates: a handler reads an account, hashes a password for 300 ms
/// and writes its copy back; an admin's role change made meanwhile would
/// be undone (attack: a demoted admin stays an admin by changing their
/// password while the demotion lands). `modify` changes the account as
/// stored at the write: concurrent changes all land, a password change
/// keeps the role change made meanwhile, and a change checked against a
/// password that is no longer current is refused (409). On both stores.
#[tokio::test]
async fn account_writes_apply_to_the_stored_account_and_lose_no_update() {
    use palisade_errors::ErrorKind;
    use palisade_server::users::{Role, User, UserStore};

    let prefix = Prefix::new("modify");
    let mut stores = vec![UserStore::memory()];
    if redis_up() {
        let connection = palisade_errors::redis::connect(URL).await.unwrap();
        stores.push(UserStore::redis(connection, &prefix.0).unwrap());
    }
    for store in stores {
        let alice = User::new("alice".into(), "hash-0".into(), Role::Admin).unwrap();
        store.create(&alice).await.unwrap();
        // A password change started on this copy...
        let read = store.by_id(&alice.id).await.unwrap().unwrap();
        // ...while the demotion lands...
        store
            .modify(&alice.id, |stored| {
                stored.role = Role::User;
                Ok(())
            })
            .await
            .unwrap();
        // ...ends on the stored account: the demotion stays.
        let changed = store
            .modify(&alice.id, |stored| {
                assert_eq!(stored.password_hash, read.password_hash);
                stored.change_password("hash-1".into());
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(changed.role, Role::User, "{store:?}");
        let stored = store.by_id(&alice.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.role, stored.password_hash.as_str()),
            (Role::User, "hash-1")
        );
        assert_eq!(stored.password_history, ["hash-0"]);

        // Concurrent writers: every one that answers Ok is counted.
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let store = store.clone();
                let id = alice.id.clone();
                tokio::spawn(async move {
                    store
                        .modify(&id, |stored| {
                            let count: u32 = stored
                                .display_name
                                .as_deref()
                                .map_or(0, |name| name.parse().unwrap());
                            stored.display_name = Some((count + 1).to_string());
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        let mut landed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => landed += 1,
                Err(error) => assert_eq!(error.kind(), ErrorKind::Conflict, "{error:?}"),
            }
        }
        let stored = store.by_id(&alice.id).await.unwrap().unwrap();
        assert!(landed > 0);
        assert_eq!(stored.display_name, Some(landed.to_string()), "{store:?}");
        // An account that is gone is a 404, and the id and name never change.
        let renamed = store
            .modify(&alice.id, |stored| {
                stored.username = "mallory".into();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(renamed.username, "alice");
        let missing = store.modify(&"0".repeat(32), |_| Ok(())).await;
        assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
    }
}
