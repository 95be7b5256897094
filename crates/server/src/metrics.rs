//! `GET /metrics`: Prometheus text (written with `prometheus-client`).
//!
//! | series | labels | counted by |
//! |---|---|---|
//! | `http_requests_total` | `route` (the route template, `unmatched` when no route matched), `method`, `status` | [`TrackLayer`], the outermost layer |
//! | `http_request_duration_seconds` (histogram) | `route` | [`TrackLayer`] |
//! | `security_events_total` | `event` (the shared vocabulary of `palisade-errors`) | [`Metrics::event_layer`], a tracing layer |
//! | `security_alerts_total` | `kind` (`credential_stuffing`, `user_enumeration`) | [`Metrics::event_layer`]: the detector's alert events |
//! | `store_errors_total` | `store` | [`Metrics::event_layer`]: the cores' "store did not answer" events |
//! | `fail_mode_activations_total` | `store`, `mode` (`fail_open`, `fail_closed`, `memory_fallback`) | [`Metrics::event_layer`]: `store_unavailable` events whose reason is a fail mode |
//!
//! No label ever holds what a client chose: the route is the router's
//! template (a request for `/api-keys/<random>` counts under
//! `/api-keys/{id}`, a random path under `unmatched`), the method is one of
//! the standard ones or `OTHER`, event names outside the vocabulary and
//! unknown store names are folded into `other`. So an attacker cannot grow
//! the series without bound (a cardinality attack on the process's memory
//! and on the monitoring system).
//!
//! The security counters come from the events the cores already emit (each
//! refusal is one event, DESIGN.md), through a tracing layer with its own
//! per-callsite filter: only events with an `event` or a `store_error`
//! field reach it, whatever `RUST_LOG` lets through to the log.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_axum::ApiError;
use palisade_errors::{Error, ErrorKind, SecurityEvent};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use secrecy::{ExposeSecret as _, SecretString};
use subtle::ConstantTimeEq as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

/// The label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";
/// The label of anything outside a known set.
pub const OTHER: &str = "other";

/// The upper bounds (seconds) of the latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The stores the cores name in their events.
const STORES: [&str; 7] = [
    "api_keys",
    "revocation",
    "refresh",
    "reset_tokens",
    "rate_limit",
    "login_throttle",
    "users",
];

/// The fail modes a `store_unavailable` event's `reason` can name.
const FAIL_MODES: [&str; 3] = ["fail_open", "fail_closed", "memory_fallback"];

/// The detector's alert kinds (its `reason`).
const ALERT_KINDS: [&str; 2] = ["credential_stuffing", "user_enumeration"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailModeLabels {
    store: &'static str,
    mode: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The process's metrics: one per process, shared by the request layer,
/// the tracing layer and the `/metrics` handler.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    events: Family<EventLabels, Counter>,
    alerts: Family<AlertLabels, Counter>,
    store_errors: Family<StoreLabels, Counter>,
    fail_modes: Family<FailModeLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every series registered; the security counters start at 0 for each
    /// name of the vocabulary and each alert kind, so a dashboard sees the
    /// series before the first attack.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        let events = Family::<EventLabels, Counter>::default();
        let alerts = Family::<AlertLabels, Counter>::default();
        let store_errors = Family::<StoreLabels, Counter>::default();
        let fail_modes = Family::<FailModeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route template",
            latency.clone(),
        );
        registry.register(
            "security_events",
            "Security events by their shared event name (one per refusal)",
            events.clone(),
        );
        registry.register(
            "security_alerts",
            "Credential-stuffing and enumeration alerts of the login detector",
            alerts.clone(),
        );
        registry.register(
            "store_errors",
            "Store calls that failed or timed out, by store",
            store_errors.clone(),
        );
        registry.register(
            "fail_mode_activations",
            "Decisions taken by a fail mode because a store did not answer",
            fail_modes.clone(),
        );
        for event in SecurityEvent::ALL {
            drop(events.get_or_create(&EventLabels {
                event: event.as_str(),
            }));
        }
        for kind in ALERT_KINDS {
            drop(alerts.get_or_create(&AlertLabels { kind }));
        }
        Metrics {
            registry,
            requests,
            latency,
            events,
            alerts,
            store_errors,
            fail_modes,
        }
    }

    /// The tracing layer that counts the security and store events into
    /// these metrics (add it to the process's subscriber).
    pub fn event_layer<S>(self: &Arc<Self>) -> impl Layer<S> + Send + Sync + 'static
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        EventCounter {
            metrics: Arc::clone(self),
        }
        .with_filter(CountedEvents)
    }

    /// Records one answered request.
    pub fn record_request(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method_label(method),
                status: status.as_u16(),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// The Prometheus text exposition (format 0.0.4).
    ///
    /// # Errors
    ///
    /// A formatting error of the encoder (writing to a `String` does not fail).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    fn count_event(&self, seen: &SeenFields) {
        if let Some(name) = &seen.event {
            let event = SecurityEvent::from_name(name).map_or(OTHER, SecurityEvent::as_str);
            if seen.alert {
                // The detector's alert rides on `authn_login_fail` but is not
                // a refusal: it is counted as an alert only.
                let kind = known(seen.reason.as_deref(), &ALERT_KINDS);
                self.alerts.get_or_create(&AlertLabels { kind }).inc();
                return;
            }
            self.events.get_or_create(&EventLabels { event }).inc();
            if event == SecurityEvent::StoreUnavailable.as_str()
                && let Some(mode) = seen.reason.as_deref()
                && FAIL_MODES.contains(&mode)
            {
                let store = seen.store_label();
                let mode = known(Some(mode), &FAIL_MODES);
                self.fail_modes
                    .get_or_create(&FailModeLabels { store, mode })
                    .inc();
            }
        } else if seen.store_error {
            // redis_support::log_failure of the cores: one per failed call.
            let store = seen.store_label();
            self.store_errors
                .get_or_create(&StoreLabels { store })
                .inc();
        }
    }
}

