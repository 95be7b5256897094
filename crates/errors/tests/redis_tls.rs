//! TLS and ACL users on a real `redis-server` this test starts on a free
//! port with certificates it makes (a private CA): the connection the
//! stores share speaks `rediss://` to a server whose certificate chains to
//! the configured CA, logs in as the URL's ACL user, and refuses a server
//! that presents a certificate from any other CA (a man in the middle).
//! Under `CI=true` a missing `redis-server` fails these tests.

#![cfg(feature = "redis-tls")]
#![allow(clippy::unwrap_used, clippy::print_stderr)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palisade_errors::redis::{ConnectOptions, RedisConnection, connect_with, query};
use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair, SanType};

const PASSWORD: &str = "s3cret-acl-password";

struct Authority {
    cert: Certificate,
    key: KeyPair,
}

fn authority() -> Authority {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Authority { cert, key }
}

/// A TLS-only redis-server with the ACL user `app`; the default user off.
struct TlsRedis {
    child: Child,
    port: u16,
    ca_pem: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Option<TlsRedis> {
    let available = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !available {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is required under CI=true"
        );
        eprintln!("skipped: no redis-server");
        return None;
    }
    let ca = authority();
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let server_cert = params.signed_by(&server_key, &ca.cert, &ca.key).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "palisade-redis-tls-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cert_file = write("server.crt", &server_cert.pem());
    let key_file = write("server.key", &server_key.serialize_pem());
    let ca_file = write("ca.crt", &ca.cert.pem());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .args(["--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(&cert_file)
        .arg("--tls-key-file")
        .arg(&key_file)
        .arg("--tls-ca-cert-file")
        .arg(&ca_file)
        .args(["--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .args(["--user", "default", "off"])
        .args([
            "--user",
            "app",
            "on",
            &format!(">{PASSWORD}"),
            "~*",
            "&*",
            "+@all",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsRedis {
        child,
        port,
        ca_pem: ca.cert.pem(),
        _dir: tempdir::Dir(dir),
    };
    wait_listening(port);
    Some(server)
}

fn wait_listening(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server with TLS did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn ping(connection: &RedisConnection) -> Result<String, palisade_errors::StoreError> {
    query(
        connection,
        Duration::from_secs(2),
        "ping",
        &redis::cmd("PING"),
    )
    .await
}

#[tokio::test]
async fn rediss_with_the_private_ca_logs_in_as_the_acl_user() {
    let Some(server) = start() else { return };
    let options = ConnectOptions::new().ca_certificate_pem(server.ca_pem.clone());
    let url = format!("rediss://app:{PASSWORD}@127.0.0.1:{}/0", server.port);
    let connection = connect_with(&url, &options).await.unwrap();
    assert_eq!(ping(&connection).await.unwrap(), "PONG");
    let who: String = query(
        &connection,
        Duration::from_secs(2),
        "whoami",
        &redis::cmd("ACL").arg("WHOAMI").clone(),
    )
    .await
    .unwrap();
    assert_eq!(who, "app");
}

#[tokio::test]
async fn a_man_in_the_middle_certificate_from_another_ca_is_refused() {
    let Some(server) = start() else { return };
    // The client trusts a different CA than the one that signed the
    // server's certificate: what a TLS-intercepting proxy presents.
    let other = authority();
    let options = ConnectOptions::new().ca_certificate_pem(other.cert.pem());
    let url = format!("rediss://app:{PASSWORD}@127.0.0.1:{}/0", server.port);
    let error = connect_with(&url, &options).await.unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn a_plaintext_client_cannot_talk_to_the_tls_port() {
    let Some(server) = start() else { return };
    let url = format!("redis://app:{PASSWORD}@127.0.0.1:{}/0", server.port);
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        connect_with(&url, &ConnectOptions::new()),
    )
    .await;
    if let Ok(Ok(connection)) = outcome {
        // Connected at the TCP level maybe, but no command succeeds.
        assert!(ping(&connection).await.is_err());
    }
}

#[tokio::test]
async fn a_wrong_acl_password_is_refused_without_echoing_it() {
    let Some(server) = start() else { return };
    let options = ConnectOptions::new().ca_certificate_pem(server.ca_pem.clone());
    let wrong = "not-the-password-123";
    let url = format!("rediss://app:{wrong}@127.0.0.1:{}/0", server.port);
    let error = connect_with(&url, &options).await.unwrap_err();
    let text = format!("{error} {error:?}");
    assert!(!text.contains(wrong), "{text}");
    // The default user is off: no password at all gets nowhere either.
    let url = format!("rediss://127.0.0.1:{}/0", server.port);
    match connect_with(&url, &options).await {
        Err(_) => {}
        Ok(connection) => assert!(ping(&connection).await.is_err()),
    }
}
