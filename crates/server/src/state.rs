//! The service's state: the user store and every core's store, in memory or
//! all in Redis, behind one [`Stores`] choice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hmac::{Hmac, Mac};
use palisade_apikeys::{ApiKeys, KeyStore, MemoryKeyStore, Pepper, RedisKeyStore};
use palisade_auth_tokens::authz::{Authorizer, RoleHierarchy, RolePermissions};
use palisade_auth_tokens::bearer::BearerAuth;
use palisade_auth_tokens::refresh::{
    FamilyConfig, FamilyStore, MemoryFamilyStore, RedisFamilyStore, RefreshFamilies,
};
use palisade_auth_tokens::revocation::{
    MemoryRevocationStore, RedisRevocationStore, RevocationStore,
};
use palisade_auth_tokens::{
    Algorithm, Keyring, SigningKey, SystemClock, TokenIssuer, TokenPolicy, TokenVerifier,
};
use palisade_errors::redis::RedisConnection;
use palisade_errors::{Error, ErrorKind};
use palisade_passwords::reset::{
    MemoryResetTokenStore, RedisResetTokenStore, ResetTokenStore, ResetTokens,
};
use palisade_passwords::{AsyncHasher, HashPool, PasswordHasher, PasswordPolicy};
use palisade_ratelimit::client_ip::{ClientIpResolver, ForwardedHeader};
use palisade_ratelimit::login::{
    LoginStore, LoginThrottle, LoginThrottleConfig, MemoryLoginStore, RedisLoginStore,
};
use palisade_ratelimit::{MemoryStore, RateLimiter, RateStore, RedisStore};
use secrecy::{ExposeSecret as _, SecretSlice};
use sha2::Sha256;

use crate::config::Config;
use crate::users::{DEFAULT_USER_KEY_PREFIX, Role, User, UserStore, normalize_username};

/// The token issuer (`iss`) of this service.
pub const ISSUER: &str = "palisade-server";
/// The audience (`aud`) of its access tokens.
pub const AUDIENCE: &str = "palisade-api";
/// The realm of its `WWW-Authenticate` challenges.
pub const REALM: &str = "palisade";

/// The stores of one deployment: all in memory or all in Redis.
pub trait Stores: Send + Sync + 'static {
    /// Rate-limit counters.
    type Rate: RateStore;
    /// Login throttle state.
    type Login: LoginStore;
    /// Token revocations.
    type Revocations: RevocationStore;
    /// Refresh-token families.
    type Families: FamilyStore;
    /// Password-reset tokens.
    type Resets: ResetTokenStore + Send + Sync + 'static;
    /// API keys.
    type Keys: KeyStore + 'static;
}

/// Everything in this process's memory.
#[derive(Debug)]
pub enum Memory {}

impl Stores for Memory {
    type Rate = MemoryStore;
    type Login = MemoryLoginStore;
    type Revocations = MemoryRevocationStore;
    type Families = MemoryFamilyStore;
    type Resets = MemoryResetTokenStore;
    type Keys = MemoryKeyStore;
}

/// Everything in Redis, shared by every instance.
#[derive(Debug)]
pub enum Redis {}

impl Stores for Redis {
    type Rate = RedisStore;
    type Login = RedisLoginStore;
    type Revocations = RedisRevocationStore;
    type Families = RedisFamilyStore;
    type Resets = RedisResetTokenStore;
    type Keys = RedisKeyStore;
}

/// One store of each kind.
pub struct StoreSet<St: Stores> {
    /// The global per-IP limit's counters.
    pub rate: St::Rate,
    /// The login limit's counters.
    pub login_rate: St::Rate,
    /// The per-subject limit's counters.
    pub subject_rate: St::Rate,
    /// The per-key limit's counters.
    pub key_rate: St::Rate,
    /// The login throttle's state.
    pub login: St::Login,
    /// Revocations.
    pub revocations: St::Revocations,
    /// Refresh families.
    pub families: St::Families,
    /// Reset tokens.
    pub resets: St::Resets,
    /// Accounts.
    pub users: UserStore,
    /// API keys.
    pub keys: St::Keys,
    /// The Redis connection, for readiness.
    pub redis: Option<RedisConnection>,
}

