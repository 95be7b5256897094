//! The service's configuration: `PALISADE_*` environment variables (secrets
//! also as `<NAME>_FILE`), read through palisade-secrets and checked for the
//! profile before anything binds.
//!
//! Every problem is collected and reported at once, each naming its
//! variable and never its value. In development a missing secret is
//! generated at random (with a warning naming the variable); in production
//! a missing or weak secret, one secret for access and refresh tokens, a
//! wildcard CORS origin, an empty trusted-host list or debug mode refuse the
//! start-up.

use std::net::SocketAddr;
use std::time::Duration;

use palisade_ratelimit::Policy;
use palisade_ratelimit::client_ip::IpNet;
use palisade_secrets::checks::{self, SecretRules};
use palisade_secrets::{
    ConfigError, ConfigErrorKind, ConfigErrors, EnvSettings, EnvSource, Profile, SecretString,
    StartupChecks, generate_dev_secret,
};

/// The listen address when `PALISADE_ADDR` is unset.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The per-client-IP limit when `PALISADE_RATE_LIMIT` is unset.
pub const DEFAULT_RATE_LIMIT: &str = "20/second,600/minute";
/// The login limit per client IP, on top of the global one.
pub const LOGIN_RATE_LIMIT: &str = "5/minute";
/// The limit per verified subject (a stolen token cannot hammer the API
/// from many addresses).
pub const SUBJECT_RATE_LIMIT: &str = "600/minute";
/// The limit per API key.
pub const KEY_RATE_LIMIT: &str = "60/minute";
/// The largest request body when `PALISADE_MAX_BODY_BYTES` is unset (64 KiB:
/// every JSON body of this API is far smaller).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024;
/// The bound on each Redis store call when `PALISADE_REDIS_TIMEOUT` is
/// unset (the cores' own default).
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// The largest `PALISADE_REDIS_TIMEOUT`: every request waits on a store
/// call or two, and a store that slow is better treated as down.
pub const MAX_REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a refusal of the full hashing pool is held when
/// `PALISADE_HASH_BUSY_DELAY` is unset: a flood connection gets at most four
/// refusals a second, a person at a login form hardly notices.
pub const DEFAULT_HASH_BUSY_DELAY: Duration = Duration::from_millis(250);
/// The longest `PALISADE_HASH_BUSY_DELAY` (the `Retry-After` of the 503 is
/// one second; a held request also holds its connection).
pub const MAX_HASH_BUSY_DELAY: Duration = Duration::from_secs(5);
/// The fewest bytes of a signing key or pepper (HS256: the hash output).
pub const MIN_SECRET_BYTES: usize = 32;
/// The largest uploaded file when `PALISADE_MAX_UPLOAD_BYTES` is unset
/// (10 MiB; `POST /uploads` gets this plus [`MULTIPART_OVERHEAD_BYTES`] as
/// its body cap, every other route keeps `PALISADE_MAX_BODY_BYTES`).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 10 * 1024 * 1024;
/// What a multipart body may carry beyond its file (boundaries, part
/// headers), on top of the upload size in the route's body cap.
pub const MULTIPART_OVERHEAD_BYTES: u64 = 16 * 1024;

