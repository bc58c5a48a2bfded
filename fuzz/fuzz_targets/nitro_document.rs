//! Fuzzes AWS Nitro attestation documents (COSE_Sign1, ES384):
//! `custody_kms::nitro::AttestationDocument::parse` and `Verifier::verify`.
//! The body (and the properties it checks) is
//! `custody_kms::fuzzing::fuzz_nitro_document`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_kms::fuzzing::fuzz_nitro_document(data));
