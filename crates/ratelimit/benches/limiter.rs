//! Palisade's limiter against its peers, in one run (`cargo xtask bench`
//! prints the criterion ratios; this binary prints the memory and Redis
//! ratios itself):
//!
//! - a keyed memory decision vs governor's keyed limiter, 10k keys, 1 and 2
//!   threads (goal ≤ 1.0×);
//! - memory per key at 1M keys, counted by the allocator, filled once and
//!   under churn at the cap (goal ≤ 128 B);
//! - Redis decisions/s at 50 concurrent tasks vs `redis-benchmark -c 50` of
//!   `EVALSHA` on the same script (goal ≥ 70 %).

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on stdout

use std::alloc::System;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota as GovernorQuota, RateLimiter as Governor};
use palisade_ratelimit::{MemoryStore, Mode, Policy, RateStore, RedisStore};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KEYS: usize = 10_000;

fn keys(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("ip4:10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
        .collect()
}

fn policy() -> Policy {
    // High enough that every decision admits: both sides do the same work.
    Policy::parse(["1000000/second"]).unwrap()
}

fn governor_quota() -> GovernorQuota {
    GovernorQuota::per_second(NonZeroU32::new(1_000_000).unwrap())
}

fn keyed_decisions(c: &mut Criterion) {
    let keys = keys(KEYS);
    let policy = policy();
    let store = MemoryStore::new().with_max_entries(1_000_000);
    let governor = Governor::keyed(governor_quota());
    for key in &keys {
        store.decide_now(key, &policy, 1, Mode::Consume);
        let _ = governor.check_key(key);
    }

    let mut group = c.benchmark_group("keyed_decision_10k_1_thread");
    let mut index = 0;
    group.bench_function("palisade", |b| {
        b.iter(|| {
            index = (index + 1) % KEYS;
            black_box(store.decide_now(&keys[index], &policy, 1, Mode::Consume));
        });
    });
    let mut index = 0;
    group.bench_function("peer", |b| {
        b.iter(|| {
            index = (index + 1) % KEYS;
            black_box(governor.check_key(&keys[index]).is_ok());
        });
    });
    group.finish();

    // Two threads deciding at once: contention on the shards / the map.
    let mut group = c.benchmark_group("keyed_decision_10k_2_threads");
    group.bench_function("palisade", |b| {
        b.iter_custom(|iterations| {
            two_threads(iterations, |i| {
                black_box(store.decide_now(&keys[i % KEYS], &policy, 1, Mode::Consume));
            })
        });
    });
    group.bench_function("peer", |b| {
        b.iter_custom(|iterations| {
            two_threads(iterations, |i| {
                black_box(governor.check_key(&keys[i % KEYS]).is_ok());
            })
        });
    });
    group.finish();
}

/// `iterations` decisions split over two threads; the time per decision is
/// wall time / iterations (so 2 threads that scale report half the time).
fn two_threads(iterations: u64, decide: impl Fn(usize) + Sync) -> Duration {
    let per_thread = usize::try_from(iterations / 2).unwrap().max(1);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..2 {
            let decide = &decide;
            scope.spawn(move || {
                for i in 0..per_thread {
                    decide(i * 2 + thread);
                }
            });
        }
    });
    started.elapsed()
}

/// Bytes per key at 1M keys, as the allocator counts them (both sides hold
/// the same 1M distinct keys).
fn memory_per_key() {
    const MILLION: usize = 1_000_000;
    let keys = keys(3 * MILLION);
    let policy = Policy::parse(["10/second", "100/minute", "1000/day"]).unwrap();

    let region = Region::new(GLOBAL);
    let store = MemoryStore::default();
    for key in &keys[..MILLION] {
        store.decide_now(key, &policy, 1, Mode::Consume);
    }
    let stats = region.change();
    let palisade = (stats.bytes_allocated - stats.bytes_deallocated) as f64 / MILLION as f64;
    assert_eq!(store.stats().lossy_evictions, 0);
    // Churn at the cap: 2M more keys, each evicting a live one (removals
    // leave tombstones in full tables; the store rebuilds instead of
    // letting the next insert double a table).
    for key in &keys[MILLION..] {
        store.decide_now(key, &policy, 1, Mode::Consume);
    }
    let stats = region.change();
    let churn = (stats.bytes_allocated - stats.bytes_deallocated) as f64 / MILLION as f64;

    let region = Region::new(GLOBAL);
    let governor = Governor::keyed(governor_quota());
    for key in &keys[..MILLION] {
        let _ = governor.check_key(key);
    }
    let stats = region.change();
    let peer = (stats.bytes_allocated - stats.bytes_deallocated) as f64 / MILLION as f64;
    println!(
        "memory per key at 1M keys: palisade {palisade:.1} B (3 quotas, key hashed), governor {peer:.1} B (1 quota, key String kept) — ratio {:.2}x, goal <= 128 B",
        palisade / peer
    );
    println!(
        "memory per key under churn (MemoryStore::default() at its 1M cap, 2M more keys): palisade {churn:.1} B, goal <= 128 B"
    );
    drop((store, governor));
}

