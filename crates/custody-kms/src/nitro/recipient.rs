//! KMS's `CiphertextForRecipient` and the one-shot ephemeral RSA key that
//! opens it.
//!
//! When a KMS `Decrypt` (or `GenerateDataKey`, ...) carries a `Recipient`
//! (an enclave's attestation document and `RSAES_OAEP_SHA_256`), KMS
//! returns no `Plaintext`: it returns `CiphertextForRecipient`, a CMS
//! `ContentInfo` (RFC 5652) in BER with indefinite lengths:
//!
//! ```text
//! ContentInfo { id-envelopedData, [0] EnvelopedData {
//!   version 2,
//!   recipientInfos SET { KeyTransRecipientInfo {      -- exactly one
//!     version 2, rid [0] subjectKeyIdentifier,      -- read, not compared
//!     keyEncryptionAlgorithm id-RSAES-OAEP { [0] sha256, [1] mgf1(sha256) },
//!     encryptedKey OCTET STRING } },                  -- the AES key, RSA-OAEP
//!   encryptedContentInfo { id-data,
//!     aes256-CBC (IV OCTET STRING(16)),
//!     [0] encryptedContent } } }                      -- possibly chunked
//! ```
//!
//! [`CiphertextForRecipient::parse`] reads exactly that with a strict BER
//! walker (depth and size bounded, every structural fault a typed
//! [`RecipientError`]); [`EphemeralRsaKey::open`] decrypts it, consuming
//! the key. Every failure once the structure is read (the RSA-OAEP
//! unwrap, the content key's length, the CBC padding, checked in constant
//! time) is the one opaque [`RecipientError::DecryptionFailed`].

use std::fmt;

use aes::Aes256;
use cbc::cipher::{Array, BlockModeDecrypt, KeyIvInit};
use rsa::pkcs8::EncodePublicKey;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq, ConstantTimeGreater};
use zeroize::Zeroizing;

use super::ber::{
    self, BerError, Element, INTEGER, NULL, OCTET_STRING, OID, Reader, SEQUENCE, SET,
    context_constructed, context_primitive,
};
use super::nsm::{AttestRequest, Nsm, NsmError};

/// The largest `CiphertextForRecipient` read: KMS decrypts at most 4096
/// bytes, which with the RSA-2048 key transport and the CMS framing is
/// well under this.
pub const MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES: usize = 16 * 1024;

/// The size of the ephemeral key's modulus.
pub const EPHEMERAL_RSA_BITS: usize = 2048;

// OBJECT IDENTIFIER contents (no tag, no length).
/// id-envelopedData, 1.2.840.113549.1.7.3 (RFC 5652).
const ID_ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
/// id-data, 1.2.840.113549.1.7.1.
const ID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
/// id-RSAES-OAEP, 1.2.840.113549.1.1.7 (RFC 8017, RFC 4055).
const ID_RSAES_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
/// id-mgf1, 1.2.840.113549.1.1.8.
const ID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
/// id-pSpecified, 1.2.840.113549.1.1.9.
const ID_P_SPECIFIED: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x09];
/// id-sha256, 2.16.840.1.101.3.4.2.1 (RFC 5754).
const ID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-aes256-CBC, 2.16.840.1.101.3.4.1.42 (RFC 3565).
const ID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];

