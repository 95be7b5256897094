//! `SecurityHeaders::apply` has two paths with one result: an
//! `http::HeaderMap` starts from the policy's precomputed map and gets the
//! response's own headers back (a few lookups), any other `HeaderSink` gets
//! the policy's headers one at a time. Every policy shape and every mix of a
//! response's own headers — policy headers it set itself, fingerprints,
//! `Server`, `Cache-Control`, CSPs, repeated values — must come out the
//! same both ways, or the fast path would drop a header the slow one sends
//! (a missing CSP or HSTS) or keep one it removes (a version fingerprint).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use palisade_headers::csp::Csp;
use palisade_headers::{CspNonce, HeaderPolicy, HeaderSink, SecurityHeaders, Source};
use proptest::prelude::*;

/// A `HeaderSink` over a `HeaderMap` that does not say it is one: `apply`
/// takes the one-at-a-time path through it.
struct Opaque(HeaderMap);

impl HeaderSink for Opaque {
    fn contains(&self, name: &HeaderName) -> bool {
        self.0.contains_key(name)
    }
    fn insert(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.0.insert(name.clone(), value.clone());
    }
    fn append(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.0.append(name.clone(), value.clone());
    }
    fn remove(&mut self, name: &HeaderName) {
        self.0.remove(name);
    }
    fn any_value(&self, name: &HeaderName, predicate: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.0
            .get_all(name)
            .iter()
            .any(|value| predicate(value.as_bytes()))
    }
}

/// Names a response may set itself: the policy's own, those it removes,
/// and ordinary ones.
const NAMES: [&str; 18] = [
    "strict-transport-security",
    "x-frame-options",
    "permissions-policy",
    "cross-origin-opener-policy",
    "content-security-policy",
    "content-security-policy-report-only",
    "cache-control",
    "server",
    "x-powered-by",
    "x-runtime",
    "reporting-endpoints",
    "referrer-policy",
    "content-type",
    "set-cookie",
    "vary",
    "x-request-id",
    "ratelimit",
    "access-control-allow-origin",
];

fn policy(shape: u8) -> SecurityHeaders {
    let mut policy = if shape & 1 == 0 {
        HeaderPolicy::api()
    } else {
        HeaderPolicy::html()
    };
    policy = policy
        .override_existing(shape & 2 != 0)
        .no_store_if_absent(shape & 4 != 0);
    if shape & 8 != 0 {
        policy = policy.server_header("palisade");
    }
    if shape & 16 != 0 {
        let csp = Csp::builder()
            .default_src([Source::SELF])
            .script_src([Source::SELF])
            .nonces(true)
            .build()
            .unwrap();
        policy = policy.csp(csp);
    }
    if shape & 32 != 0 {
        let report_only = Csp::builder()
            .default_src([Source::NONE])
            .nonces(shape & 64 != 0)
            .report_to("csp", "https://reports.example.com/csp")
            .build()
            .unwrap();
        policy = policy.csp_report_only(report_only);
    }
    policy.build().unwrap()
}

/// Every name's values, in order, so the two maps compare whatever order
/// their names are in.
fn by_name(map: &HeaderMap) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut names: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for name in map.keys() {
        names.insert(
            name.as_str().to_owned(),
            map.get_all(name)
                .iter()
                .map(|value| value.as_bytes().to_vec())
                .collect(),
        );
    }
    names
}

fn own_headers(own: &[(usize, u8)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (index, value) in own {
        let name = HeaderName::from_static(NAMES[index % NAMES.len()]);
        map.append(
            name,
            HeaderValue::from_str(&format!("own-{value}")).unwrap(),
        );
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_header_map_path_sends_what_the_one_by_one_path_sends(
        shape in 0_u8..128,
        own in proptest::collection::vec((0_usize..NAMES.len(), 0_u8..4), 0..12),
        with_nonce in any::<bool>(),
    ) {
        let headers = policy(shape);
        let nonce = with_nonce.then(|| CspNonce::generate().unwrap());
        let mut fast = own_headers(&own);
        headers.apply(&mut fast, nonce.as_ref());
        let mut slow = Opaque(own_headers(&own));
        headers.apply(&mut slow, nonce.as_ref());
        prop_assert_eq!(by_name(&fast), by_name(&slow.0));
        for removed in ["x-powered-by", "x-runtime"] {
            prop_assert!(!fast.contains_key(removed));
        }
    }
}

#[test]
fn both_paths_agree_on_a_nonce_csp_the_response_also_set() {
    // The one case the template cannot hold: the nonce CSP is rendered per
    // response, and a handler's own CSP is kept unless the policy overrides.
    for shape in [16_u8, 18, 48, 50, 112, 114] {
        let headers = policy(shape);
        let nonce = CspNonce::generate().unwrap();
        let own = [(4, 1), (5, 2), (6, 3), (7, 0)];
        let mut fast = own_headers(&own);
        headers.apply(&mut fast, Some(&nonce));
        let mut slow = Opaque(own_headers(&own));
        headers.apply(&mut slow, Some(&nonce));
        assert_eq!(by_name(&fast), by_name(&slow.0), "shape {shape}");
        let csp = fast
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            csp.contains(nonce.as_str()),
            shape & 2 != 0,
            "shape {shape}: {csp}"
        );
        assert_eq!(fast.get("cache-control").unwrap(), "no-store");
    }
}
