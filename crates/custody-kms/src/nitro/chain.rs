//! The certificate chain `certificate ← cabundle[N..1] ← root`, checked as
//! AWS's "Verify the root of trust" asks: the root pinned by the SHA-256 of
//! its DER (the bundle's own copy is never trusted), ecdsa-with-SHA384 and
//! P-384 keys at every link, critical basicConstraints with `cA` and
//! keyUsage with keyCertSign on every CA, path lengths, and every
//! certificate valid at the verification time.

use p384::ecdsa::signature::Verifier as _;
use p384::ecdsa::{DerSignature, VerifyingKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::Version;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::document::AttestationDocument;
use super::error::{AttestationError, ChainPosition};

/// ecdsa-with-SHA384 (RFC 5758 §3.2): `1.2.840.10045.4.3.3`.
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-ecPublicKey (RFC 5480 §2.1.1): `1.2.840.10045.2.1`.
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1 (RFC 5480 §2.1.1.1): `1.3.132.0.34`.
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// id-ce-basicConstraints (RFC 5280 §4.2.1.9): `2.5.29.19`.
const ID_CE_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
/// id-ce-keyUsage (RFC 5280 §4.2.1.3): `2.5.29.15`.
const ID_CE_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");

/// The SHA-256 of the DER of the AWS Nitro Enclaves root certificate G1
/// (`CN=aws.nitro-enclaves`, valid 2019-10-28 to 2049-10-28), as AWS
/// publishes it: `641a0321…79bb5b`.
pub const AWS_NITRO_ROOT_G1_SHA256: [u8; 32] = [
    0x64, 0x1a, 0x03, 0x21, 0xa3, 0xe2, 0x44, 0xef, 0xe4, 0x56, 0x46, 0x31, 0x95, 0xd6, 0x06, 0x31,
    0x7e, 0xd7, 0xcd, 0xcc, 0x3c, 0x17, 0x56, 0xe0, 0x98, 0x93, 0xf3, 0xc6, 0x8f, 0x79, 0xbb, 0x5b,
];

/// The AWS Nitro Enclaves root certificate G1 (DER), from AWS's
/// `AWS_NitroEnclaves_Root-G1.zip`; [`TrustAnchor::aws_nitro_root_g1`]
/// refuses it unless its SHA-256 is [`AWS_NITRO_ROOT_G1_SHA256`].
const AWS_NITRO_ROOT_G1_DER: &[u8] = include_bytes!("aws_nitro_root_g1.der");

/// The root a document's chain must end in, pinned by the SHA-256 of its
/// DER. A document's `cabundle[0]` must hash to the same fingerprint; the
/// chain is then checked from this anchor's own certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    der: Vec<u8>,
    fingerprint: [u8; 32],
}

impl TrustAnchor {
    /// AWS's Nitro Enclaves root certificate G1, pinned by
    /// [`AWS_NITRO_ROOT_G1_SHA256`]: the anchor for real documents.
    ///
    /// # Errors
    /// None in practice: as [`TrustAnchor::pinned`], on the embedded
    /// certificate (a test proves it passes).
    pub fn aws_nitro_root_g1() -> Result<Self, AttestationError> {
        Self::pinned(AWS_NITRO_ROOT_G1_DER, &AWS_NITRO_ROOT_G1_SHA256)
    }

    /// The root certificate `der`, if its SHA-256 is `sha256`.
    ///
    /// # Errors
    /// [`AttestationError::UntrustedRoot`] if the fingerprint differs; else
    /// as [`TrustAnchor::from_der`].
    pub fn pinned(der: &[u8], sha256: &[u8; 32]) -> Result<Self, AttestationError> {
        let anchor = Self::from_der(der)?;
        if &anchor.fingerprint != sha256 {
            return Err(AttestationError::UntrustedRoot);
        }
        Ok(anchor)
    }

    /// Pins the root certificate `der` (a test root, or a root another way
    /// distributed): it must be a self-signed P-384 CA certificate signed
    /// with ecdsa-with-SHA384 (critical basicConstraints with `cA`, keyUsage
    /// with keyCertSign). Its validity is checked at each verification.
    ///
    /// # Errors
    /// The [`AttestationError`] of the first check that fails, at position
    /// [`ChainPosition::Root`].
    pub fn from_der(der: &[u8]) -> Result<Self, AttestationError> {
        let root = ParsedCert::parse(der, ChainPosition::Root)?;
        root.check_profile(Role::Ca { below: 0 })?;
        root.check_issued_by(&root)?;
        Ok(Self {
            der: der.to_vec(),
            fingerprint: Sha256::digest(der).into(),
        })
    }

