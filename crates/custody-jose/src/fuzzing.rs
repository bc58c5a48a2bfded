//! The bodies of the `jws_compact`, `jwk_json` and `jwe_compact` cargo-fuzz targets in
//! `fuzz/`. **Not part of the API**: hidden from the docs, and free to
//! change in any release.
//!
//! `fuzz/fuzz_targets/<name>.rs` calls `fuzz_<name>` in one line, and
//! `tests/fuzz_corpus.rs` (stable, in CI) feeds it every input under
//! `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/`. They **panic when a
//! property fails**.

use std::sync::LazyLock;

use std::sync::Arc;

use custody_core::{
    Authorization, DataKey, KekId, KeyAlgorithm, KeyId, KeyRef, LocalKek, PinnedKey,
    PrivateKeyBytes, SharedBackend, Vault, WalletScheme,
};

use crate::jwe::{self, CompactJwe, OpenError, Scope};
use crate::jws::{self, CompactJws};
use crate::{Jwk, JwkSet, Validation, jwt};

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("jws_compact", fuzz_jws_compact),
    ("jwk_json", fuzz_jwk_json),
    ("jwe_compact", fuzz_jwe_compact),
];

/// The TEST-ONLY P-256 recipient key of `vectors/jose/jwe.json` (its `d`):
/// the `jwe_compact` seeds are that file's JWEs, so fuzzing starts from
/// inputs that open.
pub const FUZZ_JWE_KEY: [u8; 32] = [
    0x0d, 0x43, 0x9d, 0x96, 0x01, 0xd8, 0x63, 0x18, 0x14, 0xa9, 0x6e, 0xe6, 0x13, 0xc7, 0xe3, 0x2d,
    0xa6, 0xc7, 0xfc, 0x41, 0x16, 0xf2, 0x68, 0x36, 0x64, 0x71, 0xf0, 0x00, 0x24, 0xba, 0xba, 0xb9,
];

/// The scope the `jwe_compact` target opens as (the vectors').
pub const FUZZ_JWE_SCOPE: &str = "importer/api-keys";

/// A vault holding [`FUZZ_JWE_KEY`], and that key pinned.
#[expect(clippy::panic, reason = "the fixed key not loading is a bug")]
static RECIPIENT: LazyLock<(SharedBackend, PinnedKey)> = LazyLock::new(|| {
    let build = || -> Result<(SharedBackend, PinnedKey), custody_core::Error> {
        let kek: SharedBackend = Arc::new(LocalKek::from_key(
            KekId::new("fuzz-kek")?,
            DataKey::new([7; 32]),
        ));
        let vault = Vault::new(kek, WalletScheme::Default);
        vault.insert_algorithm_key(
            KeyId::new("fuzz-jwe")?,
            KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&FUZZ_JWE_KEY)?,
        )?;
        let backend: SharedBackend = Arc::new(vault);
        let signing = backend
            .signing()
            .ok_or(custody_core::Error::Unsupported("no signing"))?;
        let key = signing
            .pin(&KeyRef::Stored(KeyId::new("fuzz-jwe")?))
            .wait()?;
        Ok((backend, key))
    };
    match build() {
        Ok(r) => r,
        Err(e) => panic!("the fuzz recipient does not load: {e}"),
    }
});

/// Opens `text` as [`FUZZ_JWE_SCOPE`] with [`FUZZ_JWE_KEY`] through the
/// vault (what the corpus test counts as accepted).
///
/// # Errors
/// As [`jwe::open`].
#[expect(clippy::panic, reason = "the fixed scope not reading is a bug")]
pub fn open_fuzz_jwe(text: &str) -> Result<Vec<u8>, OpenError> {
    let Ok(scope) = Scope::new(FUZZ_JWE_SCOPE) else {
        panic!("the fuzz scope does not read");
    };
    let (backend, key) = &*RECIPIENT;
    jwe::open(backend.as_ref(), key, text, &scope, &Authorization::none())
        .wait()
        .map(|s| s.expose_secret().to_vec())
}