/// Why a `CiphertextForRecipient` is refused, or the key that opens it
/// could not be made.
///
/// Structural variants name the part and the fault (public structure
/// only); everything about the secret parts is
/// [`RecipientError::DecryptionFailed`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    /// Over [`MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES`].
    #[error("CiphertextForRecipient of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not the BER this reader takes, in `part`.
    #[error("CiphertextForRecipient: {part}: {source}")]
    Ber {
        /// The structure being read.
        part: &'static str,
        /// What is wrong.
        #[source]
        source: BerError,
    },
    /// The ContentInfo is not an EnvelopedData.
    #[error("CiphertextForRecipient is not a CMS EnvelopedData")]
    ContentType,
    /// A version other than the one KMS writes (2).
    #[error("CiphertextForRecipient: {part} version {found}, expected 2")]
    Version {
        /// `EnvelopedData` or `KeyTransRecipientInfo`.
        part: &'static str,
        /// The version read.
        found: u64,
    },
    /// An optional part KMS never writes (originatorInfo,
    /// unprotectedAttrs).
    #[error("CiphertextForRecipient: unsupported {0}")]
    Unsupported(&'static str),
    /// Not exactly one recipient.
    #[error("CiphertextForRecipient has {0} recipients, expected one")]
    RecipientCount(usize),
    /// The recipient is not a KeyTransRecipientInfo by subjectKeyIdentifier.
    #[error("CiphertextForRecipient: the recipient is not key transport by subjectKeyIdentifier")]
    RecipientIdentifier,
    /// Key transport other than RSAES-OAEP with SHA-256, MGF1-SHA-256 and
    /// an empty label.
    #[error("CiphertextForRecipient: key transport is not RSAES-OAEP-SHA256/MGF1-SHA256")]
    KeyEncryptionAlgorithm,
    /// The encrypted content is not `id-data`.
    #[error("CiphertextForRecipient: the encrypted content type is not id-data")]
    EncryptedContentType,
    /// Content encryption other than AES-256-CBC.
    #[error("CiphertextForRecipient: content encryption is not AES-256-CBC")]
    ContentEncryptionAlgorithm,
    /// An AES-CBC IV that is not 16 bytes.
    #[error("CiphertextForRecipient: an IV of {0} bytes, expected 16")]
    IvLength(usize),
    /// Encrypted content that is absent, empty or not whole blocks.
    #[error(
        "CiphertextForRecipient: {0} bytes of encrypted content, not a positive multiple of 16"
    )]
    ContentLength(usize),
    /// The key did not open it: another recipient's key, tampered bytes,
    /// a content key that is not 32 bytes, bad padding. Deliberately
    /// opaque.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The ephemeral key could not be made (the OS RNG failed) or encoded.
    #[error("the ephemeral RSA key could not be made")]
    KeyGeneration,
}

impl custody_core::BackendError for RecipientError {
    fn kind(&self) -> &'static str {
        "enclave-recipient"
    }
}

fn ber(part: &'static str) -> impl Fn(BerError) -> RecipientError {
    move |source| RecipientError::Ber { part, source }
}

/// A parsed `CiphertextForRecipient`: the public structure read, the
/// secret parts still encrypted. `Debug` shows lengths only.
#[derive(Clone, PartialEq, Eq)]
pub struct CiphertextForRecipient {
    subject_key_identifier: Vec<u8>,
    encrypted_key: Vec<u8>,
    iv: [u8; 16],
    encrypted_content: Vec<u8>,
}

impl fmt::Debug for CiphertextForRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiphertextForRecipient")
            .field(
                "subject_key_identifier_len",
                &self.subject_key_identifier.len(),
            )
            .field("encrypted_key_len", &self.encrypted_key.len())
            .field("encrypted_content_len", &self.encrypted_content.len())
            .finish()
    }
}

/// An AlgorithmIdentifier's OID and its parameters (the rest of its
/// SEQUENCE).
fn algorithm<'a>(
    element: &Element<'a>,
    part: &'static str,
) -> Result<(&'a [u8], Reader<'a>), RecipientError> {
    let mut fields = element.children().map_err(ber(part))?;
    let oid = fields.expect(OID).map_err(ber(part))?;
    Ok((oid.body, fields))
}

