//! End to end (the real binary, memory stores): `POST /uploads` and
//! `GET /uploads/{id}`, and `GET /metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

mod support;

use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::flows::{self, login_ok};
use support::{GOOD_PASSWORD, Server};

/// A real 2×2 RGB PNG (IHDR, IDAT, IEND with their CRCs).
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00\x00\x00\xfd\xd4\x9a\x73\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\xf8\xcf\xc0\x00\x44\x0c\x10\x0a\x00\x1f\xee\x03\xfd\x8b\x5f\x14\xd4\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";
const BOUNDARY: &str = "palisade-test-boundary-7f3a";

/// An answer read as bytes (the support module's reader is for text).
struct BinaryReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl BinaryReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn send_bytes(server: &Server, request: &[u8]) -> BinaryReply {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // The server may answer (413) and stop reading before the body is all
    // written: a failed write is not the test's verdict, the answer is.
    let _ = stream.write_all(request);
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    let split = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let body = bytes[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    BinaryReply {
        status,
        headers,
        body,
    }
}

/// A `multipart/form-data` body with one part per `(field, filename, type, bytes)`.
fn form(parts: &[(&str, &str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, filename, content_type, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn post_form(server: &Server, auth: Option<&str>, body: &[u8]) -> BinaryReply {
    let mut request = format!(
        "POST /uploads HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = auth {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    send_bytes(server, &bytes)
}

fn upload(
    server: &Server,
    token: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> BinaryReply {
    post_form(
        server,
        Some(token),
        &form(&[("file", filename, content_type, bytes)]),
    )
}

fn get_upload(server: &Server, token: Option<&str>, id: &str) -> BinaryReply {
    let auth = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    send_bytes(
        server,
        format!("GET /uploads/{id} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n")
            .as_bytes(),
    )
}

fn json(reply: &BinaryReply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {} {:?}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )
    })
}

#[track_caller]
fn refused(reply: &BinaryReply, status: u16, code: &str, detail: Option<&str>) {
    assert_eq!(
        reply.status,
        status,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = json(reply);
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    if let Some(detail) = detail {
        assert_eq!(body["error"]["details"][0]["code"], detail, "{body}");
    }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

fn session(server: &Server, username: &str) -> String {
    flows::register(server, username);
    login_ok(server, username, GOOD_PASSWORD).access
}

#[test]
fn png_upload_is_served_back_to_its_owner_only_as_a_sandboxed_attachment() {
    let server = Server::start(&[]);
    let owner = session(&server, "uploader");
    let intruder = session(&server, "snooper");

    // Attack: path traversal through the client's file name; the stored
    // name is random, the display name sanitised.
    let created = upload(&server, &owner, "../../holiday.png", "image/png", PNG);
    assert_eq!(
        created.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&created.body)
    );
    let view = json(&created);
    let id = view["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32, "{view}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{view}");
    assert_eq!(view["filename"], "_._holiday.png");
    assert_eq!(view["content_type"], "image/png");
    assert_eq!(view["size"], PNG.len());

    let served = get_upload(&server, Some(&owner), &id);
    assert_eq!(served.status, 200);
    assert_eq!(served.body, PNG, "the same bytes back");
    assert_eq!(served.header("content-type"), Some("image/png"));
    assert_eq!(
        served.header("content-disposition"),
        Some("attachment; filename=\"_._holiday.png\"; filename*=UTF-8''_._holiday.png")
    );
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        served.header("content-security-policy"),
        Some("sandbox; default-src 'none'")
    );
    assert!(served.header("x-request-id").is_some());

    // Attack: IDOR — another user's id answers 404, as an unknown one.
    refused(
        &get_upload(&server, Some(&intruder), &id),
        404,
        "not_found",
        None,
    );
    refused(
        &get_upload(&server, Some(&owner), &"0".repeat(32)),
        404,
        "not_found",
        None,
    );
    refused(
        &get_upload(&server, Some(&owner), "..%2f..%2fetc"),
        404,
        "not_found",
        None,
    );
    // No bearer token: 401, for the upload and the download.
    refused(&get_upload(&server, None, &id), 401, "unauthorized", None);
    let anonymous = post_form(&server, None, &form(&[("file", "a.png", "image/png", PNG)]));
    refused(&anonymous, 401, "unauthorized", None);
}

#[test]
fn files_whose_bytes_contradict_their_name_or_type_are_refused() {
    let server = Server::start(&[]);
    let token = session(&server, "liar");

    // Attack: a PNG renamed .pdf (type confusion at the consumer).
    let renamed = upload(&server, &token, "invoice.pdf", "application/pdf", PNG);
    refused(&renamed, 422, "validation_failed", Some("type_mismatch"));
    // Attack: stored XSS, an HTML page named .png (or .txt).
    let page = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>";
    let html = upload(&server, &token, "cat.png", "image/png", page);
    refused(&html, 422, "validation_failed", Some("scriptable_content"));
    let html_text = upload(&server, &token, "notes.txt", "text/plain", page);
    refused(
        &html_text,
        422,
        "validation_failed",
        Some("scriptable_content"),
    );
    // A type this route does not take at all: 415.
    let svg = upload(&server, &token, "logo.svg", "image/svg+xml", b"<svg/>");
    refused(
        &svg,
        415,
        "unsupported_media_type",
        Some("type_not_allowed"),
    );
    let exe = upload(
        &server,
        &token,
        "setup.exe",
        "application/octet-stream",
        b"MZ\x90\0",
    );
    refused(
        &exe,
        415,
        "unsupported_media_type",
        Some("type_not_allowed"),
    );
    // A declared type that contradicts the bytes.
    let declared = upload(&server, &token, "pic.png", "application/pdf", PNG);
    refused(
        &declared,
        422,
        "validation_failed",
        Some("content_type_mismatch"),
    );
    // Not a multipart form at all: 415.
    let (name, value) = support::bearer(&token);
    server.post("/uploads", &[(name, &value)], "{}").expect(415);
    // A form without the file part, or with a second file.
    let other = post_form(
        &server,
        Some(&token),
        &form(&[("avatar", "a.png", "image/png", PNG)]),
    );
    refused(&other, 422, "validation_failed", Some("unexpected_field"));
    let two = post_form(
        &server,
        Some(&token),
        &form(&[
            ("file", "a.png", "image/png", PNG),
            ("file", "b.png", "image/png", PNG),
        ]),
    );
    refused(&two, 422, "validation_failed", Some("one_file_only"));

    // Attack: zip-slip, an entry that escapes the extraction directory.
    let slip = zip_of(&[
        ("ok.txt", b"fine"),
        ("../../../etc/cron.d/evil", b"* * * * * root sh"),
    ]);
    let slipped = upload(&server, &token, "backup.zip", "application/zip", &slip);
    refused(
        &slipped,
        422,
        "validation_failed",
        Some("archive_path_traversal"),
    );
    // A clean archive and a text file are accepted.
    let clean = zip_of(&[("docs/readme.txt", b"hello"), ("data.csv", b"a,b\n1,2\n")]);
    let accepted = upload(&server, &token, "backup.zip", "application/zip", &clean);
    assert_eq!(
        accepted.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&accepted.body)
    );
    assert_eq!(json(&accepted)["content_type"], "application/zip");
    let text = upload(&server, &token, "notes.txt", "text/plain", b"just words\n");
    assert_eq!(text.status, 201);

    // Each refusal is one security event under the shared vocabulary, and
    // no file name reaches the log.
    let log = server.log_text();
    assert!(log.contains("\"reason\":\"type_mismatch\""), "{log}");
    assert!(
        log.contains("\"reason\":\"archive_path_traversal\""),
        "{log}"
    );
    assert!(!log.contains("cron.d"), "an entry name in the log");
    assert!(!log.contains("invoice.pdf"), "a file name in the log");
}

#[test]
fn oversized_uploads_are_413_streamed_or_declared_and_the_server_keeps_serving() {
    // 256 KiB files; the route's cap is that plus the form's overhead, far
    // above the 64 KiB every other route keeps.
    let server = Server::start(&[("PALISADE_MAX_UPLOAD_BYTES", "262144")]);
    let token = session(&server, "bigfiles");

    // 100 KiB of text: over the default body cap, under the upload route's.
    let text = vec![b'a'; 100 * 1024];
    let accepted = upload(&server, &token, "big.txt", "text/plain", &text);
    assert_eq!(
        accepted.status,
        201,
        "{:?}",
        String::from_utf8_lossy(&accepted.body)
    );
    // The same size elsewhere is still refused.
    let elsewhere = server.post(
        "/auth/login",
        &[],
        &format!("\"{}\"", "a".repeat(100 * 1024)),
    );
    elsewhere.expect(413);

    // Over the policy's size but inside the route's cap: the policy's 413.
    let over = vec![b'a'; 256 * 1024 + 1];
    let too_big = upload(&server, &token, "big.txt", "text/plain", &over);
    refused(&too_big, 413, "payload_too_large", Some("too_large"));

    // Attack: memory exhaustion with a chunked body (no Content-Length to
    // check up front): refused on the stream at the route's cap.
    let body = form(&[("file", "huge.txt", "text/plain", &vec![b'a'; 1024 * 1024])]);
    let mut request = format!(
        "POST /uploads HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(16 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let streamed = send_bytes(&server, &request);
    refused(&streamed, 413, "payload_too_large", None);
    // Declared too large: refused before the body is read.
    let declared = post_form(
        &server,
        Some(&token),
        &form(&[("file", "huge.txt", "text/plain", &vec![b'a'; 1024 * 1024])]),
    );
    assert_eq!(declared.status, 413);

    // Still serving.
    server.get("/health/live", &[]).expect(200);
    let small = upload(&server, &token, "small.png", "image/png", PNG);
    assert_eq!(small.status, 201);
}

#[test]
fn the_upload_quota_per_user_is_a_413() {
    let server = Server::start(&[("PALISADE_MAX_UPLOAD_BYTES", "262144")]);
    let token = session(&server, "hoarder");
    let mut stored = 0;
    let refusal = loop {
        let reply = upload(&server, &token, "pic.png", "image/png", PNG);
        if reply.status != 201 {
            break reply;
        }
        stored += 1;
        assert!(stored <= 100, "no quota");
    };
    assert_eq!(stored, 100);
    refused(&refusal, 413, "payload_too_large", Some("quota_exceeded"));
    // Another user has a quota of their own.
    let other = session(&server, "modest");
    assert_eq!(
        upload(&server, &other, "pic.png", "image/png", PNG).status,
        201
    );
}

// --- /metrics ------------------------------------------------------------

fn metrics(server: &Server, headers: &[(&str, &str)]) -> support::Reply {
    server.get("/metrics", headers)
}

/// The value of the series line starting with `series` (labels included).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| {
            line.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[test]
fn metrics_count_route_templates_never_raw_paths() {
    let server = Server::start(&[]);
    let token = session(&server, "metered");
    let auth = format!("Bearer {token}");
    // A random key id: counted under the route template.
    let random = "k".repeat(7) + "0123456789abcdef";
    server
        .request(
            "DELETE",
            &format!("/api-keys/{random}"),
            &[("Authorization", &auth)],
            None,
        )
        .expect(404);
    // Attack: a cardinality blow-up, one series per random path.
    for n in 0..5 {
        server.get(&format!("/probe-{n}-{random}"), &[]).expect(404);
    }
    server.get("/me", &[("Authorization", &auth)]).expect(200);
    // A failed login: one authn_login_fail event.
    let before = value(
        &metrics(&server, &[]).body,
        "security_events_total{event=\"authn_login_fail\"}",
    )
    .unwrap();
    flows::login(&server, "metered", "not the password at all 99").expect(401);

    let reply = metrics(&server, &[]);
    reply.expect(200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{reply:?}"
    );
    let text = reply.body;
    assert_eq!(
        value(
            &text,
            "http_requests_total{route=\"/api-keys/{id}\",method=\"DELETE\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "http_requests_total{route=\"/me\",method=\"GET\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(
            &text,
            "http_requests_total{route=\"/auth/register\",method=\"POST\",status=\"201\"}"
        )
        .is_some()
    );
    assert!(
        !text.contains(&random),
        "a raw path became a label:\n{text}"
    );
    assert!(
        !text.contains("probe-"),
        "a raw path became a label:\n{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{") && text.contains("route=\"/me\""),
        "{text}"
    );
    let after = value(&text, "security_events_total{event=\"authn_login_fail\"}").unwrap();
    assert!(after >= before + 1.0, "{before} -> {after}\n{text}");
}

#[test]
fn twenty_unknown_usernames_from_one_slash_56_raise_one_alert_in_metrics() {
    // The detector's threshold is above the default login limit (5/minute
    // per network): let this test's logins through to it.
    let server = Server::start(&[("PALISADE_LOGIN_RATE_LIMIT", "100/minute")]);
    let before = metrics(&server, &[]).body;
    assert_eq!(
        value(&before, "security_alerts_total{kind=\"user_enumeration\"}"),
        Some(0.0),
        "{before}"
    );
    // Attack: user enumeration from addresses spread over one /56.
    for n in 0..20 {
        let ip = format!("2001:db8:0:ab{n:02x}::{:x}", n + 1);
        server
            .post(
                "/auth/login",
                &[("X-Forwarded-For", &ip)],
                &serde_json::json!({"username": format!("nobody{n}"), "password": "guess guess guess 1"})
                    .to_string(),
            )
            .expect(401);
    }
    let text = metrics(&server, &[]).body;
    assert_eq!(
        value(&text, "security_alerts_total{kind=\"user_enumeration\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "security_alerts_total{kind=\"credential_stuffing\"}"),
        Some(0.0),
        "{text}"
    );
}

const METRICS_TOKEN: &str = "Qw7Er2Ty9Ui4Op1As6Df3Gh8Jk5Lz0Xc";

fn production<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = support::with_fixed_secrets(&[
        ("PALISADE_ENV", "production"),
        ("PALISADE_CORS_ORIGINS", "https://app.example.com"),
        ("PALISADE_TRUSTED_HOSTS", "api.example.com"),
    ]);
    env.extend_from_slice(extra);
    env
}

#[test]
fn production_metrics_need_the_token() {
    let server = Server::start(&production(&[("PALISADE_METRICS_TOKEN", METRICS_TOKEN)]));
    let host = ("Host", "api.example.com");
    // Attack: reconnaissance through the security counters.
    let anonymous = metrics(&server, &[host]);
    anonymous.expect(401);
    assert_eq!(anonymous.code(), "unauthorized");
    let wrong = format!("Bearer {}", METRICS_TOKEN.get(..31).unwrap());
    metrics(&server, &[host, ("Authorization", &wrong)]).expect(401);
    let jwt_shaped = "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x";
    metrics(&server, &[host, ("Authorization", jwt_shaped)]).expect(401);
    let right = format!("Bearer {METRICS_TOKEN}");
    let reply = metrics(&server, &[host, ("Authorization", &right)]);
    reply.expect(200);
    assert!(reply.body.contains("security_events_total"), "{reply:?}");
    assert!(reply.header("x-request-id").is_some());
    assert!(
        !server.log_text().contains(METRICS_TOKEN),
        "the token in the log"
    );
}

#[test]
fn production_without_a_token_hides_metrics_and_a_metrics_addr_moves_them() {
    let hidden = Server::start(&production(&[]));
    let host = ("Host", "api.example.com");
    hidden.get("/metrics", &[host]).expect(404);
    assert!(
        hidden.log_text().contains("/metrics is not served"),
        "{}",
        hidden.log_text()
    );
    drop(hidden);

    let metrics_addr = format!("127.0.0.1:{}", support::free_port());
    let moved = Server::start(&production(&[("PALISADE_METRICS_ADDR", &metrics_addr)]));
    moved.get("/metrics", &[host]).expect(404);
    let mut stream = TcpStream::connect(&metrics_addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let reply = support::read_reply(&mut stream);
    reply.expect(200);
    assert!(reply.body.contains("http_requests_total"), "{reply:?}");
    // The internal listener serves nothing else.
    let mut stream = TcpStream::connect(&metrics_addr).unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    support::read_reply(&mut stream).expect(404);
}
