//! `palisade_actix::serve` over real TCP on 127.0.0.1: the connection cases
//! shared with the axum suite (where they apply to actix), 500 ms timeouts.
#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: timings go to stderr

#[path = "../../axum/tests/support/connection_cases.rs"]
mod cases;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web::Bytes;
use actix_web::{App, HttpServer, web};
use palisade_actix::Harden;
use palisade_actix::serve::{ServeConfig, configure};

fn config() -> ServeConfig {
    ServeConfig::builder()
        .header_read_timeout(cases::TIMEOUT)
        .keep_alive_timeout(cases::TIMEOUT)
        .body_read_timeout(cases::TIMEOUT)
        .shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Starts a server on its own thread; returns its address, its handle and the thread.
fn start() -> (SocketAddr, ServerHandle, std::thread::JoinHandle<()>) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let config = config();
            let deadline = config.body_deadline();
            let server = configure(
                HttpServer::new(move || {
                    App::new()
                        .wrap(deadline)
                        .wrap(Harden::new())
                        .route("/health", web::get().to(|| async { "ok" }))
                        .route(
                            "/echo",
                            web::post().to(|body: Bytes| async move { body.len().to_string() }),
                        )
                        .route(
                            "/slow",
                            web::get().to(|| async {
                                actix_rt::time::sleep(cases::SLOW).await;
                                "slow"
                            }),
                        )
                }),
                &config,
            )
            .workers(1)
            .disable_signals()
            .bind("127.0.0.1:0")
            .unwrap();
            let address = server.addrs()[0];
            let server = server.run();
            sender.send((address, server.handle())).unwrap();
            server.await.unwrap();
        });
    });
    let (address, handle) = receiver.recv().unwrap();
    (address, handle, thread)
}

fn run<T>(case: impl FnOnce(SocketAddr) -> T) -> T {
    let (address, handle, thread) = start();
    let started = std::time::Instant::now();
    let result = case(address);
    eprintln!("case took {:?}", started.elapsed());
    futures_executor_stop(handle);
    thread.join().unwrap();
    result
}

fn futures_executor_stop(handle: ServerHandle) {
    actix_rt::System::new().block_on(handle.stop(false));
}

#[test]
fn slowloris_connections_are_closed_at_the_header_timeout() {
    let last = run(cases::slowloris);
    eprintln!("last slow connection closed after {last:?}");
}

#[test]
fn idle_keep_alive_is_closed_at_the_keep_alive_timeout() {
    run(cases::idle_keep_alive);
}

#[test]
fn stalled_body_gets_408_and_close() {
    run(cases::stalled_body);
}

#[test]
fn half_closing_clients_get_their_answer() {
    run(cases::half_close);
}

#[test]
fn expect_continue_under_the_cap_works() {
    // Over the cap, actix-http writes `100 Continue` before any middleware runs
    // (documented in `serve`); only the ordinary case is checked here.
    run(cases::expect_under_cap);
}

#[test]
fn http11_without_host_is_400() {
    // actix-http refuses it while parsing: a bare 400, not the envelope.
    run(|address| {
        assert_eq!(
            cases::request(address, "GET /health HTTP/1.1\r\n\r\n").status,
            400
        );
        assert_eq!(
            cases::request(address, "GET /health HTTP/1.0\r\n\r\n").status,
            200
        );
    });
}

#[test]
fn graceful_shutdown_finishes_in_flight_requests() {
    let (address, handle, thread) = start();
    cases::graceful_shutdown(address, move || {
        std::thread::spawn(move || actix_rt::System::new().block_on(handle.stop(true)));
    });
    thread.join().unwrap();
}

#[test]
fn config_defaults_and_serde() {
    let defaults = ServeConfig::default();
    assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
    assert_eq!(defaults.body_read_timeout, Duration::from_secs(30));
    let parsed: ServeConfig =
        serde_json::from_str(r#"{"keep_alive_timeout_ms": 0, "max_connections": 5}"#).unwrap();
    assert_eq!(parsed.keep_alive_timeout, Duration::ZERO);
    assert_eq!(parsed.max_connections, 5);
    assert!(
        ServeConfig::builder()
            .body_read_timeout(Duration::ZERO)
            .build()
            .is_err()
    );
}
