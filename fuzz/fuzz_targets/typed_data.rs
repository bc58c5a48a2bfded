//! Fuzzes `typed_data` input of custody-eth. The body (and the properties it
//! checks) is `custody_eth::fuzzing::fuzz_typed_data`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_eth::fuzzing::fuzz_typed_data(data));
