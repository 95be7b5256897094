#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
use std::io::{Read, Write};

/// The reference service over a real socket: liveness, and the envelope for an
/// unknown route with the request id echoed.
#[tokio::test]
async fn health_live_and_unknown_route_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, palisade_server::app()).await.unwrap();
    });

    let fetch = move |request: String| {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let live = tokio::task::spawn_blocking(move || {
        fetch("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into())
    });
    let live = live.await.unwrap();
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    assert!(live.ends_with(r#"{"status":"ok"}"#), "{live}");

    let missing = tokio::task::spawn_blocking(move || {
        fetch(
            "GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: t-1\r\nConnection: close\r\n\r\n"
                .into(),
        )
    });
    let missing = missing.await.unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(missing.contains("x-request-id: t-1"), "{missing}");
    assert!(
        missing.ends_with(
            r#"{"error":{"code":"not_found","message":"Resource not found","request_id":"t-1"}}"#
        ),
        "{missing}"
    );
    server.abort();
}
