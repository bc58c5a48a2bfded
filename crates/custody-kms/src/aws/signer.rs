//! [`KmsSigner`]: digest signing with AWS KMS asymmetric keys
//! (`ECC_SECG_P256K1`, `ECC_NIST_P256`, `RSA_2048/3072/4096`), and key
//! agreement and decryption with `ECC_NIST_P256` `KEY_AGREEMENT` and RSA
//! `ENCRYPT_DECRYPT` keys.

use std::fmt;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType, MessageType,
    SigningAlgorithmSpec,
};
use custody_core::{
    AnyPublicKey, DecryptRequest, Decrypted, DecryptingBackend, Decryption, Error, KeyAlgorithm,
    KeyBackend, KeyKinds, KeyRef, Pending, PinnedKey, RawSignature, SecretVec, SignRequest,
    SignatureScheme, Signed, SigningBackend,
};

use super::client::KmsClient;
use super::error::KmsError;
use crate::spki::{P256_SPKI_PREFIX, SpkiError, any_public_key};

/// A [`SigningBackend`] and [`DecryptingBackend`] (and a [`KeyBackend`]
/// whose [`signing`](KeyBackend::signing) and
/// [`decrypting`](KeyBackend::decrypting) return it) over AWS KMS
/// asymmetric keys.
///
/// | KMS key spec | usage | seam key | operations |
/// |---|---|---|---|
/// | `ECC_SECG_P256K1` | `SIGN_VERIFY` | [`KeyAlgorithm::Secp256k1`] | `Sign` `ECDSA_SHA_256` |
/// | `ECC_NIST_P256` | `SIGN_VERIFY` | [`KeyAlgorithm::P256`] | `Sign` `ECDSA_SHA_256` (ES256) |
/// | `ECC_NIST_P256` | `KEY_AGREEMENT` | [`KeyAlgorithm::P256`] | `DeriveSharedSecret` `ECDH` |
/// | `RSA_2048/3072/4096` | `SIGN_VERIFY` | [`KeyAlgorithm::Rsa`] | `Sign` `RSASSA_PKCS1_V1_5_SHA_256`, `RSASSA_PSS_SHA_256` |
/// | `RSA_2048/3072/4096` | `ENCRYPT_DECRYPT` | [`KeyAlgorithm::Rsa`] | `Decrypt` `RSAES_OAEP_SHA_256` |
///
/// - [`pin`](SigningBackend::pin) takes [`KeyRef::Stored`] (a key id, ARN or
///   `alias/NAME`), calls `GetPublicKey` once, reads the key's algorithm
///   from its `SubjectPublicKeyInfo` (checked against `KeySpec` and
///   `KeyUsage` when the answer has them: any other spec or usage is a
///   `wrong-key-usage` [`KmsError`]) and pins it. Nothing else is cached:
///   keep the [`PinnedKey`] (e.g. in a [`custody_core::KeySigner`]);
///   signing never fetches a public key again.
/// - [`sign_digest`](SigningBackend::sign_digest) makes exactly one `Sign`
///   call per signature (`MessageType=DIGEST`, the 32-byte digest, the
///   request's scheme's algorithm; retried only on throttling and
///   transient failures) and returns KMS's signature as
///   [`RawSignature::Der`] (ECDSA) or [`RawSignature::Rsa`].
///   [`custody_core::KeySigner`] normalizes a secp256k1 one (low `s`, the
///   recovery id found by matching the pinned key) and checks the others
///   against the pinned key ([`custody_core::check_signature`]).
/// - [`decrypt`](DecryptingBackend::decrypt) makes one `DeriveSharedSecret`
///   (the peer's key as a DER SPKI; the answer is the raw x-coordinate) or
///   one `Decrypt` (`RSAES_OAEP_SHA_256`) call; the secret comes back in
///   zeroizing memory, and a failed decryption is the opaque
///   [`Error::DecryptionFailed`]. A key of the wrong usage is refused by
///   KMS (`InvalidKeyUsageException`: a `wrong-key-usage` [`KmsError`]).
/// - HD references ([`KeyRef::Path`], [`KeyRef::Wallet`]) are
///   [`Error::Unsupported`]: KMS holds single keys, not an HD master.
///
/// `Debug` shows no key and no region (keys are named per request).
#[derive(Clone)]
pub struct KmsSigner {
    client: KmsClient,
}

