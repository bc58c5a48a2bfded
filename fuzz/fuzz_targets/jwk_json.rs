//! Fuzzes JSON Web Keys and key sets: `custody_jose::{Jwk, JwkSet}::from_json`,
//! their written forms and RFC 7638 thumbprints. The body is
//! `custody_jose::fuzzing::fuzz_jwk_json`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_jose::fuzzing::fuzz_jwk_json(data));