/// A compact JWE: never a panic; an accepted one writes back to the very
/// bytes read and re-parses equal; opening it through the vault gives a
/// parse error exactly when parsing does (the same one), and otherwise a
/// plaintext or a typed error, the same on a second try.
#[expect(clippy::panic, reason = "a fuzz property failing is a panic")]
pub fn fuzz_jwe_compact(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opened = open_fuzz_jwe(text);
    let parsed = match CompactJwe::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            match opened {
                Err(OpenError::Jose(j)) => assert_eq!(j, e, "open and parse disagree"),
                other => panic!("a refused JWE opened otherwise: {other:?}"),
            }
            return;
        }
    };
    let compact = parsed.to_compact();
    assert_eq!(compact, text, "an accepted JWE writes back differently");
    match CompactJwe::parse(&compact) {
        Ok(again) => assert_eq!(again, parsed, "the written JWE re-parses differently"),
        Err(e) => panic!("the written JWE is refused: {e}"),
    }
    let again = open_fuzz_jwe(text);
    match (&opened, &again) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "two opens disagree"),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "two opens disagree"),
        _ => panic!("two opens disagree"),
    }
    if let Err(OpenError::Jose(e)) = &opened {
        // A parsed JWE is refused as JOSE only for a key of another
        // algorithm: the fixed P-256 key for an RSA JWE.
        assert!(
            parsed.header().alg() == jwe::JweAlgorithm::RsaOaep256
                && *e == crate::JoseError::AlgorithmMismatch,
            "a parsed JWE refused as malformed: {e}"
        );
    }
}

/// The fixed key set tokens are verified against: one key per algorithm,
/// those of the first jwcrypto token of each in `vectors/jose/jws.json`
/// (the `jws_compact` seeds are those tokens).
pub const FUZZ_JWKS: &str = r#"{"keys":[{"crv":"P-256","kid":"y_Hfciq95RZem7KzHLPlwVxk6PcSafoAkxQemZKWQAE","kty":"EC","x":"4uQAwNSepCcEiut_Dx3cqLmAz-OfJlDSecoPa6Atkls","y":"ClnPkCGEAXtYyTTSFaLM2lEuESrjVn7hKP8wxcMoEzo"},{"crv":"secp256k1","kid":"h9CrWp9cg-MHB0xS_HRs6KCOJy31qKZo-r-_jrCpvkg","kty":"EC","x":"RawAh4IqBN_hlN3bLNCDnb_d5aqx9PgQZ4YTVnExutk","y":"VUjcBlRcqaoU6aqxBYRE7jSIDMKq-utGzeQPUGOSYB4"},{"alg":"RS256","e":"AQAB","kid":"_cjgwc-O_nI07lj6Kyjbcut-d5bw9kXaDYQQhLdWgMI","kty":"RSA","n":"7B4TXjiaL_VpUvnk6mhU59QH-UKXCdBiHXUWh-PhWsCrqSeHTD_O1OP2trVe5whu7xmL67vIk9V6Qw12WZ-85267XUClEMECY-A7qnBqJbc2JILO2q9U1YUGMr4hNsF_gtXPM7xRPl0usZe1BzhaeHNH---zz7GZRatSSY076wvRh1PXUtr_Ah4Da9G1q82ddxdmfp0z9h15IEUcs6Y65VVSJe8IzqjS1ziRj-Q0AZzDJFt2tyF9iutbdQm1TfoxKCyqJYuy5Ri5Tv3RctZTm2lnNdXkgnrVQ5wjrymPrm0bQARjo-jrND8jOjZJtuhUocVWdAOdzfDk603vPqC5QQ"},{"alg":"PS256","e":"AQAB","kid":"gCUQbO8zkNZnd2T_I-x5uWfZCLI6wB1bBtqaWNt-cLQ","kty":"RSA","n":"wOuolgtN-Zln_9EoYcehlwsD1YOyJQys_kdQfD8CuV5SAihp0ArZ41Tmo_6RVNLzGSBFazZQelDm9uz692NLaXsSLs9FdaNrg_bM9BG3TYc526DGU8VaOcqwM6HFTnPT83GCvUaViyryBJP0Ct31puWx2GKz4KdZG4tg16H5V7CRSR0N_s0UcakWFxaN1AQv6OPPnlUXck-zxrurtOcGA_Sg6UJUwVxQqvdsHvaV4F2qufC5lzQ7NOn3rGyODDEv6y0yxS2QH8yDcWzMQSCIGGg15iCtzuVlkxC3cpNQ4QW8lsnbi939MuMu28LpmxMx81avGU7JpDVsUE0h3E67Jw"},{"crv":"Ed25519","kid":"66_j-hr5rEgnqchvKKlIs22hR6us5g1LDtwZ2ICSKIc","kty":"OKP","x":"SWjHmFfQbLZlUV02wMD860UZXIAajdXUKbCi7WIxeVk"}]}"#;

