//! The fuzz targets of `custody-jose` on the stable toolchain: every
//! committed seed (`fuzz/seeds/<name>/`) and regression input
//! (`fuzz/regressions/<name>/`) runs through the very function the
//! cargo-fuzz target calls (`custody_jose::fuzzing::fuzz_<name>`), which
//! panics when a property fails; and the seeds reach past the first checks
//! (some are accepted by each decoder).
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use std::path::Path;

use custody_core::fuzzing::run_corpus_accepting;
use custody_jose::fuzzing::{FUZZ_JWKS, TARGETS};
use custody_jose::{Jwk, JwkSet, jws};

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

/// Runs every input of `name` through its body and returns (accepted, all).
fn run(name: &str, accepts: impl Fn(&[u8]) -> bool) -> (usize, usize) {
    let (_, body) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    run_corpus_accepting(Path::new(FUZZ_DIR), name, *body, accepts).unwrap()
}

#[test]
fn jws_compact() {
    let keys = JwkSet::from_json(FUZZ_JWKS.as_bytes()).unwrap();
    let (verified, all) = run("jws_compact", |b| {
        std::str::from_utf8(b).is_ok_and(|t| jws::verify(t, &keys).is_ok())
    });
    assert!(verified >= 5 && verified < all, "{verified} of {all}");
}

#[test]
fn jwk_json() {
    let (accepted, all) = run("jwk_json", |b| {
        Jwk::from_json(b).is_ok() || JwkSet::from_json(b).is_ok()
    });
    assert!(accepted >= 8 && accepted < all, "{accepted} of {all}");
}

#[test]
fn jwe_compact() {
    let (opened, all) = run("jwe_compact", |b| {
        std::str::from_utf8(b).is_ok_and(|t| custody_jose::fuzzing::open_fuzz_jwe(t).is_ok())
    });
    assert!(opened >= 8 && opened < all, "{opened} of {all}");
}
