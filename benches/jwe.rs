//! Sealed secrets (compact JWE, A256GCM) sealed and opened by custody-jose
//! beside the raw primitives they are made of, in the same run: a P-256
//! ECDH with a fresh ephemeral key (and its public key, which a JWE must
//! carry), the RFC 7518 §4.6.2 Concat KDF written out with `sha2`, AES Key
//! Wrap for `ECDH-ES+A256KW`, AES-256-GCM over a 64-byte secret. The open
//! goes through the seam: the vault's ECDH, bare and behind the audit log.
//!
//! Run `cargo bench -p custody-benches --bench jwe`, then
//! `benches/report.sh` for the ratios.
#![expect(
    clippy::unwrap_used,
    clippy::missing_docs_in_private_items,
    reason = "benchmark setup: a failure is a broken benchmark"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::hint::black_box;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use aes_kw::KwAes256;
use criterion::{Criterion, criterion_group, criterion_main};
use custody_core::{
    Audited, Authorization, KeyAlgorithm, KeyId, KeyRef, MemoryAuditLog, PinnedKey,
    PrivateKeyBytes, SharedBackend, Vault, WalletScheme,
};
use custody_jose::jwe::{self, JweAlgorithm, Recipient, Scope};
use sha2::{Digest, Sha256};

const SECRET: [u8; 64] = [0x5a; 64];
const D: [u8; 32] = [0x31; 32];

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

fn fresh_scalar() -> p256::NonZeroScalar {
    loop {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).unwrap();
        if let Ok(s) = p256::NonZeroScalar::try_from(&b[..]) {
            return s;
        }
    }
}

struct RawSealed {
    epk: p256::PublicKey,
    wrapped: Option<[u8; 40]>,
    iv: [u8; 12],
    ct: Vec<u8>,
    tag: [u8; 16],
}

/// The primitives of a seal: ephemeral key, ECDH, KDF, (key wrap), GCM.
fn raw_seal(recipient: &p256::PublicKey, wrap: bool) -> RawSealed {
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
fn raw_open(secret: &p256::NonZeroScalar, sealed: &RawSealed) -> Vec<u8> {
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

fn vault_key() -> (Arc<Vault>, PinnedKey) {
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

fn bench_jwe(c: &mut Criterion) {
    let (vault, key) = vault_key();
    let audited: SharedBackend =
        Arc::new(Audited::new(vault.clone(), Arc::new(MemoryAuditLog::new())));
    let bare: SharedBackend = vault;
    let recipient = Recipient::from_pinned(&key).unwrap();
    let scope = Scope::new("importer/api-keys").unwrap();
    let secret = p256::NonZeroScalar::try_from(&D[..]).unwrap();
    let public = p256::PublicKey::from_secret_scalar(&secret);
    let auth = Authorization::none();

    let mut g = c.benchmark_group("jwe");
    for (name, alg, wrap) in [
        ("ecdh_es", JweAlgorithm::EcdhEs, false),
        ("ecdh_es_a256kw", JweAlgorithm::EcdhEsA256kw, true),
    ] {
        g.bench_function(format!("raw_seal_{name}"), |b| {
            b.iter(|| raw_seal(black_box(&public), wrap));
        });
        g.bench_function(format!("custody_seal_{name}"), |b| {
            b.iter(|| jwe::seal_with(black_box(&recipient), alg, &scope, &SECRET).unwrap());
        });
        let raw_sealed = raw_seal(&public, wrap);
        g.bench_function(format!("raw_open_{name}"), |b| {
            b.iter(|| raw_open(black_box(&secret), black_box(&raw_sealed)));
        });
        let token = jwe::seal_with(&recipient, alg, &scope, &SECRET).unwrap();
        for (how, backend) in [("vault", &bare), ("audited_vault", &audited)] {
            g.bench_function(format!("custody_open_{name}_{how}"), |b| {
                b.iter(|| {
                    jwe::open(backend.as_ref(), &key, black_box(&token), &scope, &auth)
                        .wait()
                        .unwrap()
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_jwe);
criterion_main!(benches);
