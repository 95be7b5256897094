//! Quotas (`100/minute`) and policies (several quotas decided together).

use std::time::Duration;

use serde::Deserialize;

use crate::clock::micros;
use crate::{ConfigError, ConfigErrorKind};

/// The most quotas one [`Policy`] may hold (burst, sustained, daily, and one
/// more): the stores keep their state inline, without an allocation per key.
pub const MAX_QUOTAS: usize = 4;

/// `limit` requests per `period`: up to `limit` at once, refilling at `limit`
/// per `period` (GCRA with a burst of `limit`, like governor's
/// `Quota::per_minute`).
///
/// Parses from `"100/minute"`, `"5/min"`, `"10 per second"`, `"1000/day"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Quota {
    limit: u32,
    period: Duration,
    /// GCRA's emission interval T (µs), computed once.
    interval: u64,
}

impl Quota {
    /// `limit` per `period`. Refused: a zero limit, and a period too short
    /// to give each request at least a microsecond.
    pub fn new(limit: u32, period: Duration) -> Result<Quota, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidQuota,
                "a quota's limit must be at least 1 (to block a route, do not route it)",
            ));
        }
        if micros(period) < u64::from(limit) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidQuota,
                format!("quota {limit} per {period:?} is finer than one request per microsecond"),
            ));
        }
        if period > Duration::from_secs(366 * 24 * 60 * 60) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidQuota,
                format!("quota period {period:?} is longer than a year"),
            ));
        }
        Ok(Quota {
            limit,
            period,
            interval: micros(period).div_ceil(u64::from(limit)),
        })
    }

    /// `limit` per second.
    pub fn per_second(limit: u32) -> Result<Quota, ConfigError> {
        Quota::new(limit, Duration::from_secs(1))
    }

    /// `limit` per minute.
    pub fn per_minute(limit: u32) -> Result<Quota, ConfigError> {
        Quota::new(limit, Duration::from_secs(60))
    }

    /// `limit` per hour.
    pub fn per_hour(limit: u32) -> Result<Quota, ConfigError> {
        Quota::new(limit, Duration::from_secs(3600))
    }

    /// `limit` per day.
    pub fn per_day(limit: u32) -> Result<Quota, ConfigError> {
        Quota::new(limit, Duration::from_secs(86_400))
    }

    /// Parses `N/unit` or `N per unit`, with the unit one of `s`, `sec`,
    /// `second(s)`, `m`, `min`, `minute(s)`, `h`, `hr`, `hour(s)`, `d`,
    /// `day(s)` (ASCII case-insensitive, spaces allowed around the separator).
    pub fn parse(text: &str) -> Result<Quota, ConfigError> {
        let bad = |why: &str| {
            ConfigError::new(
                ConfigErrorKind::InvalidQuota,
                format!(
                    "quota {:?} {why}; expected e.g. \"100/minute\" or \"10 per second\"",
                    text.chars().take(64).collect::<String>()
                ),
            )
        };
        let lower = text.trim().to_ascii_lowercase();
        let (count, unit) = lower
            .split_once('/')
            .or_else(|| lower.split_once(" per "))
            .ok_or_else(|| bad("has no '/' or 'per'"))?;
        let count = count.trim();
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("does not start with a whole number"));
        }
        let limit: u32 = count.parse().map_err(|_| bad("has a limit out of range"))?;
        let seconds = match unit.trim() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            _ => return Err(bad("has an unknown unit")),
        };
        Quota::new(limit, Duration::from_secs(seconds)).map_err(|error| bad(&error.to_string()))
    }

    /// Requests per period (also the burst).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// GCRA's emission interval T in microseconds: the time one request's
    /// worth of quota takes to come back. Rounded up, so the limiter never
    /// admits more than the quota says.
    pub(crate) fn emission_interval(&self) -> u64 {
        self.interval
    }

    /// T × limit: how far ahead of now the theoretical arrival time may run.
    pub(crate) fn capacity(&self) -> u64 {
        self.interval * u64::from(self.limit)
    }
}

impl std::str::FromStr for Quota {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Quota, ConfigError> {
        Quota::parse(text)
    }
}

