//! Request validation through `palisade_actix::validate` and a real
//! `HttpServer` (configured by `palisade_actix::serve`) over TCP: the
//! shared case table (`tests/validate_cases.rs`).
#![allow(clippy::unwrap_used)]

#[path = "../../axum/tests/support/connection_cases.rs"]
mod connection;
#[path = "../../../tests/validate_cases.rs"]
mod validate_cases;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use actix_web::{App, HttpServer, web};
use futures_util::StreamExt;
use palisade_actix::Harden;
use palisade_actix::serve::{ServeConfig, configure};
use palisade_actix::validate::{EnforceLimits, Id, RequestTimeout, TrustedHost, ValidJson};
use palisade_validate::HexId;
use validate_cases::{ID_HANDLER_RUNS, Item, STREAMED, UserPatch};

async fn stream(mut payload: web::Payload) -> String {
    let mut total = 0u64;
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return "broken".into();
        };
        total += chunk.len() as u64;
        STREAMED.fetch_max(total, Ordering::SeqCst);
    }
    total.to_string()
}

fn start() -> (SocketAddr, actix_web::dev::ServerHandle) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = configure(
                HttpServer::new(|| {
                    App::new()
                        .wrap(RequestTimeout::new(validate_cases::TIMEOUT))
                        .wrap(EnforceLimits::new(validate_cases::limits()))
                        .wrap(TrustedHost::new(validate_cases::hosts()))
                        .wrap(Harden::new())
                        .route("/health/live", web::get().to(|| async { "ok" }))
                        .route(
                            "/items",
                            web::post().to(|ValidJson(item): ValidJson<Item>| async move {
                                format!("created:{}", item.name)
                            }),
                        )
                        .route("/stream", web::post().to(stream))
                        .route("/uploads/file", web::post().to(stream))
                        .route(
                            "/ids/{id}",
                            web::get().to(|Id(id): Id<HexId<16>>| async move {
                                ID_HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
                                id.to_string()
                            }),
                        )
                        .route(
                            "/users/{id}",
                            web::patch().to(
                                |Id(_): Id<HexId<16>>, ValidJson(update): ValidJson<UserPatch>| async move {
                                    validate_cases::describe(&update)
                                },
                            ),
                        )
                        .route("/slow", web::get().to(validate_cases::slow_handler))
                }),
                &ServeConfig::default(),
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
    receiver.recv().unwrap()
}

#[test]
fn shared_cases_through_http_server() {
    let (address, handle) = start();
    validate_cases::run_all(address);
    actix_rt::System::new().block_on(handle.stop(false));
}
