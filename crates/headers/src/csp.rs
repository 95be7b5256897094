//! A typed Content-Security-Policy builder.
//!
//! Directives and source expressions are types, validated when they are made,
//! so a policy cannot carry a token that breaks out of its directive (`;`),
//! splits the header (`,`), or smuggles a quote. The builder refuses, at build
//! time, the sources that turn CSP's XSS protection off in the script
//! directives unless a method whose name says so was called.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use serde::Deserialize;

use crate::CspNonce;
use crate::error::{ConfigError, ConfigErrorKind};

/// A CSP directive that takes a source list.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Directive {
    /// `default-src`: the fallback for every fetch directive not given.
    DefaultSrc,
    /// `script-src`.
    ScriptSrc,
    /// `script-src-elem`.
    ScriptSrcElem,
    /// `script-src-attr`.
    ScriptSrcAttr,
    /// `style-src`.
    StyleSrc,
    /// `style-src-elem`.
    StyleSrcElem,
    /// `style-src-attr`.
    StyleSrcAttr,
    /// `img-src`.
    ImgSrc,
    /// `font-src`.
    FontSrc,
    /// `connect-src`.
    ConnectSrc,
    /// `media-src`.
    MediaSrc,
    /// `object-src`.
    ObjectSrc,
    /// `frame-src`.
    FrameSrc,
    /// `child-src`.
    ChildSrc,
    /// `worker-src`.
    WorkerSrc,
    /// `manifest-src`.
    ManifestSrc,
    /// `frame-ancestors`: who may frame this page (clickjacking).
    FrameAncestors,
    /// `form-action`: where forms may post (form hijacking).
    FormAction,
    /// `base-uri`: what `<base href>` may be (relative-URL hijacking).
    BaseUri,
}

const DIRECTIVES: [Directive; 19] = [
    Directive::DefaultSrc,
    Directive::ScriptSrc,
    Directive::ScriptSrcElem,
    Directive::ScriptSrcAttr,
    Directive::StyleSrc,
    Directive::StyleSrcElem,
    Directive::StyleSrcAttr,
    Directive::ImgSrc,
    Directive::FontSrc,
    Directive::ConnectSrc,
    Directive::MediaSrc,
    Directive::ObjectSrc,
    Directive::FrameSrc,
    Directive::ChildSrc,
    Directive::WorkerSrc,
    Directive::ManifestSrc,
    Directive::FrameAncestors,
    Directive::FormAction,
    Directive::BaseUri,
];

impl Directive {
    /// The directive's name in the header.
    pub const fn name(self) -> &'static str {
        match self {
            Directive::DefaultSrc => "default-src",
            Directive::ScriptSrc => "script-src",
            Directive::ScriptSrcElem => "script-src-elem",
            Directive::ScriptSrcAttr => "script-src-attr",
            Directive::StyleSrc => "style-src",
            Directive::StyleSrcElem => "style-src-elem",
            Directive::StyleSrcAttr => "style-src-attr",
            Directive::ImgSrc => "img-src",
            Directive::FontSrc => "font-src",
            Directive::ConnectSrc => "connect-src",
            Directive::MediaSrc => "media-src",
            Directive::ObjectSrc => "object-src",
            Directive::FrameSrc => "frame-src",
            Directive::ChildSrc => "child-src",
            Directive::WorkerSrc => "worker-src",
            Directive::ManifestSrc => "manifest-src",
            Directive::FrameAncestors => "frame-ancestors",
            Directive::FormAction => "form-action",
            Directive::BaseUri => "base-uri",
        }
    }

    /// Parses a directive name (ASCII case-insensitive).
    pub fn parse(name: &str) -> Result<Directive, ConfigError> {
        DIRECTIVES
            .into_iter()
            .find(|directive| directive.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ConfigError::new(
                    ConfigErrorKind::InvalidCspDirective,
                    format!("CSP directive {name:?} is not a known source-list directive"),
                )
            })
    }

    /// Directives whose sources decide which scripts run.
    fn governs_scripts(self) -> bool {
        matches!(
            self,
            Directive::ScriptSrc | Directive::ScriptSrcElem | Directive::ScriptSrcAttr
        )
    }

    /// Directives that get the per-response nonce.
    fn takes_nonce(self) -> bool {
        // The -elem directives override script-src/style-src for elements
        // when present, so they need the nonce too.
        matches!(
            self,
            Directive::ScriptSrc
                | Directive::StyleSrc
                | Directive::ScriptSrcElem
                | Directive::StyleSrcElem
        )
    }
}

