//! The actix-web twin of the reference service (`palisade-server`, axum):
//! `POST /auth/login`, `GET /me`, `GET /admin/users` and `GET /health/live`
//! with the same behaviour, built from the same configuration, state and
//! cores; only the adapter differs (palisade-actix instead of palisade-axum).
//!
//! ```sh
//! PALISADE_ADMIN_USERNAME=root PALISADE_ADMIN_PASSWORD='tangerine orbit quietly 1987' \
//!     cargo run -p palisade-actix --all-features --example server    # http://127.0.0.1:8080
//! curl -s -XPOST localhost:8080/auth/login -H 'content-type: application/json' \
//!     -d '{"username":"demo","password":"marmalade kettle thunder 42"}'
//! ```
//!
//! **Accounts** are seeded at start (there is no registration route here):
//! the admin of `PALISADE_ADMIN_USERNAME` + `PALISADE_ADMIN_PASSWORD`
//! (created, or made admin with that password, exactly as palisade-server
//! does), and in the development profile only a `demo` account (role
//! `user`) whose password is `PALISADE_DEMO_PASSWORD` (default
//! `marmalade kettle thunder 42`). Staging and production never get it.
//!
//! **Configuration** is palisade-server's `Config`: every `PALISADE_*`
//! variable of its README, with the same refusals before binding in
//! production. Its state (`palisade_server::state`) gives the stores (memory,
//! or all in Redis with `PALISADE_REDIS_URL`), the limiters (the global
//! `PALISADE_RATE_LIMIT` per client IP, 5/minute per IP on login, 600/minute
//! per verified subject), the login throttle, the hashing pool, the token
//! issuer and the bearer authenticator.
//!
//! **Behaviour**: a wrong password and an unknown user get the same 401 after
//! the same work (a dummy verification); the login limit and the throttle
//! answer 429 with `Retry-After`; `/me` needs a bearer token (401 with
//! `WWW-Authenticate` without one); `/admin/users` needs the admin role
//! (moderator and user: 403). Every error is the Palisade envelope with the
//! request id, security headers and CORS.
//!
//! **Order**, composed by palisade-actix's `Hardening` (outside in): request
//! id and envelope → security headers → CORS → panic catcher → trusted host
//! (`/health/*` exempt) → head and body limits → per-IP limit (`/health/*`
//! unmetered) → handler timeout → bearer authentication (optional mode) →
//! per-subject limit → routes (the login limit on its resource). Served with
//! the adapter's `serve::configure` and `BodyDeadline`. Logs are JSON lines
//! on stderr through palisade-secrets' redacting writer.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use palisade_actix::auth::{
    Admin, AuthMode, Authenticated, Authentication, Principal, RequireRole, SecretString,
};
use palisade_actix::ratelimit::{ClientIpResolver, KeyFn, RateLimit, by_extension, by_ip};
use palisade_actix::serve::{ServeConfig, configure};
use palisade_actix::validate::{EnforceLimits, RequestTimeout, TrustedHost, ValidJson};
use palisade_actix::{ApiError, Hardening};
use palisade_errors::{Error, ErrorKind};
use palisade_headers::{CorsPolicy, HeaderPolicy};
use palisade_secrets::{ProcessEnv, Profile, RedactingMakeWriter, Redactor};
use palisade_server::middleware::HEALTH_PREFIX;
use palisade_server::routes::{AdminUserView, Liveness, LoginBody, Me, log_in};
use palisade_server::state::{self, Stores};
use palisade_server::users::{Role, User};
use palisade_server::{Config, request_limits};
use palisade_validate::hosts::TrustedHosts;

/// The demo account's password when `PALISADE_DEMO_PASSWORD` is unset
/// (development only).
const DEMO_PASSWORD: &str = "marmalade kettle thunder 42";

type Shared<St> = web::Data<state::App<St>>;

fn api(error: impl Into<Error>) -> ApiError {
    ApiError(error.into())
}

