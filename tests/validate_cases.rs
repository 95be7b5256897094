//! The shared case table of request validation through both adapters
//! (`palisade_axum::validate`, `palisade_actix::validate`), over real TCP
//! on 127.0.0.1 through each adapter's `serve` set-up. Each adapter's
//! `tests/validate.rs` includes it with
//!
//! ```ignore
//! #[path = "../../axum/tests/support/connection_cases.rs"]
//! mod connection;
//! #[path = "../../../tests/validate_cases.rs"]
//! mod validate_cases;
//! ```
//!
//! builds an app with [`limits`], [`hosts`], a [`TIMEOUT`] handler deadline
//! and these routes, then calls [`run_all`] with the server's address:
//!
//! - `GET /health/live` → `ok` (exempt from the host check);
//! - `POST /items` → `ValidJson<Item>` → `created:<name>`;
//! - `POST /stream` and `POST /uploads/file` → read the body chunk by
//!   chunk, adding each chunk's length to [`STREAMED`], answer the total;
//! - `POST /raw` → the streaming handler behind the route's JSON
//!   content-type rule (`RequireJsonLayer` / `RequireJson`);
//! - `GET /ids/{id}` → `Id<HexId<16>>`, counts [`ID_HANDLER_RUNS`];
//! - `PATCH /users/{id}` → `ValidJson<UserPatch>` → [`describe`];
//! - `GET /slow` → [`slow_handler`] (longer than [`TIMEOUT`]).
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use palisade_validate::Patch;
use palisade_validate::hosts::TrustedHosts;
use palisade_validate::limits::RequestLimits;

use crate::connection::{Answer, read_answer};

/// The default body cap of the test apps.
pub const CAP: u64 = 16 * 1024;
/// The body cap of `/uploads/*`.
pub const UPLOAD_CAP: u64 = 256 * 1024;
/// The handler deadline.
pub const TIMEOUT: Duration = Duration::from_millis(300);
/// How long `GET /slow` would take.
pub const SLOW: Duration = Duration::from_millis(1500);

/// The most body bytes a streaming handler has seen (reset per case).
pub static STREAMED: AtomicU64 = AtomicU64::new(0);
/// Runs of the `/ids/{id}` handler.
pub static ID_HANDLER_RUNS: AtomicUsize = AtomicUsize::new(0);
/// `/slow` handlers that started, finished, and were dropped unfinished.
pub static SLOW_STARTED: AtomicUsize = AtomicUsize::new(0);
/// See [`SLOW_STARTED`].
pub static SLOW_FINISHED: AtomicUsize = AtomicUsize::new(0);
/// See [`SLOW_STARTED`].
pub static SLOW_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// The limits of every app.
pub fn limits() -> RequestLimits {
    RequestLimits::builder()
        .max_body_bytes(CAP)
        .body_cap_for("/uploads/*", UPLOAD_CAP)
        .unwrap()
        .build()
        .unwrap()
}

/// The trusted hosts of every app.
pub fn hosts() -> TrustedHosts {
    TrustedHosts::builder()
        .allow("localhost")
        .unwrap()
        .allow("127.0.0.1")
        .unwrap()
        .exempt_path("/health/*")
        .unwrap()
        .build(true)
        .unwrap()
}

/// The body of `POST /items`.
#[derive(serde::Deserialize)]
pub struct Item {
    pub name: String,
}

/// The body of `PATCH /users/{id}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub name: Patch<String>,
    #[serde(default)]
    pub nickname: Patch<String>,
}

fn state(patch: &Patch<String>) -> String {
    match patch {
        Patch::Absent => "absent".into(),
        Patch::Null => "null".into(),
        Patch::Value(value) => format!("value({value})"),
    }
}

/// What the PATCH handler answers.
pub fn describe(patch: &UserPatch) -> String {
    format!(
        "name={} nickname={}",
        state(&patch.name),
        state(&patch.nickname)
    )
}

