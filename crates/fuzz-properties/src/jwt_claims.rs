//! Fuzzer-built JOSE headers and claims, signed with the test HMAC keys, so
//! that what `jwt_verify` rarely reaches (a valid signature) is the common
//! case and the claim checks are what is fuzzed (issue #11). The input
//! chooses each header parameter and each claim: the right value, a wrong
//! one, one of the wrong JSON type, a time around the clock and the leeway,
//! a repeated key, or raw bytes for a whole part.
//!
//! Property: never a panic; a token accepted as an access token (with
//! Palisade's claims or as any JSON) or as a refresh token has `exp` in the
//! future (within the leeway), `nbf` and `iat` (when present) not in the
//! future beyond it, the right `iss`, `aud`, `type` and `typ`, and
//! round-trips: its claims, signed again, verify to the same claims.

use arbitrary::{Result, Unstructured};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use std::sync::OnceLock;

use palisade_auth_tokens::{
    Algorithm, Claims, Keyring, ManualClock, NoCustomClaims, SigningKey, TokenPolicy, TokenType,
    TokenVerifier,
};
use secrecy::SecretSlice;

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "api";
const ACCESS_SECRET: &[u8] = b"k7Qp2vX9mR4tL8wZ3nB6yH1cF5jD0sGa";
const REFRESH_SECRET: &[u8] = b"Xr8Lw2Pq9Zt4Mn7Bv3Kc6Hy1Jf5Dg0Sa";

fn policy() -> TokenPolicy {
    TokenPolicy::new(ISSUER, AUDIENCE).expect("test policy")
}

fn verifier() -> &'static TokenVerifier<ManualClock> {
    static VERIFIER: OnceLock<TokenVerifier<ManualClock>> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let ring = |kid: &str, secret: &[u8]| {
            let secret = SecretSlice::from(secret.to_vec());
            Keyring::new([SigningKey::hmac(kid, Algorithm::HS256, &secret).expect("test key")])
                .expect("test keyring")
        };
        TokenVerifier::with_clock(
            ring("a1", ACCESS_SECRET),
            ring("r1", REFRESH_SECRET),
            policy(),
            ManualClock::from_unix_secs(NOW),
        )
    })
}

/// One of `choices`, or (for the last pick) a string the input spells.
fn pick(u: &mut Unstructured<'_>, choices: &[&str]) -> Result<String> {
    let index = u.choose_index(choices.len() + 1)?;
    match choices.get(index) {
        Some(choice) => Ok((*choice).to_owned()),
        None => {
            let text: String = u.arbitrary()?;
            Ok(text.chars().take(40).collect())
        }
    }
}

/// A JSON value for a claim or parameter: usually `good` (already JSON),
/// else a value of another kind. (Every choice's first option, which an
/// exhausted input picks, is the valid one: short inputs make valid tokens.)
fn value(u: &mut Unstructured<'_>, good: &str) -> Result<String> {
    Ok(match u.int_in_range(0..=11u8)? {
        0..=7 => good.to_owned(),
        8 => serde_json::to_string(&pick(u, &["x", "", "null"])?).unwrap_or_default(),
        9 => [
            "null",
            "true",
            "1.5",
            "-1",
            "[]",
            "{}",
            "18446744073709551616",
        ][u.choose_index(7)?]
        .to_owned(),
        10 => u.arbitrary::<u64>()?.to_string(),
        _ => format!("[{good}]"),
    })
}

/// A time around the clock: the boundaries of the leeway are most likely.
fn time(u: &mut Unstructured<'_>) -> Result<String> {
    let leeway = i64::try_from(policy().leeway()).unwrap_or(0);
    let offset = match u.int_in_range(0..=5u8)? {
        0 => 0,
        1 => leeway,
        2 => -leeway,
        3 => leeway + 1,
        4 => -leeway - 1,
        _ => i64::from(u.arbitrary::<i32>()?),
    };
    let time = NOW.saturating_add_signed(offset);
    value(u, &time.to_string())
}