/// The application state the handlers share.
pub struct App<St: Stores> {
    /// Development: reset tokens are logged.
    pub development: bool,
    /// Accounts.
    pub users: UserStore,
    /// Hashing on a bounded pool.
    pub hasher: AsyncHasher,
    /// `PALISADE_HASH_BUSY_DELAY`: how long a refusal of the full pool is
    /// held (see [`crate::routes::hold_if_busy`]).
    pub hash_busy_delay: std::time::Duration,
    /// The password policy (NIST: 15 characters, blocklist, history 5).
    pub policy: PasswordPolicy,
    /// Refresh families (rotation, reuse detection).
    pub families: RefreshFamilies<St::Families, SystemClock>,
    /// Revocations, shared with the bearer layer.
    pub revocations: Arc<St::Revocations>,
    /// The bearer authenticator (its verifier checks access tokens).
    pub auth: Arc<BearerAuth<Arc<St::Revocations>, SystemClock>>,
    /// The verifier of refresh tokens (logout with a refresh token).
    pub verifier: TokenVerifier,
    /// The login throttle.
    pub throttle: LoginThrottle<St::Login>,
    /// Password-reset tokens.
    pub resets: ResetTokens<St::Resets>,
    /// API keys (pepper `PALISADE_API_KEY_PEPPER`), shared with the layer.
    pub keys: Arc<ApiKeys<St::Keys>>,
    /// Who the client is (behind the trusted proxies).
    pub resolver: ClientIpResolver,
    /// Limiters, shared with the layers.
    pub limiters: Limiters<St::Rate>,
    /// The credential-stuffing and enumeration detector.
    pub detector: crate::detector::Detector,
    /// What `POST /uploads` accepts (`PALISADE_MAX_UPLOAD_BYTES`).
    pub upload_policy: palisade_validate::UploadPolicy,
    /// The uploaded files (memory, bounded per user and in total).
    pub uploads: crate::uploads::UploadStore,
    /// The process's metrics (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set on the shutdown signal: readiness answers 503 from then on.
    pub draining: Arc<AtomicBool>,
    /// The Redis connection, for readiness.
    pub redis: Option<RedisConnection>,
}

/// The rate limiters of the service.
pub struct Limiters<R: RateStore> {
    /// `PALISADE_RATE_LIMIT`, per client IP, all but `/health/*`.
    pub global: Arc<RateLimiter<R>>,
    /// 5/minute per client IP on `POST /auth/login`.
    pub login: Arc<RateLimiter<R>>,
    /// Per verified subject.
    pub subject: Arc<RateLimiter<R>>,
    /// Per API key.
    pub key: Arc<RateLimiter<R>>,
}

impl<St: Stores> App<St> {
    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// A 32-byte key derived from `secret` for `purpose` (HMAC-SHA-256), so one
/// configured secret yields independent keys (refresh sealing, login-id
/// hashing) that every instance derives alike.
pub fn derive_key(secret: &[u8], purpose: &str) -> Result<[u8; 32], Error> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|_| Error::new(ErrorKind::Internal))?;
    mac.update(b"palisade-server:");
    mac.update(purpose.as_bytes());
    Ok(mac.finalize().into_bytes().into())
}

fn prefixed(config: &Config, family: &str) -> String {
    match &config.redis_key_prefix {
        Some(prefix) => format!("{prefix}:{family}"),
        None => format!("palisade:{family}"),
    }
}

/// The memory stores.
pub fn memory_stores() -> StoreSet<Memory> {
    StoreSet {
        rate: MemoryStore::new(),
        login_rate: MemoryStore::new(),
        subject_rate: MemoryStore::new(),
        key_rate: MemoryStore::new(),
        login: MemoryLoginStore::new(),
        revocations: MemoryRevocationStore::new(),
        families: MemoryFamilyStore::new(),
        resets: MemoryResetTokenStore::new(),
        users: UserStore::memory(),
        keys: MemoryKeyStore::new(),
        redis: None,
    }
}

