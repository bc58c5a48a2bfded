//! Binary encodings of untrusted input shared by the crates above this one
//! (attestation documents in `custody-kms`, WebAuthn and COSE later): public
//! values only, never a secret.

pub mod cbor;
