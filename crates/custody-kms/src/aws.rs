//! The `aws-kms` adapter: AWS KMS keys as custody backends.
//!
//! - [`KmsClient`]: the one SDK client (built once, SDK retries off) and the
//!   tokio runtime every call is spawned onto, so that the futures work both
//!   `.await`ed and [`custody_core::Pending::wait`]ed.
//! - [`KmsSigner`]: `ECC_SECG_P256K1` keys signing digests.
//! - [`KmsKek`]: `SYMMETRIC_DEFAULT` keys wrapping data keys.
//! - [`RetryPolicy`]: bounded full-jitter retries of throttling and
//!   transient failures, and a per-try timeout.
//! - [`KmsError`]: failures in the stable kinds of the CLI contract.

mod client;
mod error;
mod kek;
mod retry;
mod signer;

pub use client::KmsClient;
pub use error::{ErrorCode, HttpStatus, KmsError};
pub use kek::KmsKek;
pub use retry::RetryPolicy;
pub use signer::KmsSigner;