/// The digest algorithm of a hash source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// `'sha256-…'`
    Sha256,
    /// `'sha384-…'`
    Sha384,
    /// `'sha512-…'`
    Sha512,
}

impl HashAlgorithm {
    fn prefix(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

/// One source expression of a CSP source list, valid by construction.
///
/// Keywords are constants ([`Source::SELF`], [`Source::NONE`], ...); hosts,
/// schemes and hashes come from fallible constructors or [`Source::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source(SourceKind);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SourceKind {
    None,
    SelfOrigin,
    StrictDynamic,
    ReportSample,
    WasmUnsafeEval,
    UnsafeHashes,
    UnsafeInline,
    UnsafeEval,
    Scheme(Box<str>),
    Host(Box<str>),
    Hash(Box<str>),
}

impl Source {
    /// `'none'`: nothing is allowed.
    pub const NONE: Source = Source(SourceKind::None);
    /// `'self'`: the page's own origin.
    pub const SELF: Source = Source(SourceKind::SelfOrigin);
    /// `'strict-dynamic'`: trust scripts loaded by already-trusted (nonced or
    /// hashed) scripts.
    pub const STRICT_DYNAMIC: Source = Source(SourceKind::StrictDynamic);
    /// `'report-sample'`: include the first 40 characters of a violation in reports.
    pub const REPORT_SAMPLE: Source = Source(SourceKind::ReportSample);
    /// `'wasm-unsafe-eval'`: allow WebAssembly compilation, not JavaScript `eval`.
    pub const WASM_UNSAFE_EVAL: Source = Source(SourceKind::WasmUnsafeEval);
    /// `'unsafe-hashes'`: let hash sources match event-handler attributes.
    pub const UNSAFE_HASHES: Source = Source(SourceKind::UnsafeHashes);

    /// `'unsafe-inline'`. Accepted in style directives; in script directives
    /// the builder refuses it unless
    /// [`CspBuilder::allow_unsafe_inline_script_dangerously`] was called,
    /// because it lets every injected `<script>` run.
    pub fn unsafe_inline() -> Source {
        Source(SourceKind::UnsafeInline)
    }

    /// `'unsafe-eval'`. Refused in script directives unless
    /// [`CspBuilder::allow_unsafe_eval_dangerously`] was called: it turns
    /// string-to-code sinks (`eval`, `new Function`) into XSS.
    pub fn unsafe_eval() -> Source {
        Source(SourceKind::UnsafeEval)
    }

    /// A scheme source such as `https:` or `data:` (given with or without the colon).
    pub fn scheme(scheme: &str) -> Result<Source, ConfigError> {
        let name = scheme.strip_suffix(':').unwrap_or(scheme);
        if is_scheme(name) {
            Ok(Source(SourceKind::Scheme(
                format!("{}:", name.to_ascii_lowercase()).into(),
            )))
        } else {
            Err(invalid_source(scheme, "is not a scheme"))
        }
    }

    /// A host source: `[scheme://]host[:port][/path]`, where the host may be
    /// `*` or start with `*.`, and the port may be `*` (CSP3 §2.3.1).
    pub fn host(expression: &str) -> Result<Source, ConfigError> {
        if is_host_source(expression) {
            Ok(Source(SourceKind::Host(expression.into())))
        } else {
            Err(invalid_source(expression, "is not a valid host source"))
        }
    }

    /// A hash source from the raw digest of an inline script or style.
    pub fn hash(algorithm: HashAlgorithm, digest: &[u8]) -> Result<Source, ConfigError> {
        if digest.len() != algorithm.digest_len() {
            return Err(invalid_source(
                algorithm.prefix(),
                "digest has the wrong length for its algorithm",
            ));
        }
        Ok(Source(SourceKind::Hash(
            format!("'{}-{}'", algorithm.prefix(), STANDARD.encode(digest)).into(),
        )))
    }

