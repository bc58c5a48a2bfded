//! The fuzz targets of `custody-policy` on the stable toolchain: every
//! committed seed (`fuzz/seeds/<name>/`) and regression input
//! (`fuzz/regressions/<name>/`) runs through the very function the
//! cargo-fuzz target calls (`custody_policy::fuzzing::fuzz_<name>`), which
//! panics when a property fails; and the seeds reach past the first checks
//! (some are accepted by each decoder).
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use std::path::Path;

use custody_core::fuzzing::run_corpus_accepting;
use custody_policy::delay::{Proposal, Veto};
use custody_policy::fuzzing::TARGETS;
use custody_policy::log::Entry;
use custody_policy::policy::Policy;
use custody_policy::verdict::SignedVerdict;
use custody_policy::webauthn::{
    AssertionResponse, AuthenticatorData, CredentialKey, RegistrationResponse,
};

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

/// Runs every input of `name` through its body and returns (accepted, all).
fn run(name: &str, accepts: fn(&[u8]) -> bool) -> (usize, usize) {
    let (_, body) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    run_corpus_accepting(Path::new(FUZZ_DIR), name, *body, accepts).unwrap()
}

#[test]
fn webauthn_json() {
    let (accepted, all) = run("webauthn_json", |b| {
        std::str::from_utf8(b).is_ok_and(|t| {
            AssertionResponse::from_json(t).is_ok() || RegistrationResponse::from_json(t).is_ok()
        })
    });
    assert!(accepted >= 4 && accepted < all, "{accepted} of {all}");
}

#[test]
fn webauthn_cbor() {
    let (accepted, all) = run("webauthn_cbor", |b| {
        CredentialKey::from_cose(b).is_ok() || AuthenticatorData::parse(b).is_ok()
    });
    assert!(accepted >= 4 && accepted < all, "{accepted} of {all}");
}

#[test]
fn policy_json() {
    let (accepted, all) = run("policy_json", |b| Policy::from_json(b).is_ok());
    assert!(accepted >= 3 && accepted < all, "{accepted} of {all}");
}

#[test]
fn verdict() {
    let (accepted, all) = run("verdict", |b| SignedVerdict::from_bytes(b).is_ok());
    assert!(accepted >= 2 && accepted < all, "{accepted} of {all}");
}

#[test]
fn policy_delay() {
    let (accepted, all) = run("policy_delay", |b| {
        Proposal::from_json(b).is_ok() || Veto::from_json(b).is_ok()
    });
    assert!(accepted >= 3 && accepted < all, "{accepted} of {all}");
}

#[test]
fn policy_log_entry() {
    let (accepted, all) = run("policy_log_entry", |b| Entry::from_json(b, 1).is_ok());
    assert!(accepted >= 3, "{accepted} of {all}");
}
