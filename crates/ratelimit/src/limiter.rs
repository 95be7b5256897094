//! The limiter: a named policy over a store, with its failure rules and headers.

// The refusal *is* the envelope error the adapters send (144 bytes, moved
// once per refused request); boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use palisade_errors::{Error, ErrorKind, SecurityEvent, SubjectHash};
use serde::Deserialize;

use crate::breaker::{Breaker, BreakerConfig, Gate, Transition};
use crate::gcra::{Decision, Mode};
use crate::quota::{Policy, Quota};
use crate::store::RateStore;
use crate::{
    CheckError, Clock, ConfigError, ConfigErrorKind, FailMode, FastClock, MemoryStore, StoreError,
};

/// Which rate-limit headers responses carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderStyle {
    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10).
    #[default]
    Draft,
    /// `X-RateLimit-Limit`, `-Remaining`, `-Reset` (seconds until reset),
    /// for the most restrictive quota.
    Legacy,
    /// Like [`Legacy`](Self::Legacy) with `X-RateLimit-Reset` in Unix epoch seconds.
    LegacyEpoch,
    /// No rate-limit headers (a refusal still carries `Retry-After`).
    None,
}

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// A request the limiter let through, with the headers to add to its response.
#[derive(Clone, Debug)]
pub struct Admission {
    decision: Option<Decision>,
    headers: HeaderMap,
}

impl Admission {
    /// The decision, or `None` when the store failed and the limiter let the
    /// request through unmetered (an explicit [`FailMode::Open`]).
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// The rate-limit headers for the response.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A named [`Policy`] over a [`RateStore`].
///
/// Store calls go through a breaker ([`BreakerConfig`]): it opens on a
/// failure rate over a window, or at once when the store is unreachable,
/// never on one slow reply. A request whose store call failed or was skipped
/// is decided in a local [`MemoryStore`] fallback by default (each instance
/// still limits); [`FailMode::Open`] and [`FailMode::Closed`] only by choice.
///
/// ```
/// use palisade_ratelimit::{MemoryStore, Policy, RateLimiter};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let limiter = RateLimiter::new("api", Policy::parse(["2/second", "100/minute"])?, MemoryStore::default());
/// assert!(limiter.consume("ip4:203.0.113.7", 1).await.is_ok());
/// assert!(limiter.consume("ip4:203.0.113.7", 1).await.is_ok());
/// let refused = limiter.consume("ip4:203.0.113.7", 1).await.unwrap_err();
/// assert_eq!(refused.status(), 429);
/// assert_eq!(refused.headers()["retry-after"], "1");
/// # Ok::<(), palisade_ratelimit::ConfigError>(())
/// # }).unwrap();
/// ```
pub struct RateLimiter<S, C: Clock = FastClock> {
    name: Box<str>,
    /// Each quota's name in the draft headers, by (period, limit).
    quota_names: Box<[(Duration, u32, Box<str>)]>,
    policy: Policy,
    /// [`Policy::max_cost`], computed once.
    max_cost: u32,
    policy_header: Option<HeaderValue>,
    store: S,
    /// `None`: the memory fallback (the default); set only by choice.
    fail_mode: Option<FailMode>,
    fallback: Option<MemoryStore>,
    /// The fallback when none was given and no fail mode was chosen, made
    /// on the first store failure (a limiter whose store never fails never
    /// allocates it).
    default_fallback: OnceLock<MemoryStore>,
    /// The policy the fallback enforces when it holds a share of the limit
    /// ([`BreakerConfig::fallback_instances`] above 1).
    fallback_policy: Option<Policy>,
    headers: HeaderStyle,
    clock: C,
    /// Whether the store is asked: closed and quiet is one atomic load.
    breaker: Breaker,
    store_failures: AtomicU64,
    store_skips: AtomicU64,
}

impl<S, C: Clock> std::fmt::Debug for RateLimiter<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("fail_mode", &self.fail_mode)
            .finish_non_exhaustive()
    }
}

