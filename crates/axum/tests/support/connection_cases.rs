//! Connection-protection cases shared by the axum and actix `serve` suites
//! (actix includes this file by path). Blocking std TCP on 127.0.0.1 only;
//! every loop is bounded by a deadline.
//!
//! The server under test answers `GET /health` (200), `POST /echo` (reads the
//! body, answers its length) and `GET /slow` (sleeps [`SLOW`], answers 200).
#![allow(dead_code, clippy::unwrap_used, clippy::string_slice)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The header and body timeouts the suites configure.
pub const TIMEOUT: Duration = Duration::from_millis(500);
/// How late after its deadline a close may come.
pub const MARGIN: Duration = Duration::from_millis(1500);
/// How long `GET /slow` takes.
pub const SLOW: Duration = Duration::from_millis(300);

/// A parsed response: status, lowercase head text, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
    /// Everything received, 1xx responses included.
    pub raw: String,
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads one final response (skipping 1xx), up to its Content-Length or EOF.
pub fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        // Skip interim responses.
        let mut rest = text.as_str();
        while rest.starts_with("HTTP/1.1 1") {
            match rest.find("\r\n\r\n") {
                Some(end) => rest = &rest[end + 4..],
                None => break,
            }
        }
        if let Some(end) = rest.find("\r\n\r\n")
            && !rest.starts_with("HTTP/1.1 1")
        {
            let head = rest[..end].to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map(|value| value.trim().parse::<usize>().unwrap());
            let body = &rest[end + 4..];
            if length.is_some_and(|length| body.len() >= length) {
                let status = head[9..12].parse().unwrap();
                return Answer {
                    status,
                    head,
                    body: body.to_owned(),
                    raw: text.clone(),
                };
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let end = rest.find("\r\n\r\n").expect("a whole response head");
                let head = rest[..end].to_ascii_lowercase();
                return Answer {
                    status: head[9..12].parse().unwrap(),
                    head,
                    body: rest[end + 4..].to_owned(),
                    raw: text.clone(),
                };
            }
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the server has closed `stream` (EOF or reset), waiting at most `wait`.
pub fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut sink = [0u8; 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        match stream.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// One request on a fresh connection.
pub fn request(address: SocketAddr, raw: &str) -> Answer {
    let mut stream = connect(address);
    stream.write_all(raw.as_bytes()).unwrap();
    read_answer(&mut stream)
}

/// Asserts an envelope of `status` and `code` with a request id.
pub fn assert_envelope(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(
        answer.head.contains("content-type: application/json"),
        "{answer:?}"
    );
    assert!(answer.head.contains("x-request-id:"), "{answer:?}");
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["error"]["code"], code, "{answer:?}");
    assert!(json["error"]["request_id"].is_string(), "{answer:?}");
}

/// 25 idle connections and 25 that trickle a partial head are all closed
/// within the header timeout (+ margin), while a normal client keeps getting
/// answers. Returns the time the last one took to close.
pub fn slowloris(address: SocketAddr) -> Duration {
    let started = Instant::now();
    let attackers: Vec<_> = (0..50)
        .map(|index| {
            std::thread::spawn(move || {
                let mut stream = connect(address);
                let trickle = index % 2 == 1;
                if trickle {
                    stream.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
                }
                let deadline = Instant::now() + TIMEOUT + MARGIN;
                while Instant::now() < deadline {
                    if trickle {
                        // One byte of header at a time, never the end of the head.
                        if stream.write_all(b"x").is_err() {
                            return Some(started.elapsed());
                        }
                    }
                    if closed_within(&mut stream, Duration::from_millis(100)) {
                        return Some(started.elapsed());
                    }
                }
                None
            })
        })
        .collect();
    let mut served = 0;
    while Instant::now() < started + TIMEOUT + Duration::from_millis(200) {
        let answer = request(address, "GET /health HTTP/1.1\r\nHost: test\r\n\r\n");
        assert_eq!(answer.status, 200, "{answer:?}");
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served >= 5, "the normal client got {served} answers");
    let closes: Vec<_> = attackers.into_iter().map(|t| t.join().unwrap()).collect();
    let open = closes.iter().filter(|close| close.is_none()).count();
    assert_eq!(open, 0, "{open} of 50 slow connections still open");
    let last = closes.into_iter().flatten().max().unwrap();
    assert!(
        last >= TIMEOUT - Duration::from_millis(50),
        "closed too early: {last:?}"
    );
    last
}

/// An idle keep-alive connection is closed within the header timeout (+ margin).
pub fn idle_keep_alive(address: SocketAddr) -> Duration {
    let mut stream = connect(address);
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut stream).status, 200);
    let started = Instant::now();
    assert!(
        closed_within(&mut stream, TIMEOUT + MARGIN),
        "idle connection kept open"
    );
    started.elapsed()
}

