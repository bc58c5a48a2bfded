//! The Nitro Security Module (NSM) behind a trait, so that the enclave's
//! code runs unchanged against the real device or a fake.

use std::fmt;

use super::{MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES};

/// What an attestation document is asked to bind: the NSM signs these
/// fields into the document as given (`None`: the field is null).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct AttestRequest<'a> {
    /// `public_key`: here the enclave's ephemeral RSA key as DER
    /// `SubjectPublicKeyInfo` (what KMS encrypts a `Recipient` answer to).
    /// At most [`MAX_PUBLIC_KEY_BYTES`].
    pub public_key: Option<&'a [u8]>,
    /// `user_data`, at most [`MAX_USER_DATA_BYTES`].
    pub user_data: Option<&'a [u8]>,
    /// `nonce`, at most [`MAX_USER_DATA_BYTES`].
    pub nonce: Option<&'a [u8]>,
}

impl AttestRequest<'_> {
    /// Checks the NSM's documented input limits.
    ///
    /// # Errors
    /// [`NsmError::InputTooLarge`] naming the first field over its limit.
    pub fn check(&self) -> Result<(), NsmError> {
        let over = |v: Option<&[u8]>, max| v.is_some_and(|v| v.len() > max);
        if over(self.public_key, MAX_PUBLIC_KEY_BYTES) {
            return Err(NsmError::InputTooLarge("public_key"));
        }
        if over(self.user_data, MAX_USER_DATA_BYTES) {
            return Err(NsmError::InputTooLarge("user_data"));
        }
        if over(self.nonce, MAX_USER_DATA_BYTES) {
            return Err(NsmError::InputTooLarge("nonce"));
        }
        Ok(())
    }
}

impl fmt::Debug for AttestRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |v: Option<&[u8]>| v.map(<[u8]>::len);
        f.debug_struct("AttestRequest")
            .field("public_key_len", &len(self.public_key))
            .field("user_data_len", &len(self.user_data))
            .field("nonce_len", &len(self.nonce))
            .finish()
    }
}

/// A platform configuration register as `DescribePCR` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcrDescription {
    /// Whether the register can no longer be extended (PCR0–15 are locked
    /// at boot).
    pub locked: bool,
    /// Its value (48 bytes, SHA-384).
    pub value: Vec<u8>,
}

/// An error of the NSM device or of a request to it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum NsmError {
    /// A field of the request is over the NSM's limit.
    #[error("NSM request field {0} is over its size limit")]
    InputTooLarge(&'static str),
    /// No such PCR.
    #[error("no PCR {0}")]
    InvalidIndex(u16),
    /// The device failed or answered something else than asked; the
    /// driver's own error says why.
    #[error("the NSM device failed")]
    Device(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl custody_core::BackendError for NsmError {
    fn kind(&self) -> &'static str {
        "enclave-attestation"
    }
}

/// The Nitro Security Module of the enclave this code runs in.
///
/// The real module is the `/dev/nsm` device, driven by CBOR requests over
/// an `ioctl`; that driver needs `unsafe` (the workspace forbids it here),
/// so it lives outside this crate: implement this trait over AWS's
/// `aws-nitro-enclaves-nsm-api` (`nsm_init`, `nsm_process_request` with
/// `Request::Attestation { public_key, user_data, nonce }` and
/// `Request::DescribePCR { index }`) in the enclave's binary and hand it
/// to `nitro::AttestedKek` (feature `nitro-kms`) or the enclave side of
/// `nitro::transport` (feature `nitro-transport`). Tests use
/// `nitro::fake::FakeNsm` (feature `nsm-fake`), whose
/// documents only a verifier pinned to its test root accepts.
///
/// Synchronous: the device answers from memory in microseconds.
pub trait Nsm: Send + Sync + fmt::Debug {
    /// A fresh attestation document (COSE_Sign1 bytes) binding `request`.
    ///
    /// # Errors
    /// [`NsmError::InputTooLarge`] if a field is over its limit;
    /// [`NsmError::Device`] if the device fails.
    fn attest(&self, request: &AttestRequest<'_>) -> Result<Vec<u8>, NsmError>;

    /// The value of PCR `index` and whether it is locked.
    ///
    /// # Errors
    /// [`NsmError::InvalidIndex`]; [`NsmError::Device`].
    fn describe_pcr(&self, index: u16) -> Result<PcrDescription, NsmError>;
}
