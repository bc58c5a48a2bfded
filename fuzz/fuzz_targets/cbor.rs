//! Fuzzes the strict CBOR decoder (RFC 8949): `custody_core::cbor::decode`
//! and `decode_tagged`. The body (and the properties it checks) is
//! `custody_core::fuzzing::fuzz_cbor`, which `tests/fuzz_corpus.rs` also
//! runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_cbor(data));
