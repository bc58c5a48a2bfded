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
    EthSigner::new(KeySigner::pin(backend, hot_key()).wait().unwrap()).unwrap()
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

/// How many records the in-memory audit log keeps before they are shipped
/// (drained and dropped, inside the timing: freeing a record is part of its
/// cost; a log that kept a whole sample's thousands of records would time
/// the page faults of its own growth instead).
const SHIP_EVERY: usize = 64;

/// Calls per block of a [`Pairing`].
pub const PAIR_BLOCK: usize = 16;

/// A paired measurement: a subject and its baseline timed in interleaved
/// blocks of [`PAIR_BLOCK`] calls each, their totals kept over every
/// sample. Each block pair runs back to back, so a burst of noise from the
/// rest of a shared machine lands on both sides instead of on whichever
/// benchmark happened to be running; [`Pairing::ratio`] (subject ÷
/// baseline, over the same number of calls) is what `report.sh` prints.
#[derive(Debug, Default)]
pub struct Pairing {
    subject: Duration,
    baseline: Duration,
}

impl Pairing {
    /// Runs `iters` calls of each, interleaved (`subject` gets the call's
    /// index), adds both times to the totals, and returns the subject's
    /// (what criterion reports: the subject's time per call while
    /// interleaved with the baseline).
    pub fn run(
        &mut self,
        iters: u64,
        mut baseline: impl FnMut(),
        mut subject: impl FnMut(usize),
    ) -> Duration {
        let iters = usize::try_from(iters).unwrap();
        let (mut base, mut with) = (Duration::ZERO, Duration::ZERO);
        let mut done = 0;
        while done < iters {
            let block = PAIR_BLOCK.min(iters - done);
            let start = Instant::now();
            for _ in 0..block {
                baseline();
            }
            base += start.elapsed();
            let start = Instant::now();
            for i in done..done + block {
                subject(i);
            }
            with += start.elapsed();
            done += block;
        }
        self.baseline += base;
        self.subject += with;
        with
    }

    /// Subject ÷ baseline over every call so far.
    #[must_use]
    pub fn ratio(&self) -> f64 {
        self.subject.as_secs_f64() / self.baseline.as_secs_f64()
    }

    /// Writes the totals and the ratio as `paired.json` beside criterion's
    /// results for `group/name` (in `$CARGO_TARGET_DIR/criterion`, else the
    /// workspace's `target/criterion`), for `report.sh`.
    pub fn save(&self, group: &str, name: &str) {
        let dir = results_dir(group, name);
        let json = format!(
            "{{\"subject_ns\":{},\"baseline_ns\":{},\"ratio\":{}}}\n",
            self.subject.as_nanos(),
            self.baseline.as_nanos(),
            self.ratio()
        );
        std::fs::write(dir.join("paired.json"), json).unwrap();
    }
}

impl Gated {
    /// The stack over `state` and `audit`.
    #[must_use]
    pub fn new(vault: Arc<Vault>, state: Arc<dyn StateStore>, audit: Arc<dyn AuditSink>) -> Self {
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        let (registry, backend) = gated_stack(vault, state, audit, clock.clone());
        let enrolment = registry.enrol(WALLET, EnrolMode::New).wait().unwrap();
        let signer = EthSigner::new(KeySigner::pin(backend, hot_key()).wait().unwrap()).unwrap();
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

    /// The codes for the next `iters` periods, as consents (the user's
    /// app's work, done before any timing).
    fn consents(&self, iters: u64) -> Vec<Authorization> {
        let params = self.enrolment.params();
        let now = self.clock.now_unix();
        (1..=iters)
            .map(|i| {
                let at = now + i * params.period.seconds();
                let code = params
                    .code_at(self.enrolment.uri().expose_secret(), at)
                    .unwrap();
                Authorization::totp(code.expose_str())
            })
            .collect()
    }

    /// [`Gated::sign_timed`] interleaved with `baseline` in `pairing` (see
    /// [`Pairing::run`]): the gated signatures' time.
    pub fn paired_timed(
        &self,
        pairing: &mut Pairing,
        tx: &Transaction,
        iters: u64,
        baseline: impl FnMut(),
    ) -> Duration {
        let period = self.enrolment.params().period.seconds();
        let consents = self.consents(iters);
        let elapsed = pairing.run(iters, baseline, |i| {
            self.sign_next(tx, consents.get(i).unwrap(), period, i);
        });
        self.ship();
        elapsed
    }

    /// The `i`th signature of a timed run (from 0): the clock moves on one
    /// period, `tx` is signed with `consent`, and the log's records are
    /// shipped every [`SHIP_EVERY`] signatures.
    fn sign_next(&self, tx: &Transaction, consent: &Authorization, period: u64, i: usize) {
        self.clock.advance(period);
        let signed = self.signer.sign_transaction(tx, consent).wait().unwrap();
        black_box(signed.encoded().len());
        self.ship_every(i);
    }

    /// Ships the in-memory log's records after every [`SHIP_EVERY`]th
    /// signature (`i` counts from 0).
    fn ship_every(&self, i: usize) {
        if i % SHIP_EVERY == SHIP_EVERY - 1 {
            self.ship();
        }
    }

    /// Ships (drains and drops) the in-memory log's records, if any.
    fn ship(&self) {
        if let Some(log) = &self.shipped {
            drop(log.drain());
        }
    }

    /// Signs `tx` `iters` times, each with the next period's code, and
    /// returns the time the signatures took. The codes are the user's app's
    /// work: they are computed before the timing starts.
    pub fn sign_timed(&self, tx: &Transaction, iters: u64) -> Duration {
        let period = self.enrolment.params().period.seconds();
        let consents = self.consents(iters);
        let start = Instant::now();
        for (i, consent) in consents.iter().enumerate() {
            self.sign_next(tx, consent, period, i);
        }
        let elapsed = start.elapsed();
        self.ship();
        elapsed
    }
}

/// Criterion's results directory for `group/name` (in
/// `$CARGO_TARGET_DIR/criterion`, else the workspace's `target/criterion`),
/// created if missing.
fn results_dir(group: &str, name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    let dir = target.join("criterion").join(group).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes how many calls of each kind `n` operations (each a `per`) made,
/// as `calls.json` beside criterion's results for `group/name`, for
/// `report.sh`; and prints it.
pub fn save_calls(group: &str, name: &str, per: &str, n: u64, calls: &[(&str, u64)]) {
    let counts: Vec<String> = calls.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    let json = format!(
        "{{\"per\":\"{per}\",\"n\":{n},\"calls\":{{{}}}}}\n",
        counts.join(",")
    );
    println!("{group}/{name}: {n} {per}s made {json}");
    std::fs::write(results_dir(group, name).join("calls.json"), json).unwrap();
}