/// Checks and renews every revocation epoch sentinel each `every`, for as
/// long as the process runs. A check of a token notices a lost sentinel of
/// its own slot only, and starts that slot's new epoch then: after Redis
/// lost its data, a user who logged in again before their slot was checked
/// would see their fresh token refused once. The sweep starts every slot's
/// new epoch within `every` of the loss, so tokens issued after that work.
fn spawn_epoch_sweep(revocations: RedisRevocationStore, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: start-up has just done it.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match revocations.readiness().await {
                Ok(()) => {}
                Err(error) if error.kind() == palisade_errors::StoreErrorKind::DataLost => {
                    tracing::warn!(
                        event = palisade_errors::SecurityEvent::StoreUnavailable.as_str(),
                        reason = "new_revocation_epoch",
                        "revocation store: Redis lost its data; tokens issued before now are refused"
                    );
                }
                // Redis down: the checks fail closed meanwhile; next tick.
                Err(error) => {
                    tracing::debug!(%error, "revocation epoch sweep: Redis did not answer");
                }
            }
        }
    });
}
/// The bound on each call of the revocation store's start-up epoch setup
/// (see [`redis_stores`]).
pub const EPOCH_SETUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long start-up retries the epoch setup before it gives up (a Redis
/// that accepts connections but does not answer must not hang the start).
pub const EPOCH_SETUP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Connects to Redis (now: a start-up with Redis down fails clearly) and
/// builds every store on the one connection.
///
/// # Errors
///
/// Redis unreachable, or a key prefix refused.
pub async fn redis_stores(config: &Config, url: &str) -> Result<StoreSet<Redis>, String> {
    // A single node (`redis://`, `rediss://`) or a Cluster
    // (`redis+cluster://host:port,host:port`): every store takes either.
    let mut options = palisade_errors::redis::ConnectOptions::new();
    if let Some(path) = &config.redis_ca_file {
        let pem = std::fs::read(path).map_err(|error| {
            format!(
                "PALISADE_REDIS_CA_FILE: cannot read {} ({})",
                path.display(),
                error.kind()
            )
        })?;
        options = options.ca_certificate_pem(pem);
    }
    let connection = palisade_errors::redis::connect_with(url, &options)
        .await
        .map_err(|error| format!("PALISADE_REDIS_URL: cannot connect to Redis ({error})"))?;
    let timeout = config.redis_timeout;
    let revocations = RedisRevocationStore::new(connection.clone())
        .with_key_prefix(&prefixed(config, "rv"))
        .map_err(|error| format!("PALISADE_REDIS_KEY_PREFIX: {error}"))?
        .with_timeout(timeout);
    // Write every slot's epoch sentinel before serving, so no request pays
    // for (or times out on) the first-use setup. On a store used for the
    // first time, or one that lost its data, this starts a new epoch: the
    // tokens issued before it count as revoked (fail closed).
    // The setup runs on a clone (sharing the store's epoch state) whose
    // calls may take up to `EPOCH_SETUP_TIMEOUT` instead of a request's
    // `PALISADE_REDIS_TIMEOUT` (50 ms): nothing waits on start-up, and on a
    // busy host (two instances and a six-node test cluster on two cores) a
    // round of sentinel writes misses 50 ms. A round that still misses the
    // bound is retried; the next attempt writes only what is still missing.
    let setup = revocations
        .clone()
        .with_timeout(EPOCH_SETUP_TIMEOUT.max(timeout));
    let deadline = std::time::Instant::now() + EPOCH_SETUP_DEADLINE;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match setup.readiness().await {
            Ok(()) => break,
            Err(error) if error.kind() == palisade_errors::StoreErrorKind::DataLost => {
                tracing::warn!(
                    event = palisade_errors::SecurityEvent::StoreUnavailable.as_str(),
                    reason = "new_revocation_epoch",
                    "revocation store: new epoch (first use, or Redis lost its data); earlier tokens are refused"
                );
                break;
            }
            Err(error) if std::time::Instant::now() < deadline => {
                tracing::debug!(%error, attempt, "revocation epoch setup: retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(error) => {
                return Err(format!(
                    "PALISADE_REDIS_URL: revocation store not ready ({error})"
                ));
            }
        }
    }
    // The sweep, in the background too, keeps the setup's bound per call:
    // under a request's 50 ms a busy host's rounds would miss it, and the
    // sweep would never finish.
    spawn_epoch_sweep(setup, config.revocation_sweep);
    let bad_prefix = |error: &dyn std::fmt::Display| format!("PALISADE_REDIS_KEY_PREFIX: {error}");
    let id_secret = derive_key(
        config.api_key_pepper.expose_secret().as_bytes(),
        "login-ids",
    )
    .map_err(|_| "PALISADE_API_KEY_PEPPER: unusable".to_owned())?;
    let rate = |family: &str| {
        RedisStore::new(connection.clone())
            .with_key_prefix(&prefixed(config, family))
            .map(|store| store.with_timeout(timeout))
            .map_err(|error| bad_prefix(&error))
    };
    Ok(StoreSet {
        rate: rate("rl")?,
        login_rate: rate("rl-login")?,
        subject_rate: rate("rl-subject")?,
        key_rate: rate("rl-key")?,
        login: RedisLoginStore::new(connection.clone(), &id_secret)
            .map_err(|error| bad_prefix(&error))?
            .with_key_prefix(&prefixed(config, "login"))
            .map_err(|error| bad_prefix(&error))?
            .with_timeout(timeout),
        revocations,
        families: RedisFamilyStore::new(connection.clone())
            .with_key_prefix(&prefixed(config, "rf"))
            .map_err(|error| bad_prefix(&error))?
            .with_timeout(timeout),
        resets: RedisResetTokenStore::new(connection.clone())
            .with_key_prefix(&prefixed(config, "reset"))
            .map_err(|error| bad_prefix(&error))?
            .with_timeout(timeout),
        users: UserStore::redis(
            connection.clone(),
            &config.redis_key_prefix.as_ref().map_or_else(
                || DEFAULT_USER_KEY_PREFIX.to_owned(),
                |p| format!("{p}:users"),
            ),
        )
        .map_err(|error| bad_prefix(&error))?
        .with_timeout(timeout.max(crate::users::DEFAULT_USER_STORE_TIMEOUT)),
        keys: RedisKeyStore::new(connection.clone())
            .with_key_prefix(&prefixed(config, "ak"))
            .map_err(|error| bad_prefix(&error))?
            .with_timeout(timeout),
        redis: Some(connection),
    })
}

fn hmac_keyring(kid: &str, secret: &secrecy::SecretString) -> Result<Keyring, Error> {
    let bytes = SecretSlice::from(secret.expose_secret().as_bytes().to_vec());
    let key = SigningKey::hmac(kid, Algorithm::HS256, &bytes)?;
    Ok(Keyring::new([key])?)
}

/// Builds the state from the configuration and the stores, with metrics of
/// its own (see [`build_with_metrics`]).
///
/// # Errors
///
/// As [`build_with_metrics`].
pub fn build<St: Stores>(config: &Config, stores: StoreSet<St>) -> Result<Arc<App<St>>, Error> {
    build_with_metrics(config, stores, Arc::new(crate::metrics::Metrics::new()))
}

/// Builds the state from the configuration and the stores; `metrics` are
/// the ones the process's tracing layer counts events into.
///
/// # Errors
///
/// A key the token crate refuses (too short), or an invalid setting of a
/// core; each is logged with its reason.
pub fn build_with_metrics<St: Stores>(
    config: &Config,
    stores: StoreSet<St>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Arc<App<St>>, Error> {
    let access_secret =
        secrecy::SecretString::from(config.jwt_access_secret.expose_secret().to_owned());
    let refresh_secret =
        secrecy::SecretString::from(config.jwt_refresh_secret.expose_secret().to_owned());
    let access = hmac_keyring("a1", &access_secret)?;
    let refresh = hmac_keyring("r1", &refresh_secret)?;
    let policy = TokenPolicy::builder(ISSUER, AUDIENCE)
        .leeway(config.token_leeway.as_secs())
        .build()?;
    let issuer = TokenIssuer::new(access.clone(), refresh.clone(), policy.clone());
    let verifier = TokenVerifier::new(access, refresh, policy);
    let sealing = derive_key(refresh_secret.expose_secret().as_bytes(), "refresh-sealing")?;
    let families = RefreshFamilies::new(
        issuer,
        verifier.clone(),
        stores.families,
        &SecretSlice::from(sealing.to_vec()),
        FamilyConfig {
            grace_secs: config.refresh_grace.as_secs(),
            ..FamilyConfig::default()
        },
    )?;
    let authorizer = Authorizer::new(RoleHierarchy::default(), RolePermissions::default(), REALM)?;
    let revocations = Arc::new(stores.revocations);
    let auth = Arc::new(BearerAuth::new(
        verifier.clone(),
        authorizer,
        Arc::clone(&revocations),
    ));
    let throttle = LoginThrottle::new(
        stores.login,
        LoginThrottleConfig {
            // No CAPTCHA or second factor to offer: a slowed-down account
            // answers 429 with Retry-After instead of a challenge.
            challenge_during_slowdown: false,
            ..LoginThrottleConfig::default()
        },
    )?;
    let resolver = if config.trusted_proxies.is_empty() {
        ClientIpResolver::peer_only()
    } else {
        ClientIpResolver::behind_proxies(
            config.trusted_proxies.clone(),
            ForwardedHeader::XForwardedFor,
        )
    };
    let limiters = Limiters {
        global: Arc::new(RateLimiter::new(
            "global",
            config.rate_limit.clone(),
            stores.rate,
        )),
        login: Arc::new(RateLimiter::new(
            "login",
            config.login_rate_limit.clone(),
            stores.login_rate,
        )),
        subject: Arc::new(RateLimiter::new(
            "subject",
            config.subject_rate_limit.clone(),
            stores.subject_rate,
        )),
        key: Arc::new(RateLimiter::new(
            "key",
            config.key_rate_limit.clone(),
            stores.key_rate,
        )),
    };
    let pepper = Pepper::new(
        "p1",
        config.api_key_pepper.expose_secret().as_bytes().to_vec(),
    )?;
    let keys = Arc::new(ApiKeys::new(stores.keys, pepper));
    // Leave one core to serving: hashing never starves the executor.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = cores.saturating_sub(1).max(1);
    let pool = HashPool::with_limits(workers, workers * 16)?;
    let upload_policy = crate::uploads::policy(config.max_upload_bytes).map_err(|error| {
        tracing::error!(reason = %error, "PALISADE_MAX_UPLOAD_BYTES");
        Error::new(ErrorKind::Internal)
    })?;
    Ok(Arc::new(App {
        development: config.profile == palisade_secrets::Profile::Development,
        users: stores.users,
        hasher: AsyncHasher::new(PasswordHasher::new(), pool),
        hash_busy_delay: config.hash_busy_delay,
        policy: PasswordPolicy::nist(),
        families,
        revocations,
        auth,
        verifier,
        throttle,
        resets: ResetTokens::new(stores.resets),
        keys,
        resolver,
        limiters,
        detector: crate::detector::Detector::new(),
        upload_policy,
        uploads: crate::uploads::UploadStore::new(),
        metrics,
        draining: Arc::new(AtomicBool::new(false)),
        redis: stores.redis,
    }))
}

/// Creates the admin of `PALISADE_ADMIN_USERNAME`, or makes the existing
/// account an admin with the configured password.
///
/// # Errors
///
/// An invalid username, a password the policy refuses, or a store error.
pub async fn ensure_admin<St: Stores>(app: &App<St>, config: &Config) -> Result<(), String> {
    let Some((raw, password)) = &config.admin else {
        return Ok(());
    };
    let username = normalize_username(raw).ok_or_else(|| {
        "PALISADE_ADMIN_USERNAME: 3-32 characters of a-z, 0-9, '.', '_', '-'".to_owned()
    })?;
    let password = secrecy::SecretString::from(password.expose_secret().to_owned());
    if let Err(violation) = app.policy.check(
        &password,
        &palisade_passwords::PolicyContext::new().username(&username),
    ) {
        let codes: Vec<&str> = violation.failures().iter().map(|f| f.code()).collect();
        return Err(format!(
            "PALISADE_ADMIN_PASSWORD: refused by the password policy ({})",
            codes.join(", ")
        ));
    }
    let hash = app
        .hasher
        .hash(password.clone())
        .await
        .map_err(|error| {
            format!(
                "PALISADE_ADMIN_PASSWORD: cannot hash ({})",
                error.kind().as_str()
            )
        })?
        .into_string();
    let store_failed = |error: crate::users::UserStoreError| format!("admin account: {error}");
    match app
        .users
        .by_username(&username)
        .await
        .map_err(store_failed)?
    {
        Some(mut user) => {
            // Quietly (a start-up check is no failed login); a hash that
            // cannot be compared counts as a change, which replaces it.
            let same = app
                .hasher
                .is_reused(password, vec![user.password_hash.clone()])
                .await
                .unwrap_or(false);
            let role_changed = user.role != Role::Admin;
            user.role = Role::Admin;
            if role_changed {
                // Its display name was chosen by whoever registered it.
                user.display_name = None;
            }
            if !same {
                user.change_password(hash);
            }
            app.users.update(&user).await.map_err(store_failed)?;
            if role_changed || !same {
                // The account's earlier sessions ran under the old role or
                // password: end them.
                app.revocations
                    .revoke_subject(&user.id)
                    .await
                    .map_err(|error| format!("admin account: revocation store: {error}"))?;
            }
            if role_changed {
                // An account someone registered under the admin's name
                // before it was configured: whatever it made before does
                // not become the admin's (its API keys would act as the
                // admin's identity).
                let revoked = app
                    .keys
                    .revoke_all(&user.id, "admin_promotion")
                    .await
                    .map_err(|error| format!("admin account: API key store: {error}"))?;
                tracing::warn!(
                    subject_hash = %palisade_errors::SubjectHash::of(&user.id),
                    api_keys_revoked = revoked,
                    "PALISADE_ADMIN_USERNAME names an existing non-admin account: promoted to \
                     admin, its sessions and API keys ended"
                );
            }
        }
        None => {
            let user = User::new(username, hash, Role::Admin)
                .map_err(|_| "admin account: no randomness".to_owned())?;
            app.users.create(&user).await.map_err(store_failed)?;
        }
    }
    tracing::info!("admin account from PALISADE_ADMIN_USERNAME is ready");
    Ok(())
}
