//! The property of every fuzz target, as plain functions over bytes.
//!
//! `fuzz/fuzz_targets/<name>.rs` calls `<name>::run` under libFuzzer;
//! `tests/corpus.rs` replays every committed seed (`fuzz/seeds/<name>`) and
//! regression input (`fuzz/regressions/<name>`) through the same function on
//! every `cargo test`, so a crash once found stays fixed without a fuzz run.
//! Each `run` panics when its property does not hold and returns otherwise.

pub mod apikey_credentials;
pub mod apikey_parse;
pub mod cors_origin;
pub mod csp_parse_or_build;
pub mod dotenv_parse;
pub mod email;
pub mod env_value_parse;
pub mod error_envelope;
pub mod filename_sanitize;
pub mod forwarded_header;
pub mod hex_id;
pub mod html_sanitize;
pub mod json_depth;
pub mod jwt_claims;
pub mod jwt_verify;
pub mod like_escape;
pub mod patch_json;
pub mod phc_parse;
pub mod policy_check;
pub mod quota_parse;
pub mod refresh_cookie;
pub mod sniff_upload;
pub mod url_guard;
pub mod zip_inspect;

/// The names of the properties, one per fuzz target.
pub const TARGETS: &[&str] = &[
    "apikey_credentials",
    "apikey_parse",
    "cors_origin",
    "csp_parse_or_build",
    "dotenv_parse",
    "email",
    "env_value_parse",
    "error_envelope",
    "filename_sanitize",
    "forwarded_header",
    "hex_id",
    "html_sanitize",
    "json_depth",
    "jwt_claims",
    "jwt_verify",
    "like_escape",
    "patch_json",
    "phc_parse",
    "policy_check",
    "quota_parse",
    "refresh_cookie",
    "sniff_upload",
    "url_guard",
    "zip_inspect",
];

/// The property of target `name`, if there is one.
pub fn property(name: &str) -> Option<fn(&[u8])> {
    let run: fn(&[u8]) = match name {
        "apikey_credentials" => apikey_credentials::run,
        "apikey_parse" => apikey_parse::run,
        "cors_origin" => cors_origin::run,
        "csp_parse_or_build" => csp_parse_or_build::run,
        "dotenv_parse" => dotenv_parse::run,
        "email" => email::run,
        "env_value_parse" => env_value_parse::run,
        "error_envelope" => error_envelope::run,
        "filename_sanitize" => filename_sanitize::run,
        "forwarded_header" => forwarded_header::run,
        "hex_id" => hex_id::run,
        "html_sanitize" => html_sanitize::run,
        "json_depth" => json_depth::run,
        "jwt_claims" => jwt_claims::run,
        "jwt_verify" => jwt_verify::run,
        "like_escape" => like_escape::run,
        "patch_json" => patch_json::run,
        "phc_parse" => phc_parse::run,
        "policy_check" => policy_check::run,
        "quota_parse" => quota_parse::run,
        "refresh_cookie" => refresh_cookie::run,
        "sniff_upload" => sniff_upload::run,
        "url_guard" => url_guard::run,
        "zip_inspect" => zip_inspect::run,
        _ => return None,
    };
    Some(run)
}
