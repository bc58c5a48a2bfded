//! Fuzzes WebAuthn responses as browsers hand them over (`toJSON()`):
//! `custody_policy::webauthn::{AssertionResponse, RegistrationResponse}`
//! and their verification. The body is
//! `custody_policy::fuzzing::fuzz_webauthn_json`, which
//! `tests/fuzz_corpus.rs` also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_policy::fuzzing::fuzz_webauthn_json(data));