impl<S: RateStore> RateLimiter<S> {
    /// A limiter named `name` (part of every key, so two limiters never share
    /// state), falling back to local memory when the store fails, with draft
    /// headers.
    pub fn new(name: impl Into<String>, policy: Policy, store: S) -> RateLimiter<S> {
        RateLimiter::with_clock(name, policy, store, FastClock)
    }
}

impl<S: RateStore, C: Clock> RateLimiter<S, C> {
    /// A limiter whose own time (store cool-down, epoch reset header) comes
    /// from `clock`.
    pub fn with_clock(
        name: impl Into<String>,
        policy: Policy,
        store: S,
        clock: C,
    ) -> RateLimiter<S, C> {
        let name: String = name.into();
        let quota_names = quota_names(&sf_string_safe(&name), &policy);
        let policy_header = draft_policy_header(&quota_names);
        RateLimiter {
            name: name.into(),
            quota_names,
            max_cost: policy.max_cost(),
            policy,
            policy_header,
            store,
            fail_mode: None,
            fallback: None,
            default_fallback: OnceLock::new(),
            fallback_policy: None,
            headers: HeaderStyle::Draft,
            clock,
            breaker: Breaker::new(&BreakerConfig::default()),
            store_failures: AtomicU64::new(0),
            store_skips: AtomicU64::new(0),
        }
    }

