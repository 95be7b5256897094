//! Hashing and verification rules: PHC output, the needs_rehash table,
//! peppers, NFKC, the DoS caps, dummy_verify.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::{Duration, Instant};

use palisade_passwords::{
    Argon2Params, ConfigErrorKind, HashErrorKind, HashInfo, HashScheme, HasherConfig,
    PasswordHasher, Pepper,
};
use secrecy::{SecretSlice, SecretString};

fn secret(text: &str) -> SecretString {
    SecretString::from(text)
}

fn pepper(id: &str, byte: u8) -> Pepper {
    Pepper::new(id, SecretSlice::from(vec![byte; 32])).unwrap()
}

/// A cheap hasher for tests of rules, not of cost: m = 8 MiB, t = 5 (just
/// above OWASP's floor of m·t ≥ 35,840 KiB).
fn cheap() -> PasswordHasher {
    PasswordHasher::with_config(HasherConfig {
        argon2: Argon2Params {
            memory_kib: 7168,
            iterations: 5,
            parallelism: 1,
        },
        ..HasherConfig::default()
    })
    .unwrap()
}

#[test]
fn new_hashes_are_argon2id_phc_at_owasp_parameters_with_a_random_salt() {
    let hasher = PasswordHasher::new();
    let started = Instant::now();
    let first = hasher
        .hash(&secret("correct horse battery staple"))
        .unwrap();
    let took = started.elapsed();
    let second = hasher
        .hash(&secret("correct horse battery staple"))
        .unwrap();
    assert!(
        first
            .as_str()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{first:?}"
    );
    assert_ne!(first, second, "a fresh salt each time");
    let info = HashInfo::parse(first.as_str()).unwrap();
    assert_eq!(info.scheme(), HashScheme::Argon2id);
    assert_eq!(format!("{first:?}"), "PasswordHash(argon2id, ..)");
    let verified = hasher.verify(&secret("correct horse battery staple"), first.as_str());
    assert!(!verified.unwrap().needs_rehash);
    assert!(
        took < Duration::from_secs(5),
        "one OWASP hash took {took:?}"
    );
}

#[test]
fn needs_rehash_table() {
    let hasher = PasswordHasher::new();
    let salt = "c29tZXNhbHRzb21lc2FsdA";
    let tag = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let cases = [
        (
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned(),
            true,
        ),
        (
            format!("$argon2id$v=19$m=19456,t=2,p=1${salt}${tag}"),
            false,
        ),
        (format!("$argon2id$v=19$m=12288,t=2,p=1${salt}${tag}"), true),
        (
            format!("$argon2id$v=19$m=65536,t=2,p=1${salt}${tag}"),
            false,
        ),
        (format!("$argon2id$v=19$m=19456,t=1,p=1${salt}${tag}"), true),
        (
            format!("$argon2id$v=19$m=19456,t=3,p=4${salt}${tag}"),
            false,
        ),
        (format!("$argon2i$v=19$m=19456,t=2,p=1${salt}${tag}"), true),
        (format!("$argon2d$v=19$m=19456,t=2,p=1${salt}${tag}"), true),
        (format!("$argon2id$v=16$m=19456,t=2,p=1${salt}${tag}"), true),
        (
            format!("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ${tag}"),
            true,
        ),
        (
            format!("$argon2id$v=19$m=19456,t=2,p=1,keyid=old${salt}${tag}"),
            true,
        ),
    ];
    for (stored, expected) in cases {
        assert_eq!(hasher.needs_rehash(&stored).unwrap(), expected, "{stored}");
    }
    assert_eq!(
        hasher.needs_rehash("$argon2id$").unwrap_err().kind(),
        HashErrorKind::MalformedHash
    );
}

