//! The async API keeps the executor free: hashing runs on a bounded pool,
//! and past its queue limit callers get a 503 at once.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::{Duration, Instant};

use palisade_errors::ErrorKind;
use palisade_passwords::{AsyncHasher, HashErrorKind, HashPool, PasswordHasher};
use secrecy::SecretString;

/// How long a cheap async task takes to get scheduled: a 1 ms timer.
async fn tick() -> Duration {
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1)).await;
    started.elapsed()
}

#[test]
fn sixty_four_concurrent_hashes_leave_a_cheap_task_responsive() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut idle = Duration::ZERO;
        for _ in 0..10 {
            idle = idle.max(tick().await);
        }
        let hasher = AsyncHasher::new(PasswordHasher::new(), HashPool::with_limits(2, 64).unwrap());
        let started = Instant::now();
        let hashes: Vec<_> = (0..64)
            .map(|i| {
                let hasher = hasher.clone();
                tokio::spawn(
                    async move { hasher.hash(SecretString::from(format!("pw-{i}"))).await },
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut busy = Duration::ZERO;
        let mut samples = 0;
        while hasher.pool().in_flight() > 0 && samples < 50 {
            busy = busy.max(tick().await);
            samples += 1;
        }
        for hash in hashes {
            hash.await.unwrap().unwrap();
        }
        let total = started.elapsed();
        // Generous: ten times the idle latency, and never under 50 ms (a
        // loaded CI machine); the precise figure belongs in a benchmark.
        let bound = (idle * 10).max(Duration::from_millis(50));
        assert!(
            samples > 5,
            "the hashes finished before they could be sampled"
        );
        assert!(
            busy < bound,
            "idle {idle:?}, under load {busy:?}, 64 hashes in {total:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_queue_limit_callers_get_unavailable() {
    let pool = HashPool::with_limits(1, 2).unwrap();
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(|| std::thread::sleep(Duration::from_millis(300)))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.in_flight(), 3);
    let started = Instant::now();
    let refused = pool.run(|| ()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "refused at once"
    );
    assert_eq!(refused.kind(), HashErrorKind::Busy);
    let envelope = palisade_errors::Error::from(refused);
    assert_eq!(envelope.kind(), ErrorKind::Unavailable);
    assert_eq!(envelope.status(), 503);
    for task in slow {
        task.await.unwrap().unwrap();
    }
    assert_eq!(pool.in_flight(), 0);
    pool.run(|| ()).await.unwrap();
}

/// A reservation holds its place until it runs or is dropped: what a login
/// takes before its throttle counts the attempt (a full pool must answer
/// 503 before any attempt is charged).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_places_count_until_used_or_dropped() {
    let hasher = AsyncHasher::new(PasswordHasher::new(), HashPool::with_limits(1, 1).unwrap());
    let first = hasher.reserve().unwrap();
    let second = hasher.reserve().unwrap();
    assert_eq!(hasher.pool().in_flight(), 2);
    // Full: refused at once, and the plain API refuses too.
    assert_eq!(hasher.reserve().unwrap_err().kind(), HashErrorKind::Busy);
    let password = SecretString::from("correct horse battery staple");
    assert_eq!(
        hasher.dummy_verify(password.clone()).await.kind(),
        HashErrorKind::Busy
    );
    // Dropped unused: given back.
    drop(second);
    assert_eq!(hasher.pool().in_flight(), 1);
    // Used: the verification runs in the reserved place and gives it back.
    let hash = hasher.hasher().hash(&password).unwrap();
    let verified = first
        .verify(password.clone(), hash.into_string())
        .await
        .unwrap();
    assert!(!verified.needs_rehash);
    assert_eq!(hasher.pool().in_flight(), 0);
    let reserved = hasher.reserve().unwrap();
    assert!(reserved.dummy_verify(password).await.is_mismatch());
    assert_eq!(hasher.pool().in_flight(), 0);
}

/// Password-history bypass: a flood that fills the hashing pool made every
/// history verification fail, and a server that read a failure as "not
/// this password" let a reused password through. `is_reused` answers only
/// from verifications that ran: a full pool is `Busy` (the caller refuses
/// the change), a mismatch is "new", a match anywhere in the history is
/// "reused", and an entry that can never be compared is skipped (or the
/// account could never change its password again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_check_fails_closed_on_a_full_pool_and_skips_corrupt_entries() {
    let hasher = AsyncHasher::new(PasswordHasher::new(), HashPool::with_limits(1, 0).unwrap());
    let old = SecretString::from("an old and reused passphrase");
    let stored = hasher.hasher().hash(&old).unwrap().into_string();
    let history = vec![
        "not-a-phc-string".to_owned(),
        hasher
            .hasher()
            .hash(&SecretString::from("another earlier passphrase"))
            .unwrap()
            .into_string(),
        stored,
    ];
    let held = hasher.reserve().unwrap();
    let busy = hasher.is_reused(old.clone(), history.clone()).await;
    assert_eq!(busy.unwrap_err().kind(), HashErrorKind::Busy);
    drop(held);
    assert!(
        hasher
            .is_reused(old.clone(), history.clone())
            .await
            .unwrap()
    );
    let new = SecretString::from("a brand new passphrase here");
    assert!(!hasher.is_reused(new, history.clone()).await.unwrap());
    // A check that could not run proves nothing either way.
    let too_long = SecretString::from("x".repeat(2000));
    assert_eq!(
        hasher
            .is_reused(too_long, history)
            .await
            .unwrap_err()
            .kind(),
        HashErrorKind::PasswordTooLong
    );
    assert_eq!(hasher.pool().in_flight(), 0);
}
