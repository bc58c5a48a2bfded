//! Fuzzes the JSON files of the quorum boot: share files, share sets and
//! sealed shares (`custody_quorum::{Share, ShareSet, SealedShare}`), each
//! read strictly and written back. The body is
//! `custody_quorum::fuzzing::fuzz_quorum_json`, which
//! `crates/custody-quorum/tests/fuzz_corpus.rs` also runs on every seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_quorum::fuzzing::fuzz_quorum_json(data));