/// An AlgorithmIdentifier that must be SHA-256, parameters absent or NULL.
fn expect_sha256(element: &Element<'_>) -> Result<(), RecipientError> {
    let part = "RSAES-OAEP hash";
    let (oid, mut params) = algorithm(element, part)?;
    if oid != ID_SHA256 {
        return Err(RecipientError::KeyEncryptionAlgorithm);
    }
    if let Some(null) = params.optional(NULL).map_err(ber(part))?
        && !null.body.is_empty()
    {
        return Err(RecipientError::KeyEncryptionAlgorithm);
    }
    params.finish().map_err(ber(part))
}

/// RSAES-OAEP-params (RFC 8017 A.2.1) that must say SHA-256, MGF1 with
/// SHA-256 and an empty label. Absent parameters mean SHA-1: refused.
fn expect_oaep_sha256(mut params: Reader<'_>) -> Result<(), RecipientError> {
    let part = "RSAES-OAEP-params";
    let seq = params
        .next()
        .map_err(ber(part))?
        .ok_or(RecipientError::KeyEncryptionAlgorithm)?;
    if seq.tag != SEQUENCE {
        return Err(RecipientError::KeyEncryptionAlgorithm);
    }
    params.finish().map_err(ber(part))?;
    let mut fields = seq.children().map_err(ber(part))?;
    // [0] hashAlgorithm: required here (its default is SHA-1).
    let hash = fields
        .optional(context_constructed(0))
        .map_err(ber(part))?
        .ok_or(RecipientError::KeyEncryptionAlgorithm)?;
    let mut inner = hash.children().map_err(ber(part))?;
    expect_sha256(&inner.expect(SEQUENCE).map_err(ber(part))?)?;
    inner.finish().map_err(ber(part))?;
    // [1] maskGenAlgorithm: required (default MGF1-SHA-1).
    let mgf = fields
        .optional(context_constructed(1))
        .map_err(ber(part))?
        .ok_or(RecipientError::KeyEncryptionAlgorithm)?;
    let mut inner = mgf.children().map_err(ber(part))?;
    let mgf_alg = inner.expect(SEQUENCE).map_err(ber(part))?;
    inner.finish().map_err(ber(part))?;
    let (oid, mut mgf_params) = algorithm(&mgf_alg, part)?;
    if oid != ID_MGF1 {
        return Err(RecipientError::KeyEncryptionAlgorithm);
    }
    expect_sha256(&mgf_params.expect(SEQUENCE).map_err(ber(part))?)?;
    mgf_params.finish().map_err(ber(part))?;
    // [2] pSourceAlgorithm: absent (an empty label) or pSpecified(empty).
    if let Some(source) = fields.optional(context_constructed(2)).map_err(ber(part))? {
        let mut inner = source.children().map_err(ber(part))?;
        let alg = inner.expect(SEQUENCE).map_err(ber(part))?;
        inner.finish().map_err(ber(part))?;
        let (oid, mut label) = algorithm(&alg, part)?;
        let label_bytes = label
            .next()
            .map_err(ber(part))?
            .ok_or(RecipientError::Ber {
                part,
                source: BerError::Missing,
            })?;
        label.finish().map_err(ber(part))?;
        if label_bytes.tag & !ber::CONSTRUCTED != OCTET_STRING {
            return Err(RecipientError::KeyEncryptionAlgorithm);
        }
        if oid != ID_P_SPECIFIED || !label_bytes.octets().map_err(ber(part))?.is_empty() {
            return Err(RecipientError::KeyEncryptionAlgorithm);
        }
    }
    // [3] trailerField does not exist in RSAES-OAEP-params.
    fields.finish().map_err(ber(part))
}

