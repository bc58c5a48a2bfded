//! Fuzzes raw signed Ethereum transactions (types 0-4): `custody_eth::decode_signed`.
//! The body (and the properties it checks) is `custody_eth::fuzzing::fuzz_raw_tx`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_eth::fuzzing::fuzz_raw_tx(data));
