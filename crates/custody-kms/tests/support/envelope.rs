//! Envelope helpers of the KEK tests through a backend (`aws_kms.rs`,
//! `pkcs11.rs`): a wallet's encryption context, and an envelope rewritten
//! with another KEK id and wrapped key, written from custody-core's
//! SPEC.md ("Envelope v1") independently of its encoder.

use custody_core::{EncryptionContext, Envelope, KekId};

/// The encryption context of `wallet`'s seed.
pub(crate) fn context(wallet: &str) -> EncryptionContext {
    EncryptionContext::new()
        .with("wallet", wallet)
        .unwrap()
        .with("purpose", "seed")
        .unwrap()
}

/// Envelope v1 bytes with another KEK id and wrapped key and the same
/// payload (SPEC.md "Envelope v1": magic 7, version 1, algorithm 1, u16 k,
/// KEK id, u32 w, wrapped key, then the payload).
pub(crate) fn with_wrapped_key(env: &Envelope, kek: &KekId, wrapped: &[u8]) -> Envelope {
    let old = env.as_bytes();
    let k = usize::from(u16::from_be_bytes([old[9], old[10]]));
    let w = usize::try_from(u32::from_be_bytes(old[11 + k..15 + k].try_into().unwrap())).unwrap();
    let payload = &old[15 + k + w..];
    let mut out = old[..9].to_vec();
    out.extend_from_slice(&u16::try_from(kek.as_str().len()).unwrap().to_be_bytes());
    out.extend_from_slice(kek.as_str().as_bytes());
    out.extend_from_slice(&u32::try_from(wrapped.len()).unwrap().to_be_bytes());
    out.extend_from_slice(wrapped);
    out.extend_from_slice(payload);
    Envelope::from_bytes(&out).unwrap()
}
