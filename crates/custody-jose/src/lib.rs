#![doc = include_str!("../README.md")]

pub mod b64;
mod error;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod jwe;
pub mod jwk;
pub mod jws;
pub mod jwt;
pub mod kdf;
pub mod keyring;
pub mod sign;

pub use error::JoseError;
pub use jwe::{CompactJwe, JweAlgorithm, OpenError, Recipient, Scope, SealError};
pub use jwk::{Jwk, JwkSet, KeyType};
pub use jws::{Algorithm, CompactJws, Header, Verified};
pub use jwt::{Claims, Jwt, Validation};
pub use keyring::SealingKeyring;
pub use sign::{SignError, public_jwk, sign_jws, sign_jwt};
