//! The bounded blocking pool: hashing (tens of milliseconds of CPU) and
//! zxcvbn run off the async executor, at most one task per core at a time,
//! with a bounded queue; past it, callers get a 503 instead of an unbounded
//! backlog that would turn a login flood into memory exhaustion.

use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ConfigError, ConfigErrorKind};
use crate::error::{HashError, HashErrorKind};
use crate::hasher::{PasswordHash, PasswordHasher, Verified};

/// Waiting tasks allowed per worker by [`HashPool::new`].
pub const DEFAULT_QUEUE_PER_WORKER: usize = 32;

/// A bounded pool on the caller's Tokio runtime: `workers` tasks run at once
/// (each on a `spawn_blocking` thread), and `workers + queue_limit` places
/// can be taken at once (running, queued, or reserved with
/// [`reserve`](Self::reserve) and not run yet); beyond that
/// [`run`](Self::run) and `reserve` fail at once with
/// [`HashErrorKind::Busy`] (a 503 `unavailable` with `Retry-After`). Clones
/// share the pool.
#[derive(Clone, Debug)]
pub struct HashPool {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    workers: usize,
    queue_limit: usize,
}

impl Default for HashPool {
    fn default() -> HashPool {
        HashPool::new()
    }
}

impl HashPool {
    /// One worker per core (`std::thread::available_parallelism`), a queue
    /// of [`DEFAULT_QUEUE_PER_WORKER`] per worker.
    pub fn new() -> HashPool {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        HashPool::build(workers, workers * DEFAULT_QUEUE_PER_WORKER)
    }

    /// `workers` running at once and `queue_limit` waiting.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidPool`] for 0 workers or more than 4096
    /// workers or waiting tasks.
    pub fn with_limits(workers: usize, queue_limit: usize) -> Result<HashPool, ConfigError> {
        if workers == 0 || workers > 4096 || queue_limit > 1 << 20 {
            return Err(ConfigError::new(
                ConfigErrorKind::InvalidPool,
                format!(
                    "hash pool: {workers} workers, {queue_limit} queued: need 1..=4096 workers and a queue of at most 1048576"
                ),
            ));
        }
        Ok(HashPool::build(workers, queue_limit))
    }

    fn build(workers: usize, queue_limit: usize) -> HashPool {
        HashPool {
            admitted: Arc::new(Semaphore::new(workers + queue_limit)),
            running: Arc::new(Semaphore::new(workers)),
            workers,
            queue_limit,
        }
    }

    /// Tasks allowed to run at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Tasks allowed to wait.
    pub fn queue_limit(&self) -> usize {
        self.queue_limit
    }

    /// Places taken now: tasks running or waiting, and reservations not
    /// run yet.
    pub fn in_flight(&self) -> usize {
        (self.workers + self.queue_limit).saturating_sub(self.admitted.available_permits())
    }

    /// Runs `task` on a blocking thread once a worker is free.
    ///
    /// A task that started runs to completion even if the caller stops
    /// waiting (its slot is held until it ends), so cancelled logins cannot
    /// oversubscribe the cores.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::Busy`] when `workers + queue_limit` tasks are in
    /// flight; [`HashErrorKind::Internal`] when the task panicked.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (as `spawn_blocking` does).
    pub async fn run<T, F>(&self, task: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.reserve()?.run(task).await
    }

    /// A place in the pool (running or queued), taken now, for one task
    /// run later with [`Reservation::run`]; dropped unused, it is given
    /// back.
    ///
    /// Reserve before anything that counts an attempt: a login throttle
    /// that charged an attempt the server then could not check (the pool
    /// full, a 503) would let a login flood lock real users out without a
    /// single wrong password. A reservation held while such checks wait on
    /// their store counts against the queue like a queued task: size the
    /// queue for the logins in flight, not only for the hashes.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::Busy`] when `workers + queue_limit` places are taken.
    pub fn reserve(&self) -> Result<Reservation, HashError> {
        let Ok(admitted) = Arc::clone(&self.admitted).try_acquire_owned() else {
            tracing::warn!(
                workers = self.workers,
                queue_limit = self.queue_limit,
                "hash pool full: refusing with 503"
            );
            return Err(HashError::new(HashErrorKind::Busy, "hash pool queue full"));
        };
        Ok(Reservation {
            admitted,
            running: Arc::clone(&self.running),
        })
    }
}

