//! Running wrk and reading its report.

use std::path::Path;
use std::process::{Command, Stdio};

use super::process::Service;
use super::{CONNECTIONS, PROBE_CONNECTIONS, THREADS, WARM_UP_SECONDS};
use crate::Result;

/// What one wrk run measured.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct WrkStats {
    pub(super) requests: u64,
    pub(super) requests_per_second: f64,
    /// wrk's "Non-2xx or 3xx responses" (it counts statuses above 399).
    pub(super) non_2xx: u64,
    pub(super) socket_errors: Option<String>,
    pub(super) p50_ms: Option<f64>,
    pub(super) p99_ms: Option<f64>,
    /// The login flood's `login statuses: 200=… 429=…` line.
    pub(super) statuses: Option<String>,
}

/// Reads wrk's report (with or without `--latency`).
pub(super) fn parse_wrk(text: &str) -> Result<WrkStats> {
    let mut stats = WrkStats::default();
    let mut seen_rate = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            stats.requests_per_second = rate
                .trim()
                .parse()
                .map_err(|_| format!("wrk: bad rate line {line:?}"))?;
            seen_rate = true;
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            stats.non_2xx = count
                .trim()
                .parse()
                .map_err(|_| format!("wrk: bad line {line:?}"))?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            stats.socket_errors = Some(errors.trim().to_owned());
        } else if let Some(p50) = line.strip_prefix("50%") {
            stats.p50_ms = parse_wrk_duration_ms(p50.trim());
        } else if let Some(p99) = line.strip_prefix("99%") {
            stats.p99_ms = parse_wrk_duration_ms(p99.trim());
        } else if let Some(statuses) = line.strip_prefix("login statuses:") {
            stats.statuses = Some(statuses.trim().to_owned());
        } else if line.contains(" requests in ") {
            stats.requests = line
                .split_whitespace()
                .next()
                .and_then(|count| count.parse().ok())
                .ok_or_else(|| format!("wrk: bad line {line:?}"))?;
        }
    }
    if !seen_rate {
        return Err(format!("wrk: no Requests/sec line in its output:\n{text}"));
    }
    Ok(stats)
}

/// `250.00us`, `1.25ms`, `2.00s`, `1.00m` in milliseconds.
fn parse_wrk_duration_ms(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(number) = text.strip_suffix("us") {
        (number, 0.001)
    } else if let Some(number) = text.strip_suffix("ms") {
        (number, 1.0)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1_000.0)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000.0)
    } else if let Some(number) = text.strip_suffix('h') {
        (number, 3_600_000.0)
    } else {
        return None;
    };
    number.trim().parse::<f64>().ok().map(|value| value * scale)
}

/// Runs wrk with `args`, failing when it fails, gets no answer, or gets a
/// non-2xx answer where 200 is expected.
fn wrk(label: &str, args: &[String]) -> Result<WrkStats> {
    let output = Command::new("wrk")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("{label}: could not start wrk: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("{label}: wrk failed ({}):\n{text}", output.status));
    }
    let stats = parse_wrk(&text).map_err(|error| format!("{label}: {error}"))?;
    if stats.requests == 0 {
        return Err(format!("{label}: no request completed:\n{text}"));
    }
    if stats.non_2xx > 0 {
        return Err(format!(
            "{label}: {} of {} answers were not 2xx (every one should be 200):\n{text}",
            stats.non_2xx, stats.requests
        ));
    }
    Ok(stats)
}

/// A warm-up, then a measured closed-loop run of `path` (with a script and
/// its one argument file, if given).
pub(super) fn throughput(
    service: &Service,
    path: &str,
    script: Option<(&Path, &Path)>,
    seconds: u64,
) -> Result<WrkStats> {
    let label = format!("{} GET {path}", service.name);
    let args = |seconds: u64| {
        let mut args = vec![
            format!("-t{THREADS}"),
            format!("-c{CONNECTIONS}"),
            format!("-d{seconds}s"),
            "--latency".to_owned(),
        ];
        if let Some((script, _)) = script {
            args.extend(["-s".to_owned(), script.display().to_string()]);
        }
        args.push(service.url(path));
        if let Some((_, argument)) = script {
            args.extend(["--".to_owned(), argument.display().to_string()]);
        }
        args
    };
    eprintln!("xtask: == {label}: {WARM_UP_SECONDS}s warm-up, {seconds}s measured");
    wrk(&format!("{label} (warm-up)"), &args(WARM_UP_SECONDS))?;
    let stats = wrk(&label, &args(seconds))?;
    eprintln!(
        "xtask: {label}: {:.0} requests/s, p99 {}",
        stats.requests_per_second,
        format_ms(stats.p99_ms)
    );
    Ok(stats)
}

/// The paced `/health/live` probe (see `probe.lua`), with `--latency`.
pub(super) fn latency_probe(
    service: &Service,
    script: &Path,
    seconds: u64,
    when: &str,
) -> Result<WrkStats> {
    let label = format!("{} GET /health/live p99 {when}", service.name);
    eprintln!("xtask: == {label}");
    let stats = wrk(
        &label,
        &[
            "-t1".to_owned(),
            format!("-c{PROBE_CONNECTIONS}"),
            format!("-d{seconds}s"),
            "--latency".to_owned(),
            "-s".to_owned(),
            script.display().to_string(),
            service.url("/health/live"),
        ],
    )?;
    eprintln!(
        "xtask: {label}: p50 {}, p99 {} ({:.0} requests/s)",
        format_ms(stats.p50_ms),
        format_ms(stats.p99_ms),
        stats.requests_per_second
    );
    Ok(stats)
}

pub(super) fn format_ms(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms < 1.0 => format!("{:.0} µs", ms * 1000.0),
        Some(ms) => format!("{ms:.2} ms"),
        None => "n/a".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_REPORT: &str = "Running 10s test @ http://127.0.0.1:8080/health/live
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.05ms  30.12ms   90.12%
    Req/Sec    15.42k     1.20k   18.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    2.50ms
     90%    3.10ms
     99%    5.20ms
  306912 requests in 10.00s, 40.12MB read
  Socket errors: connect 0, read 12, write 0, timeout 0
  Non-2xx or 3xx responses: 3
Requests/sec:  30690.12
Transfer/sec:      4.01MB
login statuses: 200=250 429=9000 503=1200
";

    #[test]
    fn wrk_report_yields_rate_percentiles_errors_and_statuses() {
        let stats = parse_wrk(WRK_REPORT).expect("a complete report");
        assert_eq!(stats.requests, 306_912);
        assert!((stats.requests_per_second - 30_690.12).abs() < 1e-6);
        assert_eq!(stats.non_2xx, 3);
        assert_eq!(
            stats.socket_errors.as_deref(),
            Some("connect 0, read 12, write 0, timeout 0")
        );
        assert_eq!(stats.p50_ms, Some(0.812));
        assert_eq!(stats.p99_ms, Some(5.2));
        assert_eq!(stats.statuses.as_deref(), Some("200=250 429=9000 503=1200"));
    }

    #[test]
    fn a_report_without_a_rate_is_an_error_not_zero() {
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }

    #[test]
    fn wrk_durations_in_every_unit() {
        assert_eq!(parse_wrk_duration_ms("250.00us"), Some(0.25));
        assert_eq!(parse_wrk_duration_ms("1.50ms"), Some(1.5));
        assert_eq!(parse_wrk_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_wrk_duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(parse_wrk_duration_ms("fast"), None);
    }
}
