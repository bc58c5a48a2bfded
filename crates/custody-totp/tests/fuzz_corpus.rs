//! The fuzz target of `custody-totp` on the stable toolchain: every committed
//! seed (`fuzz/seeds/otpauth_uri/`) and regression input
//! (`fuzz/regressions/otpauth_uri/`) runs through the very function the
//! cargo-fuzz target calls (`custody_totp::fuzzing::fuzz_otpauth_uri`),
//! which panics when a property fails.

use std::path::Path;

use custody_core::fuzzing::corpus_inputs;
use custody_totp::fuzzing::TARGETS;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

#[test]
fn otpauth_uri() {
    let (_, body) = TARGETS.iter().find(|(n, _)| *n == "otpauth_uri").unwrap();
    let files = corpus_inputs(Path::new(FUZZ_DIR), "otpauth_uri").unwrap();
    assert!(!files.is_empty(), "no seeds for otpauth_uri");
    let mut accepted = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            std::panic::catch_unwind(|| body(&bytes)).is_ok(),
            "properties fail for {}",
            path.display()
        );
        if custody_totp::parse_otpauth_uri(std::str::from_utf8(&bytes).unwrap()).is_ok() {
            accepted += 1;
        }
    }
    // The seeds include both valid URIs (which reach the round-trip
    // properties) and near misses.
    assert!(
        accepted >= 3 && accepted < files.len(),
        "{accepted} of {}",
        files.len()
    );
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
        assert!(src.contains(&format!("custody_totp::fuzzing::fuzz_{name}(")));
        assert!(manifest.contains(&format!("name = \"{name}\"")));
    }
}
