//! The Redis plumbing every core's Redis store shares (feature `redis`):
//! one connection type for a single node and a Redis Cluster alike, the
//! URL forms that choose between them, calls bounded by the store's
//! timeout, the Cluster slot rule, and Redis errors as [`StoreError`]s.
//!
//! It lives here because the cores share only this crate; a store's public
//! API names [`RedisConnection`] and nothing else from this module.
//!
//! # URLs
//!
//! - `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS, feature
//!   `redis-tls`: rustls, the system's roots or a private CA given with
//!   [`ConnectOptions::ca_certificate_pem`]): one node. A user and password
//!   in the URL log in as that ACL user.
//! - `redis+cluster://[user:password@]host:port,host:port,…` (and
//!   `rediss+cluster://…`, feature `redis-tls`): a Redis Cluster, given by one or more seed
//!   nodes; the client learns the topology from them, follows `MOVED` and
//!   `ASK` redirections, and refreshes the topology after a failover. A
//!   cluster has no database number: a path is refused.
//!
//! # One slot per call
//!
//! A script (or a `MULTI`) may only touch keys of one Cluster slot. Every
//! store builds its calls with [`Call`], which computes the slot of each
//! key (honouring `{hash tags}`) and refuses a call whose keys span slots
//! before it reaches Redis, on a single node too — so a key layout mistake
//! fails every test, not only the ones that run on a cluster.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Script, ScriptInvocation, Value,
};

use crate::StoreError;

/// How long establishing a connection may take. Calls have no response
/// timeout of the connection's own: the store's per-call timeout is the
/// only bound.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// The number of Redis Cluster hash slots.
pub const SLOTS: u16 = 16_384;

/// A connection to Redis, a single node or a Cluster: cheap to clone (every
/// clone shares one multiplexed connection per node), reconnecting by
/// itself. Build one with [`connect`] or [`connect_lazy`], or wrap a
/// [`ConnectionManager`] or a Cluster connection you already have with
/// `From`.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("cluster", &self.is_cluster())
            .finish_non_exhaustive()
    }
}

impl From<ConnectionManager> for RedisConnection {
    fn from(connection: ConnectionManager) -> Self {
        RedisConnection {
            inner: Inner::Single(connection),
        }
    }
}

impl From<ClusterConnection> for RedisConnection {
    fn from(connection: ClusterConnection) -> Self {
        RedisConnection {
            inner: Inner::Cluster(connection),
        }
    }
}

impl RedisConnection {
    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    /// Sends `WAIT replicas <ms>` to the master that holds `key` (on a
    /// Cluster, the master of the key's slot, through the client's slot
    /// map; on a single node, the node) and returns how many replicas
    /// acknowledged every write this connection sent it so far — call it
    /// right after a write to make that write survive a failover.
    ///
    /// Bounded by `timeout`: Redis is told to wait at most three quarters
    /// of it (at least 1 ms — `WAIT` with 0 would block forever), so its
    /// count normally arrives before the bound; a reply later than
    /// `timeout` is a `timeout` error. Redis blocks the full time when the
    /// master has fewer connected replicas than asked (none at all
    /// included): ask only a master known to have replicas.
    ///
    /// # Errors
    ///
    /// `timeout`, `unavailable`, or `unexpected_reply` (see [`call_error`]).
    pub async fn wait_for_replicas(
        &self,
        key: &[u8],
        replicas: u32,
        timeout: Duration,
    ) -> Result<u32, StoreError> {
        const OPERATION: &str = "replication wait";
        let server_ms = u64::try_from(timeout.as_millis().saturating_mul(3) / 4)
            .unwrap_or(u64::MAX)
            .max(1);
        let mut command = redis::cmd("WAIT");
        command.arg(replicas).arg(server_ms);
        match &self.inner {
            Inner::Single(connection) => {
                let mut connection = connection.clone();
                bounded(timeout, OPERATION, command.query_async(&mut connection)).await
            }
            Inner::Cluster(connection) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let mut connection = connection.clone();
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(key_slot(key), SlotAddr::Master),
                ));
                let reply = async move {
                    let value = connection.route_command(command, route).await?;
                    Ok::<u32, RedisError>(redis::from_redis_value(value)?)
                };
                bounded(timeout, OPERATION, reply).await
            }
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(connection) => connection.req_packed_command(cmd),
            Inner::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(connection) => connection.get_db(),
            Inner::Cluster(connection) => connection.get_db(),
        }
    }
}

/// What a URL names.
enum Target {
    Single(Box<Client>),
    Cluster(Box<ClusterClient>),
}

/// How to connect, beyond what the URL says.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("own_ca", &self.ca_pem.is_some())
            .finish()
    }
}

