//! The security-headers layer against the same headers set with a
//! hand-written stack of tower-http `SetResponseHeaderLayer`s, in one run.
//! `cargo xtask bench` prints the ratio (goal: at most 1.1×).

use std::convert::Infallible;
use std::hint::black_box;

use axum::body::Body;
use axum::response::Response;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderName, HeaderValue, Request};
use palisade_axum::headers::SecurityHeadersLayer;
use palisade_headers::HeaderPolicy;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_http::set_header::SetResponseHeaderLayer;

async fn handler(_request: Request<Body>) -> Result<Response, Infallible> {
    let mut response = Response::new(Body::empty());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn call<S>(service: &mut S)
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let request = Request::new(Body::empty());
    let response = service
        .ready()
        .now_or_never()
        .and_then(Result::ok)
        .map(|service| service.call(request))
        .and_then(FutureExt::now_or_never)
        .and_then(Result::ok);
    assert!(response.is_some_and(|response| response.headers().len() > 10));
}

fn bench(c: &mut Criterion) {
    let policy = HeaderPolicy::api().build().expect("the api preset builds");
    // The peer sets exactly what the policy sends, taken from the policy's
    // own output, each with its own if-not-present layer.
    let mut expected = http::HeaderMap::new();
    policy.apply(&mut expected, None);
    let pairs: Vec<(HeaderName, HeaderValue)> = expected
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    assert_eq!(pairs.len(), 13);

    let mut palisade = ServiceBuilder::new()
        .layer(SecurityHeadersLayer::new(policy))
        .service(service_fn(handler));
    let header = |index: usize| {
        let (name, value) = pairs[index].clone();
        SetResponseHeaderLayer::if_not_present(name, value)
    };
    let mut peer = ServiceBuilder::new()
        .layer(header(0))
        .layer(header(1))
        .layer(header(2))
        .layer(header(3))
        .layer(header(4))
        .layer(header(5))
        .layer(header(6))
        .layer(header(7))
        .layer(header(8))
        .layer(header(9))
        .layer(header(10))
        .layer(header(11))
        .layer(header(12))
        .service(service_fn(handler));

    let mut group = c.benchmark_group("security_headers_api");
    group.bench_function("palisade", |b| b.iter(|| call(black_box(&mut palisade))));
    group.bench_function("peer", |b| b.iter(|| call(black_box(&mut peer))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
