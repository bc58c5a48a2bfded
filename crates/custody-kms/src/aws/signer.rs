//! [`KmsSigner`]: digest signing with AWS KMS `ECC_SECG_P256K1` keys.

use std::fmt;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use custody_core::{
    Error, KeyBackend, KeyKinds, KeyRef, Pending, PinnedKey, PublicKey, RawSignature, SignRequest,
    SignatureScheme, Signed, SigningBackend,
};

use super::client::KmsClient;
use super::error::KmsError;
use crate::spki::{SpkiError, secp256k1_point};

/// A [`SigningBackend`] (and a [`KeyBackend`] whose
/// [`signing`](KeyBackend::signing) returns it) over AWS KMS asymmetric keys
/// of spec `ECC_SECG_P256K1` and usage `SIGN_VERIFY`.
///
/// - [`pin`](SigningBackend::pin) takes [`KeyRef::Stored`] (a key id, ARN or
///   `alias/NAME`), calls `GetPublicKey` once, checks that the
///   `SubjectPublicKeyInfo` is an EC key on secp256k1 (a `wrong-key-usage`
///   [`KmsError`] otherwise) and pins it. Nothing else is cached: keep the
///   [`PinnedKey`] (e.g. in a [`custody_core::KeySigner`]); signing never
///   fetches a public key again.
/// - [`sign_digest`](SigningBackend::sign_digest) makes exactly one `Sign`
///   call per signature (`MessageType=DIGEST`,
///   `SigningAlgorithm=ECDSA_SHA_256`, the 32-byte digest; retried only on
///   throttling and transient failures) and returns KMS's DER signature as
///   [`RawSignature::Der`]. [`custody_core::KeySigner`] normalizes it (low
///   `s`, the recovery id found by matching the pinned key).
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

/// The public key `GetPublicKey` returned, checked to be a secp256k1
/// signing key.
fn public_key_of(
    out: &aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput,
    key: &str,
) -> Result<PublicKey, KmsError> {
    const OP: &str = "GetPublicKey";
    const NEED: &str = "custody signs with ECC_SECG_P256K1 SIGN_VERIFY keys (secp256k1); create one with KeySpec ECC_SECG_P256K1 and KeyUsage SIGN_VERIFY";
    // Emulators leave KeySpec and KeyUsage out; when present they must agree.
    if let Some(spec) = out.key_spec()
        && *spec != KeySpec::EccSecgP256K1
    {
        return Err(KmsError::wrong_key_usage(OP, key, NEED));
    }
    if let Some(usage) = out.key_usage()
        && *usage != KeyUsageType::SignVerify
    {
        return Err(KmsError::wrong_key_usage(OP, key, NEED));
    }
    let spki = out
        .public_key()
        .ok_or_else(|| KmsError::malformed(OP, key, "no public key in the answer"))?;
    let point = secp256k1_point(spki.as_ref()).map_err(|e| match e {
        SpkiError::Malformed => {
            KmsError::malformed(OP, key, "the public key is not a DER SubjectPublicKeyInfo")
        }
        SpkiError::NotEc | SpkiError::WrongCurve => KmsError::wrong_key_usage(OP, key, NEED),
    })?;
    PublicKey::from_sec1_bytes(point)
        .map_err(|_| KmsError::malformed(OP, key, "the public key is not a secp256k1 point"))
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
            let public_key = public_key_of(&out, &id)?;
            Ok(PinnedKey::new(key.clone(), None, public_key))
        })
    }

    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>> {
        let KeyRef::Stored(id) = request.key.reference() else {
            return Pending::ready(Err(Error::Unsupported(
                "AWS KMS signs only with keys pinned from a stored key id, ARN or alias",
            )));
        };
        // Only ECC_SECG_P256K1 keys are pinned here so far (a P-256 KMS key
        // signing ES256 is the same call, and comes with its pinning).
        if let Err(e) = request.require_scheme(SignatureScheme::EcdsaSecp256k1) {
            return Pending::ready(Err(e));
        }
        let id = id.as_str().to_owned();
        let key_id = id.clone();
        let digest = *request.digest.as_bytes();
        let call = self.client.call("Sign", id.clone(), move |c| {
            c.sign()
                .key_id(key_id.clone())
                .message(Blob::new(digest.to_vec()))
                .message_type(MessageType::Digest)
                .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                .send()
        });
        Pending::later(async move {
            let out = call.await?;
            let der = out
                .signature
                .ok_or_else(|| KmsError::malformed("Sign", &id, "no signature in the answer"))?;
            Ok(Signed::new(RawSignature::Der(der.into_inner())))
        })
    }
}

impl KeyBackend for KmsSigner {
    fn name(&self) -> &str {
        "aws-kms"
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

impl fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsSigner").finish_non_exhaustive()
    }
}
