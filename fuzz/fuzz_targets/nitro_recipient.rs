//! Fuzzes KMS's `CiphertextForRecipient` (BER CMS EnvelopedData):
//! `custody_kms::nitro::CiphertextForRecipient::parse`, the strict BER walker.
//! The body (and the properties it checks) is
//! `custody_kms::fuzzing::fuzz_nitro_recipient`, which `tests/fuzz_corpus.rs`
//! also runs on every committed seed and regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_kms::fuzzing::fuzz_nitro_recipient(data));
