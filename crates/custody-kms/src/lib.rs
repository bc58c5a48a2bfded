//! Key backends of the custody SDK that live outside the process, and the
//! verification of AWS Nitro enclave attestation documents, each behind its
//! own cargo feature. With no feature (the default) this crate holds only
//! the parser of backend URIs (`BackendUri`: `passphrase`, `aws-kms:KEY`,
//! `pkcs11:...`, which every front end shares; opening one needs its
//! feature) and pulls no network stack.
//!
//! | feature | what |
//! |---|---|
//! | `aws-kms` | `KmsSigner` (AWS KMS `ECC_SECG_P256K1` `SIGN_VERIFY` keys sign digests) and `KmsKek` (a `SYMMETRIC_DEFAULT` key wraps envelope data keys), over one `KmsClient` |
//! | `aws-config` | `KmsClient::from_env`: the client configured from the standard AWS environment (implies `aws-kms`) |
//! | `pkcs11` | `Pkcs11Signer` (EC secp256k1 and P-256 and RSA keys on a PKCS#11 token sign digests; P-256 keys agree (ECDH) and RSA keys decrypt (RSA-OAEP-256)) and `Pkcs11Kek` (an AES key on the token wraps envelope data keys), over one `Pkcs11Token` (a session pool on a token of a `Pkcs11Module` loaded once per process); RFC 7512 `Pkcs11Uri`s |
//! | `nitro` | `nitro`: AWS Nitro Enclaves attestation documents, decoded strictly and verified against a pinned root (`nitro::Verifier`); the enclave's side of an attested unwrap (`nitro::Nsm`, the one-shot `nitro::EphemeralRsaKey`, KMS's BER `nitro::CiphertextForRecipient`); pure Rust, no network stack |
//! | `nitro-transport` | `nitro::transport`: the enclave ↔ host link, length-prefixed frames over any tokio `AsyncRead + AsyncWrite` (vsock, a Unix socket) |
//! | `nitro-kms` | `nitro::AttestedKek`: a `WrappingBackend` that unwraps only by KMS `Decrypt` with a `Recipient` (the enclave's attestation document) |
//! | `nsm-fake` | `nitro::fake`: a fake NSM whose documents verify only under its test root (tests and local ceremonies; never in production) |
//!
//! ```no_run
//! # #[cfg(feature = "aws-kms")]
//! # fn demo(sdk: &aws_sdk_kms::Client) -> Result<(), custody_core::Error> {
//! use std::sync::Arc;
//! use custody_core::{Authorization, Digest32, Intent, KeyId, KeyRef, KeySigner};
//! use custody_kms::{KmsClient, KmsSigner};
//!
//! // One client for every call; its calls run on a runtime it owns.
//! let client = KmsClient::with_own_runtime(sdk)?;
//! let backend = Arc::new(KmsSigner::new(client));
//! // GetPublicKey once, here; then one Sign per signature.
//! let key = KeyRef::Stored(KeyId::new("alias/hot-wallet")?);
//! let signer = KeySigner::pin(backend, key).wait()?;
//! let sig = signer
//!     .sign(Digest32([7; 32]), Intent::raw_digest(), &Authorization::none())
//!     .wait()?;
//! # let _ = sig;
//! # Ok(())
//! # }
//! ```
//!
//! A PKCS#11 token (CloudHSM, SoftHSM2, ...), named as the CLI names it:
//!
//! ```no_run
//! # #[cfg(feature = "pkcs11")]
//! # fn demo() -> Result<(), custody_core::Error> {
//! use std::sync::Arc;
//! use custody_core::{Authorization, Digest32, Intent, KeyId, KeyRef, KeySigner};
//! use custody_kms::{Pin, Pkcs11Signer, Pkcs11Token, Pkcs11Uri};
//!
//! let uri = Pkcs11Uri::parse("pkcs11:token=custody?module-path=/usr/lib/softhsm/libsofthsm2.so")?;
//! // The module is loaded once per process; the PIN comes from the caller
//! // (the CLI reads CUSTODY_PKCS11_PIN) or from the URI's pin-source.
//! let token = Pkcs11Token::open_uri(&uri, None, Some(Pin::new("1234")))?;
//! let backend = Arc::new(Pkcs11Signer::new(token));
//! // The key is looked up once, here; then one C_Sign per signature.
//! let key = KeyRef::Stored(KeyId::new("hot-wallet")?);
//! let signer = KeySigner::pin(backend, key).wait()?;
//! let sig = signer
//!     .sign(Digest32([7; 32]), Intent::raw_digest(), &Authorization::none())
//!     .wait()?;
//! # let _ = sig;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "aws-kms")]
mod aws;

// Backend URIs (`passphrase`, `aws-kms:KEY`, `pkcs11:...`) for every front
// end: always built, opening needs the backend's feature.
mod backend_uri;

pub use backend_uri::{
    BackendConfig, BackendUri, BackendUriError, PKCS11_MODULE_VAR, PKCS11_PIN_VAR,
};

// The DER `SubjectPublicKeyInfo` reader of `aws-kms`, also compiled for its
// fuzz target (feature `fuzzing`).
#[cfg(any(feature = "aws-kms", feature = "fuzzing"))]
mod spki;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "aws-kms")]
pub use aws::{ErrorCode, HttpStatus, KmsClient, KmsError, KmsKek, KmsSigner, RetryPolicy};

#[cfg(feature = "nitro")]
pub mod nitro;

#[cfg(feature = "pkcs11")]
mod pkcs11;

#[cfg(feature = "pkcs11")]
pub use pkcs11::{
    ObjectType, Pin, Pkcs11Error, Pkcs11Kek, Pkcs11KeySpec, Pkcs11Module, Pkcs11Signer,
    Pkcs11Token, Pkcs11Uri, ReturnCode, TokenCounters,
};