    /// The SHA-256 of the root certificate's DER.
    #[must_use]
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// The root certificate's DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// What a certificate is in the chain.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// A CA with `below` intermediate CAs under it (the leaf not counted).
    Ca { below: usize },
    /// The leaf: it signs the document.
    Leaf,
}

/// A certificate decoded, with the exact bytes its issuer signed and its
/// P-384 key.
struct ParsedCert<'a> {
    position: ChainPosition,
    cert: Certificate,
    tbs: &'a [u8],
    key: VerifyingKey,
}

/// The DER of the `tbsCertificate` inside a certificate's DER, as it is in
/// the input (what the signature covers, never a re-encoding).
fn raw_tbs(der: &[u8]) -> Option<&[u8]> {
    let mut reader = SliceReader::new(der).ok()?;
    reader
        .sequence(|outer| {
            let tbs = outer.tlv_bytes()?;
            outer.tlv_bytes()?; // signatureAlgorithm
            outer.tlv_bytes()?; // signatureValue
            Ok::<_, x509_cert::der::Error>(tbs)
        })
        .ok()
}

fn is_ecdsa_with_sha384(alg: &AlgorithmIdentifierOwned) -> bool {
    // RFC 5758 §3.2: the parameters field MUST be absent.
    alg.oid == ECDSA_WITH_SHA384 && alg.parameters.is_none()
}

impl<'a> ParsedCert<'a> {
    /// Decodes `der` (strict DER, nothing after it), requires X.509 v3,
    /// ecdsa-with-SHA384 (the same in the certificate and its TBS part) and
    /// a P-384 key.
    fn parse(der: &'a [u8], position: ChainPosition) -> Result<Self, AttestationError> {
        let decode = AttestationError::CertificateDecode(position);
        let cert = Certificate::from_der(der).map_err(|_| decode.clone())?;
        let tbs = raw_tbs(der).ok_or(decode)?;
        let tbs_part = cert.tbs_certificate();
        if tbs_part.version() != Version::V3 {
            return Err(AttestationError::CertificateVersion(position));
        }
        if !is_ecdsa_with_sha384(cert.signature_algorithm())
            || tbs_part.signature() != cert.signature_algorithm()
        {
            return Err(AttestationError::SignatureAlgorithm(position));
        }
        let spki = tbs_part.subject_public_key_info();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY || curve != Some(SECP384R1) {
            return Err(AttestationError::PublicKey(position));
        }
        let key = spki
            .subject_public_key
            .as_bytes()
            .and_then(|point| VerifyingKey::from_sec1_bytes(point).ok())
            .ok_or(AttestationError::PublicKey(position))?;
        Ok(Self {
            position,
            cert,
            tbs,
            key,
        })
    }

    /// `self` names `issuer` as its issuer and `issuer`'s key signed it.
    fn check_issued_by(&self, issuer: &ParsedCert<'_>) -> Result<(), AttestationError> {
        let tbs = self.cert.tbs_certificate();
        if tbs.issuer() != issuer.cert.tbs_certificate().subject() {
            return Err(AttestationError::IssuerMismatch(self.position));
        }
        let bad = AttestationError::ChainSignature(self.position);
        let signature = self
            .cert
            .signature()
            .as_bytes()
            .ok_or_else(|| bad.clone())
            .and_then(|der| DerSignature::from_bytes(der).map_err(|_| bad.clone()))?;
        issuer.key.verify(self.tbs, &signature).map_err(|_| bad)
    }

    /// `notBefore <= at <= notAfter` (RFC 5280 §4.1.2.5: both inclusive),
    /// in seconds since the UNIX epoch.
    fn check_valid_at(&self, at: u64) -> Result<(), AttestationError> {
        let (not_before, not_after) = self.validity();
        if at < not_before {
            return Err(AttestationError::NotYetValid(self.position));
        }
        if at > not_after {
            return Err(AttestationError::Expired(self.position));
        }
        Ok(())
    }

    /// notBefore and notAfter, in seconds since the UNIX epoch.
    fn validity(&self) -> (u64, u64) {
        let validity = self.cert.tbs_certificate().validity();
        (
            validity.not_before.to_unix_duration().as_secs(),
            validity.not_after.to_unix_duration().as_secs(),
        )
    }

