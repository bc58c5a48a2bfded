//! Everything that handles key material: the secret containers, BIP39 and
//! BIP32, envelope encryption and the local key-encryption key, ECDSA
//! nonces and signing, the vault and the embedded keystore.
//!
//! An auditor who wants every line of `custody-core` that reads, derives,
//! wraps, unwraps or signs with a secret reads this folder; the code
//! outside it (`seam/`, `records/`) sees only public keys, digests,
//! ciphertext and signatures.

pub(crate) mod envelope;
#[cfg(feature = "hazmat")]
pub mod hazmat;
pub(crate) mod hd;
pub(crate) mod keystore;
pub(crate) mod local_kek;
pub(crate) mod mnemonic;
#[cfg(not(feature = "secp256k1"))]
pub(crate) mod rfc6979;
#[cfg(feature = "secp256k1")]
pub(crate) mod secp_fast;
pub(crate) mod secret;
pub(crate) mod vault;