impl TryFrom<String> for Quota {
    type Error = ConfigError;

    fn try_from(text: String) -> Result<Quota, ConfigError> {
        Quota::parse(&text)
    }
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = self.period.as_secs();
        match (seconds, self.period.subsec_nanos()) {
            (1, 0) => write!(f, "{}/second", self.limit),
            (60, 0) => write!(f, "{}/minute", self.limit),
            (3600, 0) => write!(f, "{}/hour", self.limit),
            (86_400, 0) => write!(f, "{}/day", self.limit),
            _ => write!(f, "{} per {:?}", self.limit, self.period),
        }
    }
}

/// One or more quotas decided together: a request is admitted only if every
/// quota admits it, and a refused request consumes none of them.
///
/// ```
/// use palisade_ratelimit::Policy;
///
/// // A burst of 10 per second, 100 per minute sustained, 1000 per day.
/// let policy = Policy::parse(["10/second", "100/minute", "1000/day"])?;
/// assert_eq!(policy.quotas().len(), 3);
/// # Ok::<(), palisade_ratelimit::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "Vec<Quota>")]
pub struct Policy {
    /// Shortest period first.
    quotas: Vec<Quota>,
}

impl Policy {
    /// A policy of these quotas (1 to [`MAX_QUOTAS`]).
    pub fn new(quotas: impl IntoIterator<Item = Quota>) -> Result<Policy, ConfigError> {
        let mut quotas: Vec<Quota> = quotas.into_iter().collect();
        if quotas.is_empty() || quotas.len() > MAX_QUOTAS {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidQuota,
                format!(
                    "a rate-limit policy needs 1 to {MAX_QUOTAS} quotas, not {}",
                    quotas.len()
                ),
            ));
        }
        quotas.sort_by_key(|quota| (quota.period, quota.limit));
        Ok(Policy { quotas })
    }

    /// Parses each quota string (see [`Quota::parse`]).
    pub fn parse<I>(quotas: I) -> Result<Policy, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let quotas = quotas
            .into_iter()
            .map(|text| Quota::parse(text.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Policy::new(quotas)
    }

    /// The quotas, shortest period first.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }

    /// The burst: the limit of the shortest quota.
    pub fn burst(&self) -> u32 {
        self.quotas.first().map_or(0, Quota::limit)
    }

    /// The largest cost one request can ever be admitted at: the smallest
    /// limit of the quotas (not always the shortest quota's: `100/second`
    /// with `5/minute` admits at most 5 at once).
    pub fn max_cost(&self) -> u32 {
        self.quotas.iter().map(Quota::limit).min().unwrap_or(0)
    }

    /// `cost` if a request of that cost can ever be admitted, else an
    /// [`InvalidCost`](ConfigErrorKind::InvalidCost) error: a cost above
    /// [`max_cost`](Self::max_cost) would be refused for ever, every retry
    /// told to come back later. Check a fixed cost with this when it is
    /// configured.
    ///
    /// ```
    /// use palisade_ratelimit::{ConfigErrorKind, Policy};
    ///
    /// let policy = Policy::parse(["10/second", "100/minute"])?;
    /// assert_eq!(policy.check_cost(10)?, 10);
    /// assert_eq!(policy.check_cost(11).unwrap_err().kind(), ConfigErrorKind::InvalidCost);
    /// # Ok::<(), palisade_ratelimit::ConfigError>(())
    /// ```
    pub fn check_cost(&self, cost: u32) -> Result<u32, ConfigError> {
        let max = self.max_cost();
        if cost > max {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidCost,
                format!(
                    "a request cost of {cost} can never be admitted: the policy's smallest limit is {max}"
                ),
            ));
        }
        Ok(cost)
    }
}

impl From<Quota> for Policy {
    fn from(quota: Quota) -> Policy {
        Policy {
            quotas: vec![quota],
        }
    }
}

impl TryFrom<Vec<Quota>> for Policy {
    type Error = ConfigError;

    fn try_from(quotas: Vec<Quota>) -> Result<Policy, ConfigError> {
        Policy::new(quotas)
    }
}
