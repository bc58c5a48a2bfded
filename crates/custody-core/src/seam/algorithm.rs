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
//! signature. RSA (RS256/PS256, RSA-OAEP) keys live in KMS and PKCS#11
//! tokens only: the seam carries their public half ([`RsaPublicKey`]) and
//! checks their signatures, but a local RSA private key is never held
//! (RUSTSEC-2023-0071, a timing side channel in the `rsa` crate's
//! private-key operations; its public operations are not affected).

use std::fmt;
use std::sync::Arc;

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
    /// RSA, 2048 to 8192 bits (JOSE `RS256`, `PS256`, `RSA-OAEP-256`),
    /// held by a remote backend only (KMS, PKCS#11): the vault never holds
    /// an RSA private key.
    Rsa,
}

impl KeyAlgorithm {
    /// The curve's name as JOSE writes it (`crv`): `secp256k1`, `P-256`,
    /// `Ed25519`; for RSA, JOSE's key type (`kty`), `RSA`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secp256k1 => "secp256k1",
            Self::P256 => "P-256",
            Self::Ed25519 => "Ed25519",
            Self::Rsa => "RSA",
        }
    }

    /// The algorithm named `name` ([`KeyAlgorithm::as_str`]).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Secp256k1, Self::P256, Self::Ed25519, Self::Rsa]
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
    /// RSASSA-PKCS1-v1_5 (RFC 8017 §8.2) of a SHA-256 digest (JOSE
    /// `RS256`, KMS `RSASSA_PKCS1_V1_5_SHA_256`, PKCS#11 `CKM_RSA_PKCS`
    /// over the DigestInfo).
    RsaPkcs1Sha256,
    /// RSASSA-PSS (RFC 8017 §8.1) of a SHA-256 digest, MGF1-SHA-256, a
    /// 32-byte salt (the hash's length): JOSE `PS256` (RFC 7518 §3.5), KMS
    /// `RSASSA_PSS_SHA_256`, PKCS#11 `CKM_RSA_PKCS_PSS`.
    RsaPssSha256,
}

