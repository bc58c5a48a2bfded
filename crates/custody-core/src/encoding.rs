//! Binary encodings of untrusted input shared by the crates above this one
//! (attestation documents in `custody-kms`, WebAuthn, COSE, JOSE and the
//! JSON every crate reads): public values only, never a secret.

pub mod cbor;
pub mod json;
