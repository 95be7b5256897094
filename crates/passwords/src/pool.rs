//! The bounded blocking pool: hashing (tens of milliseconds of CPU) and
//! zxcvbn run off the async executor, at most one task per core at a time,
//! with a bounded queue; past it, callers get a 503 instead of an unbounded
//! backlog that would turn a login flood into memory exhaustion.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ConfigError, ConfigErrorKind};
use crate::error::{HashError, HashErrorKind};
use crate::hasher::{PasswordHash, PasswordHasher, Verified};

/// Waiting tasks allowed per worker by [`HashPool::new`].
pub const DEFAULT_QUEUE_PER_WORKER: usize = 32;

/// At most one "hash pool full" warning this often, with the count of
/// refusals since the one before.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(1);

/// Counts occurrences and says when one is due a log line: the first, then
/// the first after each `interval`, each with the count since the last line.
#[derive(Debug)]
struct WarnEvery {
    interval: Duration,
    start: Instant,
    /// Microseconds after `start` of the last line; `u64::MAX`: none yet.
    last: AtomicU64,
    pending: AtomicU64,
}

impl WarnEvery {
    fn new(interval: Duration) -> WarnEvery {
        WarnEvery {
            interval,
            start: Instant::now(),
            last: AtomicU64::new(u64::MAX),
            pending: AtomicU64::new(0),
        }
    }

    /// Counts one occurrence at `now`; `Some(count)` when it is to be
    /// logged, `count` the occurrences since the last line, this one
    /// included.
    fn note(&self, now: Instant) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let at = u64::try_from(now.saturating_duration_since(self.start).as_micros())
            .unwrap_or(u64::MAX - 1);
        let last = self.last.load(Ordering::Relaxed);
        let interval = u64::try_from(self.interval.as_micros()).unwrap_or(u64::MAX);
        let due = last == u64::MAX || at.saturating_sub(last) >= interval;
        // One of the callers that find it due wins the line.
        if due
            && self
                .last
                .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.pending.swap(0, Ordering::Relaxed));
        }
        None
    }
}

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
    full_warning: Arc<WarnEvery>,
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
            full_warning: Arc::new(WarnEvery::new(FULL_WARNING_INTERVAL)),
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
            // A flood is refused thousands of times a second: one line a
            // second with the count, not a line per refusal (which would
            // make the flood a log flood, and its CPU the log's).
            if let Some(refused) = self.full_warning.note(Instant::now()) {
                tracing::warn!(
                    workers = self.workers,
                    queue_limit = self.queue_limit,
                    refused,
                    "hash pool full: refusing with 503 ({refused} since the last warning)"
                );
            }
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

    /// [`PasswordHasher::is_reused`] on the pool, as one task (the
    /// history's verifications one after another on one place).
    ///
    /// # Errors
    ///
    /// As [`PasswordHasher::is_reused`], and [`HashErrorKind::Busy`]: a
    /// full pool proves nothing, so a caller refuses the change (fails
    /// closed) instead of skipping the history rule.
    pub async fn is_reused(
        &self,
        password: SecretString,
        recent: Vec<String>,
    ) -> Result<bool, HashError> {
        let hasher = Arc::clone(&self.hasher);
        self.pool
            .run(move || hasher.is_reused(&password, recent.iter().map(String::as_str)))
            .await?
    }

    /// [`PasswordHasher::dummy_verify`] on the pool (always an error).
    pub async fn dummy_verify(&self, password: SecretString) -> HashError {
        match self.reserve() {
            Ok(reserved) => reserved.dummy_verify(password).await,
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
        Ok(ReservedHasher {
            hasher: Arc::clone(&self.hasher),
            place: self.pool.reserve()?,
        })
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::WarnEvery;

    /// A login flood refused 10 000 times in two seconds writes two warning
    /// lines (the first refusal, then one a second later), and the counts
    /// the lines carry add up to every refusal: the log neither floods nor
    /// loses how many were refused.
    #[test]
    fn a_flood_of_refusals_is_logged_once_a_second_with_its_count() {
        let warn = WarnEvery::new(Duration::from_secs(1));
        let start = Instant::now();
        let mut lines = Vec::new();
        for step in 0..10_000_u64 {
            let now = start + Duration::from_micros(step * 200);
            if let Some(count) = warn.note(now) {
                lines.push((step, count));
            }
        }
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], (0, 1));
        assert_eq!(lines[1], (5_000, 5_000));
        // The 4 999 after the second line wait for the next one.
        let later = start + Duration::from_secs(3);
        assert_eq!(warn.note(later), Some(5_000));
        assert_eq!(warn.note(later), None);
    }
}