/// A JSON object from `(key, raw JSON)` members, in order, repeats kept.
fn object(members: &[(String, String)]) -> String {
    let members: Vec<String> = members
        .iter()
        .map(|(key, value)| format!("{}:{value}", serde_json::Value::from(key.as_str())))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Adds `key` unless the input drops it, maybe twice.
fn member(
    members: &mut Vec<(String, String)>,
    key: &str,
    json: String,
    u: &mut Unstructured<'_>,
) -> Result<()> {
    match u.int_in_range(0..=11u8)? {
        10 => {}
        11 => {
            members.push((key.to_owned(), json.clone()));
            members.push((key.to_owned(), json));
        }
        _ => members.push((key.to_owned(), json)),
    }
    Ok(())
}

fn header(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    if !u.ratio(15, 16)? {
        return u.arbitrary();
    }
    let mut members = Vec::new();
    let alg = pick(
        u,
        &["HS256", "HS256", "HS256", "hs256", "none", "HS512", "RS256"],
    )?;
    member(
        &mut members,
        "alg",
        value(u, &serde_json::Value::from(alg).to_string())?,
        u,
    )?;
    let typ = pick(
        u,
        &["at+jwt", "rt+jwt", "application/at+jwt", "AT+JWT", "JWT"],
    )?;
    member(
        &mut members,
        "typ",
        value(u, &serde_json::Value::from(typ).to_string())?,
        u,
    )?;
    let kid = pick(u, &["a1", "a1", "r1", "r1", "a2"])?;
    member(
        &mut members,
        "kid",
        value(u, &serde_json::Value::from(kid).to_string())?,
        u,
    )?;
    if !u.ratio(15, 16)? {
        members.push(("crit".into(), r#"["exp"]"#.into()));
    }
    if !u.ratio(15, 16)? {
        members.push(("cty".into(), r#""JWT""#.into()));
    }
    if !u.ratio(7, 8)? {
        let key = pick(u, &["x5u", "jku", "b64"])?;
        members.push((key, value(u, "false")?));
    }
    Ok(object(&members).into_bytes())
}

fn payload(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    if !u.ratio(15, 16)? {
        return u.arbitrary();
    }
    let mut members = Vec::new();
    let text = |s: String| serde_json::Value::from(s).to_string();
    let sub = pick(u, &["user-42", "user-42", "", "ünï"])?;
    member(&mut members, "sub", value(u, &text(sub))?, u)?;
    let jti = pick(u, &["jti-1", "jti-1", ""])?;
    member(&mut members, "jti", value(u, &text(jti))?, u)?;
    if u.ratio(1, 2)? {
        let sid = pick(u, &["session-7"])?;
        members.push(("sid".into(), value(u, &text(sid))?));
    }
    member(&mut members, "exp", time(u)?, u)?;
    member(&mut members, "nbf", time(u)?, u)?;
    member(&mut members, "iat", time(u)?, u)?;
    let iss = pick(u, &[ISSUER, ISSUER, ISSUER, "https://evil.example.com", ""])?;
    member(&mut members, "iss", value(u, &text(iss))?, u)?;
    let aud = match u.int_in_range(0..=4u8)? {
        0 | 1 => text(AUDIENCE.into()),
        2 => format!(r#"["other",{}]"#, text(AUDIENCE.into())),
        3 => r#"["other"]"#.to_owned(),
        _ => text(pick(u, &["API", "api "])?),
    };
    member(&mut members, "aud", value(u, &aud)?, u)?;
    let token_type = pick(u, &["access", "access", "refresh", "refresh", "Access"])?;
    member(&mut members, "type", value(u, &text(token_type))?, u)?;
    if u.ratio(1, 4)? {
        let role = pick(u, &["admin", "user", "Admin"])?;
        members.push(("role".into(), value(u, &text(role))?));
    }
    if u.ratio(1, 4)? {
        members.push(("permissions".into(), value(u, r#"["a:read"]"#)?));
    }
    if u.ratio(1, 4)? {
        members.push(("scope".into(), value(u, r#""read write""#)?));
    }
    if !u.ratio(7, 8)? {
        let key = pick(u, &["custom", "exp ", "EXP"])?;
        members.push((key, value(u, "1")?));
    }
    Ok(object(&members).into_bytes())
}

/// Whether the header names the refresh key: the token is signed with the
/// secret of the `kid` it names, unless the input says otherwise.
fn refresh_kid(header: &[u8]) -> bool {
    header.windows(10).any(|window| window == br#""kid":"r1""#)
}

/// `header.payload.signature` with the secret the input picks.
fn sign(header: &[u8], payload: &[u8], refresh_key: bool) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let secret = if refresh_key {
        REFRESH_SECRET
    } else {
        ACCESS_SECRET
    };
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
    .expect("HMAC signing does not fail");
    format!("{message}.{signature}")
}

/// What every accepted token's registered claims satisfy.
fn check_registered(object: &serde_json::Value, token_type: TokenType) {
    let leeway = policy().leeway();
    let time = |name: &str| object.get(name).and_then(serde_json::Value::as_u64);
    let exp = time("exp").expect("accepted: a numeric exp");
    assert!(NOW < exp.saturating_add(leeway), "accepted: exp {exp} past");
    for name in ["nbf", "iat"] {
        if object.get(name).is_some() {
            let at = time(name).expect("accepted: a numeric nbf/iat");
            assert!(at <= NOW + leeway, "accepted: {name} {at} in the future");
        }
    }
    assert_eq!(object["iss"], ISSUER, "accepted: the issuer");
    let aud = &object["aud"];
    assert!(
        aud == AUDIENCE
            || aud
                .as_array()
                .is_some_and(|all| all.iter().any(|one| one == AUDIENCE)),
        "accepted: the audience, got {aud}"
    );
    let expected = match token_type {
        TokenType::Access => "access",
        TokenType::Refresh => "refresh",
    };
    assert_eq!(object["type"], expected, "accepted: the type");
}

fn check_typ(header: &[u8], token_type: TokenType) {
    let header: serde_json::Value =
        serde_json::from_slice(header).expect("accepted: a JSON header");
    let typ = header["typ"]
        .as_str()
        .expect("accepted: a typ")
        .to_ascii_lowercase();
    let typ = typ.strip_prefix("application/").unwrap_or(&typ);
    assert_eq!(typ, token_type.typ(), "accepted: the typ");
    assert_eq!(header["alg"], "HS256", "accepted: the key's algorithm");
    assert!(header.get("cty").is_none() && header.get("crit").is_none());
}

/// Palisade's claims of an accepted token, signed again, verify to the
/// same claims.
fn round_trip(header: &[u8], claims: &Claims<NoCustomClaims>, token_type: TokenType) {
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    let again = sign(header, &payload, token_type == TokenType::Refresh);
    let verified = match token_type {
        TokenType::Access => verifier().verify_access::<NoCustomClaims>(&again),
        TokenType::Refresh => verifier().verify_refresh(&again),
    };
    assert_eq!(verified.as_ref(), Ok(claims), "accepted claims round-trip");
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(header), Ok(payload), Ok(right_key)) = (header(&mut u), payload(&mut u), u.ratio(7, 8))
    else {
        return;
    };
    let refresh_key = refresh_kid(&header) == right_key;
    let token = sign(&header, &payload, refresh_key);
    let verifier = verifier();
    for token_type in [TokenType::Access, TokenType::Refresh] {
        let claims = match token_type {
            TokenType::Access => verifier.verify_access::<NoCustomClaims>(&token),
            TokenType::Refresh => verifier.verify_refresh(&token),
        };
        let generic = verifier.verify::<serde_json::Value>(&token, token_type);
        if let Ok(object) = &generic {
            check_typ(&header, token_type);
            check_registered(object, token_type);
            let parsed: serde_json::Value =
                serde_json::from_slice(&payload).expect("accepted: a JSON payload");
            assert_eq!(object, &parsed, "accepted: the payload as sent");
        }
        if let Ok(claims) = &claims {
            check_typ(&header, token_type);
            let object = serde_json::to_value(claims).expect("claims serialize");
            check_registered(&object, token_type);
            round_trip(&header, claims, token_type);
            assert!(
                generic.is_ok(),
                "accepted with Palisade's claims, not as JSON"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The property does reach claim validation: a well-formed case is
    /// accepted, and the same case with `exp` in the past is not.
    #[test]
    fn a_valid_signed_token_is_accepted_and_checked() {
        let header = br#"{"alg":"HS256","typ":"at+jwt","kid":"a1"}"#;
        let payload = format!(
            r#"{{"sub":"user-42","jti":"j","exp":{},"iat":{NOW},"iss":"{ISSUER}","aud":"{AUDIENCE}","type":"access"}}"#,
            NOW + 60
        );
        let token = sign(header, payload.as_bytes(), false);
        let claims = verifier()
            .verify_access::<NoCustomClaims>(&token)
            .expect("accepted");
        round_trip(header, &claims, TokenType::Access);
        let expired = payload.replace(&(NOW + 60).to_string(), &(NOW - 31).to_string());
        let token = sign(header, expired.as_bytes(), false);
        assert!(verifier().verify_access::<NoCustomClaims>(&token).is_err());
    }

    /// Each seed is what its name says: the property reaches acceptance
    /// (access and refresh) and each claim check.
    #[test]
    fn the_seeds_reach_acceptance_and_each_claim_check() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/jwt_claims");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("seeds") {
            let path = entry.expect("seed").path();
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .expect("name");
            let data = std::fs::read(&path).expect("seed");
            let mut u = Unstructured::new(&data);
            let header = header(&mut u).expect("header");
            let payload = payload(&mut u).expect("payload");
            let right_key = u.ratio(7, 8).expect("key");
            let token = sign(&header, &payload, refresh_kid(&header) == right_key);
            let access = verifier().verify_access::<NoCustomClaims>(&token);
            let refresh = verifier().verify_refresh(&token);
            match name.strip_prefix("refused_") {
                Some(kind) => assert_eq!(
                    access.map(|_| ()).map_err(|error| error.kind().as_str()),
                    Err(kind),
                    "{name}"
                ),
                None if name == "accepted_refresh" => assert!(refresh.is_ok(), "{name}"),
                None => assert!(access.is_ok(), "{name}"),
            }
            run(&data);
            seen += 1;
        }
        assert!(seen >= 8, "{seen} seeds");
    }

    #[test]
    fn random_inputs_hold_the_property() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            let bytes: Vec<u8> = (0..96)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            run(&bytes);
        }
    }
}