    /// Parses one source expression as it would appear in a header or a
    /// configuration file. Nonce sources are refused: a nonce written into
    /// configuration is the same on every response, which is no nonce at all;
    /// turn on per-response nonces with [`CspBuilder::nonces`] instead.
    pub fn parse(expression: &str) -> Result<Source, ConfigError> {
        if let Some(quoted) = expression
            .strip_prefix('\'')
            .and_then(|rest| rest.strip_suffix('\''))
        {
            let lower = quoted.to_ascii_lowercase();
            let keyword = match lower.as_str() {
                "none" => Some(SourceKind::None),
                "self" => Some(SourceKind::SelfOrigin),
                "strict-dynamic" => Some(SourceKind::StrictDynamic),
                "report-sample" => Some(SourceKind::ReportSample),
                "wasm-unsafe-eval" => Some(SourceKind::WasmUnsafeEval),
                "unsafe-hashes" => Some(SourceKind::UnsafeHashes),
                "unsafe-inline" => Some(SourceKind::UnsafeInline),
                "unsafe-eval" => Some(SourceKind::UnsafeEval),
                _ => None,
            };
            if let Some(kind) = keyword {
                return Ok(Source(kind));
            }
            if lower.starts_with("nonce-") {
                return Err(invalid_source(
                    expression,
                    "is a fixed nonce; use per-response nonces (nonces = true) instead",
                ));
            }
            for algorithm in [
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha512,
            ] {
                if let Some(encoded) = lower
                    .strip_prefix(algorithm.prefix())
                    .and_then(|rest| rest.strip_prefix('-'))
                {
                    // Decode the original (case-sensitive) text, not `lower`.
                    let start = quoted.len() - encoded.len();
                    let original = quoted.get(start..).unwrap_or_default();
                    let digest = STANDARD
                        .decode(original)
                        .map_err(|_| invalid_source(expression, "hash is not base64"))?;
                    return Source::hash(algorithm, &digest);
                }
            }
            return Err(invalid_source(expression, "is not a CSP keyword"));
        }
        if let Some(name) = expression.strip_suffix(':')
            && is_scheme(name)
        {
            return Source::scheme(name);
        }
        Source::host(expression)
    }

    /// The source as it appears in the header.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            SourceKind::None => "'none'",
            SourceKind::SelfOrigin => "'self'",
            SourceKind::StrictDynamic => "'strict-dynamic'",
            SourceKind::ReportSample => "'report-sample'",
            SourceKind::WasmUnsafeEval => "'wasm-unsafe-eval'",
            SourceKind::UnsafeHashes => "'unsafe-hashes'",
            SourceKind::UnsafeInline => "'unsafe-inline'",
            SourceKind::UnsafeEval => "'unsafe-eval'",
            SourceKind::Scheme(text) | SourceKind::Host(text) | SourceKind::Hash(text) => text,
        }
    }

    /// Sources that let an attacker-controlled script run when they appear
    /// in a script directive: any host (`*`), and whole schemes an attacker
    /// can serve from (`data:`, `blob:`, `http:`, `https:`, `filesystem:`).
    fn is_wildcard_script_source(&self) -> bool {
        match &self.0 {
            // Any host source whose host is `*` (`*`, `https://*`, `*:443`,
            // `*/`), or a wildcard over a single label (`*.com`): every
            // server, or every server of a TLD, can serve the script.
            SourceKind::Host(host) => {
                let rest = host
                    .split_once("://")
                    .map_or(host.as_ref(), |(_, rest)| rest);
                let authority = rest.split('/').next().unwrap_or_default();
                let hostname = authority
                    .rsplit_once(':')
                    .map_or(authority, |(name, _)| name);
                hostname == "*"
                    || hostname
                        .strip_prefix("*.")
                        .is_some_and(|parent| !parent.trim_end_matches('.').contains('.'))
            }
            SourceKind::Scheme(scheme) => matches!(
                scheme.as_ref(),
                "data:" | "blob:" | "http:" | "https:" | "filesystem:"
            ),
            _ => false,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn invalid_source(expression: &str, why: &str) -> ConfigError {
    ConfigError::new(
        ConfigErrorKind::InvalidCspSource,
        format!("CSP source {expression:?} {why}"),
    )
}

fn is_scheme(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// CSP3 host-source grammar.
fn is_host_source(expression: &str) -> bool {
    if expression.is_empty() || expression.len() > 2048 {
        return false;
    }
    let rest = match expression.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => rest,
        Some(_) => return false,
        None => expression,
    };
    let (authority, path) = match rest.find('/') {
        Some(index) => rest.split_at(index),
        None => (rest, ""),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = host == "*" || {
        let labels = host.strip_prefix("*.").unwrap_or(host);
        let labels = labels.strip_suffix('.').unwrap_or(labels);
        !labels.is_empty()
            && labels.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    let port_ok = port.is_none_or(|port| {
        port == "*"
            || (!port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()))
    });
    // Path characters: RFC 3986 pchar without `;` and `,` (they end a
    // directive / split the header) and without quotes.
    let path_ok = !path.starts_with("//")
        && path.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-'
                        | b'.'
                        | b'_'
                        | b'~'
                        | b'%'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b'='
                        | b':'
                        | b'@'
                )
        });
    host_ok && port_ok && path_ok
}

