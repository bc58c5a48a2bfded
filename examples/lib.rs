//! Examples of the custody SDK; see the `[[example]]` targets.

#[cfg(feature = "http")]
pub mod signer_service;

#[cfg(feature = "quorum")]
pub mod quorum_ceremony;