/// The loaded configuration.
#[derive(Debug)]
pub struct Config {
    /// `PALISADE_ENV`: development (default), staging or production.
    pub profile: Profile,
    /// `PALISADE_ADDR`: where to listen.
    pub addr: SocketAddr,
    /// `PALISADE_DEBUG`: refused in production.
    pub debug: bool,
    /// `PALISADE_REDIS_URL` (or `_FILE`: it may hold a password): every
    /// store in Redis when set, in memory otherwise.
    pub redis_url: Option<SecretString>,
    /// `PALISADE_REDIS_KEY_PREFIX`: prepended to every store's default key
    /// prefix (`<prefix>:rl`, ...), for several deployments sharing a Redis.
    pub redis_key_prefix: Option<String>,
    /// `PALISADE_REDIS_CA_FILE`: a PEM CA certificate that `rediss://`
    /// servers must chain to, instead of the system's roots (a private CA).
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// `PALISADE_REDIS_TIMEOUT` (default [`DEFAULT_REDIS_TIMEOUT`], 1 ms to
    /// 5 s): the bound on each call of every Redis store (the user store
    /// keeps at least its own 250 ms). Past it a store's fail mode decides
    /// (the rate limits in this instance's memory, revocation closed):
    /// raise it for a Redis Cluster across a network hop, or a busy host.
    pub redis_timeout: Duration,
    /// `PALISADE_JWT_ACCESS_SECRET`: the HS256 key of access tokens (its
    /// UTF-8 bytes as given).
    pub jwt_access_secret: SecretString,
    /// `PALISADE_JWT_REFRESH_SECRET`: the HS256 key of refresh tokens.
    pub jwt_refresh_secret: SecretString,
    /// `PALISADE_API_KEY_PEPPER`: the HMAC key of API keys at rest.
    pub api_key_pepper: SecretString,
    /// `PALISADE_CORS_ORIGINS`: the allowed origins (comma list).
    pub cors_origins: Vec<String>,
    /// `PALISADE_TRUSTED_HOSTS`: the allowed `Host` values (comma list;
    /// empty allows any host, refused in production).
    pub trusted_hosts: Vec<String>,
    /// `PALISADE_TRUSTED_PROXIES`: the proxies (CIDRs) whose
    /// `X-Forwarded-For` and `X-Forwarded-Host` are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `PALISADE_MAX_BODY_BYTES`: the largest request body.
    pub max_body_bytes: u64,
    /// `PALISADE_RATE_LIMIT`: the quotas per client IP on every route but
    /// `/health/*` (e.g. `10/second,100/minute`).
    pub rate_limit: Policy,
    /// `PALISADE_LOGIN_RATE_LIMIT` (default [`LOGIN_RATE_LIMIT`]): the
    /// quotas per client IP (IPv6: per /56) on `POST /auth/login`, on top
    /// of the global ones.
    pub login_rate_limit: Policy,
    /// `PALISADE_SUBJECT_RATE_LIMIT` (default [`SUBJECT_RATE_LIMIT`]): the
    /// quotas per verified subject (a bearer token's user), whatever
    /// address its requests come from.
    pub subject_rate_limit: Policy,
    /// `PALISADE_KEY_RATE_LIMIT` (default [`KEY_RATE_LIMIT`]): the quotas
    /// per API key on `GET /reports/{id}`.
    pub key_rate_limit: Policy,
    /// `PALISADE_ADMIN_USERNAME` + `PALISADE_ADMIN_PASSWORD`: an admin
    /// created (or updated) at start.
    pub admin: Option<(String, SecretString)>,
    /// `PALISADE_PRE_STOP_DELAY` (default 2 s): between the shutdown signal
    /// (readiness answers 503 from then on) and the listener closing.
    pub pre_stop_delay: Duration,
    /// `PALISADE_HASH_BUSY_DELAY` (default 250 ms, at most 5 s and shorter
    /// than `PALISADE_REQUEST_TIMEOUT`): how long
    /// a request the full hashing pool refuses (login, registration,
    /// password change and reset: a 503 with `Retry-After`) is held before
    /// it is answered. A flood client that waits for each answer (every
    /// HTTP/1.1 client, one request at a time per connection) then sends at
    /// most one such request a connection per delay, instead of turning
    /// cheap refusals into a loop that takes the CPU every other request
    /// needs. A held refusal holds no place in the pool; `0s` answers at
    /// once.
    pub hash_busy_delay: Duration,
    /// `PALISADE_SHUTDOWN_TIMEOUT` (default 30 s): how long in-flight
    /// requests get to finish after the listener closed.
    pub shutdown_timeout: Duration,
    /// `PALISADE_REFRESH_GRACE` (default 10 s): how long a just-rotated
    /// refresh token still returns the same pair (a client's retry); past
    /// it, presenting it again is reuse and ends the family. `0s` disables
    /// the grace.
    pub refresh_grace: Duration,
    /// `PALISADE_TOKEN_LEEWAY` (default 30 s, at most 5 min): the clock skew
    /// tolerated between instances when tokens are checked (and, for
    /// revocation, how far back a token's `iat` is moved: a token issued
    /// within it after a logout-everywhere or a new Redis epoch counts as
    /// revoked).
    pub token_leeway: Duration,
    /// `PALISADE_REVOCATION_SWEEP` (default 15 s, 1 s to 10 min): how often
    /// every revocation epoch sentinel is checked and renewed (Redis only).
    /// It bounds how long after Redis loses its data the loss is noticed
    /// everywhere: tokens issued before that are refused, tokens issued
    /// after it work at once.
    pub revocation_sweep: Duration,
    /// `PALISADE_REQUEST_TIMEOUT` (default 30 s): the longest a handler may
    /// run (503 `unavailable` past it).
    pub request_timeout: Duration,
    /// `PALISADE_MAX_UPLOAD_BYTES` (default 10 MiB, at most the per-user
    /// quota [`crate::uploads::USER_QUOTA_BYTES`]): the largest file
    /// `POST /uploads` accepts.
    pub max_upload_bytes: u64,
    /// `PALISADE_METRICS_TOKEN` (or `_FILE`): when set, `/metrics` requires
    /// `Authorization: Bearer <token>` (compared in constant time), in every
    /// profile. In production it must be a strong secret.
    pub metrics_token: Option<SecretString>,
    /// `PALISADE_METRICS_ADDR`: when set, `/metrics` is served only on this
    /// separate listener (an internal port) and not on `PALISADE_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
}

