//! Fuzzes DER `SubjectPublicKeyInfo`s (AWS KMS `GetPublicKey`): custody-kms's
//! `secp256k1_point`. The body (and the properties it checks) is
//! `custody_kms::fuzzing::fuzz_ec_spki`, which `tests/fuzz_corpus.rs` also
//! runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_kms::fuzzing::fuzz_ec_spki(data));
