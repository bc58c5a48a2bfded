//! The policy gate over a software vault, through the audit layer and the
//! Ethereum signer as a wallet team would stack them: approvals decide
//! in-line, verdicts travel between a policy node and a signing node, and
//! every route to a governed wallet's keys (raw digests, BIP32 paths,
//! exports) passes the gate.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use custody_core::{
    Audited, Authorization, DataKey, Denial, Digest32, Intent, IntentKind, KekId, KeyBackend,
    KeyKinds, KeyRef, KeySigner, LocalKek, MemoryAuditLog, MemoryStore, Pending, PinnedKey,
    SharedBackend, SignRequest, Signed, SigningBackend, StateStore, WalletScheme,
};
use custody_eth::{Address, EthSigner, Transaction, TxEip1559, U256};
use custody_policy::gate::{Clock, PolicyGate, PolicyNode};
use custody_policy::log::{Change, EntryAuth, PolicyLog};
use custody_policy::operation::Operation;
use custody_policy::policy::Policy;
use custody_policy::verdict::SignedVerdict;
use custody_policy::webauthn::RelyingParty;
use serde_json::json;

#[path = "support/authenticator.rs"]
mod authenticator;
use authenticator::*;

const WALLET: &str = "treasury";
const ALICE: &str = "0x1111111111111111111111111111111111111111";
const MIXER: &str = "0x722122df12d4e14e13ac3b6895a86e84145b6967";
const NOW: u64 = 1_800_000_000;
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

fn eth(n: u64) -> U256 {
    U256::from_u64(n)
        .checked_mul_u64(1_000_000_000_000_000_000)
        .unwrap()
}