impl SignatureScheme {
    /// The key algorithm the scheme needs.
    #[must_use]
    pub fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            Self::EcdsaSecp256k1 => KeyAlgorithm::Secp256k1,
            Self::EcdsaP256Sha256 => KeyAlgorithm::P256,
            Self::Ed25519 => KeyAlgorithm::Ed25519,
            Self::RsaPkcs1Sha256 | Self::RsaPssSha256 => KeyAlgorithm::Rsa,
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
            Self::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            Self::RsaPssSha256 => "rsa-pss-sha256",
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
        super::signature::sec1_array(self.0.to_sec1_point(true).as_bytes())
    }

    /// The 65-byte uncompressed SEC 1 encoding (`04‖x‖y`, JWK's `x` and `y`).
    #[must_use]
    pub fn to_uncompressed(&self) -> [u8; 65] {
        super::signature::sec1_array(self.0.to_sec1_point(false).as_bytes())
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

/// The smallest RSA modulus the seam accepts, in bits (NIST SP 800-131A:
/// 2048 and up; KMS's smallest RSA key spec, `RSA_2048`).
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus the seam accepts, in bits (bounds the cost of a
/// verification an untrusted key can ask for).
pub const MAX_RSA_BITS: usize = 8192;

/// An RSA public key: a modulus of [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`]
/// bits and an odd public exponent of at least 65537 (and below 2^33, the
/// `rsa` crate's bound).
///
/// It lives in the default build, on RustCrypto's `rsa` crate (public
/// operations only: parsing and signature verification; nothing here
/// touches a private key, so RUSTSEC-2023-0071 does not apply), because
/// [`KeyAlgorithm::Rsa`] is always present: a feature that added the
/// variant would change downstream matches, and one that kept the variant
/// but not the key could not check an RSA backend's signature.
///
/// Its stable encodings: [`RsaPublicKey::to_spki_der`] (RFC 5280
/// `SubjectPublicKeyInfo`, `rsaEncryption` with NULL parameters: what KMS
/// `GetPublicKey` returns), [`RsaPublicKey::to_pkcs1_der`] (RFC 8017
/// `RSAPublicKey`), and the big-endian modulus and exponent (JWK `n`, `e`).
/// Its audit identifier is [`RsaPublicKey::fingerprint`], the SHA-256 of
/// the SPKI encoding: a 4096-bit modulus is too long for every record.
/// Cloning shares the parsed key.
#[derive(Clone)]
pub struct RsaPublicKey(Arc<RsaKey>);

/// The parsed key and its canonical encodings, computed once.
struct RsaKey {
    key: rsa::PublicKey,
    /// Minimal big-endian modulus.
    n: Box<[u8]>,
    /// Minimal big-endian exponent.
    e: Box<[u8]>,
    spki: Box<[u8]>,
    fingerprint: [u8; 32],
}

impl RsaPublicKey {
    /// Parses an RFC 5280 `SubjectPublicKeyInfo` in DER whose algorithm is
    /// `rsaEncryption` (OID 1.2.840.113549.1.1.1) with NULL parameters, as
    /// KMS `GetPublicKey` and PKCS#11 tokens export it.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] for anything else: not DER, trailing
    /// bytes, another algorithm or parameters, or an `RSAPublicKey` that
    /// [`RsaPublicKey::from_pkcs1_der`] refuses.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        use rsa::pkcs8::der::Decode as _;
        use rsa::pkcs8::der::asn1::AnyRef;
        let info = rsa::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|_| Error::InvalidKeyMaterial("not a DER SubjectPublicKeyInfo"))?;
        if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID
            || info.algorithm.parameters != Some(AnyRef::NULL)
        {
            return Err(Error::InvalidKeyMaterial(
                "not an rsaEncryption SubjectPublicKeyInfo",
            ));
        }
        let bits = info
            .subject_public_key
            .as_bytes()
            .ok_or(Error::InvalidKeyMaterial(
                "RSA key bit string not whole bytes",
            ))?;
        Self::from_pkcs1_der(bits)
    }

    /// Parses an RFC 8017 `RSAPublicKey` (`SEQUENCE { n, e }`) in DER.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if it is not DER (non-minimal or
    /// negative integers, trailing bytes), the modulus is not odd or not
    /// of [`MIN_RSA_BITS`]..=[`MAX_RSA_BITS`] bits, or the exponent is
    /// even, below 65537, or not below both 2^33 and the modulus.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, Error> {
        use rsa::pkcs1::der::Decode as _;
        let parsed = rsa::pkcs1::RsaPublicKeyRef::from_der(der)
            .map_err(|_| Error::InvalidKeyMaterial("not a DER RSAPublicKey"))?;
        Self::from_components(parsed.modulus.as_bytes(), parsed.public_exponent.as_bytes())
    }

    /// A key from its big-endian modulus and exponent (JWK `n` and `e`;
    /// leading zero bytes are ignored).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] as [`RsaPublicKey::from_pkcs1_der`].
    pub fn from_components(modulus: &[u8], exponent: &[u8]) -> Result<Self, Error> {
        use rsa::pkcs8::EncodePublicKey as _;
        use sha2::Digest as _;
        let strip = |b: &[u8]| -> Box<[u8]> {
            let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
            b[start..].into()
        };
        let (n, e) = (strip(modulus), strip(exponent));
        let bits = match n.first() {
            // n[0] != 0: at most 7 leading zero bits.
            Some(&n0) => n.len() * 8 - n0.leading_zeros() as usize,
            None => 0,
        };
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(Error::InvalidKeyMaterial(
                "RSA modulus not of 2048 to 8192 bits",
            ));
        }
        if n.last().is_none_or(|&b| b & 1 == 0) {
            return Err(Error::InvalidKeyMaterial("RSA modulus even"));
        }
        // 65537 <= e < 2^33, odd (5 bytes hold 2^33 - 1).
        let e_value = (e.len() <= 5).then(|| e.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)));
        match e_value {
            Some(v) if (65_537..(1 << 33)).contains(&v) && v & 1 == 1 => {}
            _ => {
                return Err(Error::InvalidKeyMaterial(
                    "RSA exponent not odd, at least 65537 and below 2^33",
                ));
            }
        }
        let key = rsa::PublicKey::new_with_size_limits(
            rsa::BoxedUint::from_be_slice_vartime(&n),
            rsa::BoxedUint::from_be_slice_vartime(&e),
            MIN_RSA_BITS..=MAX_RSA_BITS,
        )
        .map_err(|_| Error::InvalidKeyMaterial("RSA public key refused"))?;
        let spki: Box<[u8]> = key
            .to_public_key_der()
            .map_err(|_| Error::InvalidKeyMaterial("RSA public key not encodable"))?
            .as_bytes()
            .into();
        let fingerprint = sha2::Sha256::digest(&spki).into();
        Ok(Self(Arc::new(RsaKey {
            key,
            n,
            e,
            spki,
            fingerprint,
        })))
    }

    /// The modulus size in bits.
    #[must_use]
    pub fn bits(&self) -> usize {
        let n0 = self.0.n.first().copied().unwrap_or(0);
        self.0.n.len() * 8 - n0.leading_zeros() as usize
    }

    /// The size of a signature or ciphertext of this key in bytes.
    #[must_use]
    pub fn size(&self) -> usize {
        self.0.n.len()
    }

    /// The modulus, big-endian, minimal (JWK `n`).
    #[must_use]
    pub fn modulus(&self) -> &[u8] {
        &self.0.n
    }

    /// The public exponent, big-endian, minimal (JWK `e`).
    #[must_use]
    pub fn exponent(&self) -> &[u8] {
        &self.0.e
    }

    /// The canonical DER `SubjectPublicKeyInfo` (`rsaEncryption`, NULL
    /// parameters, minimal integers).
    #[must_use]
    pub fn to_spki_der(&self) -> Vec<u8> {
        self.0.spki.to_vec()
    }

    /// The canonical DER `RSAPublicKey` (the SPKI's bit string).
    #[must_use]
    pub fn to_pkcs1_der(&self) -> Vec<u8> {
        // The SPKI ends with the BIT STRING whose content (after its
        // unused-bits byte) is the RSAPublicKey; re-encode instead of
        // slicing, so the two can never disagree on framing.
        let mut body = Vec::with_capacity(self.0.n.len() + self.0.e.len() + 16);
        push_der_uint(&mut body, &self.0.n);
        push_der_uint(&mut body, &self.0.e);
        let mut out = Vec::with_capacity(body.len() + 6);
        out.push(0x30);
        push_der_len(&mut out, body.len());
        out.extend_from_slice(&body);
        out
    }

    /// The SHA-256 of [`RsaPublicKey::to_spki_der`]: the key's identifier
    /// in audit records.
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 32] {
        self.0.fingerprint
    }

    /// The underlying `rsa` key (public operations only).
    #[must_use]
    pub fn as_rsa(&self) -> &rsa::PublicKey {
        &self.0.key
    }
}