#[expect(clippy::panic, reason = "the fixed key set not reading is a bug")]
static KEYS: LazyLock<JwkSet> = LazyLock::new(|| match JwkSet::from_json(FUZZ_JWKS.as_bytes()) {
    Ok(keys) => keys,
    Err(e) => panic!("the fuzz key set does not read: {e}"),
});

/// A compact JWS: never a panic; parsing then verifying gives exactly what
/// `jws::verify` gives; an accepted token writes back to the very bytes
/// read and re-parses equal; a verified one carries the parsed payload, and
/// the JWT checks over it answer with a value or a typed error.
#[expect(clippy::panic, reason = "a fuzz property failing is a panic")]
pub fn fuzz_jws_compact(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let direct = jws::verify(text, &KEYS);
    let parsed = match CompactJws::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert_eq!(direct, Err(e), "verify and parse disagree");
            return;
        }
    };
    let compact = parsed.to_compact();
    assert_eq!(compact, text, "an accepted token writes back differently");
    match CompactJws::parse(&compact) {
        Ok(again) => assert_eq!(again, parsed, "the written token re-parses differently"),
        Err(e) => panic!("the written token is refused: {e}"),
    }
    let verified = parsed.verify(&KEYS);
    assert_eq!(verified, direct, "two paths to a verdict disagree");
    if let Ok(verified) = verified {
        assert_eq!(verified.payload(), parsed.payload());
        assert_eq!(verified.header(), parsed.header());
        let validation = Validation::new(1_800_000_001).with_require_exp(false);
        let _ = jwt::verify(text, &KEYS, &validation);
    }
}

/// A JWK or a JWK Set: never a panic; an accepted key or set writes JSON
/// that reads back to the same keys with the same thumbprints, and writes
/// the same JSON again.
#[expect(clippy::panic, reason = "a fuzz property failing is a panic")]
pub fn fuzz_jwk_json(data: &[u8]) {
    if let Ok(key) = Jwk::from_json(data) {
        let json = key.to_json();
        match Jwk::from_json(json.as_bytes()) {
            Ok(again) => {
                assert_eq!(again, key, "a written key reads back differently");
                assert_eq!(again.thumbprint(), key.thumbprint());
                assert_eq!(again.to_json(), json, "the written form moved");
            }
            Err(e) => panic!("a written key is refused: {e}"),
        }
        let _ = key.verification_algorithm();
    }
    if let Ok(set) = JwkSet::from_json(data) {
        let json = set.to_json();
        match JwkSet::from_json(json.as_bytes()) {
            Ok(again) => {
                assert_eq!(
                    again.keys(),
                    set.keys(),
                    "a written set reads back differently"
                );
                assert_eq!(again.skipped(), 0, "a written set has unknown keys");
                for (a, b) in again.keys().iter().zip(set.keys()) {
                    assert_eq!(a.thumbprint(), b.thumbprint());
                }
                assert_eq!(again.to_json(), json, "the written form moved");
            }
            Err(e) => panic!("a written set is refused: {e}"),
        }
    }
}
