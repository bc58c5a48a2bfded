//! Why an attestation document was refused: one variant per check.

use std::fmt;

use custody_core::cbor::CborError;

/// A certificate's place in the chain `certificate ← cabundle[N..1] ← root`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainPosition {
    /// The pinned root (the trust anchor; `cabundle[0]` must be it).
    Root,
    /// `cabundle[i]`, an intermediate CA (`1 <= i`).
    Intermediate(usize),
    /// The document's `certificate`, whose key signs the document.
    Leaf,
}

impl fmt::Display for ChainPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("the root certificate"),
            Self::Intermediate(i) => write!(f, "cabundle[{i}]"),
            Self::Leaf => f.write_str("the leaf certificate"),
        }
    }
}

/// Why an AWS Nitro attestation document was refused. Each variant names
/// the one check that failed (the first, in the order the verifier makes
/// them: the encoding, the certificate chain, the COSE signature, then the
/// caller's [`Expectations`](super::Expectations)).
///
/// Variants carry only field names, positions and numbers: nothing from the
/// document but its public structure.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    // --- encoding -------------------------------------------------------
    /// The document is longer than [`MAX_DOCUMENT_BYTES`](super::MAX_DOCUMENT_BYTES).
    #[error("encoding: the document is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// The document's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The COSE_Sign1 envelope, its protected header or the payload is not
    /// strict CBOR.
    #[error("encoding: {part}: {source}")]
    Cbor {
        /// Which part: `COSE_Sign1`, `protected header` or `payload`.
        part: &'static str,
        /// What was wrong, and where in that part.
        #[source]
        source: CborError,
    },
    /// The envelope is not a COSE_Sign1 structure
    /// (`[protected: bstr, unprotected: map, payload: bstr, signature: bstr]`).
    #[error("COSE_Sign1: {0}")]
    CoseStructure(&'static str),
    /// The protected header does not say ES384 (`alg` −35), or the
    /// unprotected header names an algorithm too.
    #[error("COSE_Sign1: the protected header's algorithm is not ES384 (-35)")]
    CoseAlgorithm,
    /// The protected header lists critical parameters (`crit`), none of which
    /// this verifier understands.
    #[error("COSE_Sign1: the protected header has critical parameters")]
    CoseCritical,
    /// The signature is not 96 bytes (ES384: `r ‖ s`, 48 bytes each).
    #[error("COSE_Sign1: the signature is {len} bytes, not 96")]
    SignatureLength {
        /// Its length.
        len: usize,
    },
    /// A required payload field is absent.
    #[error("payload: required field {0} is missing")]
    MissingField(&'static str),
    /// A required payload field is `null`.
    #[error("payload: required field {0} is null")]
    NullField(&'static str),
    /// A payload field has the wrong CBOR type.
    #[error("payload: field {0} has the wrong type")]
    FieldType(&'static str),
    /// A payload field's length is outside what AWS documents for it.
    #[error("payload: field {field} is {len} bytes, outside {min}..={max}")]
    FieldLength {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The shortest allowed.
        min: usize,
        /// The longest allowed.
        max: usize,
    },
    /// The payload has a key that is not one of AWS's nine fields (or not
    /// text).
    #[error("payload: unknown field")]
    UnknownField,
    /// `digest` is not exactly `"SHA384"`.
    #[error("payload: digest is not \"SHA384\"")]
    Digest,
    /// A PCR index is not an integer in 0..=31.
    #[error("payload: a PCR index is not in 0..=31")]
    PcrIndex,
    /// A PCR value is not 48 bytes (a SHA-384 measurement).
    #[error("payload: PCR{index} is {len} bytes, not 48 (SHA384)")]
    PcrLength {
        /// The PCR.
        index: u8,
        /// Its length.
        len: usize,
    },

    // --- certificate chain ------------------------------------------------
    /// A certificate (or the trust anchor given to the verifier) is not a
    /// DER X.509 certificate.
    #[error("certificate chain: {0} is not a DER X.509 certificate")]
    CertificateDecode(ChainPosition),
    /// `cabundle[0]` is not the pinned root (its SHA-256 differs from the
    /// trust anchor's fingerprint).
    #[error("certificate chain: cabundle[0] is not the pinned root certificate")]
    UntrustedRoot,
    /// The chain is longer than [`MAX_CABUNDLE`](super::MAX_CABUNDLE).
    #[error("certificate chain: cabundle has {len} certificates, more than {max}")]
    ChainTooLong {
        /// cabundle's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A certificate is not X.509 version 3.
    #[error("certificate chain: {0} is not an X.509 v3 certificate")]
    CertificateVersion(ChainPosition),
    /// A certificate is not signed with ecdsa-with-SHA384 (or its outer and
    /// inner signature algorithms differ, or carry parameters).
    #[error("certificate chain: {0} is not signed with ecdsa-with-SHA384")]
    SignatureAlgorithm(ChainPosition),
    /// A certificate's key is not an EC key on P-384 (secp384r1).
    #[error("certificate chain: the key of {0} is not a P-384 EC key")]
    PublicKey(ChainPosition),
    /// A certificate's issuer is not its parent's subject.
    #[error("certificate chain: the issuer of {0} is not its parent's subject")]
    IssuerMismatch(ChainPosition),
    /// A certificate's signature does not verify with its parent's key.
    #[error("certificate chain: the signature on {0} does not verify with its parent's key")]
    ChainSignature(ChainPosition),
    /// A certificate is not yet valid at the verification time.
    #[error("certificate chain: {0} is not yet valid at the verification time")]
    NotYetValid(ChainPosition),
    /// A certificate has expired at the verification time.
    #[error("certificate chain: {0} has expired at the verification time")]
    Expired(ChainPosition),
    /// A CA certificate has no basicConstraints extension, or one not
    /// marked critical, or one with `cA` false; or the leaf is a CA.
    #[error("certificate chain: basicConstraints of {0}: {1}")]
    BasicConstraints(ChainPosition, &'static str),
    /// A CA certificate's keyUsage lacks keyCertSign (or is absent), or the
    /// leaf's lacks digitalSignature.
    #[error("certificate chain: keyUsage of {0}: {1}")]
    KeyUsage(ChainPosition, &'static str),
    /// More intermediate CAs below a CA than its pathLenConstraint allows.
    #[error("certificate chain: the path length constraint of {0} is exceeded")]
    PathLength(ChainPosition),
    /// A certificate has a critical extension this verifier does not
    /// process (RFC 5280 §4.2: it must then be refused), or an extension
    /// twice, or one that does not decode.
    #[error("certificate chain: {0} has an unsupported or malformed extension")]
    Extension(ChainPosition),

    // --- COSE signature ---------------------------------------------------
    /// The COSE_Sign1 signature does not verify with the leaf's key.
    #[error("COSE signature: does not verify with the leaf certificate's key")]
    CoseSignature,

    // --- time -------------------------------------------------------------
    /// The document's timestamp is outside its leaf certificate's validity.
    #[error("timestamp: the document's timestamp is outside its leaf certificate's validity")]
    TimestampOutsideLeaf,
    /// The document's timestamp is after the verification time (beyond the
    /// allowed clock skew).
    #[error("freshness: the document's timestamp is after the verification time")]
    FutureDated,
    /// The document is older than the maximum age allowed.
    #[error("freshness: the document is {age_s} s old, more than the {max_s} s allowed")]
    TooOld {
        /// Its age at the verification time, in seconds.
        age_s: u64,
        /// The maximum, in seconds.
        max_s: u64,
    },

    // --- the caller's expectations ------------------------------------------
    /// PCR0, PCR1 or PCR2 is all zeros: the enclave runs in debug mode
    /// (its memory is readable by the parent instance), and the caller did
    /// not allow it.
    #[error("policy: PCR{0} is all zeros (a debug-mode enclave) and debug mode is not allowed")]
    DebugMode(u8),
    /// An expected PCR is absent or differs.
    #[error("policy: PCR{0} does not match the expected value")]
    PcrMismatch(u8),
    /// The document's `nonce` is absent or differs from the expected one.
    #[error("policy: nonce does not match the expected value")]
    NonceMismatch,
    /// The document's `user_data` is absent or differs from the expected one.
    #[error("policy: user_data does not match the expected value")]
    UserDataMismatch,
    /// The document's `public_key` is absent or differs from the expected one.
    #[error("policy: public_key does not match the expected value")]
    PublicKeyMismatch,
}

impl AttestationError {
    /// A stable kebab-case name of the failed check (for logs and audit
    /// records): e.g. `cose-signature`, `chain-signature`, `expired`,
    /// `debug-mode`, `pcr-mismatch`.
    #[must_use]
    pub fn check(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too-large",
            Self::Cbor { .. } => "cbor",
            Self::CoseStructure(_) => "cose-structure",
            Self::CoseAlgorithm => "cose-algorithm",
            Self::CoseCritical => "cose-critical",
            Self::SignatureLength { .. } => "signature-length",
            Self::MissingField(_) => "missing-field",
            Self::NullField(_) => "null-field",
            Self::FieldType(_) => "field-type",
            Self::FieldLength { .. } => "field-length",
            Self::UnknownField => "unknown-field",
            Self::Digest => "digest",
            Self::PcrIndex => "pcr-index",
            Self::PcrLength { .. } => "pcr-length",
            Self::CertificateDecode(_) => "certificate-decode",
            Self::UntrustedRoot => "untrusted-root",
            Self::ChainTooLong { .. } => "chain-too-long",
            Self::CertificateVersion(_) => "certificate-version",
            Self::SignatureAlgorithm(_) => "signature-algorithm",
            Self::PublicKey(_) => "public-key",
            Self::IssuerMismatch(_) => "issuer-mismatch",
            Self::ChainSignature(_) => "chain-signature",
            Self::NotYetValid(_) => "not-yet-valid",
            Self::Expired(_) => "expired",
            Self::BasicConstraints(..) => "basic-constraints",
            Self::KeyUsage(..) => "key-usage",
            Self::PathLength(_) => "path-length",
            Self::Extension(_) => "extension",
            Self::CoseSignature => "cose-signature",
            Self::TimestampOutsideLeaf => "timestamp-outside-leaf",
            Self::FutureDated => "future-dated",
            Self::TooOld { .. } => "too-old",
            Self::DebugMode(_) => "debug-mode",
            Self::PcrMismatch(_) => "pcr-mismatch",
            Self::NonceMismatch => "nonce-mismatch",
            Self::UserDataMismatch => "user-data-mismatch",
            Self::PublicKeyMismatch => "public-key-mismatch",
        }
    }
}
