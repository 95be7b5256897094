//! The security-header policy and its precomputed form.

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY, REFERRER_POLICY,
    SERVER, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_DNS_PREFETCH_CONTROL,
    X_FRAME_OPTIONS, X_XSS_PROTECTION,
};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;

use crate::csp::CompiledCsp;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::{Csp, CspNonce, HeaderSink, Source};

const ONE_YEAR: u64 = 365 * 24 * 60 * 60;

static PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
static CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");
static CROSS_ORIGIN_RESOURCE_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-resource-policy");
static CROSS_ORIGIN_EMBEDDER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-embedder-policy");
static ORIGIN_AGENT_CLUSTER: HeaderName = HeaderName::from_static("origin-agent-cluster");
static X_PERMITTED_CROSS_DOMAIN_POLICIES: HeaderName =
    HeaderName::from_static("x-permitted-cross-domain-policies");
static REPORTING_ENDPOINTS: HeaderName = HeaderName::from_static("reporting-endpoints");

/// Headers that name the server's software and version. An attacker uses them
/// to pick exploits for exactly that version, so they are always removed.
static FINGERPRINT_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("x-powered-by"),
    HeaderName::from_static("x-aspnet-version"),
    HeaderName::from_static("x-aspnetmvc-version"),
    HeaderName::from_static("x-runtime"),
];

/// `Strict-Transport-Security`: browsers refuse plain HTTP to this host for
/// `max_age`, which defeats SSL-stripping on hostile networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hsts {
    /// How long browsers remember the rule, in seconds (at least one year).
    pub max_age_secs: u64,
    /// Apply to every subdomain too (a forgotten `http://old.example.com`
    /// could otherwise set cookies for the parent domain).
    pub include_subdomains: bool,
    /// Ask to be put on the browsers' built-in preload list (needs
    /// `include_subdomains` and one year; hard to undo).
    pub preload: bool,
}

impl Default for Hsts {
    /// Two years with `includeSubDomains`, no preload.
    fn default() -> Hsts {
        Hsts {
            max_age_secs: 2 * ONE_YEAR,
            include_subdomains: true,
            preload: false,
        }
    }
}

impl Hsts {
    fn header_value(&self) -> Result<HeaderValue, ConfigError> {
        if self.max_age_secs < ONE_YEAR {
            return Err(ConfigError::new(
                ConfigErrorKind::WeakHsts,
                format!(
                    "HSTS max-age {} s is below one year ({ONE_YEAR} s): a short max-age leaves users open to SSL stripping between visits",
                    self.max_age_secs
                ),
            ));
        }
        if self.preload && !self.include_subdomains {
            return Err(ConfigError::new(
                ConfigErrorKind::WeakHsts,
                "HSTS preload requires include_subdomains (the preload list refuses it otherwise)",
            ));
        }
        let mut text = format!("max-age={}", self.max_age_secs);
        if self.include_subdomains {
            text.push_str("; includeSubDomains");
        }
        if self.preload {
            text.push_str("; preload");
        }
        header_value(&text)
    }
}

/// `X-Frame-Options`, for browsers that predate CSP `frame-ancestors`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameOptions {
    /// `DENY`: never in a frame (stops clickjacking).
    #[default]
    Deny,
    /// `SAMEORIGIN`: only framed by this origin.
    SameOrigin,
}

/// `Referrer-Policy`: how much of this page's URL other sites learn.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrerPolicy {
    /// `no-referrer`: nothing (URLs may carry tokens or ids).
    NoReferrer,
    /// `same-origin`: the full URL to this origin only.
    SameOrigin,
    /// `strict-origin`: the origin only, and nothing on HTTPS → HTTP.
    StrictOrigin,
    /// `strict-origin-when-cross-origin`: full URL same-origin, the origin
    /// cross-origin, nothing on downgrade (the browsers' own default).
    #[default]
    StrictOriginWhenCrossOrigin,
    /// `no-referrer-when-downgrade`: full URL except on HTTPS → HTTP (leaks paths).
    NoReferrerWhenDowngrade,
}

