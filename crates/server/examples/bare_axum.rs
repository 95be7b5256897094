//! The load benchmark's floor: a bare axum "hello" with none of Palisade's
//! layers, on the same runtime as `palisade-server` (`#[tokio::main]`, the
//! multi-thread scheduler with a worker per core) and allocator (mimalloc), so `cargo xtask bench
//! load` can report the reference service's throughput as a share of what
//! axum alone serves on this machine.
//!
//! `PALISADE_ADDR=127.0.0.1:9000 cargo run --release -p palisade-server --example bare_axum`
//!
//! `GET /health/live` and `GET /me` both answer 200 `ok` (the `/me` route
//! ignores any `Authorization` header), so the benchmark sends the very
//! same requests to this server and to the real one.

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;

/// The server's allocator: the floor differs from the service by its layers
/// alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn hello() -> &'static str {
    "ok"
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr: SocketAddr = match std::env::var("PALISADE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:8080".to_owned())
        .parse()
    {
        Ok(addr) => addr,
        Err(error) => {
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("bare_axum: PALISADE_ADDR: {error}");
            }
            return ExitCode::from(2);
        }
    };
    let app = Router::new()
        .route("/health/live", get(hello))
        .route("/me", get(hello));
    let served = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => axum::serve(listener, app).await,
        Err(error) => Err(error),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("bare_axum: {addr}: {error}");
            }
            ExitCode::FAILURE
        }
    }
}
