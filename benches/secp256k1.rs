//! The hot path with custody-core's `secp256k1` feature (the vault signs
//! with libsecp256k1), beside raw libsecp256k1 and raw k256 signing the same
//! digest with the same key in the same run.
//!
//! Run `cargo bench -p custody-benches --features secp256k1 --bench secp256k1`,
//! then `benches/report.sh` for the ratio table.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup: a failure is a broken benchmark"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use custody_benches::{Gated, Pairing, eip1559, hot_secret, sign_once, software_signer, vault};
use custody_core::Authorization;
use k256::ecdsa::SigningKey;

/// The hot path of `signing.rs` on the libsecp256k1 fast path: a warm wallet
/// signs an EIP-1559 transaction (bare, and behind the TOTP gate and the
/// audit layer), against raw libsecp256k1 and raw k256 signing the same
/// digest with the same key.
fn hot_path_secp256k1(c: &mut Criterion) {
    let signer = software_signer();
    let tx = eip1559(42);
    let digest = tx.signing_hash();
    let secret = hot_secret();
    let raw_k256 = SigningKey::from_slice(&secret).unwrap();
    // The raw baseline's context is made (and randomized, as the vault's is)
    // once, outside the loop, and so is its key.
    let mut raw_ctx = secp256k1::Secp256k1::signing_only();
    raw_ctx.seeded_randomize(&[0x5a; 32]);
    let raw_libsecp = secp256k1::SecretKey::from_byte_array(secret).unwrap();
    let none = Authorization::none();

    // Same answer from all three (the tests prove it in general; a benchmark
    // of a path that signs differently would be meaningless).
    let signed = signer.sign_transaction(&tx, &none).wait().unwrap();
    let (k256_sig, _) = raw_k256.sign_prehash_recoverable(&digest.0);
    let (_, libsecp_sig) = raw_ctx
        .sign_ecdsa_recoverable(secp256k1::Message::from_digest(digest.0), &raw_libsecp)
        .serialize_compact();
    assert_eq!(signed.signature().to_compact(), libsecp_sig);
    assert_eq!(<[u8; 64]>::from(k256_sig.to_bytes()), libsecp_sig);

    let gated = Gated::in_memory(vault());

    let mut g = c.benchmark_group("hot_path_secp256k1");
    g.bench_function("raw_libsecp256k1_sign_ecdsa_recoverable", |b| {
        b.iter(|| {
            raw_ctx.sign_ecdsa_recoverable(
                secp256k1::Message::from_digest(black_box(digest.0)),
                &raw_libsecp,
            )
        });
    });
    g.bench_function("raw_k256_sign_prehash_recoverable", |b| {
        b.iter(|| raw_k256.sign_prehash_recoverable(black_box(&digest.0)));
    });
    g.bench_function("custody_sign_eip1559_software", |b| {
        b.iter(|| black_box(sign_once(&signer, black_box(&tx), &none)));
    });
    g.bench_function("custody_totp_gated_eip1559_memory", |b| {
        // As in `signing.rs`: the codes are computed before the timing.
        b.iter_custom(|iters| gated.sign_timed(&tx, iters));
    });
    g.finish();

    // Both paths again, each interleaved with raw libsecp256k1 signatures
    // (see `Pairing`): report.sh prints the ratio of the totals.
    let mut g = c.benchmark_group("hot_path_secp256k1_paired");
    let raw = || {
        black_box(raw_ctx.sign_ecdsa_recoverable(
            secp256k1::Message::from_digest(black_box(digest.0)),
            &raw_libsecp,
        ));
    };
    let mut software = Pairing::default();
    g.bench_function("software_interleaved_with_raw_libsecp256k1", |b| {
        b.iter_custom(|iters| {
            software.run(iters, raw, |_| {
                black_box(sign_once(&signer, black_box(&tx), &none));
            })
        });
    });
    software.save(
        "hot_path_secp256k1_paired",
        "software_interleaved_with_raw_libsecp256k1",
    );
    let mut paired_gated = Pairing::default();
    g.bench_function("gated_memory_interleaved_with_raw_libsecp256k1", |b| {
        b.iter_custom(|iters| gated.paired_timed(&mut paired_gated, &tx, iters, raw));
    });
    paired_gated.save(
        "hot_path_secp256k1_paired",
        "gated_memory_interleaved_with_raw_libsecp256k1",
    );
    g.finish();
}

criterion_group!(benches, hot_path_secp256k1);
criterion_main!(benches);