/// Where violation reports go (`report-to`, with its `Reporting-Endpoints` entry).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReportTo {
    group: Box<str>,
    url: Box<str>,
}

/// A validated Content-Security-Policy.
///
/// Build one with [`Csp::builder`], or deserialize one (the same checks run).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "CspConfig")]
pub struct Csp {
    directives: Vec<(Directive, Vec<Source>)>,
    upgrade_insecure_requests: bool,
    report_uri: Option<Box<str>>,
    report_to: Option<ReportTo>,
    nonces: bool,
}

/// Builds a [`Csp`]; [`build`](Self::build) runs the safety checks.
#[derive(Clone, Debug, Default)]
pub struct CspBuilder {
    directives: Vec<(Directive, Vec<Source>)>,
    upgrade_insecure_requests: bool,
    report_uri: Option<String>,
    report_to: Option<(String, String)>,
    nonces: bool,
    allow_unsafe_inline_script: bool,
    allow_unsafe_eval: bool,
    allow_wildcard_script_sources: bool,
}

impl Csp {
    /// An empty builder.
    pub fn builder() -> CspBuilder {
        CspBuilder::default()
    }

    /// The directives, in header order.
    pub fn directives(&self) -> &[(Directive, Vec<Source>)] {
        &self.directives
    }

    /// Whether each response gets a fresh nonce in `script-src` and `style-src`.
    pub fn uses_nonces(&self) -> bool {
        self.nonces
    }

    /// The `Reporting-Endpoints` header value that `report-to` needs, if any.
    pub(crate) fn reporting_endpoints(&self) -> Option<String> {
        self.report_to
            .as_ref()
            .map(|report_to| format!("{}=\"{}\"", report_to.group, report_to.url))
    }

    /// Serializes the policy into fixed segments with the nonce slots between
    /// them, so a response only concatenates (see [`CompiledCsp`]).
    /// `upgrade-insecure-requests` is left out when `https` is false (a
    /// development server on plain HTTP would break itself).
    pub(crate) fn compile(&self, https: bool) -> Result<CompiledCsp, ConfigError> {
        let mut segments = vec![String::new()];
        let mut without_nonce = String::new();
        let mut push = |text: &str, nonce_slot: bool| {
            if let Some(last) = segments.last_mut() {
                last.push_str(text);
            }
            if nonce_slot {
                segments.push(String::from("'"));
            } else {
                without_nonce.push_str(text);
            }
        };
        let mut first = true;
        for (directive, sources) in &self.directives {
            if !first {
                push("; ", false);
            }
            first = false;
            push(directive.name(), false);
            let nonce_here = self.nonces && directive.takes_nonce();
            let listed: Vec<&Source> = sources
                .iter()
                // `'none'` next to a nonce would be ignored; drop it there.
                .filter(|source| !(nonce_here && source.0 == SourceKind::None))
                .collect();
            if listed.is_empty() && !nonce_here {
                push(" 'none'", false);
            }
            for source in listed {
                push(" ", false);
                push(source.as_str(), false);
            }
            if nonce_here {
                push(" 'nonce-", true);
            }
        }
        if self.upgrade_insecure_requests && https {
            push(if first { "" } else { "; " }, false);
            push("upgrade-insecure-requests", false);
            first = false;
        }
        if let Some(uri) = &self.report_uri {
            push(if first { "" } else { "; " }, false);
            push("report-uri ", false);
            push(uri, false);
            first = false;
        }
        if let Some(report_to) = &self.report_to {
            push(if first { "" } else { "; " }, false);
            push("report-to ", false);
            push(&report_to.group, false);
        }
        let without_nonce = HeaderValue::from_str(&without_nonce).map_err(|_| {
            ConfigError::new(
                ConfigErrorKind::InvalidHeaderValue,
                "CSP does not form a valid header value",
            )
        })?;
        Ok(CompiledCsp {
            segments,
            without_nonce,
        })
    }
}

