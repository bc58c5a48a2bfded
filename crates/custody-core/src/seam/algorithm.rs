//! Key algorithms beyond secp256k1, as the seam carries them: which
//! algorithm a pinned key is, which signature scheme a request asks for,
//! the public keys of each, and the check that a backend's signature is the
//! pinned key's (the one place every non-Ethereum signature goes through,
//! as [`crate::normalize`] is for secp256k1).
//!
//! # Why the seam learned algorithms this way
//! A JWT service signs with P-256 (ES256) or Ed25519 (EdDSA) keys, or with
//! secp256k1 (ES256K); its keys live where the wallets' keys live (the
//! keystore, KMS, an HSM) and every signature must pass the same gates
//! (TOTP, policy) and land in the same audit record as a transaction. So an
//! algorithm is a property of the *pinned key* ([`crate::PinnedKey::public`])
//! and of the *request* ([`crate::SignRequest::scheme`]), not a second
//! signing trait: the gates forward one request type, so they gate every
//! algorithm with the code that gates transactions, and nothing is written
//! twice. The secp256k1 hot path keeps its types and its one match: a
//! request made by [`crate::SignRequest::new`] is ECDSA over secp256k1, as
//! before, and [`crate::KeySigner::sign`] still returns a recoverable
//! signature. RSA (RS256/PS256, RSA-OAEP) arrives with the KMS and PKCS#11
//! keys that hold it (the enums are `#[non_exhaustive]`); a local RSA
//! private key is never held (RUSTSEC-2023-0071).

use std::fmt;

use ed25519_dalek::Verifier as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::elliptic_curve::sec1::ToSec1Point;

use crate::{Digest32, Error, PublicKey};

/// The algorithm of a key.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// secp256k1 (Ethereum; JOSE `ES256K`).
    Secp256k1,
    /// NIST P-256 (JOSE `ES256`, WebCrypto's default).
    P256,
    /// Ed25519 (JOSE `EdDSA`).
    Ed25519,
}

impl KeyAlgorithm {
    /// The curve's name as JOSE writes it (`crv`): `secp256k1`, `P-256`,
    /// `Ed25519`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secp256k1 => "secp256k1",
            Self::P256 => "P-256",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// The algorithm named `name` ([`KeyAlgorithm::as_str`]).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Secp256k1, Self::P256, Self::Ed25519]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a signing request asks of its key.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// ECDSA over secp256k1 of a 32-byte digest (Ethereum's Keccak-256, or
    /// SHA-256 for JOSE `ES256K`): the hot path, and the default.
    EcdsaSecp256k1,
    /// ECDSA over P-256 of a SHA-256 digest (JOSE `ES256`).
    EcdsaP256Sha256,
    /// Ed25519 of the message itself (JOSE `EdDSA`; the request's digest
    /// is the message's SHA-256, which names it in the audit record).
    Ed25519,
}

impl SignatureScheme {
    /// The key algorithm the scheme needs.
    #[must_use]
    pub fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            Self::EcdsaSecp256k1 => KeyAlgorithm::Secp256k1,
            Self::EcdsaP256Sha256 => KeyAlgorithm::P256,
            Self::Ed25519 => KeyAlgorithm::Ed25519,
        }
    }

    /// Whether the scheme signs the message (Ed25519) rather than a digest.
    #[must_use]
    pub fn signs_message(self) -> bool {
        matches!(self, Self::Ed25519)
    }

    /// A stable lower-case name (audit records' `scheme` field).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Self::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// A P-256 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct P256PublicKey(p256::PublicKey);

impl P256PublicKey {
    /// Parses a SEC 1 point (33-byte compressed or 65-byte uncompressed).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the bytes are not a point on P-256.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        p256::PublicKey::from_sec1_bytes(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidKeyMaterial("not a P-256 public key"))
    }

    /// The 33-byte compressed SEC 1 encoding.
    #[must_use]
    pub fn to_compressed(&self) -> [u8; 33] {
        let p = self.0.to_sec1_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(p.as_bytes());
        out
    }

    /// The 65-byte uncompressed SEC 1 encoding (`04‖x‖y`, JWK's `x` and `y`).
    #[must_use]
    pub fn to_uncompressed(&self) -> [u8; 65] {
        let p = self.0.to_sec1_point(false);
        let mut out = [0u8; 65];
        out.copy_from_slice(p.as_bytes());
        out
    }

    /// The underlying `p256` key.
    #[must_use]
    pub fn as_p256(&self) -> &p256::PublicKey {
        &self.0
    }
}

impl From<p256::PublicKey> for P256PublicKey {
    fn from(k: p256::PublicKey) -> Self {
        Self(k)
    }
}

impl fmt::Debug for P256PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P256PublicKey(0x{})", hex::encode(self.to_compressed()))
    }
}

/// An Ed25519 public key (a canonical point that is not of small order).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ed25519PublicKey(ed25519_dalek::VerifyingKey);

impl Ed25519PublicKey {
    /// Parses the 32-byte encoding (RFC 8032).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the bytes are not a point, or are a
    /// point of small order (a "weak" key any signature could match).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        match ed25519_dalek::VerifyingKey::from_bytes(bytes) {
            Ok(k) if !k.is_weak() => Ok(Self(k)),
            _ => Err(Error::InvalidKeyMaterial("not an Ed25519 public key")),
        }
    }

    /// The 32-byte encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