impl ConnectOptions {
    /// The defaults: for `rediss://`, the system's root certificates.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// Trust only this CA (PEM) for `rediss://` servers instead of the
    /// system's roots: a private CA, as managed Redis services and
    /// self-run clusters use. The server's name must still match the URL's
    /// host (no `#insecure`).
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> ConnectOptions {
        self.ca_pem = Some(pem.into());
        self
    }
}

/// Parses `url` (see the [module docs](self)). The error never repeats the
/// URL, which may carry a password.
fn target(url: &str, options: &ConnectOptions) -> Result<Target, StoreError> {
    let cluster = url
        .strip_prefix("redis+cluster://")
        .map(|rest| ("redis://", rest))
        .or_else(|| {
            url.strip_prefix("rediss+cluster://")
                .map(|rest| ("rediss://", rest))
        });
    let Some((scheme, rest)) = cluster else {
        return single_client(url, options)
            .map(|client| Target::Single(Box::new(client)))
            .map_err(redis_error);
    };
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, rest),
    };
    let hosts = match hosts.split_once('/') {
        None => hosts,
        Some((hosts, "")) => hosts,
        Some(_) => {
            return Err(StoreError::unavailable(
                "redis cluster URL (a cluster has no database number: no path)",
            ));
        }
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| match userinfo {
            Some(userinfo) => format!("{scheme}{userinfo}@{host}"),
            None => format!("{scheme}{host}"),
        })
        .collect();
    if nodes.is_empty() {
        return Err(StoreError::unavailable("redis cluster URL (no seed node)"));
    }
    let builder = ClusterClient::builder(nodes)
        .connection_timeout(CONNECTION_TIMEOUT)
        // A failover moves slots: a few quick retries follow the new
        // topology; the store's timeout bounds the whole call anyway.
        .retries(3)
        .min_retry_wait(10)
        .max_retry_wait(200);
    cluster_tls(builder, options)?
        .build()
        .map(|client| Target::Cluster(Box::new(client)))
        .map_err(redis_error)
}

/// The client of one node: with the options' CA for `rediss://`.
fn single_client(url: &str, options: &ConnectOptions) -> redis::RedisResult<Client> {
    match &options.ca_pem {
        #[cfg(feature = "redis-tls")]
        Some(pem) => Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
        #[cfg(not(feature = "redis-tls"))]
        Some(_) => Err(no_tls()),
        None => Client::open(url),
    }
}

/// The cluster builder with the options' CA.
fn cluster_tls(
    builder: redis::cluster::ClusterClientBuilder,
    options: &ConnectOptions,
) -> Result<redis::cluster::ClusterClientBuilder, StoreError> {
    match &options.ca_pem {
        #[cfg(feature = "redis-tls")]
        Some(pem) => Ok(builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })),
        #[cfg(not(feature = "redis-tls"))]
        Some(_) => Err(redis_error(no_tls())),
        None => Ok(builder),
    }
}

#[cfg(not(feature = "redis-tls"))]
fn no_tls() -> RedisError {
    RedisError::from((
        redis::ErrorKind::InvalidClientConfig,
        "a CA certificate needs palisade-errors' redis-tls feature",
    ))
}

fn single_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(None)
        .set_number_of_retries(1)
        .set_max_delay(CONNECTION_TIMEOUT)
}

fn cluster_config() -> ClusterConfig {
    ClusterConfig::new().set_connection_timeout(CONNECTION_TIMEOUT)
}

/// A connection to `url`, made now: fails if Redis (or, for a cluster,
/// every seed node) does not answer.
///
/// # Errors
///
/// `unavailable` for a malformed URL or a Redis that does not answer.
pub async fn connect(url: &str) -> Result<RedisConnection, StoreError> {
    connect_with(url, &ConnectOptions::new()).await
}

/// [`connect`] with options (a private CA for `rediss://`).
///
/// # Errors
///
/// As [`connect`].
pub async fn connect_with(
    url: &str,
    options: &ConnectOptions,
) -> Result<RedisConnection, StoreError> {
    match target(url, options)? {
        Target::Single(client) => ConnectionManager::new_with_config(*client, single_config())
            .await
            .map(RedisConnection::from)
            .map_err(|error| redis_error(error).during("connect")),
        Target::Cluster(client) => client
            .get_async_connection_with_config(cluster_config())
            .await
            .map(RedisConnection::from)
            .map_err(|error| redis_error(error).during("connect")),
    }
}

/// A connection to `url` that connects in the background: the service
/// starts while Redis is down, and calls succeed once it is up (a single
/// node: one reconnection attempt per call, so a dead Redis costs one
/// timeout per call). Call it inside a Tokio runtime.
///
/// # Errors
///
/// `unavailable` for a malformed URL.
pub fn connect_lazy(url: &str) -> Result<RedisConnection, StoreError> {
    connect_lazy_with(url, &ConnectOptions::new())
}

