#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod config;
pub mod detector;
pub mod keys;
pub mod log_fields;
pub mod metrics;
pub mod middleware;
pub mod redis_cluster;
pub mod routes;
pub mod state;
pub mod uploads;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use axum::routing::{delete, get, post};
use palisade_axum::Hardening;
use palisade_axum::apikeys::{ApiKeyLayer, KeyMode};
use palisade_axum::auth::{AuthLayer, AuthMode};
use palisade_axum::ratelimit::{RateLimitLayer, by_ip};
use palisade_axum::validate::{RequestLimitsLayer, RequestTimeoutLayer, TrustedHostLayer};
use palisade_errors::{Error, ErrorKind};
use palisade_headers::{CorsPolicy, HeaderPolicy};
use palisade_secrets::{RedactingMakeWriter, Redactor};
use palisade_validate::hosts::TrustedHosts;
use palisade_validate::limits::RequestLimits;
use tower::ServiceBuilder;
use tower::util::MapResponseLayer;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::metrics::{Metrics, TrackLayer};

pub use config::{Config, MetricsExposure};
pub use routes::Liveness;
pub use state::{App, Stores};

fn invalid(what: &'static str) -> impl Fn(String) -> Error {
    move |reason| {
        tracing::error!(reason, "{what}");
        Error::new(ErrorKind::Internal)
    }
}

/// The CORS policy of `PALISADE_CORS_ORIGINS` (none listed: every
/// cross-origin read refused, `Vary: Origin` still sent).
fn cors(config: &Config) -> Result<CorsPolicy, Error> {
    cors_policy(&config.cors_origins).map_err(invalid("PALISADE_CORS_ORIGINS"))
}

/// The CORS policy for `origins`, or why palisade-headers refuses them
/// (also run by [`Config::from_env`], so the refusal is listed with every
/// other problem of the configuration).
pub(crate) fn cors_policy(origins: &[String]) -> Result<CorsPolicy, String> {
    CorsPolicy::builder()
        .allow_origins(origins.iter())
        .allow_methods(["GET", "POST", "PATCH", "DELETE"])
        .allow_headers(["authorization", "content-type", "x-api-key"])
        // A page may read the id it quotes to support, and when to retry.
        .expose_headers(["X-Request-Id", "Retry-After"])
        .build()
        .map_err(|error| error.to_string())
}

fn trusted_hosts(config: &Config) -> Result<TrustedHosts, Error> {
    trusted_host_list(
        &config.trusted_hosts,
        config.profile == palisade_secrets::Profile::Production,
    )
    .map_err(invalid("PALISADE_TRUSTED_HOSTS"))
}

/// The trusted hosts for `hosts`, or why palisade-validate refuses them
/// (also run by [`Config::from_env`], as [`cors_policy`]).
pub(crate) fn trusted_host_list(
    hosts: &[String],
    production: bool,
) -> Result<TrustedHosts, String> {
    let mut builder = TrustedHosts::builder();
    for host in hosts {
        builder = builder.allow(host).map_err(|error| error.to_string())?;
    }
    builder
        .exempt_path("/health/*")
        .and_then(|builder| builder.build(production))
        .map_err(|error| error.to_string())
}

/// The request limits of `PALISADE_MAX_BODY_BYTES` (and palisade-validate's
/// head limits), shared by the router and the serve loop. `POST /uploads`
/// gets its own body cap: `PALISADE_MAX_UPLOAD_BYTES` plus
/// [`config::MULTIPART_OVERHEAD_BYTES`] for the form's framing.
///
/// # Errors
///
/// A limit palisade-validate refuses.
pub fn request_limits(config: &Config) -> Result<RequestLimits, Error> {
    let upload_cap = config
        .max_upload_bytes
        .saturating_add(config::MULTIPART_OVERHEAD_BYTES);
    RequestLimits::builder()
        .max_body_bytes(config.max_body_bytes)
        .body_cap_for(UPLOADS_PATH, upload_cap)
        .and_then(|builder| builder.build())
        .map_err(|error| invalid("PALISADE_MAX_BODY_BYTES")(error.to_string()))
}

/// The upload route (the one path with its own body cap).
pub const UPLOADS_PATH: &str = "/uploads";
/// The metrics route.
pub const METRICS_PATH: &str = "/metrics";