impl Config {
    /// Reads and checks the configuration from `env`.
    ///
    /// # Errors
    ///
    /// Every problem at once: unparsable values, `PALISADE_BIND` (renamed),
    /// an admin username without a password (or the reverse), and for the
    /// profile the start-up checks (in production: missing, weak or shared
    /// secrets, wildcard CORS, no trusted hosts, debug on).
    pub fn from_env(env: impl EnvSource) -> Result<Config, ConfigErrors> {
        let mut s = EnvSettings::new(env, "PALISADE_");
        let profile = s.profile();
        let development = profile == Profile::Development;

        if s.env().var("PALISADE_BIND").is_some() {
            // The old name is refused rather than aliased: a deployment
            // that still sets it would otherwise listen where it did not
            // ask to, or silently on the default.
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_BIND",
                "renamed PALISADE_ADDR; set PALISADE_ADDR instead",
            ));
        }
        let addr_text: String = s.get("ADDR", DEFAULT_ADDR.to_owned());
        let addr = addr_text.parse().unwrap_or_else(|_| {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_ADDR",
                "expected an IP address and port, e.g. 127.0.0.1:8080 or [::1]:8080",
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let debug = s.get("DEBUG", false);
        let redis_url = s.secret("REDIS_URL").filter(|url| !url.is_empty());
        let redis_key_prefix: Option<String> = s.optional("REDIS_KEY_PREFIX");
        let redis_ca_file: Option<std::path::PathBuf> = s
            .optional::<String>("REDIS_CA_FILE")
            .filter(|path| !path.is_empty())
            .map(std::path::PathBuf::from);
        if let Some(prefix) = &redis_key_prefix
            && let Err(problem) = palisade_errors::check_key_prefix(prefix)
        {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_REDIS_KEY_PREFIX",
                format!("the key prefix {problem}"),
            ));
        }

        let access = s.secret("JWT_ACCESS_SECRET");
        let refresh = s.secret("JWT_REFRESH_SECRET");
        let pepper = s.secret("API_KEY_PEPPER");

        let cors_origins: Vec<String> = s.get("CORS_ORIGINS", Vec::new());
        let trusted_hosts: Vec<String> = s.get("TRUSTED_HOSTS", Vec::new());
        let proxy_texts: Vec<String> = s.get("TRUSTED_PROXIES", Vec::new());
        let mut trusted_proxies = Vec::new();
        for text in &proxy_texts {
            match IpNet::parse(text) {
                Ok(net) => trusted_proxies.push(net),
                Err(_) if text.trim().ends_with("/0") => s.push_error(ConfigError::new(
                    ConfigErrorKind::Invalid,
                    "PALISADE_TRUSTED_PROXIES",
                    "a /0 would trust every address, and let any client choose the address \
                     its limits count against: list the proxies' own addresses or networks",
                )),
                Err(_) => s.push_error(ConfigError::new(
                    ConfigErrorKind::Invalid,
                    "PALISADE_TRUSTED_PROXIES",
                    "expected a comma list of IP addresses or CIDRs (10.0.0.0/8, fd00::/8)",
                )),
            }
        }
        // What the router would refuse at start (a `null` or wildcard-subdomain
        // origin, a `*` host), listed with every other problem instead.
        // `*` is no origin: production's start-up check refuses it by name;
        // elsewhere it is refused here, as the router would.
        let listed: Vec<String> = cors_origins
            .iter()
            .filter(|origin| origin.trim() != "*")
            .cloned()
            .collect();
        if listed.len() != cors_origins.len() && profile != Profile::Production {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_CORS_ORIGINS",
                "`*` is not an origin: list the origins allowed to read the answers",
            ));
        }
        if !listed.is_empty()
            && let Err(reason) = crate::cors_policy(&listed)
        {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_CORS_ORIGINS",
                reason,
            ));
        }
        if !trusted_hosts.is_empty()
            && let Err(reason) =
                crate::trusted_host_list(&trusted_hosts, profile == Profile::Production)
        {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_TRUSTED_HOSTS",
                reason,
            ));
        }
        let max_body_bytes = s.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_MAX_BODY_BYTES",
                "must be at least 1",
            ));
        }
        let rate_limit = quotas(&mut s, "RATE_LIMIT", DEFAULT_RATE_LIMIT);
        let login_rate_limit = quotas(&mut s, "LOGIN_RATE_LIMIT", LOGIN_RATE_LIMIT);
        let subject_rate_limit = quotas(&mut s, "SUBJECT_RATE_LIMIT", SUBJECT_RATE_LIMIT);
        let key_rate_limit = quotas(&mut s, "KEY_RATE_LIMIT", KEY_RATE_LIMIT);

        let admin_username: Option<String> = s.optional("ADMIN_USERNAME");
        let admin_password = s.secret("ADMIN_PASSWORD");
        let admin = match (admin_username, admin_password) {
            (Some(name), Some(password)) => Some((name, password)),
            (None, None) => None,
            (Some(_), None) => {
                s.push_error(ConfigError::new(
                    ConfigErrorKind::Missing,
                    "PALISADE_ADMIN_PASSWORD",
                    "PALISADE_ADMIN_USERNAME is set: set the admin's password too",
                ));
                None
            }
            (None, Some(_)) => {
                s.push_error(ConfigError::new(
                    ConfigErrorKind::Missing,
                    "PALISADE_ADMIN_USERNAME",
                    "PALISADE_ADMIN_PASSWORD is set: set the admin's username too",
                ));
                None
            }
        };
        let pre_stop_delay = s.get("PRE_STOP_DELAY", Duration::from_secs(2));
        let hash_busy_delay = s.get("HASH_BUSY_DELAY", DEFAULT_HASH_BUSY_DELAY);
        if hash_busy_delay > MAX_HASH_BUSY_DELAY {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_HASH_BUSY_DELAY",
                "at most 5s",
            ));
        }
        let shutdown_timeout = s.get("SHUTDOWN_TIMEOUT", Duration::from_secs(30));
        let request_timeout = s.get("REQUEST_TIMEOUT", Duration::from_secs(30));
        if hash_busy_delay >= request_timeout {
            // A held refusal would become the timeout's answer: no
            // `Retry-After`, and a warning line per refusal (a log flood).
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_HASH_BUSY_DELAY",
                "shorter than PALISADE_REQUEST_TIMEOUT",
            ));
        }
        let revocation_sweep = s.get("REVOCATION_SWEEP", Duration::from_secs(15));
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&revocation_sweep) {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_REVOCATION_SWEEP",
                "between 1s and 10min",
            ));
        }
        let refresh_grace = s.get("REFRESH_GRACE", Duration::from_secs(10));
        let token_leeway = s.get("TOKEN_LEEWAY", Duration::from_secs(30));
        let redis_timeout = s.get("REDIS_TIMEOUT", DEFAULT_REDIS_TIMEOUT);
        if redis_timeout < Duration::from_millis(1) || redis_timeout > MAX_REDIS_TIMEOUT {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_REDIS_TIMEOUT",
                "must be between 1ms and 5s",
            ));
        }
        if token_leeway > Duration::from_secs(300) {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_TOKEN_LEEWAY",
                "at most 300s: expired tokens would be accepted that long",
            ));
        }
        if refresh_grace > Duration::from_secs(60) {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_REFRESH_GRACE",
                "at most 60s: a longer grace lets a stolen, already rotated token be replayed",
            ));
        }

        let max_upload_bytes = s.get("MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES);
        if max_upload_bytes == 0 || max_upload_bytes > crate::uploads::USER_QUOTA_BYTES {
            s.push_error(ConfigError::new(
                ConfigErrorKind::Invalid,
                "PALISADE_MAX_UPLOAD_BYTES",
                format!(
                    "must be between 1 and {} (the per-user upload quota)",
                    crate::uploads::USER_QUOTA_BYTES
                ),
            ));
        }
        let metrics_token = s.secret("METRICS_TOKEN").filter(|token| !token.is_empty());
        let metrics_addr_text: Option<String> = s.optional("METRICS_ADDR");
        let metrics_addr = metrics_addr_text.and_then(|text| match text.parse::<SocketAddr>() {
            Ok(metrics_addr) if metrics_addr == addr => {
                s.push_error(ConfigError::new(
                    ConfigErrorKind::Invalid,
                    "PALISADE_METRICS_ADDR",
                    "must differ from PALISADE_ADDR (metrics get their own listener)",
                ));
                None
            }
            Ok(metrics_addr) => Some(metrics_addr),
            Err(_) => {
                s.push_error(ConfigError::new(
                    ConfigErrorKind::Invalid,
                    "PALISADE_METRICS_ADDR",
                    "expected an IP address and port, e.g. 127.0.0.1:9090",
                ));
                None
            }
        });

        let mut errors = s.finish(()).err().unwrap_or_default();

        let rules = SecretRules::min_len(MIN_SECRET_BYTES);
        let startup = StartupChecks::new()
            .with(checks::debug_off("PALISADE_DEBUG", debug))
            .with(checks::no_wildcard_cors(
                "PALISADE_CORS_ORIGINS",
                &cors_origins,
                false,
            ))
            .with(checks::trusted_hosts(
                "PALISADE_TRUSTED_HOSTS",
                true,
                &trusted_hosts,
            ))
            .with(checks::secret_strength(
                "PALISADE_JWT_ACCESS_SECRET",
                access.as_ref(),
                rules,
            ))
            .with(checks::secret_strength(
                "PALISADE_JWT_REFRESH_SECRET",
                refresh.as_ref(),
                rules,
            ))
            .with(checks::secret_strength(
                "PALISADE_API_KEY_PEPPER",
                pepper.as_ref(),
                rules,
            ))
            .with(checks::distinct_secrets(
                ("PALISADE_JWT_ACCESS_SECRET", access.as_ref()),
                ("PALISADE_JWT_REFRESH_SECRET", refresh.as_ref()),
            ))
            // The pepper keys API keys at rest and the login throttle's id
            // hashes: whoever holds a token key must not hold it too.
            .with(checks::distinct_secrets(
                ("PALISADE_JWT_ACCESS_SECRET", access.as_ref()),
                ("PALISADE_API_KEY_PEPPER", pepper.as_ref()),
            ))
            .with(checks::distinct_secrets(
                ("PALISADE_JWT_REFRESH_SECRET", refresh.as_ref()),
                ("PALISADE_API_KEY_PEPPER", pepper.as_ref()),
            ));
        let startup = startup.with(checks::redis_url("PALISADE_REDIS_URL", redis_url.as_ref()));
        // The metrics token is optional; when given it must be as strong as
        // any other secret (it guards who sees the security counters).
        let startup = match &metrics_token {
            Some(token) => startup.with(checks::secret_strength(
                "PALISADE_METRICS_TOKEN",
                Some(token),
                rules,
            )),
            None if metrics_addr.is_none() => startup.with(|findings: &mut checks::Findings| {
                findings.warning(
                    "PALISADE_METRICS_TOKEN",
                    "metrics_disabled",
                    "neither PALISADE_METRICS_TOKEN nor PALISADE_METRICS_ADDR is set: \
                         /metrics answers 404 outside development",
                );
            }),
            None => startup,
        };
        if let Err(refused) = startup.run(profile) {
            errors.extend(refused);
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        // Only development gets here without every secret (the checks
        // refuse a missing one in staging and production: a generated key
        // there would differ per instance and vanish on restart).
        let or_generated = |secret: Option<SecretString>, variable: &str| {
            secret.unwrap_or_else(|| {
                if development {
                    generate_dev_secret(variable)
                } else {
                    SecretString::from("")
                }
            })
        };
        Ok(Config {
            profile,
            addr,
            debug,
            redis_url,
            redis_key_prefix,
            redis_ca_file,
            redis_timeout,
            jwt_access_secret: or_generated(access, "PALISADE_JWT_ACCESS_SECRET"),
            jwt_refresh_secret: or_generated(refresh, "PALISADE_JWT_REFRESH_SECRET"),
            api_key_pepper: or_generated(pepper, "PALISADE_API_KEY_PEPPER"),
            cors_origins,
            trusted_hosts,
            trusted_proxies,
            max_body_bytes,
            rate_limit,
            login_rate_limit,
            subject_rate_limit,
            key_rate_limit,
            admin,
            pre_stop_delay,
            hash_busy_delay,
            shutdown_timeout,
            request_timeout,
            revocation_sweep,
            refresh_grace,
            token_leeway,
            max_upload_bytes,
            metrics_token,
            metrics_addr,
        })
    }

    /// How `/metrics` is exposed under this configuration.
    pub fn metrics_exposure(&self) -> MetricsExposure {
        match (self.metrics_addr, self.profile) {
            (Some(addr), _) => MetricsExposure::Separate(addr),
            (None, _) if self.metrics_token.is_some() => MetricsExposure::Main,
            (None, Profile::Development) => MetricsExposure::Main,
            (None, _) => MetricsExposure::Hidden,
        }
    }
}

