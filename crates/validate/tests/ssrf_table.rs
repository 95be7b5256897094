//! The SSRF guard against the classic bypasses: loopback and metadata
//! addresses spelled every way the WHATWG parser and `inet_aton` accept, a
//! name an attacker's DNS points at 127.0.0.1 (the resolver is a fake: no
//! DNS here), and a redirect to the metadata service.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use palisade_validate::{
    BlockedRange, Resolver, SsrfErrorKind, SsrfGuard, StaticResolver, SystemResolver, UrlErrorKind,
};
use url::{Host, Url};

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: the guard needs no runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn guard() -> SsrfGuard<StaticResolver> {
    SsrfGuard::with_resolver(
        StaticResolver::new()
            .with("public.example", [ip("93.184.215.14")])
            .with("allowed.example", [ip("127.0.0.1")])
            .with("mixed.example", [ip("93.184.215.14"), ip("10.0.0.5")])
            .with("v6.example", [ip("2606:4700:4700::1111")])
            .with("mapped.example", [ip("::ffff:169.254.169.254")])
            .with("127.0.0.1.nip.example", [ip("127.0.0.1")]),
    )
}

fn refused(url: &str) -> SsrfErrorKind {
    match block_on(guard().check(url)) {
        Ok(target) => panic!("{url:?} was accepted: {:?}", target.addrs()),
        Err(error) => error.kind(),
    }
}

fn blocked(range: BlockedRange) -> SsrfErrorKind {
    SsrfErrorKind::BlockedAddress(range)
}

#[test]
fn the_required_table_is_refused() {
    use BlockedRange::*;
    let table = [
        ("http://127.1", blocked(Loopback)),
        ("http://0x7f000001", blocked(Loopback)),
        ("http://[::ffff:127.0.0.1]", blocked(Loopback)),
        ("http://169.254.169.254", blocked(LinkLocal)),
        ("http://localhost.", SsrfErrorKind::LocalName),
        ("http://2130706433", blocked(Loopback)),
        ("http://0177.0.0.1", blocked(Loopback)),
        ("http://[::1]", blocked(Loopback)),
        ("http://[fd00::1]", blocked(UniqueLocal)),
        ("http://100.64.0.1", blocked(SharedAddressSpace)),
        // The attacker's DNS answers 127.0.0.1 for an innocent-looking name.
        ("http://allowed.example/", blocked(Loopback)),
    ];
    for (url, expected) in table {
        assert_eq!(refused(url), expected, "{url}");
    }
}

#[test]
fn more_spellings_of_internal_addresses_are_refused() {
    use BlockedRange::*;
    let table = [
        ("http://0.0.0.0/", blocked(Unspecified)),
        ("http://0/", blocked(Unspecified)),
        ("http://[::]/", blocked(Unspecified)),
        ("http://127.000.000.001/", blocked(Loopback)),
        ("http://0x7f.0x0.0x0.0x1/", blocked(Loopback)),
        ("http://0x7f.1/", blocked(Loopback)),
        ("http://%31%32%37.0.0.1/", blocked(Loopback)),
        ("http://\u{2460}\u{2461}\u{2466}.0.0.1/", blocked(Loopback)), // ①②⑦, IDNA-mapped
        ("http://[0:0:0:0:0:ffff:7f00:1]/", blocked(Loopback)),
        ("http://[::ffff:a9fe:a9fe]/", blocked(LinkLocal)),
        ("http://[64:ff9b::a9fe:a9fe]/", blocked(Translated)),
        ("http://[64:ff9b:1::1]/", blocked(Translated)),
        ("http://[::127.0.0.1]/", blocked(Translated)),
        ("http://[fe80::1]/", blocked(LinkLocal)),
        ("http://[ff02::1]/", blocked(Multicast)),
        ("http://[2001:db8::1]/", blocked(Documentation)),
        ("http://10.1.2.3/", blocked(Private)),
        ("http://172.16.0.1/", blocked(Private)),
        ("http://192.168.0.1/", blocked(Private)),
        ("http://224.0.0.1/", blocked(Multicast)),
        ("http://255.255.255.255/", blocked(Broadcast)),
        ("http://192.0.2.1/", blocked(Documentation)),
        ("http://198.51.100.1/", blocked(Documentation)),
        ("http://203.0.113.1/", blocked(Documentation)),
        ("http://LOCALHOST/", SsrfErrorKind::LocalName),
        ("http://api.localhost/", SsrfErrorKind::LocalName),
        ("http://metadata.google.internal/", SsrfErrorKind::LocalName),
        ("http://mixed.example/", blocked(Private)),
        ("http://mapped.example/", blocked(LinkLocal)),
        ("http://127.0.0.1.nip.example/", blocked(Loopback)),
        ("http://unknown.example/", SsrfErrorKind::Unresolvable),
        (
            "http://public.example@127.0.0.1/",
            SsrfErrorKind::Url(UrlErrorKind::Credentials),
        ),
        (
            "http://127.0.0.1\\@public.example/",
            SsrfErrorKind::Url(UrlErrorKind::Character),
        ),
        (
            "gopher://127.0.0.1:6379/_INFO",
            SsrfErrorKind::Url(UrlErrorKind::Scheme),
        ),
        (
            "file:///etc/passwd",
            SsrfErrorKind::Url(UrlErrorKind::Scheme),
        ),
        (
            "dict://127.0.0.1:11211/",
            SsrfErrorKind::Url(UrlErrorKind::Scheme),
        ),
    ];
    for (url, expected) in table {
        assert_eq!(refused(url), expected, "{url}");
    }
}

