//! The signing hot path, each stage, the cold path, envelopes and
//! throughput, every one beside its baseline measured in the same run.
//!
//! Run `cargo bench -p custody-benches`, then `benches/report.sh` for the
//! ratio table.
#![expect(
    clippy::unwrap_used,
    clippy::missing_docs_in_private_items,
    reason = "benchmark setup: a failure is a broken benchmark"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use alloy_network::TxSignerSync;
use alloy_signer_local::PrivateKeySigner;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use custody_core::{
    AuditLog, AuditSink, Audited, Authorization, DataKey, Digest32, EncryptionContext, Envelope,
    FileStore, Intent, KekId, KeyRef, KeySigner, LocalKek, MemoryAuditLog, MemoryStore,
    SharedBackend, StateStore, Vault, WalletScheme, WrappingBackend,
};
use custody_eth::{
    AccessList, AccessListItem, Address, EthSigner, Transaction, TxEip1559, TxEip2930, TxEip4844,
    TxEip7702, TxLegacy, U256,
};
use custody_totp::{Clock, EnrolMode, Enrolment, ManualClock, TotpConfig, TotpGate, TotpRegistry};
use k256::ecdsa::SigningKey;

const SEED: [u8; 64] = [0x42; 64];
const WALLET: &str = "alice@example.com";

fn kek() -> Arc<LocalKek> {
    Arc::new(LocalKek::from_key(
        KekId::new("bench").unwrap(),
        DataKey::new([9; 32]),
    ))
}

fn vault() -> Arc<Vault> {
    let mut v = Vault::new(kek(), WalletScheme::Default);
    v.set_master_seed(&SEED).unwrap();
    Arc::new(v)
}

fn eip1559(nonce: u64) -> Transaction {
    Transaction::Eip1559(TxEip1559 {
        chain_id: 1,
        nonce,
        max_priority_fee_per_gas: U256::from(1_500_000_000u64),
        max_fee_per_gas: U256::from(30_000_000_000u64),
        gas_limit: 21_000,
        to: Some(Address::parse("0x9858EfFD232B4033E47d90003D41EC34EcaEda94").unwrap()),
        value: U256::from(1_000_000_000_000_000_000u128),
        data: Vec::new(),
        access_list: AccessList::default(),
    })
}

fn every_type() -> Vec<(&'static str, Transaction)> {
    let to = Address::parse("0x9858EfFD232B4033E47d90003D41EC34EcaEda94").unwrap();
    let access_list = AccessList(vec![AccessListItem {
        address: to,
        storage_keys: vec![[1; 32], [2; 32]],
    }]);
    let data = vec![0xa9; 68]; // an ERC-20 transfer's calldata size
    vec![
        (
            "legacy-eip155",
            Transaction::Legacy(TxLegacy {
                chain_id: Some(1),
                nonce: 7,
                gas_price: U256::from(20_000_000_000u64),
                gas_limit: 60_000,
                to: Some(to),
                value: U256::from(0u64),
                data: data.clone(),
            }),
        ),
        (
            "eip2930",
            Transaction::Eip2930(TxEip2930 {
                chain_id: 1,
                nonce: 7,
                gas_price: U256::from(20_000_000_000u64),
                gas_limit: 60_000,
                to: Some(to),
                value: U256::from(0u64),
                data: data.clone(),
                access_list: access_list.clone(),
            }),
        ),
        ("eip1559", eip1559(7)),
        (
            "eip4844",
            Transaction::Eip4844(TxEip4844 {
                chain_id: 1,
                nonce: 7,
                max_priority_fee_per_gas: U256::from(1u64),
                max_fee_per_gas: U256::from(30_000_000_000u64),
                gas_limit: 60_000,
                to,
                value: U256::from(0u64),
                data: data.clone(),
                access_list: access_list.clone(),
                max_fee_per_blob_gas: U256::from(1u64),
                blob_versioned_hashes: vec![[1; 32], [2; 32]],
            }),
        ),
        (
            "eip7702",
            Transaction::Eip7702(TxEip7702 {
                chain_id: 1,
                nonce: 7,
                max_priority_fee_per_gas: U256::from(1u64),
                max_fee_per_gas: U256::from(30_000_000_000u64),
                gas_limit: 60_000,
                to,
                value: U256::from(0u64),
                data,
                access_list,
                authorization_list: Vec::new(),
            }),
        ),
    ]
}