    /// What to do when the store fails, instead of the default local memory
    /// fallback: [`FailMode::Open`] admits unmetered, [`FailMode::Closed`]
    /// answers 503. A store set with [`fallback`](Self::fallback) wins.
    #[must_use]
    pub fn fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = Some(fail_mode);
        self
    }

    /// The store breaker and failure policy ([`BreakerConfig`]; its
    /// `fail_mode`, when set, as [`fail_mode`](Self::fail_mode)). Fails on a
    /// setting out of its bounds.
    pub fn breaker(mut self, config: BreakerConfig) -> Result<Self, ConfigError> {
        config.check()?;
        self.breaker = Breaker::new(&config);
        if let Some(fail_mode) = config.fail_mode {
            self.fail_mode = Some(fail_mode);
        }
        self.fallback_policy = if config.fallback_instances > 1 {
            let shares = self.policy.quotas().iter().map(|quota| {
                Quota::new(
                    quota.limit().div_ceil(config.fallback_instances).max(1),
                    quota.period(),
                )
            });
            Some(Policy::new(shares.collect::<Result<Vec<_>, _>>()?)?)
        } else {
            None
        };
        Ok(self)
    }

    /// While the store is down, decide in this process's memory instead (each
    /// instance then enforces the limit on its own share of the traffic).
    #[must_use]
    pub fn fallback(mut self, memory: MemoryStore) -> Self {
        self.fallback = Some(memory);
        self
    }

    /// Which headers responses carry (default [`HeaderStyle::Draft`]).
    #[must_use]
    pub fn headers(mut self, style: HeaderStyle) -> Self {
        self.headers = style;
        self
    }

    /// How long the breaker stays open (the store is skipped) before one
    /// probe is let through (default 1 s; [`BreakerConfig::open_ms`]), so
    /// the limiter recovers by itself.
    #[must_use]
    pub fn store_cooldown(mut self, cooldown: Duration) -> Self {
        self.breaker.set_open_for(cooldown);
        self
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Calls to the store that failed.
    pub fn store_failures(&self) -> u64 {
        self.store_failures.load(Ordering::Relaxed)
    }

    /// Decisions made without asking the store because the breaker was open
    /// (each handled by the fallback or the fail mode).
    pub fn store_skips(&self) -> u64 {
        self.store_skips.load(Ordering::Relaxed)
    }

    /// `cost` if a request of that cost can ever be admitted
    /// ([`Policy::check_cost`]). Call it where a fixed cost is configured
    /// (an adapter's layer builder), so a cost above the smallest limit
    /// fails at start-up instead of at every request.
    pub fn check_cost(&self, cost: u32) -> Result<u32, ConfigError> {
        self.policy.check_cost(cost)
    }

    /// Admits a request of `cost` for `key` and spends the quota, or refuses
    /// it with a 429 envelope error (`Retry-After` and the rate-limit
    /// headers), spending nothing. When the store fails (or the breaker is
    /// open): the fallback store if set; else a chosen [`FailMode::Open`]
    /// admits unmetered and [`FailMode::Closed`] refuses with 503; else
    /// (the default) the local memory fallback decides. A timed-out call
    /// may still have been counted by the store: the fallback charges it
    /// too, so it is counted at least once, at most twice, never admitted
    /// uncounted.
    ///
    /// A cost above the smallest limit of the policy, which no wait could
    /// ever admit, is a configuration error (500 `internal`, logged as
    /// `sys_misconfigured`), never a 429 telling the client to retry.
    pub async fn consume(&self, key: &str, cost: u32) -> Result<Admission, Error> {
        if cost > self.max_cost {
            return Err(self.cost_error(cost).into());
        }
        match self.decide(key, cost, Mode::Consume).await {
            Ok(decision) => self.verdict(key, decision),
            Err(_) => self.on_store_failure(key, cost).await,
        }
    }

    /// What [`consume`](Self::consume) would decide, spending nothing. Fails
    /// with [`CheckError::Store`] when the store does, and with
    /// [`CheckError::Config`] for a cost above the smallest limit.
    pub async fn check(&self, key: &str, cost: u32) -> Result<Decision, CheckError> {
        if cost > self.max_cost {
            return Err(self.cost_error(cost).into());
        }
        Ok(self.decide(key, cost, Mode::Check).await?)
    }

    /// The error (and the event) for a cost no quota can ever admit.
    #[cold]
    fn cost_error(&self, cost: u32) -> ConfigError {
        let error = match self.policy.check_cost(cost) {
            Err(error) => error,
            // Unreachable: called only for a cost above `max_cost`.
            Ok(_) => ConfigError::new(ConfigErrorKind::InvalidCost, "a cost above the limit"),
        };
        tracing::error!(
            event = SecurityEvent::SysMisconfigured.as_str(),
            reason = "ratelimit_cost_above_limit",
            limiter = %self.name,
            cost,
            max_cost = self.max_cost,
            "request cost above the smallest limit: it can never be admitted"
        );
        error
    }

    /// Forgets `key` (e.g. after a successful CAPTCHA).
    pub async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let key = self.scoped(key);
        if let Some(fallback) = self.fallback.as_ref().or(self.default_fallback.get()) {
            fallback.reset_now(&key);
        }
        self.store.reset(&key).await
    }

    /// `<name length>.<name>:<key>`: the length prefix keeps limiter `a`
    /// with key `b:c` apart from limiter `a:b` with key `c`.
    fn scoped(&self, key: &str) -> String {
        // Built by hand, not with `format!`: it runs on every decision.
        let mut scoped = String::with_capacity(self.name.len() + key.len() + 8);
        scoped.push_str(itoa::Buffer::new().format(self.name.len()));
        scoped.push('.');
        scoped.push_str(&self.name);
        scoped.push(':');
        scoped.push_str(key);
        scoped
    }

    /// Asks the store, unless the breaker is open. Closed and quiet (the
    /// fast path), that is one atomic load: no clock, no counter.
    async fn decide(&self, key: &str, cost: u32, mode: Mode) -> Result<Decision, StoreError> {
        let gate = self.breaker.gate(|| self.clock.now().as_micros());
        if gate == Gate::Skip {
            self.store_skips.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::unavailable(
                "rate-limit store skipped: the breaker is open",
            ));
        }
        let result = self
            .store
            .decide(&self.scoped(key), &self.policy, cost, mode)
            .await;
        match &result {
            Ok(_) if gate == Gate::Quiet => {}
            Ok(_) => self.after_success(gate),
            Err(error) => self.after_failure(gate, error),
        }
        result
    }

    #[cold]
    fn after_success(&self, gate: Gate) {
        if self.breaker.on_success(gate) == Transition::Recovered {
            tracing::info!(
                event = SecurityEvent::StoreRecovered.as_str(),
                reason = "probe_succeeded",
                limiter = %self.name,
                "rate-limit store answers again; breaker closed"
            );
        }
    }

    #[cold]
    fn after_failure(&self, gate: Gate, error: &StoreError) {
        let failures = self.store_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let unreachable = error.kind() == palisade_errors::StoreErrorKind::Unavailable;
        let now = self.clock.now().as_micros();
        let (breaker, trigger) = match self.breaker.on_failure(gate, unreachable, now) {
            Transition::None | Transition::Recovered => return,
            Transition::FirstFailure => ("closed", "call_failed"),
            Transition::OpenedOnRate { .. } => ("open", "failure_rate"),
            Transition::OpenedUnreachable => ("open", "store_unreachable"),
        };
        tracing::warn!(
            event = SecurityEvent::StoreUnavailable.as_str(),
            reason = self.fail_reason(),
            breaker,
            trigger,
            limiter = %self.name,
            failures,
            store_error = error.kind().as_str(),
            %error,
            "rate-limit store failed"
        );
    }

    /// The store used while the store fails: the one given, else (no fail
    /// mode chosen) the default one.
    fn fallback_store(&self) -> Option<&MemoryStore> {
        match (&self.fallback, self.fail_mode) {
            (Some(fallback), _) => Some(fallback),
            (None, None) => Some(self.default_fallback.get_or_init(MemoryStore::new)),
            (None, Some(_)) => None,
        }
    }

    /// What a store failure makes this limiter do, as the `reason` of the
    /// `store_unavailable` event.
    fn fail_reason(&self) -> &'static str {
        match (self.fallback.is_some(), self.fail_mode) {
            (true, _) | (false, None) => "memory_fallback",
            (false, Some(FailMode::Open)) => "fail_open",
            (false, Some(FailMode::Closed)) => "fail_closed",
        }
    }

    /// A request whose store call failed or was skipped. The fallback is
    /// charged even when the store may have counted the call (a timeout
    /// after the script ran): counted twice at worst, never admitted
    /// uncounted.
    async fn on_store_failure(&self, key: &str, cost: u32) -> Result<Admission, Error> {
        if let Some(fallback) = self.fallback_store() {
            let policy = self.fallback_policy.as_ref().unwrap_or(&self.policy);
            let decision = fallback.decide_now(&self.scoped(key), policy, cost, Mode::Consume);
            return self.verdict(key, decision);
        }
        match self.fail_mode {
            Some(FailMode::Closed) => Err(Error::new(ErrorKind::Unavailable)),
            Some(FailMode::Open) | None => Ok(Admission {
                decision: None,
                headers: HeaderMap::new(),
            }),
        }
    }

    fn verdict(&self, key: &str, decision: Decision) -> Result<Admission, Error> {
        let headers = self.response_headers(&decision);
        if decision.allowed {
            return Ok(Admission {
                decision: Some(decision),
                headers,
            });
        }
        // The key names the client (IP, subject or API key id) the refusal
        // is about: its hash follows one client across events, and a client
        // address in it is logged as such. (Field values are computed only
        // when a subscriber takes the event.)
        tracing::info!(
            event = SecurityEvent::ExcessRateLimitExceeded.as_str(),
            reason = "quota_exhausted",
            limiter = %self.name,
            subject_hash = %SubjectHash::of(key),
            client_ip = crate::keys::client_ip_of(key),
            limit = decision.limit,
            "request refused by rate limit"
        );
        let mut error = Error::new(ErrorKind::RateLimited)
            .with_retry_after(decision.retry_after_secs().unwrap_or(1))
            .logged();
        for (name, value) in &headers {
            error = error.with_header(name.clone(), value.clone());
        }
        Err(error)
    }

    /// The draft-header name of the quota a decision reports.
    fn quota_name(&self, decision: &Decision) -> &str {
        self.quota_names
            .iter()
            .find(|(period, limit, _)| *period == decision.period && *limit == decision.limit)
            .or_else(|| self.quota_names.first())
            .map_or("", |(_, _, name)| name)
    }

    /// The headers for a decision, in the configured style.
    pub fn response_headers(&self, decision: &Decision) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self.headers {
            HeaderStyle::None => {}
            HeaderStyle::Draft => {
                if let Some(policy) = &self.policy_header {
                    headers.insert(RATELIMIT_POLICY.clone(), policy.clone());
                }
                // `"<name>";r=<remaining>;t=<seconds>`, built by hand and
                // handed over without a copy: it is sent on every answer.
                let name = self.quota_name(decision);
                let mut text = String::with_capacity(name.len() + 48);
                text.push('"');
                text.push_str(name);
                text.push_str("\";r=");
                text.push_str(itoa::Buffer::new().format(decision.remaining));
                text.push_str(";t=");
                text.push_str(itoa::Buffer::new().format(decision.reset_after_secs()));
                if let Ok(value) = HeaderValue::try_from(text) {
                    headers.insert(RATELIMIT.clone(), value);
                }
            }
            HeaderStyle::Legacy | HeaderStyle::LegacyEpoch => {
                headers.insert(X_RATELIMIT_LIMIT.clone(), HeaderValue::from(decision.limit));
                headers.insert(
                    X_RATELIMIT_REMAINING.clone(),
                    HeaderValue::from(decision.remaining),
                );
                let reset = if self.headers == HeaderStyle::LegacyEpoch {
                    self.clock
                        .now()
                        .saturating_add(decision.reset_after)
                        .as_secs_ceil()
                } else {
                    decision.reset_after_secs()
                };
                headers.insert(X_RATELIMIT_RESET.clone(), HeaderValue::from(reset));
            }
        }
        headers
    }
}

