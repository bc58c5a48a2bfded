//! Fuzzes compact JWS: `custody_jose::jws::CompactJws::parse` and its
//! verification against a fixed key set. The body is
//! `custody_jose::fuzzing::fuzz_jws_compact`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_jose::fuzzing::fuzz_jws_compact(data));
