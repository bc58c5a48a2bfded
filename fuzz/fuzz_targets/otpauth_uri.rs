//! Fuzzes otpauth:// enrolment URIs: `custody_totp::parse_otpauth_uri`.
//! The body (and the properties it checks) is
//! `custody_totp::fuzzing::fuzz_otpauth_uri`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_totp::fuzzing::fuzz_otpauth_uri(data));
