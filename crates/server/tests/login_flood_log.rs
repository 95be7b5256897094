//! A login flood the hashing pool sheds must not become a log flood
//! (through the real router, with a capturing subscriber: in its own test
//! binary, so no other test's thread registers the callsites first).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use support::{ADMIN_PASSWORD, in_process, json_post};

/// What a test subscriber saw: each event's level and message.
#[derive(Clone, Default)]
struct Seen(Arc<std::sync::Mutex<Vec<(tracing::Level, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message.0));
    }
}

/// A login flood the pool sheds must not become a log flood (an attacker
/// turning each cheap request into a JSON line written to disk, and the
/// line's formatting into the CPU the probe needs): through the real
/// router, 50 logins against a full pool are 50 503s with `Retry-After`,
/// and the second they take logs one warning and no `error` line.
#[tokio::test]
async fn a_login_flood_the_pool_sheds_is_one_warning_not_a_line_per_request() {
    use tower::ServiceExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let seen = Seen::default();
    let _log = tracing::subscriber::set_default(tracing_subscriber::registry().with(seen.clone()));
    let (app, config) = in_process(&[
        ("PALISADE_ENV", "development"),
        ("PALISADE_ADMIN_USERNAME", "root"),
        ("PALISADE_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("PALISADE_RATE_LIMIT", "100000/second"),
        ("PALISADE_LOGIN_RATE_LIMIT", "100000/second"),
        // Each refusal answered at once (the hold has its own tests in
        // `hash_busy.rs`): 50 of them would wait 12.5 s here.
        ("PALISADE_HASH_BUSY_DELAY", "0s"),
    ])
    .await;
    let router = palisade_server::app(Arc::clone(&app), &config).unwrap();
    seen.0.lock().unwrap().clear();
    // The flood holds every place (its last, refused, try is the pool's
    // first refusal and its one warning within the second).
    let flood: Vec<_> = std::iter::from_fn(|| app.hasher.reserve().ok()).collect();
    assert!(!flood.is_empty());

    for _ in 0..50 {
        let request = json_post(
            "/auth/login",
            format!(r#"{{"username":"root","password":"{ADMIN_PASSWORD}"}}"#),
            [203, 0, 113, 7],
        );
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
    }
    let seen = seen.0.lock().unwrap().clone();
    let warnings: Vec<_> = seen
        .iter()
        .filter(|(_, message)| message.starts_with("hash pool full"))
        .collect();
    assert_eq!(warnings.len(), 1, "{seen:#?}");
    assert!(
        warnings[0].1.contains("(1 since the last warning)"),
        "{seen:#?}"
    );
    let errors: Vec<_> = seen
        .iter()
        .filter(|(level, _)| *level == tracing::Level::ERROR)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    drop(flood);
}