#[test]
fn a_stronger_policy_asks_for_a_rehash_and_a_weaker_one_does_not() {
    let weaker = PasswordHasher::with_config(HasherConfig {
        argon2: Argon2Params {
            memory_kib: 17_920,
            iterations: 2,
            parallelism: 1,
        },
        ..HasherConfig::default()
    })
    .unwrap();
    let old = weaker.hash(&secret("pw")).unwrap();
    let stronger = PasswordHasher::new();
    assert!(
        stronger
            .verify(&secret("pw"), old.as_str())
            .unwrap()
            .needs_rehash
    );
    let new = stronger.hash(&secret("pw")).unwrap();
    assert!(
        !weaker
            .verify(&secret("pw"), new.as_str())
            .unwrap()
            .needs_rehash
    );
}

#[test]
fn peppered_hashes_rotate() {
    let v1 = cheap().with_pepper(pepper("p1", 1)).unwrap();
    let hash = v1.hash(&secret("hunter2hunter2")).unwrap();
    assert!(hash.as_str().contains(",keyid=p1$"));
    assert!(
        !v1.verify(&secret("hunter2hunter2"), hash.as_str())
            .unwrap()
            .needs_rehash
    );
    // Without the pepper the hash cannot be checked at all.
    let error = cheap()
        .verify(&secret("hunter2hunter2"), hash.as_str())
        .unwrap_err();
    assert_eq!(error.kind(), HashErrorKind::UnknownPepper);
    // A wrong key under the same id does not verify.
    let impostor = cheap().with_pepper(pepper("p1", 9)).unwrap();
    assert!(
        impostor
            .verify(&secret("hunter2hunter2"), hash.as_str())
            .unwrap_err()
            .is_mismatch()
    );
    // Rotation: p2 current, p1 previous → verifies, needs a rehash.
    let v2 = cheap()
        .with_pepper(pepper("p2", 2))
        .unwrap()
        .with_previous_pepper(pepper("p1", 1))
        .unwrap();
    assert!(
        v2.verify(&secret("hunter2hunter2"), hash.as_str())
            .unwrap()
            .needs_rehash
    );
    // An unpeppered hash under a peppered hasher: verifies, rehash.
    let plain = cheap().hash(&secret("hunter2hunter2")).unwrap();
    assert!(
        v2.verify(&secret("hunter2hunter2"), plain.as_str())
            .unwrap()
            .needs_rehash
    );
    assert_eq!(
        Pepper::new("p 1", SecretSlice::from(vec![0; 32]))
            .unwrap_err()
            .kind(),
        ConfigErrorKind::InvalidPepper
    );
    assert!(Pepper::new("p1", SecretSlice::from(vec![0; 31])).is_err());
    assert!(
        v2.with_previous_pepper(pepper("p2", 3)).is_err(),
        "duplicate id"
    );
    assert!(!format!("{:?}", pepper("p1", 0x41)).contains("AAAA"));
}

#[test]
fn new_hashes_are_of_the_nfkc_form() {
    let hasher = cheap();
    // U+FB01 LATIN SMALL LIGATURE FI normalizes to "fi"; é composed or not.
    let hash = hasher.hash(&secret("\u{fb01}anc\u{e9}")).unwrap();
    for same in ["fianc\u{e9}", "fiance\u{301}", "\u{fb01}ance\u{301}"] {
        let verified = hasher.verify(&secret(same), hash.as_str()).unwrap();
        assert!(!verified.needs_rehash, "{same:?}");
    }
    assert!(
        hasher
            .verify(&secret("FIANCÉ"), hash.as_str())
            .unwrap_err()
            .is_mismatch()
    );
}

