//! What never touches a secret: derivation paths and wallet schemes, the
//! durable state store, the audit log, and the file-system helpers they
//! share (atomic writes, directory locks).

pub(crate) mod audit;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub(crate) mod fsutil;
pub(crate) mod path;
pub(crate) mod state;
pub(crate) mod wallet;