/// Appends a DER INTEGER of the minimal non-negative big-endian `v`.
fn push_der_uint(out: &mut Vec<u8>, v: &[u8]) {
    let pad = v.first().is_none_or(|&b| b & 0x80 != 0);
    out.push(0x02);
    push_der_len(out, v.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
}

/// Appends a DER length.
fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in seven bits.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        // At most size_of::<usize>() bytes follow.
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.spki == other.0.spki
    }
}

impl Eq for RsaPublicKey {}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaPublicKey({} bits, sha256:{})",
            self.bits(),
            hex::encode(self.0.fingerprint)
        )
    }
}

/// The public key of a pinned key, whatever its algorithm.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyPublicKey {
    /// secp256k1.
    Secp256k1(PublicKey),
    /// P-256.
    P256(P256PublicKey),
    /// Ed25519.
    Ed25519(Ed25519PublicKey),
    /// RSA.
    Rsa(RsaPublicKey),
}

impl AnyPublicKey {
    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::Secp256k1(_) => KeyAlgorithm::Secp256k1,
            Self::P256(_) => KeyAlgorithm::P256,
            Self::Ed25519(_) => KeyAlgorithm::Ed25519,
            Self::Rsa(_) => KeyAlgorithm::Rsa,
        }
    }

    /// The short encoding: SEC 1 compressed for the ECDSA curves (33
    /// bytes), the RFC 8032 encoding for Ed25519 (32 bytes); for RSA, the
    /// DER `SubjectPublicKeyInfo` ([`RsaPublicKey::to_spki_der`]).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Secp256k1(k) => k.to_compressed().to_vec(),
            Self::P256(k) => k.to_compressed().to_vec(),
            Self::Ed25519(k) => k.to_bytes().to_vec(),
            Self::Rsa(k) => k.to_spki_der(),
        }
    }

    /// The key's identifier in audit records (their `public-key` field):
    /// [`AnyPublicKey::to_bytes`] for the curves, the SHA-256 of the SPKI
    /// ([`RsaPublicKey::fingerprint`]) for RSA.
    #[must_use]
    pub fn audit_id(&self) -> Vec<u8> {
        match self {
            Self::Rsa(k) => k.fingerprint().to_vec(),
            _ => self.to_bytes(),
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

impl From<RsaPublicKey> for AnyPublicKey {
    fn from(k: RsaPublicKey) -> Self {
        Self::Rsa(k)
    }
}

/// A signature of a non-secp256k1 scheme as JOSE writes it: `r‖s` for
/// ECDSA (32 bytes each, big-endian), the 64-byte RFC 8032 signature for
/// Ed25519, the RSA signature (as long as the modulus) for RSA. For
/// [`SignatureScheme::EcdsaSecp256k1`] it is `r‖s` with `s` low (the
/// recoverable form's compact half).
#[derive(Clone, PartialEq, Eq)]
pub struct SchemeSignature {
    scheme: SignatureScheme,
    bytes: SignatureBytes,
}

/// The bytes of a [`SchemeSignature`]: inline for the 64-byte schemes, so
/// that ECDSA and Ed25519 allocate nothing.
#[derive(Clone, PartialEq, Eq)]
enum SignatureBytes {
    Fixed([u8; 64]),
    Long(Box<[u8]>),
}

impl SchemeSignature {
    /// The scheme.
    #[must_use]
    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// The signature's bytes (64 for ECDSA and Ed25519; the modulus's
    /// length for RSA).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.bytes {
            SignatureBytes::Fixed(b) => b,
            SignatureBytes::Long(b) => b,
        }
    }

    /// The signature's bytes, copied.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    pub(crate) fn new(scheme: SignatureScheme, bytes: [u8; 64]) -> Self {
        Self {
            scheme,
            bytes: SignatureBytes::Fixed(bytes),
        }
    }

    fn long(scheme: SignatureScheme, bytes: &[u8]) -> Self {
        Self {
            scheme,
            bytes: SignatureBytes::Long(bytes.into()),
        }
    }
}