impl CspBuilder {
    /// Sets a directive's sources (replacing an earlier call for the same directive).
    #[must_use]
    pub fn directive(
        mut self,
        directive: Directive,
        sources: impl IntoIterator<Item = Source>,
    ) -> Self {
        let sources: Vec<Source> = sources.into_iter().collect();
        match self
            .directives
            .iter_mut()
            .find(|(existing, _)| *existing == directive)
        {
            Some((_, existing)) => *existing = sources,
            None => self.directives.push((directive, sources)),
        }
        self
    }

    /// `default-src`.
    #[must_use]
    pub fn default_src(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::DefaultSrc, sources)
    }

    /// `script-src`.
    #[must_use]
    pub fn script_src(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::ScriptSrc, sources)
    }

    /// `style-src`.
    #[must_use]
    pub fn style_src(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::StyleSrc, sources)
    }

    /// `img-src`.
    #[must_use]
    pub fn img_src(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::ImgSrc, sources)
    }

    /// `connect-src`.
    #[must_use]
    pub fn connect_src(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::ConnectSrc, sources)
    }

    /// `object-src`.
    #[must_use]
    pub fn object_src(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::ObjectSrc, sources)
    }

    /// `frame-ancestors`.
    #[must_use]
    pub fn frame_ancestors(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::FrameAncestors, sources)
    }

    /// `form-action`.
    #[must_use]
    pub fn form_action(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::FormAction, sources)
    }

    /// `base-uri`.
    #[must_use]
    pub fn base_uri(self, sources: impl IntoIterator<Item = Source>) -> Self {
        self.directive(Directive::BaseUri, sources)
    }

    /// `upgrade-insecure-requests` (sent only for HTTPS deployments).
    #[must_use]
    pub fn upgrade_insecure_requests(mut self) -> Self {
        self.upgrade_insecure_requests = true;
        self
    }

    /// A fresh nonce per response in `script-src` and `style-src` (created
    /// from `default-src`, or `'self'`, when not given).
    #[must_use]
    pub fn nonces(mut self, enabled: bool) -> Self {
        self.nonces = enabled;
        self
    }

    /// `report-uri` (deprecated by CSP3, still the only reporting Firefox supports).
    #[must_use]
    pub fn report_uri(mut self, uri: impl Into<String>) -> Self {
        self.report_uri = Some(uri.into());
        self
    }

    /// `report-to group`, plus `Reporting-Endpoints: group="url"`.
    #[must_use]
    pub fn report_to(mut self, group: impl Into<String>, url: impl Into<String>) -> Self {
        self.report_to = Some((group.into(), url.into()));
        self
    }

    /// Lets `'unsafe-inline'` into the script directives. Every injected
    /// inline script then runs: CSP no longer stops XSS.
    #[must_use]
    pub fn allow_unsafe_inline_script_dangerously(mut self) -> Self {
        self.allow_unsafe_inline_script = true;
        self
    }

    /// Lets `'unsafe-eval'` into the script directives: `eval` and friends
    /// become XSS sinks again.
    #[must_use]
    pub fn allow_unsafe_eval_dangerously(mut self) -> Self {
        self.allow_unsafe_eval = true;
        self
    }

    /// Lets `*`, `data:`, `blob:`, `http:` and `https:` into the script
    /// directives: an attacker who can host a file anywhere (or write a data
    /// URL) can run script.
    #[must_use]
    pub fn allow_wildcard_script_sources_dangerously(mut self) -> Self {
        self.allow_wildcard_script_sources = true;
        self
    }

    /// Checks the policy and builds it.
    pub fn build(mut self) -> Result<Csp, ConfigError> {
        let mut directives = std::mem::take(&mut self.directives);
        for (directive, sources) in &directives {
            if sources.len() > 1 && sources.contains(&Source::NONE) {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidCspSource,
                    format!(
                        "CSP {}: 'none' must stand alone (browsers ignore it next to other sources)",
                        directive.name()
                    ),
                ));
            }
        }
        if self.nonces {
            // The nonce goes into script-src and style-src; create them from
            // default-src so adding the nonce does not loosen anything else.
            let fallback = directives
                .iter()
                .find(|(directive, _)| *directive == Directive::DefaultSrc)
                .map(|(_, sources)| sources.clone())
                .unwrap_or_else(|| vec![Source::SELF]);
            for directive in [Directive::ScriptSrc, Directive::StyleSrc] {
                if !directives
                    .iter()
                    .any(|(existing, _)| *existing == directive)
                {
                    directives.push((directive, fallback.clone()));
                }
            }
        }
        let uses_nonce_or_strict_dynamic = self.nonces
            || directives
                .iter()
                .any(|(_, sources)| sources.contains(&Source::STRICT_DYNAMIC));
        if uses_nonce_or_strict_dynamic
            && !directives
                .iter()
                .any(|(directive, _)| *directive == Directive::BaseUri)
        {
            // base-uri has no default-src fallback: an injected
            // `<base href=//evil/>` would send every nonced relative
            // `<script src>` to the attacker's host.
            directives.push((Directive::BaseUri, vec![Source::NONE]));
        }
        check_script_sources(&directives, &self)?;
        let report_uri = match self.report_uri {
            Some(uri) if is_report_url(&uri) => Some(uri.into_boxed_str()),
            Some(uri) => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidHeaderValue,
                    format!(
                        "CSP report-uri {uri:?} is not an absolute or root-relative URL without spaces, quotes, ';' or ','"
                    ),
                ));
            }
            None => None,
        };
        let report_to = match self.report_to {
            Some((group, url)) => {
                // A structured-field dictionary key (Reporting-Endpoints):
                // a lowercase letter first, then [a-z0-9_-].
                let group_ok = group.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                    && group.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_')
                    });
                if !group_ok || !is_report_url(&url) || !url.starts_with("https://") {
                    return Err(ConfigError::new(
                        ConfigErrorKind::InvalidHeaderValue,
                        format!(
                            "CSP report-to group {group:?} must be a token and its URL an https:// URL without spaces, quotes, ';' or ','"
                        ),
                    ));
                }
                Some(ReportTo {
                    group: group.into(),
                    url: url.into(),
                })
            }
            None => None,
        };
        let csp = Csp {
            directives,
            upgrade_insecure_requests: self.upgrade_insecure_requests,
            report_uri,
            report_to,
            nonces: self.nonces,
        };
        csp.compile(true)?;
        Ok(csp)
    }
}

