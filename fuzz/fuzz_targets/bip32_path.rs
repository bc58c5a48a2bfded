//! Fuzzes BIP32 path strings: `custody_core::DerivationPath::from_str`.
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_bip32_path`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_bip32_path(data));
