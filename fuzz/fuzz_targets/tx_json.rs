//! Fuzzes `tx_json` input of custody-eth. The body (and the properties it
//! checks) is `custody_eth::fuzzing::fuzz_tx_json`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_eth::fuzzing::fuzz_tx_json(data));
