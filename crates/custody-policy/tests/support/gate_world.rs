//! The world of the policy gate's tests, built once: a governed wallet
//! ("treasury", three owners with WebAuthn devices, the policy of
//! [`policy`]) in a policy log over a memory state store, a policy node
//! whose key lives in another vault than the wallets' keys, a clock the
//! test moves, and the stacks a signing node runs (audit over the policy
//! gate over a backend, the node in-line or not) built by one function.
//!
//! The test that includes this includes `support/authenticator.rs` as
//! `authenticator` beside it.
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use custody_core::{
    AuditSink, Audited, Authorization, DataKey, Denial, Digest32, Intent, IntentKind, KekId,
    KeyRef, KeySigner, LocalKek, MemoryAuditLog, MemoryStore, SharedBackend, StateStore,
    WalletScheme,
};
use custody_eth::{Address, EthSigner, Transaction, TxEip1559, U256};
use custody_policy::gate::{Clock, PolicyGate, PolicyNode};
use custody_policy::log::{Change, EntryAuth, PolicyLog};
use custody_policy::operation::Operation;
use custody_policy::policy::Policy;
use custody_policy::webauthn::RelyingParty;
use serde_json::json;

use super::authenticator::{Device, ORIGIN, RP_ID};

pub(crate) const WALLET: &str = "treasury";
pub(crate) const ALICE: &str = "0x1111111111111111111111111111111111111111";
pub(crate) const MIXER: &str = "0x722122df12d4e14e13ac3b6895a86e84145b6967";
pub(crate) const NOW: u64 = 1_800_000_000;
pub(crate) const SCHEME: WalletScheme = WalletScheme::Default;

/// A software vault whose master seed is `seed` repeated.
pub(crate) fn vault(seed: u8) -> SharedBackend {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let mut vault = custody_core::Vault::new(kek, SCHEME);
    vault.set_master_seed(&[seed; 64]).unwrap();
    Arc::new(vault)
}

/// `n` ETH in wei.
pub(crate) fn eth(n: u64) -> U256 {
    U256::from_u64(n)
        .checked_mul_u64(1_000_000_000_000_000_000)
        .unwrap()
}

/// An EIP-1559 transfer of `value` to `to` on mainnet.
pub(crate) fn payment(to: &str, value: U256, nonce: u64) -> Transaction {
    Transaction::Eip1559(TxEip1559 {
        chain_id: 1,
        nonce,
        max_priority_fee_per_gas: U256::from_u64(1),
        max_fee_per_gas: U256::from_u64(100),
        gas_limit: 21_000,
        to: Some(Address::parse(to).unwrap()),
        value,
        data: Vec::new(),
        access_list: Default::default(),
    })
}

/// The treasury's policy: the mixer denied; up to 1 ETH with one owner's
/// approval, more with two; 10 ETH a day; `governance` owners change it.
pub(crate) fn policy(governance: u32) -> Policy {
    let doc = json!({
        "schema": "custody-policy/v1",
        "wallet": WALLET,
        "groups": {"owners": {"role": "owner", "members": ["ann", "ben", "cat"]}},
        "governance": {"group": "owners", "threshold": governance},
        "rules": [
            {"id": "no-mixer", "effect": "deny", "when": {"destinationsAnyOf": [MIXER]}},
            {"id": "small", "effect": "allow",
             "when": {"kinds": ["transaction"], "assets": ["native"], "maxAmount": eth(1).to_string()},
             "require": [{"group": "owners", "threshold": 1}]},
            {"id": "large", "effect": "allow",
             "when": {"kinds": ["transaction"], "assets": ["native"]},
             "require": [{"group": "owners", "threshold": 2}]}
        ],
        "limits": [{"id": "daily", "asset": "native", "windowSeconds": 86400, "max": eth(10).to_string()}]
    });
    Policy::from_json(doc.to_string().as_bytes()).unwrap()
}

/// The treasury governed: ann, ben and cat's devices registered and the
/// policy of [`policy`]`(2)` in force (log index 3).
pub(crate) struct World {
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) audit: Arc<MemoryAuditLog>,
    pub(crate) vault: SharedBackend,
    pub(crate) log: PolicyLog,
    pub(crate) policy_key: KeySigner,
    pub(crate) node: PolicyNode,
    pub(crate) clock: Arc<AtomicU64>,
    pub(crate) devices: [Device; 3],
}

