//! The SSRF guard: [`SsrfGuard`] checks a URL the server is about to fetch
//! (a webhook, an avatar URL, an OpenID discovery document), resolves its
//! host through an injectable [`Resolver`], refuses every address that is
//! not public, and hands back the validated [`SocketAddr`]s in a [`Target`]. [`SsrfGuard`]'s docs say how to connect and follow
//! redirects without undoing the check.
//!
//! The default [`SystemResolver`] runs each blocking `getaddrinfo` on its own
//! thread, which no timeout can stop; it caps the lookups in flight
//! ([`DEFAULT_MAX_LOOKUPS_IN_FLIGHT`]) so that URLs under a name whose DNS
//! server never answers cannot pile up threads until the process runs out.
//! Past the cap a check fails at once with [`SsrfErrorKind::ResolverBusy`]
//! (503 `unavailable`, retryable); a slot frees when its thread finishes,
//! even if the caller gave up.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use palisade_errors::ErrorKind;
use url::{Host, Url};

use crate::{ConfigError, ConfigErrorKind, FieldReason, UrlError, UrlPolicy};

/// What a [`Resolver`] returns: the addresses of a name, boxed so the trait
/// stays object-safe and needs no runtime.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns a host name into socket addresses. Inject a fake in tests (no DNS
/// there) or your runtime's resolver in production; bound the time it may
/// take with your runtime's timeout around [`SsrfGuard::check`], and bound
/// the lookups in flight (an error of kind [`io::ErrorKind::WouldBlock`]
/// means "busy, retry later": [`SsrfErrorKind::ResolverBusy`], 503).
pub trait Resolver: Send + Sync {
    /// The addresses of `host` (a domain name, never an IP literal: the
    /// guard checks those without resolving) on `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// How many system lookups may be in flight at once by default.
pub const DEFAULT_MAX_LOOKUPS_IN_FLIGHT: usize = 32;

/// The blocking lookup a [`SystemResolver`] runs on its thread.
type BlockingLookup = Arc<dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync>;

/// The system resolver (`getaddrinfo` through [`ToSocketAddrs`]), run on a
/// short-lived thread per lookup so an async caller is never blocked.
///
/// A timeout around [`SsrfGuard::check`] cannot stop a `getaddrinfo` call,
/// so an attacker who submits URLs under a name whose DNS server never
/// answers could otherwise pile up blocked threads until the process runs
/// out. The resolver therefore bounds the lookups in flight
/// ([`DEFAULT_MAX_LOOKUPS_IN_FLIGHT`], see
/// [`with_max_in_flight`](Self::with_max_in_flight)): at the limit it
/// refuses at once, without starting a thread, with an [`io::Error`] of kind
/// [`WouldBlock`](io::ErrorKind::WouldBlock), which the guard reports as
/// [`SsrfErrorKind::ResolverBusy`] (503 `unavailable`, retryable). A slot is
/// freed when its thread finishes, even if the caller gave up waiting.
/// Clones share the limit; build one resolver (or guard) for the service.
#[derive(Clone)]
pub struct SystemResolver {
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    lookup: BlockingLookup,
}

impl fmt::Debug for SystemResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemResolver")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

impl Default for SystemResolver {
    fn default() -> SystemResolver {
        SystemResolver::new()
    }
}

impl SystemResolver {
    /// `getaddrinfo`, at most [`DEFAULT_MAX_LOOKUPS_IN_FLIGHT`] at once.
    pub fn new() -> SystemResolver {
        SystemResolver::with_lookup(|host, port| {
            (host, port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>)
        })
    }

    /// A resolver running `lookup` instead of `getaddrinfo` (tests: no DNS).
    fn with_lookup(
        lookup: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> SystemResolver {
        SystemResolver {
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: DEFAULT_MAX_LOOKUPS_IN_FLIGHT,
            lookup: Arc::new(lookup),
        }
    }

    /// Sets how many lookups (threads) may be in flight at once.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidLimit`] for 0.
    pub fn with_max_in_flight(
        mut self,
        max_in_flight: usize,
    ) -> Result<SystemResolver, ConfigError> {
        if max_in_flight == 0 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidLimit,
                "SystemResolver max_in_flight: at least 1",
            ));
        }
        self.max_in_flight = max_in_flight;
        Ok(self)
    }

    /// How many lookups are in flight now (threads not yet finished).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Takes a slot, or `None` at the limit.
    fn acquire(&self) -> Option<Slot> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_in_flight).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(Arc::clone(&self.in_flight)))
    }
}