/// A place in a [`HashPool`] ([`HashPool::reserve`]); given back when the
/// task it runs ends, or when it is dropped unused.
#[derive(Debug)]
pub struct Reservation {
    admitted: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

impl Reservation {
    /// Runs `task` on a blocking thread once a worker is free (see
    /// [`HashPool::run`]).
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::Internal`] when the task panicked.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (as `spawn_blocking` does).
    pub async fn run<T, F>(self, task: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let running = self
            .running
            .acquire_owned()
            .await
            .map_err(|_| HashError::new(HashErrorKind::Internal, "hash pool closed"))?;
        let admitted = self.admitted;
        tokio::task::spawn_blocking(move || {
            let _slots = (admitted, running);
            task()
        })
        .await
        .map_err(|_| HashError::new(HashErrorKind::Internal, "hashing task failed"))
    }
}

/// A [`PasswordHasher`] whose work runs on a [`HashPool`]: the async API.
/// Clones share the hasher and the pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), palisade_errors::Error> {
/// use palisade_passwords::{AsyncHasher, HashPool, PasswordHasher};
/// use secrecy::SecretString;
///
/// let hasher = AsyncHasher::new(PasswordHasher::new(), HashPool::new());
/// let hash = hasher.hash(SecretString::from("correct horse battery staple")).await?;
/// let verified = hasher
///     .verify(SecretString::from("correct horse battery staple"), hash.into_string())
///     .await?;
/// assert!(!verified.needs_rehash);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AsyncHasher {
    hasher: Arc<PasswordHasher>,
    pool: HashPool,
}

impl AsyncHasher {
    /// `hasher` on `pool`.
    pub fn new(hasher: PasswordHasher, pool: HashPool) -> AsyncHasher {
        AsyncHasher {
            hasher: Arc::new(hasher),
            pool,
        }
    }

    /// The hasher, for the synchronous API.
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The pool (share it with [`PasswordPolicy::check_on`](crate::PasswordPolicy::check_on)).
    pub fn pool(&self) -> &HashPool {
        &self.pool
    }

    /// [`PasswordHasher::hash`] on the pool.
    ///
    /// # Errors
    ///
    /// As [`PasswordHasher::hash`], and [`HashErrorKind::Busy`].
    pub async fn hash(&self, password: SecretString) -> Result<PasswordHash, HashError> {
        let hasher = Arc::clone(&self.hasher);
        self.pool.run(move || hasher.hash(&password)).await?
    }

    /// [`PasswordHasher::verify`] on the pool.
    ///
    /// # Errors
    ///
    /// As [`PasswordHasher::verify`], and [`HashErrorKind::Busy`].
    pub async fn verify(
        &self,
        password: SecretString,
        stored: String,
    ) -> Result<Verified, HashError> {
        self.reserve()?.verify(password, stored).await
    }

    /// [`PasswordHasher::dummy_verify`] on the pool (always an error).
    pub async fn dummy_verify(&self, password: SecretString) -> HashError {
        match self.pool.reserve() {
            Ok(place) => self.reserved(place).dummy_verify(password).await,
            Err(error) => error,
        }
    }

    /// A place in the pool taken now ([`HashPool::reserve`]) for one
    /// `verify` or `dummy_verify` later: a login takes it before its
    /// throttle counts the attempt, so an attempt the pool cannot take is a
    /// 503 that costs the account nothing.
    ///
    /// # Errors
    ///
    /// [`HashErrorKind::Busy`] when the pool is full.
    pub fn reserve(&self) -> Result<ReservedHasher, HashError> {
        Ok(self.reserved(self.pool.reserve()?))
    }

    fn reserved(&self, place: Reservation) -> ReservedHasher {
        ReservedHasher {
            hasher: Arc::clone(&self.hasher),
            place,
        }
    }
}

/// One verification with its place in the pool already taken
/// ([`AsyncHasher::reserve`]).
#[derive(Debug)]
pub struct ReservedHasher {
    hasher: Arc<PasswordHasher>,
    place: Reservation,
}

impl ReservedHasher {
    /// [`PasswordHasher::verify`] in the reserved place.
    ///
    /// # Errors
    ///
    /// As [`PasswordHasher::verify`].
    pub async fn verify(
        self,
        password: SecretString,
        stored: String,
    ) -> Result<Verified, HashError> {
        let hasher = self.hasher;
        self.place
            .run(move || hasher.verify(&password, &stored))
            .await?
    }

    /// [`PasswordHasher::dummy_verify`] in the reserved place (always an
    /// error).
    pub async fn dummy_verify(self, password: SecretString) -> HashError {
        let hasher = self.hasher;
        match self.place.run(move || hasher.dummy_verify(&password)).await {
            Ok(error) | Err(error) => error,
        }
    }
}