fn payment(to: &str, value: U256, nonce: u64) -> Transaction {
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

fn policy(governance: u32) -> Policy {
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

struct World {
    store: Arc<MemoryStore>,
    audit: Arc<MemoryAuditLog>,
    vault: SharedBackend,
    log: PolicyLog,
    policy_key: KeySigner,
    node: PolicyNode,
    clock: Arc<AtomicU64>,
    devices: [Device; 3],
}

impl World {
    fn new() -> Self {
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
    fn append_signed(&mut self, change: Change) {
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

    fn clock(&self) -> Clock {
        let clock = self.clock.clone();
        Arc::new(move || clock.load(Ordering::SeqCst))
    }

    /// The stack a signing node runs: audit over the policy gate over the
    /// vault; with the node in-line or not.
    fn signer(&self, in_line: bool, key: KeyRef) -> EthSigner {
        let state: Arc<dyn StateStore> = self.store.clone();
        let mut gate = PolicyGate::new(self.vault.clone(), self.log.clone(), state, SCHEME)
            .with_clock(self.clock());
        if in_line {
            gate = gate.with_node(self.node.clone());
        }
        let audited: SharedBackend = Arc::new(Audited::new(Arc::new(gate), self.audit.clone()));
        EthSigner::new(KeySigner::pin(audited, key).wait().unwrap()).unwrap()
    }

    fn wallet_key(&self, index: u32) -> KeyRef {
        KeyRef::Wallet {
            name: WALLET.into(),
            index,
        }
    }

    fn approve(&mut self, who: &[usize], op: &Operation) -> Vec<String> {
        who.iter()
            .map(|&i| self.devices[i].assert(&op.hash().0))
            .collect()
    }
}

fn op_for(signer: &EthSigner, tx: &Transaction) -> Operation {
    Operation::Transaction {
        signer: *signer.public_key(),
        tx: tx.clone(),
    }
}

fn denial(result: Result<impl std::fmt::Debug, custody_eth::Error>) -> Denial {
    match result {
        Err(custody_eth::Error::Core(custody_core::Error::Denied(d))) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn approved_transactions_sign_and_the_audit_record_names_the_policy() {
    let mut w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    let tx = payment(ALICE, eth(2), 0);
    let approvals = w.approve(&[0, 2], &op_for(&signer, &tx));
    let auth = Authorization::none().with_approvals(approvals);
    let signed = signer.sign_transaction(&tx, &auth).wait().unwrap();
    assert_eq!(signed.recover_sender().unwrap(), signer.address());
    let records = w.audit.records();
    let last = records.last().unwrap();
    assert_eq!(last.event().field("policy-log-index"), Some("3"));
    assert_eq!(last.event().field("verdict").map(str::len), Some(64));
    assert_eq!(last.event().field("intent"), Some("transaction"));
}

#[test]
fn too_few_approvals_a_denied_destination_and_no_approval_are_refused() {
    let mut w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    // 2 ETH needs two owners.
    let tx = payment(ALICE, eth(2), 0);
    let one = w.approve(&[1], &op_for(&signer, &tx));
    let auth = Authorization::none().with_approvals(one);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::ApprovalsRequired
    );
    // The mixer is denied whoever approves.
    let tx = payment(MIXER, U256::from_u64(1), 0);
    let all = w.approve(&[0, 1, 2], &op_for(&signer, &tx));
    let auth = Authorization::none().with_approvals(all);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::PolicyDenied
    );
    // Nothing at all.
    assert_eq!(
        denial(
            signer
                .sign_transaction(
                    &payment(ALICE, U256::from_u64(1), 0),
                    &Authorization::none()
                )
                .wait()
        ),
        Denial::ApprovalsRequired
    );
    // Refusals are recorded as denials.
    let records = w.audit.records();
    assert!(
        records
            .iter()
            .all(|r| r.event().outcome() == custody_core::AuditOutcome::Denied)
    );
    assert_eq!(records.len(), 3);
}

/// A backend that fails every signature while `fail` is set (an HSM that
/// is down): what a policy gate above it must not spend approvals on.
#[derive(Debug)]
struct Flaky {
    inner: SharedBackend,
    fail: AtomicBool,
}

impl SigningBackend for Flaky {
    fn key_kinds(&self) -> KeyKinds {
        self.inner.signing().unwrap().key_kinds()
    }
    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, custody_core::Error>> {
        self.inner.signing().unwrap().pin(key)
    }
    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> Pending<'a, Result<Signed, custody_core::Error>> {
        if self.fail.load(Ordering::SeqCst) {
            return Pending::ready(Err(custody_core::Error::Unsupported("the HSM is down")));
        }
        self.inner.signing().unwrap().sign_digest(request)
    }
}

impl KeyBackend for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

/// A TOTP registry over the world's store, its clock at [`NOW`], with
/// the wallet enrolled; and a code for now.
fn totp(w: &World) -> (Arc<custody_totp::TotpRegistry>, String) {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("totp-kek").unwrap(),
        DataKey::new([9; 32]),
    ));
    let registry = Arc::new(
        custody_totp::TotpRegistry::new(
            kek,
            w.store.clone(),
            w.audit.clone(),
            custody_totp::TotpConfig::new(SCHEME),
        )
        .unwrap()
        .with_clock(Arc::new(custody_totp::ManualClock::new(NOW))),
    );
    let enrolment = registry
        .enrol(WALLET, custody_totp::EnrolMode::New)
        .wait()
        .unwrap();
    let code = enrolment
        .params()
        .code_at(enrolment.uri().expose_secret(), NOW)
        .unwrap()
        .expose_str()
        .to_owned();
    (registry, code)
}

#[test]
fn a_wrong_totp_code_spends_no_approval() {
    // Both stackings: the TOTP gate over the policy gate (as the CLI
    // builds it) and under it (where the policy decides first and the
    // code is checked below it, after the decision).
    for totp_outside in [true, false] {
        let mut w = World::new();
        let (registry, code) = totp(&w);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let state: Arc<dyn StateStore> = w.store.clone();
        let gate = |inner: SharedBackend| -> SharedBackend {
            Arc::new(
                PolicyGate::new(inner, w.log.clone(), state.clone(), SCHEME)
                    .with_clock(w.clock())
                    .with_node(w.node.clone()),
            )
        };
        let stack: SharedBackend = if totp_outside {
            Arc::new(custody_totp::TotpGate::new(gate(w.vault.clone()), registry))
        } else {
            gate(Arc::new(custody_totp::TotpGate::new(
                w.vault.clone(),
                registry,
            )))
        };
        let audited: SharedBackend = Arc::new(Audited::new(stack, w.audit.clone()));
        let signer =
            EthSigner::new(KeySigner::pin(audited, w.wallet_key(0)).wait().unwrap()).unwrap();
        // 2 ETH: two owners approve.
        let tx = payment(ALICE, eth(2), 0);
        let approvals = w.approve(&[0, 2], &op_for(&signer, &tx));
        let wrong_auth = Authorization::totp(wrong).with_approvals(approvals.clone());
        assert_eq!(
            denial(signer.sign_transaction(&tx, &wrong_auth).wait()),
            Denial::TotpInvalid,
            "totp outside: {totp_outside}"
        );
        // The same approvals, with the right code: they were not spent.
        let auth = Authorization::totp(code.clone()).with_approvals(approvals);
        let signed = signer.sign_transaction(&tx, &auth).wait().unwrap();
        assert_eq!(signed.recover_sender().unwrap(), signer.address());
        let last = w.audit.records().last().unwrap().clone();
        assert_eq!(last.event().field("policy-log-index"), Some("3"));
        assert!(last.event().field("totp-step").is_some());
    }
}

#[test]
fn a_backend_failure_spends_no_approval_no_limit_and_no_verdict() {
    let mut w = World::new();
    let flaky = Arc::new(Flaky {
        inner: w.vault.clone(),
        fail: AtomicBool::new(true),
    });
    let state: Arc<dyn StateStore> = w.store.clone();
    let gate = PolicyGate::new(flaky.clone(), w.log.clone(), state.clone(), SCHEME)
        .with_clock(w.clock())
        .with_node(w.node.clone());
    let audited: SharedBackend = Arc::new(Audited::new(Arc::new(gate), w.audit.clone()));
    let signer = EthSigner::new(KeySigner::pin(audited, w.wallet_key(0)).wait().unwrap()).unwrap();
    // 9 of the 10 ETH a day allows, refused by the backend twice.
    let tx = payment(ALICE, eth(9), 0);
    let approvals = w.approve(&[0, 1], &op_for(&signer, &tx));
    let auth = Authorization::none().with_approvals(approvals);
    for _ in 0..2 {
        match signer.sign_transaction(&tx, &auth).wait() {
            Err(custody_eth::Error::Core(custody_core::Error::Unsupported(m))) => {
                assert_eq!(m, "the HSM is down");
            }
            other => panic!("expected the backend's failure, got {other:?}"),
        }
    }
    // Nothing was spent: the same approvals sign once it is back, and the
    // 9 ETH count once (a second 9 ETH is over the limit).
    flaky.fail.store(false, Ordering::SeqCst);
    let signed = signer.sign_transaction(&tx, &auth).wait().unwrap();
    assert_eq!(signed.recover_sender().unwrap(), signer.address());
    let tx = payment(ALICE, eth(2), 1);
    let approvals = w.approve(&[0, 1], &op_for(&signer, &tx));
    assert_eq!(
        denial(
            signer
                .sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
                .wait()
        ),
        Denial::PolicyDenied
    );
    // A verdict refused by the backend is not spent either: it signs
    // once the backend is back, and only once.
    let tx = payment(ALICE, U256::from_u64(1), 2);
    let verdict = verdict_for(&mut w, &signer, &tx, &[0]);
    flaky.fail.store(true, Ordering::SeqCst);
    let split = PolicyGate::new(flaky.clone(), w.log.clone(), state, SCHEME).with_clock(w.clock());
    let audited: SharedBackend = Arc::new(Audited::new(Arc::new(split), w.audit.clone()));
    let signer = EthSigner::new(KeySigner::pin(audited, w.wallet_key(0)).wait().unwrap()).unwrap();
    let auth = Authorization::none().with_verdict(verdict);
    assert!(signer.sign_transaction(&tx, &auth).wait().is_err());
    flaky.fail.store(false, Ordering::SeqCst);
    signer.sign_transaction(&tx, &auth).wait().unwrap();
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::VerdictInvalid
    );
}

