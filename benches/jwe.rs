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

use criterion::{Criterion, criterion_group, criterion_main};
use custody_core::{Audited, Authorization, MemoryAuditLog, SharedBackend};
use custody_jose::jwe::{self, JweAlgorithm, Recipient, Scope};

#[path = "jwe_raw.rs"]
mod jwe_raw;

use jwe_raw::{D, SECRET, raw_open, raw_seal, vault_key};

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
