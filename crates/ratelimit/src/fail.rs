use serde::Deserialize;

/// What a limiter does when its store cannot answer (Redis down or slow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Let the request through, log a warning and count it: an outage of the
    /// limiter's store does not become an outage of the API. The default for
    /// plain request limits.
    Open,
    /// Refuse with 503 `unavailable`: for limits that guard against
    /// brute force (logins, password resets), where letting everything
    /// through while Redis is down is exactly what an attacker wants.
    Closed,
}
