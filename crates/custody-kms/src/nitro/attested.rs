//! [`AttestedKek`]: the attested unwrap, a [`WrappingBackend`] for code
//! running inside a Nitro enclave (feature `nitro-kms`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyEncryptionMechanism, RecipientInfo};
use custody_core::{
    DataKey, EncryptionContext, Error, KekId, KeyBackend, Pending, WrappingBackend,
};
use zeroize::Zeroize;

use super::{EphemeralRsaKey, Nsm, RecipientError};
use crate::aws::{KmsClient, KmsError, KmsKek};

/// A [`WrappingBackend`] for an enclave: data keys are unwrapped **only**
/// by KMS `Decrypt` with a `Recipient`, so that KMS (and a key policy
/// requiring `kms:RecipientAttestation:PCR0…`) releases them only to an
/// enclave that proves what it runs, and only in a form that enclave
/// alone can open.
///
/// - [`unwrap`](WrappingBackend::unwrap): a fresh [`EphemeralRsaKey`]
///   (RSA-2048, made here), an attestation document from the [`Nsm`]
///   binding its public key (DER `SubjectPublicKeyInfo`) and this
///   backend's user data, then `Decrypt { KeyId, CiphertextBlob,
///   EncryptionContext, Recipient { RSAES_OAEP_SHA_256, AttestationDocument
///   } }`. KMS answers with `CiphertextForRecipient` and no `Plaintext`;
///   an answer carrying a `Plaintext` is refused (a KMS, proxy or mock
///   that ignored the `Recipient` sent the key in the clear over a link
///   the enclave does not trust to carry it). The key opens the answer
///   once and is dropped.
/// - [`wrap`](WrappingBackend::wrap) is `Encrypt` (as [`KmsKek`]) with the
///   same encryption context; [`generate_data_key`](WrappingBackend::generate_data_key)
///   draws the key from the enclave's RNG and wraps it, so no KMS answer
///   ever carries a plaintext key to this backend.
///
/// `Debug` shows the default KEK id only.
#[derive(Clone)]
pub struct AttestedKek {
    kek: KmsKek,
    nsm: Arc<dyn Nsm>,
    user_data: Option<Vec<u8>>,
}

/// A [`EncryptionContext`] as KMS's string map (`None` when empty).
fn kms_context(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    let map: HashMap<String, String> = context
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (!map.is_empty()).then_some(map)
}

impl AttestedKek {
    /// An attested KEK backend calling KMS through `client` (in an enclave,
    /// over the host's vsock proxy; TLS ends inside the enclave), attesting
    /// with `nsm`, wrapping new envelopes under `default_kek`.
    #[must_use]
    pub fn new(client: KmsClient, default_kek: KekId, nsm: Arc<dyn Nsm>) -> Self {
        Self {
            kek: KmsKek::new(client, default_kek),
            nsm,
            user_data: None,
        }
    }

    /// The `user_data` every attestation document carries (e.g. the hash
    /// of the enclave's manifest); at most 512 bytes (the NSM refuses
    /// more).
    #[must_use]
    pub fn with_user_data(mut self, user_data: &[u8]) -> Self {
        self.user_data = Some(user_data.to_vec());
        self
    }

    /// KMS `Decrypt` of `wrapped` under `kek` with `context`, with
    /// `Recipient { RSAES_OAEP_SHA_256, attestation_document }`: the
    /// `CiphertextForRecipient` KMS returns. What a host calls on an
    /// enclave's behalf (with the document the enclave sent over the
    /// [`transport`](super::transport), after checking it); it never sees
    /// the plaintext.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] for a wrong KEK, context or tampered
    /// blob; [`Error::UnknownKek`]; [`Error::Backend`] with a [`KmsError`]
    /// (`malformed-response` when the answer carries a `Plaintext` or no
    /// `CiphertextForRecipient`).
    pub fn decrypt_for_recipient(
        client: &KmsClient,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
        attestation_document: &[u8],
    ) -> impl Future<Output = Result<Vec<u8>, Error>> + Send + 'static {
        let kek = kek.as_str().to_owned();
        let key_id = kek.clone();
        let blob = wrapped.to_vec();
        let ctx = kms_context(context);
        let recipient = RecipientInfo::builder()
            .key_encryption_algorithm(KeyEncryptionMechanism::RsaesOaepSha256)
            .attestation_document(Blob::new(attestation_document.to_vec()))
            .build();
        let call = client.call("Decrypt", kek.clone(), move |c| {
            c.decrypt()
                .key_id(key_id.clone())
                .ciphertext_blob(Blob::new(blob.clone()))
                .set_encryption_context(ctx.clone())
                .recipient(recipient.clone())
                .send()
        });
        async move {
            let mut out = call.await.map_err(|e| e.into_core(Error::UnknownKek))?;
            if let Some(plaintext) = out.plaintext.take() {
                // Wipe it, then refuse: with a Recipient, KMS never sends one.
                plaintext.into_inner().zeroize();
                return Err(KmsError::malformed(
                    "Decrypt",
                    &kek,
                    "a plaintext in the answer to a Decrypt with a Recipient",
                )
                .into_core(Error::UnknownKek));
            }
            out.ciphertext_for_recipient
                .map(Blob::into_inner)
                .ok_or_else(|| {
                    KmsError::malformed("Decrypt", &kek, "no CiphertextForRecipient in the answer")
                        .into_core(Error::UnknownKek)
                })
        }
    }

    /// The KMS key backend its `wrap` goes through.
    #[must_use]
    pub fn kms(&self) -> &KmsKek {
        &self.kek
    }
}

/// The data key in an opened answer; anything but 32 bytes is opaque.
fn data_key_from(plaintext: &[u8]) -> Result<DataKey, Error> {
    DataKey::from_slice(plaintext).map_err(|_| Error::DecryptionFailed)
}

fn recipient_error(e: RecipientError) -> Error {
    match e {
        RecipientError::DecryptionFailed => Error::DecryptionFailed,
        other => Error::backend(other),
    }
}

impl WrappingBackend for AttestedKek {
    fn default_kek(&self) -> KekId {
        self.kek.default_kek()
    }

    fn wrap<'a>(
        &'a self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, Error>> {
        self.kek.wrap(kek, key, context)
    }

    fn unwrap<'a>(
        &'a self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Pending<'a, Result<DataKey, Error>> {
        let kek = kek.clone();
        let wrapped = wrapped.to_vec();
        let context = context.clone();
        Pending::later(async move {
            let key = EphemeralRsaKey::generate().map_err(recipient_error)?;
            let document = key
                .attest(self.nsm.as_ref(), self.user_data.as_deref(), None)
                .map_err(Error::backend)?;
            let answer =
                Self::decrypt_for_recipient(self.kek.client(), &kek, &wrapped, &context, &document)
                    .await?;
            let plaintext = key.open(&answer).map_err(recipient_error)?;
            data_key_from(plaintext.expose_secret())
        })
    }

    fn generate_data_key<'a>(
        &'a self,
        kek: &KekId,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<(DataKey, Vec<u8>), Error>> {
        let key = match DataKey::random() {
            Ok(k) => k,
            Err(e) => return Pending::ready(Err(e)),
        };
        self.wrap(kek, &key, context)
            .map(move |r| r.map(|w| (key, w)))
    }
}

impl KeyBackend for AttestedKek {
    fn name(&self) -> &str {
        "aws-kms-nitro"
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        Some(self)
    }
}

impl fmt::Debug for AttestedKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestedKek")
            .field("default_kek", &self.kek.default_kek())
            .finish_non_exhaustive()
    }
}