/// [`connect_lazy`] with options (a private CA for `rediss://`).
///
/// # Errors
///
/// As [`connect_lazy`].
pub fn connect_lazy_with(
    url: &str,
    options: &ConnectOptions,
) -> Result<RedisConnection, StoreError> {
    match target(url, options)? {
        Target::Single(client) => ConnectionManager::new_lazy_with_config(*client, single_config())
            .map(RedisConnection::from)
            .map_err(redis_error),
        Target::Cluster(client) => Ok(RedisConnection::from(
            client.get_pending_async_connection_with_config(cluster_config()),
        )),
    }
}

/// A Redis error as a store error: `unavailable`, the Redis error kept as
/// the source (it never carries a key).
pub fn redis_error(error: RedisError) -> StoreError {
    StoreError::unavailable("redis").with_source(error)
}

/// A Redis error of a call as a store error: a reply that does not parse as
/// the expected type, or a script's `CORRUPT` error (a key of the wrong
/// shape, written by something else), is `unexpected_reply`; anything else
/// `unavailable`.
pub fn call_error(error: RedisError) -> StoreError {
    if error.kind() == redis::ErrorKind::UnexpectedReturnType || error.code() == Some("CORRUPT") {
        StoreError::unexpected_reply("redis").with_source(error)
    } else {
        redis_error(error)
    }
}

/// Redis Cluster's key hash, CRC16/XMODEM.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// The Cluster slot of `key`, as `CLUSTER KEYSLOT` computes it: the hash of
/// the key's first non-empty `{hash tag}`, or of the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&byte| byte == b'{').and_then(|open| {
        let rest = key.get(open + 1..)?;
        let close = rest.iter().position(|&byte| byte == b'}')?;
        (close > 0).then(|| rest.get(..close)).flatten()
    });
    crc16(tagged.unwrap_or(key)) % SLOTS
}

/// The Cluster slot of a hash tag's content (what `{tag}` hashes to).
pub fn tag_slot(tag: &str) -> u16 {
    crc16(tag.as_bytes()) % SLOTS
}

/// A script call under construction: its keys and arguments, and the one
/// Cluster slot its keys share (see the [module docs](self)).
pub struct Call<'a> {
    invocation: ScriptInvocation<'a>,
    slot: Option<u16>,
    cross_slot: bool,
}

impl fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The invocation's Debug shows only how many keys and arguments:
        // they may name subjects.
        f.debug_struct("Call")
            .field("invocation", &self.invocation)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl<'a> Call<'a> {
    /// A call of `script` with no keys or arguments yet.
    pub fn new(script: &'a Script) -> Call<'a> {
        Call {
            invocation: script.prepare_invoke(),
            slot: None,
            cross_slot: false,
        }
    }

    /// Adds a key (`KEYS[n]`).
    pub fn key(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref();
        let slot = key_slot(key);
        match self.slot {
            None => self.slot = Some(slot),
            Some(first) if first != slot => self.cross_slot = true,
            Some(_) => {}
        }
        self.invocation.key(key);
        self
    }

    /// Adds an argument (`ARGV[n]`).
    pub fn arg(&mut self, arg: impl redis::ToRedisArgs) -> &mut Self {
        self.invocation.arg(arg);
        self
    }

    /// The slot every key of the call is on (`None` without keys).
    pub fn slot(&self) -> Option<u16> {
        self.slot
    }

    /// Runs the call on a clone of `connection` within `timeout`, as
    /// `operation` (named in the error). A call whose keys span Cluster
    /// slots is refused here, on a single node too, as a bug: an
    /// `unexpected_reply` error, never sent.
    ///
    /// # Errors
    ///
    /// `timeout`, `unavailable`, or `unexpected_reply` (see [`call_error`]).
    pub async fn invoke<T: FromRedisValue>(
        &self,
        connection: &RedisConnection,
        timeout: Duration,
        operation: &'static str,
    ) -> Result<T, StoreError> {
        if self.cross_slot {
            debug_assert!(
                !self.cross_slot,
                "{operation}: a script's keys span Redis Cluster slots"
            );
            return Err(
                StoreError::unexpected_reply("redis (keys span Cluster slots)").during(operation),
            );
        }
        let mut connection = connection.clone();
        bounded(
            timeout,
            operation,
            self.invocation.invoke_async(&mut connection),
        )
        .await
    }
}

/// `call` (a Redis call on a clone of a [`RedisConnection`]) within
/// `timeout`, as `operation` (named in the error).
///
/// # Errors
///
/// `timeout`, `unavailable`, or `unexpected_reply` (see [`call_error`]).
pub async fn bounded<T>(
    timeout: Duration,
    operation: &'static str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(call_error(error).during(operation)),
        Err(_) => Err(StoreError::timeout(operation)),
    }
}

