//! AWS Nitro Enclaves attestation documents (feature `nitro`): strict
//! decoding and verification, in pure Rust (P-384 and SHA-2 from
//! RustCrypto, X.509 from `x509-cert`, CBOR from `custody-core`).
//!
//! A document is a COSE_Sign1 (RFC 9052) signed with ES384 by a key whose
//! certificate chains to AWS's Nitro root. [`Verifier::verify`] follows
//! AWS's "Verify the root of trust" steps; every check has its own
//! [`AttestationError`] variant and test:
//!
//! 1. **Encoding** ([`AttestationDocument::parse`]): strict CBOR (definite
//!    lengths, shortest forms, no duplicate keys, nothing trailing; at most
//!    [`MAX_DOCUMENT_BYTES`]); a COSE_Sign1, tagged (18) or not, whose
//!    protected header says ES384 (`alg` −35) and nothing critical, with a
//!    96-byte signature; a payload of AWS's nine fields only, `digest`
//!    exactly `"SHA384"`, the required ones present and not null, every
//!    field of its documented type and size.
//! 2. **Chain**: `certificate ← cabundle[N..1] ← root`, where `cabundle[0]`
//!    must hash to the pinned [`TrustAnchor`] (AWS's root G1,
//!    [`AWS_NITRO_ROOT_G1_SHA256`]; the bundle's own root is never
//!    trusted); every certificate X.509 v3, signed with ecdsa-with-SHA384,
//!    with a P-384 key, naming its parent as issuer, signed by it, and
//!    valid at the verification time; every CA with a critical
//!    basicConstraints (`cA` true, path length respected) and keyUsage
//!    keyCertSign; no unknown critical extension.
//! 3. **Signature**: the COSE signature verifies with the leaf's key.
//! 4. **Time**: the document's timestamp lies within the leaf's validity;
//!    with [`VerificationTime::At`], it is not in the future and not older
//!    than the caller's maximum age; [`VerificationTime::DocumentTime`]
//!    checks an archived document at its own timestamp instead.
//! 5. **Policy** ([`Expectations`]): no debug-mode enclave (PCR0–2 all
//!    zeros) unless allowed; the expected PCRs, nonce, user data and public
//!    key, compared exactly.
//!
//! The library never reads a clock or the network: the caller gives the
//! time and the root.
//!
//! ```no_run
//! # fn demo(bytes: &[u8], now_unix: u64) -> Result<(), custody_kms::nitro::AttestationError> {
//! use custody_kms::nitro::{Expectations, TrustAnchor, VerificationTime, Verifier};
//!
//! let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1()?);
//! let expected = Expectations::for_image(&[0x11; 48], &[0x22; 48], &[0x33; 48]);
//! let verified = verifier.verify(bytes, &expected, VerificationTime::At(now_unix))?;
//! println!("{} at {} ms", verified.module_id(), verified.timestamp_ms());
//! # Ok(()) }
//! ```

mod ber;
mod chain;
mod cose;
mod document;
mod error;
mod nsm;
mod policy;
mod recipient;

#[cfg(feature = "nitro-kms")]
mod attested;
#[cfg(feature = "nsm-fake")]
pub mod fake;
#[cfg(feature = "nitro-transport")]
pub mod transport;

pub use chain::{AWS_NITRO_ROOT_G1_SHA256, TrustAnchor};
pub use cose::sig_structure;
pub use document::{
    AttestationDocument, DIGEST_SHA384, MAX_CABUNDLE, MAX_CERTIFICATE_BYTES, MAX_DOCUMENT_BYTES,
    MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES,
};
pub use error::{AttestationError, ChainPosition};
pub use policy::{Expectations, VerificationTime, VerifiedAttestation, Verifier};

#[cfg(feature = "nitro-kms")]
pub use attested::AttestedKek;
pub use ber::{BerError, MAX_BER_DEPTH};
pub use nsm::{AttestRequest, Nsm, NsmError, PcrDescription};
pub use recipient::{
    CiphertextForRecipient, EPHEMERAL_RSA_BITS, EphemeralRsaKey,
    MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES, RecipientError, RecipientPlaintext,
};