/// Where `/metrics` is served ([`Config::metrics_exposure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsExposure {
    /// On the main listener: open in development without a token, else
    /// behind `PALISADE_METRICS_TOKEN`.
    Main,
    /// Only on the `PALISADE_METRICS_ADDR` listener (the token, when set,
    /// is required there too).
    Separate(SocketAddr),
    /// Nowhere: staging or production with neither variable set (404).
    Hidden,
}

/// `PALISADE_<name>`: comma-separated quotas (`10/second,100/minute`),
/// `default` when unset; a value that does not parse is an error naming the
/// variable.
fn quotas<E: EnvSource>(s: &mut EnvSettings<E>, name: &str, default: &str) -> Policy {
    let quotas: Vec<String> = s.get(name, default.split(',').map(str::to_owned).collect());
    Policy::parse(quotas.iter().map(String::as_str)).unwrap_or_else(|error| {
        s.push_error(ConfigError::new(
            ConfigErrorKind::Invalid,
            format!("PALISADE_{name}"),
            format!("expected quotas such as 10/second,100/minute: {error}"),
        ));
        default_policy()
    })
}

/// [`DEFAULT_RATE_LIMIT`], parsed (it is a constant that parses; the
/// fallback of the fallback is one request a second).
fn default_policy() -> Policy {
    Policy::parse(DEFAULT_RATE_LIMIT.split(','))
        .or_else(|_| Policy::parse(["1/second"]))
        .unwrap_or_else(|_| unreachable_policy())
}