/// One lookup in flight; dropping it (thread finished, or never started)
/// frees the slot.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        let Some(slot) = self.acquire() else {
            return Box::pin(std::future::ready(Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "too many DNS lookups in flight",
            ))));
        };
        Box::pin(ThreadLookup::spawn(
            host.to_owned(),
            port,
            Arc::clone(&self.lookup),
            slot,
        ))
    }
}

#[derive(Default)]
struct LookupState {
    result: Option<io::Result<Vec<SocketAddr>>>,
    waker: Option<Waker>,
}

/// A blocking lookup on its own thread, awaited without a runtime.
struct ThreadLookup {
    shared: Arc<Mutex<LookupState>>,
}

impl ThreadLookup {
    fn spawn(host: String, port: u16, lookup: BlockingLookup, slot: Slot) -> ThreadLookup {
        let shared = Arc::new(Mutex::new(LookupState::default()));
        let for_thread = Arc::clone(&shared);
        // On a failed spawn the closure, and with it the slot, is dropped.
        let spawned = std::thread::Builder::new()
            .name("palisade-dns".to_owned())
            .spawn(move || {
                let result = lookup(&host, port);
                drop(slot);
                let mut state = for_thread.lock().unwrap_or_else(PoisonError::into_inner);
                state.result = Some(result);
                if let Some(waker) = state.waker.take() {
                    waker.wake();
                }
            });
        if let Err(error) = spawned {
            shared.lock().unwrap_or_else(PoisonError::into_inner).result = Some(Err(error));
        }
        ThreadLookup { shared }
    }
}

impl Future for ThreadLookup {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        match state.result.take() {
            Some(result) => Poll::Ready(result),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A resolver from a fixed table, for tests and for pinning names to
/// addresses; a name not in the table does not resolve.
///
/// ```
/// use palisade_validate::{Resolver, StaticResolver};
///
/// let resolver = StaticResolver::new().with("api.example", ["93.184.215.14".parse().unwrap()]);
/// # let _ = resolver;
/// ```
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    entries: Vec<(String, Vec<IpAddr>)>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> StaticResolver {
        StaticResolver::default()
    }

    /// Maps `host` (compared case-insensitively, without a trailing dot) to
    /// `addrs`.
    #[must_use]
    pub fn with(mut self, host: &str, addrs: impl IntoIterator<Item = IpAddr>) -> StaticResolver {
        self.entries.push((
            host.trim_end_matches('.').to_ascii_lowercase(),
            addrs.into_iter().collect(),
        ));
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        let host = host.trim_end_matches('.');
        let found = self
            .entries
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(host))
            .map(|(_, addrs)| addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        Box::pin(std::future::ready(found.ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "name not in the static table")
        })))
    }
}

/// Why a URL may not be fetched. Names the rule (and, for an address, the
/// class of range), never the URL or the address.
#[derive(Debug)]
pub struct SsrfError {
    kind: SsrfErrorKind,
    source: Option<io::Error>,
}

/// The class of an [`SsrfError`]; [`as_str`](Self::as_str) is the detail's code.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SsrfErrorKind {
    /// The URL itself was refused ([`UrlPolicy`]: scheme, credentials, ...).
    Url(crate::UrlErrorKind),
    /// A host name that is local by definition (`localhost`, `*.localhost`,
    /// `*.local`, `*.internal`) or spelled like a number (`0x7f.1`).
    LocalName,
    /// An address (given or resolved) that is not public; the range says which.
    BlockedAddress(BlockedRange),
    /// A port outside the guard's allow-list.
    Port,
    /// The name did not resolve (or to no address).
    Unresolvable,
    /// The resolver refused to start another lookup (too many in flight, an
    /// [`io::ErrorKind::WouldBlock`] from the [`Resolver`]); retry later.
    /// Converts to 503 `unavailable`, not 422.
    ResolverBusy,
    /// More redirects than the guard allows.
    TooManyRedirects,
    /// A redirect from `https` to `http`.
    Downgrade,
}

