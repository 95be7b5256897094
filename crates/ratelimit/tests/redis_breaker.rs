//! The Redis limiter under stalls and delays (issue #12, 1): a private
//! `redis-server` on a free port, started and killed here, behind a TCP
//! delay proxy in this file; never the shared 127.0.0.1:6379. Without a
//! `redis-server` binary these tests skip, except under `CI=true`, where
//! that is a failure.
//!
//! Every limiter here is built with the defaults (the 50 ms Redis timeout,
//! the default breaker and the default memory fallback), as a user would.

#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report; skips say why

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_ratelimit::{Policy, RateLimiter, RedisStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// A `redis-server` of this test alone, killed on drop.
struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    /// `None` (skip) when there is no `redis-server` binary, outside CI.
    fn start() -> Option<PrivateRedis> {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "redis-server is required under CI=true: {error}"
                );
                eprintln!("skipping: no redis-server binary: {error}");
                return None;
            }
        };
        let redis = PrivateRedis { port, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(redis);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not come up on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP proxy in front of the private Redis. Requests (client to Redis)
/// are held for the current delay, or until the end of a stall; replies
/// pass straight through. Each chunk keeps its own due time, so a delay
/// does not accumulate under load.
struct DelayProxy {
    port: u16,
    delay_ms: Arc<AtomicU64>,
    stall_until: Arc<Mutex<Option<Instant>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    async fn start(upstream: u16) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let delay_ms = Arc::new(AtomicU64::new(0));
        let stall_until = Arc::new(Mutex::new(None));
        let (delay, stall) = (Arc::clone(&delay_ms), Arc::clone(&stall_until));
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    while let Ok(read @ 1..) = client_read.read(&mut buffer).await {
                        if tx.send((Instant::now(), buffer[..read].to_vec())).is_err() {
                            break;
                        }
                    }
                });
                let (delay, stall) = (Arc::clone(&delay), Arc::clone(&stall));
                tokio::spawn(async move {
                    while let Some((arrived, bytes)) = rx.recv().await {
                        let mut due = arrived + Duration::from_millis(delay.load(Ordering::SeqCst));
                        let stalled = *stall.lock().unwrap();
                        if let Some(end) = stalled.filter(|end| arrived < *end) {
                            due = due.max(end);
                        }
                        tokio::time::sleep_until(due).await;
                        if server_write.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
            }
        });
        DelayProxy {
            port,
            delay_ms,
            stall_until,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(u64::try_from(delay.as_millis()).unwrap(), Ordering::SeqCst);
    }

    /// Holds every request sent from now until `length` from now.
    fn stall(&self, length: Duration) {
        *self.stall_until.lock().unwrap() = Some(Instant::now() + length);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A store with the defaults (50 ms timeout) through `url`, on its own
/// connection.
async fn store(url: &str) -> RedisStore {
    RedisStore::connect(url).await.unwrap()
}

// Issue #12, 1: one 80 ms stall used to send every key to fail-open for the
// whole cool-down; a key exhausted in Redis got through 82 of 130 times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_80ms_stall_lets_an_exhausted_key_through_at_most_the_fallback_share() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let proxy = DelayProxy::start(redis.port).await;
    let limit = 10;
    let limiter = Arc::new(RateLimiter::new(
        "api",
        Policy::parse([format!("{limit}/hour")]).unwrap(),
        store(&proxy.url()).await,
    ));
    for _ in 0..limit {
        assert!(limiter.consume("k", 1).await.unwrap().decision().is_some());
    }
    assert_eq!(limiter.consume("k", 1).await.unwrap_err().status(), 429);

    proxy.stall(Duration::from_millis(80));
    let admitted = Arc::new(AtomicU32::new(0));
    // A burst of 20 concurrent requests lands in the stall (every one times
    // out), then 130 more come one by one for about a second.
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let (limiter, admitted) = (Arc::clone(&limiter), Arc::clone(&admitted));
            tokio::spawn(async move {
                if limiter.consume("k", 1).await.is_ok() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in burst {
        task.await.unwrap();
    }
    let mut sequential = 0;
    for _ in 0..130 {
        if limiter.consume("k", 1).await.is_ok() {
            sequential += 1;
        }
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    let total = admitted.load(Ordering::SeqCst) + sequential;
    eprintln!(
        "80 ms stall: admitted {total} of 150 (burst {}, sequential {sequential}); store failures {}, skips {}",
        admitted.load(Ordering::SeqCst),
        limiter.store_failures(),
        limiter.store_skips()
    );
    assert!(
        total <= limit,
        "admitted {total}: beyond the fallback's share ({limit}, the policy on this instance)"
    );
    // After the stall Redis decides again, by itself.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let refused = limiter.consume("k", 1).await.unwrap_err();
    assert_eq!(refused.status(), 429);
    assert!(
        limiter
            .consume("other", 1)
            .await
            .unwrap()
            .decision()
            .is_some()
    );
}

// Issue #12, 1: two processes × 1,000 concurrent requests against
// `100/hour` with the default timeout admitted 1,041–1,563.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_under_a_60ms_delay_admit_at_most_the_limit_plus_the_fallback_allowance() {
    two_instances_under_a_60ms_delay(None).await;
}

// The same with each fallback holding its share of the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_with_fallback_shares_under_a_60ms_delay() {
    two_instances_under_a_60ms_delay(Some(2)).await;
}

/// 2 × 1,000 concurrent requests against `100/hour` through a 60 ms delay
/// (above the default 50 ms timeout), each instance's fallback holding
/// `100 / fallback_instances`.
async fn two_instances_under_a_60ms_delay(fallback_instances: Option<u32>) {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let proxy = DelayProxy::start(redis.port).await;
    let limit = 100u32;
    let policy = Policy::parse([format!("{limit}/hour")]).unwrap();
    // Two "processes": separate connections, breakers and memory fallbacks.
    let mut instances = Vec::new();
    for _ in 0..2 {
        let mut limiter = RateLimiter::new("api", policy.clone(), store(&proxy.url()).await);
        if let Some(count) = fallback_instances {
            limiter = limiter
                .breaker(palisade_ratelimit::BreakerConfig {
                    fallback_instances: count,
                    ..Default::default()
                })
                .unwrap();
        }
        instances.push(Arc::new(limiter));
    }
    for instance in &instances {
        // Loads the script: a call that times out waiting for NOSCRIPT
        // would never run it.
        assert!(
            instance
                .consume("warm", 1)
                .await
                .unwrap()
                .decision()
                .is_some()
        );
    }
    proxy.set_delay(Duration::from_millis(60));
    let admitted = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for instance in &instances {
        for _ in 0..1_000 {
            let (limiter, admitted) = (Arc::clone(instance), Arc::clone(&admitted));
            tasks.push(tokio::spawn(async move {
                if limiter.consume("k", 1).await.is_ok() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let admitted = admitted.load(Ordering::SeqCst);
    // The documented allowance: while the store fails, each instance's
    // fallback admits at most its share of the policy on its own.
    let share = limit.div_ceil(fallback_instances.unwrap_or(1));
    let bound = limit + 2 * share;
    eprintln!(
        "2 x 1,000 under a 60 ms delay, fallback share {share}: admitted {admitted} (bound {bound}); failures {}/{}, skips {}/{}",
        instances[0].store_failures(),
        instances[1].store_failures(),
        instances[0].store_skips(),
        instances[1].store_skips()
    );
    assert!(admitted <= bound, "admitted {admitted} > {bound}");

    // The timed-out calls still committed in Redis, and count there: once
    // the delay is gone, Redis refuses the key.
    proxy.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let direct = RateLimiter::new("api", policy, store(&redis.url()).await);
    let decision = direct.check("k", 1).await.unwrap();
    assert!(!decision.allowed, "Redis counted the timed-out calls");
    assert_eq!(decision.remaining, 0);
}

// The accounting: a call that times out after the script ran is charged to
// the local fallback and counted by Redis, so nothing is admitted
// uncounted, and one instance admits the limit, not more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_is_charged_to_the_fallback_and_counted_by_redis() {
    let Some(redis) = PrivateRedis::start() else {
        return;
    };
    let proxy = DelayProxy::start(redis.port).await;
    let limiter = RateLimiter::new(
        "api",
        Policy::parse(["10/hour"]).unwrap(),
        store(&proxy.url()).await,
    );
    assert!(limiter.consume("warm", 1).await.is_ok());
    proxy.set_delay(Duration::from_millis(60));
    let mut admitted = 0;
    for _ in 0..4 {
        let admission = limiter.consume("k", 1).await.unwrap();
        let decision = admission.decision().expect("metered by the fallback");
        admitted += 1;
        assert_eq!(decision.remaining, 10 - admitted, "the fallback is charged");
    }
    assert_eq!(limiter.store_failures(), 4);
    assert_eq!(
        limiter.store_skips(),
        0,
        "four slow replies do not open the breaker"
    );

    proxy.set_delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    while limiter.consume("k", 1).await.is_ok() {
        admitted += 1;
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert_eq!(
        admitted, 10,
        "4 in the fallback + 6 in Redis, which counted the 4"
    );
}