impl fmt::Debug for SchemeSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SchemeSignature({}, 0x{})",
            self.scheme.as_str(),
            hex::encode(self.as_bytes())
        )
    }
}

/// Checks a P-256, Ed25519 or RSA signature as a backend returned it
/// against the pinned key, and returns it in JOSE form: the counterpart of
/// [`crate::normalize`] for the other schemes. `message` is what an
/// Ed25519 request signs (its SHA-256 is `digest`); ECDSA and RSA sign
/// `digest` (a SHA-256). A P-256 signature is returned with the `s` the
/// backend chose (JOSE does not require low `s` for ES256). An RSA
/// signature comes as [`crate::RawSignature::Rsa`], exactly as long as
/// the modulus (RFC 8017 §8.1.2, §8.2.2 step 1); PSS is checked with
/// MGF1-SHA-256 and a 32-byte salt only.
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
                RawSignature::Recoverable { .. } | RawSignature::Rsa(_) => {
                    return Err(Error::InvalidSignature);
                }
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
            // `verify_strict` checks the same cofactorless equation as
            // `verify` and also refuses small-order `A` and `R` (weak keys,
            // signatures valid for many messages): what it accepts,
            // `verify` accepts, so it is the only check (the speccheck
            // edge cases in tests/algorithms.rs).
            key.0
                .verify_strict(message, &signature)
                .map_err(|_| Error::InvalidSignature)?;
            Ok(SchemeSignature::new(scheme, *bytes))
        }
        (
            SignatureScheme::RsaPkcs1Sha256 | SignatureScheme::RsaPssSha256,
            AnyPublicKey::Rsa(key),
        ) => {
            let RawSignature::Rsa(bytes) = raw else {
                return Err(Error::InvalidSignature);
            };
            if bytes.len() != key.size() {
                return Err(Error::InvalidSignature);
            }
            let checked = if scheme == SignatureScheme::RsaPkcs1Sha256 {
                key.as_rsa().verify(
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    digest.as_bytes(),
                    bytes,
                )
            } else {
                key.as_rsa().verify(
                    rsa::Pss::<sha2::Sha256>::new_with_salt(32),
                    digest.as_bytes(),
                    bytes,
                )
            };
            checked.map_err(|_| Error::InvalidSignature)?;
            Ok(SchemeSignature::long(scheme, bytes))
        }
        _ => Err(Error::Unsupported(
            "check_signature: a P-256, Ed25519 or RSA scheme on a key of that algorithm",
        )),
    }
}
