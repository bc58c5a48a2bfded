//! The COSE_Sign1 signature (RFC 9052 §4.4): ES384 over the
//! `Sig_structure` `["Signature1", protected, h'', payload]`.

use custody_core::cbor::Value;
use p384::ecdsa::signature::Verifier as _;
use p384::ecdsa::{Signature, VerifyingKey};

use super::document::AttestationDocument;
use super::error::AttestationError;

/// The `ToBeSigned` bytes of a COSE_Sign1 (RFC 9052 §4.4): the CBOR array
/// `["Signature1", body_protected, external_aad, payload]`, with the
/// protected header exactly as it was encoded and an empty external AAD.
#[must_use]
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    Value::Array(vec![
        Value::Text("Signature1"),
        Value::Bytes(protected),
        Value::Bytes(&[]),
        Value::Bytes(payload),
    ])
    .to_vec()
}

/// Verifies `document`'s ES384 signature (`r ‖ s`, RFC 9053 §2.1) over its
/// `Sig_structure` with `key`: ECDSA P-384 over the SHA-384 of it.
pub(crate) fn verify_signature(
    key: &VerifyingKey,
    document: &AttestationDocument,
) -> Result<(), AttestationError> {
    // `from_slice` refuses r or s of zero or not below the group order.
    let signature =
        Signature::from_slice(document.signature()).map_err(|_| AttestationError::CoseSignature)?;
    let to_be_signed = sig_structure(document.protected_header(), document.payload());
    key.verify(&to_be_signed, &signature)
        .map_err(|_| AttestationError::CoseSignature)
}
