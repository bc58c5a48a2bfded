//! The bodies of the `jws_compact` and `jwk_json` cargo-fuzz targets in
//! `fuzz/`. **Not part of the API**: hidden from the docs, and free to
//! change in any release.
//!
//! `fuzz/fuzz_targets/<name>.rs` calls `fuzz_<name>` in one line, and
//! `tests/fuzz_corpus.rs` (stable, in CI) feeds it every input under
//! `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/`. They **panic when a
//! property fails**.

use std::sync::LazyLock;

use crate::jws::{self, CompactJws};
use crate::{Jwk, JwkSet, Validation, jwt};

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("jws_compact", fuzz_jws_compact),
    ("jwk_json", fuzz_jwk_json),
];

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
