//! The configuration side of the policy: [`HeaderPolicy`] with its presets
//! and setters, and [`HeaderPolicyConfig`], its configuration-file form.

use serde::Deserialize;

#[cfg(doc)]
use super::SecurityHeaders;
use super::{
    CrossOriginEmbedderPolicy, CrossOriginOpenerPolicy, CrossOriginResourcePolicy, FrameOptions,
    Hsts, PermissionsPolicy, ReferrerPolicy, XssProtection,
};
use crate::error::ConfigError;
use crate::{Csp, Source};

/// What the `Server` header says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum ServerHeader {
    /// Removed (with `X-Powered-By` and friends).
    #[default]
    Remove,
    /// Replaced by this value.
    Set(String),
}

/// The response-header policy: what to send, in a form that is cheap to
/// configure and to check. [`build`](HeaderPolicy::build) validates it and
/// precomputes every header value into [`SecurityHeaders`].
///
/// Start from a preset and adjust:
///
/// ```
/// use palisade_headers::{HeaderPolicy, ReferrerPolicy};
///
/// let headers = HeaderPolicy::api()
///     .referrer_policy(ReferrerPolicy::StrictOrigin)
///     .build()
///     .unwrap();
/// # let _ = headers;
/// ```
///
/// It also deserializes (see [`HeaderPolicyConfig`]), so the same checks run
/// on a configuration file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "HeaderPolicyConfig")]
pub struct HeaderPolicy {
    // `pub(super)`: `HeaderPolicy::build` (in the parent) reads them; outside
    // `policy` they change only through the setters.
    pub(super) https: bool,
    pub(super) hsts: Hsts,
    pub(super) csp: Option<Csp>,
    pub(super) csp_report_only: Option<Csp>,
    pub(super) nosniff: bool,
    pub(super) frame_options: Option<FrameOptions>,
    pub(super) referrer_policy: ReferrerPolicy,
    pub(super) permissions_policy: Option<PermissionsPolicy>,
    pub(super) coop: Option<CrossOriginOpenerPolicy>,
    pub(super) corp: Option<CrossOriginResourcePolicy>,
    pub(super) coep: Option<CrossOriginEmbedderPolicy>,
    pub(super) origin_agent_cluster: bool,
    pub(super) xss_protection: XssProtection,
    pub(super) server: ServerHeader,
    pub(super) no_store_if_absent: bool,
    pub(super) override_existing: bool,
}

impl Default for HeaderPolicy {
    /// [`HeaderPolicy::api`].
    fn default() -> HeaderPolicy {
        HeaderPolicy::api()
    }
}

impl HeaderPolicy {
    /// For JSON APIs: `Content-Security-Policy: default-src 'none';
    /// frame-ancestors 'none'` (a JSON response loads nothing and is never
    /// framed), `Cache-Control: no-store` on responses without one (API
    /// responses carry personal data that shared caches must not keep),
    /// `Referrer-Policy: no-referrer`, HSTS, and every other header at its
    /// strict default.
    pub fn api() -> HeaderPolicy {
        // The CSP is built from constants; it cannot fail the checks.
        let csp = Csp::builder()
            .default_src([Source::NONE])
            .frame_ancestors([Source::NONE])
            .build()
            .ok();
        HeaderPolicy {
            https: true,
            hsts: Hsts::default(),
            csp,
            csp_report_only: None,
            nosniff: true,
            frame_options: Some(FrameOptions::Deny),
            referrer_policy: ReferrerPolicy::NoReferrer,
            permissions_policy: Some(PermissionsPolicy::restrictive()),
            coop: Some(CrossOriginOpenerPolicy::SameOrigin),
            corp: Some(CrossOriginResourcePolicy::SameOrigin),
            coep: None,
            origin_agent_cluster: true,
            xss_protection: XssProtection::Disabled,
            server: ServerHeader::Remove,
            no_store_if_absent: true,
            override_existing: false,
        }
    }

