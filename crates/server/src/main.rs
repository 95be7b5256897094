//! `cargo run -p palisade-server`: starts the reference API (development
//! profile, memory stores, generated secrets when nothing is set).
//!
//! Configuration: the `PALISADE_*` variables (see the crate README and
//! `palisade_server::config`); `RUST_LOG` sets the log filter (default
//! `info`). Logs are JSON lines on stderr, passed through the secrets
//! crate's redaction writer.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use palisade_axum::serve::{ServeConfig, serve};
use palisade_secrets::{ProcessEnv, Redactor, SecretString};
use palisade_server::metrics::Metrics;
use palisade_server::state::{self, Stores};
use palisade_server::{Config, MetricsExposure, app, log_subscriber, metrics_app};

/// mimalloc rather than glibc's malloc: a request through the stack makes
/// some sixty short-lived allocations (hyper's header arrays, the layers'
/// futures, extensions) on two worker threads, which glibc serves through
/// locked arenas and `malloc_consolidate`; mimalloc's thread-local free lists
/// serve them without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // The configuration is read under a subscriber that redacts by pattern
    // only (the secrets are not known yet); every later line also redacts
    // the loaded secrets' values.
    let loaded = tracing::subscriber::with_default(log_subscriber(Redactor::new(), None), || {
        Config::from_env(ProcessEnv)
    });
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            // Before binding: every problem, each with its variable's name.
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("palisade-server: refusing to start: {errors}");
            }
            return ExitCode::from(2);
        }
    };
    let mut redactor = Redactor::new();
    for secret in [
        Some(&config.jwt_access_secret),
        Some(&config.jwt_refresh_secret),
        Some(&config.api_key_pepper),
        config.admin.as_ref().map(|(_, password)| password),
        config.redis_url.as_ref(),
        config.metrics_token.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        redactor.register(secret);
    }
    let metrics = Arc::new(Metrics::new());
    if tracing::subscriber::set_global_default(log_subscriber(redactor, Some(&metrics))).is_err() {
        return ExitCode::FAILURE;
    }
    let result = match config.redis_url.as_ref().map(SecretString::expose_secret) {
        Some(url) => match state::redis_stores(&config, url).await {
            Ok(stores) => run(&config, stores, metrics).await,
            Err(reason) => Err(reason),
        },
        None => run(&config, state::memory_stores(), metrics).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            tracing::error!(reason = reason.as_str(), "palisade-server failed");
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("palisade-server: {reason}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run<St: Stores>(
    config: &Config,
    stores: state::StoreSet<St>,
    metrics: Arc<Metrics>,
) -> Result<(), String> {
    let state = state::build_with_metrics(config, stores, metrics)
        .map_err(|_| "invalid configuration (see the log)".to_owned())?;
    state::ensure_admin(&state, config).await?;
    let router = app(Arc::clone(&state), config)
        .map_err(|_| "invalid configuration (see the log)".to_owned())?;
    // The loop's limits are Palisade's own (and its refusals the envelope).
    let limits = palisade_server::request_limits(config)
        .map_err(|_| "invalid configuration (see the log)".to_owned())?;
    let serve_config = ServeConfig::builder()
        .request_limits(&limits)
        .shutdown_timeout(config.shutdown_timeout)
        .build()
        .map_err(|error| format!("serve limits: {error}"))?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|error| format!("PALISADE_ADDR: cannot listen on {}: {error}", config.addr))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    tracing::info!(
        address = %address,
        profile = config.profile.as_str(),
        redis = config.redis_url.is_some(),
        "palisade-server listening"
    );
    // `/metrics` on its own listener, stopped with the main one.
    let (metrics_stop, metrics_stopped) = tokio::sync::watch::channel(false);
    let metrics_server = match config.metrics_exposure() {
        MetricsExposure::Separate(metrics_addr) => {
            let router = metrics_app(&state, config)
                .map_err(|_| "invalid configuration (see the log)".to_owned())?;
            let metrics_listener =
                tokio::net::TcpListener::bind(metrics_addr)
                    .await
                    .map_err(|error| {
                        format!("PALISADE_METRICS_ADDR: cannot listen on {metrics_addr}: {error}")
                    })?;
            tracing::info!(address = %metrics_addr, "metrics listening");
            let mut stopped = metrics_stopped;
            let stopping = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let decorate = palisade_server::refusal_decorator(config, false)
                .map_err(|_| "invalid configuration (see the log)".to_owned())?;
            Some(tokio::spawn(
                serve(metrics_listener, router)
                    .config(serve_config.clone())
                    .decorate_refusals(decorate)
                    .with_graceful_shutdown(stopping)
                    .run(),
            ))
        }
        MetricsExposure::Main => None,
        MetricsExposure::Hidden => {
            tracing::warn!(
                profile = config.profile.as_str(),
                "/metrics is not served: set PALISADE_METRICS_TOKEN or PALISADE_METRICS_ADDR"
            );
            None
        }
    };
    let draining = Arc::clone(&state.draining);
    let pre_stop = config.pre_stop_delay;
    let stopping = async move {
        shutdown_signal().await;
        // Readiness answers 503 first, so the load balancer stops sending
        // new requests while the listener still accepts the stragglers.
        draining.store(true, Ordering::SeqCst);
        tracing::info!(
            pre_stop_ms = u64::try_from(pre_stop.as_millis()).unwrap_or(u64::MAX),
            "shutdown: readiness 503, pre-stop delay"
        );
        tokio::time::sleep(pre_stop).await;
        tracing::info!("shutdown: listener closed, draining in-flight requests");
    };
    let decorate = palisade_server::refusal_decorator(config, true)
        .map_err(|_| "invalid configuration (see the log)".to_owned())?;
    serve(listener, router)
        .config(serve_config)
        .decorate_refusals(decorate)
        .with_graceful_shutdown(stopping)
        .await
        .map_err(|error| format!("serve: {error}"))?;
    let _ = metrics_stop.send(true);
    if let Some(metrics_server) = metrics_server
        && let Ok(Err(error)) = metrics_server.await
    {
        tracing::warn!(%error, "metrics listener failed");
    }
    // The API keys' usage counts of the last interval.
    if let Err(error) = state.keys.flush().await {
        tracing::warn!(%error, "API-key usage not flushed");
    }
    drop(state);
    tracing::info!("palisade-server stopped");
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}