impl SsrfErrorKind {
    /// The stable snake_case code.
    pub const fn as_str(self) -> &'static str {
        match self {
            SsrfErrorKind::Url(kind) => kind.as_str(),
            SsrfErrorKind::LocalName => "ssrf_local_name",
            SsrfErrorKind::BlockedAddress(range) => range.as_str(),
            SsrfErrorKind::Port => "ssrf_port",
            SsrfErrorKind::Unresolvable => "ssrf_unresolvable",
            SsrfErrorKind::ResolverBusy => "ssrf_resolver_busy",
            SsrfErrorKind::TooManyRedirects => "ssrf_too_many_redirects",
            SsrfErrorKind::Downgrade => "ssrf_downgrade",
        }
    }
}

/// The class of a non-public address.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockedRange {
    /// `0.0.0.0/8` ("this network"; `0.0.0.0` reaches the local host) or `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// `169.254/16` (the cloud metadata services live here), `fe80::/10`.
    LinkLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `fc00::/7` (unique local, RFC 4193) and the deprecated `fec0::/10`.
    UniqueLocal,
    /// `64:ff9b::/96` and `64:ff9b:1::/48` (NAT64), `2002::/16` (6to4),
    /// `2001::/32` (Teredo), IPv4-compatible `::a.b.c.d`: forms that carry
    /// an IPv4 address a gateway may route to.
    Translated,
    /// Everything else that is not global unicast: `192.0.0/24`,
    /// `192.88.99/24`, `198.18/15`, `240/4`, IPv6 outside `2000::/3`,
    /// `2001::/23`, `100::/64`.
    Reserved,
}

impl BlockedRange {
    /// The stable snake_case code (`ssrf_loopback`, `ssrf_private`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockedRange::Unspecified => "ssrf_unspecified",
            BlockedRange::Loopback => "ssrf_loopback",
            BlockedRange::Private => "ssrf_private",
            BlockedRange::SharedAddressSpace => "ssrf_shared_address_space",
            BlockedRange::LinkLocal => "ssrf_link_local",
            BlockedRange::Multicast => "ssrf_multicast",
            BlockedRange::Broadcast => "ssrf_broadcast",
            BlockedRange::Documentation => "ssrf_documentation",
            BlockedRange::UniqueLocal => "ssrf_unique_local",
            BlockedRange::Translated => "ssrf_translated",
            BlockedRange::Reserved => "ssrf_reserved",
        }
    }
}

impl SsrfError {
    fn new(kind: SsrfErrorKind) -> SsrfError {
        SsrfError { kind, source: None }
    }

    /// The class of the error.
    pub fn kind(&self) -> SsrfErrorKind {
        self.kind
    }
}

impl From<UrlError> for SsrfError {
    fn from(error: UrlError) -> SsrfError {
        SsrfError::new(SsrfErrorKind::Url(error.kind()))
    }
}

impl fmt::Display for SsrfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "URL may not be fetched: {}", self.kind.as_str())
    }
}

impl std::error::Error for SsrfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl FieldReason for SsrfError {
    fn code(&self) -> &'static str {
        self.kind.as_str()
    }

    /// As the default, except that [`SsrfErrorKind::ResolverBusy`] is a 503
    /// `unavailable` refusal (retryable), not a 422.
    fn at(self, field: &str) -> crate::Refusal {
        if self.kind != SsrfErrorKind::ResolverBusy {
            return crate::Refusal::new(
                ErrorKind::ValidationFailed,
                self.code(),
                clean_field(field),
            );
        }
        crate::Refusal::new(ErrorKind::Unavailable, self.code(), clean_field(field))
    }
}

