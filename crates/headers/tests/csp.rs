//! The CSP builder: every token that could break out of its directive is
//! refused, and so is every source that switches off CSP's XSS protection
//! without a `..._dangerously()` opt-in.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use palisade_headers::csp::{Csp, CspConfig, HashAlgorithm};
use palisade_headers::{ConfigErrorKind, CspNonce, Directive, HeaderPolicy, Source};
use proptest::prelude::*;

fn csp_header(csp: Csp, nonce: Option<&CspNonce>) -> String {
    let headers = HeaderPolicy::api().csp(csp).build().unwrap();
    let mut map = http::HeaderMap::new();
    headers.apply(&mut map, nonce);
    map["content-security-policy"].to_str().unwrap().to_owned()
}

#[test]
fn header_injection_tokens_are_refused_as_sources() {
    // Each of these would, pasted into the header, add a directive (`;`),
    // start a second policy (`,`), split the header line (CR/LF), or close a
    // quoted keyword early.
    let bad = [
        "",
        " ",
        "'self'; script-src *",
        "example.com;",
        "a.com,b.com",
        "'self',",
        "\"self\"",
        "'self",
        "self'",
        "'unknown-keyword'",
        "example.com\r\nSet-Cookie: x=1",
        "example.com\n",
        "exa mple.com",
        "exa'mple.com",
        "https://exa\"mple.com",
        "https://example.com/pa;th",
        "https://example.com/pa,th",
        "https://example.com/pa th",
        "*.",
        "*.*.example.com",
        "foo.*.example.com",
        "https://",
        "://example.com",
        "1http://example.com",
        "https://example.com:",
        "https://example.com:80a",
        "https://example.com:123456",
        "https://example.com//evil",
        "https://ex\u{e4}mple.com",
        "\u{0}",
        "'nonce-abc123'",
        "'NONCE-abc123'",
        "'sha256-not base64'",
        "'sha256-AAAA'",
        "'sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA='",
    ];
    for text in bad {
        let error = Source::parse(text).expect_err(text);
        assert_eq!(error.kind(), ConfigErrorKind::InvalidCspSource, "{text:?}");
    }
}

#[test]
fn valid_sources_parse_and_render_canonically() {
    let cases = [
        ("'self'", "'self'"),
        ("'SELF'", "'self'"),
        ("'none'", "'none'"),
        ("'strict-dynamic'", "'strict-dynamic'"),
        ("'report-sample'", "'report-sample'"),
        ("'wasm-unsafe-eval'", "'wasm-unsafe-eval'"),
        ("https:", "https:"),
        ("HTTPS:", "https:"),
        ("data:", "data:"),
        ("example.com", "example.com"),
        ("*.example.com", "*.example.com"),
        (
            "https://cdn.example.com:443/js/",
            "https://cdn.example.com:443/js/",
        ),
        ("https://cdn.example.com:*", "https://cdn.example.com:*"),
        ("*", "*"),
        (
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
        ),
    ];
    for (text, rendered) in cases {
        let source = Source::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(source.as_str(), rendered);
    }
}

#[test]
fn hash_sources_check_the_digest_length() {
    assert!(Source::hash(HashAlgorithm::Sha256, &[0; 32]).is_ok());
    assert!(Source::hash(HashAlgorithm::Sha384, &[0; 48]).is_ok());
    assert!(Source::hash(HashAlgorithm::Sha512, &[0; 64]).is_ok());
    assert!(Source::hash(HashAlgorithm::Sha256, &[0; 31]).is_err());
    assert!(Source::hash(HashAlgorithm::Sha512, &[0; 32]).is_err());
}

#[test]
fn unknown_directives_are_refused() {
    for name in ["scriptsrc", "script-src;", "", "sandbox", "default-src "] {
        assert_eq!(
            Directive::parse(name).unwrap_err().kind(),
            ConfigErrorKind::InvalidCspDirective,
            "{name:?}"
        );
    }
    assert_eq!(
        Directive::parse("SCRIPT-SRC").unwrap(),
        Directive::ScriptSrc
    );
}

#[test]
fn xss_unsafe_script_sources_need_the_dangerous_opt_in() {
    // Stored/reflected XSS: with any of these in the script directives an
    // injected script runs despite the CSP.
    let unsafe_sources = [
        Source::unsafe_inline(),
        Source::unsafe_eval(),
        Source::host("*").unwrap(),
        Source::scheme("data").unwrap(),
        Source::scheme("https").unwrap(),
        Source::scheme("http").unwrap(),
        Source::scheme("blob").unwrap(),
    ];
    for source in unsafe_sources {
        for directive in [
            Directive::ScriptSrc,
            Directive::ScriptSrcElem,
            Directive::ScriptSrcAttr,
        ] {
            let error = Csp::builder()
                .directive(directive, [Source::SELF, source.clone()])
                .build()
                .unwrap_err();
            assert_eq!(
                error.kind(),
                ConfigErrorKind::UnsafeScriptSource,
                "{source}"
            );
        }
        // default-src is the script fallback when script-src is absent...
        let error = Csp::builder()
            .default_src([Source::SELF, source.clone()])
            .build()
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ConfigErrorKind::UnsafeScriptSource,
            "{source}"
        );
        // ...but not when script-src is given.
        assert!(
            Csp::builder()
                .default_src([Source::SELF, source.clone()])
                .script_src([Source::SELF])
                .build()
                .is_ok(),
            "{source}"
        );
    }
}

