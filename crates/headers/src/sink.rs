use http::{HeaderMap, HeaderName, HeaderValue};

/// The response headers a policy writes into.
///
/// Implemented for [`http::HeaderMap`]; an adapter whose framework is on
/// another `http` version (actix-web 4 is on `http` 0.2) implements it over its
/// own map, so the decisions (what to set, keep, merge or remove) stay in this
/// crate.
pub trait HeaderSink {
    /// Whether at least one value for `name` is present.
    fn contains(&self, name: &HeaderName) -> bool;
    /// Replaces every value of `name` with `value`.
    fn insert(&mut self, name: &HeaderName, value: &HeaderValue);
    /// Adds `value` after the existing values of `name`.
    fn append(&mut self, name: &HeaderName, value: &HeaderValue);
    /// Removes every value of `name`.
    fn remove(&mut self, name: &HeaderName);
    /// Whether any value of `name` satisfies `predicate` (given the raw bytes).
    fn any_value(&self, name: &HeaderName, predicate: &mut dyn FnMut(&[u8]) -> bool) -> bool;
    /// Sets `name` to `value` unless a value is present.
    fn insert_if_absent(&mut self, name: &HeaderName, value: &HeaderValue) {
        if !self.contains(name) {
            self.insert(name, value);
        }
    }
    /// Room for `additional` more headers, so a policy's dozen inserts
    /// grow the map once (the default does nothing).
    fn reserve(&mut self, additional: usize) {
        let _ = additional;
    }
    /// The sink as an [`http::HeaderMap`], when it is one (the default says
    /// it is not). `SecurityHeaders::apply` then starts the response's
    /// headers from its precomputed map, one clone, instead of looking each
    /// of its dozen names up in the response's.
    fn header_map(&mut self) -> Option<&mut HeaderMap> {
        None
    }
}

impl HeaderSink for HeaderMap {
    fn contains(&self, name: &HeaderName) -> bool {
        self.contains_key(name)
    }

    fn insert(&mut self, name: &HeaderName, value: &HeaderValue) {
        HeaderMap::insert(self, name.clone(), value.clone());
    }

    fn append(&mut self, name: &HeaderName, value: &HeaderValue) {
        HeaderMap::append(self, name.clone(), value.clone());
    }

    fn remove(&mut self, name: &HeaderName) {
        HeaderMap::remove(self, name);
    }

    fn any_value(&self, name: &HeaderName, predicate: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.get_all(name)
            .iter()
            .any(|value| predicate(value.as_bytes()))
    }

    fn insert_if_absent(&mut self, name: &HeaderName, value: &HeaderValue) {
        // One lookup instead of `contains` then `insert`.
        if let http::header::Entry::Vacant(entry) = self.entry(name) {
            entry.insert(value.clone());
        }
    }

    fn reserve(&mut self, additional: usize) {
        HeaderMap::reserve(self, additional);
    }

    fn header_map(&mut self) -> Option<&mut HeaderMap> {
        Some(self)
    }
}

/// Whether a comma-separated header value lists `token` (ASCII case-insensitive).
pub(crate) fn lists_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}
