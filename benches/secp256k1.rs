//! The hot path with custody-core's `secp256k1` feature (the vault signs
//! with libsecp256k1), beside raw libsecp256k1 and raw k256 signing the same
//! digest with the same key in the same run.
//!
//! Run `cargo bench -p custody-benches --features secp256k1 --bench secp256k1`,
//! then `benches/report.sh` for the ratio table.
#![expect(
    clippy::unwrap_used,
    clippy::missing_docs_in_private_items,
    reason = "benchmark setup: a failure is a broken benchmark"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use custody_core::{
    AuditSink, Audited, Authorization, DataKey, KekId, KeyRef, KeySigner, LocalKek, MemoryAuditLog,
    MemoryStore, SharedBackend, StateStore, Vault, WalletScheme,
};
use custody_eth::{AccessList, Address, EthSigner, Transaction, TxEip1559, U256};
use custody_totp::{Clock, EnrolMode, Enrolment, ManualClock, TotpConfig, TotpGate, TotpRegistry};
use k256::ecdsa::SigningKey;

const SEED: [u8; 64] = [0x42; 64];
const WALLET: &str = "alice@example.com";

fn vault() -> Arc<Vault> {
    let kek = Arc::new(LocalKek::from_key(
        KekId::new("bench").unwrap(),
        DataKey::new([9; 32]),
    ));
    let mut v = Vault::new(kek, WalletScheme::Default);
    v.set_master_seed(&SEED).unwrap();
    Arc::new(v)
}

/// The transaction of `signing.rs`'s hot path.
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

/// The hot path of `signing.rs` on the libsecp256k1 fast path: a warm wallet
/// signs an EIP-1559 transaction (bare, and behind the TOTP gate and the
/// audit layer), against raw libsecp256k1 and raw k256 signing the same
/// digest with the same key.
fn hot_path_secp256k1(c: &mut Criterion) {
    let backend: SharedBackend = vault();
    let key = KeyRef::Wallet {
        name: WALLET.into(),
        index: 3,
    };
    let signer = EthSigner::new(KeySigner::pin(backend, key).wait().unwrap());
    let tx = eip1559(42);
    let digest = tx.signing_hash();
    let path = WalletScheme::Default.key_path(WALLET, 3).unwrap();
    let derived = custody_core::ExtendedPrivateKey::from_seed(&SEED)
        .unwrap()
        .derive_path(&path)
        .unwrap();
    let secret = *derived.expose_secret_key().expose_secret();
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

    let gated = totp_gated(
        vault(),
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryAuditLog::new()),
    );

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
        b.iter(|| {
            let signed = signer
                .sign_transaction(black_box(&tx), &none)
                .wait()
                .unwrap();
            black_box(signed.encoded().len())
        });
    });
    g.bench_function("custody_totp_gated_eip1559_memory", |b| {
        // Each signature presents the next step's code (a code is accepted
        // once); computing it is the user's app's work, so it is setup,
        // outside the timing.
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
    g.finish();
}

/// A TOTP-enrolled wallet behind `Audited(TotpGate(Vault))`, with a clock the
/// benchmark moves forward one period per signature (as in `signing.rs`).
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

criterion_group!(benches, hot_path_secp256k1);
criterion_main!(benches);