/// A field path as the default [`FieldReason::at`] keeps it: one line, bounded.
fn clean_field(field: &str) -> String {
    field
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

/// 422 `validation_failed` without a detail; `.at("field")` adds one and logs.
/// [`SsrfErrorKind::ResolverBusy`] is 503 `unavailable` instead: the URL may
/// be fine, the server is busy.
impl From<SsrfError> for palisade_errors::Error {
    fn from(error: SsrfError) -> palisade_errors::Error {
        let kind = if error.kind == SsrfErrorKind::ResolverBusy {
            ErrorKind::Unavailable
        } else {
            ErrorKind::ValidationFailed
        };
        palisade_errors::Error::new(kind).with_source(error)
    }
}

/// Why `ip` is not a public address, or `None` when it is one.
///
/// IPv6 is allow-listed: only global unicast (`2000::/3`) outside its
/// special-purpose blocks passes; an IPv4-mapped address (`::ffff:a.b.c.d`)
/// is judged as the IPv4 address it is.
///
/// ```
/// use palisade_validate::{BlockedRange, blocked_range};
///
/// assert_eq!(blocked_range("169.254.169.254".parse().unwrap()), Some(BlockedRange::LinkLocal));
/// assert_eq!(blocked_range("::ffff:127.0.0.1".parse().unwrap()), Some(BlockedRange::Loopback));
/// assert_eq!(blocked_range("8.8.8.8".parse().unwrap()), None);
/// ```
pub fn blocked_range(ip: IpAddr) -> Option<BlockedRange> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn blocked_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    use BlockedRange::*;
    let table: &[([u8; 4], u32, BlockedRange)] = &[
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Reserved),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([255, 255, 255, 255], 32, Broadcast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    table
        .iter()
        .find(|(network, prefix, _)| in_v4(ip, *network, *prefix))
        .map(|(_, _, range)| *range)
}

fn in_v6(ip: Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(network)) & mask
}

fn blocked_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    use BlockedRange::*;
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    let table: &[([u16; 8], u32, BlockedRange)] = &[
        ([0, 0, 0, 0, 0, 0, 0, 0], 128, Unspecified),
        ([0, 0, 0, 0, 0, 0, 0, 1], 128, Loopback),
        // IPv4-compatible (deprecated) and the SIIT-translated ::ffff:0:a.b.c.d.
        ([0, 0, 0, 0, 0, 0, 0, 0], 96, Translated),
        ([0, 0, 0, 0, 0xffff, 0, 0, 0], 96, Translated),
        ([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, Translated),
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, Translated),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, Translated),
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, Translated),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Documentation),
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Documentation),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, UniqueLocal),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, UniqueLocal),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, LinkLocal),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Multicast),
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Reserved),
    ];
    if let Some((_, _, range)) = table
        .iter()
        .find(|(network, prefix, _)| in_v6(ip, *network, *prefix))
    {
        return Some(*range);
    }
    // Only global unicast is public.
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some(Reserved);
    }
    None
}

/// Names that are local without asking DNS: RFC 6761 `localhost` (many
/// resolvers answer it themselves), mDNS `.local`, and the `.internal`,
/// `.localdomain`, `.home.arpa` and `.lan` names of private networks and
/// cloud metadata (`metadata.google.internal`).
fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let last = host.rsplit('.').next().unwrap_or("");
    host == "localhost"
        || host.ends_with(".home.arpa")
        || matches!(
            last,
            "localhost" | "local" | "internal" | "localdomain" | "lan"
        )
}

/// A host name whose last label is a number in any base (`0x7f`, `0177`,
/// `2130706433`): `inet_aton` would read it as an IPv4 address. The WHATWG
/// parser already turns these into addresses for `http(s)`; this catches
/// them for any other scheme the guard is configured with.
fn looks_numeric(host: &str) -> bool {
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let digits = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .unwrap_or(last);
    !last.is_empty()
        && digits.bytes().all(|b| b.is_ascii_hexdigit())
        && (digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() != last.len())
}

/// A URL the guard accepted, with the addresses to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    url: Url,
    addrs: Vec<SocketAddr>,
    redirects: usize,
}

impl Target {
    /// The checked URL (parsed and serialised).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host to send as `Host` and as the TLS server name.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    /// Every address the name resolved to, all public: connect to these
    /// and no other (never resolve the name again).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// How many redirects led here.
    pub fn redirects(&self) -> usize {
        self.redirects
    }
}

/// The default number of redirects [`SsrfGuard::follow`] allows.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;

