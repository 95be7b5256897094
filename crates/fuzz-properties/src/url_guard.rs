//! Arbitrary text as a URL for the URL policy, the SSRF guard (a fake
//! resolver: no DNS) and the `?next=` redirect policy: never a panic; an
//! accepted URL has an allowed scheme and no credentials; an accepted fetch
//! target holds only public addresses; an accepted redirect target stays on
//! this site (relative) or on the allow-listed origin, as a browser's URL
//! parser resolves it.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use palisade_validate::{RedirectPolicy, SsrfGuard, StaticResolver, UrlPolicy, blocked_range};
use url::Url;

fn resolved_now<F: Future>(future: F) -> F::Output {
    // The static resolver never waits.
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the static resolver never waits"),
    }
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    if let Ok(url) = UrlPolicy::new().parse(&text) {
        assert!(matches!(url.scheme(), "http" | "https"));
        assert!(url.username().is_empty() && url.password().is_none());
        assert!(url.host_str().is_some_and(|h| !h.is_empty()));
    }

    let guard = SsrfGuard::with_resolver(
        StaticResolver::new()
            .with(
                "public.example",
                ["93.184.215.14".parse().expect("an address")],
            )
            .with("inside.example", ["10.0.0.1".parse().expect("an address")])
            .with("loop.example", ["::1".parse().expect("an address")]),
    );
    if let Ok(target) = resolved_now(guard.check(&text)) {
        assert!(!target.addrs().is_empty());
        for addr in target.addrs() {
            assert_eq!(blocked_range(addr.ip()), None, "a blocked address passed");
        }
        let host = target.host().trim_end_matches('.').to_ascii_lowercase();
        assert!(host != "localhost" && !host.ends_with(".localhost"));
        // Any Location after it is checked the same way.
        if let Ok(next) = resolved_now(guard.follow(&target, &text)) {
            for addr in next.addrs() {
                assert_eq!(blocked_range(addr.ip()), None);
            }
        }
    }

    let policy = RedirectPolicy::new()
        .allow_origin("https://app.example.com")
        .expect("a valid origin");
    if let Ok(next) = policy.check(&text) {
        let base = Url::parse("https://site.example/login").expect("a base");
        let resolved = base.join(next).expect("an accepted target resolves");
        if next.starts_with('/') {
            assert_eq!(resolved.origin(), base.origin(), "left the site: {next:?}");
        } else {
            assert_eq!(
                resolved.origin(),
                Url::parse("https://app.example.com/")
                    .expect("a URL")
                    .origin()
            );
        }
        assert!(!next.contains('\\'));
        assert!(!next.chars().any(char::is_control));
    }
}