fn metrics_endpoint<St: Stores>(state: &App<St>, config: &Config) -> metrics::MetricsEndpoint {
    metrics::MetricsEndpoint {
        metrics: Arc::clone(&state.metrics),
        token: config.metrics_token.as_ref().map(|token| {
            Arc::new(secrecy::SecretString::from(
                token.expose_secret().to_owned(),
            ))
        }),
    }
}

/// The service's log: JSON lines to standard error through `redactor`,
/// filtered by `RUST_LOG` (default `info`), each with its `request` span
/// (the request id); and, when given, the metrics' event counter with its
/// own filter (the security events are counted whatever the log level).
pub fn log_subscriber(
    redactor: Redactor,
    metrics: Option<&Arc<Metrics>>,
) -> impl tracing::Subscriber + Send + Sync {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt::layer()
        // The `request` span's fields are formatted on every request:
        // `SpanFields` writes them without building JSON values.
        .fmt_fields(log_fields::SpanFields)
        .event_format(
            tracing_subscriber::fmt::format()
                .json()
                .with_current_span(true)
                // The target (module path) stays: the redactor reads
                // `palisade_secrets::dev` as a path, not as a `secrets:` field.
                .with_target(true),
        )
        .with_writer(RedactingMakeWriter::new(std::io::stderr, redactor))
        .with_filter(filter);
    tracing_subscriber::registry()
        .with(metrics.map(|metrics| metrics.event_layer()))
        .with(log)
}

fn headers_policy() -> Result<palisade_headers::SecurityHeaders, Error> {
    HeaderPolicy::api()
        .build()
        .map_err(|error| invalid("security headers")(error.to_string()))
}

/// What the serve loop adds to the refusals it makes before the router
/// runs (400 `bad_host`, 408, 413, 414, 431): the router's security headers
/// and, on the main listener (`cors`), its CORS headers for an allowed
/// origin (and `Vary: Origin`), so those answers are decorated like every
/// other (see `palisade_axum::serve::Serve::decorate_refusals`).
///
/// # Errors
///
/// A setting a core refuses (logged with its reason).
pub fn refusal_decorator(
    config: &Config,
    cors: bool,
) -> Result<impl Fn(&http::HeaderMap, &mut Response) + Send + Sync + 'static, Error> {
    let headers = headers_policy()?;
    let cors = if cors {
        Some(crate::cors(config)?)
    } else {
        None
    };
    Ok(move |request: &http::HeaderMap, response: &mut Response| {
        headers.apply(response.headers_mut(), None);
        if let Some(cors) = &cors
            && let palisade_headers::CorsDecision::Forward(answer) =
                cors.evaluate(&http::Method::GET, request)
        {
            answer.apply(response.headers_mut());
        }
    })
}

/// The router of the `PALISADE_METRICS_ADDR` listener: `/metrics` alone,
/// with request ids, the envelope, security headers and the request limits
/// (no trusted-host check: scrapers address an internal port by IP), its
/// requests counted like the main listener's.
///
/// # Errors
///
/// A setting a core refuses (logged with its reason).
pub fn metrics_app<St: Stores>(state: &Arc<App<St>>, config: &Config) -> Result<Router, Error> {
    let routes = Router::new()
        .route(METRICS_PATH, get(metrics::serve_metrics))
        .with_state(metrics_endpoint(state, config));
    let hardening = Hardening::new()
        .security_headers(headers_policy()?)
        .identity(RequestLimitsLayer::new(request_limits(config)?))
        .identity(RequestTimeoutLayer::new(config.request_timeout));
    Ok(routes.layer(
        ServiceBuilder::new()
            .layer(TrackLayer::new(Arc::clone(&state.metrics)))
            .layer(hardening),
    ))
}