#[test]
fn a_one_megabyte_password_is_refused_before_hashing() {
    let hasher = PasswordHasher::new();
    let huge = secret(&"a".repeat(1 << 20));
    let started = Instant::now();
    assert_eq!(
        hasher.hash(&huge).unwrap_err().kind(),
        HashErrorKind::PasswordTooLong
    );
    let stored = hasher.hash(&secret("short")).unwrap();
    let error = hasher.verify(&huge, stored.as_str()).unwrap_err();
    assert_eq!(error.kind(), HashErrorKind::PasswordTooLong);
    assert_eq!(
        hasher.dummy_verify(&huge).kind(),
        HashErrorKind::PasswordTooLong
    );
    let refusals = started.elapsed();
    // The refusals cost nothing next to one hash (the one in the middle).
    assert!(refusals < Duration::from_secs(5), "{refusals:?}");
    let exact = secret(&"a".repeat(1024));
    assert!(
        hasher.hash(&exact).is_ok(),
        "1024 bytes is the cap, inclusive"
    );
}

#[test]
fn crafted_stored_hashes_over_the_caps_are_refused_quickly() {
    let hasher = PasswordHasher::new();
    let salt = "c29tZXNhbHRzb21lc2FsdA";
    let tag = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    for planted in [
        format!("$argon2id$v=19$m=4194304,t=2,p=1${salt}${tag}"), // 4 GiB
        format!("$argon2id$v=19$m=4294967295,t=4294967295,p=1${salt}${tag}"),
        format!("$argon2id$v=19$m=19456,t=21,p=1${salt}${tag}"),
        format!("$argon2id$v=19$m=19456,t=2,p=64${salt}${tag}"),
        "$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".to_owned(),
        "$2b$17$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW".to_owned(),
    ] {
        let started = Instant::now();
        let error = hasher.verify(&secret("pw"), &planted).unwrap_err();
        let took = started.elapsed();
        assert_eq!(error.kind(), HashErrorKind::ParamsOverCap, "{planted}");
        assert!(took < Duration::from_millis(50), "{planted}: {took:?}");
    }
    // Malformed: an error, never a panic, never work.
    for garbage in ["", "$", "$argon2id$v=19$m=,t=,p=$$", "$2b$05$", "plaintext"] {
        let error = hasher.verify(&secret("pw"), garbage).unwrap_err();
        assert_eq!(error.kind(), HashErrorKind::MalformedHash, "{garbage:?}");
    }
}

#[test]
fn configuration_below_the_floor_or_above_the_caps_is_refused() {
    for (m, t, p) in [(4096, 1, 1), (19_456, 0, 1), (8, 10, 2), (2_000_000, 2, 1)] {
        let config = HasherConfig {
            argon2: Argon2Params {
                memory_kib: m,
                iterations: t,
                parallelism: p,
            },
            ..HasherConfig::default()
        };
        let error = PasswordHasher::with_config(config).unwrap_err();
        assert_eq!(
            error.kind(),
            ConfigErrorKind::InvalidHashParams,
            "{m} {t} {p}"
        );
    }
    let from_toml_like: HasherConfig = serde_json::from_str(
        r#"{"argon2": {"memory_kib": 47104, "iterations": 1, "parallelism": 1}}"#,
    )
    .unwrap();
    assert_eq!(from_toml_like.max_password_bytes, 1024);
    assert!(PasswordHasher::with_config(from_toml_like).is_ok());
}

#[test]
fn dummy_verify_costs_what_a_real_verify_costs() {
    let hasher = PasswordHasher::new();
    let stored = hasher.hash(&secret("real password")).unwrap();
    let _warm = hasher.dummy_verify(&secret("x")); // builds the fixed hash once
    // Interleaved, the fastest of seven of each: other tests share the cores.
    let mut real = Duration::MAX;
    let mut dummy = Duration::MAX;
    for _ in 0..7 {
        let started = Instant::now();
        let _ = hasher.verify(&secret("wrong password"), stored.as_str());
        real = real.min(started.elapsed());
        let started = Instant::now();
        assert!(hasher.dummy_verify(&secret("wrong password")).is_mismatch());
        dummy = dummy.min(started.elapsed());
    }
    let ratio = dummy.as_secs_f64() / real.as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "real {real:?}, dummy {dummy:?}"
    );
}
