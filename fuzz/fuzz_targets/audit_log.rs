//! Fuzzes audit log files: `AuditRecord::from_line`, `AuditLog::verify`.
//! The body (and the properties it checks) is `custody_core::fuzzing::fuzz_audit_log`,
//! which `tests/fuzz_corpus.rs` also runs on every committed seed and
//! regression input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_core::fuzzing::fuzz_audit_log(data));
