//! Fuzzes the Nitro enclave link's frames and messages:
//! `custody_kms::nitro::transport::{split_frame, read_frame, Message::decode}`.
//! The body (and the properties it checks) is
//! `custody_kms::fuzzing::fuzz_nitro_frame`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_kms::fuzzing::fuzz_nitro_frame(data));