    /// The extensions a CA or the leaf must (and may) have. Every critical
    /// extension must be one checked here (RFC 5280 §4.2); an extension
    /// may appear once only.
    fn check_profile(&self, role: Role) -> Result<(), AttestationError> {
        let position = self.position;
        let malformed = AttestationError::Extension(position);
        let mut basic: Option<(bool, BasicConstraints)> = None;
        let mut usage: Option<KeyUsage> = None;
        let mut seen: Vec<&ObjectIdentifier> = Vec::new();
        for ext in self
            .cert
            .tbs_certificate()
            .extensions()
            .map_or(&[][..], Vec::as_slice)
        {
            if seen.contains(&&ext.extn_id) {
                return Err(malformed);
            }
            seen.push(&ext.extn_id);
            if ext.extn_id == ID_CE_BASIC_CONSTRAINTS {
                let value = BasicConstraints::from_der(ext.extn_value.as_bytes())
                    .map_err(|_| malformed.clone())?;
                basic = Some((ext.critical, value));
            } else if ext.extn_id == ID_CE_KEY_USAGE {
                let value =
                    KeyUsage::from_der(ext.extn_value.as_bytes()).map_err(|_| malformed.clone())?;
                usage = Some(value);
            } else if ext.critical {
                return Err(malformed);
            }
        }
        match role {
            Role::Ca { below } => {
                let Some((critical, basic)) = basic else {
                    return Err(AttestationError::BasicConstraints(position, "missing"));
                };
                if !critical {
                    return Err(AttestationError::BasicConstraints(
                        position,
                        "not marked critical",
                    ));
                }
                if !basic.ca {
                    return Err(AttestationError::BasicConstraints(position, "cA is false"));
                }
                match usage {
                    None => return Err(AttestationError::KeyUsage(position, "missing")),
                    Some(u) if !u.key_cert_sign() => {
                        return Err(AttestationError::KeyUsage(position, "no keyCertSign"));
                    }
                    Some(_) => {}
                }
                if let Some(max) = basic.path_len_constraint
                    && below > usize::from(max)
                {
                    return Err(AttestationError::PathLength(position));
                }
            }
            Role::Leaf => {
                if basic.is_some_and(|(_, basic)| basic.ca) {
                    return Err(AttestationError::BasicConstraints(
                        position,
                        "the leaf is a CA",
                    ));
                }
                if usage.is_some_and(|u| !u.digital_signature()) {
                    return Err(AttestationError::KeyUsage(position, "no digitalSignature"));
                }
            }
        }
        Ok(())
    }
}

/// What the chain proves: the leaf's key and its validity window.
pub(crate) struct VerifiedLeaf {
    /// The leaf certificate's P-384 key.
    pub(crate) key: VerifyingKey,
    /// The leaf's notBefore, in seconds since the UNIX epoch.
    pub(crate) not_before: u64,
    /// The leaf's notAfter, in seconds since the UNIX epoch.
    pub(crate) not_after: u64,
}

/// Checks `document`'s chain `[anchor, cabundle[1..], certificate]` at
/// `at` (seconds since the UNIX epoch): `cabundle[0]` is the pinned root,
/// then each certificate from the top down is checked for its algorithm
/// and key, its issuer and signature, its validity at `at`, and its
/// extensions for its role.
pub(crate) fn verify_chain(
    anchor: &TrustAnchor,
    document: &AttestationDocument,
    at: u64,
) -> Result<VerifiedLeaf, AttestationError> {
    let bundle = document.cabundle();
    let claimed_root = bundle.first().ok_or(AttestationError::UntrustedRoot)?;
    let claimed: [u8; 32] = Sha256::digest(claimed_root).into();
    if claimed != anchor.fingerprint {
        return Err(AttestationError::UntrustedRoot);
    }
    let intermediates = bundle.get(1..).unwrap_or_default();

    let root = ParsedCert::parse(&anchor.der, ChainPosition::Root)?;
    root.check_issued_by(&root)?;
    root.check_valid_at(at)?;
    root.check_profile(Role::Ca {
        below: intermediates.len(),
    })?;

    let mut parent = root;
    for (i, der) in intermediates.iter().enumerate() {
        let index = i + 1;
        let cert = ParsedCert::parse(der, ChainPosition::Intermediate(index))?;
        cert.check_issued_by(&parent)?;
        cert.check_valid_at(at)?;
        cert.check_profile(Role::Ca {
            below: intermediates.len().saturating_sub(index),
        })?;
        parent = cert;
    }

    let leaf = ParsedCert::parse(document.certificate(), ChainPosition::Leaf)?;
    leaf.check_issued_by(&parent)?;
    leaf.check_valid_at(at)?;
    leaf.check_profile(Role::Leaf)?;
    let (not_before, not_after) = leaf.validity();
    Ok(VerifiedLeaf {
        key: leaf.key,
        not_before,
        not_after,
    })
}