#[test]
fn approvals_over_another_transaction_or_replayed_are_refused() {
    let mut w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    let asked = payment(ALICE, U256::from_u64(5), 0);
    let sent = payment(ALICE, U256::from_u64(5_000), 0);
    let approvals = w.approve(&[0], &op_for(&signer, &asked));
    let auth = Authorization::none().with_approvals(approvals.clone());
    assert_eq!(
        denial(signer.sign_transaction(&sent, &auth).wait()),
        Denial::ApprovalsRequired
    );
    // The right transaction signs once; the same assertion again is
    // refused by its counter.
    signer.sign_transaction(&asked, &auth).wait().unwrap();
    assert_eq!(
        denial(signer.sign_transaction(&asked, &auth).wait()),
        Denial::ApprovalsRequired
    );
}

#[test]
fn the_daily_limit_counts_what_was_signed() {
    let mut w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    for nonce in 0..2 {
        let tx = payment(ALICE, eth(4), nonce);
        let approvals = w.approve(&[0, 1], &op_for(&signer, &tx));
        signer
            .sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
            .wait()
            .unwrap();
    }
    // 8 ETH out today: 3 more would make 11 of 10.
    let tx = payment(ALICE, eth(3), 2);
    let approvals = w.approve(&[0, 1, 2], &op_for(&signer, &tx));
    assert_eq!(
        denial(
            signer
                .sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
                .wait()
        ),
        Denial::PolicyDenied
    );
    // A day later the window has moved.
    w.clock.fetch_add(86_400, Ordering::SeqCst);
    let approvals = w.approve(&[0, 1], &op_for(&signer, &tx));
    let node_now = w.clock.load(Ordering::SeqCst);
    let decided = w
        .node
        .decide(WALLET, &op_for(&signer, &tx), &approvals, node_now)
        .wait()
        .unwrap();
    assert!(decided.evaluation.decision.is_allow());
}

