//! Time-delayed operations and vetoes, end to end through the policy gate
//! as a signing node stacks it (audit over the gate over a vault, the node
//! in-line): the recovery pattern of a support group that may move funds
//! alone, but only after a delay the owners can use to veto.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use custody_core::{
    Audited, Authorization, DataKey, Denial, Digest32, Intent, IntentKind, KekId, KeyRef,
    KeySigner, LocalKek, MemoryAuditLog, MemoryStore, SharedBackend, StateStore, WalletScheme,
};
use custody_eth::{Address, EthSigner, Transaction, TxEip1559, U256};
use custody_policy::PolicyError;
use custody_policy::delay::{Proposal, proposal_key, veto_key};
use custody_policy::gate::{Clock, PolicyGate, PolicyNode};
use custody_policy::log::{Change, EntryAuth, PolicyLog};
use custody_policy::operation::{Operation, OperationKind};
use custody_policy::policy::{Decision, Policy};
use custody_policy::webauthn::RelyingParty;
use serde_json::json;

#[path = "support/authenticator.rs"]
mod authenticator;
use authenticator::*;

const WALLET: &str = "treasury";
const ALICE: &str = "0x1111111111111111111111111111111111111111";
const NOW: u64 = 1_800_000_000;
const DELAY: u64 = 3_600;
const SCHEME: WalletScheme = WalletScheme::Default;

fn vault(seed: u8) -> SharedBackend {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let mut vault = custody_core::Vault::new(kek, SCHEME);
    vault.set_master_seed(&[seed; 64]).unwrap();
    Arc::new(vault)
}

fn payment(nonce: u64) -> Transaction {
    Transaction::Eip1559(TxEip1559 {
        chain_id: 1,
        nonce,
        max_priority_fee_per_gas: U256::from_u64(1),
        max_fee_per_gas: U256::from_u64(100),
        gas_limit: 21_000,
        to: Some(Address::parse(ALICE).unwrap()),
        value: U256::from_u64(5),
        data: Vec::new(),
        access_list: Default::default(),
    })
}

/// Owners (2 of 2) move funds at once; support (1) only after `DELAY`.
fn policy(delay: u64) -> Policy {
    let doc = json!({
        "schema": "custody-policy/v1",
        "wallet": WALLET,
        "groups": {
            "owners": {"role": "owner", "members": ["ann", "ben"]},
            "support": {"role": "support", "members": ["sue"]}
        },
        "governance": {"group": "owners", "threshold": 2},
        "rules": [
            {"id": "owners", "effect": "allow", "when": {"kinds": ["transaction"]},
             "require": [{"group": "owners", "threshold": 2}]},
            {"id": "recovery", "effect": "allow", "when": {"kinds": ["transaction"]},
             "require": [{"group": "support", "threshold": 1}], "delaySeconds": delay}
        ]
    });
    Policy::from_json(doc.to_string().as_bytes()).unwrap()
}

struct World {
    store: Arc<MemoryStore>,
    audit: Arc<MemoryAuditLog>,
    log: PolicyLog,
    node: PolicyNode,
    clock: Arc<AtomicU64>,
    signer: EthSigner,
    /// ann, ben, sue, a device nobody registered, sid's (support, in
    /// the recovery world) and ann's new one (recovered there).
    devices: [Device; 6],
}

impl World {
    fn new() -> Self {
        Self::with_policy(policy(DELAY), &[("ann", 0), ("ben", 1), ("sue", 2)])
    }

    /// The world under `policy`, the `(approver, device)` pairs registered
    /// before it.
    fn with_policy(policy: Policy, approvers: &[(&str, usize)]) -> Self {
        let store = Arc::new(MemoryStore::new());
        let state: Arc<dyn StateStore> = store.clone();
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
        let node = PolicyNode::new(log.clone(), policy_key.clone(), state.clone(), 300).unwrap();
        let clock = Arc::new(AtomicU64::new(NOW));
        let audit = Arc::new(MemoryAuditLog::new());
        let tick = clock.clone();
        let clock_fn: Clock = Arc::new(move || tick.load(Ordering::SeqCst));
        let gate = PolicyGate::new(vault(0x42), log.clone(), state, SCHEME)
            .with_clock(clock_fn)
            .with_node(node.clone());
        let audited: SharedBackend = Arc::new(Audited::new(Arc::new(gate), audit.clone()));
        let signer = EthSigner::new(
            KeySigner::pin(
                audited,
                KeyRef::Wallet {
                    name: WALLET.into(),
                    index: 0,
                },
            )
            .wait()
            .unwrap(),
        )
        .unwrap();
        let devices = [
            Device::p256(1),
            Device::ed25519(2),
            Device::p256(3),
            Device::p256(9),
            Device::p256(4),
            Device::p256(5),
        ];
        let world = Self {
            store,
            audit,
            log,
            node,
            clock,
            signer,
            devices,
        };
        for &(who, i) in approvers {
            world.append_by_policy_key(
                &policy_key,
                Change::Device {
                    approver: who.into(),
                    credential: world.devices[i].credential(),
                },
            );
        }
        world.append_by_policy_key(&policy_key, Change::Policy(Box::new(policy)));
        world
    }