/// `value` if it is one of `allowed` (as the `'static` entry), else [`OTHER`].
fn known(value: Option<&str>, allowed: &[&'static str]) -> &'static str {
    value
        .and_then(|value| allowed.iter().find(|known| **known == value))
        .copied()
        .unwrap_or(OTHER)
}

/// The standard methods by name; any extension method is `OTHER` (a
/// client can send any token as a method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// Outermost layer: counts every answered request by its route template
/// (axum's [`MatchedPath`], never the raw path) and times it.
#[derive(Clone, Debug)]
pub struct TrackLayer {
    metrics: Arc<Metrics>,
}

impl TrackLayer {
    /// The layer counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> TrackLayer {
        TrackLayer { metrics }
    }
}

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service of [`TrackLayer`].
#[derive(Clone, Debug)]
pub struct Track<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let started = Instant::now();
        let response = self.inner.call(request);
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            let response = response.await?;
            metrics.record_request(
                route.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
                &method,
                response.status(),
                started.elapsed().as_secs_f64(),
            );
            Ok(response)
        })
    }
}

/// What the `/metrics` handler needs.
#[derive(Clone)]
pub struct MetricsEndpoint {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// `PALISADE_METRICS_TOKEN`, when set.
    pub token: Option<Arc<SecretString>>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>` (one header,
/// the token compared in constant time).
fn bearer_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let bytes = value.as_bytes();
    let Some(scheme_end) = bytes.iter().position(|b| *b == b' ') else {
        return false;
    };
    let (scheme, rest) = bytes.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return false;
    }
    let presented = rest.trim_ascii();
    bool::from(presented.ct_eq(token.expose_secret().as_bytes()))
}

/// `GET /metrics`.
pub async fn serve_metrics(
    State(endpoint): State<MetricsEndpoint>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = &endpoint.token
        && !bearer_matches(&headers, token)
    {
        tracing::warn!(
            event = SecurityEvent::AuthnTokenInvalid.as_str(),
            reason = "metrics_token",
            "metrics refused: missing or wrong token"
        );
        return Err(ApiError(
            Error::new(ErrorKind::Unauthorized)
                .with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"metrics\""),
                )
                .logged(),
        ));
    }
    let text = endpoint.metrics.encode().map_err(|_| {
        tracing::error!("metrics encoding failed");
        ApiError(Error::new(ErrorKind::Internal))
    })?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response())
}

/// The fields of an event the counters read.
#[derive(Default)]
struct SeenFields {
    event: Option<String>,
    reason: Option<String>,
    store: Option<String>,
    limiter: bool,
    alert: bool,
    store_error: bool,
    target: &'static str,
}

impl SeenFields {
    /// The store an event is about: its `store` field, else the core that
    /// emitted it (by module path), else `other`.
    fn store_label(&self) -> &'static str {
        if let Some(store) = self.store.as_deref() {
            return known(Some(store), &STORES);
        }
        let target = self.target;
        if self.limiter || target.starts_with("palisade_ratelimit::limiter") {
            "rate_limit"
        } else if target.starts_with("palisade_ratelimit::login") {
            "login_throttle"
        } else if target.starts_with("palisade_auth_tokens") {
            "revocation"
        } else if target.starts_with("palisade_apikeys") {
            "api_keys"
        } else if target.starts_with("palisade_passwords") {
            "reset_tokens"
        } else if target.starts_with("palisade_server::users") {
            "users"
        } else {
            OTHER
        }
    }
}

impl Visit for SeenFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "event" => self.event = Some(value.to_owned()),
            "reason" => self.reason = Some(value.to_owned()),
            "store" => self.store = Some(value.to_owned()),
            _ => self.record_presence(field),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "alert" {
            self.alert = value;
        } else {
            self.record_presence(field);
        }
    }

    fn record_debug(&mut self, field: &Field, _value: &dyn std::fmt::Debug) {
        self.record_presence(field);
    }
}

impl SeenFields {
    fn record_presence(&mut self, field: &Field) {
        match field.name() {
            "limiter" => self.limiter = true,
            "store_error" => self.store_error = true,
            _ => {}
        }
    }
}

/// Counts security and store events into [`Metrics`].
struct EventCounter {
    metrics: Arc<Metrics>,
}

impl<S: Subscriber> Layer<S> for EventCounter {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut seen = SeenFields {
            target: event.metadata().target(),
            ..SeenFields::default()
        };
        event.record(&mut seen);
        self.metrics.count_event(&seen);
    }
}

/// Lets through only the callsites the counters read (decided once per
/// callsite, so the other events — hyper's traces included — cost nothing).
struct CountedEvents;

impl CountedEvents {
    fn counted(metadata: &tracing::Metadata<'_>) -> bool {
        let fields = metadata.fields();
        metadata.is_event()
            && (fields.field("event").is_some() || fields.field("store_error").is_some())
    }
}

impl<S> Filter<S> for CountedEvents {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: &Context<'_, S>) -> bool {
        CountedEvents::counted(metadata)
    }

    fn callsite_enabled(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if CountedEvents::counted(metadata) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    fn counted(emit: impl FnOnce()) -> String {
        let metrics = Arc::new(Metrics::new());
        let subscriber = tracing_subscriber::registry().with(metrics.event_layer());
        tracing::subscriber::with_default(subscriber, emit);
        metrics.encode().unwrap()
    }

    #[test]
    fn security_events_are_counted_by_their_vocabulary_name_only() {
        // Attack: a cardinality blow-up through an event name an attacker
        // could influence; only the vocabulary (and `other`) is a label.
        let text = counted(|| {
            tracing::info!(event = "authn_login_fail", "refused");
            tracing::warn!(event = "authn_login_fail", "refused");
            tracing::warn!(event = "made_up_by_someone", "odd");
            tracing::info!(reason = "no event field", "ignored");
        });
        assert!(
            text.contains("security_events_total{event=\"authn_login_fail\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("security_events_total{event=\"other\"} 1"),
            "{text}"
        );
        assert!(!text.contains("made_up_by_someone"));
        assert!(
            text.contains("security_events_total{event=\"authz_fail\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn detector_alerts_are_alerts_not_refusals() {
        let text = counted(|| {
            let detector = crate::detector::Detector::new();
            let ip: std::net::IpAddr = "2001:db8::1".parse().unwrap();
            for n in 0..25 {
                detector.record_failure(&format!("nobody{n}"), false, ip, 1_700_000_000);
            }
        });
        assert!(
            text.contains("security_alerts_total{kind=\"user_enumeration\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("security_alerts_total{kind=\"credential_stuffing\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("security_events_total{event=\"authn_login_fail\"} 0"),
            "{text}"
        );
    }

    #[test]
    fn store_errors_and_fail_modes_are_counted_by_store() {
        let text = counted(|| {
            // As redis_support::log_failure and the limiter emit them.
            tracing::warn!(
                store = "revocation",
                store_error = "timeout",
                "store did not answer"
            );
            tracing::warn!(
                event = "store_unavailable",
                reason = "fail_open",
                limiter = "global",
                store_error = "unavailable",
                "rate-limit store failed"
            );
            tracing::warn!(
                event = "store_unavailable",
                reason = "fail_closed",
                store = "revocation",
                "refused"
            );
        });
        assert!(
            text.contains("store_errors_total{store=\"revocation\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("fail_mode_activations_total{store=\"rate_limit\",mode=\"fail_open\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "fail_mode_activations_total{store=\"revocation\",mode=\"fail_closed\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("security_events_total{event=\"store_unavailable\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn requests_are_labelled_by_template_and_standard_methods() {
        let metrics = Metrics::new();
        metrics.record_request(
            "/api-keys/{id}",
            &Method::DELETE,
            StatusCode::NOT_FOUND,
            0.002,
        );
        let custom = Method::from_bytes(b"X-RANDOM-1234").unwrap();
        metrics.record_request(UNMATCHED, &custom, StatusCode::NOT_FOUND, 0.001);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                "http_requests_total{route=\"/api-keys/{id}\",method=\"DELETE\",status=\"404\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"404\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("X-RANDOM"));
        assert!(
            text.contains(
                "http_request_duration_seconds_bucket{le=\"0.0025\",route=\"/api-keys/{id}\"} 1"
            ) || text.contains(
                "http_request_duration_seconds_bucket{route=\"/api-keys/{id}\",le=\"0.0025\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let token = SecretString::from("k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            bearer_matches(&headers, &token)
        };
        assert!(with("Bearer k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa"));
        assert!(with("bearer k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa"));
        assert!(!with("Bearer k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sG"));
        assert!(!with("Bearer k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGaa"));
        assert!(!with("Basic k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa"));
        assert!(!with("Bearer"));
        assert!(!bearer_matches(&HeaderMap::new(), &token));
    }
}