/// A verdict from the node, as a policy service would return it.
fn verdict_for(w: &mut World, signer: &EthSigner, tx: &Transaction, who: &[usize]) -> Vec<u8> {
    let op = op_for(signer, tx);
    let approvals = w.approve(who, &op);
    let now = w.clock.load(Ordering::SeqCst);
    let decided = w.node.decide(WALLET, &op, &approvals, now).wait().unwrap();
    decided.signed.unwrap().to_bytes().unwrap()
}

#[test]
fn a_verdict_travels_to_a_signing_node_and_is_spent_once() {
    let mut w = World::new();
    let signer = w.signer(false, w.wallet_key(0));
    let tx = payment(ALICE, eth(1), 0);
    let verdict = verdict_for(&mut w, &signer, &tx, &[2]);
    let auth = Authorization::none().with_verdict(verdict.clone());
    signer.sign_transaction(&tx, &auth).wait().unwrap();
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::VerdictInvalid
    );
    // Without a node in-line, approvals alone are not enough.
    let tx = payment(ALICE, eth(1), 1);
    let approvals = w.approve(&[0], &op_for(&signer, &tx));
    assert_eq!(
        denial(
            signer
                .sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
                .wait()
        ),
        Denial::ApprovalsRequired
    );
}

#[test]
fn a_verdict_for_anything_else_is_refused() {
    let mut w = World::new();
    let signer = w.signer(false, w.wallet_key(0));
    let tx = payment(ALICE, eth(1), 0);
    let verdict = verdict_for(&mut w, &signer, &tx, &[0]);
    // Another transaction.
    let other = payment(ALICE, eth(1), 1);
    let auth = Authorization::none().with_verdict(verdict.clone());
    assert_eq!(
        denial(signer.sign_transaction(&other, &auth).wait()),
        Denial::VerdictInvalid
    );
    // Another key of the wallet.
    let sibling = w.signer(false, w.wallet_key(1));
    assert_eq!(
        denial(sibling.sign_transaction(&tx, &auth).wait()),
        Denial::VerdictInvalid
    );
    // Any byte changed (the signature no longer covers it, or it no longer
    // parses).
    for i in [20, verdict.len() / 2, verdict.len() - 2] {
        let mut tampered = verdict.clone();
        tampered[i] ^= 1;
        let auth = Authorization::none().with_verdict(tampered);
        assert_eq!(
            denial(signer.sign_transaction(&tx, &auth).wait()),
            Denial::VerdictInvalid,
            "byte {i}"
        );
    }
    // Signed by another key.
    let mut parsed = SignedVerdict::from_bytes(&verdict).unwrap();
    let rogue = KeySigner::pin(
        vault(0x44),
        KeyRef::Wallet {
            name: "rogue".into(),
            index: 0,
        },
    )
    .wait()
    .unwrap();
    parsed.signature = rogue
        .sign(
            parsed.verdict.hash().unwrap(),
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait()
        .unwrap();
    let auth = Authorization::none().with_verdict(parsed.to_bytes().unwrap());
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::VerdictInvalid
    );
    // Expired.
    w.clock.fetch_add(301, Ordering::SeqCst);
    let auth = Authorization::none().with_verdict(verdict);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::VerdictInvalid
    );
}