impl ReferrerPolicy {
    fn as_str(self) -> &'static str {
        match self {
            ReferrerPolicy::NoReferrer => "no-referrer",
            ReferrerPolicy::SameOrigin => "same-origin",
            ReferrerPolicy::StrictOrigin => "strict-origin",
            ReferrerPolicy::StrictOriginWhenCrossOrigin => "strict-origin-when-cross-origin",
            ReferrerPolicy::NoReferrerWhenDowngrade => "no-referrer-when-downgrade",
        }
    }
}

/// `Cross-Origin-Opener-Policy`: whether pages this one opens (or that open
/// it) share its browsing context group (Spectre-style leaks, `window.opener`
/// tampering).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossOriginOpenerPolicy {
    /// `same-origin`.
    #[default]
    SameOrigin,
    /// `same-origin-allow-popups` (OAuth pop-up flows).
    SameOriginAllowPopups,
    /// `unsafe-none`: no isolation.
    UnsafeNone,
}

/// `Cross-Origin-Resource-Policy`: who may embed this response with a
/// `no-cors` request (`<img>`, `<script>`), which otherwise lets other sites
/// pull it into their process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossOriginResourcePolicy {
    /// `same-origin`.
    #[default]
    SameOrigin,
    /// `same-site`.
    SameSite,
    /// `cross-origin` (public assets and CDNs).
    CrossOrigin,
}

/// `Cross-Origin-Embedder-Policy` (opt-in: it breaks pages that embed
/// cross-origin resources without CORP/CORS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossOriginEmbedderPolicy {
    /// `require-corp`.
    RequireCorp,
    /// `credentialless`.
    Credentialless,
}

/// `X-XSS-Protection`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XssProtection {
    /// `0`: turn the legacy XSS auditor off. Today's recommendation: the
    /// auditor itself could be abused to leak data, and CSP replaces it.
    #[default]
    Disabled,
    /// `1; mode=block`, for security checklists that still ask for it.
    Block,
}

/// Which origins may use a browser feature in `Permissions-Policy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowlist {
    /// `()`: nobody, not even this page.
    None,
    /// `(self)`: this origin only.
    SelfOrigin,
}

/// `Permissions-Policy`: which powerful browser features a page may use. An
/// XSS payload or a hostile iframe then cannot switch on the camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionsPolicy {
    features: Vec<(String, Allowlist)>,
}

/// Features that an API or a plain web page does not need.
const RESTRICTED_FEATURES: [&str; 20] = [
    "accelerometer",
    "autoplay",
    "browsing-topics",
    "camera",
    "display-capture",
    "encrypted-media",
    "fullscreen",
    "geolocation",
    "gyroscope",
    "hid",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "picture-in-picture",
    "publickey-credentials-get",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
];

impl Default for PermissionsPolicy {
    fn default() -> PermissionsPolicy {
        PermissionsPolicy::restrictive()
    }
}

impl PermissionsPolicy {
    /// Every feature in a list of powerful ones (camera, microphone,
    /// geolocation, payment, usb, ...) denied to everyone.
    pub fn restrictive() -> PermissionsPolicy {
        PermissionsPolicy {
            features: RESTRICTED_FEATURES
                .iter()
                .map(|feature| ((*feature).to_owned(), Allowlist::None))
                .collect(),
        }
    }

    /// Sets one feature's allowlist (adding the feature if it is not listed).
    #[must_use]
    pub fn set(mut self, feature: impl Into<String>, allowlist: Allowlist) -> PermissionsPolicy {
        let feature = feature.into();
        match self.features.iter_mut().find(|(name, _)| *name == feature) {
            Some((_, existing)) => *existing = allowlist,
            None => self.features.push((feature, allowlist)),
        }
        self
    }

    fn header_value(&self) -> Result<HeaderValue, ConfigError> {
        let mut text = String::new();
        for (feature, allowlist) in &self.features {
            let valid = !feature.is_empty()
                && feature
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidToken,
                    format!("Permissions-Policy feature {feature:?} is not a lowercase token"),
                ));
            }
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str(feature);
            text.push_str(match allowlist {
                Allowlist::None => "=()",
                Allowlist::SelfOrigin => "=(self)",
            });
        }
        header_value(&text)
    }
}

