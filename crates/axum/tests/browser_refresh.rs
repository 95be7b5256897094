//! The refresh cookie in a real browser (issue #11): headless Chromium
//! loads a page from the application's own origin (`http://localhost:A`;
//! on `localhost` Chromium keeps `Secure` and `__Host-` cookies over plain
//! HTTP). The page logs in (the `__Host-refresh` cookie is set), refreshes
//! with the custom header (the cookie rotates: the next refresh presents
//! the new token), is refused 403 without the header, and logs out (the
//! cookie is cleared: the next refresh has no token, 401).
//!
//! In between it embeds an attacker page from another port of localhost
//! (`http://localhost:B`: same site, other origin), which the browser does
//! send the cookie from. Its simple `no-cors` POST arrives with the cookie
//! and its foreign `Origin` and without the header, and is refused 403;
//! its POST with the custom header needs a CORS preflight the application
//! does not grant, so the browser never sends it.
//!
//! Skipped (with a message) when Chromium is not installed, except under
//! `CI=true`, where a missing browser fails the test.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "support/chromium.rs"]
mod chromium;
#[path = "support/refresh_app.rs"]
mod refresh_app;

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use tokio::net::TcpListener;

use chromium::{chromium_or_skip, dump_dom};

const PAGE_JS: &str = r#"
function out(id, text) {
  const p = document.createElement('p');
  p.id = id;
  p.textContent = id + '=' + text;
  document.body.appendChild(p);
}
async function post(path, headers, body) {
  try {
    const response = await fetch(path, {method: 'POST', headers, body});
    return String(response.status);
  } catch (error) {
    return 'error';
  }
}
(async () => {
  const log = [];
  const csrf = {'X-Requested-With': 'palisade'};
  log.push('login:' + await post('/login', {'Content-Type': 'application/json'}, '{"user":"alice"}'));
  log.push('refresh:' + await post('/refresh', csrf));
  log.push('noheader:' + await post('/refresh', {}));
  log.push('refresh2:' + await post('/refresh', csrf));
  const attack = await new Promise((resolve) => {
    window.addEventListener('message', (event) => resolve(String(event.data)));
    const frame = document.createElement('iframe');
    frame.src = document.body.dataset.attacker + '/attack';
    document.body.appendChild(frame);
  });
  log.push('attack:' + attack);
  log.push('refresh3:' + await post('/refresh', csrf));
  log.push('logout:' + await post('/logout', csrf));
  log.push('after:' + await post('/refresh', csrf));
  out('log', log.join(' '));
  out('done', 'yes');
})();
"#;

const ATTACK_JS: &str = r#"
(async () => {
  const app = document.body.dataset.app;
  const results = [];
  try {
    await fetch(app + '/refresh', {method: 'POST', mode: 'no-cors', credentials: 'include'});
    results.push('nocors-sent');
  } catch (error) {
    results.push('nocors-error');
  }
  try {
    const response = await fetch(app + '/refresh', {
      method: 'POST',
      credentials: 'include',
      headers: {'X-Requested-With': 'palisade'},
    });
    results.push('header-' + response.status);
  } catch (error) {
    results.push('header-blocked');
  }
  parent.postMessage(results.join(','), '*');
})();
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_keeps_the_refresh_cookie_from_a_same_site_attacker() {
    let Some(browser) = chromium_or_skip() else {
        return;
    };
    let app_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let attacker_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_origin = format!(
        "http://localhost:{}",
        app_listener.local_addr().unwrap().port()
    );
    let attacker_origin = format!(
        "http://localhost:{}",
        attacker_listener.local_addr().unwrap().port()
    );

    let (api, record) = refresh_app::app(&[&app_origin]);
    let page = format!(
        r#"<!doctype html><html><head><title>app</title></head>
<body data-attacker="{attacker_origin}"><script>{PAGE_JS}</script></body></html>"#
    );
    let app = api.route("/", get(move || async move { Html(page) }));
    let attack_page = format!(
        r#"<!doctype html><html><head><title>attacker</title></head>
<body data-app="{app_origin}"><script>{ATTACK_JS}</script></body></html>"#
    );
    let attacker = Router::new().route("/attack", get(move || async move { Html(attack_page) }));
    tokio::spawn(async move { axum::serve(app_listener, app).await.unwrap() });
    tokio::spawn(async move { axum::serve(attacker_listener, attacker).await.unwrap() });

    let url = format!("{app_origin}/");
    let dom = tokio::task::spawn_blocking(move || dump_dom(&browser, &url, 15000))
        .await
        .unwrap();
    assert!(dom.contains("done=yes"), "page did not finish: {dom}");
    assert!(
        dom.contains(
            "log=login:200 refresh:200 noheader:403 refresh2:200 \
             attack:nocors-sent,header-blocked refresh3:200 logout:204 after:401"
        ),
        "{dom}"
    );

    // Each refresh presented the cookie the one before set: the browser
    // kept the `__Host-` cookie and took every rotation.
    let issued = record.issued.lock().unwrap().clone();
    let presented = record.presented.lock().unwrap().clone();
    assert_eq!(issued.len(), 4, "login and three refreshes");
    assert_eq!(presented, issued[..3].to_vec());

    // The attacker's request arrived with the cookie and its own Origin,
    // and was refused 403; nothing it sent was answered 200.
    let seen = record.seen.lock().unwrap().clone();
    let from_attacker: Vec<_> = seen
        .iter()
        .filter(|seen| seen.origin.as_deref() == Some(attacker_origin.as_str()))
        .collect();
    assert!(
        from_attacker
            .iter()
            .any(|seen| seen.method == "POST" && seen.had_cookie && seen.status == 403),
        "{seen:?}"
    );
    assert!(
        from_attacker.iter().all(|seen| seen.status != 200),
        "{seen:?}"
    );
    // The page's own refresh without the header was refused the same way.
    assert!(
        seen.iter()
            .any(|seen| seen.origin.as_deref() == Some(app_origin.as_str())
                && seen.path == "/refresh"
                && seen.had_cookie
                && seen.status == 403),
        "{seen:?}"
    );
}