/// Each quota's name in the draft headers: the limiter's name and the exact
/// window (`api-60s`, `api-500ms`); where two quotas share a window, also
/// the limit (`api-1s-q10`, `api-1s-q20`), and where two are identical, their
/// rank (`api-1s-q10-2`). Names are unique within a policy.
fn quota_names(limiter: &str, policy: &Policy) -> Box<[(Duration, u32, Box<str>)]> {
    let quotas = policy.quotas();
    quotas
        .iter()
        .enumerate()
        .map(|(index, quota)| {
            let (period, limit) = (quota.period(), quota.limit());
            let mut name = format!("{limiter}-{}", window_name(period));
            if quotas
                .iter()
                .filter(|other| other.period() == period)
                .count()
                > 1
            {
                name.push_str(&format!("-q{limit}"));
                let rank = quotas
                    .iter()
                    .take(index)
                    .filter(|other| **other == *quota)
                    .count();
                if rank > 0 {
                    name.push_str(&format!("-{}", rank + 1));
                }
            }
            (period, limit, name.into_boxed_str())
        })
        .collect()
}

/// A period, exactly: `60s`, `500ms`, `1500us`.
fn window_name(period: Duration) -> String {
    if period.subsec_nanos() == 0 {
        format!("{}s", period.as_secs())
    } else if period.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", period.as_millis())
    } else {
        format!("{}us", period.as_micros())
    }
}

/// The names in the draft headers are structured-field strings: characters
/// outside printable ASCII, `"` and `\` are replaced.
fn sf_string_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `RateLimit-Policy: "api-1s";q=10;w=1, "api-60s";q=100;w=60`. The window
/// `w` is whole seconds; a quota whose period is not (`500 ms`) has none
/// rather than a wrong one, and its name says the exact window.
fn draft_policy_header(quotas: &[(Duration, u32, Box<str>)]) -> Option<HeaderValue> {
    let items: Vec<String> = quotas
        .iter()
        .map(|(period, limit, name)| {
            if period.subsec_nanos() == 0 {
                format!("\"{name}\";q={limit};w={}", period.as_secs())
            } else {
                format!("\"{name}\";q={limit}")
            }
        })
        .collect();
    HeaderValue::from_str(&items.join(", ")).ok()
}