    fn append_by_policy_key(&self, key: &KeySigner, change: Change) {
        let state = self.log.load(WALLET, None).wait().unwrap();
        let op = state.next_operation(&change);
        let signature = key
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

    fn op(&self, tx: &Transaction) -> Operation {
        Operation::Transaction {
            signer: *self.signer.public_key(),
            tx: tx.clone(),
        }
    }

    fn sign(&self, tx: &Transaction, approvals: Vec<String>) -> Result<String, Denial> {
        match self
            .signer
            .sign_transaction(tx, &Authorization::none().with_approvals(approvals))
            .wait()
        {
            Ok(signed) => {
                // The signature is the wallet key's.
                assert_eq!(signed.recover_sender().unwrap(), self.signer.address());
                Ok(hex::encode(signed.encoded()))
            }
            Err(custody_eth::Error::Core(custody_core::Error::Denied(d))) => Err(d),
            Err(other) => panic!("expected a signature or a denial, got {other:?}"),
        }
    }

    fn veto_assertion(&mut self, device: usize, vetoed: &Operation) -> String {
        let veto = Operation::Veto {
            wallet: WALLET.into(),
            operation: vetoed.hash(),
        };
        self.devices[device].assert(&veto.hash().0)
    }

    /// A veto of `vetoed` from `device`, given now.
    fn veto(&mut self, device: usize, vetoed: &Operation) -> Result<String, PolicyError> {
        let assertion = self.veto_assertion(device, vetoed);
        self.node
            .veto(WALLET, vetoed.hash(), &assertion, self.now())
            .wait()
    }

    /// `tx` (operation `op`) is refused, and the node's decision is the
    /// delayed rule vetoed by `by`.
    fn assert_vetoed_by(&self, tx: &Transaction, op: &Operation, by: &str) {
        assert_eq!(self.sign(tx, vec![]), Err(Denial::PolicyDenied));
        let decided = self
            .node
            .decide(WALLET, op, &[], self.now())
            .wait()
            .unwrap();
        assert_eq!(
            decided.evaluation.decision,
            Decision::Vetoed {
                rule: "recovery".into(),
                by: by.into()
            }
        );
    }

    fn advance(&self, seconds: u64) {
        self.clock.fetch_add(seconds, Ordering::SeqCst);
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }
}

#[test]
fn a_delayed_operation_is_proposed_then_signed_once_its_delay_has_passed() {
    let mut w = World::new();
    let tx = payment(0);
    let op = w.op(&tx);
    // Support alone: proposed, not signed.
    let sue = w.devices[2].assert(&op.hash().0);
    assert_eq!(w.sign(&tx, vec![sue]), Err(Denial::ApprovalsRequired));
    let decided = w.node.decide(WALLET, &op, &[], w.now()).wait().unwrap();
    assert_eq!(
        decided.evaluation.decision,
        Decision::Delayed {
            rule: "recovery".into(),
            until: NOW + DELAY
        }
    );
    // The proposal is in the store, signed by the policy key, with the
    // approval that made it.
    let stored = w
        .store
        .get(&proposal_key(WALLET, &op.hash()))
        .wait()
        .unwrap()
        .unwrap();
    let proposal = Proposal::from_json(&stored.value).unwrap();
    assert_eq!(proposal.proposed_at, NOW);
    assert_eq!(proposal.approvals.len(), 1);
    assert_eq!(proposal.approvals[0].0, "sue");
    assert!(proposal.is_signed_by(w.log.policy_key()));
    // One second short of the delay: still refused, asking again changes
    // nothing (the delay does not restart).
    w.advance(DELAY - 1);
    assert_eq!(w.sign(&tx, vec![]), Err(Denial::ApprovalsRequired));
    // At the delay: signed with no approval given now, and the audit
    // record names the rule's policy position.
    w.advance(1);
    let raw = w.sign(&tx, vec![]).unwrap();
    assert!(raw.starts_with("02"), "{raw}");
    let last = w.audit.records().pop().unwrap();
    assert_eq!(last.event().field("policy-log-index"), Some("3"));
    assert_eq!(last.event().field("verdict").map(str::len), Some(64));
}

#[test]
fn an_owner_vetoes_during_the_delay_and_the_operation_is_refused() {
    let mut w = World::new();
    let tx = payment(0);
    let op = w.op(&tx);
    let sue = w.devices[2].assert(&op.hash().0);
    assert_eq!(w.sign(&tx, vec![sue]), Err(Denial::ApprovalsRequired));
    w.advance(60);
    assert_eq!(w.veto(0, &op).unwrap(), "ann");
    w.advance(DELAY);
    w.assert_vetoed_by(&tx, &op, "ann");
    // The owners' own rule (no delay) still moves the funds: a veto stops
    // the delayed route, not the owners.
    let approvals = vec![
        w.devices[0].assert(&op.hash().0),
        w.devices[1].assert(&op.hash().0),
    ];
    assert!(w.sign(&tx, approvals).is_ok());
}

#[test]
fn a_veto_over_another_operation_or_from_no_approver_is_refused() {
    let mut w = World::new();
    let tx = payment(0);
    let op = w.op(&tx);
    let sue = w.devices[2].assert(&op.hash().0);
    assert_eq!(w.sign(&tx, vec![sue]), Err(Denial::ApprovalsRequired));
    // Over another operation's hash.
    let other = w.op(&payment(1));
    let wrong = w.veto_assertion(0, &other);
    assert!(matches!(
        w.node.veto(WALLET, op.hash(), &wrong, w.now()).wait(),
        Err(PolicyError::Approval { .. })
    ));
    // The approval of the operation itself is not a veto of it.
    let approval = w.devices[0].assert(&op.hash().0);
    assert!(matches!(
        w.node.veto(WALLET, op.hash(), &approval, w.now()).wait(),
        Err(PolicyError::Approval { .. })
    ));
    // A device nobody registered.
    let stranger = w.veto_assertion(3, &op);
    assert!(matches!(
        w.node.veto(WALLET, op.hash(), &stranger, w.now()).wait(),
        Err(PolicyError::Approval { .. })
    ));
    // A veto replayed after its counter was spent changes nothing, and
    // the first veto stands.
    let veto = w.veto_assertion(1, &op);
    assert_eq!(
        w.node
            .veto(WALLET, op.hash(), &veto, w.now())
            .wait()
            .unwrap(),
        "ben"
    );
    let again = w.veto_assertion(0, &op);
    assert_eq!(
        w.node
            .veto(WALLET, op.hash(), &again, w.now())
            .wait()
            .unwrap(),
        "ben"
    );
    // None of the refused vetoes was stored: ben's is the one.
    w.advance(DELAY);
    assert_eq!(w.sign(&tx, vec![]), Err(Denial::PolicyDenied));
    assert_eq!(OperationKind::Veto.as_str(), "veto");
}

#[test]
fn a_proposal_moved_back_in_time_or_a_forged_veto_in_the_store_is_refused() {
    let mut w = World::new();
    let tx = payment(0);
    let op = w.op(&tx);
    let sue = w.devices[2].assert(&op.hash().0);
    assert_eq!(w.sign(&tx, vec![sue]), Err(Denial::ApprovalsRequired));
    let key = proposal_key(WALLET, &op.hash());
    let stored = w.store.get(&key).wait().unwrap().unwrap();
    // Whoever writes the store moves the proposal a day back: the policy
    // key's signature no longer covers it, and the node refuses (fail
    // closed) instead of allowing early.
    let mut forged = Proposal::from_json(&stored.value).unwrap();
    forged.proposed_at -= 86_400;
    let swapped = w
        .store
        .compare_and_swap(&key, Some(stored.version), &forged.to_json())
        .wait()
        .unwrap();
    assert!(matches!(swapped, custody_core::CasOutcome::Swapped { .. }));
    assert!(matches!(
        w.node.decide(WALLET, &op, &[], w.now()).wait(),
        Err(PolicyError::LogBroken { .. })
    ));
    // Through the gate: a typed error, nothing signed.
    match w
        .signer
        .sign_transaction(&tx, &Authorization::none())
        .wait()
    {
        Err(custody_eth::Error::Core(e)) => {
            assert_eq!(
                custody_core::ErrorReport::from(e).kind(),
                "policy-log-broken"
            );
        }
        other => panic!("expected the broken-log error, got {other:?}"),
    }

    // A veto record whose assertion does not verify is refused too.
    let mut w = World::new();
    let sue = w.devices[2].assert(&op.hash().0);
    assert_eq!(w.sign(&tx, vec![sue]), Err(Denial::ApprovalsRequired));
    let bogus = json!({"approver": "ann", "assertion": "{}"}).to_string();
    let swapped = w
        .store
        .compare_and_swap(&veto_key(WALLET, &op.hash()), None, bogus.as_bytes())
        .wait()
        .unwrap();
    assert!(matches!(swapped, custody_core::CasOutcome::Swapped { .. }));
    w.advance(DELAY);
    assert!(matches!(
        w.node.decide(WALLET, &op, &[], w.now()).wait(),
        Err(PolicyError::LogBroken { .. })
    ));
}

#[test]
fn a_policy_change_restarts_the_delay() {
    let mut w = World::new();
    let tx = payment(0);
    let op = w.op(&tx);
    let sue = w.devices[2].assert(&op.hash().0);
    assert_eq!(w.sign(&tx, vec![sue]), Err(Denial::ApprovalsRequired));
    // The owners lengthen the delay (2 of 2).
    let change = Change::Policy(Box::new(policy(2 * DELAY)));
    let next = w
        .log
        .load(WALLET, None)
        .wait()
        .unwrap()
        .next_operation(&change);
    let approvals = vec![
        ("ann".to_owned(), w.devices[0].assert(&next.hash().0)),
        ("ben".to_owned(), w.devices[1].assert(&next.hash().0)),
    ];
    w.log
        .append(WALLET, change, EntryAuth::Approvals(approvals), NOW)
        .wait()
        .unwrap();
    // The old proposal does not count under the new policy: past the old
    // delay the operation needs proposing again.
    w.advance(DELAY);
    let decided = w.node.decide(WALLET, &op, &[], w.now()).wait().unwrap();
    assert_eq!(
        decided.evaluation.decision.as_str(),
        "approvals-required",
        "{:?}",
        decided.evaluation.decision
    );
    let sue = w.devices[2].assert(&op.hash().0);
    let decided = w.node.decide(WALLET, &op, &[sue], w.now()).wait().unwrap();
    assert_eq!(
        decided.evaluation.decision,
        Decision::Delayed {
            rule: "recovery".into(),
            until: NOW + DELAY + 2 * DELAY
        }
    );
}

/// Recovery in `RECOVERY_DELAY` by both support approvers, sue and sid.
const RECOVERY_DELAY: u64 = 600;

/// A recovered device vetoes a delayed operation as its approver once its
/// recovery's delay has run out, not before; the node's later decision
/// checks that stored veto again against the same settled log.
#[test]
fn a_recovered_device_vetoes_once_its_recovery_is_active() {
    let mut doc = policy(DELAY).to_json();
    doc["groups"]["support"]["members"] = json!(["sue", "sid"]);
    doc["recovery"] = json!({"group": "support", "threshold": 2, "delaySeconds": RECOVERY_DELAY});
    let policy = Policy::from_json(doc.to_string().as_bytes()).unwrap();
    let mut w = World::with_policy(policy, &[("ann", 0), ("ben", 1), ("sue", 2), ("sid", 4)]);
    // ann lost device 0: sue and sid vouch for device 5.
    let recovery = Change::Recovery {
        approver: "ann".into(),
        credential: w.devices[5].credential(),
        activates_at: NOW + RECOVERY_DELAY,
    };
    let op = w
        .log
        .load(WALLET, None)
        .wait()
        .unwrap()
        .next_operation(&recovery);
    let approvals = vec![
        ("sue".to_owned(), w.devices[2].assert(&op.hash().0)),
        ("sid".to_owned(), w.devices[4].assert(&op.hash().0)),
    ];
    w.log
        .append(WALLET, recovery, EntryAuth::Approvals(approvals), NOW)
        .wait()
        .unwrap();
    // sue proposes a payment on the delayed route.
    let tx = payment(0);
    let op = w.op(&tx);
    let sue = w.devices[2].assert(&op.hash().0);
    assert_eq!(w.sign(&tx, vec![sue]), Err(Denial::ApprovalsRequired));
    // Pending: the new device is nobody's yet.
    assert!(matches!(w.veto(5, &op), Err(PolicyError::Approval { .. })));
    // Active: it vetoes as ann.
    w.advance(RECOVERY_DELAY);
    assert_eq!(w.veto(5, &op).unwrap(), "ann");
    w.advance(DELAY);
    w.assert_vetoed_by(&tx, &op, "ann");
}