/// Checks URLs the server will fetch.
///
/// # Connect to exactly the checked addresses (DNS rebinding)
///
/// Resolving the name again to connect would let an attacker's DNS server
/// answer a public address to the check and `127.0.0.1` to the connection
/// (DNS rebinding; a TTL of 0 makes it easy). Connect to
/// [`Target::addrs`] only, sending [`Target::host`] as the `Host` header and
/// TLS server name: with `reqwest`, `ClientBuilder::resolve_to_addrs(host,
/// addrs)` on a client built for this request, with
/// `redirect::Policy::none()` and `no_proxy()` (a proxy would resolve the
/// name itself); with hyper, open the `TcpStream` to the address yourself.
///
/// # Redirects
///
/// Turn off the HTTP client's automatic redirects: a public URL that
/// answers `302 Location: http://169.254.169.254/` would otherwise reach
/// the cloud metadata service. Pass every `Location` to
/// [`SsrfGuard::follow`], which resolves it against the previous URL,
/// checks it like the first, and counts the hops.
///
/// ```
/// use palisade_validate::{SsrfErrorKind, BlockedRange, SsrfGuard, StaticResolver};
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// let resolver = StaticResolver::new()
///     .with("hooks.example", ["93.184.215.14".parse().unwrap()])
///     .with("rebind.example", ["127.0.0.1".parse().unwrap()]);
/// let guard = SsrfGuard::with_resolver(resolver);
///
/// let target = block_on(guard.check("https://hooks.example/in")).unwrap();
/// assert_eq!(target.addrs()[0].to_string(), "93.184.215.14:443");
///
/// let refused = block_on(guard.check("http://rebind.example/")).unwrap_err();
/// assert_eq!(refused.kind(), SsrfErrorKind::BlockedAddress(BlockedRange::Loopback));
///
/// // A redirect to the metadata service is checked like the first URL.
/// let refused = block_on(guard.follow(&target, "https://169.254.169.254/latest/")).unwrap_err();
/// assert_eq!(refused.kind(), SsrfErrorKind::BlockedAddress(BlockedRange::LinkLocal));
/// ```
#[derive(Clone, Debug)]
pub struct SsrfGuard<R = SystemResolver> {
    urls: UrlPolicy,
    resolver: R,
    ports: Option<Vec<u16>>,
    max_redirects: usize,
    allow_downgrade: bool,
}

impl SsrfGuard<SystemResolver> {
    /// `http`/`https` URLs, any port, the system resolver, 5 redirects.
    pub fn new() -> SsrfGuard<SystemResolver> {
        SsrfGuard::with_resolver(SystemResolver::new())
    }
}

impl Default for SsrfGuard<SystemResolver> {
    fn default() -> SsrfGuard<SystemResolver> {
        SsrfGuard::new()
    }
}

impl<R: Resolver> SsrfGuard<R> {
    /// The defaults with `resolver`.
    pub fn with_resolver(resolver: R) -> SsrfGuard<R> {
        SsrfGuard {
            urls: UrlPolicy::new(),
            resolver,
            ports: None,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            allow_downgrade: false,
        }
    }

    /// Replaces the URL policy (scheme allow-list, length).
    #[must_use]
    pub fn with_url_policy(mut self, urls: UrlPolicy) -> SsrfGuard<R> {
        self.urls = urls;
        self
    }

