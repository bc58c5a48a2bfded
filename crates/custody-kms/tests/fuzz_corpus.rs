//! The fuzz targets of `custody-kms` on the stable toolchain: every committed
//! seed (`fuzz/seeds/<name>/`) and regression input
//! (`fuzz/regressions/<name>/`) runs through the very function the
//! cargo-fuzz target calls (`custody_kms::fuzzing::fuzz_<name>`), which
//! panics when a property fails.
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use std::path::Path;

use custody_core::fuzzing::corpus_inputs;
use custody_kms::fuzzing::TARGETS;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

/// Runs every input of `name` through its body and returns (accepted, all),
/// with `accepts` telling whether the decoder takes an input.
fn run(name: &str, accepts: fn(&[u8]) -> bool) -> (usize, usize) {
    let (_, body) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    let files = corpus_inputs(Path::new(FUZZ_DIR), name).unwrap();
    assert!(!files.is_empty(), "no seeds for {name}");
    let mut accepted = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            std::panic::catch_unwind(|| body(&bytes)).is_ok(),
            "properties fail for {}",
            path.display()
        );
        if accepts(&bytes) {
            accepted += 1;
        }
    }
    (accepted, files.len())
}

#[test]
fn pkcs11_uri() {
    let (accepted, all) = run("pkcs11_uri", |b| {
        std::str::from_utf8(b).is_ok_and(|s| custody_kms::Pkcs11Uri::parse(s).is_ok())
    });
    // The seeds include both valid URIs (which reach the round-trip
    // properties) and near misses.
    assert!(accepted >= 3 && accepted < all, "{accepted} of {all}");
}

#[test]
fn ec_spki() {
    // Accepted here means: read, and a secp256k1 point (what the signer pins).
    let (accepted, all) = run("ec_spki", |b| {
        b.len() == 88
            && b[..23] == custody_kms::fuzzing::SECP256K1_SPKI_PREFIX
            && custody_core::PublicKey::from_sec1_bytes(&b[23..]).is_ok()
    });
    assert!(accepted >= 1 && accepted < all, "{accepted} of {all}");
}

#[test]
fn every_target_is_wired_up() {
    let manifest = std::fs::read_to_string(Path::new(FUZZ_DIR).join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let src = std::fs::read_to_string(
            Path::new(FUZZ_DIR)
                .join("fuzz_targets")
                .join(format!("{name}.rs")),
        )
        .unwrap();
        assert!(src.contains(&format!("custody_kms::fuzzing::fuzz_{name}(")));
        assert!(manifest.contains(&format!("name = \"{name}\"")));
    }
    let names: Vec<_> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["pkcs11_uri", "ec_spki"], "a #[test] per target");
}
