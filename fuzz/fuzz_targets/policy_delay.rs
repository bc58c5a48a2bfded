//! Fuzzes the stored proposals and vetoes of delayed operations
//! (`custody_policy::delay::{Proposal, Veto}::from_json`). The body is
//! `custody_policy::fuzzing::fuzz_policy_delay`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_policy::fuzzing::fuzz_policy_delay(data));