impl CiphertextForRecipient {
    /// Reads `bytes` strictly (see the module docs).
    ///
    /// # Errors
    /// [`RecipientError::TooLarge`]; [`RecipientError::Ber`] for bytes
    /// that are not well-formed BER of this structure; and a named variant
    /// for each field of another value than KMS writes.
    pub fn parse(bytes: &[u8]) -> Result<Self, RecipientError> {
        if bytes.len() > MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES {
            return Err(RecipientError::TooLarge {
                len: bytes.len(),
                max: MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES,
            });
        }
        // ContentInfo
        let part = "ContentInfo";
        let content_info = Reader::single(bytes).map_err(ber(part))?;
        if content_info.tag != SEQUENCE {
            return Err(RecipientError::Ber {
                part,
                source: BerError::UnexpectedTag {
                    expected: SEQUENCE,
                    found: content_info.tag,
                },
            });
        }
        let mut fields = content_info.children().map_err(ber(part))?;
        if fields.expect(OID).map_err(ber(part))?.body != ID_ENVELOPED_DATA {
            return Err(RecipientError::ContentType);
        }
        let explicit = fields.expect(context_constructed(0)).map_err(ber(part))?;
        fields.finish().map_err(ber(part))?;
        let mut inner = explicit.children().map_err(ber(part))?;
        let enveloped = inner.expect(SEQUENCE).map_err(ber(part))?;
        inner.finish().map_err(ber(part))?;

        // EnvelopedData
        let part = "EnvelopedData";
        let mut fields = enveloped.children().map_err(ber(part))?;
        let version = fields
            .expect(INTEGER)
            .and_then(|v| v.small_uint())
            .map_err(ber(part))?;
        if version != 2 {
            return Err(RecipientError::Version {
                part,
                found: version,
            });
        }
        if fields.peek_tag() == Some(context_constructed(0)) {
            return Err(RecipientError::Unsupported("originatorInfo"));
        }
        let recipients = fields.expect(SET).map_err(ber(part))?;
        let encrypted_content_info = fields.expect(SEQUENCE).map_err(ber(part))?;
        if fields.peek_tag() == Some(context_constructed(1)) {
            return Err(RecipientError::Unsupported("unprotectedAttrs"));
        }
        fields.finish().map_err(ber(part))?;

        // recipientInfos: exactly one KeyTransRecipientInfo.
        let part = "RecipientInfos";
        let mut all = recipients.children().map_err(ber(part))?;
        let mut found = Vec::new();
        while let Some(r) = all.next().map_err(ber(part))? {
            found.push(r);
        }
        let [recipient] = found[..] else {
            return Err(RecipientError::RecipientCount(found.len()));
        };
        // KeyTransRecipientInfo is the only RecipientInfo that is a bare
        // SEQUENCE (the others are [1]..[4]).
        if recipient.tag != SEQUENCE {
            return Err(RecipientError::RecipientIdentifier);
        }
        let part = "KeyTransRecipientInfo";
        let mut fields = recipient.children().map_err(ber(part))?;
        let version = fields
            .expect(INTEGER)
            .and_then(|v| v.small_uint())
            .map_err(ber(part))?;
        if version != 2 {
            return Err(RecipientError::Version {
                part,
                found: version,
            });
        }
        let rid = fields
            .next()
            .map_err(ber(part))?
            .ok_or(RecipientError::Ber {
                part,
                source: BerError::Missing,
            })?;
        // [0] IMPLICIT SubjectKeyIdentifier (an OCTET STRING, possibly
        // chunked); issuerAndSerialNumber (a SEQUENCE) is refused.
        if rid.tag & !ber::CONSTRUCTED != context_primitive(0) {
            return Err(RecipientError::RecipientIdentifier);
        }
        let subject_key_identifier = rid.octets().map_err(ber(part))?;
        let key_alg = fields.expect(SEQUENCE).map_err(ber(part))?;
        let encrypted_key = fields
            .next()
            .map_err(ber(part))?
            .ok_or(RecipientError::Ber {
                part,
                source: BerError::Missing,
            })?;
        if encrypted_key.tag & !ber::CONSTRUCTED != OCTET_STRING {
            return Err(RecipientError::Ber {
                part,
                source: BerError::UnexpectedTag {
                    expected: OCTET_STRING,
                    found: encrypted_key.tag,
                },
            });
        }
        let encrypted_key = encrypted_key.octets().map_err(ber(part))?;
        fields.finish().map_err(ber(part))?;
        let (oid, params) = algorithm(&key_alg, "keyEncryptionAlgorithm")?;
        if oid != ID_RSAES_OAEP {
            return Err(RecipientError::KeyEncryptionAlgorithm);
        }
        expect_oaep_sha256(params)?;

        // EncryptedContentInfo
        let part = "EncryptedContentInfo";
        let mut fields = encrypted_content_info.children().map_err(ber(part))?;
        if fields.expect(OID).map_err(ber(part))?.body != ID_DATA {
            return Err(RecipientError::EncryptedContentType);
        }
        let content_alg = fields.expect(SEQUENCE).map_err(ber(part))?;
        let content = match fields.next().map_err(ber(part))? {
            Some(c) if c.tag & !ber::CONSTRUCTED == context_primitive(0) => {
                c.octets().map_err(ber(part))?
            }
            Some(c) => {
                return Err(RecipientError::Ber {
                    part,
                    source: BerError::UnexpectedTag {
                        expected: context_primitive(0),
                        found: c.tag,
                    },
                });
            }
            None => return Err(RecipientError::ContentLength(0)),
        };
        fields.finish().map_err(ber(part))?;
        let (oid, mut params) = algorithm(&content_alg, "contentEncryptionAlgorithm")?;
        if oid != ID_AES256_CBC {
            return Err(RecipientError::ContentEncryptionAlgorithm);
        }
        let iv = params
            .next()
            .map_err(ber("contentEncryptionAlgorithm"))?
            .ok_or(RecipientError::IvLength(0))?;
        if iv.tag & !ber::CONSTRUCTED != OCTET_STRING {
            return Err(RecipientError::Ber {
                part: "contentEncryptionAlgorithm",
                source: BerError::UnexpectedTag {
                    expected: OCTET_STRING,
                    found: iv.tag,
                },
            });
        }
        params.finish().map_err(ber("contentEncryptionAlgorithm"))?;
        let iv = iv.octets().map_err(ber("contentEncryptionAlgorithm"))?;
        let iv: [u8; 16] = iv[..]
            .try_into()
            .map_err(|_| RecipientError::IvLength(iv.len()))?;
        if content.is_empty() || !content.len().is_multiple_of(16) {
            return Err(RecipientError::ContentLength(content.len()));
        }
        Ok(Self {
            subject_key_identifier,
            encrypted_key,
            iv,
            encrypted_content: content,
        })
    }

