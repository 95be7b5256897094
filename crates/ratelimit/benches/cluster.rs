//! Redis decisions per second at 50 concurrent tasks on a private
//! 3-master Redis Cluster against the single node (127.0.0.1:6379), in one
//! run, as a ratio (issue 18). `cargo xtask bench` runs it with the other
//! benches; it prints its own line:
//!
//! ```text
//! cargo bench -p palisade-ratelimit --features redis --bench cluster
//! ```
//!
//! The cluster is started here (xtask's `cluster.rs`: six `redis-server`s
//! on free local ports, three masters with a replica each) and stopped at
//! the end. Without `redis-server`/`redis-cli`, or without the single node,
//! it says "skipped". Both sides run the same decisions (the production
//! script, 10,000 keys spread over every slot, one multiplexed connection
//! per node) on the same machine: on a small machine the six servers and
//! the client share its cores, so the ratio is a floor, not what separate
//! hosts would give.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a benchmark reports on stdout

#[path = "../../../xtask/src/cluster.rs"]
mod cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use palisade_ratelimit::{Mode, Policy, RateStore, RedisStore};

const TASKS: usize = 50;
const KEYS: usize = 10_000;
/// Decisions per side; each side also gets a warm-up of a tenth of that.
const TOTAL: usize = 100_000;

/// Decisions per second of `TASKS` tasks sharing `store`.
async fn throughput(store: RedisStore, total: usize) -> Result<f64, String> {
    let store = Arc::new(store);
    // High enough that every decision admits: both sides do the same work.
    let policy = Arc::new(Policy::parse(["1000000/second"]).unwrap());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = Arc::clone(&store);
        let policy = Arc::clone(&policy);
        tasks.push(tokio::spawn(async move {
            for i in 0..total / TASKS {
                let key = format!("k{}", (task * 7919 + i) % KEYS);
                store
                    .decide(&key, &policy, 1, Mode::Consume)
                    .await
                    .map_err(|error| error.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|error| error.to_string())??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn measure(url: &str) -> Result<f64, String> {
    let store = RedisStore::connect(url)
        .await
        .map_err(|error| error.to_string())?
        .with_key_prefix("palisade-bench:cluster")
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    throughput(store.clone(), TOTAL / 10).await?;
    throughput(store, TOTAL).await
}

fn main() {
    if !cluster::available() {
        println!("redis cluster decisions/s: skipped (no redis-server/redis-cli)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let single = match runtime.block_on(measure("redis://127.0.0.1:6379/0")) {
        Ok(rate) => rate,
        Err(error) => {
            println!("redis cluster decisions/s: skipped, no single node at 6379 ({error})");
            return;
        }
    };
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::PathBuf::from("target"),
        std::path::PathBuf::from,
    );
    let started = Instant::now();
    let cluster = match cluster::start(&target) {
        Ok(cluster) => cluster,
        Err(error) => {
            println!("redis cluster decisions/s: skipped, the cluster did not start ({error})");
            return;
        }
    };
    let up = started.elapsed();
    let clustered = runtime.block_on(measure(&cluster.url()));
    drop(cluster);
    match clustered {
        Ok(clustered) => println!(
            "redis decisions/s at {TASKS} tasks: cluster (3 masters, 3 replicas, up in {up:.1?}) \
             {clustered:.0}/s vs single node {single:.0}/s = {:.2}x",
            clustered / single
        ),
        Err(error) => println!("redis cluster decisions/s: failed on the cluster ({error})"),
    }
}
