//! Fuzzes compact JWE: `custody_jose::jwe::CompactJwe::parse` and opening
//! through the software vault with a fixed P-256 key and scope. The body
//! is `custody_jose::fuzzing::fuzz_jwe_compact`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_jose::fuzzing::fuzz_jwe_compact(data));
