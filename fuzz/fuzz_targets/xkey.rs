//! Fuzzes xpub/xprv strings: `ExtendedPublicKey::parse`, `ExtendedPrivateKey::parse`.
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_xkey`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_xkey(data));
