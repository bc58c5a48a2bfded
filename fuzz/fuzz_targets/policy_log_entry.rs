//! Fuzzes stored policy-log entries (`custody_policy::log::Entry::from_json`). The body is
//! `custody_policy::fuzzing::fuzz_policy_log_entry`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_policy::fuzzing::fuzz_policy_log_entry(data));