/// Runs `call` on a clone of `connection` within `timeout`: the same as
/// [`Call::invoke`].
///
/// # Errors
///
/// As [`Call::invoke`].
pub async fn invoke<T: FromRedisValue>(
    connection: &RedisConnection,
    timeout: Duration,
    operation: &'static str,
    call: &Call<'_>,
) -> Result<T, StoreError> {
    call.invoke(connection, timeout, operation).await
}

/// Runs one command on a clone of `connection` within `timeout`.
///
/// # Errors
///
/// As [`bounded`].
pub async fn query<T: FromRedisValue>(
    connection: &RedisConnection,
    timeout: Duration,
    operation: &'static str,
    command: &Cmd,
) -> Result<T, StoreError> {
    let mut connection = connection.clone();
    bounded(timeout, operation, command.query_async(&mut connection)).await
}

/// Runs a pipeline on a clone of `connection` within `timeout`. On a
/// Cluster every command of a pipeline must be on one slot (the client
/// refuses a pipeline that is not): run commands for different slots
/// concurrently instead, which a single node's multiplexed connection
/// pipelines by itself.
///
/// # Errors
///
/// As [`bounded`].
pub async fn query_pipeline<T: FromRedisValue>(
    connection: &RedisConnection,
    timeout: Duration,
    operation: &'static str,
    pipeline: &Pipeline,
) -> Result<T, StoreError> {
    let mut connection = connection.clone();
    bounded(timeout, operation, pipeline.query_async(&mut connection)).await
}

/// Runs `calls` (each bounded by its own timeout) concurrently, in order:
/// commands for keys on different Cluster slots, which cannot share a
/// pipeline there (a single node's multiplexed connection pipelines them
/// by itself). The first error is returned.
///
/// # Errors
///
/// The first call's error.
pub async fn each<T, F>(calls: impl IntoIterator<Item = F>) -> Result<Vec<T>, StoreError>
where
    F: Future<Output = Result<T, StoreError>>,
{
    futures_util::future::try_join_all(calls).await
}

/// `<prefix>:{<16 hex>}`: the start of every key of `subject`, whose hash
/// tag (the first 8 bytes of the SHA-256 of the subject) puts all of them
/// on one Cluster slot, and keeps the subject's own text out of Redis.
pub fn subject_key_prefix(prefix: &str, subject: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(subject.as_bytes());
    let (tag, _) = digest.split_at(8);
    format!("{prefix}:{{{}}}", hex(tag))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// 64 lowercase hex digits as 32 bytes.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?;
    }
    Some(out)
}

/// A store's operational log line for a failed call: the store error (its
/// kind and operation) and the timeout, never a key or an id. No `event`
/// field: the caller that decides logs the one `store_unavailable` event.
pub fn log_failure(store: &'static str, error: &StoreError, timeout: Duration) {
    tracing::warn!(
        store,
        store_error = error.kind().as_str(),
        %error,
        timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        "store did not answer"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_cluster_slots() {
        // Redis Cluster specification: CRC16("123456789") = 0x31C3;
        // CLUSTER KEYSLOT of "foo" is 12182, of "bar" 5061.
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"bar"), 5_061);
        assert_eq!(tag_slot("foo"), 12_182);
        // The first non-empty tag decides; an empty `{}` hashes the whole key.
        assert_eq!(key_slot(b"user:{foo}:x"), 12_182);
        assert_eq!(key_slot(b"{foo}{bar}"), 12_182);
        assert_eq!(key_slot(b"{}foo"), crc16(b"{}foo") % SLOTS);
        assert_eq!(key_slot(b"foo{"), crc16(b"foo{") % SLOTS);
    }

    #[test]
    fn a_call_whose_keys_span_slots_is_refused_before_redis() {
        let script = Script::new("return 1");
        let mut call = Call::new(&script);
        call.key("p:{a}:x").key("p:{a}:y");
        assert_eq!(call.slot(), Some(tag_slot("a")));
        assert!(!call.cross_slot);
        call.key("p:{b}:z");
        assert!(call.cross_slot);
    }

    fn target_of(url: &str) -> Result<Target, StoreError> {
        target(url, &ConnectOptions::new())
    }

    #[test]
    fn cluster_urls_are_parsed_without_echoing_the_password() {
        assert!(matches!(
            target_of("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            Ok(Target::Cluster(_))
        ));
        assert!(matches!(
            target_of("redis+cluster://user:pw@127.0.0.1:7000"),
            Ok(Target::Cluster(_))
        ));
        assert!(matches!(
            target_of("redis://127.0.0.1:6379/0"),
            Ok(Target::Single(_))
        ));
        let error = target_of("redis+cluster://user:s3cret@127.0.0.1:7000/2")
            .err()
            .unwrap();
        assert!(!format!("{error} {error:?}").contains("s3cret"));
        assert!(target_of("redis+cluster://").is_err());
    }
}