    /// For HTML pages: a strict CSP without inline script (`default-src
    /// 'self'; script-src 'self'; object-src 'none'; base-uri 'self';
    /// frame-ancestors 'none'; form-action 'self'; upgrade-insecure-requests`),
    /// `Referrer-Policy: strict-origin-when-cross-origin`, and the caching
    /// left to the application. Turn on per-response nonces with
    /// [`csp`](Self::csp) and [`crate::csp::CspBuilder::nonces`] for pages
    /// that need inline script.
    pub fn html() -> HeaderPolicy {
        let csp = Csp::builder()
            .default_src([Source::SELF])
            .script_src([Source::SELF])
            .object_src([Source::NONE])
            .base_uri([Source::SELF])
            .frame_ancestors([Source::NONE])
            .form_action([Source::SELF])
            .upgrade_insecure_requests()
            .build()
            .ok();
        HeaderPolicy {
            csp,
            referrer_policy: ReferrerPolicy::StrictOriginWhenCrossOrigin,
            no_store_if_absent: false,
            ..HeaderPolicy::api()
        }
    }

    /// Whether the deployment is served over HTTPS (default `true`). When
    /// `false` (a development server on plain HTTP), HSTS and
    /// `upgrade-insecure-requests` are left out. It is per deployment, not
    /// per request: give a plain-HTTP listener of the same service (the
    /// port-80 redirect) a policy with `https(false)`, since browsers must
    /// ignore HSTS received over HTTP (RFC 6797 §8.1) and it only adds noise.
    #[must_use]
    pub fn https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// The HSTS settings (sent only when [`https`](Self::https) is on).
    #[must_use]
    pub fn hsts(mut self, hsts: Hsts) -> Self {
        self.hsts = hsts;
        self
    }

    /// The enforced Content-Security-Policy.
    #[must_use]
    pub fn csp(mut self, csp: Csp) -> Self {
        self.csp = Some(csp);
        self
    }

    /// A `Content-Security-Policy-Report-Only` policy: reported, not enforced
    /// (to trial a stricter policy next to the enforced one).
    #[must_use]
    pub fn csp_report_only(mut self, csp: Csp) -> Self {
        self.csp_report_only = Some(csp);
        self
    }

    /// `X-Frame-Options`, or `None` to leave it out (CSP `frame-ancestors`
    /// still applies).
    #[must_use]
    pub fn frame_options(mut self, frame_options: Option<FrameOptions>) -> Self {
        self.frame_options = frame_options;
        self
    }

    /// `Referrer-Policy`.
    #[must_use]
    pub fn referrer_policy(mut self, referrer_policy: ReferrerPolicy) -> Self {
        self.referrer_policy = referrer_policy;
        self
    }

    /// `Permissions-Policy`, or `None` to leave it out.
    #[must_use]
    pub fn permissions_policy(mut self, permissions_policy: Option<PermissionsPolicy>) -> Self {
        self.permissions_policy = permissions_policy;
        self
    }

    /// `Cross-Origin-Opener-Policy`, or `None` to leave it out.
    #[must_use]
    pub fn cross_origin_opener_policy(mut self, coop: Option<CrossOriginOpenerPolicy>) -> Self {
        self.coop = coop;
        self
    }

    /// `Cross-Origin-Resource-Policy`, or `None` to leave it out.
    #[must_use]
    pub fn cross_origin_resource_policy(mut self, corp: Option<CrossOriginResourcePolicy>) -> Self {
        self.corp = corp;
        self
    }

    /// `Cross-Origin-Embedder-Policy` (off by default).
    #[must_use]
    pub fn cross_origin_embedder_policy(mut self, coep: Option<CrossOriginEmbedderPolicy>) -> Self {
        self.coep = coep;
        self
    }

    /// `X-XSS-Protection`.
    #[must_use]
    pub fn xss_protection(mut self, xss_protection: XssProtection) -> Self {
        self.xss_protection = xss_protection;
        self
    }

    /// Sends `Server: value` instead of removing the header. Never put a
    /// product name and version here.
    #[must_use]
    pub fn server_header(mut self, value: impl Into<String>) -> Self {
        self.server = ServerHeader::Set(value.into());
        self
    }

    /// Adds `Cache-Control: no-store` to responses that have no
    /// `Cache-Control` (on in [`api`](Self::api)).
    #[must_use]
    pub fn no_store_if_absent(mut self, enabled: bool) -> Self {
        self.no_store_if_absent = enabled;
        self
    }

    /// Replaces security headers the handler set itself (off by default: a
    /// handler that sets its own CSP knows why).
    #[must_use]
    pub fn override_existing(mut self, enabled: bool) -> Self {
        self.override_existing = enabled;
        self
    }
}

