//! Benchmarks of the custody SDK; see `signing.rs`, `secp256k1.rs` and
//! `report.sh`. This library holds the setup both benchmark files share,
//! so that they measure the same hot path.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup: a failure is a broken benchmark"
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_core::{
    AuditSink, Audited, Authorization, DataKey, KekId, KeyRef, KeySigner, LocalKek, MemoryAuditLog,
    MemoryStore, SharedBackend, StateStore, Vault, WalletScheme,
};
use custody_eth::{AccessList, Address, EthSigner, Transaction, TxEip1559, U256};
use custody_totp::{Clock, EnrolMode, Enrolment, ManualClock, TotpConfig, TotpGate, TotpRegistry};

/// The master seed of every benchmark vault.
pub const SEED: [u8; 64] = [0x42; 64];

/// The wallet the hot path signs for (key index 3).
pub const WALLET: &str = "alice@example.com";

/// A local KEK with a fixed key (no KDF: the benches measure signing).
#[must_use]
pub fn kek() -> Arc<LocalKek> {
    Arc::new(LocalKek::from_key(
        KekId::new("bench").unwrap(),
        DataKey::new([9; 32]),
    ))
}

/// A software vault holding [`SEED`] under [`kek`], default wallet scheme.
#[must_use]
pub fn vault() -> Arc<Vault> {
    let mut v = Vault::new(kek(), WalletScheme::Default);
    v.set_master_seed(&SEED).unwrap();
    Arc::new(v)
}

/// The hot path's transaction: an EIP-1559 transfer of 1 ether.
#[must_use]
pub fn eip1559(nonce: u64) -> Transaction {
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

/// The hot path's key: index 3 of [`WALLET`].
#[must_use]
pub fn hot_key() -> KeyRef {
    KeyRef::Wallet {
        name: WALLET.into(),
        index: 3,
    }
}

/// The secret key of [`hot_key`], derived independently of the vault (for
/// the raw baselines, which sign the same digest with the same key).
#[must_use]
pub fn hot_secret() -> [u8; 32] {
    let path = WalletScheme::Default.key_path(WALLET, 3).unwrap();
    let derived = custody_core::ExtendedPrivateKey::from_seed(&SEED)
        .unwrap()
        .derive_path(&path)
        .unwrap();
    *derived.expose_secret_key().expose_secret()
}

/// The signer of [`hot_key`] straight over a software [`vault`] (no gate).
#[must_use]
pub fn software_signer() -> EthSigner {
    let backend: SharedBackend = vault();
    EthSigner::new(KeySigner::pin(backend, hot_key()).wait().unwrap())
}

/// One software hot-path signature of `tx` with no second factor; the
/// length of the signed encoding (for `black_box`).
pub fn sign_once(signer: &EthSigner, tx: &Transaction, none: &Authorization) -> usize {
    signer
        .sign_transaction(tx, none)
        .wait()
        .unwrap()
        .encoded()
        .len()
}

/// A TOTP-enrolled [`WALLET`] behind `Audited(TotpGate(Vault))`, with a
/// clock the benchmark moves forward one period per signature.
#[derive(Debug)]
pub struct Gated {
    /// The signer of [`hot_key`] through the whole stack.
    pub signer: EthSigner,
    enrolment: Enrolment,
    clock: Arc<ManualClock>,
    /// An in-memory audit log whose records are shipped (drained) after
    /// each timed batch, outside the timing.
    shipped: Option<Arc<MemoryAuditLog>>,
}

/// The production stack `Audited(TotpGate(vault))` over `state` and
/// `audit`, with `clock`: the registry (to enrol wallets) and the backend.
#[must_use]
pub fn gated_stack(
    vault: Arc<Vault>,
    state: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<ManualClock>,
) -> (Arc<TotpRegistry>, SharedBackend) {
    let registry = Arc::new(
        TotpRegistry::new(
            vault.clone(),
            state,
            audit.clone(),
            TotpConfig::new(WalletScheme::Default),
        )
        .unwrap()
        .with_clock(clock),
    );
    let gate: SharedBackend = Arc::new(TotpGate::new(vault, registry.clone()));
    let backend: SharedBackend = Arc::new(Audited::new(gate, audit));
    (registry, backend)
}

impl Gated {
    /// The stack over `state` and `audit`.
    #[must_use]
    pub fn new(vault: Arc<Vault>, state: Arc<dyn StateStore>, audit: Arc<dyn AuditSink>) -> Self {
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let (registry, backend) = gated_stack(vault, state, audit, clock.clone());
        let enrolment = registry.enrol(WALLET, EnrolMode::New).unwrap();
        let signer = EthSigner::new(KeySigner::pin(backend, hot_key()).wait().unwrap());
        Self {
            signer,
            enrolment,
            clock,
            shipped: None,
        }
    }

    /// The stack over the in-memory state store and an in-memory audit log
    /// that is drained between timed batches, as a service shipping its
    /// records elsewhere would (a log keeping millions of records would time
    /// its own growth): the CPU cost of the gated hot path.
    #[must_use]
    pub fn in_memory(vault: Arc<Vault>) -> Self {
        let log = Arc::new(MemoryAuditLog::new());
        let mut gated = Self::new(vault, Arc::new(MemoryStore::new()), log.clone());
        gated.shipped = Some(log);
        gated
    }

    /// Signs `tx` `iters` times, each with the next period's code, and
    /// returns the time the signatures took. The codes are the user's app's
    /// work: they are computed before the timing starts.
    pub fn sign_timed(&self, tx: &Transaction, iters: u64) -> Duration {
        let params = self.enrolment.params();
        let now = self.clock.now_unix();
        let consents: Vec<Authorization> = (1..=iters)
            .map(|i| {
                let at = now + i * params.period.seconds();
                let code = params
                    .code_at(self.enrolment.uri().expose_secret(), at)
                    .unwrap();
                Authorization::totp(code.expose_str())
            })
            .collect();
        let start = Instant::now();
        for consent in &consents {
            self.clock.advance(params.period.seconds());
            let signed = self.signer.sign_transaction(tx, consent).wait().unwrap();
            black_box(signed.encoded().len());
        }
        let elapsed = start.elapsed();
        if let Some(log) = &self.shipped {
            drop(log.drain());
        }
        elapsed
    }
}
