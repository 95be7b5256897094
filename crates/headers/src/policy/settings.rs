//! The settings of the individual headers a [`HeaderPolicy`](super::HeaderPolicy)
//! sends, each of which renders its own header value.

use http::HeaderValue;
use serde::Deserialize;

use super::header_value;
use crate::error::{ConfigError, ConfigErrorKind};

const ONE_YEAR: u64 = 365 * 24 * 60 * 60;

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
    pub(super) fn header_value(&self) -> Result<HeaderValue, ConfigError> {
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
    pub(super) fn as_str(self) -> &'static str {
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

    pub(super) fn header_value(&self) -> Result<HeaderValue, ConfigError> {
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