#[test]
fn a_policy_change_voids_earlier_verdicts() {
    let mut w = World::new();
    let signer = w.signer(false, w.wallet_key(0));
    let tx = payment(ALICE, eth(1), 0);
    let verdict = verdict_for(&mut w, &signer, &tx, &[0]);
    // The owners change the policy (2 of 3).
    let change = Change::Policy(Box::new(policy(3)));
    let op = w
        .log
        .load(WALLET, None)
        .wait()
        .unwrap()
        .next_operation(&change);
    let approvals = vec![
        ("ann".to_owned(), w.devices[0].assert(&op.hash().0)),
        ("ben".to_owned(), w.devices[1].assert(&op.hash().0)),
    ];
    w.log
        .append(WALLET, change, EntryAuth::Approvals(approvals), NOW)
        .wait()
        .unwrap();
    let auth = Authorization::none().with_verdict(verdict);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::VerdictInvalid
    );
}

#[test]
fn a_governed_key_signs_no_jwt_its_policy_has_no_rule_for() {
    let w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    let key_signer = signer.key_signer();
    // ES256K over a JWT's signing input: the policy gate sees intent `jwt`,
    // which no policy rule covers, and refuses (as for any intent it
    // cannot judge), approvals or not.
    let result = key_signer
        .sign_with(
            custody_core::SignatureScheme::EcdsaSecp256k1,
            &[0x11; 32],
            Intent::typed(IntentKind::Jwt, &"claims"),
            &Authorization::none(),
        )
        .wait();
    assert!(
        matches!(
            result,
            Err(custody_core::Error::Denied(Denial::PolicyDenied))
        ),
        "{result:?}"
    );
    let records = w.audit.records();
    let last = records.last().unwrap();
    assert_eq!(last.event().field("intent"), Some("jwt"));
    assert_eq!(last.event().outcome(), custody_core::AuditOutcome::Denied);
}

#[test]
fn paths_raw_digests_and_exports_are_no_route_around_the_gate() {
    let w = World::new();
    // The same key by BIP32 path.
    let path = SCHEME.key_path(WALLET, 0).unwrap();
    let by_path = w.signer(true, KeyRef::Path(path));
    let by_name = w.signer(true, w.wallet_key(0));
    assert_eq!(by_path.address(), by_name.address());
    let tx = payment(ALICE, U256::from_u64(1), 0);
    assert_eq!(
        denial(by_path.sign_transaction(&tx, &Authorization::none()).wait()),
        Denial::ApprovalsRequired
    );
    // A raw digest is off unless the policy opts in.
    assert_eq!(
        denial(
            by_name
                .sign_hash_raw(Digest32([1; 32]), &Authorization::none())
                .wait()
        ),
        Denial::PolicyDenied
    );
    // Exports: the wallet's keys and their ancestors never leave.
    let state: Arc<dyn StateStore> = w.store.clone();
    let gate: SharedBackend = Arc::new(PolicyGate::new(
        w.vault.clone(),
        w.log.clone(),
        state,
        SCHEME,
    ));
    let exporting = gate.exporting().unwrap();
    let signing = gate.signing().unwrap();
    for key in [
        w.wallet_key(0),
        KeyRef::Path(custody_core::DerivationPath::master()),
        KeyRef::Path(SCHEME.wallet_path(WALLET).unwrap()),
    ] {
        let pinned = signing.pin(&key).wait().unwrap();
        match exporting
            .export_private_key(&pinned, &Authorization::none())
            .wait()
        {
            Err(custody_core::Error::Denied(Denial::Forbidden)) => {}
            other => panic!("{key:?}: {other:?}"),
        }
    }
    // An ungoverned wallet is not the gate's business.
    let other = signing
        .pin(&KeyRef::Wallet {
            name: "petty-cash".into(),
            index: 0,
        })
        .wait()
        .unwrap();
    assert!(
        exporting
            .export_private_key(&other, &Authorization::none())
            .wait()
            .is_ok()
    );
    let petty = w.signer(
        false,
        KeyRef::Wallet {
            name: "petty-cash".into(),
            index: 0,
        },
    );
    petty
        .sign_transaction(&tx, &Authorization::none())
        .wait()
        .unwrap();
}