/// Counts a `/slow` handler dropped before it finished.
struct DropWatch {
    finished: bool,
}

impl Drop for DropWatch {
    fn drop(&mut self) {
        if !self.finished {
            SLOW_DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A handler slower than [`TIMEOUT`]; records whether it ran to its end.
pub async fn slow_handler() -> &'static str {
    SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
    let mut watch = DropWatch { finished: false };
    tokio::time::sleep(SLOW).await;
    SLOW_FINISHED.fetch_add(1, Ordering::SeqCst);
    watch.finished = true;
    "finished"
}

/// Sends `raw` on a fresh connection (ignoring a write the server cut
/// short by answering early) and reads the answer.
pub fn send(address: SocketAddr, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let _ = stream.write_all(raw);
    let mut answer = read_answer(&mut stream);
    // Bytes of a lying request past its declared length may be answered
    // as a next request (a bare 400) in the same read: keep the first answer.
    let length = answer
        .head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    if let Some(body) = length.and_then(|length| answer.body.get(..length)) {
        answer.body = body.to_owned();
    }
    answer
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        raw.push_str("Host: localhost\r\n");
    }
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
    }) && !body.is_empty()
    {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn json(method: &str, path: &str, body: &str) -> Vec<u8> {
    request(
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

/// `count` chunks of `size` bytes in chunked encoding, and the last chunk.
fn chunked(path: &str, count: usize, size: usize) -> Vec<u8> {
    let mut raw = request("POST", path, &[("Transfer-Encoding", "chunked")], b"");
    for _ in 0..count {
        raw.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        raw.extend(std::iter::repeat_n(b'x', size));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    raw
}

/// Asserts the envelope of `status` and `code`, with a request id.
pub fn assert_envelope(name: &str, answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{name}: {answer:?}");
    assert!(
        answer.head.contains("content-type: application/json"),
        "{name}: {answer:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|error| panic!("{name}: not the envelope ({error}): {answer:?}"));
    assert_eq!(json["error"]["code"], code, "{name}: {answer:?}");
    assert!(
        json["error"]["request_id"].is_string(),
        "{name}: {answer:?}"
    );
}

fn ok(name: &str, answer: &Answer, body: &str) {
    assert_eq!(answer.status, 200, "{name}: {answer:?}");
    assert_eq!(answer.body, body, "{name}: {answer:?}");
}

const ID: &str = "0123456789abcdef";

/// Every case, in order, against the server at `address`.
pub fn run_all(address: SocketAddr) {
    let go = |raw: Vec<u8>| send(address, &raw);

    // Content type and JSON.
    ok(
        "json item",
        &go(json("POST", "/items", r#"{"name":"a"}"#)),
        "created:a",
    );
    let answer = go(request(
        "POST",
        "/items",
        &[("Content-Type", "text/plain")],
        br#"{"name":"a"}"#,
    ));
    assert_envelope("wrong content type", &answer, 415, "unsupported_media_type");
    let answer = go(request(
        "POST",
        "/raw",
        &[("Content-Type", "text/plain")],
        b"{}",
    ));
    assert_envelope(
        "route requires json",
        &answer,
        415,
        "unsupported_media_type",
    );
    let answer = go(request(
        "POST",
        "/raw",
        &[("Transfer-Encoding", "chunked")],
        b"0\r\n\r\n",
    ));
    assert_envelope(
        "chunked body without a type",
        &answer,
        415,
        "unsupported_media_type",
    );
    ok(
        "route requires json, json sent",
        &go(json("POST", "/raw", "{}")),
        "2",
    );
    let answer = go(json("POST", "/items", r#"{"name":"#));
    assert_envelope("malformed json", &answer, 400, "bad_request");
    let answer = go(json("POST", "/items", r#"{"name": 7}"#));
    assert_envelope("json of the wrong type", &answer, 422, "validation_failed");
    assert!(answer.body.contains(r#""field":"$.name""#), "{answer:?}");

    // Stack-overflow attack: 10 000 levels (and an 8 000-level object chain).
    let answer = go(json("POST", "/items", &"[".repeat(10_000)));
    assert_envelope("deep json", &answer, 422, "validation_failed");
    assert!(answer.body.contains(r#""code":"too_deep""#), "{answer:?}");
    let answer = go(json("POST", "/items", &r#"{"a":"#.repeat(2_000)));
    assert_envelope("deep json object", &answer, 422, "validation_failed");
    assert!(answer.body.contains(r#""field":"$.a.a.a"#), "{answer:?}");

    // Body cap: declared, chunked, per route, lying.
    STREAMED.store(0, Ordering::SeqCst);
    let answer = go(request(
        "POST",
        "/stream",
        &[("Content-Length", "100000")],
        b"",
    ));
    assert_envelope(
        "declared length over the cap",
        &answer,
        413,
        "payload_too_large",
    );
    assert_eq!(
        STREAMED.load(Ordering::SeqCst),
        0,
        "refused before any read"
    );

    STREAMED.store(0, Ordering::SeqCst);
    let answer = go(chunked("/stream", 64, 1024));
    assert_envelope(
        "chunked body over the cap",
        &answer,
        413,
        "payload_too_large",
    );
    let seen = STREAMED.load(Ordering::SeqCst);
    assert!(
        seen <= CAP,
        "the handler saw {seen} bytes of a 64 KiB body, cap {CAP}"
    );

    streamed_413_closes_the_connection(address);

    STREAMED.store(0, Ordering::SeqCst);
    ok(
        "upload route's own cap",
        &go(chunked("/uploads/file", 64, 1024)),
        "65536",
    );
    let answer = go(request(
        "POST",
        "/uploads/file",
        &[("Content-Length", "300000")],
        b"",
    ));
    assert_envelope(
        "upload over its route's cap",
        &answer,
        413,
        "payload_too_large",
    );
    let answer = go(chunked("/uploads/file", 300, 1024));
    assert_envelope(
        "chunked upload over its route's cap",
        &answer,
        413,
        "payload_too_large",
    );

    // A lying Content-Length (declares 10, sends 50 KB): the body is the
    // 10 declared bytes; the rest is never read as this request's body.
    STREAMED.store(0, Ordering::SeqCst);
    let mut lying = request("POST", "/stream", &[("Content-Length", "10")], b"");
    lying.extend(std::iter::repeat_n(b'x', 50_000));
    ok("lying length, streamed", &go(lying), "10");
    assert_eq!(STREAMED.load(Ordering::SeqCst), 10);
    let mut lying = request(
        "POST",
        "/items",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", "10"),
        ],
        b"",
    );
    lying.extend_from_slice(format!(r#"{{"name": "{}"}}"#, "a".repeat(50_000)).as_bytes());
    assert_envelope("lying length, json", &go(lying), 400, "bad_request");

    // Head limits: a 100 KB header, a long target, many query parameters.
    let big = "b".repeat(100 * 1024);
    let answer = go(request("GET", "/health/live", &[("X-Big", &big)], b""));
    assert_envelope("100 KB header", &answer, 431, "headers_too_large");
    let answer = go(request(
        "GET",
        &format!("/health/live?q={}", "a".repeat(9000)),
        &[],
        b"",
    ));
    assert_envelope("long target", &answer, 414, "uri_too_long");
    let query: Vec<String> = (0..101).map(|i| format!("p{i}=1")).collect();
    let answer = go(request(
        "GET",
        &format!("/health/live?{}", query.join("&")),
        &[],
        b"",
    ));
    assert_envelope("too many query parameters", &answer, 400, "bad_request");

    // Trusted hosts: host-header injection, exempt health probe by IP.
    let runs = ID_HANDLER_RUNS.load(Ordering::SeqCst);
    let answer = go(request(
        "GET",
        &format!("/ids/{ID}"),
        &[("Host", "evil.com")],
        b"",
    ));
    assert_envelope("untrusted host", &answer, 400, "bad_request");
    let answer = go(request(
        "GET",
        &format!("/ids/{ID}"),
        &[("Host", "localhost.evil.com")],
        b"",
    ));
    assert_envelope("untrusted host suffix", &answer, 400, "bad_request");
    ok(
        "health probe by IP",
        &go(request("GET", "/health/live", &[("Host", "10.0.0.9")], b"")),
        "ok",
    );
    assert_eq!(
        ID_HANDLER_RUNS.load(Ordering::SeqCst),
        runs,
        "handler ran for a bad host"
    );

    // Path ids: malformed → 404 before the handler.
    for bad in [
        "xyz",
        "0123456789ABCDEF",
        "0123456789abcde",
        "0123456789abcdef0",
        "..%2f..%2fetc",
    ] {
        let answer = go(request("GET", &format!("/ids/{bad}"), &[], b""));
        assert_envelope(&format!("bad id {bad}"), &answer, 404, "not_found");
    }
    assert_eq!(
        ID_HANDLER_RUNS.load(Ordering::SeqCst),
        runs,
        "handler ran for a bad id"
    );
    ok(
        "good id",
        &go(request("GET", &format!("/ids/{ID}"), &[], b"")),
        ID,
    );
    assert_eq!(ID_HANDLER_RUNS.load(Ordering::SeqCst), runs + 1);

    // PATCH: absent vs null vs value.
    let path = format!("/users/{ID}");
    ok(
        "patch absent",
        &go(json("PATCH", &path, "{}")),
        "name=absent nickname=absent",
    );
    ok(
        "patch null",
        &go(json("PATCH", &path, r#"{"nickname": null}"#)),
        "name=absent nickname=null",
    );
    ok(
        "patch value",
        &go(json("PATCH", &path, r#"{"name": "Ada", "nickname": null}"#)),
        "name=value(Ada) nickname=null",
    );
    let answer = go(json("PATCH", &path, r#"{"name": 5}"#));
    assert_envelope("patch of the wrong type", &answer, 422, "validation_failed");

    // A slow handler: 503 at the deadline, and the handler is cancelled.
    let dropped = SLOW_DROPPED.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    let answer = go(request("GET", "/slow", &[], b""));
    assert_envelope("slow handler", &answer, 503, "unavailable");
    assert!(
        started.elapsed() < SLOW,
        "answered at the deadline, not after the handler"
    );
    std::thread::sleep(SLOW + Duration::from_millis(300));
    assert_eq!(
        SLOW_FINISHED.load(Ordering::SeqCst),
        0,
        "the slow handler kept running"
    );
    assert_eq!(
        SLOW_DROPPED.load(Ordering::SeqCst),
        dropped + 1,
        "the slow handler was not dropped"
    );
}

/// Request smuggling after a streamed 413: a kept-alive chunked body over
/// the cap carries, in its unread part, the bytes of many requests. The
/// server answers the 413, says `Connection: close` and closes; it never
/// answers those body bytes as a next request.
fn streamed_413_closes_the_connection(address: SocketAddr) {
    let smuggled = "GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut raw =
        b"POST /stream HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = smuggled.repeat(1024 / smuggled.len() + 1);
    for _ in 0..64 {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk.as_bytes());
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");

    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(&raw);
    let answer = read_answer(&mut stream);
    assert_envelope("kept-alive streamed 413", &answer, 413, "payload_too_large");
    assert!(
        answer.head.contains("connection: close"),
        "no Connection: close: {answer:?}"
    );
    // Everything after the 413 until the server closes: no second response.
    let mut rest = answer.raw.into_bytes();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut closed = false;
    let mut buffer = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while std::time::Instant::now() < deadline {
        match std::io::Read::read(&mut stream, &mut buffer) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => rest.extend_from_slice(&buffer[..n]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&rest);
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "the leftover bytes were answered as a request: {text}"
    );
    assert!(closed, "the connection stayed open after a streamed 413");
}
