//! The rate-limit keys the adapters build from a request, in one place, so
//! that axum and actix key the same request the same way.
//!
//! ```
//! use palisade_ratelimit::keys::{UNKNOWN_CLIENT_KEY, route_key};
//!
//! assert_eq!(
//!     route_key("GET", Some("/items/{id}"), "ip4:203.0.113.7"),
//!     "GET /items/{id}|ip4:203.0.113.7"
//! );
//! assert_eq!(route_key("POST", None, UNKNOWN_CLIENT_KEY), "POST (unmatched)|ip:unknown");
//! ```

/// The key of every request whose client address is unknown (an adapter
/// served without the peer address): limited together rather than not at
/// all.
pub const UNKNOWN_CLIENT_KEY: &str = "ip:unknown";

/// The route of every request that matched no route: all of them share one
/// budget (a made-up path is not a fresh one).
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// The key of a limit per endpoint and client: `METHOD route|client`.
///
/// `route_template` is the framework's matched route template
/// (`/items/{id}`), never the raw path: with the raw path every `/items/1`,
/// `/items/2`, ... would be a fresh budget. `None` (nothing matched) is
/// [`UNMATCHED_ROUTE`]. `client_key` is
/// [`ClientIp::rate_limit_key`](crate::client_ip::ClientIp::rate_limit_key)
/// or [`UNKNOWN_CLIENT_KEY`].
pub fn route_key(method: &str, route_template: Option<&str>, client_key: &str) -> String {
    let route = route_template.unwrap_or(UNMATCHED_ROUTE);
    let mut key = String::with_capacity(method.len() + route.len() + client_key.len() + 2);
    key.push_str(method);
    key.push(' ');
    key.push_str(route);
    key.push('|');
    key.push_str(client_key);
    key
}

/// The answer of a limit keyed by a verified identity (a subject, an API key
/// id) that found neither the identity nor an identity layer's word that the
/// caller is anonymous: the layer that sets the identity did not run before
/// the limit (a wrong layer order). A server misconfiguration, never
/// "unlimited": 500, and one `sys_misconfigured` event.
pub fn identity_layer_missing() -> palisade_errors::Error {
    tracing::error!(
        event = palisade_errors::SecurityEvent::SysMisconfigured.as_str(),
        reason = "ratelimit_identity_missing",
        "a limit keyed by an identity ran before the layer that sets it"
    );
    palisade_errors::Error::new(palisade_errors::ErrorKind::Internal)
}

/// The client address a key names, when it is a client key
/// (`ip4:203.0.113.7`, `ip6:2001:db8::/56`) or ends with one (a route key):
/// for the `client_ip` field of the refusal event.
pub(crate) fn client_ip_of(key: &str) -> Option<&str> {
    let client = key.rsplit_once('|').map_or(key, |(_, client)| client);
    client
        .strip_prefix("ip4:")
        .or_else(|| client.strip_prefix("ip6:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_found_in_client_and_route_keys_only() {
        assert_eq!(client_ip_of("ip4:192.0.2.1"), Some("192.0.2.1"));
        assert_eq!(
            client_ip_of("GET /a|ip6:2001:db8::/56"),
            Some("2001:db8::/56")
        );
        assert_eq!(client_ip_of(UNKNOWN_CLIENT_KEY), None);
        assert_eq!(client_ip_of("subject:alice"), None);
    }

    #[test]
    fn a_missing_identity_layer_is_a_500_and_one_event() {
        use palisade_errors::SecurityEvent;
        use palisade_errors::testing::EventCapture;

        let capture = EventCapture::new();
        let error = {
            let _guard = capture.set_default();
            identity_layer_missing()
        };
        assert_eq!(error.status(), 500);
        let events = capture.security_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event(), Some(SecurityEvent::SysMisconfigured));
        assert_eq!(
            events[0].field("reason"),
            Some("ratelimit_identity_missing")
        );
    }
}
