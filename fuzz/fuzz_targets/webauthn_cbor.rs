//! Fuzzes WebAuthn's binary structures: COSE keys, authenticator data and
//! attestation objects (`custody_policy::webauthn`). The body is
//! `custody_policy::fuzzing::fuzz_webauthn_cbor`, which
//! `tests/fuzz_corpus.rs` also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_policy::fuzzing::fuzz_webauthn_cbor(data));
