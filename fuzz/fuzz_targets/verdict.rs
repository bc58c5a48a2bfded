//! Fuzzes a policy node's signed verdicts as they travel to a signing node (`custody_policy::verdict::SignedVerdict::from_bytes`). The body is
//! `custody_policy::fuzzing::fuzz_verdict`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_policy::fuzzing::fuzz_verdict(data));