    /// The recipient's subjectKeyIdentifier, as KMS wrote it. **Not
    /// compared with the ephemeral key, on purpose**:
    ///
    /// - AWS documents no rule for it. The `Recipient`'s key reaches KMS as
    ///   a bare `SubjectPublicKeyInfo` in the attestation document, not as
    ///   a certificate with a subjectKeyIdentifier extension to echo, and
    ///   RFC 5280 §4.2.1.2's two methods are only suggestions; KMS's value
    ///   is an implementation detail that could change without notice. A
    ///   comparison with a derivation we guessed would refuse every
    ///   genuine answer the day it differs.
    /// - AWS's own enclave SDK (aws-nitro-enclaves-sdk-c,
    ///   `aws_cms_parse_enveloped_data`) skips the rid unread.
    /// - It would prove nothing: the identifier is public (anyone who can
    ///   encrypt to the attested key can write the matching value), so it
    ///   authenticates no sender. What binds the answer to this enclave is
    ///   that only its ephemeral key opens it (RSA-OAEP), and what binds
    ///   the plaintext to the envelope it unwraps is that envelope's
    ///   AES-GCM tag.
    ///
    /// It is kept (and read strictly: `[0]` with an OCTET STRING body) for
    /// logs and diagnostics only.
    #[must_use]
    pub fn subject_key_identifier(&self) -> &[u8] {
        &self.subject_key_identifier
    }