/// Which preset a [`HeaderPolicyConfig`] starts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// [`HeaderPolicy::api`].
    #[default]
    Api,
    /// [`HeaderPolicy::html`].
    Html,
}

/// The configuration-file form of a [`HeaderPolicy`]: a preset plus the
/// settings that differ from it.
///
/// ```
/// # use palisade_headers::HeaderPolicy;
/// let policy: HeaderPolicy = serde_json::from_str(r#"{
///     "preset": "html",
///     "https": true,
///     "hsts": { "max_age_secs": 63072000, "include_subdomains": true, "preload": true },
///     "referrer_policy": "no-referrer",
///     "permissions_policy": { "fullscreen": "self" },
///     "csp": { "nonces": true, "directives": { "default-src": ["'self'"] } }
/// }"#).unwrap();
/// assert!(policy.build().is_ok());
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeaderPolicyConfig {
    /// The starting point.
    pub preset: Preset,
    /// See [`HeaderPolicy::https`].
    pub https: Option<bool>,
    /// See [`HeaderPolicy::hsts`].
    pub hsts: Option<Hsts>,
    /// See [`HeaderPolicy::csp`].
    pub csp: Option<Csp>,
    /// See [`HeaderPolicy::csp_report_only`].
    pub csp_report_only: Option<Csp>,
    /// See [`HeaderPolicy::frame_options`].
    pub frame_options: Option<FrameOptions>,
    /// See [`HeaderPolicy::referrer_policy`].
    pub referrer_policy: Option<ReferrerPolicy>,
    /// See [`HeaderPolicy::permissions_policy`].
    pub permissions_policy: Option<PermissionsPolicy>,
    /// See [`HeaderPolicy::cross_origin_opener_policy`].
    pub cross_origin_opener_policy: Option<CrossOriginOpenerPolicy>,
    /// See [`HeaderPolicy::cross_origin_resource_policy`].
    pub cross_origin_resource_policy: Option<CrossOriginResourcePolicy>,
    /// See [`HeaderPolicy::cross_origin_embedder_policy`].
    pub cross_origin_embedder_policy: Option<CrossOriginEmbedderPolicy>,
    /// See [`HeaderPolicy::xss_protection`].
    pub xss_protection: Option<XssProtection>,
    /// See [`HeaderPolicy::server_header`].
    pub server: Option<String>,
    /// See [`HeaderPolicy::no_store_if_absent`].
    pub no_store_if_absent: Option<bool>,
    /// See [`HeaderPolicy::override_existing`].
    pub override_existing: Option<bool>,
}

impl TryFrom<HeaderPolicyConfig> for HeaderPolicy {
    type Error = ConfigError;

    fn try_from(config: HeaderPolicyConfig) -> Result<HeaderPolicy, ConfigError> {
        let mut policy = match config.preset {
            Preset::Api => HeaderPolicy::api(),
            Preset::Html => HeaderPolicy::html(),
        };
        if let Some(https) = config.https {
            policy.https = https;
        }
        if let Some(hsts) = config.hsts {
            policy.hsts = hsts;
        }
        if let Some(csp) = config.csp {
            policy.csp = Some(csp);
        }
        policy.csp_report_only = config.csp_report_only.or(policy.csp_report_only);
        policy.frame_options = config.frame_options.or(policy.frame_options);
        policy.referrer_policy = config.referrer_policy.unwrap_or(policy.referrer_policy);
        policy.permissions_policy = config.permissions_policy.or(policy.permissions_policy);
        policy.coop = config.cross_origin_opener_policy.or(policy.coop);
        policy.corp = config.cross_origin_resource_policy.or(policy.corp);
        policy.coep = config.cross_origin_embedder_policy.or(policy.coep);
        policy.xss_protection = config.xss_protection.unwrap_or(policy.xss_protection);
        if let Some(server) = config.server {
            policy.server = ServerHeader::Set(server);
        }
        policy.no_store_if_absent = config
            .no_store_if_absent
            .unwrap_or(policy.no_store_if_absent);
        policy.override_existing = config.override_existing.unwrap_or(policy.override_existing);
        // Fail at start-up, not on the first response.
        policy.build()?;
        Ok(policy)
    }
}