/// The client address: the socket peer, or behind the configured proxies
/// what the resolver takes from the forwarding header (the same address the
/// per-IP limits key on).
fn client_ip(resolver: &ClientIpResolver, request: &HttpRequest) -> IpAddr {
    let peer = request
        .peer_addr()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |peer| peer.ip());
    let lines: Vec<&[u8]> = match resolver.header() {
        Some(header) => request
            .headers()
            .get_all(header.header_name().as_str())
            .map(|value| value.as_bytes())
            .collect(),
        None => Vec::new(),
    };
    resolver.resolve_lines(peer, lines).ip()
}

/// `POST /auth/login`.
async fn login<St: Stores>(
    app: Shared<St>,
    request: HttpRequest,
    ValidJson(body): ValidJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&app.resolver, &request);
    // The login flow is palisade-server's own, framework-free: only the
    // extraction and the answer are actix's here.
    let login = log_in(&app, &body, ip).await.map_err(ApiError)?;
    Ok(HttpResponse::Ok().json(login))
}

/// `GET /me`: a token whose account is gone is refused like a revoked one.
async fn me<St: Stores>(app: Shared<St>, who: Authenticated) -> Result<HttpResponse, ApiError> {
    let user = app
        .users
        .by_id(&who.claims.sub)
        .await
        .map_err(api)?
        .ok_or(ErrorKind::Unauthorized)?;
    Ok(HttpResponse::Ok().json(Me::from(&user)))
}

/// `GET /admin/users` (admin; moderator and user 403).
async fn list_users<St: Stores>(
    app: Shared<St>,
    _admin: RequireRole<Admin>,
) -> Result<HttpResponse, ApiError> {
    let users: Vec<AdminUserView> = app
        .users
        .list()
        .await
        .map_err(api)?
        .into_iter()
        .map(AdminUserView::from)
        .collect();
    Ok(HttpResponse::Ok().json(users))
}

/// `GET /health/live`.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// Keys by client IP, except `/health/*` (probes poll often; unmetered).
fn by_ip_except_health(resolver: ClientIpResolver) -> KeyFn {
    let by_ip = by_ip(resolver);
    Arc::new(move |request| {
        if request.path().starts_with(HEALTH_PREFIX) {
            Ok(None)
        } else {
            by_ip(request)
        }
    })
}

/// Development only: the `demo` account (role `user`).
async fn seed_demo<St: Stores>(app: &state::App<St>) -> Result<(), String> {
    let password = std::env::var("PALISADE_DEMO_PASSWORD").unwrap_or_else(|_| DEMO_PASSWORD.into());
    if app
        .users
        .by_username("demo")
        .await
        .map_err(|error| format!("demo account: {error}"))?
        .is_some()
    {
        return Ok(());
    }
    let hash = app
        .hasher
        .hash(SecretString::from(password))
        .await
        .map_err(|error| format!("demo account: cannot hash ({})", error.kind().as_str()))?;
    let user = User::new("demo".into(), hash.into_string(), Role::User)
        .map_err(|_| "demo account: no randomness".to_owned())?;
    app.users
        .create(&user)
        .await
        .map_err(|error| format!("demo account: {error}"))
}