#[test]
fn dangerous_opt_ins_accept_exactly_their_source() {
    let inline = Csp::builder()
        .script_src([Source::SELF, Source::unsafe_inline()])
        .allow_unsafe_inline_script_dangerously()
        .build()
        .unwrap();
    assert!(csp_header(inline, None).contains("script-src 'self' 'unsafe-inline'"));
    // Opting into inline does not also let eval in.
    assert!(
        Csp::builder()
            .script_src([Source::unsafe_eval()])
            .allow_unsafe_inline_script_dangerously()
            .build()
            .is_err()
    );
    assert!(
        Csp::builder()
            .script_src([Source::unsafe_eval()])
            .allow_unsafe_eval_dangerously()
            .build()
            .is_ok()
    );
    assert!(
        Csp::builder()
            .script_src([Source::host("*").unwrap()])
            .allow_wildcard_script_sources_dangerously()
            .build()
            .is_ok()
    );
}

#[test]
fn unsafe_inline_is_fine_for_styles_and_as_strict_dynamic_fallback() {
    assert!(
        Csp::builder()
            .style_src([Source::SELF, Source::unsafe_inline()])
            .build()
            .is_ok()
    );
    // CSP3 browsers ignore 'unsafe-inline' and https: next to
    // 'strict-dynamic' + a nonce; they are the fallback for old browsers.
    let csp = Csp::builder()
        .script_src([
            Source::STRICT_DYNAMIC,
            Source::unsafe_inline(),
            Source::scheme("https").unwrap(),
        ])
        .nonces(true)
        .build()
        .unwrap();
    let nonce = CspNonce::generate().unwrap();
    assert!(csp_header(csp, Some(&nonce)).contains(&format!(
        "script-src 'strict-dynamic' 'unsafe-inline' https: 'nonce-{nonce}'"
    )));
    // Without a nonce or hash, 'strict-dynamic' trusts nothing, so the
    // fallback would be the policy: refused.
    assert!(
        Csp::builder()
            .script_src([Source::STRICT_DYNAMIC, Source::unsafe_inline()])
            .build()
            .is_err()
    );
}

#[test]
fn none_must_stand_alone() {
    let error = Csp::builder()
        .img_src([Source::NONE, Source::SELF])
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ConfigErrorKind::InvalidCspSource);
}

#[test]
fn report_targets_cannot_inject() {
    for uri in [
        "/csp; script-src *",
        "/a,b",
        "javascript:alert(1)",
        "/a b",
        "",
    ] {
        assert!(Csp::builder().report_uri(uri).build().is_err(), "{uri:?}");
    }
    assert!(
        Csp::builder()
            .report_to("csp endpoints", "https://r.example.com")
            .build()
            .is_err()
    );
    assert!(
        Csp::builder()
            .report_to("csp", "http://r.example.com")
            .build()
            .is_err()
    );
    let csp = Csp::builder()
        .default_src([Source::NONE])
        .report_uri("/csp-reports")
        .report_to("csp-endpoint", "https://reports.example.com/csp")
        .build()
        .unwrap();
    let headers = HeaderPolicy::api().csp(csp).build().unwrap();
    let mut map = http::HeaderMap::new();
    headers.apply(&mut map, None);
    assert_eq!(
        map["content-security-policy"],
        "default-src 'none'; report-uri /csp-reports; report-to csp-endpoint"
    );
    assert_eq!(
        map["reporting-endpoints"],
        "csp-endpoint=\"https://reports.example.com/csp\""
    );
}

#[test]
fn nonces_fill_script_and_style_src_from_default_src() {
    let csp = Csp::builder()
        .default_src([Source::SELF])
        .object_src([Source::NONE])
        .nonces(true)
        .build()
        .unwrap();
    let nonce = CspNonce::generate().unwrap();
    assert_eq!(
        csp_header(csp.clone(), Some(&nonce)),
        format!(
            "default-src 'self'; object-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; base-uri 'none'"
        )
    );
    // No nonce (random source failed): the policy goes out without nonce
    // sources, so inline script is blocked, never allowed.
    assert_eq!(
        csp_header(csp, None),
        "default-src 'self'; object-src 'none'; script-src 'self'; style-src 'self'; base-uri 'none'"
    );
}

#[test]
fn nonce_replaces_none_in_its_directive() {
    // 'none' next to a nonce is ignored by browsers; drop it there so the
    // header says what it does.
    let csp = Csp::builder()
        .default_src([Source::NONE])
        .nonces(true)
        .build()
        .unwrap();
    let nonce = CspNonce::generate().unwrap();
    assert_eq!(
        csp_header(csp, Some(&nonce)),
        format!(
            "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; base-uri 'none'"
        )
    );
}

