//! [`KmsKek`]: data keys wrapped by an AWS KMS `SYMMETRIC_DEFAULT` key.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use custody_core::{
    DataKey, EncryptionContext, Error, KekId, KeyBackend, Pending, WrappingBackend,
};
use zeroize::{Zeroize, Zeroizing};

use super::client::KmsClient;
use super::error::KmsError;

/// A [`WrappingBackend`] (and a [`KeyBackend`] whose
/// [`wrapping`](KeyBackend::wrapping) returns it) whose key-encryption keys
/// are AWS KMS symmetric keys (`SYMMETRIC_DEFAULT`, `ENCRYPT_DECRYPT`),
/// named by key id, ARN or `alias/NAME`.
///
/// - [`generate_data_key`](WrappingBackend::generate_data_key) is KMS
///   `GenerateDataKey` (`AES_256`): the data key is made by KMS, and its
///   wrapped form is KMS's ciphertext blob.
/// - [`wrap`](WrappingBackend::wrap) is `Encrypt` of a data key made
///   elsewhere; [`unwrap`](WrappingBackend::unwrap) is `Decrypt` naming the
///   KEK (`KeyId`), so a blob wrapped under another key is refused.
/// - The [`EncryptionContext`] is sent as KMS's encryption context (the
///   same pairs), so KMS binds it to the blob: a wrong context or a tampered
///   blob is the opaque [`Error::DecryptionFailed`].
/// - [`KmsKek::reencrypt`] is `ReEncrypt`: rotation to another KMS key
///   without the data key ever leaving KMS.
///
/// Plaintext data keys go straight into [`DataKey`] (zeroizing); the SDK's
/// own response buffer (`Blob`) is wiped once copied. The SDK's HTTP and
/// JSON layers hold transient copies this crate cannot reach (the request
/// body of `Encrypt`, the response body of `Decrypt`/`GenerateDataKey`);
/// prefer `generate_data_key` + `unwrap`, which never sends a plaintext key.
///
/// `Debug` shows the default KEK id only.
#[derive(Clone)]
pub struct KmsKek {
    client: KmsClient,
    default_kek: KekId,
}

/// A [`EncryptionContext`] as KMS's string map (`None` when empty).
fn kms_context(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    let map: HashMap<String, String> = context
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (!map.is_empty()).then_some(map)
}

/// Moves a plaintext data key out of the SDK's blob into a [`DataKey`],
/// wiping the blob's buffer whatever its length.
fn data_key_from(blob: Blob) -> Result<DataKey, KmsError> {
    let mut bytes = blob.into_inner();
    let key = DataKey::from_slice(&bytes);
    bytes.zeroize();
    // Not 32 bytes: not a data key this backend made. Opaque, like any
    // other blob that does not decrypt to one.
    key.map_err(|_| KmsError::DecryptionFailed)
}

impl KmsKek {
    /// A KEK backend calling KMS through `client`, wrapping new envelopes
    /// under `default_kek`.
    #[must_use]
    pub fn new(client: KmsClient, default_kek: KekId) -> Self {
        Self {
            client,
            default_kek,
        }
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &KmsClient {
        &self.client
    }

    /// KMS `ReEncrypt`: `wrapped` (a blob from this backend, under `from`
    /// with `context`) re-wrapped under `to` with the same context, the data
    /// key never leaving KMS. The result unwraps with `to`.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] for a wrong `from`, context or tampered
    /// bytes; [`Error::UnknownKek`] if either key does not exist; otherwise
    /// [`Error::Backend`] with a [`KmsError`].
    pub fn reencrypt<'a>(
        &'a self,
        wrapped: &[u8],
        from: &KekId,
        to: &KekId,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, Error>> {
        let blob = wrapped.to_vec();
        let from = from.as_str().to_owned();
        let to = to.as_str().to_owned();
        let to_label = to.clone();
        let ctx = kms_context(context);
        let call = self.client.call("ReEncrypt", from.clone(), move |c| {
            c.re_encrypt()
                .ciphertext_blob(Blob::new(blob.clone()))
                .source_key_id(from.clone())
                .destination_key_id(to.clone())
                .set_source_encryption_context(ctx.clone())
                .set_destination_encryption_context(ctx.clone())
                .send()
        });
        Pending::later(async move {
            let out = call.await.map_err(|e| e.into_core(Error::UnknownKek))?;
            out.ciphertext_blob.map(Blob::into_inner).ok_or_else(|| {
                KmsError::malformed("ReEncrypt", &to_label, "no ciphertext in the answer")
                    .into_core(Error::UnknownKek)
            })
        })
    }
}

impl WrappingBackend for KmsKek {
    fn default_kek(&self) -> KekId {
        self.default_kek.clone()
    }

