//! Fuzzes the vault's ECDSA (custody-core's own RFC 6979 nonces over `k256`
//! arithmetic) against `k256`'s `SigningKey` on arbitrary keys and digests.
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_ecdsa_sign`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_ecdsa_sign(data));