#[test]
fn the_whatwg_parser_turns_numeric_hosts_into_addresses() {
    // What the guard sees after parsing: every trick is 127.0.0.1 already,
    // and the guard then refuses the address.
    for raw in [
        "http://127.1",
        "http://0x7f000001",
        "http://2130706433",
        "http://0177.0.0.1",
        "http://0x7f.1",
        "http://127.000.000.001",
    ] {
        let url = Url::parse(raw).unwrap();
        assert_eq!(url.host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)), "{raw}");
    }
}

#[test]
fn public_addresses_pass_with_the_addresses_to_connect_to() {
    let target = block_on(guard().check("https://public.example/hook")).unwrap();
    assert_eq!(target.host(), "public.example");
    assert_eq!(target.addrs(), ["93.184.215.14:443".parse().unwrap()]);
    let target = block_on(guard().check("http://v6.example:8080/")).unwrap();
    assert_eq!(target.addrs()[0].to_string(), "[2606:4700:4700::1111]:8080");
    let target = block_on(guard().check("http://8.8.8.8/")).unwrap();
    assert_eq!(target.addrs()[0].to_string(), "8.8.8.8:80");
}

#[test]
fn a_302_to_the_metadata_service_is_refused() {
    let guard = guard();
    let first = block_on(guard.check("https://public.example/start")).unwrap();
    for location in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://169.254.169.254/",
        "//169.254.169.254/",
        "https://allowed.example/",
        "https://[::ffff:169.254.169.254]/",
    ] {
        let error = block_on(guard.follow(&first, location)).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                SsrfErrorKind::BlockedAddress(_) | SsrfErrorKind::Downgrade
            ),
            "{location}: {:?}",
            error.kind()
        );
    }
    // Relative locations stay on the checked host and are checked again.
    let next = block_on(guard.follow(&first, "/next?x=1")).unwrap();
    assert_eq!(next.url().as_str(), "https://public.example/next?x=1");
    assert_eq!(next.redirects(), 1);
}

#[test]
fn redirect_chains_are_bounded_and_never_downgrade() {
    let guard = guard().with_max_redirects(2);
    let mut target = block_on(guard.check("https://public.example/")).unwrap();
    for _ in 0..2 {
        target = block_on(guard.follow(&target, "/again")).unwrap();
    }
    assert_eq!(
        block_on(guard.follow(&target, "/again"))
            .unwrap_err()
            .kind(),
        SsrfErrorKind::TooManyRedirects
    );
    let first = block_on(guard.check("https://public.example/")).unwrap();
    assert_eq!(
        block_on(guard.follow(&first, "http://public.example/"))
            .unwrap_err()
            .kind(),
        SsrfErrorKind::Downgrade
    );
    assert_eq!(
        block_on(guard.follow(&first, "/\t/x")).unwrap_err().kind(),
        SsrfErrorKind::Url(UrlErrorKind::Character)
    );
}

#[test]
fn port_allow_list() {
    let guard = guard().with_ports([443]).unwrap();
    assert!(block_on(guard.check("https://public.example/")).is_ok());
    assert_eq!(
        block_on(guard.check("https://public.example:6379/"))
            .unwrap_err()
            .kind(),
        SsrfErrorKind::Port
    );
    assert!(SsrfGuard::new().with_ports([]).is_err());
}

#[test]
fn the_system_resolver_answers_off_the_async_thread() {
    // `localhost` comes from the hosts file, not DNS; the guard itself
    // refuses the name before resolving, so call the resolver directly.
    let addrs = block_on(SystemResolver::new().resolve("localhost", 8080)).unwrap();
    assert!(
        addrs
            .iter()
            .all(|a| a.port() == 8080 && a.ip().is_loopback())
    );
    assert_eq!(
        block_on(SsrfGuard::new().check("http://localhost:8080/"))
            .unwrap_err()
            .kind(),
        SsrfErrorKind::LocalName
    );
}
