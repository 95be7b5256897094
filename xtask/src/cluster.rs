//! A private Redis Cluster for the tests: six `redis-server`s (three
//! masters, three replicas) on free local ports, made a cluster with
//! `redis-cli --cluster create`, stopped (exactly the processes started
//! here) when the [`Cluster`] is dropped.
//!
//! Self-contained (std only), so tests that need a cluster of their own —
//! the failover drill kills a master — include it with
//! `#[path = "../../../xtask/src/cluster.rs"] mod cluster;`.

// Each includer uses its own part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Errors are messages for the person running the checks.
type Result<T = ()> = std::result::Result<T, String>;

/// Nodes: three masters, each with one replica.
const NODES: usize = 6;
/// Low enough that the failover drill promotes a replica in a few seconds.
const NODE_TIMEOUT_MS: u32 = 2_000;

/// A running private cluster; dropping it stops its servers.
pub struct Cluster {
    children: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl Cluster {
    /// The nodes' ports, in start order (masters and replicas are assigned
    /// by `redis-cli`; ask `CLUSTER NODES` which is which).
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Stops the node on `port` at once (`SIGKILL`: a crash, no failover
    /// handshake), leaving the others running.
    pub fn kill(&mut self, port: u16) -> Result {
        let index = self
            .ports
            .iter()
            .position(|&node| node == port)
            .ok_or_else(|| format!("no node on port {port}"))?;
        let child = &mut self.children[index];
        child
            .kill()
            .map_err(|error| format!("killing node {port}: {error}"))?;
        let _ = child.wait();
        Ok(())
    }
}

impl Cluster {
    /// `redis+cluster://127.0.0.1:p1,…`: the URL every Palisade store and
    /// the reference service accept.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port that is free, with its cluster bus port (`port + 10000`) free too.
fn free_port(taken: &[u16]) -> Result<u16> {
    for _ in 0..200 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|error| format!("no free port: {error}"))?
            .port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if taken.contains(&port) || taken.iter().any(|&other| other + 10_000 == port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port pair for a cluster node".to_owned())
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) -> Result {
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what}: not ready after {limit:?}"))
}

/// Starts the cluster, its files under `parent` (removed when it stops),
/// and waits until every node reports `cluster_state:ok` and they agree on
/// three masters with a replica each.
pub fn start(parent: &Path) -> Result<Cluster> {
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = parent.join("redis-cluster").join(format!(
        "{}-{}",
        std::process::id(),
        STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let mut cluster = Cluster {
        children: Vec::new(),
        ports: Vec::new(),
        dir,
    };
    for _ in 0..NODES {
        let port = free_port(&cluster.ports)?;
        let node_dir = cluster.dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir)
            .map_err(|error| format!("{}: {error}", node_dir.display()))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("starting redis-server: {error}"))?;
        cluster.children.push(child);
        cluster.ports.push(port);
    }
    for &port in &cluster.ports {
        wait_for(
            &format!("redis-server on {port}"),
            Duration::from_secs(10),
            || redis_cli(port, &["ping"]).is_some_and(|reply| reply.trim() == "PONG"),
        )?;
    }
    let nodes: Vec<String> = cluster
        .ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    let created = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&nodes)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|error| format!("redis-cli --cluster create: {error}"))?;
    if !created.success() {
        return Err(format!("redis-cli --cluster create failed ({created})"));
    }
    let ports = cluster.ports.clone();
    wait_for("cluster_state:ok", Duration::from_secs(30), || {
        ports.iter().all(|&port| {
            redis_cli(port, &["cluster", "info"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
        }) && redis_cli(ports[0], &["cluster", "nodes"]).is_some_and(|nodes| {
            nodes.lines().filter(|line| line.contains("master")).count() == 3
                && nodes.lines().filter(|line| line.contains("slave")).count() == 3
        })
    })?;
    // Replicas still in their first sync acknowledge nothing: a revocation
    // (written with `WAIT 1`) would time out until they are in sync.
    wait_for("replicas in sync", Duration::from_secs(30), || {
        ports.iter().all(|&port| {
            redis_cli(port, &["info", "replication"]).is_some_and(|info| {
                info.contains("role:master") || info.contains("master_link_status:up")
            })
        })
    })?;
    Ok(cluster)
}

/// Whether the machine can run a cluster at all (`redis-server` and
/// `redis-cli` on the PATH).
pub fn available() -> bool {
    ["redis-server", "redis-cli"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}