/// The state-store key a used verdict is kept under.
fn verdict_key(verdict_hex: &str) -> String {
    format!(
        "policy/{}/verdict/{verdict_hex}",
        hex::encode(WALLET.as_bytes())
    )
}

/// The wallet's spend history as the state store keeps it: (asset,
/// amount) of each bucket.
fn spends(w: &World) -> Vec<(String, String)> {
    let key = format!("policy/{}/spends", hex::encode(WALLET.as_bytes()));
    let Some(record) = w.store.get(&key).wait().unwrap() else {
        return Vec::new();
    };
    let items: Vec<serde_json::Value> = serde_json::from_slice(&record.value).unwrap();
    items
        .iter()
        .map(|i| {
            (
                i["asset"].as_str().unwrap().to_owned(),
                i["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_spend_is_recorded_with_its_signature() {
    let mut w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    let tx = payment(ALICE, eth(2), 0);
    let op = op_for(&signer, &tx);
    let approvals = w.approve(&[0, 2], &op);
    let auth = Authorization::none().with_approvals(approvals.clone());
    // What the node decides for it (reading only: nothing spent).
    let (decided, _) = w
        .node
        .decide_pending(WALLET, &op, &approvals, NOW)
        .wait()
        .unwrap();
    let expected = hex::encode(decided.signed.unwrap().verdict.hash().unwrap().0);
    assert!(
        w.store
            .get(&verdict_key(&expected))
            .wait()
            .unwrap()
            .is_none()
    );
    assert!(spends(&w).is_empty());
    signer.sign_transaction(&tx, &auth).wait().unwrap();
    // The signature's record names the verdict that was used, and the
    // verdict's use, the transfer and the counters were committed with it.
    let last = w.audit.records().last().unwrap().clone();
    assert_eq!(last.event().outcome(), custody_core::AuditOutcome::Success);
    assert_eq!(last.event().field("verdict"), Some(expected.as_str()));
    let used = w
        .store
        .get(&verdict_key(&expected))
        .wait()
        .unwrap()
        .unwrap();
    assert_eq!(*used.value, NOW.to_be_bytes());
    assert_eq!(spends(&w), [("native".to_owned(), eth(2).to_string())]);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::ApprovalsRequired,
        "the counters moved"
    );
}

/// A backend under the gate that holds every signature until `parties`
/// requests are signing at once: each has passed the gate's checks, so
/// their spends meet at the commit.
#[derive(Debug)]
struct Gathering {
    inner: SharedBackend,
    barrier: std::sync::Barrier,
}

impl SigningBackend for Gathering {
    fn key_kinds(&self) -> KeyKinds {
        self.inner.signing().unwrap().key_kinds()
    }
    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, custody_core::Error>> {
        self.inner.signing().unwrap().pin(key)
    }
    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> Pending<'a, Result<Signed, custody_core::Error>> {
        self.barrier.wait();
        self.inner.signing().unwrap().sign_digest(request)
    }
}

impl KeyBackend for Gathering {
    fn name(&self) -> &str {
        "gathering"
    }
    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

/// Signs `tx` with `auth` from two threads at once through
/// `Audited(PolicyGate(Gathering(vault)))`: the outcomes.
fn twice_at_once(
    w: &World,
    in_line: bool,
    tx: &Transaction,
    auth: &Authorization,
) -> Vec<Result<(), Denial>> {
    let state: Arc<dyn StateStore> = w.store.clone();
    let gathering = Arc::new(Gathering {
        inner: w.vault.clone(),
        barrier: std::sync::Barrier::new(2),
    });
    let mut gate = PolicyGate::new(gathering, w.log.clone(), state, SCHEME).with_clock(w.clock());
    if in_line {
        gate = gate.with_node(w.node.clone());
    }
    let audited: SharedBackend = Arc::new(Audited::new(Arc::new(gate), w.audit.clone()));
    let signer = EthSigner::new(KeySigner::pin(audited, w.wallet_key(0)).wait().unwrap()).unwrap();
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| match signer.sign_transaction(tx, auth).wait() {
                    Ok(signed) => {
                        assert_eq!(signed.recover_sender().unwrap(), signer.address());
                        Ok(())
                    }
                    other => Err(denial(other)),
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

#[test]
fn a_concurrent_second_use_of_one_verdict_is_refused() {
    // A verdict from a policy node, presented twice at once.
    let mut w = World::new();
    let signer = w.signer(false, w.wallet_key(0));
    let tx = payment(ALICE, eth(1), 0);
    let verdict = verdict_for(&mut w, &signer, &tx, &[0]);
    let hash = hex::encode(
        SignedVerdict::from_bytes(&verdict)
            .unwrap()
            .verdict
            .hash()
            .unwrap()
            .0,
    );
    let before = w.audit.records().len();
    let mut outcomes = twice_at_once(&w, false, &tx, &Authorization::none().with_verdict(verdict));
    outcomes.sort_by_key(Result::is_err);
    assert_eq!(outcomes, [Ok(()), Err(Denial::VerdictInvalid)]);
    let used = w.store.get(&verdict_key(&hash)).wait().unwrap().unwrap();
    assert_eq!(used.version, 1);
    // One record of each: the signature naming the verdict, the refusal
    // with its kind.
    let records = w.audit.records();
    let mut fields: Vec<_> = records[before..]
        .iter()
        .map(|r| {
            (
                r.event().outcome(),
                r.event().field("verdict").map(str::to_owned),
                r.event().field("detail").map(str::to_owned),
            )
        })
        .collect();
    fields.sort_by_key(|f| f.0 != custody_core::AuditOutcome::Success);
    assert_eq!(
        fields,
        [
            (custody_core::AuditOutcome::Success, Some(hash), None),
            (
                custody_core::AuditOutcome::Denied,
                None,
                Some("verdict-invalid".to_owned())
            ),
        ]
    );

    // In-line: the same approvals twice at once make the same verdict;
    // one signs, the other is refused and spends nothing: its 6 ETH do
    // not count against the 10 a day (4 more still sign).
    let mut w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    let tx = payment(ALICE, eth(6), 0);
    let approvals = w.approve(&[0, 1], &op_for(&signer, &tx));
    let mut outcomes = twice_at_once(
        &w,
        true,
        &tx,
        &Authorization::none().with_approvals(approvals),
    );
    outcomes.sort_by_key(Result::is_err);
    assert_eq!(outcomes, [Ok(()), Err(Denial::VerdictInvalid)]);
    assert_eq!(spends(&w), [("native".to_owned(), eth(6).to_string())]);
    let tx = payment(ALICE, eth(4), 1);
    let approvals = w.approve(&[0, 1], &op_for(&signer, &tx));
    signer
        .sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
        .wait()
        .unwrap();
    assert_eq!(spends(&w), [("native".to_owned(), eth(10).to_string())]);
}

/// Signs 8 of the 10 ETH a day allows (the second 4 by BIP32 path),
/// zeroes the spend history in the state store as anyone who can write
/// it could, and checks the next 3 ETH are still refused: the node counts
/// from `sink`, the signatures' audit log.
fn state_edited_limit_still_enforced_with(sink: Arc<dyn custody_core::AuditSink>) {
    let mut w = World::new();
    let node = w.node.clone().with_records(sink.clone());
    let stack = |key: KeyRef| {
        let state: Arc<dyn StateStore> = w.store.clone();
        let gate = PolicyGate::new(w.vault.clone(), w.log.clone(), state, SCHEME)
            .with_clock(w.clock())
            .with_node(node.clone());
        let audited: SharedBackend = Arc::new(Audited::new(Arc::new(gate), sink.clone()));
        EthSigner::new(KeySigner::pin(audited, key).wait().unwrap()).unwrap()
    };
    let signer = stack(w.wallet_key(0));
    let by_path = stack(KeyRef::Path(SCHEME.key_path(WALLET, 0).unwrap()));
    for (nonce, who) in [(0, &signer), (1, &by_path)] {
        let tx = payment(ALICE, eth(4), nonce);
        let approvals = w.approve(&[0, 1], &op_for(&signer, &tx));
        who.sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
            .wait()
            .unwrap();
    }
    let key = format!("policy/{}/spends", hex::encode(WALLET.as_bytes()));
    let cached = w.store.get(&key).wait().unwrap().unwrap();
    assert!(matches!(
        w.store
            .compare_and_swap(&key, Some(cached.version), b"[]")
            .wait()
            .unwrap(),
        custody_core::CasOutcome::Swapped { .. }
    ));
    let tx = payment(ALICE, eth(3), 2);
    let op = op_for(&signer, &tx);
    // A node that reads the state store only is fooled by the edit.
    let approvals = w.approve(&[0, 1], &op);
    let (fooled, _) = w
        .node
        .decide_pending(WALLET, &op, &approvals, NOW)
        .wait()
        .unwrap();
    assert!(fooled.evaluation.decision.is_allow());
    // The gate's node counts the records: 8 + 3 > 10.
    assert_eq!(
        denial(
            signer
                .sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
                .wait()
        ),
        Denial::PolicyDenied
    );
    // A day later the records are out of the window.
    w.clock.fetch_add(86_400, Ordering::SeqCst);
    let approvals = w.approve(&[0, 1], &op);
    signer
        .sign_transaction(&tx, &Authorization::none().with_approvals(approvals))
        .wait()
        .unwrap();
}

#[test]
fn state_edited_limit_still_enforced() {
    // The audit log in memory, and in a file (read back through its
    // chain), both keeping time by the test's clock.
    state_edited_limit_still_enforced_with(Arc::new(MemoryAuditLog::with_clock(|| NOW * 1000)));
    let dir = tempfile::tempdir().unwrap();
    let file =
        custody_core::AuditLog::open_with_clock(dir.path().join("audit.jsonl"), || NOW * 1000)
            .unwrap();
    state_edited_limit_still_enforced_with(Arc::new(file));
}

/// Writes the `verdict` and `policy_log_entry` fuzz seeds from a real
/// node and log (run by hand: `cargo test -p custody-policy --test gate --
/// --ignored write_fuzz_seeds`).
#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn write_fuzz_seeds() {
    let mut w = World::new();
    let signer = w.signer(false, w.wallet_key(0));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds");
    for (i, value) in [eth(1), U256::from_u64(7)].into_iter().enumerate() {
        let tx = payment(ALICE, value, 0);
        let bytes = verdict_for(&mut w, &signer, &tx, &[0, 1]);
        std::fs::write(format!("{dir}/verdict/allow_{i}.bin"), &bytes).unwrap();
        let mut truncated = bytes.clone();
        truncated.truncate(bytes.len() - 1);
        std::fs::write(format!("{dir}/verdict/truncated_{i}.bin"), &truncated).unwrap();
    }
    for (i, entry) in w.log.entries(WALLET).wait().unwrap().iter().enumerate() {
        let mut stored = entry.to_json();
        // Every seed at index 1, as the fuzz body reads it.
        stored["index"] = json!(1);
        std::fs::write(
            format!("{dir}/policy_log_entry/entry_{i}.json"),
            serde_json::to_vec(&stored).unwrap(),
        )
        .unwrap();
    }
}
