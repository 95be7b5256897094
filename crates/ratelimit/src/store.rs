use std::future::Future;

use crate::StoreError;
use crate::gcra::{Decision, Mode};
use crate::quota::Policy;

/// Where rate-limit state lives. The decision itself is
/// [`gcra::decide`](crate::gcra::decide); a store only makes it atomic per key
/// and keeps the state.
///
/// Implemented by [`MemoryStore`](crate::MemoryStore) (one process) and,
/// with the `redis` feature, `RedisStore` (shared by every instance).
pub trait RateStore: Send + Sync + 'static {
    /// Decides one request of `cost` for `key` against `policy`, atomically.
    fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> impl Future<Output = Result<Decision, StoreError>> + Send;

    /// Forgets `key`: its next request starts from a full quota.
    fn reset(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<S: RateStore> RateStore for std::sync::Arc<S> {
    fn decide(
        &self,
        key: &str,
        policy: &Policy,
        cost: u32,
        mode: Mode,
    ) -> impl Future<Output = Result<Decision, StoreError>> + Send {
        (**self).decide(key, policy, cost, mode)
    }

    fn reset(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).reset(key)
    }
}
