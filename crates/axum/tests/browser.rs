//! A real browser against the CORS and CSP layers: headless Chromium loads a
//! page from one localhost origin that calls an API on another port with
//! `fetch` (simple, preflighted, credentialed). The allowed origin reads the
//! answers; the same page from a disallowed origin is blocked; an injected
//! inline script is blocked by the `html()` CSP while the nonced one runs.
//! The API is composed with `Hardening`, so the allowed page reads the 500
//! envelope of a panicking route cross-origin, its `request_id` equal to
//! the `X-Request-Id` header (exposed by the CORS policy); the disallowed
//! page cannot read it.
//!
//! Skipped (with a message) when Chromium is not installed, except under
//! `CI=true`, where a missing browser fails the test.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "support/chromium.rs"]
mod chromium;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use palisade_axum::Hardening;
use palisade_axum::headers::{Nonce, SecurityHeadersLayer};
use palisade_headers::csp::Csp;
use palisade_headers::{CorsPolicy, HeaderPolicy, Source};
use tokio::net::TcpListener;

use chromium::{chromium_or_skip, dump_dom};

const APP_JS: &str = r#"
const api = document.body.dataset.api;
function out(id, text) {
  const p = document.createElement('p');
  p.id = id;
  p.textContent = id + '=' + text;
  document.body.appendChild(p);
}
async function attempt(id, request) {
  try {
    const response = await request();
    out(id, 'ok:' + response.status + ':' + (await response.text()));
  } catch (error) {
    out(id, 'blocked');
  }
}
(async () => {
  await attempt('simple', () => fetch(api + '/items'));
  await attempt('preflighted', () => fetch(api + '/items', {
    method: 'PUT',
    headers: {'Content-Type': 'application/json', 'X-Request-Id': 'browser-1'},
    body: '{}',
  }));
  await attempt('credentialed', () => fetch(api + '/me', {credentials: 'include'}));
  await attempt('disallowed_header', () => fetch(api + '/items', {
    method: 'PUT',
    headers: {'X-Evil': '1'},
  }));
  try {
    const response = await fetch(api + '/boom');
    const id = response.headers.get('x-request-id');
    const body = await response.json();
    const same = id !== null && body.error.request_id === id ? 'id-matches' : 'id-differs:' + id;
    out('panic', response.status + ':' + body.error.code + ':' + same);
  } catch (error) {
    out('panic', 'blocked');
  }
  out('done', 'yes');
})();
"#;

const MARKER_JS: &str =
    "document.body.insertAdjacentHTML('beforeend', '<p id=\"' + 'external\">ran</p>');";

async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    address
}

fn api(allowed_page: SocketAddr) -> Router {
    let cors = CorsPolicy::builder()
        .allow_origin(format!("http://{allowed_page}"))
        .allow_credentials(true)
        .expose_headers(["X-Request-Id"])
        .build()
        .unwrap();
    let routes = Router::new()
        .route(
            "/items",
            get(|| async { "items" }).put(|| async { "updated" }),
        )
        .route(
            "/me",
            get(|headers: HeaderMap| async move {
                let cookie = headers
                    .get(COOKIE)
                    .map_or("none", |value| value.to_str().unwrap_or("?"));
                format!("cookie={cookie}")
            }),
        )
        .route("/boom", get(boom));
    Hardening::new()
        .security_headers(HeaderPolicy::api().https(false).build().unwrap())
        .cors(cors)
        .apply(routes)
}

async fn boom() -> &'static str {
    panic!("handler exploded");
}

async fn fetch_page(State(api): State<SocketAddr>, Nonce(nonce): Nonce) -> impl IntoResponse {
    let nonce = nonce.expect("the page policy uses nonces");
    let page = format!(
        r#"<!doctype html><html><head><title>cors</title></head>
<body data-api="http://{api}">
<script nonce="{nonce}">document.body.insertAdjacentHTML('beforeend', '<p id="' + 'nonced">ran</p>');</script>
<script>document.body.insertAdjacentHTML('beforeend', '<p id="' + 'injected">ran</p>');</script>
<script src="/app.js"></script>
</body></html>"#
    );
    // The session cookie the credentialed fetch must carry (same site: the
    // API differs only by port).
    let mut headers = HeaderMap::new();
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_static("session=browser; Path=/; SameSite=Lax"),
    );
    (headers, Html(page))
}

