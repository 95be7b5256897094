//! Arbitrary stored-hash strings (a database row an attacker may have
//! written) through the PHC/bcrypt parser and `verify` with a fixed password:
//! never a panic, never slow — a hash over the caps is refused before any
//! hashing — and a parsed hash re-renders to a string that parses to the
//! same value (the very input, when it names its argon2 version).

use palisade_passwords::{
    Argon2Params, HashErrorKind, HashInfo, HashScheme, HasherConfig, PasswordHasher, Pepper,
    VerifyCaps,
};
use secrecy::{SecretSlice, SecretString};

/// The password every stored hash is verified against (the seeds hold
/// hashes of it, so the match path is exercised too).
pub const PASSWORD: &str = "correct horse battery staple";
/// The pepper id the fuzz hasher holds (`keyid=fuzz` verifies).
const PEPPER_ID: &str = "fuzz";
/// Argon2 work (m·t, KiB-passes) up to which a parsed hash within the caps
/// is verified: a few milliseconds. Dearer hashes within the caps cost
/// argon2's time, not the parser's, and are only parsed.
const VERIFY_BUDGET: u64 = 8192;

/// Caps as tight as a valid configuration allows (m·t at OWASP's floor), so
/// a hash within them is cheap and a hash over them must be refused.
fn tight() -> PasswordHasher {
    let config = HasherConfig {
        argon2: Argon2Params {
            memory_kib: 7168,
            iterations: 5,
            parallelism: 1,
        },
        caps: VerifyCaps {
            max_memory_kib: 8192,
            max_iterations: 5,
            max_parallelism: 4,
            max_bcrypt_cost: 5,
        },
        max_password_bytes: 1024,
    };
    let pepper = Pepper::new(PEPPER_ID, SecretSlice::from(vec![7u8; 32]));
    // Invariant: a fixed, valid configuration.
    #[allow(clippy::expect_used)]
    PasswordHasher::with_config(config)
        .and_then(|hasher| hasher.with_pepper(pepper?))
        .expect("valid fuzz hasher configuration")
}

fn over(info: &HashInfo, caps: &VerifyCaps) -> bool {
    match info.scheme() {
        HashScheme::Bcrypt => info.bcrypt_cost().unwrap_or(0) > caps.max_bcrypt_cost,
        _ => {
            info.memory_kib().unwrap_or(0) > caps.max_memory_kib
                || info.iterations().unwrap_or(0) > caps.max_iterations
                || info.parallelism().unwrap_or(0) > caps.max_parallelism
        }
    }
}

/// `info` written back out, with the salt and tag text of `stored`.
fn render(info: &HashInfo, stored: &str) -> String {
    if info.scheme() == HashScheme::Bcrypt {
        // `$2b$` + two cost digits + `$` + 53 characters of salt and tag.
        return format!(
            "{}{:02}{}",
            stored.get(..4).unwrap_or_default(),
            info.bcrypt_cost().unwrap_or(0),
            stored.get(6..).unwrap_or_default()
        );
    }
    let mut fields = stored.rsplitn(3, '$');
    let tag = fields.next().unwrap_or_default();
    let salt = fields.next().unwrap_or_default();
    let keyid = info
        .pepper_id()
        .map(|id| format!(",keyid={id}"))
        .unwrap_or_default();
    format!(
        "${}$v={}$m={},t={},p={}{keyid}${salt}${tag}",
        info.scheme().as_str(),
        info.version(),
        info.memory_kib().unwrap_or(0),
        info.iterations().unwrap_or(0),
        info.parallelism().unwrap_or(0),
    )
}

/// The property: panics when it does not hold.
pub fn run(data: &[u8]) {
    let stored = String::from_utf8_lossy(data);
    let stored = stored.as_ref();
    let hasher = tight();
    let password = SecretString::from(PASSWORD);
    let verified = |hasher: &PasswordHasher| hasher.verify(&password, stored);

    let info = match HashInfo::parse(stored) {
        Ok(info) => info,
        Err(error) => {
            assert_eq!(error.kind(), HashErrorKind::MalformedHash);
            assert!(hasher.needs_rehash(stored).is_err());
            let refused = verified(&hasher).expect_err("a malformed hash never verifies");
            assert_eq!(refused.kind(), HashErrorKind::MalformedHash);
            return;
        }
    };

    // Canonical: one text per value, and the rendering parses back to it.
    let again = render(&info, stored);
    assert_eq!(
        HashInfo::parse(&again).ok(),
        Some(info.clone()),
        "{again:?}"
    );
    let names_version = stored.contains("$v=") || info.scheme() == HashScheme::Bcrypt;
    if names_version {
        assert_eq!(again, stored, "the parser accepted a non-canonical form");
    }
    let needs_rehash = hasher
        .needs_rehash(stored)
        .expect("the parser and needs_rehash agree");

    // A hash over the default caps is refused by a default hasher before
    // any work (m = 4 GiB would otherwise allocate it).
    if over(&info, &VerifyCaps::default()) {
        let refused = verified(&PasswordHasher::new()).expect_err("over the caps");
        assert_eq!(refused.kind(), HashErrorKind::ParamsOverCap);
    }
    if over(&info, &hasher.config().caps) {
        let refused = verified(&hasher).expect_err("over the caps");
        assert_eq!(refused.kind(), HashErrorKind::ParamsOverCap);
        return;
    }
    let work =
        u64::from(info.memory_kib().unwrap_or(0)) * u64::from(info.iterations().unwrap_or(0));
    if work > VERIFY_BUDGET {
        return;
    }
    match verified(&hasher) {
        // Judged from the hash alone it needs a rehash, so it does when
        // the password matches.
        Ok(verified) => assert!(verified.needs_rehash || !needs_rehash),
        Err(error) => match error.kind() {
            HashErrorKind::Mismatch => {}
            HashErrorKind::UnknownPepper => {
                assert!(info.pepper_id().is_some_and(|id| id != PEPPER_ID));
            }
            other => panic!("a parsed hash within the caps gave {other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(name: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/phc_parse");
        String::from_utf8_lossy(&std::fs::read(format!("{dir}/{name}")).expect("seed")).into_owned()
    }

    /// The seeds reach what their names say: a match, a mismatch under the
    /// pepper, a refusal over the caps, a malformed string.
    #[test]
    fn the_seeds_reach_each_outcome() {
        let hasher = tight();
        let password = SecretString::from(PASSWORD);
        for name in ["argon2id_valid", "bcrypt_2b"] {
            let verified = hasher.verify(&password, &seed(name)).expect(name);
            assert!(
                verified.needs_rehash,
                "{name}: below the fuzz hasher's parameters"
            );
        }
        let kind = |name: &str, hasher: &PasswordHasher| {
            hasher
                .verify(&password, &seed(name))
                .map_err(|error| error.kind())
                .err()
        };
        assert_eq!(
            kind("argon2i_no_version_keyid", &hasher),
            Some(HashErrorKind::Mismatch)
        );
        assert_eq!(
            kind("over_cap_memory", &PasswordHasher::new()),
            Some(HashErrorKind::ParamsOverCap)
        );
        for name in ["truncated", "garbage"] {
            assert_eq!(kind(name, &hasher), Some(HashErrorKind::MalformedHash));
        }
    }

    /// A sign in bcrypt's cost is not a second spelling of it.
    #[test]
    fn a_signed_bcrypt_cost_is_malformed() {
        let signed = seed("bcrypt_2b").replacen("$05$", "$+5$", 1);
        assert!(HashInfo::parse(&signed).is_err());
    }
}
