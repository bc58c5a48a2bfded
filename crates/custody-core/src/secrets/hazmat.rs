//! Deterministic constructors and the raw AES-256-GCM primitive, for frozen
//! test vectors and conformance tests **only**.
//!
//! # Production code must not use this module
//!
//! Everything here takes the data key and nonces as arguments instead of
//! drawing them fresh. Reusing a (key, nonce) pair with AES-GCM reveals the
//! XOR of the two plaintexts and lets an attacker forge tags. Use
//! [`crate::Envelope::seal`] and a [`crate::WrappingBackend`] instead: they
//! draw a fresh data key and nonce for every envelope.
//!
//! These functions exist so that the envelope and local-wrap formats can be
//! rebuilt byte for byte from committed vectors (computed independently) and
//! so that the exact AES-GCM code path envelopes use can be walked with
//! Wycheproof.

use crate::{DataKey, EncryptionContext, Envelope, Error, KekId};

/// AES-256-GCM encryption of `buffer` in place (96-bit nonce, 128-bit tag);
/// returns the tag. The code path envelopes and the local KEK wrap use.
///
/// # Errors
/// [`Error::MalformedEnvelope`] only for inputs beyond AES-GCM's limits.
pub fn aes256gcm_encrypt_in_place(
    key: &DataKey,
    nonce: &[u8; 12],
    aad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; 16], Error> {
    crate::secrets::envelope::gcm_encrypt_in_place(key, nonce, aad, buffer)
}

/// AES-256-GCM decryption of `buffer` in place, after checking `tag` (in
/// constant time). On failure `buffer` is unchanged.
///
/// # Errors
/// [`Error::DecryptionFailed`] if the tag does not verify.
pub fn aes256gcm_decrypt_in_place(
    key: &DataKey,
    nonce: &[u8; 12],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), Error> {
    crate::secrets::envelope::gcm_decrypt_in_place(key, nonce, aad, buffer, tag)
}

/// Builds an envelope from fixed parts: `data_key` encrypts `plaintext`
/// under `nonce`, and `wrapped_key` is recorded as its wrapped form under
/// `kek` (not checked: it is whatever the vector says).
///
/// # Errors
/// [`Error::MalformedEnvelope`] if a part is out of the format's range.
pub fn seal_envelope_with_parts(
    data_key: &DataKey,
    kek: &KekId,
    wrapped_key: &[u8],
    nonce: [u8; 12],
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Envelope, Error> {
    Envelope::seal_parts(
        data_key,
        kek.clone(),
        wrapped_key,
        nonce,
        &context.canonical_bytes(),
        plaintext,
    )
}

/// Wraps `data_key` the way [`crate::LocalKek`] does, under `kek_key`
/// named `kek_id`, with a fixed `nonce`.
///
/// # Errors
/// None in practice (the input sizes are fixed).
pub fn local_wrap_with_nonce(
    kek_key: &DataKey,
    kek_id: &KekId,
    nonce: [u8; 12],
    data_key: &DataKey,
    context: &EncryptionContext,
) -> Result<Vec<u8>, Error> {
    crate::secrets::local_kek::wrap_with_nonce(kek_key, kek_id, nonce, data_key, context)
}
