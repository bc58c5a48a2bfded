//! Fuzzes RFC 7512 `pkcs11:` URIs: `custody_kms::Pkcs11Uri::parse`.
//! The body (and the properties it checks) is
//! `custody_kms::fuzzing::fuzz_pkcs11_uri`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_kms::fuzzing::fuzz_pkcs11_uri(data));
