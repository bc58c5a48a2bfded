//! Fuzzes `FileStore` record files (state.rs record decoder).
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_state_record`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_state_record(data));
