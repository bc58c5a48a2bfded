//! Fuzzes envelope bytes: `custody_core::Envelope::from_bytes`, then opening with a fixed `LocalKek`.
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_envelope`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_envelope(data));