/// The hot path: a warm wallet signs an EIP-1559 transaction, against raw
/// k256 signing the same digest with the same key.
fn hot_path(c: &mut Criterion) {
    let backend: SharedBackend = vault();
    let key = KeyRef::Wallet {
        name: WALLET.into(),
        index: 3,
    };
    let signer = EthSigner::new(KeySigner::pin(backend.clone(), key).wait().unwrap());
    let tx = eip1559(42);
    let digest = tx.signing_hash();
    let path = WalletScheme::Default.key_path(WALLET, 3).unwrap();
    let raw_key = {
        let x = custody_core::ExtendedPrivateKey::from_seed(&SEED)
            .unwrap()
            .derive_path(&path)
            .unwrap();
        SigningKey::from_slice(x.expose_secret_key().expose_secret()).unwrap()
    };
    let none = Authorization::none();

    let alloy_signer = PrivateKeySigner::from_slice(&raw_key.to_bytes()).unwrap();
    let alloy_tx = alloy_consensus::TxEip1559 {
        chain_id: 1,
        nonce: 42,
        max_priority_fee_per_gas: 1_500_000_000,
        max_fee_per_gas: 30_000_000_000,
        gas_limit: 21_000,
        to: alloy_primitives::TxKind::Call(alloy_primitives::Address::from(
            Address::parse("0x9858EfFD232B4033E47d90003D41EC34EcaEda94")
                .unwrap()
                .0,
        )),
        value: alloy_primitives::U256::from(1_000_000_000_000_000_000u128),
        access_list: Default::default(),
        input: alloy_primitives::Bytes::new(),
    };

    let gated_memory = totp_gated(
        vault(),
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryAuditLog::new()),
    );
    let tmp = tempfile::tempdir().unwrap();
    let gated_file = totp_gated(
        vault(),
        Arc::new(FileStore::open(tmp.path().join("state")).unwrap()),
        Arc::new(AuditLog::open(tmp.path().join("audit.log")).unwrap()),
    );

    let mut g = c.benchmark_group("hot_path");
    g.bench_function("raw_k256_sign_prehash_recoverable", |b| {
        b.iter(|| raw_key.sign_prehash_recoverable(black_box(&digest.0)));
    });
    g.bench_function("custody_sign_eip1559_software", |b| {
        b.iter(|| {
            let signed = signer
                .sign_transaction(black_box(&tx), &none)
                .wait()
                .unwrap();
            black_box(signed.encoded().len())
        });
    });
    g.bench_function("alloy_signer_local_sign_transaction_sync", |b| {
        b.iter(|| {
            let mut t = alloy_tx.clone();
            alloy_signer
                .sign_transaction_sync(black_box(&mut t))
                .unwrap()
        });
    });
    for (name, gated) in [
        ("custody_totp_gated_eip1559_memory", &gated_memory),
        ("custody_totp_gated_eip1559_file", &gated_file),
    ] {
        g.bench_function(name, |b| {
            // Each signature presents the next step's code (a code is
            // accepted once); computing it is the user's app's work, so it
            // is setup, outside the timing.
            b.iter_batched(
                || gated.next_code(),
                |code| {
                    let consent = Authorization::totp(code);
                    let signed = gated.signer.sign_transaction(&tx, &consent).wait().unwrap();
                    black_box(signed.encoded().len())
                },
                BatchSize::PerIteration,
            );
        });
    }
    g.finish();
}

/// A TOTP-enrolled wallet behind `Audited(TotpGate(Vault))`, with a clock the
/// benchmark moves forward one period per signature.
struct Gated {
    signer: EthSigner,
    enrolment: Enrolment,
    clock: Arc<ManualClock>,
}

impl Gated {
    fn next_code(&self) -> String {
        self.clock.advance(30);
        let params = self.enrolment.params();
        let code = params
            .code_at(self.enrolment.uri().expose_secret(), self.clock.now_unix())
            .unwrap();
        code.expose_str().to_owned()
    }
}

fn totp_gated(vault: Arc<Vault>, state: Arc<dyn StateStore>, audit: Arc<dyn AuditSink>) -> Gated {
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let registry = Arc::new(
        TotpRegistry::new(
            vault.clone(),
            state,
            audit.clone(),
            TotpConfig::new(WalletScheme::Default),
        )
        .unwrap()
        .with_clock(clock.clone()),
    );
    let enrolment = registry.enrol(WALLET, EnrolMode::New).unwrap();
    let gate: SharedBackend = Arc::new(TotpGate::new(vault, registry));
    let backend: SharedBackend = Arc::new(Audited::new(gate, audit));
    let key = KeyRef::Wallet {
        name: WALLET.into(),
        index: 3,
    };
    let signer = EthSigner::new(KeySigner::pin(backend, key).wait().unwrap());
    Gated {
        signer,
        enrolment,
        clock,
    }
}

/// Each stage alone.
fn stages(c: &mut Criterion) {
    let mut g = c.benchmark_group("stages");
    let master = custody_core::ExtendedPrivateKey::from_seed(&SEED).unwrap();
    let node_path = WalletScheme::Default.wallet_path(WALLET).unwrap();
    let node = master.derive_path(&node_path).unwrap().into_hd_node();
    let child = WalletScheme::Default.key_child(3).unwrap();
    g.bench_function("child_from_cached_node", |b| {
        b.iter(|| node.child_secret(black_box(child)).unwrap());
    });
    let raw_key = SigningKey::from_slice(&[0x11; 32]).unwrap();
    g.bench_function("raw_k256_sign_prehash_recoverable", |b| {
        b.iter(|| raw_key.sign_prehash_recoverable(black_box(&[7u8; 32])));
    });
    for (name, tx) in every_type() {
        g.bench_with_input(BenchmarkId::new("signing_hash", name), &tx, |b, tx| {
            b.iter(|| black_box(tx).signing_hash());
        });
    }
    g.finish();
}