impl World {
    pub(crate) fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let state: Arc<dyn StateStore> = store.clone();
        // The policy key lives in another backend than the wallets' keys.
        let policy_key = KeySigner::pin(
            vault(0x43),
            KeyRef::Wallet {
                name: "policy-node".into(),
                index: 0,
            },
        )
        .wait()
        .unwrap();
        let log = PolicyLog::new(
            state.clone(),
            RelyingParty::new(RP_ID, [ORIGIN]).unwrap(),
            *policy_key.key().secp256k1().unwrap(),
        );
        let node = PolicyNode::new(log.clone(), policy_key.clone(), state, 300).unwrap();
        let mut world = Self {
            store,
            audit: Arc::new(MemoryAuditLog::new()),
            vault: vault(0x42),
            log,
            policy_key,
            node,
            clock: Arc::new(AtomicU64::new(NOW)),
            devices: [Device::p256(1), Device::ed25519(2), Device::p256(3)],
        };
        for (who, i) in [("ann", 0), ("ben", 1), ("cat", 2)] {
            let change = Change::Device {
                approver: who.into(),
                credential: world.devices[i].credential(),
            };
            world.append_signed(change);
        }
        world.append_signed(Change::Policy(Box::new(policy(2))));
        world
    }

    /// Appends `change` signed by the policy key, through its backend.
    pub(crate) fn append_signed(&mut self, change: Change) {
        let state = self.log.load(WALLET, None).wait().unwrap();
        let op = state.next_operation(&change);
        let signature = self
            .policy_key
            .sign(
                Digest32(op.hash().0),
                Intent::typed(IntentKind::PolicyEntry, &op),
                &Authorization::none(),
            )
            .wait()
            .unwrap();
        self.log
            .append(WALLET, change, EntryAuth::PolicyKey(signature), NOW)
            .wait()
            .unwrap();
    }

    /// The world's clock, as the gate reads it.
    pub(crate) fn clock(&self) -> Clock {
        let clock = self.clock.clone();
        Arc::new(move || clock.load(Ordering::SeqCst))
    }

    /// The policy gate over `inner`, on the world's log, state store and
    /// clock; `node` in-line if given (a split signing node otherwise).
    pub(crate) fn gate(&self, inner: SharedBackend, node: Option<&PolicyNode>) -> SharedBackend {
        let state: Arc<dyn StateStore> = self.store.clone();
        let gate = PolicyGate::new(inner, self.log.clone(), state, SCHEME).with_clock(self.clock());
        match node {
            Some(node) => Arc::new(gate.with_node(node.clone())),
            None => Arc::new(gate),
        }
    }

    /// The stack a signing node runs: audit over the policy gate over the
    /// vault; with the node in-line or not.
    pub(crate) fn signer(&self, in_line: bool, key: KeyRef) -> EthSigner {
        let gate = self.gate(self.vault.clone(), in_line.then_some(&self.node));
        audited_signer(gate, self.audit.clone(), key)
    }

    pub(crate) fn wallet_key(&self, index: u32) -> KeyRef {
        KeyRef::Wallet {
            name: WALLET.into(),
            index,
        }
    }

    /// The assertions of the owners `who` (indices into `devices`) over
    /// `op`.
    pub(crate) fn approve(&mut self, who: &[usize], op: &Operation) -> Vec<String> {
        who.iter()
            .map(|&i| self.devices[i].assert(&op.hash().0))
            .collect()
    }

    /// The approvals of the owners `who` (indices into `devices`) of
    /// `signer` signing `tx`, as the authorization they travel in.
    pub(crate) fn approved(
        &mut self,
        who: &[usize],
        signer: &EthSigner,
        tx: &Transaction,
    ) -> Authorization {
        Authorization::none().with_approvals(self.approve(who, &op_for(signer, tx)))
    }
}

/// `key` as an Ethereum signer through `Audited(backend)`, its records
/// kept by `sink`.
pub(crate) fn audited_signer(
    backend: SharedBackend,
    sink: Arc<dyn AuditSink>,
    key: KeyRef,
) -> EthSigner {
    let audited: SharedBackend = Arc::new(Audited::new(backend, sink));
    EthSigner::new(KeySigner::pin(audited, key).wait().unwrap()).unwrap()
}

/// The operation of `signer` signing `tx`, as approvers see it.
pub(crate) fn op_for(signer: &EthSigner, tx: &Transaction) -> Operation {
    Operation::Transaction {
        signer: *signer.public_key(),
        tx: tx.clone(),
    }
}

/// The denial a refused signature carries, or a panic saying what came
/// instead.
pub(crate) fn denial(result: Result<impl std::fmt::Debug, custody_eth::Error>) -> Denial {
    match result {
        Err(custody_eth::Error::Core(custody_core::Error::Denied(d))) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// A verdict from the node, as a policy service would return it.
pub(crate) fn verdict_for(
    w: &mut World,
    signer: &EthSigner,
    tx: &Transaction,
    who: &[usize],
) -> Vec<u8> {
    let op = op_for(signer, tx);
    let approvals = w.approve(who, &op);
    let now = w.clock.load(Ordering::SeqCst);
    let decided = w.node.decide(WALLET, &op, &approvals, now).wait().unwrap();
    decided.signed.unwrap().to_bytes().unwrap()
}
