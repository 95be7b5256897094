//! `cargo run -p palisade-server`: starts the reference API.
//!
//! `PALISADE_BIND` sets the listen address (default `127.0.0.1:8080`);
//! `RUST_LOG` the log filter (default `info`).

use std::net::SocketAddr;

use tracing_subscriber::EnvFilter;

const DEFAULT_BIND: &str = "127.0.0.1:8080";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match serve().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "palisade-server failed to start");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::var("PALISADE_BIND").unwrap_or_else(|_| DEFAULT_BIND.to_owned());
    let address: SocketAddr = bind
        .parse()
        .map_err(|error| format!("PALISADE_BIND={bind:?} is not a socket address: {error}"))?;
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "palisade-server listening");
    // The hardened loop: head/body deadlines, limits, half-close, and on
    // SIGINT/SIGTERM stop accepting and drain in-flight requests.
    palisade_axum::serve::serve(listener, palisade_server::app())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
    tracing::info!("shutdown signal received: draining");
}
