//! Fuzzes policy documents (`custody_policy::policy::Policy::from_json`) and their canonical form. The body is
//! `custody_policy::fuzzing::fuzz_policy_json`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_policy::fuzzing::fuzz_policy_json(data));