#[allow(clippy::panic)] // both constants above parse; covered by a unit test
fn unreachable_policy() -> Policy {
    panic!("the built-in rate-limit quotas parse")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use palisade_secrets::MapEnv;

    use super::*;

    const ACCESS: &str = "k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
    const REFRESH: &str = "Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa";
    const PEPPER: &str = "Jm3Vd8Qs1Hx6Lt0Rw5Nb9Pk2Fg7Cz4Ye";

    fn production() -> MapEnv {
        MapEnv::from_iter([
            ("PALISADE_ENV", "production"),
            ("PALISADE_JWT_ACCESS_SECRET", ACCESS),
            ("PALISADE_JWT_REFRESH_SECRET", REFRESH),
            ("PALISADE_API_KEY_PEPPER", PEPPER),
            ("PALISADE_CORS_ORIGINS", "https://app.example.com"),
            ("PALISADE_TRUSTED_HOSTS", "api.example.com"),
        ])
    }

    fn refused(env: MapEnv) -> ConfigErrors {
        Config::from_env(env).expect_err("the configuration must be refused")
    }

    fn variables(errors: &ConfigErrors) -> Vec<&str> {
        errors.errors().iter().map(ConfigError::variable).collect()
    }

    #[test]
    fn built_in_constants_parse() {
        assert_eq!(default_policy().quotas().len(), 2);
        Policy::parse([LOGIN_RATE_LIMIT]).unwrap();
        Policy::parse([SUBJECT_RATE_LIMIT]).unwrap();
        Policy::parse([KEY_RATE_LIMIT]).unwrap();
    }

    #[test]
    fn development_starts_with_nothing_set_and_generates_distinct_secrets() {
        let config = Config::from_env(MapEnv::new()).unwrap();
        assert_eq!(config.profile, Profile::Development);
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        let access = config.jwt_access_secret.expose_secret();
        let refresh = config.jwt_refresh_secret.expose_secret();
        assert!(access.starts_with(palisade_secrets::DEV_SECRET_PREFIX));
        assert_ne!(access, refresh);
        assert!(config.redis_url.is_none() && config.admin.is_none());
    }

    #[test]
    fn production_with_every_setting_right_starts() {
        let config = Config::from_env(production()).unwrap();
        assert_eq!(config.profile, Profile::Production);
        assert_eq!(config.jwt_access_secret.expose_secret(), ACCESS);
    }

    #[test]
    fn production_refuses_missing_secrets_naming_each_variable() {
        // Attack: a deployment that forgot its keys must not run on keys
        // generated per instance (or on empty ones).
        let mut env = MapEnv::from_iter([
            ("PALISADE_ENV", "production"),
            ("PALISADE_CORS_ORIGINS", "https://app.example.com"),
            ("PALISADE_TRUSTED_HOSTS", "api.example.com"),
        ]);
        env.set("PALISADE_DEBUG", "false");
        let errors = refused(env);
        let named = variables(&errors);
        for variable in [
            "PALISADE_JWT_ACCESS_SECRET",
            "PALISADE_JWT_REFRESH_SECRET",
            "PALISADE_API_KEY_PEPPER",
        ] {
            assert_eq!(
                named.iter().filter(|name| **name == variable).count(),
                1,
                "{named:?}"
            );
        }
    }

    #[test]
    fn production_refuses_weak_and_development_secrets() {
        // Attack: a guessable HS256 key lets anyone forge access tokens.
        let errors = refused(
            production()
                .with("PALISADE_JWT_ACCESS_SECRET", "secret")
                .with(
                    "PALISADE_API_KEY_PEPPER",
                    "palisade-dev-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                ),
        );
        assert_eq!(
            variables(&errors),
            ["PALISADE_JWT_ACCESS_SECRET", "PALISADE_API_KEY_PEPPER"]
        );
        assert!(
            errors
                .errors()
                .iter()
                .all(|e| e.kind() == ConfigErrorKind::WeakSecret)
        );
        assert!(!errors.to_string().contains("\"secret\""));
    }

    #[test]
    fn production_refuses_one_secret_for_access_and_refresh_tokens() {
        // Attack: with one key a refresh token verifies where an access
        // token is expected (and the reverse) if any check slips.
        let errors = refused(production().with("PALISADE_JWT_REFRESH_SECRET", ACCESS));
        assert_eq!(variables(&errors), ["PALISADE_JWT_REFRESH_SECRET"]);
    }

    #[test]
    fn production_refuses_the_pepper_shared_with_a_token_key() {
        // Attack: whoever leaks or holds a token key also holds the key of
        // every API key's HMAC at rest (and of the throttle's id hashes).
        for token_key in [ACCESS, REFRESH] {
            let errors = refused(production().with("PALISADE_API_KEY_PEPPER", token_key));
            assert_eq!(variables(&errors), ["PALISADE_API_KEY_PEPPER"]);
        }
    }

    #[test]
    fn origins_and_hosts_the_router_refuses_are_listed_with_the_rest() {
        // They used to stop the start later, alone, exit status 1, while the
        // other problems were never shown.
        let errors = refused(
            production()
                .with("PALISADE_CORS_ORIGINS", "null")
                .with("PALISADE_TRUSTED_HOSTS", "*")
                .with("PALISADE_TRUSTED_PROXIES", "0.0.0.0/0")
                .with("PALISADE_API_KEY_PEPPER", "short"),
        );
        let mut named = variables(&errors);
        named.sort_unstable();
        assert_eq!(
            named,
            [
                "PALISADE_API_KEY_PEPPER",
                "PALISADE_CORS_ORIGINS",
                "PALISADE_TRUSTED_HOSTS",
                "PALISADE_TRUSTED_PROXIES"
            ]
        );
        assert!(
            errors.to_string().contains("would trust every address"),
            "{errors}"
        );
    }

    #[test]
    fn production_refuses_wildcard_cors() {
        // Attack: any site reads the API's answers in its users' browsers.
        let errors = refused(production().with("PALISADE_CORS_ORIGINS", "https://a.example, *"));
        assert_eq!(variables(&errors), ["PALISADE_CORS_ORIGINS"]);
    }

    #[test]
    fn production_refuses_an_empty_trusted_host_list() {
        // Attack: Host-header injection (password-reset links, cache poisoning).
        let errors = refused(production().with("PALISADE_TRUSTED_HOSTS", " , "));
        assert_eq!(variables(&errors), ["PALISADE_TRUSTED_HOSTS"]);
    }

    #[test]
    fn production_refuses_debug() {
        // Attack: debug answers leak internals to whoever asks.
        let errors = refused(production().with("PALISADE_DEBUG", "true"));
        assert_eq!(variables(&errors), ["PALISADE_DEBUG"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let env = MapEnv::from_iter([
            ("PALISADE_ENV", "production"),
            ("PALISADE_DEBUG", "yes"),
            ("PALISADE_CORS_ORIGINS", "*"),
            ("PALISADE_JWT_ACCESS_SECRET", ACCESS),
            ("PALISADE_JWT_REFRESH_SECRET", ACCESS),
            ("PALISADE_RATE_LIMIT", "lots"),
        ]);
        let errors = refused(env);
        let named = variables(&errors);
        for variable in [
            "PALISADE_DEBUG",
            "PALISADE_CORS_ORIGINS",
            "PALISADE_TRUSTED_HOSTS",
            "PALISADE_JWT_REFRESH_SECRET",
            "PALISADE_API_KEY_PEPPER",
            "PALISADE_RATE_LIMIT",
        ] {
            assert!(
                named.contains(&variable),
                "{variable} missing from {named:?}"
            );
        }
        assert!(!errors.to_string().contains(ACCESS));
    }

    #[test]
    fn staging_logs_the_same_problems_but_starts() {
        let env = production()
            .with("PALISADE_ENV", "staging")
            .with("PALISADE_DEBUG", "true");
        let config = Config::from_env(env).unwrap();
        assert_eq!(config.profile, Profile::Staging);
    }

    #[test]
    fn a_profile_typo_is_refused_never_development() {
        let errors = refused(MapEnv::from_iter([("PALISADE_ENV", "prodution")]));
        assert!(variables(&errors).contains(&"PALISADE_ENV"));
    }

    #[test]
    fn the_old_bind_variable_is_refused_with_its_new_name() {
        let errors = refused(MapEnv::from_iter([("PALISADE_BIND", "127.0.0.1:9000")]));
        assert_eq!(variables(&errors), ["PALISADE_BIND"]);
        assert!(errors.to_string().contains("PALISADE_ADDR"));
    }

    #[test]
    fn addresses_limits_proxies_and_durations_parse() {
        let config = Config::from_env(MapEnv::from_iter([
            ("PALISADE_ADDR", "[::1]:9443"),
            ("PALISADE_RATE_LIMIT", "10/second, 100/minute"),
            ("PALISADE_TRUSTED_PROXIES", "10.0.0.0/8,fd00::/8"),
            ("PALISADE_MAX_BODY_BYTES", "2048"),
            ("PALISADE_PRE_STOP_DELAY", "250ms"),
            ("PALISADE_REDIS_TIMEOUT", "400ms"),
        ]))
        .unwrap();
        assert_eq!(config.redis_timeout, Duration::from_millis(400));
        assert_eq!(config.addr.to_string(), "[::1]:9443");
        assert_eq!(config.rate_limit.quotas().len(), 2);
        assert_eq!(config.trusted_proxies.len(), 2);
        assert_eq!(config.max_body_bytes, 2048);
        assert_eq!(config.pre_stop_delay, Duration::from_millis(250));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let errors = refused(MapEnv::from_iter([
            ("PALISADE_ADDR", "localhost"),
            ("PALISADE_RATE_LIMIT", "10/fortnight"),
            ("PALISADE_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("PALISADE_MAX_BODY_BYTES", "0"),
            ("PALISADE_REDIS_KEY_PREFIX", "a{b}"),
            ("PALISADE_REDIS_TIMEOUT", "10s"),
        ]));
        assert_eq!(
            variables(&errors),
            [
                "PALISADE_ADDR",
                "PALISADE_REDIS_KEY_PREFIX",
                "PALISADE_TRUSTED_PROXIES",
                "PALISADE_MAX_BODY_BYTES",
                "PALISADE_RATE_LIMIT",
                "PALISADE_REDIS_TIMEOUT",
            ]
        );
    }

    #[test]
    fn production_refuses_a_weak_metrics_token() {
        // Attack: a guessable token opens the security counters (who is
        // being attacked, which defences fire) to anyone.
        let errors = refused(production().with("PALISADE_METRICS_TOKEN", "metrics"));
        assert_eq!(variables(&errors), ["PALISADE_METRICS_TOKEN"]);
        assert!(!errors.to_string().contains("\"metrics\""));
    }

    #[test]
    fn metrics_are_open_in_development_and_guarded_or_hidden_elsewhere() {
        let dev = Config::from_env(MapEnv::new()).unwrap();
        assert_eq!(dev.metrics_exposure(), MetricsExposure::Main);
        assert_eq!(
            Config::from_env(production()).unwrap().metrics_exposure(),
            MetricsExposure::Hidden
        );
        let token = "Qw7Er2Ty9Ui4Op1As6Df3Gh8Jk5Lz0Xc";
        let guarded = Config::from_env(production().with("PALISADE_METRICS_TOKEN", token)).unwrap();
        assert_eq!(guarded.metrics_exposure(), MetricsExposure::Main);
        assert_eq!(guarded.metrics_token.unwrap().expose_secret(), token);
        let separate =
            Config::from_env(production().with("PALISADE_METRICS_ADDR", "127.0.0.1:9090")).unwrap();
        assert_eq!(
            separate.metrics_exposure(),
            MetricsExposure::Separate("127.0.0.1:9090".parse().unwrap())
        );
    }

    #[test]
    fn upload_size_rate_limits_and_metrics_address_are_checked() {
        let config = Config::from_env(MapEnv::from_iter([
            ("PALISADE_MAX_UPLOAD_BYTES", "1048576"),
            ("PALISADE_LOGIN_RATE_LIMIT", "10/minute"),
            ("PALISADE_SUBJECT_RATE_LIMIT", "100/second,1000/minute"),
        ]))
        .unwrap();
        assert_eq!(config.max_upload_bytes, 1_048_576);
        assert_eq!(config.login_rate_limit.quotas().len(), 1);
        assert_eq!(config.subject_rate_limit.quotas().len(), 2);
        assert_eq!(
            config.key_rate_limit.quotas(),
            Policy::parse([KEY_RATE_LIMIT]).unwrap().quotas()
        );
        assert_eq!(
            Config::from_env(MapEnv::new()).unwrap().max_upload_bytes,
            DEFAULT_MAX_UPLOAD_BYTES
        );
        let errors = refused(MapEnv::from_iter([
            ("PALISADE_MAX_UPLOAD_BYTES", "0"),
            ("PALISADE_LOGIN_RATE_LIMIT", "lots"),
            ("PALISADE_SUBJECT_RATE_LIMIT", "5/fortnight"),
            ("PALISADE_KEY_RATE_LIMIT", "-1/second"),
            ("PALISADE_METRICS_ADDR", "127.0.0.1:8080"),
        ]));
        let named = variables(&errors);
        for variable in [
            "PALISADE_MAX_UPLOAD_BYTES",
            "PALISADE_LOGIN_RATE_LIMIT",
            "PALISADE_SUBJECT_RATE_LIMIT",
            "PALISADE_KEY_RATE_LIMIT",
            "PALISADE_METRICS_ADDR",
        ] {
            assert!(
                named.contains(&variable),
                "{variable} missing from {named:?}"
            );
        }
        // Over the per-user quota: no file could ever be stored.
        let too_big = (crate::uploads::USER_QUOTA_BYTES + 1).to_string();
        let errors = refused(MapEnv::from_iter([(
            "PALISADE_MAX_UPLOAD_BYTES",
            too_big.as_str(),
        )]));
        assert_eq!(variables(&errors), ["PALISADE_MAX_UPLOAD_BYTES"]);
        let errors = refused(MapEnv::from_iter([("PALISADE_METRICS_ADDR", "metrics")]));
        assert_eq!(variables(&errors), ["PALISADE_METRICS_ADDR"]);
    }

    #[test]
    fn admin_needs_both_username_and_password() {
        let errors = refused(MapEnv::from_iter([("PALISADE_ADMIN_USERNAME", "root")]));
        assert_eq!(variables(&errors), ["PALISADE_ADMIN_PASSWORD"]);
        let errors = refused(MapEnv::from_iter([("PALISADE_ADMIN_PASSWORD", "x")]));
        assert_eq!(variables(&errors), ["PALISADE_ADMIN_USERNAME"]);
        let config = Config::from_env(MapEnv::from_iter([
            ("PALISADE_ADMIN_USERNAME", "root"),
            ("PALISADE_ADMIN_PASSWORD", "tangerine orbit quietly 1987"),
        ]))
        .unwrap();
        assert_eq!(config.admin.unwrap().0, "root");
    }

    #[test]
    fn secrets_are_read_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access");
        std::fs::write(&path, format!("{ACCESS}\n")).unwrap();
        let mut env = production();
        env = env.with("PALISADE_JWT_ACCESS_SECRET_FILE", path.to_str().unwrap());
        let mut without = MapEnv::new();
        for name in env.names() {
            if name != "PALISADE_JWT_ACCESS_SECRET" {
                without.set(name, env.var(name).unwrap());
            }
        }
        let config = Config::from_env(without).unwrap();
        assert_eq!(config.jwt_access_secret.expose_secret(), ACCESS);
    }
}
