//! Fuzzes DER ECDSA signatures: `custody_core::parse_der` and `normalize`.
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_der_signature`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_der_signature(data));