    /// Allows only these ports (the URL's, or its scheme's default).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidAllowList`] for an empty list or port 0.
    pub fn with_ports(
        mut self,
        ports: impl IntoIterator<Item = u16>,
    ) -> Result<SsrfGuard<R>, ConfigError> {
        let ports: Vec<u16> = ports.into_iter().collect();
        if ports.is_empty() || ports.contains(&0) {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidAllowList,
                "SsrfGuard ports: a non-empty list of ports other than 0",
            ));
        }
        self.ports = Some(ports);
        Ok(self)
    }

    /// Sets how many redirects [`follow`](Self::follow) allows in a chain.
    #[must_use]
    pub fn with_max_redirects(mut self, max_redirects: usize) -> SsrfGuard<R> {
        self.max_redirects = max_redirects;
        self
    }

    /// Lets a redirect go from `https` to `http` (refused by default: the
    /// rest of the chain would travel in clear text).
    #[must_use]
    pub fn allow_downgrade_dangerously(mut self) -> SsrfGuard<R> {
        self.allow_downgrade = true;
        self
    }

    /// Checks `url` and resolves its host.
    ///
    /// # Errors
    ///
    /// An [`SsrfError`]: the URL policy, a local name, a port outside the
    /// allow-list, a name that does not resolve, or any address (given or
    /// resolved) outside the public unicast space.
    pub async fn check(&self, url: &str) -> Result<Target, SsrfError> {
        let url = self.urls.parse(url)?;
        self.check_parsed(url, 0).await
    }

    /// Checks the `Location` of a redirect answered by `from`: resolved
    /// against `from`'s URL, then checked like [`check`](Self::check).
    ///
    /// # Errors
    ///
    /// As [`check`](Self::check), plus too many redirects and (unless
    /// allowed) a downgrade from `https` to `http`.
    pub async fn follow(&self, from: &Target, location: &str) -> Result<Target, SsrfError> {
        let redirects = from.redirects + 1;
        if redirects > self.max_redirects {
            return Err(SsrfError::new(SsrfErrorKind::TooManyRedirects));
        }
        // The same character rules as a first URL, before joining.
        if location.is_empty()
            || location
                .bytes()
                .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
        {
            return Err(SsrfError::new(SsrfErrorKind::Url(
                crate::UrlErrorKind::Character,
            )));
        }
        let url = from
            .url
            .join(location)
            .map_err(|_| SsrfError::new(SsrfErrorKind::Url(crate::UrlErrorKind::Syntax)))?;
        if !self.allow_downgrade && from.url.scheme() == "https" && url.scheme() != "https" {
            return Err(SsrfError::new(SsrfErrorKind::Downgrade));
        }
        let url = self.urls.parse(url.as_str())?;
        self.check_parsed(url, redirects).await
    }

    async fn check_parsed(&self, url: Url, redirects: usize) -> Result<Target, SsrfError> {
        let Some(port) = url.port_or_known_default() else {
            return Err(SsrfError::new(SsrfErrorKind::Port));
        };
        if port == 0
            || self
                .ports
                .as_ref()
                .is_some_and(|ports| !ports.contains(&port))
        {
            return Err(SsrfError::new(SsrfErrorKind::Port));
        }
        let addrs = match url.host() {
            None => {
                return Err(SsrfError::new(SsrfErrorKind::Url(
                    crate::UrlErrorKind::Host,
                )));
            }
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => {
                if is_local_name(name) || looks_numeric(name) {
                    return Err(SsrfError::new(SsrfErrorKind::LocalName));
                }
                let addrs = self
                    .resolver
                    .resolve(name, port)
                    .await
                    .map_err(|error| SsrfError {
                        kind: if error.kind() == io::ErrorKind::WouldBlock {
                            SsrfErrorKind::ResolverBusy
                        } else {
                            SsrfErrorKind::Unresolvable
                        },
                        source: Some(error),
                    })?;
                if addrs.is_empty() {
                    return Err(SsrfError::new(SsrfErrorKind::Unresolvable));
                }
                addrs
            }
        };
        // Every address, not just the first: the client may pick any of them.
        for addr in &addrs {
            if let Some(range) = blocked_range(addr.ip()) {
                return Err(SsrfError::new(SsrfErrorKind::BlockedAddress(range)));
            }
            if addr.port() != port {
                return Err(SsrfError::new(SsrfErrorKind::Port));
            }
        }
        Ok(Target {
            url,
            addrs,
            redirects,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_ranges_are_classified() {
        use BlockedRange::*;
        for (text, range) in [
            ("0.1.2.3", Unspecified),
            ("10.255.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("127.255.255.254", Loopback),
            ("169.254.169.254", LinkLocal),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Reserved),
            ("240.0.0.1", Reserved),
            ("::", Unspecified),
            ("::1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::127.0.0.1", Translated),
            ("::ffff:0:7f00:1", Translated),
            ("64:ff9b::7f00:1", Translated),
            ("64:ff9b:1::1", Translated),
            ("2002:7f00:1::", Translated),
            ("2001:0:4136:e378::1", Translated),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("fd00::1", UniqueLocal),
            ("fc00::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("ff02::1", Multicast),
            ("100::1", Reserved),
            ("2001:2::1", Reserved),
        ] {
            assert_eq!(blocked_range(ip(text)), Some(range), "{text}");
        }
        for public in [
            "8.8.8.8",
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(blocked_range(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn local_and_numeric_names() {
        for name in [
            "localhost",
            "localhost.",
            "LOCALHOST",
            "a.localhost",
            "printer.local",
            "metadata.google.internal",
            "router.home.arpa",
        ] {
            assert!(is_local_name(name), "{name}");
        }
        assert!(!is_local_name("example.com"));
        for name in ["0x7f", "127.1", "2130706433", "0177.0.0.1", "a.0x7f"] {
            assert!(looks_numeric(name), "{name}");
        }
        for name in ["example.com", "cafe", "a.b1", "deadbeef.example"] {
            assert!(!looks_numeric(name), "{name}");
        }
    }

    /// A slow lookup that blocks until the gate opens and counts the
    /// threads that ran it.
    struct Gate {
        open: Mutex<bool>,
        opened: std::sync::Condvar,
        started: AtomicUsize,
    }

    fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn slow_dns_thread_exhaustion_is_capped_and_slots_are_released() {
        let gate = Arc::new(Gate {
            open: Mutex::new(false),
            opened: std::sync::Condvar::new(),
            started: AtomicUsize::new(0),
        });
        let in_lookup = Arc::clone(&gate);
        let resolver = SystemResolver::with_lookup(move |_, port| {
            in_lookup.started.fetch_add(1, Ordering::SeqCst);
            let mut open = in_lookup.open.lock().unwrap();
            while !*open {
                open = in_lookup.opened.wait(open).unwrap();
            }
            Ok(vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14)),
                port,
            )])
        })
        .with_max_in_flight(2)
        .unwrap();
        assert!(SystemResolver::new().with_max_in_flight(0).is_err());

        // The attacker's name never answers: two lookups hang in flight.
        let mut first = resolver.resolve("slow.attacker.example", 443);
        let mut second = resolver.resolve("slow.attacker.example", 443);
        wait_until("two lookup threads", || {
            gate.started.load(Ordering::SeqCst) == 2
        });
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        assert_eq!(resolver.in_flight(), 2);

        // The third is refused at once, without a thread.
        let mut third = resolver.resolve("slow.attacker.example", 443);
        match poll_once(third.as_mut()) {
            Poll::Ready(Err(error)) => assert_eq!(error.kind(), io::ErrorKind::WouldBlock),
            other => panic!("expected an immediate refusal, got {other:?}"),
        }
        // Through the guard (a clone shares the limit): ResolverBusy, 503.
        let guard = SsrfGuard::with_resolver(resolver.clone());
        let check = std::pin::pin!(guard.check("https://slow.attacker.example/hook"));
        let refused = match poll_once(check) {
            Poll::Ready(Err(error)) => error,
            other => panic!("expected an immediate refusal, got {other:?}"),
        };
        assert_eq!(refused.kind(), SsrfErrorKind::ResolverBusy);
        assert_eq!(refused.code(), "ssrf_resolver_busy");
        let error = palisade_errors::Error::from(refused);
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(error.kind().status().as_u16(), 503);
        // Placed at a field it stays a 503, not a 422.
        let at_field = palisade_errors::Error::from(
            SsrfError::new(SsrfErrorKind::ResolverBusy).at("webhook_url"),
        );
        assert_eq!(at_field.kind(), ErrorKind::Unavailable);
        assert_eq!(at_field.details()[0].code(), "ssrf_resolver_busy");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            gate.started.load(Ordering::SeqCst),
            2,
            "no new thread was started"
        );

        // The caller gives up on the first; the answer comes later anyway.
        drop(first);
        *gate.open.lock().unwrap() = true;
        gate.opened.notify_all();
        wait_until("the slots to be released", || resolver.in_flight() == 0);
        wait_until("the second answer", || {
            poll_once(second.as_mut()).is_ready()
        });

        // With the slots back, a lookup runs again.
        let mut again = resolver.resolve("fine.example", 443);
        wait_until("the next answer", || match poll_once(again.as_mut()) {
            Poll::Ready(result) => {
                assert_eq!(result.unwrap()[0].port(), 443);
                true
            }
            Poll::Pending => false,
        });
        assert_eq!(gate.started.load(Ordering::SeqCst), 3);
        assert_eq!(resolver.in_flight(), 0);
    }
}
