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
use std::sync::atomic::{AtomicBool, Ordering};

use custody_core::{
    Authorization, DataKey, Denial, Digest32, Intent, IntentKind, KekId, KeyBackend, KeyKinds,
    KeyRef, KeySigner, LocalKek, MemoryAuditLog, Pending, PinnedKey, SharedBackend, SignRequest,
    Signed, SigningBackend, StateStore,
};
use custody_eth::{Transaction, U256};
use custody_policy::log::{Change, EntryAuth};
use custody_policy::verdict::SignedVerdict;
use serde_json::json;

#[path = "support/authenticator.rs"]
mod authenticator;
#[path = "support/gate_world.rs"]
mod gate_world;
use gate_world::*;

#[test]
fn approved_transactions_sign_and_the_audit_record_names_the_policy() {
    let mut w = World::new();
    let signer = w.signer(true, w.wallet_key(0));
    let tx = payment(ALICE, eth(2), 0);
    let auth = w.approved(&[0, 2], &signer, &tx);
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
    let auth = w.approved(&[1], &signer, &tx);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::ApprovalsRequired
    );
    // The mixer is denied whoever approves.
    let tx = payment(MIXER, U256::from_u64(1), 0);
    let auth = w.approved(&[0, 1, 2], &signer, &tx);
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

/// What a backend under the gate does before each signature: nothing
/// (`Ok`), or a failure of its own.
type Before = dyn Fn() -> Result<(), custody_core::Error> + Send + Sync;

/// A backend under the gate that runs `before` ahead of every signature
/// of `inner` (which keys it pins and signs with): an HSM that is down,
/// or one that holds requests until several meet.
struct Interposed {
    name: &'static str,
    inner: SharedBackend,
    before: Box<Before>,
}

impl Interposed {
    fn over(
        name: &'static str,
        inner: SharedBackend,
        before: impl Fn() -> Result<(), custody_core::Error> + Send + Sync + 'static,
    ) -> SharedBackend {
        Arc::new(Self {
            name,
            inner,
            before: Box::new(before),
        })
    }
}

impl std::fmt::Debug for Interposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interposed")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SigningBackend for Interposed {
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
        if let Err(e) = (self.before)() {
            return Pending::ready(Err(e));
        }
        self.inner.signing().unwrap().sign_digest(request)
    }
}

impl KeyBackend for Interposed {
    fn name(&self) -> &str {
        self.name
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
        let gate = |inner: SharedBackend| w.gate(inner, Some(&w.node));
        let stack: SharedBackend = if totp_outside {
            Arc::new(custody_totp::TotpGate::new(gate(w.vault.clone()), registry))
        } else {
            gate(Arc::new(custody_totp::TotpGate::new(
                w.vault.clone(),
                registry,
            )))
        };
        let signer = audited_signer(stack, w.audit.clone(), w.wallet_key(0));
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
    // A backend that fails every signature while `down` is set (an HSM
    // that is down): what a policy gate above it must not spend approvals
    // on.
    let down = Arc::new(AtomicBool::new(true));
    let flaky = Interposed::over("flaky", w.vault.clone(), {
        let down = down.clone();
        move || {
            if down.load(Ordering::SeqCst) {
                Err(custody_core::Error::Unsupported("the HSM is down"))
            } else {
                Ok(())
            }
        }
    });
    let gate = w.gate(flaky.clone(), Some(&w.node));
    let signer = audited_signer(gate, w.audit.clone(), w.wallet_key(0));
    // 9 of the 10 ETH a day allows, refused by the backend twice.
    let tx = payment(ALICE, eth(9), 0);
    let auth = w.approved(&[0, 1], &signer, &tx);
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
    down.store(false, Ordering::SeqCst);
    let signed = signer.sign_transaction(&tx, &auth).wait().unwrap();
    assert_eq!(signed.recover_sender().unwrap(), signer.address());
    let tx = payment(ALICE, eth(2), 1);
    let auth = w.approved(&[0, 1], &signer, &tx);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
        Denial::PolicyDenied
    );
    // A verdict refused by the backend is not spent either: it signs
    // once the backend is back, and only once.
    let tx = payment(ALICE, U256::from_u64(1), 2);
    let verdict = verdict_for(&mut w, &signer, &tx, &[0]);
    down.store(true, Ordering::SeqCst);
    let split = w.gate(flaky.clone(), None);
    let signer = audited_signer(split, w.audit.clone(), w.wallet_key(0));
    let auth = Authorization::none().with_verdict(verdict);
    assert!(signer.sign_transaction(&tx, &auth).wait().is_err());
    down.store(false, Ordering::SeqCst);
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
        let auth = w.approved(&[0, 1], &signer, &tx);
        signer.sign_transaction(&tx, &auth).wait().unwrap();
    }
    // 8 ETH out today: 3 more would make 11 of 10.
    let tx = payment(ALICE, eth(3), 2);
    let auth = w.approved(&[0, 1, 2], &signer, &tx);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
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
    let auth = w.approved(&[0], &signer, &tx);
    assert_eq!(
        denial(signer.sign_transaction(&tx, &auth).wait()),
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
    let gate = w.gate(w.vault.clone(), None);
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

/// Signs `tx` with `auth` from two threads at once through
/// `Audited(PolicyGate(gathering(vault)))`, where the gathering backend
/// holds every signature until both requests are signing at once (each
/// has passed the gate's checks, so their spends meet at the commit): the
/// outcomes.
fn twice_at_once(
    w: &World,
    in_line: bool,
    tx: &Transaction,
    auth: &Authorization,
) -> Vec<Result<(), Denial>> {
    let barrier = std::sync::Barrier::new(2);
    let gathering = Interposed::over("gathering", w.vault.clone(), move || {
        barrier.wait();
        Ok(())
    });
    let gate = w.gate(gathering, in_line.then_some(&w.node));
    let signer = audited_signer(gate, w.audit.clone(), w.wallet_key(0));
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
    let auth = w.approved(&[0, 1], &signer, &tx);
    let mut outcomes = twice_at_once(&w, true, &tx, &auth);
    outcomes.sort_by_key(Result::is_err);
    assert_eq!(outcomes, [Ok(()), Err(Denial::VerdictInvalid)]);
    assert_eq!(spends(&w), [("native".to_owned(), eth(6).to_string())]);
    let tx = payment(ALICE, eth(4), 1);
    let auth = w.approved(&[0, 1], &signer, &tx);
    signer.sign_transaction(&tx, &auth).wait().unwrap();
    assert_eq!(spends(&w), [("native".to_owned(), eth(10).to_string())]);
}

/// Signs 8 of the 10 ETH a day allows (the second 4 by BIP32 path),
/// zeroes the spend history in the state store as anyone who can write
/// it could, and checks the next 3 ETH are still refused: the node counts
/// from `sink`, the signatures' audit log.
fn state_edited_limit_still_enforced_with(sink: Arc<dyn custody_core::AuditSink>) {
    let mut w = World::new();
    let node = w.node.clone().with_records(sink.clone());
    let stack =
        |key: KeyRef| audited_signer(w.gate(w.vault.clone(), Some(&node)), sink.clone(), key);
    let signer = stack(w.wallet_key(0));
    let by_path = stack(KeyRef::Path(SCHEME.key_path(WALLET, 0).unwrap()));
    for (nonce, who) in [(0, &signer), (1, &by_path)] {
        let tx = payment(ALICE, eth(4), nonce);
        let auth = w.approved(&[0, 1], &signer, &tx);
        who.sign_transaction(&tx, &auth).wait().unwrap();
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
