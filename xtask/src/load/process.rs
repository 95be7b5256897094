//! The services under test and the wrk flood: processes this run started,
//! each stopped when its guard drops (on error too).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::http;
use crate::Result;

pub(super) fn free_port() -> Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("finding a free port: {error}"))
}

/// A process this run started: stopped when dropped (SIGTERM, so uvicorn
/// stops its workers and the server drains; SIGKILL after 10 s).
pub(super) struct Guard {
    name: &'static str,
    child: Child,
}

impl Guard {
    pub(super) fn spawn(name: &'static str, mut command: Command) -> Result<Guard> {
        let child = command
            .spawn()
            .map_err(|error| format!("{name}: could not start {command:?}: {error}"))?;
        Ok(Guard { name, child })
    }

    pub(super) fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        self.child
            .try_wait()
            .map_err(|error| format!("{}: {error}", self.name))
    }

    pub(super) fn wait(&mut self) -> Result<std::process::ExitStatus> {
        self.child
            .wait()
            .map_err(|error| format!("{}: {error}", self.name))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break,
            }
        }
        eprintln!("xtask: {} did not stop on SIGTERM: killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service under test, listening on `addr`, its output in a log file.
pub(super) struct Service {
    pub(super) name: &'static str,
    pub(super) addr: SocketAddr,
    pub(super) log: PathBuf,
    pub(super) process: Guard,
}

impl Service {
    /// Starts `command` with `PALISADE_ADDR` set to a free port.
    pub(super) fn start(name: &'static str, mut command: Command, out: &Path) -> Result<Service> {
        let addr = free_port()?;
        command.env("PALISADE_ADDR", addr.to_string());
        Service::start_at(name, command, addr, out)
    }

    /// Starts `command`, which listens on `addr`.
    pub(super) fn start_at(
        name: &'static str,
        mut command: Command,
        addr: SocketAddr,
        out: &Path,
    ) -> Result<Service> {
        let log = out.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .map_err(|error| format!("creating {}: {error}", log.display()))?;
        let copy = file
            .try_clone()
            .map_err(|error| format!("{}: {error}", log.display()))?;
        command.stdin(Stdio::null()).stdout(copy).stderr(file);
        let process = Guard::spawn(name, command)?;
        Ok(Service {
            name,
            addr,
            log,
            process,
        })
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits for `GET /health/live` to answer 200 (60 s at most), failing
    /// at once if the process exits.
    pub(super) fn wait_ready(&mut self) -> Result {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.try_wait()? {
                return Err(format!(
                    "{} exited before it was ready ({status}); its log: {}",
                    self.name,
                    self.log.display()
                ));
            }
            if http(self.addr, "GET", "/health/live", &[], None)
                .is_ok_and(|reply| reply.status == 200)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not answer 200 on /health/live within 60 s; its log: {}",
                    self.name,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the process now, failing loudly in the log if it had died.
    pub(super) fn stop(mut self) {
        if let Ok(Some(status)) = self.process.try_wait() {
            eprintln!(
                "xtask: {} had exited during the run ({status}); its log: {}",
                self.name,
                self.log.display()
            );
        }
        drop(self);
    }
}
