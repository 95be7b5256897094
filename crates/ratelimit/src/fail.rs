use serde::Deserialize;

/// What a limiter does when its store cannot answer (Redis down or slow),
/// when chosen: a [`RateLimiter`](crate::RateLimiter) given neither a fail
/// mode nor a fallback decides in a local memory fallback (each instance
/// still limits); the login throttle fails closed by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Let the request through unmetered, log a warning and count it: an
    /// outage of the limiter's store does not become an outage of the API,
    /// nor is anything limited. Only by explicit choice.
    Open,
    /// Refuse with 503 `unavailable`: for limits that guard against
    /// brute force (logins, password resets), where letting everything
    /// through while Redis is down is exactly what an attacker wants.
    Closed,
}
