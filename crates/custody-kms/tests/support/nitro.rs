//! Synthetic AWS Nitro attestation documents for the `nitro` tests: the
//! certificate chain under a test root and the COSE_Sign1 documents signed
//! with its leaf key live in the library, under feature `nsm-fake`
//! (`custody_kms::nitro::fake`), where the fake NSM makes its documents
//! with them; the tests reach them through this module.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    reason = "each test binary uses part of the fixture"
)]

pub use custody_kms::nitro::fake::*;
