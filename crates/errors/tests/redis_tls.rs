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
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, SanType};

const PASSWORD: &str = "s3cret-acl-password";

struct Authority {
    cert: Certificate,
    key: KeyPair,
}

fn authority() -> Authority {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Its own name: rcgen's default is the same for every certificate,
    // and OpenSSL (a cluster node checking its peers) takes a leaf named
    // like its issuer for a self-signed one.
    params
        .distinguished_name
        .push(DnType::CommonName, "palisade test CA");
    let cert = params.self_signed(&key).unwrap();
    Authority { cert, key }
}

/// A TLS-only redis-server with the ACL user `app`; the default user off.
struct TlsRedis {
    child: Child,
    port: u16,
    ca_pem: String,
    _dir: Option<tempdir::Dir>,
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

/// A private CA and a certificate it signed for `localhost` and
/// 127.0.0.1, as files in a fresh directory.
struct Pki {
    ca_pem: String,
    cert_file: std::path::PathBuf,
    key_file: std::path::PathBuf,
    ca_file: std::path::PathBuf,
    dir: tempdir::Dir,
}

/// The PKI, or `None` (skip) without `redis-server` outside CI.
fn pki() -> Option<Pki> {
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
        .distinguished_name
        .push(DnType::CommonName, "localhost");
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
    Some(Pki {
        cert_file: write("server.crt", &server_cert.pem()),
        key_file: write("server.key", &server_key.serialize_pem()),
        ca_file: write("ca.crt", &ca.cert.pem()),
        ca_pem: ca.cert.pem(),
        dir: tempdir::Dir(dir),
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A TLS redis-server of `pki` on a free port, in its own directory under
/// the PKI's, with `extra` arguments (cluster mode).
fn spawn(pki: &Pki, extra: &[&str]) -> TlsRedis {
    let port = free_port();
    let dir = pki.dir.0.join(port.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new("redis-server")
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .args(["--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(&pki.cert_file)
        .arg("--tls-key-file")
        .arg(&pki.key_file)
        .arg("--tls-ca-cert-file")
        .arg(&pki.ca_file)
        .args(["--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"))
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
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = TlsRedis {
        child,
        port,
        ca_pem: pki.ca_pem.clone(),
        _dir: None,
    };
    wait_listening(port);
    server
}

fn start() -> Option<TlsRedis> {
    let pki = pki()?;
    let mut server = spawn(&pki, &[]);
    server._dir = Some(pki.dir);
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

/// Three TLS redis-servers in cluster mode (bus over TLS too), the 16384
/// slots split between them: a Redis Cluster behind a private CA, as
/// managed services run it. Formed over this crate's own `rediss://`
/// connections (`CLUSTER ADDSLOTSRANGE`, `CLUSTER MEET`).
struct TlsCluster {
    nodes: Vec<TlsRedis>,
    ca_pem: String,
    _pki: Pki,
}

async fn start_cluster() -> Option<TlsCluster> {
    let pki = pki()?;
    let mut nodes = Vec::new();
    let mut buses = Vec::new();
    for _ in 0..3 {
        let bus = free_port().to_string();
        nodes.push(spawn(
            &pki,
            &[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--tls-cluster",
                "yes",
                "--cluster-port",
                &bus,
            ],
        ));
        buses.push(bus);
    }
    let options = ConnectOptions::new().ca_certificate_pem(pki.ca_pem.clone());
    let mut direct = Vec::new();
    for node in &nodes {
        let url = format!("rediss://app:{PASSWORD}@127.0.0.1:{}/0", node.port);
        direct.push(connect_with(&url, &options).await.unwrap());
    }
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (connection, (first, last)) in direct.iter().zip(ranges) {
        let mut add = redis::cmd("CLUSTER");
        add.arg("ADDSLOTSRANGE").arg(first).arg(last);
        let _: String = query(connection, Duration::from_secs(2), "addslots", &add)
            .await
            .unwrap();
    }
    for (node, bus) in nodes.iter().zip(&buses).skip(1) {
        let mut meet = redis::cmd("CLUSTER");
        meet.arg("MEET").arg("127.0.0.1").arg(node.port).arg(bus);
        let _: String = query(&direct[0], Duration::from_secs(2), "meet", &meet)
            .await
            .unwrap();
    }
    let started = Instant::now();
    loop {
        let mut ready = true;
        for connection in &direct {
            let mut info = redis::cmd("CLUSTER");
            info.arg("INFO");
            let text: String = query(connection, Duration::from_secs(2), "info", &info)
                .await
                .unwrap();
            ready &= text.contains("cluster_state:ok") && text.contains("cluster_known_nodes:3");
        }
        if ready {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let logs: Vec<String> = nodes
                .iter()
                .map(|node| {
                    let log = pki.dir.0.join(node.port.to_string()).join("redis.log");
                    std::fs::read_to_string(log).unwrap_or_default()
                })
                .collect();
            let mut nodes_cmd = redis::cmd("CLUSTER");
            nodes_cmd.arg("NODES");
            let seen: Result<String, _> =
                query(&direct[0], Duration::from_secs(2), "nodes", &nodes_cmd).await;
            panic!(
                "the TLS cluster did not form: {seen:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Some(TlsCluster {
        ca_pem: pki.ca_pem.clone(),
        nodes,
        _pki: pki,
    })
}

/// `rediss+cluster://` end to end: the seed nodes and every node the slot
/// map sends the client to are verified against the private CA, and the
/// client logs in to each as the ACL user; keys in every third of the
/// slots land on their own node. A CA other than the cluster's (a man in
/// the middle) gets no connection.
#[tokio::test]
async fn rediss_cluster_with_the_private_ca_follows_the_slots() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let seeds = format!(
        "127.0.0.1:{},127.0.0.1:{}",
        cluster.nodes[0].port, cluster.nodes[1].port
    );
    let url = format!("rediss+cluster://app:{PASSWORD}@{seeds}");
    let options = ConnectOptions::new().ca_certificate_pem(cluster.ca_pem.clone());
    let connection = connect_with(&url, &options).await.unwrap();
    for n in 0..30 {
        let key = format!("palisade-tls-cluster:{n}");
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(n);
        let _: String = query(&connection, Duration::from_secs(2), "set", &set)
            .await
            .unwrap();
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let value: i64 = query(&connection, Duration::from_secs(2), "get", &get)
            .await
            .unwrap();
        assert_eq!(value, n);
    }
    for node in &cluster.nodes {
        let url = format!("rediss://app:{PASSWORD}@127.0.0.1:{}/0", node.port);
        let direct = connect_with(&url, &options).await.unwrap();
        let keys: i64 = query(
            &direct,
            Duration::from_secs(2),
            "dbsize",
            &redis::cmd("DBSIZE"),
        )
        .await
        .unwrap();
        assert!(keys > 0, "node {} holds none of the keys", node.port);
    }

    let other = ConnectOptions::new().ca_certificate_pem(authority().cert.pem());
    match connect_with(&url, &other).await {
        Err(error) => assert!(!format!("{error} {error:?}").contains(PASSWORD)),
        Ok(connection) => assert!(ping(&connection).await.is_err()),
    }
}
