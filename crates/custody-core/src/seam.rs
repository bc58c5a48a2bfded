//! The seam every backend and gate implements, and the public values that
//! cross it: [`crate::KeyBackend`] and its capability traits, [`crate::Pending`],
//! encryption contexts, public keys, digests and signatures (with the one
//! normalization every backend's signature goes through), [`crate::KeySigner`]
//! and the audit layer [`crate::Audited`]. No secret is held here.

pub(crate) mod algorithm;
pub(crate) mod audited;
pub(crate) mod backend;
pub(crate) mod context;
pub(crate) mod decrypt;
pub(crate) mod pending;
pub(crate) mod signature;
pub(crate) mod signer;