    fn wrap<'a>(
        &'a self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, Error>> {
        let kek = kek.as_str().to_owned();
        let key_id = kek.clone();
        // The task outlives the borrow of `key`: it holds its own wiped copy.
        let plaintext = Zeroizing::new(*key.expose_secret());
        let ctx = kms_context(context);
        let call = self.client.call("Encrypt", kek.clone(), move |c| {
            c.encrypt()
                .key_id(key_id.clone())
                .plaintext(Blob::new(plaintext.to_vec()))
                .set_encryption_context(ctx.clone())
                .send()
        });
        Pending::later(async move {
            let out = call.await.map_err(|e| e.into_core(Error::UnknownKek))?;
            out.ciphertext_blob.map(Blob::into_inner).ok_or_else(|| {
                KmsError::malformed("Encrypt", &kek, "no ciphertext in the answer")
                    .into_core(Error::UnknownKek)
            })
        })
    }

    fn unwrap<'a>(
        &'a self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Pending<'a, Result<DataKey, Error>> {
        let kek = kek.as_str().to_owned();
        let key_id = kek.clone();
        let blob = wrapped.to_vec();
        let ctx = kms_context(context);
        let call = self.client.call("Decrypt", kek.clone(), move |c| {
            c.decrypt()
                .key_id(key_id.clone())
                .ciphertext_blob(Blob::new(blob.clone()))
                .set_encryption_context(ctx.clone())
                .send()
        });
        Pending::later(async move {
            let out = call.await.map_err(|e| e.into_core(Error::UnknownKek))?;
            let plaintext = out.plaintext.ok_or_else(|| {
                KmsError::malformed("Decrypt", &kek, "no plaintext in the answer")
                    .into_core(Error::UnknownKek)
            })?;
            data_key_from(plaintext).map_err(|e| e.into_core(Error::UnknownKek))
        })
    }

    fn generate_data_key<'a>(
        &'a self,
        kek: &KekId,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<(DataKey, Vec<u8>), Error>> {
        let kek = kek.as_str().to_owned();
        let key_id = kek.clone();
        let ctx = kms_context(context);
        let call = self.client.call("GenerateDataKey", kek.clone(), move |c| {
            c.generate_data_key()
                .key_id(key_id.clone())
                .key_spec(DataKeySpec::Aes256)
                .set_encryption_context(ctx.clone())
                .send()
        });
        Pending::later(async move {
            let mut out = call.await.map_err(|e| e.into_core(Error::UnknownKek))?;
            let missing = |what| {
                KmsError::malformed("GenerateDataKey", &kek, what).into_core(Error::UnknownKek)
            };
            // Take the plaintext first so it is wiped even if the rest fails.
            let plaintext = out
                .plaintext
                .take()
                .ok_or_else(|| missing("no plaintext in the answer"))?;
            let key =
                data_key_from(plaintext).map_err(|_| missing("the data key is not 32 bytes"))?;
            let wrapped = out
                .ciphertext_blob
                .take()
                .map(Blob::into_inner)
                .ok_or_else(|| missing("no ciphertext in the answer"))?;
            Ok((key, wrapped))
        })
    }
}

impl KeyBackend for KmsKek {
    fn name(&self) -> &str {
        "aws-kms"
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        Some(self)
    }
}

impl fmt::Debug for KmsKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKek")
            .field("default_kek", &self.default_kek)
            .finish_non_exhaustive()
    }
}