async fn run<St: Stores>(config: Config, stores: state::StoreSet<St>) -> Result<(), String> {
    let unusable = |what: &str| format!("invalid configuration: {what} (see the log)");
    let app = state::build(&config, stores).map_err(|_| unusable("state"))?;
    state::ensure_admin(&app, &config).await?;
    if config.profile == Profile::Development {
        seed_demo(&app).await?;
    }
    let headers = HeaderPolicy::api()
        .build()
        .map_err(|error| format!("security headers: {error}"))?;
    let cors = CorsPolicy::builder()
        .allow_origins(config.cors_origins.iter())
        .allow_methods(["GET", "POST"])
        .allow_headers(["authorization", "content-type"])
        .expose_headers(["X-Request-Id", "Retry-After"])
        .build()
        .map_err(|error| format!("PALISADE_CORS_ORIGINS: {error}"))?;
    let mut hosts = TrustedHosts::builder();
    for host in &config.trusted_hosts {
        hosts = hosts
            .allow(host)
            .map_err(|error| format!("PALISADE_TRUSTED_HOSTS: {error}"))?;
    }
    let hosts = hosts
        .exempt_path("/health/*")
        .and_then(|hosts| hosts.build(config.profile == Profile::Production))
        .map_err(|error| format!("PALISADE_TRUSTED_HOSTS: {error}"))?;
    let trusted_host =
        TrustedHost::new(hosts).trusted_proxies(config.trusted_proxies.iter().copied());
    let limits = request_limits(&config).map_err(|_| unusable("PALISADE_MAX_BODY_BYTES"))?;
    let per_ip = RateLimit::new(
        Arc::clone(&app.limiters.global),
        by_ip_except_health(app.resolver.clone()),
    );
    let login_limit = RateLimit::new(Arc::clone(&app.limiters.login), by_ip(app.resolver.clone()));
    // A verified caller's own budget; an anonymous one is left to the per-IP limit.
    let per_subject = RateLimit::new(
        Arc::clone(&app.limiters.subject),
        by_extension(|who: &Principal| format!("sub:{}", who.subject))
            .or_key(Arc::new(|_| Ok(None))),
    );
    let serve_config = ServeConfig::builder()
        .shutdown_timeout(config.shutdown_timeout)
        .build()
        .map_err(|error| format!("serve limits: {error}"))?;
    let deadline = serve_config.body_deadline();
    let timeout = config.request_timeout;
    let data = web::Data::from(Arc::clone(&app));
    let server = HttpServer::new(move || {
        Hardening::new()
            .security_headers(headers.clone())
            .cors(cors.clone())
            .identity(trusted_host.clone())
            .identity(EnforceLimits::new(limits.clone()))
            .identity(per_ip.clone())
            .identity(RequestTimeout::new(timeout))
            .identity(Authentication::new(
                Arc::clone(&app.auth),
                AuthMode::Optional,
            ))
            .limit(per_subject.clone())
            .apply(
                App::new()
                    .wrap(deadline)
                    .app_data(data.clone())
                    .route("/health/live", web::get().to(live))
                    .service(
                        web::resource("/auth/login")
                            .wrap(login_limit.clone())
                            .route(web::post().to(login::<St>)),
                    )
                    .route("/me", web::get().to(me::<St>))
                    .route("/admin/users", web::get().to(list_users::<St>)),
            )
    });
    let server = configure(server, &serve_config)
        .bind(config.addr)
        .map_err(|error| format!("PALISADE_ADDR: cannot listen on {}: {error}", config.addr))?;
    tracing::info!(
        address = %config.addr,
        profile = config.profile.as_str(),
        redis = config.redis_url.is_some(),
        "palisade actix twin listening"
    );
    // actix-web stops on SIGINT/SIGTERM, draining in-flight requests for up
    // to the shutdown timeout.
    server
        .run()
        .await
        .map_err(|error| format!("serve: {error}"))
}

fn subscriber(redactor: Redactor) -> impl tracing::Subscriber + Send + Sync {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(RedactingMakeWriter::new(std::io::stderr, redactor))
        .finish()
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let loaded = tracing::subscriber::with_default(subscriber(Redactor::new()), || {
        Config::from_env(ProcessEnv)
    });
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("actix twin: refusing to start: {errors}");
            }
            return std::process::ExitCode::from(2);
        }
    };
    let mut redactor = Redactor::new();
    for secret in [
        Some(&config.jwt_access_secret),
        Some(&config.jwt_refresh_secret),
        Some(&config.api_key_pepper),
        config.admin.as_ref().map(|(_, password)| password),
        config.redis_url.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        redactor.register(secret);
    }
    if tracing::subscriber::set_global_default(subscriber(redactor)).is_err() {
        return std::process::ExitCode::FAILURE;
    }
    let url = config
        .redis_url
        .as_ref()
        .map(|url| url.expose_secret().to_owned());
    let result = match url {
        Some(url) => match state::redis_stores(&config, &url).await {
            Ok(stores) => run(config, stores).await,
            Err(reason) => Err(reason),
        },
        None => run(config, state::memory_stores()).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(reason) => {
            tracing::error!(reason = reason.as_str(), "actix twin failed");
            #[allow(clippy::print_stderr)] // the operator's one message
            {
                eprintln!("actix twin: {reason}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
