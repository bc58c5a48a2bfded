//! Fuzzes the keyring a v2 keystore seals under its root KEK (`keyring.env`).
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_keyring`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_keyring(data));