impl KmsSigner {
    /// A signer calling KMS through `client` (shared: clone the client for
    /// a [`crate::KmsKek`] too).
    #[must_use]
    pub fn new(client: KmsClient) -> Self {
        Self { client }
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &KmsClient {
        &self.client
    }
}

/// What custody needs of a KMS key, for `wrong-key-usage` errors.
const NEED: &str = "custody uses ECC_SECG_P256K1 SIGN_VERIFY, ECC_NIST_P256 SIGN_VERIFY or KEY_AGREEMENT, and RSA_2048/3072/4096 SIGN_VERIFY or ENCRYPT_DECRYPT keys";

/// The key algorithm of a KMS key spec custody uses.
fn algorithm_of_spec(spec: &KeySpec) -> Option<KeyAlgorithm> {
    match spec {
        KeySpec::EccSecgP256K1 => Some(KeyAlgorithm::Secp256k1),
        KeySpec::EccNistP256 => Some(KeyAlgorithm::P256),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => Some(KeyAlgorithm::Rsa),
        _ => None,
    }
}

/// Whether custody uses keys of `algorithm` with `usage`.
fn usage_fits(algorithm: KeyAlgorithm, usage: &KeyUsageType) -> bool {
    matches!(
        (algorithm, usage),
        (_, KeyUsageType::SignVerify)
            | (KeyAlgorithm::P256, KeyUsageType::KeyAgreement)
            | (KeyAlgorithm::Rsa, KeyUsageType::EncryptDecrypt)
    )
}

/// The public key `GetPublicKey` returned, of an algorithm, spec and usage
/// custody uses.
fn public_key_of(
    out: &aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput,
    key: &str,
) -> Result<AnyPublicKey, KmsError> {
    const OP: &str = "GetPublicKey";
    // Emulators leave KeySpec and KeyUsage out; when present they must fit.
    let spec_algorithm = match out.key_spec() {
        Some(spec) => {
            Some(algorithm_of_spec(spec).ok_or_else(|| KmsError::wrong_key_usage(OP, key, NEED))?)
        }
        None => None,
    };
    if let (Some(algorithm), Some(usage)) = (spec_algorithm, out.key_usage())
        && !usage_fits(algorithm, usage)
    {
        return Err(KmsError::wrong_key_usage(OP, key, NEED));
    }
    let spki = out
        .public_key()
        .ok_or_else(|| KmsError::malformed(OP, key, "no public key in the answer"))?;
    let public = any_public_key(spki.as_ref()).map_err(|e| match e {
        SpkiError::Malformed => KmsError::malformed(
            OP,
            key,
            "the public key is not a DER SubjectPublicKeyInfo of a valid point or RSA key",
        ),
        SpkiError::NotEc | SpkiError::WrongCurve => KmsError::wrong_key_usage(OP, key, NEED),
    })?;
    // The SPKI is what is pinned; a spec that names another algorithm is
    // a key custody cannot trust to be what it says.
    if spec_algorithm.is_some_and(|a| a != public.algorithm()) {
        return Err(KmsError::wrong_key_usage(OP, key, NEED));
    }
    if let Some(usage) = out.key_usage()
        && !usage_fits(public.algorithm(), usage)
    {
        return Err(KmsError::wrong_key_usage(OP, key, NEED));
    }
    Ok(public)
}

/// The KMS signing algorithm of a scheme (all over a SHA-256 digest).
fn signing_algorithm(scheme: SignatureScheme) -> Option<SigningAlgorithmSpec> {
    match scheme {
        SignatureScheme::EcdsaSecp256k1 | SignatureScheme::EcdsaP256Sha256 => {
            Some(SigningAlgorithmSpec::EcdsaSha256)
        }
        SignatureScheme::RsaPkcs1Sha256 => Some(SigningAlgorithmSpec::RsassaPkcs1V15Sha256),
        SignatureScheme::RsaPssSha256 => Some(SigningAlgorithmSpec::RsassaPssSha256),
        _ => None,
    }
}

/// A secret KMS returned, its buffer moved into zeroizing memory.
fn secret_of(blob: Blob) -> SecretVec {
    SecretVec::new(blob.into_inner())
}

impl SigningBackend for KmsSigner {
    fn key_kinds(&self) -> KeyKinds {
        KeyKinds {
            stored: true,
            hd: false,
        }
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>> {
        let KeyRef::Stored(id) = key else {
            return Pending::ready(Err(Error::Unsupported(
                "AWS KMS holds single keys: pin a stored key id, ARN or alias, not an HD path or wallet",
            )));
        };
        let id = id.as_str().to_owned();
        let key_id = id.clone();
        let call = self.client.call("GetPublicKey", id.clone(), move |c| {
            c.get_public_key().key_id(key_id.clone()).send()
        });
        Pending::later(async move {
            let out = call.await?;
            let public = public_key_of(&out, &id)?;
            Ok(PinnedKey::with_public(key.clone(), None, public))
        })
    }

    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>> {
        let KeyRef::Stored(id) = request.key.reference() else {
            return Pending::ready(Err(Error::Unsupported(
                "AWS KMS signs only with keys pinned from a stored key id, ARN or alias",
            )));
        };
        // The request's scheme is its key's (`SignRequest::with_scheme`);
        // Ed25519 keys are not held in KMS.
        let (Some(algorithm), false) = (
            signing_algorithm(request.scheme),
            request.scheme.signs_message(),
        ) else {
            return Pending::ready(Err(Error::Unsupported(
                "AWS KMS does not sign with this scheme",
            )));
        };
        let rsa = request.key.algorithm() == KeyAlgorithm::Rsa;
        let id = id.as_str().to_owned();
        let key_id = id.clone();
        let digest = *request.digest.as_bytes();
        let call = self.client.call("Sign", id.clone(), move |c| {
            c.sign()
                .key_id(key_id.clone())
                .message(Blob::new(digest.to_vec()))
                .message_type(MessageType::Digest)
                .signing_algorithm(algorithm.clone())
                .send()
        });
        Pending::later(async move {
            let out = call.await?;
            let bytes = out
                .signature
                .ok_or_else(|| KmsError::malformed("Sign", &id, "no signature in the answer"))?
                .into_inner();
            Ok(Signed::new(if rsa {
                RawSignature::Rsa(bytes)
            } else {
                RawSignature::Der(bytes)
            }))
        })
    }
}

impl DecryptingBackend for KmsSigner {
    fn decrypt<'a>(&'a self, request: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>> {
        let KeyRef::Stored(id) = request.key.reference() else {
            return Pending::ready(Err(Error::Unsupported(
                "AWS KMS decrypts only with keys pinned from a stored key id, ARN or alias",
            )));
        };
        let id = id.as_str().to_owned();
        let key_id = id.clone();
        match request.decryption {
            Decryption::EcdhP256 { peer } => {
                // The peer's public key as KMS takes it: a DER SPKI.
                let mut spki = P256_SPKI_PREFIX.to_vec();
                spki.extend_from_slice(&peer.to_uncompressed());
                let call = self
                    .client
                    .call("DeriveSharedSecret", id.clone(), move |c| {
                        c.derive_shared_secret()
                            .key_id(key_id.clone())
                            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                            .public_key(Blob::new(spki.clone()))
                            .send()
                    });
                Pending::later(async move {
                    let out = call.await?;
                    let secret = out.shared_secret.ok_or_else(|| {
                        KmsError::malformed(
                            "DeriveSharedSecret",
                            &id,
                            "no shared secret in the answer",
                        )
                    })?;
                    let secret = secret_of(secret);
                    // The x-coordinate of a P-256 point, zero-padded.
                    if secret.expose_secret().len() != 32 {
                        return Err(KmsError::malformed(
                            "DeriveSharedSecret",
                            &id,
                            "the shared secret is not 32 bytes",
                        )
                        .into());
                    }
                    Ok(Decrypted::new(secret))
                })
            }
            Decryption::RsaOaepSha256 { ciphertext } => {
                let ciphertext = ciphertext.to_vec();
                let call = self.client.call("Decrypt", id.clone(), move |c| {
                    c.decrypt()
                        .key_id(key_id.clone())
                        .ciphertext_blob(Blob::new(ciphertext.clone()))
                        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
                        .send()
                });
                Pending::later(async move {
                    let out = call.await?;
                    let plaintext = out.plaintext.ok_or_else(|| {
                        KmsError::malformed("Decrypt", &id, "no plaintext in the answer")
                    })?;
                    Ok(Decrypted::new(secret_of(plaintext)))
                })
            }
            _ => Pending::ready(Err(Error::Unsupported(
                "AWS KMS does not perform this decryption",
            ))),
        }
    }
}

impl KeyBackend for KmsSigner {
    fn name(&self) -> &str {
        "aws-kms"
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }

    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        Some(self)
    }
}

impl fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsSigner").finish_non_exhaustive()
    }
}