/// The service: every route behind the layers in the order the README
/// explains, composed by [`Hardening`].
///
/// # Errors
///
/// A setting a core refuses (logged with its reason).
pub fn app<St: Stores>(state: Arc<App<St>>, config: &Config) -> Result<Router, Error> {
    let login_limit = RateLimitLayer::new(
        Arc::clone(&state.limiters.login),
        by_ip(state.resolver.clone()),
    );
    let per_key = RateLimitLayer::new(Arc::clone(&state.limiters.key), middleware::by_key());
    let routes = Router::new()
        .route("/health/live", get(routes::live))
        .route("/health/ready", get(routes::ready::<St>))
        .route("/auth/register", post(routes::register::<St>))
        .route("/auth/login", post(routes::login::<St>).layer(login_limit))
        .route("/auth/refresh", post(routes::refresh::<St>))
        .route("/auth/logout", post(routes::logout::<St>))
        .route("/auth/logout-all", post(routes::logout_all::<St>))
        .route(
            "/auth/password-reset/request",
            post(routes::reset_request::<St>),
        )
        .route(
            "/auth/password-reset/confirm",
            post(routes::reset_confirm::<St>),
        )
        .route("/me", get(routes::me::<St>).patch(routes::patch_me::<St>))
        .route("/me/password", post(routes::change_password::<St>))
        .route("/admin/users", get(routes::list_users::<St>))
        .route("/admin/users/{id}/role", post(routes::set_role::<St>))
        .route("/api-keys", post(keys::create::<St>).get(keys::list::<St>))
        .route("/api-keys/{id}", delete(keys::revoke::<St>))
        .route("/api-keys/{id}/rotate", post(keys::rotate::<St>))
        .route(UPLOADS_PATH, post(uploads::upload::<St>))
        .route("/uploads/{id}", get(uploads::download::<St>))
        .route(
            "/reports/{id}",
            // Outside in: the key is verified (X-API-Key or
            // `Authorization: ApiKey`; with a bearer token too, a 400), then
            // the per-key limit keys on it.
            get(keys::report).route_layer(per_key).route_layer(
                ApiKeyLayer::new(Arc::clone(&state.keys), KeyMode::Optional)
                    .client_ip(state.resolver.clone()),
            ),
        )
        .with_state(Arc::clone(&state));

    let trusted_host = TrustedHostLayer::new(trusted_hosts(config)?)
        .trusted_proxies(config.trusted_proxies.iter().copied());
    let limits = request_limits(config)?;
    let per_ip = RateLimitLayer::new(
        Arc::clone(&state.limiters.global),
        middleware::by_ip_except_health(state.resolver.clone()),
    );
    let per_subject = RateLimitLayer::new(
        Arc::clone(&state.limiters.subject),
        middleware::by_subject(),
    );
    let headers = headers_policy()?;
    let cors = cors(config)?;

    // Outside in: request counting → the readiness body → Hardening's
    // request id, security headers, CORS and panic catcher → trusted host →
    // head and declared-body limits → per-IP limit → body limit → timeout →
    // auth → per-subject limit → handler. Each stack is one layer: every
    // route is boxed once, not once a layer.
    let outer = || {
        ServiceBuilder::new()
            .layer(TrackLayer::new(Arc::clone(&state.metrics)))
            .layer(MapResponseLayer::new(
                routes::keep_readiness_body as fn(Response) -> Response,
            ))
    };
    let api = routes.layer(
        outer().layer(
            Hardening::new()
                .security_headers(headers.clone())
                .cors(cors.clone())
                .identity(trusted_host.clone())
                // Head limits and the declared length before the budget;
                // the streamed body is counted against the same cap when
                // the handler reads it (inside the limit and the timeout).
                .identity(RequestLimitsLayer::new(limits.clone()))
                .identity(per_ip.clone())
                .identity(RequestTimeoutLayer::new(config.request_timeout))
                .identity(AuthLayer::new(Arc::clone(&state.auth), AuthMode::Optional))
                .limit(per_subject),
        ),
    );
    Ok(match config.metrics_exposure() {
        // The same stack without the bearer-token layer: `/metrics` checks
        // its own token (`PALISADE_METRICS_TOKEN`), which is no JWT.
        MetricsExposure::Main => api.merge(
            Router::new()
                .route(METRICS_PATH, get(metrics::serve_metrics))
                .with_state(metrics_endpoint(&state, config))
                .layer(
                    outer().layer(
                        Hardening::new()
                            .security_headers(headers)
                            .cors(cors)
                            .identity(trusted_host)
                            .identity(RequestLimitsLayer::new(limits))
                            .identity(per_ip)
                            .identity(RequestTimeoutLayer::new(config.request_timeout)),
                    ),
                ),
        ),
        // Served on its own listener, or not at all: a 404 here.
        MetricsExposure::Separate(_) | MetricsExposure::Hidden => api,
    })
}