impl<'de> Deserialize<'de> for PermissionsPolicy {
    /// A map of feature → `"none"` or `"self"`, applied on top of the
    /// restrictive default list.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Entry {
            None,
            #[serde(rename = "self")]
            SelfOrigin,
        }
        let entries = std::collections::BTreeMap::<String, Entry>::deserialize(deserializer)?;
        Ok(entries.into_iter().fold(
            PermissionsPolicy::restrictive(),
            |policy, (feature, entry)| {
                let allowlist = match entry {
                    Entry::None => Allowlist::None,
                    Entry::SelfOrigin => Allowlist::SelfOrigin,
                };
                policy.set(feature, allowlist)
            },
        ))
    }
}

/// What the `Server` header says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum ServerHeader {
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
    https: bool,
    hsts: Hsts,
    csp: Option<Csp>,
    csp_report_only: Option<Csp>,
    nosniff: bool,
    frame_options: Option<FrameOptions>,
    referrer_policy: ReferrerPolicy,
    permissions_policy: Option<PermissionsPolicy>,
    coop: Option<CrossOriginOpenerPolicy>,
    corp: Option<CrossOriginResourcePolicy>,
    coep: Option<CrossOriginEmbedderPolicy>,
    origin_agent_cluster: bool,
    xss_protection: XssProtection,
    server: ServerHeader,
    no_store_if_absent: bool,
    override_existing: bool,
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

    /// Validates the policy and precomputes every header value.
    pub fn build(&self) -> Result<SecurityHeaders, ConfigError> {
        let mut fixed: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(14);
        if self.https {
            fixed.push((STRICT_TRANSPORT_SECURITY, self.hsts.header_value()?));
        }
        if self.nosniff {
            fixed.push((X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
        }
        if let Some(frame_options) = self.frame_options {
            let value = match frame_options {
                FrameOptions::Deny => "DENY",
                FrameOptions::SameOrigin => "SAMEORIGIN",
            };
            fixed.push((X_FRAME_OPTIONS, HeaderValue::from_static(value)));
        }
        fixed.push((
            REFERRER_POLICY,
            HeaderValue::from_static(self.referrer_policy.as_str()),
        ));
        if let Some(permissions) = &self.permissions_policy {
            fixed.push((PERMISSIONS_POLICY.clone(), permissions.header_value()?));
        }
        if let Some(coop) = self.coop {
            let value = match coop {
                CrossOriginOpenerPolicy::SameOrigin => "same-origin",
                CrossOriginOpenerPolicy::SameOriginAllowPopups => "same-origin-allow-popups",
                CrossOriginOpenerPolicy::UnsafeNone => "unsafe-none",
            };
            fixed.push((
                CROSS_ORIGIN_OPENER_POLICY.clone(),
                HeaderValue::from_static(value),
            ));
        }
        if let Some(corp) = self.corp {
            let value = match corp {
                CrossOriginResourcePolicy::SameOrigin => "same-origin",
                CrossOriginResourcePolicy::SameSite => "same-site",
                CrossOriginResourcePolicy::CrossOrigin => "cross-origin",
            };
            fixed.push((
                CROSS_ORIGIN_RESOURCE_POLICY.clone(),
                HeaderValue::from_static(value),
            ));
        }
        if let Some(coep) = self.coep {
            let value = match coep {
                CrossOriginEmbedderPolicy::RequireCorp => "require-corp",
                CrossOriginEmbedderPolicy::Credentialless => "credentialless",
            };
            fixed.push((
                CROSS_ORIGIN_EMBEDDER_POLICY.clone(),
                HeaderValue::from_static(value),
            ));
        }
        if self.origin_agent_cluster {
            fixed.push((ORIGIN_AGENT_CLUSTER.clone(), HeaderValue::from_static("?1")));
        }
        fixed.push((
            X_PERMITTED_CROSS_DOMAIN_POLICIES.clone(),
            HeaderValue::from_static("none"),
        ));
        fixed.push((X_DNS_PREFETCH_CONTROL, HeaderValue::from_static("off")));
        fixed.push((
            X_XSS_PROTECTION,
            HeaderValue::from_static(match self.xss_protection {
                XssProtection::Disabled => "0",
                XssProtection::Block => "1; mode=block",
            }),
        ));
        let reporting = [&self.csp, &self.csp_report_only]
            .into_iter()
            .flatten()
            .filter_map(Csp::reporting_endpoints)
            .collect::<Vec<_>>();
        if !reporting.is_empty() {
            fixed.push((
                REPORTING_ENDPOINTS.clone(),
                header_value(&reporting.join(", "))?,
            ));
        }
        let server = match &self.server {
            ServerHeader::Remove => None,
            ServerHeader::Set(value) => Some(header_value(value)?),
        };
        let csp = self
            .csp
            .as_ref()
            .map(|csp| csp.compile(self.https))
            .transpose()?;
        let csp_report_only = self
            .csp_report_only
            .as_ref()
            .map(|csp| csp.compile(self.https))
            .transpose()?;
        let uses_nonces = [&self.csp, &self.csp_report_only]
            .into_iter()
            .flatten()
            .any(Csp::uses_nonces);
        Ok(SecurityHeaders {
            fixed,
            csp,
            csp_report_only,
            server,
            uses_nonces,
            no_store_if_absent: self.no_store_if_absent,
            override_existing: self.override_existing,
        })
    }
}

fn header_value(text: &str) -> Result<HeaderValue, ConfigError> {
    HeaderValue::from_str(text).map_err(|_| {
        ConfigError::new(
            ConfigErrorKind::InvalidHeaderValue,
            format!("{text:?} is not a valid header value"),
        )
    })
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

/// A [`HeaderPolicy`] with every value precomputed: applying it to a
/// response only clones `HeaderValue`s (and, with nonces, concatenates the
/// CSP once).
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    fixed: Vec<(HeaderName, HeaderValue)>,
    csp: Option<CompiledCsp>,
    csp_report_only: Option<CompiledCsp>,
    server: Option<HeaderValue>,
    uses_nonces: bool,
    no_store_if_absent: bool,
    override_existing: bool,
}

impl SecurityHeaders {
    /// Whether responses need a fresh [`CspNonce`] (make one with
    /// [`CspNonce::generate`] before the handler runs, so it can use it).
    pub fn uses_nonces(&self) -> bool {
        self.uses_nonces
    }

    /// Writes the headers into a response's headers. `nonce` is the one the
    /// handler was given (ignored when the policy has no nonces; when it has
    /// and `nonce` is `None`, the CSP goes out without nonce sources, so
    /// inline scripts are blocked rather than trusted).
    pub fn apply(&self, headers: &mut impl HeaderSink, nonce: Option<&CspNonce>) {
        for (name, value) in &self.fixed {
            if self.override_existing || !headers.contains(name) {
                headers.insert(name, value);
            }
        }
        for (name, compiled) in [
            (&CONTENT_SECURITY_POLICY, &self.csp),
            (&CONTENT_SECURITY_POLICY_REPORT_ONLY, &self.csp_report_only),
        ] {
            if let Some(compiled) = compiled
                && (self.override_existing || !headers.contains(name))
            {
                headers.insert(name, &compiled.render(nonce));
            }
        }
        for name in &FINGERPRINT_HEADERS {
            headers.remove(name);
        }
        match &self.server {
            Some(server) => headers.insert(&SERVER, server),
            None => headers.remove(&SERVER),
        }
        static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
        if self.uses_nonces && nonce.is_some() {
            // A cached page replays its nonce to everyone who gets the copy,
            // and an injected script can then read and reuse it.
            headers.insert(&CACHE_CONTROL, &NO_STORE);
        } else if self.no_store_if_absent && !headers.contains(&CACHE_CONTROL) {
            headers.insert(&CACHE_CONTROL, &NO_STORE);
        }
    }
}