/// Redis decisions per second from 50 concurrent tasks, against
/// `redis-benchmark -c 50` calling the same script by SHA.
fn redis_throughput() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The connection manager spawns its driver on the current runtime.
    let _context = runtime.enter();
    let store = match RedisStore::connect_lazy("redis://127.0.0.1:6379/0") {
        Ok(store) => store
            .with_key_prefix("palisade-bench")
            .unwrap()
            .with_timeout(Duration::from_millis(200)),
        Err(error) => {
            println!("redis throughput: skipped ({error})");
            return;
        }
    };
    let store = Arc::new(store);
    let policy = Arc::new(policy());
    if let Err(error) = runtime.block_on(store.decide("warm", &policy, 1, Mode::Consume)) {
        println!("redis throughput: skipped, Redis unreachable ({error})");
        return;
    }
    const TOTAL: usize = 100_000;
    const TASKS: usize = 50;
    let started = Instant::now();
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let store = Arc::clone(&store);
            let policy = Arc::clone(&policy);
            tasks.push(tokio::spawn(async move {
                for i in 0..TOTAL / TASKS {
                    let key = format!("k{}", (task * 7919 + i) % KEYS);
                    store.decide(&key, &policy, 1, Mode::Consume).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    let palisade = TOTAL as f64 / started.elapsed().as_secs_f64();

    // The same script, by SHA, from redis-benchmark's 50 connections: one
    // request in flight per connection (-P 1), and pipelined 10 deep
    // (-P 10), which is closer to what a multiplexed connection does.
    let quota = policy.quotas()[0];
    let interval = quota.period().as_micros() as u64 / u64::from(quota.limit());
    let key = store.redis_key("k-redis-benchmark");
    for pipeline in ["1", "10"] {
        let output = Command::new("redis-benchmark")
            .args([
                "-n",
                &TOTAL.to_string(),
                "-c",
                "50",
                "-P",
                pipeline,
                "-q",
                "EVALSHA",
            ])
            .args([store.script_sha(), "1", &key, "1", "1", "1"])
            .arg(interval.to_string())
            .arg((interval * u64::from(quota.limit())).to_string())
            .output();
        let peer = output.ok().and_then(|output| {
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            // "EVALSHA ...: 85470.09 requests per second, p50=..."
            let before = text.rsplit_once(" requests per second")?.0.to_owned();
            before
                .rsplit([' ', '\r'])
                .next()?
                .trim()
                .parse::<f64>()
                .ok()
        });
        match peer {
            Some(peer) => println!(
                "redis decisions/s at 50 tasks: palisade {palisade:.0}/s vs redis-benchmark -c 50 -P {pipeline} EVALSHA {peer:.0}/s = {:.0} %, goal >= 70 %",
                100.0 * palisade / peer
            ),
            None => println!(
                "redis decisions/s at 50 tasks: palisade {palisade:.0}/s (redis-benchmark not available)"
            ),
        }
    }
}

/// Bytes per entry of the default login memory store (1M entries), filled
/// by one failed attempt each from 500k accounts and addresses (an address,
/// a pair and an account entry each: past the cap, so it churns too).
fn login_memory_per_entry() {
    use palisade_ratelimit::login::{LoginThrottle, LoginThrottleConfig, MemoryLoginStore};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let region = Region::new(GLOBAL);
    let throttle =
        LoginThrottle::new(MemoryLoginStore::new(), LoginThrottleConfig::default()).unwrap();
    runtime.block_on(async {
        for i in 0..500_000u32 {
            let ip = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let account = format!("user{i}@example.com");
            let _ = throttle.check(&account, ip, None).await;
            throttle.record_failure(&account, ip).await;
        }
    });
    let stats = region.change();
    let entries = throttle.store().len();
    let bytes = (stats.bytes_allocated - stats.bytes_deallocated) as f64;
    println!(
        "login memory store (MemoryLoginStore::new(), cap 1M) at {entries} entries: {:.1} MB, {:.1} B/entry",
        bytes / 1e6,
        bytes / entries as f64
    );
}

fn reports(_: &mut Criterion) {
    memory_per_key();
    login_memory_per_entry();
    redis_throughput();
}

criterion_group!(benches, keyed_decisions, reports);
criterion_main!(benches);
