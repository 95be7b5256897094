//! A `redis-server` of one test only, on a free port, without persistence:
//! for the fault tests that kill Redis and start it again empty (a restart
//! that lost its data). A test file includes it with
//! `#[path = "../../../tests/private_redis.rs"] mod private_redis;`.
//! Under `CI=true` a missing `redis-server` fails the test instead of
//! skipping it.

#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)] // test support: each includer uses its part; a panic is the failure report

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server; killed when dropped.
pub struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    /// A fresh server on a free port, or `None` (skip) without the binary
    /// outside CI.
    pub fn start() -> Option<PrivateRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = PrivateRedis::spawn(port)?;
        let redis = PrivateRedis {
            child: Some(child),
            port,
        };
        redis.wait_ready();
        Some(redis)
    }

    fn spawn(port: u16) -> Option<Child> {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => Some(child),
            Err(error) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "redis-server is required under CI=true: {error}"
                );
                eprintln!("skipping: no redis-server binary: {error}");
                None
            }
        }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            let pong = client
                .get_connection()
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            if pong.is_ok() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "private redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server: everything it held is lost (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts a new, empty server on the same port.
    pub fn start_again(&mut self) {
        let started = Instant::now();
        loop {
            // The port may linger for a moment after the kill.
            let mut child = PrivateRedis::spawn(self.port).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            if child.try_wait().unwrap().is_none() {
                self.child = Some(child);
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no restart");
        }
        self.wait_ready();
    }

    /// [`kill`](Self::kill), then [`start_again`](Self::start_again).
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Redis' clock, in seconds.
    pub fn now(&self) -> u64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        let (seconds, _micros): (u64, u64) = redis::cmd("TIME").query(&mut connection).unwrap();
        seconds
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
