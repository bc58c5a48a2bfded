//! Fuzzes a sealed share offered to an enclave's boot
//! (`custody_quorum::EnclaveBoot::accept`): decoding, the HPKE open, the
//! commitment check. The body is
//! `custody_quorum::fuzzing::fuzz_sealed_share`, which
//! `crates/custody-quorum/tests/fuzz_corpus.rs` also runs on every seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_quorum::fuzzing::fuzz_sealed_share(data));
