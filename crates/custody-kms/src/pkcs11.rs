//! The `pkcs11` adapter: keys on a PKCS#11 token (an HSM such as CloudHSM,
//! SoftHSM2, a YubiHSM) as custody backends.
//!
//! - [`Pkcs11Module`]: a vendor's PKCS#11 library, loaded and initialized
//!   (`C_Initialize` with OS locking) **once per process** and shared: the
//!   first [`Pkcs11Module::load`] of a path loads it, every later one (for the
//!   same canonical path) gets the same module. A process-wide map keyed by
//!   the canonical module path holds each loaded module until the process
//!   exits (a module is never finalized: another component of the process
//!   may be using it).
//! - [`Pkcs11Token`]: a token of a module, found by label across slots (a
//!   token may sit in any slot: SoftHSM2 moves a token to a random slot when
//!   it is initialized), with a bounded pool of R/W user sessions (logged in
//!   once; each session serves one caller at a time), re-opened and logged
//!   in again once when the token drops them.
//! - [`Pkcs11Signer`]: private keys signing digests (EC secp256k1 and
//!   P-256 with `CKM_ECDSA`; RSA with `CKM_RSA_PKCS` and
//!   `CKM_RSA_PKCS_PSS`), agreeing (P-256, `CKM_ECDH1_DERIVE`) and
//!   decrypting (RSA, `CKM_RSA_PKCS_OAEP`), each key looked up once when
//!   pinned; [`Pkcs11KeySpec`]: the keys it generates.
//! - [`Pkcs11Kek`]: AES keys wrapping data keys (`CKM_AES_KEY_WRAP_PAD` or
//!   `CKM_AES_KEY_WRAP`, whichever the token offers), the encryption context
//!   bound by the wrapped bytes.
//! - [`Pkcs11Uri`]: RFC 7512 `pkcs11:` URIs; [`Pin`]: the user PIN, in
//!   zeroizing memory.
//! - [`Pkcs11Error`]: failures in the stable kinds of the CLI contract.
//!
//! Every call is synchronous: PKCS#11 is a blocking C API, and its calls are
//! made on the caller's thread, so every [`custody_core::Pending`] these
//! backends return is ready. An async service with a network HSM (CloudHSM)
//! should call them from a blocking-task pool (`spawn_blocking`).

mod decrypt;
mod error;
mod kek;
mod keys;
mod module;
mod object;
mod pin;
mod signer;
mod token;
mod uri;

pub use error::{Pkcs11Error, ReturnCode};
pub use kek::Pkcs11Kek;
pub use keys::Pkcs11KeySpec;
pub use module::Pkcs11Module;
pub use pin::Pin;
pub use signer::Pkcs11Signer;
pub use token::{Pkcs11Token, TokenCounters};
pub use uri::{ObjectType, Pkcs11Uri};