/// `Content-Length: 100` with 10 bytes sent: 408 envelope at the body
/// deadline, then the connection is closed.
pub fn stalled_body(address: SocketAddr) -> Duration {
    let mut stream = connect(address);
    let started = Instant::now();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
        .unwrap();
    let answer = read_answer(&mut stream);
    let elapsed = started.elapsed();
    assert_envelope(&answer, 408, "request_timeout");
    assert!(answer.head.contains("connection: close"), "{answer:?}");
    assert!(
        elapsed >= TIMEOUT - Duration::from_millis(50),
        "{elapsed:?}"
    );
    assert!(elapsed < TIMEOUT + MARGIN, "{elapsed:?}");
    assert!(
        closed_within(&mut stream, MARGIN),
        "connection left open after 408"
    );
    elapsed
}

/// 20 of 20 clients that half-close after their request get the whole answer.
pub fn half_close(address: SocketAddr) {
    let clients: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = connect(address);
                stream
                    .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
                    .unwrap();
                stream.shutdown(Shutdown::Write).unwrap();
                let mut raw = String::new();
                let _ = stream.read_to_string(&mut raw);
                raw
            })
        })
        .collect();
    let answered = clients
        .into_iter()
        .map(|client| client.join().unwrap())
        .filter(|raw| raw.starts_with("HTTP/1.1 200") && raw.ends_with("slow"))
        .count();
    assert_eq!(answered, 20, "half-closing clients answered");
}

/// `Expect: 100-continue` with a Content-Length over the cap: 413, no `100 Continue`.
pub fn expect_over_cap(address: SocketAddr) {
    let answer = request(
        address,
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 52428800\r\nExpect: 100-continue\r\n\r\n",
    );
    assert!(!answer.raw.contains("100 Continue"), "{answer:?}");
    assert_envelope(&answer, 413, "payload_too_large");
}

/// `Expect: 100-continue` under the cap still works: 100, then the answer.
pub fn expect_under_cap(address: SocketAddr) {
    let mut stream = connect(address);
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue"));
    stream.write_all(b"hello").unwrap();
    let answer = read_answer(&mut stream);
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "5"),
        "{answer:?}"
    );
}

/// HTTP/1.1 without `Host` (or with two): the 400 envelope. HTTP/1.0 without is fine.
pub fn missing_host(address: SocketAddr) {
    assert_envelope(
        &request(address, "GET /health HTTP/1.1\r\n\r\n"),
        400,
        "bad_request",
    );
    assert_envelope(
        &request(
            address,
            "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
        400,
        "bad_request",
    );
    assert_eq!(request(address, "GET /health HTTP/1.0\r\n\r\n").status, 200);
}

/// A request in flight when shutdown starts gets its answer; then the listener is gone.
pub fn graceful_shutdown(address: SocketAddr, shut_down: impl FnOnce()) {
    let mut stream = connect(address);
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    std::thread::sleep(SLOW / 3);
    shut_down();
    let answer = read_answer(&mut stream);
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "slow"),
        "{answer:?}"
    );
    let deadline = Instant::now() + MARGIN;
    while TcpStream::connect(address).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        std::thread::sleep(Duration::from_millis(20));
    }
}
