//! What an identity layer tells the layers inside it about a caller it let
//! through without an identity.

use std::sync::Arc;

use palisade_errors::Error;

/// Put into the request extensions by an identity middleware (the `auth`
/// feature's `Authentication` in optional mode) that let a caller without
/// credentials through. An identity-keyed rate limit told to refuse such a caller
/// answers with [`refusal`](Self::refusal); a limit that finds neither the
/// identity nor this marker knows that no identity layer ran before it (a
/// wrong layer order) and answers 500 instead of passing the request
/// unmetered.
///
/// Another identity layer (API keys, sessions) inserts it the same way.
#[derive(Clone)]
pub struct AnonymousCaller(Arc<dyn Fn() -> Error + Send + Sync>);

impl AnonymousCaller {
    /// The marker; `refusal` builds the error (and logs its event) when a
    /// layer refuses the anonymous caller.
    pub fn new(refusal: impl Fn() -> Error + Send + Sync + 'static) -> AnonymousCaller {
        AnonymousCaller(Arc::new(refusal))
    }

    /// The refusal of this caller where an identity is needed (401 with the
    /// identity layer's challenge).
    pub fn refusal(&self) -> Error {
        (self.0)()
    }
}

impl std::fmt::Debug for AnonymousCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnonymousCaller")
    }
}
