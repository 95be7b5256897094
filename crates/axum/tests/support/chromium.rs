//! Headless Chromium for the browser tests (`browser.rs`,
//! `browser_refresh.rs`): finding it, and loading a page in a fresh profile.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The Chromium binary, or `None` to skip the test; under `CI=true` a
/// missing Chromium fails the test instead (CI installs it).
#[allow(clippy::print_stderr)] // a test helper: the skip is reported on stderr
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Chromium is required under CI=true (apt-get install chromium)"
        );
        eprintln!("skipping: Chromium is not installed");
    }
    found
}

/// Loads `url` in a fresh headless Chromium profile and returns the DOM after
/// the page's scripts settled (`virtual_time_ms` of virtual time, 90 s of
/// real time at most).
pub fn dump_dom(browser: &PathBuf, url: &str, virtual_time_ms: u32) -> String {
    static PROFILES: AtomicU32 = AtomicU32::new(0);
    let profile = std::env::temp_dir().join(format!(
        "palisade-chromium-{}-{}",
        std::process::id(),
        PROFILES.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&profile);
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--dump-dom",
        ])
        .arg(format!("--virtual-time-budget={virtual_time_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("chromium runs").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish loading {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("chromium output");
    let _ = std::fs::remove_dir_all(profile);
    String::from_utf8_lossy(&output.stdout).into_owned()
}
