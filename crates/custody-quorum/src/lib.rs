#![doc = include_str!("../README.md")]

mod boot;
mod error;
mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "hazmat")]
pub mod hazmat;
mod hpke;
mod kek;
mod key;
mod seal;
mod share;

pub use boot::{EnclaveBoot, EnclaveSecretKey};
pub use error::Error;
pub use format::MAX_JSON_BYTES;
pub use kek::QuorumKek;
pub use key::{QuorumKey, QuorumPublicKey, QuorumSecret};
pub use seal::{EnclavePublicKey, MAX_MANIFEST_BYTES, SealedShare, seal_share};
pub use share::{Commitment, SetId, Share, ShareSet, generate, split};