    /// The RSA-OAEP-encrypted content-encryption key.
    #[must_use]
    pub fn encrypted_key(&self) -> &[u8] {
        &self.encrypted_key
    }

    /// The AES-CBC IV.
    #[must_use]
    pub fn iv(&self) -> &[u8; 16] {
        &self.iv
    }

    /// The AES-256-CBC ciphertext (the chunks joined).
    #[must_use]
    pub fn encrypted_content(&self) -> &[u8] {
        &self.encrypted_content
    }
}

/// What a `CiphertextForRecipient` decrypted to: key material (for an
/// attested unwrap, the data key). Zeroized on drop; `Debug` shows the
/// type name only.
pub struct RecipientPlaintext(Zeroizing<Vec<u8>>);

impl RecipientPlaintext {
    /// The plaintext. **Key material**: keep it in zeroizing memory.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for RecipientPlaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecipientPlaintext(..)")
    }
}

/// AES-256-CBC decryption and a constant-time PKCS#7 check; every
/// failure the same opaque error.
fn aes256_cbc_open(
    key: &[u8],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Result<RecipientPlaintext, RecipientError> {
    let mut decryptor = cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
        .map_err(|_| RecipientError::DecryptionFailed)?;
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(RecipientError::DecryptionFailed);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    let mut block = Zeroizing::new(Array::<u8, cbc::cipher::consts::U16>::default());
    for chunk in ciphertext.chunks_exact(16) {
        block.copy_from_slice(chunk);
        decryptor.decrypt_block(&mut block);
        out.extend_from_slice(&block[..]);
    }
    // PKCS#7 (RFC 5652 §6.3): the last byte p in 1..=16, the last p bytes
    // all p. Checked over the whole last block without branching on it.
    let last: [u8; 16] = out[out.len() - 16..]
        .try_into()
        .map_err(|_| RecipientError::DecryptionFailed)?;
    let pad = last[15];
    let mut good = !pad.ct_eq(&0) & !pad.ct_gt(&16);
    for (i, byte) in last.iter().enumerate() {
        let from_end = 16 - i as u8; // 16..=1
        let in_padding: Choice = !from_end.ct_gt(&pad);
        good &= !(in_padding & !byte.ct_eq(&pad));
    }
    if !bool::from(good) {
        return Err(RecipientError::DecryptionFailed);
    }
    let keep = out.len() - usize::from(pad);
    out.truncate(keep);
    Ok(RecipientPlaintext(out))
}

/// The enclave's ephemeral RSA-2048 key, made fresh for one attested
/// unwrap: it exists to be named in one attestation document and to open
/// one `CiphertextForRecipient`, and nothing else.
///
/// - Made inside the enclave ([`EphemeralRsaKey::generate`], the OS RNG);
///   never serialized, never exported, zeroized on drop.
/// - Its only private-key operation is [`EphemeralRsaKey::open`], which
///   takes the key **by value**: it decrypts exactly once, and only a
///   well-formed `CiphertextForRecipient` (RSAES-OAEP-SHA256 key transport
///   of an AES-256 key). No signature, no raw RSA, no PKCS#1 v1.5, no
///   second decryption: an attacker who can submit ciphertexts gets one
///   answer per key, so the many timing measurements the Marvin attack
///   (RUSTSEC-2023-0071) needs never exist (SECURITY.md).
///
/// A second decryption does not compile:
///
/// ```compile_fail,E0382
/// # fn demo(first: &[u8], second: &[u8]) -> Result<(), custody_kms::nitro::RecipientError> {
/// let key = custody_kms::nitro::EphemeralRsaKey::generate()?;
/// let _one = key.open(first)?;
/// let _two = key.open(second)?; // use of moved value: `key`
/// # Ok(()) }
/// ```
///
/// `Debug` shows the type name only.
pub struct EphemeralRsaKey {
    key: rsa::PrivateKey,
    spki: Vec<u8>,
}

impl EphemeralRsaKey {
    /// A fresh RSA-2048 key (public exponent 65537) from the OS RNG.
    ///
    /// # Errors
    /// [`RecipientError::KeyGeneration`] if the RNG fails.
    pub fn generate() -> Result<Self, RecipientError> {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, EPHEMERAL_RSA_BITS)
            .map_err(|_| RecipientError::KeyGeneration)?;
        Self::from_key(key)
    }

    fn from_key(key: rsa::PrivateKey) -> Result<Self, RecipientError> {
        let spki = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|_| RecipientError::KeyGeneration)?
            .into_vec();
        Ok(Self { key, spki })
    }

    /// A key from its PKCS#8 DER: **tests only** (feature `nsm-fake`), to
    /// open committed vectors made for a fixed key. A production enclave
    /// only ever makes its key with [`EphemeralRsaKey::generate`].
    ///
    /// # Errors
    /// [`RecipientError::KeyGeneration`] if `der` is not an RSA key of
    /// [`EPHEMERAL_RSA_BITS`] bits.
    #[cfg(feature = "nsm-fake")]
    pub fn from_pkcs8_der_for_tests(der: &[u8]) -> Result<Self, RecipientError> {
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key =
            rsa::PrivateKey::from_pkcs8_der(der).map_err(|_| RecipientError::KeyGeneration)?;
        if key.size() * 8 != EPHEMERAL_RSA_BITS {
            return Err(RecipientError::KeyGeneration);
        }
        Self::from_key(key)
    }

    /// Its public key as DER `SubjectPublicKeyInfo` (`rsaEncryption`):
    /// what the attestation document's `public_key` carries and KMS
    /// encrypts to.
    #[must_use]
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// An attestation document from `nsm` binding this key's public key
    /// (and `user_data`, `nonce`): the `AttestationDocument` of a KMS
    /// `Recipient`.
    ///
    /// # Errors
    /// As [`Nsm::attest`].
    pub fn attest(
        &self,
        nsm: &dyn Nsm,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, NsmError> {
        nsm.attest(&AttestRequest {
            public_key: Some(&self.spki),
            user_data,
            nonce,
        })
    }

    /// Reads `ciphertext_for_recipient` and decrypts it: RSA-OAEP-SHA256
    /// unwraps the AES-256 content key, AES-256-CBC and PKCS#7 give the
    /// plaintext. Consumes the key: whatever the outcome, it never
    /// decrypts again.
    ///
    /// # Errors
    /// The structural [`RecipientError`]s of
    /// [`CiphertextForRecipient::parse`]; then only
    /// [`RecipientError::DecryptionFailed`].
    pub fn open(
        self,
        ciphertext_for_recipient: &[u8],
    ) -> Result<RecipientPlaintext, RecipientError> {
        let parsed = CiphertextForRecipient::parse(ciphertext_for_recipient)?;
        self.open_parsed(&parsed)
    }

    /// As [`EphemeralRsaKey::open`], for an already parsed structure.
    ///
    /// # Errors
    /// [`RecipientError::DecryptionFailed`].
    pub fn open_parsed(
        self,
        parsed: &CiphertextForRecipient,
    ) -> Result<RecipientPlaintext, RecipientError> {
        let content_key = Zeroizing::new(
            self.key
                .oaep_decrypt::<Sha256>(&parsed.encrypted_key)
                .map_err(|_| RecipientError::DecryptionFailed)?,
        );
        drop(self);
        if content_key.len() != 32 {
            return Err(RecipientError::DecryptionFailed);
        }
        aes256_cbc_open(&content_key, &parsed.iv, &parsed.encrypted_content)
    }
}

impl fmt::Debug for EphemeralRsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EphemeralRsaKey(..)")
    }
}