fn is_report_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
        && url.len() <= 2048
        && url
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"' | b'\\'))
}

/// The script directives in effect: the explicit ones, or `default-src` when
/// no `script-src` is given (it is the fallback browsers use).
fn check_script_sources(
    directives: &[(Directive, Vec<Source>)],
    builder: &CspBuilder,
) -> Result<(), ConfigError> {
    let has_script_src = directives
        .iter()
        .any(|(directive, _)| *directive == Directive::ScriptSrc);
    for (directive, sources) in directives {
        let governs =
            directive.governs_scripts() || (*directive == Directive::DefaultSrc && !has_script_src);
        if !governs {
            continue;
        }
        // With 'strict-dynamic' and a nonce or hash *in this directive*,
        // CSP3 browsers ignore 'unsafe-inline' and `https:`; those two are
        // the documented fallback for old browsers, not a weakening. Nothing
        // else is exempt (`*`, `data:` or `http:` would run anywhere a
        // browser honours nonces but not 'strict-dynamic').
        let strict_dynamic = sources.contains(&Source::STRICT_DYNAMIC)
            && ((builder.nonces && directive.takes_nonce())
                || sources
                    .iter()
                    .any(|source| matches!(source.0, SourceKind::Hash(_))));
        for source in sources {
            let refused = match &source.0 {
                SourceKind::UnsafeInline => !builder.allow_unsafe_inline_script && !strict_dynamic,
                SourceKind::UnsafeEval => !builder.allow_unsafe_eval,
                SourceKind::Scheme(scheme) if scheme.as_ref() == "https:" => {
                    !builder.allow_wildcard_script_sources && !strict_dynamic
                }
                _ => source.is_wildcard_script_source() && !builder.allow_wildcard_script_sources,
            };
            if refused {
                return Err(ConfigError::new(
                    ConfigErrorKind::UnsafeScriptSource,
                    format!(
                        "CSP {}: {} lets injected scripts run; call the matching allow_..._dangerously() to accept that",
                        directive.name(),
                        source
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A policy serialized once: fixed text with nonce slots.
#[derive(Clone, Debug)]
pub(crate) struct CompiledCsp {
    /// Without nonces: one segment. With nonces: the text between the slots;
    /// each slot is filled with the nonce (segments after the first start
    /// with the closing quote of `'nonce-…'`).
    segments: Vec<String>,
    /// The policy with the nonce sources left out: what is sent when no nonce
    /// could be made (inline scripts are then blocked, not trusted).
    without_nonce: HeaderValue,
}

impl CompiledCsp {
    pub(crate) fn render(&self, nonce: Option<&CspNonce>) -> HeaderValue {
        let nonce = match nonce {
            Some(nonce) if self.segments.len() > 1 => nonce,
            _ => return self.without_nonce.clone(),
        };
        let length = self.segments.iter().map(String::len).sum::<usize>()
            + nonce.as_str().len() * (self.segments.len() - 1);
        let mut text = String::with_capacity(length);
        for (index, segment) in self.segments.iter().enumerate() {
            if index > 0 {
                text.push_str(nonce.as_str());
            }
            text.push_str(segment);
        }
        // Base64 and the validated segments are always a valid value.
        HeaderValue::from_str(&text).unwrap_or_else(|_| self.without_nonce.clone())
    }
}

/// The configuration-file form of a [`Csp`]:
///
/// ```toml
/// [csp]
/// nonces = true
/// directives = { default-src = ["'none'"], script-src = ["'self'"] }
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CspConfig {
    /// Directive name → source expressions.
    pub directives: BTreeMap<String, Vec<String>>,
    /// Per-response nonces in `script-src` and `style-src`.
    pub nonces: bool,
    /// `upgrade-insecure-requests`.
    pub upgrade_insecure_requests: bool,
    /// `report-uri`.
    pub report_uri: Option<String>,
    /// `report-to` group name.
    pub report_to_group: Option<String>,
    /// The URL of the `report-to` group.
    pub report_to_url: Option<String>,
    /// See [`CspBuilder::allow_unsafe_inline_script_dangerously`].
    pub allow_unsafe_inline_script_dangerously: bool,
    /// See [`CspBuilder::allow_unsafe_eval_dangerously`].
    pub allow_unsafe_eval_dangerously: bool,
    /// See [`CspBuilder::allow_wildcard_script_sources_dangerously`].
    pub allow_wildcard_script_sources_dangerously: bool,
}

impl TryFrom<CspConfig> for Csp {
    type Error = ConfigError;

    fn try_from(config: CspConfig) -> Result<Csp, ConfigError> {
        let mut builder = Csp::builder().nonces(config.nonces);
        for (name, sources) in &config.directives {
            let directive = Directive::parse(name)?;
            let sources = sources
                .iter()
                .map(|source| Source::parse(source))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.directive(directive, sources);
        }
        if config.upgrade_insecure_requests {
            builder = builder.upgrade_insecure_requests();
        }
        if let Some(uri) = config.report_uri {
            builder = builder.report_uri(uri);
        }
        match (config.report_to_group, config.report_to_url) {
            (Some(group), Some(url)) => builder = builder.report_to(group, url),
            (None, None) => {}
            _ => {
                return Err(ConfigError::new(
                    ConfigErrorKind::InvalidHeaderValue,
                    "CSP report_to_group and report_to_url go together",
                ));
            }
        }
        if config.allow_unsafe_inline_script_dangerously {
            builder = builder.allow_unsafe_inline_script_dangerously();
        }
        if config.allow_unsafe_eval_dangerously {
            builder = builder.allow_unsafe_eval_dangerously();
        }
        if config.allow_wildcard_script_sources_dangerously {
            builder = builder.allow_wildcard_script_sources_dangerously();
        }
        builder.build()
    }
}