async fn plain_page() -> Html<&'static str> {
    Html(
        r#"<!doctype html><html><head><title>plain</title></head><body>
<script>document.body.insertAdjacentHTML('beforeend', '<p id="' + 'injected">ran</p>');</script>
<script src="/marker.js"></script>
</body></html>"#,
    )
}

fn javascript(source: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/javascript")], source)
}

fn pages(api: SocketAddr) -> Router {
    // html() plus what this page does: fetch the API, and one nonced inline script.
    let csp = Csp::builder()
        .default_src([Source::SELF])
        .script_src([Source::SELF])
        .connect_src([
            Source::SELF,
            Source::host(&format!("http://{api}")).unwrap(),
        ])
        .object_src([Source::NONE])
        .base_uri([Source::SELF])
        .frame_ancestors([Source::NONE])
        .form_action([Source::SELF])
        .nonces(true)
        .build()
        .unwrap();
    let with_nonce = HeaderPolicy::html().https(false).csp(csp).build().unwrap();
    let html_preset = HeaderPolicy::html().https(false).build().unwrap();
    Router::new()
        .route("/", get(fetch_page))
        .route("/app.js", get(|| async { javascript(APP_JS) }))
        .route("/marker.js", get(|| async { javascript(MARKER_JS) }))
        .layer(SecurityHeadersLayer::new(with_nonce))
        .merge(
            Router::new()
                .route("/plain", get(plain_page))
                .route_layer(SecurityHeadersLayer::new(html_preset)),
        )
        .with_state(api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_enforces_cors_and_csp() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    // Bind the page listeners first: the API's allow-list names one of them.
    let allowed_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let allowed_page = allowed_listener.local_addr().unwrap();
    let api_address = serve(api(allowed_page)).await;
    tokio::spawn(async move {
        axum::serve(allowed_listener, pages(api_address))
            .await
            .unwrap();
    });
    let disallowed_page = serve(pages(api_address)).await;

    let allowed = {
        let browser = browser.clone();
        let url = format!("http://{allowed_page}/");
        tokio::task::spawn_blocking(move || dump_dom(&browser, &url, 10000))
            .await
            .unwrap()
    };
    assert!(
        allowed.contains("done=yes"),
        "page did not finish: {allowed}"
    );
    assert!(allowed.contains("simple=ok:200:items"), "{allowed}");
    assert!(allowed.contains("preflighted=ok:200:updated"), "{allowed}");
    assert!(
        allowed.contains("credentialed=ok:200:cookie=session=browser"),
        "{allowed}"
    );
    assert!(allowed.contains("disallowed_header=blocked"), "{allowed}");
    // A panic's 500, read cross-origin: the envelope with the request id.
    assert!(
        allowed.contains("panic=500:internal:id-matches"),
        "{allowed}"
    );
    // CSP: the nonced inline script ran, the injected one did not.
    // (The script texts are in the DOM too; they build the marker from parts,
    // so only a script that ran puts the whole `<p id="…">` there.)
    assert!(allowed.contains(r#"<p id="nonced">"#), "{allowed}");
    assert!(!allowed.contains(r#"<p id="injected">"#), "{allowed}");

    let disallowed = {
        let browser = browser.clone();
        let url = format!("http://{disallowed_page}/");
        tokio::task::spawn_blocking(move || dump_dom(&browser, &url, 10000))
            .await
            .unwrap()
    };
    assert!(
        disallowed.contains("done=yes"),
        "page did not finish: {disallowed}"
    );
    for id in [
        "simple",
        "preflighted",
        "credentialed",
        "disallowed_header",
        "panic",
    ] {
        assert!(
            disallowed.contains(&format!("{id}=blocked")),
            "{id}: {disallowed}"
        );
    }

    // The html() preset as it ships: external script runs, inline does not.
    let plain = {
        let url = format!("http://{allowed_page}/plain");
        tokio::task::spawn_blocking(move || dump_dom(&browser, &url, 10000))
            .await
            .unwrap()
    };
    assert!(plain.contains(r#"<p id="external">"#), "{plain}");
    assert!(!plain.contains(r#"<p id="injected">"#), "{plain}");
}
