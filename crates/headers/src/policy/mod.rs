//! The security-header policy and its precomputed form.

mod config;
mod settings;

use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY, REFERRER_POLICY,
    SERVER, STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_DNS_PREFETCH_CONTROL,
    X_FRAME_OPTIONS, X_XSS_PROTECTION,
};
use http::{HeaderMap, HeaderName, HeaderValue};

use config::ServerHeader;
pub use config::{HeaderPolicy, HeaderPolicyConfig, Preset};
pub use settings::{
    Allowlist, CrossOriginEmbedderPolicy, CrossOriginOpenerPolicy, CrossOriginResourcePolicy,
    FrameOptions, Hsts, PermissionsPolicy, ReferrerPolicy, XssProtection,
};

use crate::csp::CompiledCsp;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::{Csp, CspNonce, HeaderSink};

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

impl HeaderPolicy {
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
        let mut headers = SecurityHeaders {
            fixed,
            csp,
            csp_report_only,
            server,
            uses_nonces,
            no_store_if_absent: self.no_store_if_absent,
            override_existing: self.override_existing,
            template: HeaderMap::new(),
        };
        headers.template = headers.template();
        Ok(headers)
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
    /// What [`SecurityHeaders::apply`] gives a response with no headers of
    /// its own and no nonce, with room for the response's own: the start of
    /// every `http::HeaderMap` it is applied to.
    template: HeaderMap,
}

static NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Room in the template for a response's own headers (content type and
/// length, rate-limit and CORS headers, the request id), so that adding
/// them does not grow the map.
const OWN_HEADERS_ROOM: usize = 12;

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
        match headers.header_map() {
            Some(map) => self.apply_to_map(map, nonce),
            None => self.apply_one_by_one(headers, nonce),
        }
    }

    /// [`SecurityHeaders::apply`] through the [`HeaderSink`] calls alone.
    fn apply_one_by_one(&self, headers: &mut (impl HeaderSink + ?Sized), nonce: Option<&CspNonce>) {
        // The fixed headers, the CSP pair and `Cache-Control`.
        headers.reserve(self.fixed.len() + 3);
        for (name, value) in &self.fixed {
            if self.override_existing {
                headers.insert(name, value);
            } else {
                headers.insert_if_absent(name, value);
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
        if self.uses_nonces && nonce.is_some() {
            // A cached page replays its nonce to everyone who gets the copy,
            // and an injected script can then read and reuse it.
            headers.insert(&CACHE_CONTROL, &NO_STORE);
        } else if self.no_store_if_absent && !headers.contains(&CACHE_CONTROL) {
            headers.insert(&CACHE_CONTROL, &NO_STORE);
        }
    }

    /// The headers [`SecurityHeaders::apply`] gives a response that has
    /// none and no nonce.
    fn template(&self) -> HeaderMap {
        let mut template = HeaderMap::with_capacity(self.fixed.len() + 4 + OWN_HEADERS_ROOM);
        self.apply_one_by_one(&mut template, None);
        template
    }

    /// [`SecurityHeaders::apply`] for an `http::HeaderMap`, with the same
    /// result: the response's headers become a clone of the template, and
    /// the response's own headers are put back into it under the same rules
    /// (a policy header the response set itself is kept unless the policy
    /// overrides; fingerprint headers and `Server` never are). A response
    /// has a few headers of its own, so this is a few lookups, not twenty.
    fn apply_to_map(&self, headers: &mut HeaderMap, nonce: Option<&CspNonce>) {
        let own = std::mem::replace(headers, self.template.clone());
        // With a nonce, the CSPs are rendered for this response and it is
        // never cached.
        let with_nonce = self.uses_nonces && nonce.is_some();
        let mut own_csp = false;
        let mut own_csp_report_only = false;
        // The name of the values being put back; `None` while skipping them.
        let mut current: Option<HeaderName> = None;
        for (name, value) in own {
            if let Some(name) = name {
                own_csp |= name == CONTENT_SECURITY_POLICY;
                own_csp_report_only |= name == CONTENT_SECURITY_POLICY_REPORT_ONLY;
                current = self.keeps_own(&name, with_nonce).then_some(name);
                if let Some(name) = &current {
                    // The first value replaces the template's.
                    headers.insert(name.clone(), value);
                }
            } else if let Some(name) = &current {
                headers.append(name.clone(), value);
            }
        }
        // The template holds the nonce-less CSPs (unless the response's own
        // is kept).
        if with_nonce {
            for (name, compiled, own) in [
                (&CONTENT_SECURITY_POLICY, &self.csp, own_csp),
                (
                    &CONTENT_SECURITY_POLICY_REPORT_ONLY,
                    &self.csp_report_only,
                    own_csp_report_only,
                ),
            ] {
                if let Some(compiled) = compiled
                    && (self.override_existing || !own)
                {
                    headers.insert(name.clone(), compiled.render(nonce));
                }
            }
            headers.insert(CACHE_CONTROL, NO_STORE.clone());
        }
    }

    /// Whether the response's own values of `name` stay (see [`SecurityHeaders::apply`]).
    fn keeps_own(&self, name: &HeaderName, with_nonce: bool) -> bool {
        if *name == SERVER || FINGERPRINT_HEADERS.contains(name) {
            return false;
        }
        if *name == CACHE_CONTROL {
            // Only ever set when absent, whatever `override_existing` says,
            // unless a nonce makes the response uncacheable.
            return !with_nonce;
        }
        // What is left in the template is what the policy sets: the fixed
        // headers and the CSPs.
        !(self.override_existing && self.template.contains_key(name))
    }
}
