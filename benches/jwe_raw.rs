//! The raw primitives of a sealed secret (P-256 ECDH with a fresh
//! ephemeral key, the RFC 7518 §4.6.2 Concat KDF written out with `sha2`,
//! AES Key Wrap, AES-256-GCM over a 64-byte secret) and the vault key the
//! custody side opens with: shared by `jwe.rs` (sequential) and `jwt.rs`
//! (paired), so both measure against the same baseline.

use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use aes_kw::KwAes256;
use custody_core::{
    KeyAlgorithm, KeyId, KeyRef, PinnedKey, PrivateKeyBytes, SharedBackend, Vault, WalletScheme,
};
use sha2::{Digest, Sha256};

/// The sealed secret.
pub(crate) const SECRET: [u8; 64] = [0x5a; 64];
/// The recipient's P-256 scalar.
pub(crate) const D: [u8; 32] = [0x31; 32];

/// The Concat KDF for a 256-bit key, one SHA-256 block (RFC 7518 §4.6.2,
/// empty apu/apv).
fn raw_kdf(z: &[u8], alg: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(z);
    h.update((alg.len() as u32).to_be_bytes());
    h.update(alg.as_bytes());
    h.update(0u32.to_be_bytes());
    h.update(0u32.to_be_bytes());
    h.update(256u32.to_be_bytes());
    h.finalize().into()
}

/// A random nonzero P-256 scalar.
fn fresh_scalar() -> p256::NonZeroScalar {
    loop {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).unwrap();
        if let Ok(s) = p256::NonZeroScalar::try_from(&b[..]) {
            return s;
        }
    }
}

/// What [`raw_seal`] makes.
pub(crate) struct RawSealed {
    epk: p256::PublicKey,
    wrapped: Option<[u8; 40]>,
    iv: [u8; 12],
    ct: Vec<u8>,
    tag: [u8; 16],
}

/// The primitives of a seal: ephemeral key, ECDH, KDF, (key wrap), GCM.
pub(crate) fn raw_seal(recipient: &p256::PublicKey, wrap: bool) -> RawSealed {
    let eph = fresh_scalar();
    let epk = p256::PublicKey::from_secret_scalar(&eph);
    let z = p256::ecdh::diffie_hellman(eph, recipient.as_affine());
    let (cek, wrapped) = if wrap {
        let kek = raw_kdf(z.raw_secret_bytes(), "ECDH-ES+A256KW");
        let mut cek = [0u8; 32];
        getrandom::fill(&mut cek).unwrap();
        let mut out = [0u8; 40];
        KwAes256::new(&kek.into()).wrap_key(&cek, &mut out).unwrap();
        (cek, Some(out))
    } else {
        (raw_kdf(z.raw_secret_bytes(), "A256GCM"), None)
    };
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).unwrap();
    let mut ct = SECRET.to_vec();
    let tag = Aes256Gcm::new(&cek.into())
        .encrypt_inout_detached(&Nonce::from(iv), b"aad", ct.as_mut_slice().into())
        .unwrap();
    RawSealed {
        epk,
        wrapped,
        iv,
        ct,
        tag: tag.into(),
    }
}

/// The primitives of an open: ECDH with the static key, KDF, (unwrap), GCM.
pub(crate) fn raw_open(secret: &p256::NonZeroScalar, sealed: &RawSealed) -> Vec<u8> {
    let z = p256::ecdh::diffie_hellman(secret, sealed.epk.as_affine());
    let cek = match &sealed.wrapped {
        Some(w) => {
            let kek = raw_kdf(z.raw_secret_bytes(), "ECDH-ES+A256KW");
            let mut out = [0u8; 40];
            let cek: [u8; 32] = KwAes256::new(&kek.into())
                .unwrap_key(w, &mut out)
                .unwrap()
                .try_into()
                .unwrap();
            cek
        }
        None => raw_kdf(z.raw_secret_bytes(), "A256GCM"),
    };
    let mut pt = sealed.ct.clone();
    Aes256Gcm::new(&cek.into())
        .decrypt_inout_detached(
            &Nonce::from(sealed.iv),
            b"aad",
            pt.as_mut_slice().into(),
            &Tag::from(sealed.tag),
        )
        .unwrap();
    pt
}

/// A vault holding the P-256 key `D`, and that key pinned.
pub(crate) fn vault_key() -> (Arc<Vault>, PinnedKey) {
    let vault = Arc::new(Vault::new(custody_benches::kek(), WalletScheme::Default));
    vault
        .insert_algorithm_key(
            KeyId::new("seal").unwrap(),
            KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&D).unwrap(),
        )
        .unwrap();
    let backend: SharedBackend = vault.clone();
    let key = backend
        .signing()
        .unwrap()
        .pin(&KeyRef::Stored(KeyId::new("seal").unwrap()))
        .wait()
        .unwrap();
    (vault, key)
}