#[test]
fn config_files_run_the_same_checks() {
    let csp: Csp = serde_json::from_str(
        r#"{"nonces": true, "directives": {"default-src": ["'self'"], "img-src": ["'self'", "data:"]}}"#,
    )
    .unwrap();
    assert!(csp.uses_nonces());
    for bad in [
        r#"{"directives": {"script-src": ["'unsafe-inline'"]}}"#,
        r#"{"directives": {"script-src": ["'nonce-fixed'"]}}"#,
        r#"{"directives": {"script-src": ["'self'; img-src *"]}}"#,
        r#"{"directives": {"scripts": ["'self'"]}}"#,
        r#"{"report_to_group": "csp"}"#,
        r#"{"unknown": true}"#,
    ] {
        assert!(serde_json::from_str::<Csp>(bad).is_err(), "{bad}");
    }
    let opted_in: Result<Csp, _> = serde_json::from_value(serde_json::json!({
        "directives": {"script-src": ["'self'", "'unsafe-inline'"]},
        "allow_unsafe_inline_script_dangerously": true
    }));
    assert!(opted_in.is_ok());
    let _ = CspConfig::default();
}

proptest! {
    #[test]
    fn parsed_sources_never_carry_separators(text in ".{0,64}") {
        if let Ok(source) = Source::parse(&text) {
            let rendered = source.as_str();
            prop_assert!(!rendered.bytes().any(|b| matches!(b, b';' | b',' | b'"') || b.is_ascii_whitespace() || b.is_ascii_control() || !b.is_ascii()));
            prop_assert_eq!(Source::parse(rendered).unwrap(), source);
        }
    }

    #[test]
    fn directive_parse_never_panics(text in "\\PC{0,32}") {
        let _ = Directive::parse(&text);
    }
}

#[test]
fn wildcard_hosts_in_any_spelling_need_the_dangerous_opt_in() {
    // Each of these matches every server (or every server of a TLD): an
    // attacker hosts the script anywhere.
    for text in [
        "https://*",
        "http://*",
        "HTTPS://*",
        "*:*",
        "https://*:*",
        "*:443",
        "*/",
        "*.com",
        "https://*.com:443",
    ] {
        let source = Source::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"));
        for directive in [Directive::ScriptSrc, Directive::DefaultSrc] {
            let error = Csp::builder()
                .directive(directive, [source.clone()])
                .build()
                .unwrap_err();
            assert_eq!(
                error.kind(),
                ConfigErrorKind::UnsafeScriptSource,
                "{text} in {directive:?}"
            );
        }
        assert!(
            Csp::builder()
                .script_src([source])
                .allow_wildcard_script_sources_dangerously()
                .build()
                .is_ok()
        );
    }
    // A wildcard below a registrable domain is an allow-list, not a wildcard.
    assert!(
        Csp::builder()
            .script_src([Source::parse("https://*.example.com").unwrap()])
            .build()
            .is_ok()
    );
    let config: Result<Csp, _> =
        serde_json::from_str(r#"{"directives": {"script-src": ["https://*"]}}"#);
    assert!(config.is_err());
}

#[test]
fn strict_dynamic_exempts_only_its_fallback_and_only_where_the_nonce_is() {
    // script-src-elem gets the nonce now, so its fallback is exempt there...
    let elem = Csp::builder()
        .directive(
            Directive::ScriptSrcElem,
            [
                Source::STRICT_DYNAMIC,
                Source::unsafe_inline(),
                Source::scheme("https").unwrap(),
            ],
        )
        .nonces(true)
        .build()
        .unwrap();
    let nonce = CspNonce::generate().unwrap();
    assert!(csp_header(elem, Some(&nonce)).contains(&format!(
        "script-src-elem 'strict-dynamic' 'unsafe-inline' https: 'nonce-{nonce}'"
    )));
    // ...but never for sources a nonce-honouring, strict-dynamic-ignoring
    // browser would then trust (data:, http:, *).
    for source in ["data:", "http:", "*"] {
        let error = Csp::builder()
            .script_src([Source::STRICT_DYNAMIC, Source::parse(source).unwrap()])
            .nonces(true)
            .build()
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ConfigErrorKind::UnsafeScriptSource,
            "{source}"
        );
    }
    // And not in a directive without the nonce or a hash.
    assert!(
        Csp::builder()
            .directive(
                Directive::ScriptSrcAttr,
                [Source::STRICT_DYNAMIC, Source::unsafe_inline()]
            )
            .nonces(true)
            .build()
            .is_err()
    );
}

#[test]
fn report_to_group_is_a_structured_field_key() {
    for group in ["CSP", "1csp", "csp endpoints", ""] {
        assert!(
            Csp::builder()
                .report_to(group, "https://r.example.com/csp")
                .build()
                .is_err(),
            "{group:?}"
        );
    }
    assert!(
        Csp::builder()
            .report_to("csp", "https://r.example.com/a\\b")
            .build()
            .is_err()
    );
    assert!(
        Csp::builder()
            .report_to("csp-2_x", "https://r.example.com/csp")
            .build()
            .is_ok()
    );
}