/// The cold path: the first signature for a wallet, from the wrapped seed.
fn cold_path(c: &mut Criterion) {
    let kek = kek();
    let context = EncryptionContext::new()
        .with("custody", "master-seed")
        .unwrap();
    let kek_id = kek.current_kek().clone();
    let sealed = Envelope::seal(kek.as_ref(), &kek_id, &context, &SEED)
        .wait()
        .unwrap();
    let digest = Digest32([5; 32]);
    let none = Authorization::none();
    let raw_key = SigningKey::from_slice(&[0x11; 32]).unwrap();

    let mut g = c.benchmark_group("cold_path");
    g.bench_function("raw_k256_sign_prehash_recoverable", |b| {
        b.iter(|| raw_key.sign_prehash_recoverable(black_box(&digest.0)));
    });
    g.bench_function("unwrap_derive_first_signature", |b| {
        b.iter(|| {
            let seed = sealed
                .open(kek.as_ref() as &dyn WrappingBackend, &context)
                .wait()
                .unwrap();
            let mut v = Vault::new(kek.clone(), WalletScheme::Default);
            v.set_master_seed(seed.expose_secret()).unwrap();
            let backend: SharedBackend = Arc::new(v);
            let s = KeySigner::pin(
                backend,
                KeyRef::Wallet {
                    name: WALLET.into(),
                    index: 0,
                },
            )
            .wait()
            .unwrap();
            s.sign(digest, Intent::raw_digest(), &none).wait().unwrap()
        });
    });
    g.finish();
}

/// Envelope seal/open against raw AES-256-GCM on the same sizes.
fn envelopes(c: &mut Criterion) {
    let kek = kek();
    let kek_id = kek.current_kek().clone();
    let context = EncryptionContext::new().with("wallet", WALLET).unwrap();
    let cipher = Aes256Gcm::new_from_slice(&[3; 32]).unwrap();
    let nonce = Nonce::from([4u8; 12]);
    for size in [32usize, 1 << 20] {
        let mut g = c.benchmark_group(format!("envelope_{size}"));
        g.throughput(Throughput::Bytes(size as u64));
        let plaintext = vec![0x5a; size];
        g.bench_function("raw_aes_gcm_seal", |b| {
            b.iter(|| {
                let mut buf = plaintext.clone();
                let tag = cipher
                    .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                    .unwrap();
                black_box((buf, tag))
            });
        });
        g.bench_function("envelope_seal", |b| {
            b.iter(|| {
                Envelope::seal(kek.as_ref(), &kek_id, &context, black_box(&plaintext))
                    .wait()
                    .unwrap()
            });
        });
        let mut ct = plaintext.clone();
        let tag = cipher
            .encrypt_inout_detached(&nonce, b"", ct.as_mut_slice().into())
            .unwrap();
        g.bench_function("raw_aes_gcm_open", |b| {
            b.iter(|| {
                let mut buf = ct.clone();
                cipher
                    .decrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into(), &tag)
                    .unwrap();
                black_box(buf)
            });
        });
        let sealed = Envelope::seal(kek.as_ref(), &kek_id, &context, &plaintext)
            .wait()
            .unwrap();
        g.bench_function("envelope_open", |b| {
            b.iter(|| sealed.open(kek.as_ref(), &context).wait().unwrap());
        });
        g.finish();
    }
}

/// Signatures per second with one thread and with two, each thread signing
/// for its own wallet: shows whether anything in the hot path serializes.
fn throughput(c: &mut Criterion) {
    let backend: SharedBackend = vault();
    let signers: Vec<Arc<EthSigner>> = (0..2)
        .map(|t| {
            let key = KeyRef::Wallet {
                name: format!("user{t}@example.com"),
                index: t,
            };
            Arc::new(EthSigner::new(
                KeySigner::pin(backend.clone(), key).wait().unwrap(),
            ))
        })
        .collect();
    let tx = Arc::new(eip1559(1));
    let mut g = c.benchmark_group("throughput");
    for threads in [1usize, 2] {
        // Each iteration is one signature per thread: time per iteration
        // over threads gives the aggregate rate.
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iters| run_threads(&signers[..threads], &tx, iters));
        });
    }
    g.finish();
}

fn run_threads(signers: &[Arc<EthSigner>], tx: &Arc<Transaction>, iters: u64) -> Duration {
    let barrier = Arc::new(std::sync::Barrier::new(signers.len() + 1));
    let handles: Vec<_> = signers
        .iter()
        .map(|s| {
            let (s, tx, barrier) = (s.clone(), tx.clone(), barrier.clone());
            std::thread::spawn(move || {
                let none = Authorization::none();
                barrier.wait();
                for _ in 0..iters {
                    black_box(s.sign_transaction(&tx, &none).wait().unwrap());
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

criterion_group!(benches, hot_path, stages, cold_path, envelopes, throughput);
criterion_main!(benches);