impl From<ed25519_dalek::VerifyingKey> for Ed25519PublicKey {
    fn from(k: ed25519_dalek::VerifyingKey) -> Self {
        Self(k)
    }
}

impl fmt::Debug for Ed25519PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ed25519PublicKey(0x{})", hex::encode(self.to_bytes()))
    }
}

/// The public key of a pinned key, whatever its algorithm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyPublicKey {
    /// secp256k1.
    Secp256k1(PublicKey),
    /// P-256.
    P256(P256PublicKey),
    /// Ed25519.
    Ed25519(Ed25519PublicKey),
}

impl AnyPublicKey {
    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Secp256k1(_) => KeyAlgorithm::Secp256k1,
            Self::P256(_) => KeyAlgorithm::P256,
            Self::Ed25519(_) => KeyAlgorithm::Ed25519,
        }
    }

    /// The short encoding: SEC 1 compressed for the ECDSA curves (33
    /// bytes), the RFC 8032 encoding for Ed25519 (32 bytes).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Secp256k1(k) => k.to_compressed().to_vec(),
            Self::P256(k) => k.to_compressed().to_vec(),
            Self::Ed25519(k) => k.to_bytes().to_vec(),
        }
    }

    /// The secp256k1 key, if it is one.
    #[must_use]
    pub fn secp256k1(&self) -> Option<&PublicKey> {
        match self {
            Self::Secp256k1(k) => Some(k),
            _ => None,
        }
    }
}

impl From<PublicKey> for AnyPublicKey {
    fn from(k: PublicKey) -> Self {
        Self::Secp256k1(k)
    }
}

/// A signature of a non-secp256k1 scheme as JOSE writes it: `r‖s` for
/// ECDSA (32 bytes each, big-endian), the 64-byte RFC 8032 signature for
/// Ed25519. For [`SignatureScheme::EcdsaSecp256k1`] it is `r‖s` with `s`
/// low (the recoverable form's compact half).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SchemeSignature {
    scheme: SignatureScheme,
    bytes: [u8; 64],
}

impl SchemeSignature {
    /// The scheme.
    #[must_use]
    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// The 64 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 64] {
        self.bytes
    }

    pub(crate) fn new(scheme: SignatureScheme, bytes: [u8; 64]) -> Self {
        Self { scheme, bytes }
    }
}

impl fmt::Debug for SchemeSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SchemeSignature({}, 0x{})",
            self.scheme.as_str(),
            hex::encode(self.bytes)
        )
    }
}

/// Checks a P-256 or Ed25519 signature as a backend returned it against
/// the pinned key, and returns it in JOSE form: the counterpart of
/// [`crate::normalize`] for the other schemes. `message` is what an
/// Ed25519 request signs (its SHA-256 is `digest`); ECDSA signs `digest`.
/// A P-256 signature is returned with the `s` the backend chose (JOSE does
/// not require low `s` for ES256).
///
/// # Errors
/// [`Error::InvalidSignature`] for malformed DER, a wrong length, or a
/// signature that is not the pinned key's over this digest or message;
/// [`Error::Unsupported`] for a scheme this function does not check
/// (secp256k1 goes through [`crate::normalize`]) or a scheme that is not
/// the key's.
pub fn check_signature(
    scheme: SignatureScheme,
    raw: &crate::RawSignature,
    pinned: &AnyPublicKey,
    digest: &Digest32,
    message: Option<&[u8]>,
) -> Result<SchemeSignature, Error> {
    use crate::RawSignature;
    match (scheme, pinned) {
        (SignatureScheme::EcdsaP256Sha256, AnyPublicKey::P256(key)) => {
            let signature = match raw {
                RawSignature::Der(der) => p256::ecdsa::Signature::from_der(der),
                RawSignature::Compact(c) => p256::ecdsa::Signature::from_slice(c),
                RawSignature::Recoverable { .. } => return Err(Error::InvalidSignature),
            }
            .map_err(|_| Error::InvalidSignature)?;
            p256::ecdsa::VerifyingKey::from(key.as_p256())
                .verify_prehash(digest.as_bytes(), &signature)
                .map_err(|_| Error::InvalidSignature)?;
            let bytes: [u8; 64] = signature.to_bytes().into();
            Ok(SchemeSignature::new(scheme, bytes))
        }
        (SignatureScheme::Ed25519, AnyPublicKey::Ed25519(key)) => {
            let (RawSignature::Compact(bytes), Some(message)) = (raw, message) else {
                return Err(Error::InvalidSignature);
            };
            let signature = ed25519_dalek::Signature::from_bytes(bytes);
            key.0
                .verify_strict(message, &signature)
                .map_err(|_| Error::InvalidSignature)?;
            // verify_strict already refuses what `verify` would accept
            // beyond RFC 8032; `verify` is called too so both agree.
            key.0
                .verify(message, &signature)
                .map_err(|_| Error::InvalidSignature)?;
            Ok(SchemeSignature::new(scheme, *bytes))
        }
        _ => Err(Error::Unsupported(
            "check_signature: a P-256 or Ed25519 scheme on a key of that algorithm",
        )),
    }
}
