//! Account recovery as policy-log entries (issue #17, item 5): a new
//! device for an approver who lost theirs, signed by two distinct support
//! approvers, usable only after the policy's delay, vetoable until then by
//! any existing device; every step an entry the log's reader checks on
//! replay. Approvers' devices are the software WebAuthn authenticator of
//! tests/support.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::sync::Arc;

use custody_core::{CasOutcome, MemoryStore, StateStore};
use custody_policy::PolicyError;
use custody_policy::log::{
    Change, Checkpoint, EntryAuth, LogState, PolicyLog, Recovery, RecoveryStatus,
};
use custody_policy::policy::Policy;
use custody_policy::webauthn::RelyingParty;
use serde_json::{Value, json};

#[path = "support/authenticator.rs"]
mod authenticator;
#[path = "support/policy_key.rs"]
mod policy_key;
use authenticator::{Device, ORIGIN, RP_ID};
use policy_key::{PolicyKey, memory_log};

const WALLET: &str = "treasury";
const DELAY: u64 = 86_400;
const T0: u64 = 1_800_000_000;

fn policy_doc(recovery: Option<Value>) -> Policy {
    let mut doc = json!({
        "schema": "custody-policy/v1",
        "wallet": WALLET,
        "groups": {
            "owners": {"role": "owner", "members": ["ann", "ben"]},
            "support": {"role": "support", "members": ["sam", "sue", "sid"]}
        },
        "governance": {"group": "owners", "threshold": 2},
        "rules": [{"id": "any", "effect": "allow", "require": [{"group": "owners", "threshold": 1}]}]
    });
    if let Some(recovery) = recovery {
        doc["recovery"] = recovery;
    }
    Policy::from_json(doc.to_string().as_bytes()).unwrap()
}

/// Owners ann and ben, support staff sam, sue and sid (a device each), a
/// policy with recovery by 2 support approvers after a day; ann has lost
/// her device and `new` is her new one.
struct World {
    store: Arc<MemoryStore>,
    log: PolicyLog,
    key: PolicyKey,
    now: u64,
    ann: Device,
    ben: Device,
    sam: Device,
    sue: Device,
    sid: Device,
    new: Device,
}

impl World {
    fn new() -> Self {
        Self::with_recovery(Some(
            json!({"group": "support", "threshold": 2, "delaySeconds": DELAY}),
        ))
    }

    fn with_recovery(recovery: Option<Value>) -> Self {
        let key = PolicyKey::new(9);
        let (store, log) = memory_log(&key);
        let mut world = Self {
            store,
            log,
            key,
            now: T0,
            ann: Device::p256(1),
            ben: Device::ed25519(2),
            sam: Device::p256(4),
            sue: Device::p256(5),
            sid: Device::ed25519(6),
            new: Device::p256(7),
        };
        let devices = [
            ("ann", world.ann.credential()),
            ("ben", world.ben.credential()),
            ("sam", world.sam.credential()),
            ("sue", world.sue.credential()),
            ("sid", world.sid.credential()),
        ];
        for (who, credential) in devices {
            let change = Change::Device {
                approver: who.to_owned(),
                credential,
            };
            let auth = world.signed(&change);
            world.append(change, auth).unwrap();
        }
        let change = Change::Policy(Box::new(policy_doc(recovery)));
        let auth = world.signed(&change);
        world.append(change, auth).unwrap();
        world
    }

    /// A fresh reader of the same store (no cached replay).
    fn reader(&self) -> PolicyLog {
        PolicyLog::new(
            Arc::clone(&self.store) as Arc<dyn StateStore>,
            RelyingParty::new(RP_ID, [ORIGIN]).unwrap(),
            self.key.public(),
        )
    }

    fn state(&self) -> LogState {
        self.reader().load(WALLET, None).wait().unwrap()
    }

    fn signed(&self, change: &Change) -> EntryAuth {
        let op = self.state().next_operation(change);
        EntryAuth::PolicyKey(self.key.sign(&op.hash().0))
    }

    /// The operation hash `change` as the next entry is approved over.
    fn op(&self, change: &Change) -> [u8; 32] {
        self.state().next_operation(change).hash().0
    }

    /// Appends at the next second (the clock moves only when it appends).
    fn append(&mut self, change: Change, auth: EntryAuth) -> Result<Checkpoint, PolicyError> {
        let at = self.now + 1;
        let appended = self.log.append(WALLET, change, auth, at).wait();
        if appended.is_ok() {
            self.now = at;
        }
        appended
    }

    /// Ann's recovery with her new device, activating `delay` after the
    /// entry's time.
    fn recovery(&self, delay: u64) -> Change {
        Change::Recovery {
            approver: "ann".into(),
            credential: self.new.credential(),
            activates_at: self.now + 1 + delay,
        }
    }

    /// Ann's recovery approved by sam and sue, appended; returns its id
    /// and activation time.
    fn recover(&mut self) -> ([u8; 32], u64) {
        let change = self.recovery(DELAY);
        let Change::Recovery { activates_at, .. } = change else {
            unreachable!()
        };
        let op = self.op(&change);
        let auth = by(&[("sam", self.sam.assert(&op)), ("sue", self.sue.assert(&op))]);
        let at = self.append(change, auth).unwrap();
        (at.hash, activates_at)
    }

    /// Whether an assertion of ann's new device counts as ann's at `now`.
    fn new_device_counts_at(&mut self, now: u64) -> bool {
        let mut state = self.state();
        state.settle(now);
        let challenge = custody_policy::operation::OperationHash([7; 32]);
        let assertion = self.new.assert(&challenge.0);
        state
            .verify_approvals(
                self.log.relying_party(),
                &challenge,
                &[("ann".into(), assertion)],
                true,
            )
            .is_ok()
    }
}

/// Approvals: (approver id, assertion) pairs.
fn by(approvals: &[(&str, String)]) -> EntryAuth {
    EntryAuth::Approvals(
        approvals
            .iter()
            .map(|(who, assertion)| ((*who).to_owned(), assertion.clone()))
            .collect(),
    )
}

fn broken(result: Result<impl std::fmt::Debug, PolicyError>) -> (u64, &'static str) {
    match result {
        Err(PolicyError::LogBroken { index, reason }) => (index, reason),
        other => panic!("expected a broken log, got {other:?}"),
    }
}

/// Writes `value` under `key` as someone with write access to the store.
fn put(store: &MemoryStore, key: &str, version: Option<u64>, value: &Value) {
    let bytes = serde_json::to_vec(value).unwrap();
    let outcome = store.compare_and_swap(key, version, &bytes).wait().unwrap();
    assert!(matches!(outcome, CasOutcome::Swapped { .. }));
}

fn only_recovery(state: &LogState) -> Recovery {
    match state.recoveries() {
        [one] => one.clone(),
        other => panic!("expected one recovery, got {other:?}"),
    }
}

#[test]
fn recovery_needs_two_distinct_support_approvers() {
    let mut w = World::new();
    let change = w.recovery(DELAY);
    let lacks = "a recovery lacks the policy's threshold of distinct support approvers";
    let op = w.op(&change);
    // One support approver.
    let auth = by(&[("sam", w.sam.assert(&op))]);
    assert_eq!(broken(w.append(change.clone(), auth)), (6, lacks));
    // The same support approver twice (two assertions, counters rising).
    let auth = by(&[("sam", w.sam.assert(&op)), ("sam", w.sam.assert(&op))]);
    assert_eq!(broken(w.append(change.clone(), auth)), (6, lacks));
    // A support approver and an owner (not of the support group).
    let auth = by(&[("sam", w.sam.assert(&op)), ("ben", w.ben.assert(&op))]);
    assert_eq!(broken(w.append(change.clone(), auth)), (6, lacks));
    // An assertion claimed for sue but made by sam's device.
    let auth = by(&[("sam", w.sam.assert(&op)), ("sue", w.sam.assert(&op))]);
    assert!(matches!(
        w.append(change.clone(), auth),
        Err(PolicyError::Approval { ref approver, .. }) if approver == "sue"
    ));
    // A delay shorter than the policy's, with the right approvers.
    let short = w.recovery(DELAY - 1);
    let short_op = w.op(&short);
    let auth = by(&[
        ("sam", w.sam.assert(&short_op)),
        ("sue", w.sue.assert(&short_op)),
    ]);
    assert_eq!(
        broken(w.append(short, auth)),
        (6, "the recovery's delay is shorter than the policy's")
    );
    // Two distinct support approvers: recorded, pending.
    let change = w.recovery(DELAY);
    let op = w.op(&change);
    let auth = by(&[("sam", w.sam.assert(&op)), ("sue", w.sue.assert(&op))]);
    let at = w.append(change, auth).unwrap();
    let recovery = only_recovery(&w.state());
    assert_eq!(
        (recovery.id, recovery.index, recovery.approver.as_str()),
        (at.hash, 6, "ann")
    );
    assert_eq!(recovery.status, RecoveryStatus::Pending);
}

#[test]
fn a_policy_without_recovery_allows_none() {
    let mut w = World::with_recovery(None);
    let change = w.recovery(DELAY);
    let op = w.op(&change);
    let auth = by(&[("sam", w.sam.assert(&op)), ("sue", w.sue.assert(&op))]);
    assert_eq!(
        broken(w.append(change, auth)),
        (6, "the policy allows no recovery")
    );
    // And a policy cannot name a group of another role, or one approver.
    for (recovery, says) in [
        (
            json!({"group": "owners", "threshold": 2, "delaySeconds": 60}),
            "not a group of role \"support\"",
        ),
        (
            json!({"group": "support", "threshold": 1, "delaySeconds": 60}),
            "not 2 to the group's 3 members",
        ),
        (
            json!({"group": "support", "threshold": 2, "delaySeconds": 0}),
            "not 1 to 31622400 seconds",
        ),
    ] {
        let mut doc = policy_doc(None).to_json();
        doc["recovery"] = recovery;
        match Policy::from_json(doc.to_string().as_bytes()) {
            Err(e) => assert!(e.to_string().contains(says), "{e}"),
            Ok(p) => panic!("accepted {p:?}"),
        }
    }
}

#[test]
fn recovered_device_not_usable_before_the_delay() {
    let mut w = World::new();
    let (_, activates_at) = w.recover();
    assert!(!w.new_device_counts_at(activates_at - 1));
    assert!(w.new_device_counts_at(activates_at));
    // Through the log: another device for ann, authorised by her new one,
    // is refused while the recovery is pending...
    let extra = Device::ed25519(8);
    let change = Change::Device {
        approver: "ann".into(),
        credential: extra.credential(),
    };
    let op = w.op(&change);
    let auth = by(&[("ann", w.new.assert(&op))]);
    assert!(matches!(
        w.append(change.clone(), auth),
        Err(PolicyError::Approval { ref approver, ref reason })
            if approver == "ann" && reason == "not a device of this approver"
    ));
    // ...and accepted by an entry dated after its activation.
    w.now = activates_at - 1;
    let auth = by(&[("ann", w.new.assert(&op))]);
    w.append(change, auth).unwrap();
    let state = w.state();
    assert_eq!(only_recovery(&state).status, RecoveryStatus::Active);
    assert_eq!(state.devices("ann").len(), 3, "lost, recovered, added");
    assert_eq!(state.owner_of(&w.new.id), Some("ann"));
}

#[test]
fn vetoed_recovery_never_activates() {
    let mut w = World::new();
    let (id, activates_at) = w.recover();
    let veto = Change::Veto { recovery: id };
    let op = w.op(&veto);
    // The pending device cannot veto its own recovery.
    let auth = by(&[("ann", w.new.assert(&op))]);
    assert!(matches!(
        w.append(veto.clone(), auth),
        Err(PolicyError::Approval { .. })
    ));
    // Ann's old device (any existing device) vetoes it in time.
    let auth = by(&[("ann", w.ann.assert(&op))]);
    let vetoed_at = w.append(veto.clone(), auth).unwrap();
    assert_eq!(
        only_recovery(&w.state()).status,
        RecoveryStatus::Vetoed {
            by: vetoed_at.index
        }
    );
    // Never, however late, and not after a later entry either.
    assert!(!w.new_device_counts_at(activates_at + 10 * DELAY));
    w.now = activates_at + DELAY;
    let op = w.op(&veto);
    let again = by(&[("ben", w.ben.assert(&op))]);
    assert_eq!(
        broken(w.append(veto, again)),
        (vetoed_at.index + 1, "the recovery is vetoed already")
    );
    assert!(matches!(
        only_recovery(&w.state()).status,
        RecoveryStatus::Vetoed { .. }
    ));
    assert_eq!(w.state().owner_of(&w.new.id), None);
}

#[test]
fn veto_after_activation_refused() {
    let mut w = World::new();
    let (id, activates_at) = w.recover();
    let veto = Change::Veto { recovery: id };
    let op = w.op(&veto);
    let auth = by(&[("ben", w.ben.assert(&op))]);
    w.now = activates_at - 1; // the veto is dated activates_at
    assert_eq!(
        broken(w.append(veto, auth)),
        (7, "the recovery is active: too late to veto")
    );
    // A veto of something that is no recovery.
    let bogus = Change::Veto { recovery: [1; 32] };
    let op = w.op(&bogus);
    let auth = by(&[("ben", w.ben.assert(&op))]);
    assert_eq!(
        broken(w.append(bogus, auth)),
        (7, "the veto names no recovery of this log")
    );
}

#[test]
fn a_replayed_recovery_refused() {
    let mut w = World::new();
    let change = w.recovery(DELAY);
    let op = w.op(&change);
    let auth = by(&[("sam", w.sam.assert(&op)), ("sue", w.sue.assert(&op))]);
    w.append(change.clone(), auth.clone()).unwrap();
    // The same entry again: its device is in the log already.
    assert_eq!(
        broken(w.append(change.clone(), auth.clone())),
        (7, "the device is already in the log")
    );
    // Its assertions for another device: they signed another change at
    // the log position before.
    let other = Change::Recovery {
        approver: "ann".into(),
        credential: Device::ed25519(9).credential(),
        activates_at: w.now + 1 + DELAY,
    };
    assert!(matches!(
        w.append(other, auth),
        Err(PolicyError::Approval { .. })
    ));
    // Fresh assertions for the same device: it is in the log already.
    let op = w.op(&change);
    let auth = by(&[("sam", w.sam.assert(&op)), ("sue", w.sue.assert(&op))]);
    assert_eq!(
        broken(w.append(change, auth)),
        (7, "the device is already in the log")
    );
    // Nor can it be added as a plain device of another approver.
    let plain = Change::Device {
        approver: "zed".into(),
        credential: w.new.credential(),
    };
    let auth = w.signed(&plain);
    assert_eq!(
        broken(w.append(plain, auth)),
        (7, "the device is already in the log")
    );
}

#[test]
fn the_log_with_recovery_entries_verifies_and_an_edited_one_does_not() {
    let mut w = World::new();
    let (id, activates_at) = w.recover();
    let veto = Change::Veto { recovery: id };
    let op = w.op(&veto);
    let auth = by(&[("ben", w.ben.assert(&op))]);
    w.append(veto, auth).unwrap();
    // Read back from the store by a fresh reader: every entry replayed.
    let entries = w.reader().entries(WALLET).wait().unwrap();
    assert_eq!(entries.len(), 8);
    assert!(matches!(
        &entries[6].change,
        Change::Recovery { approver, activates_at: a, .. } if approver == "ann" && *a == activates_at
    ));
    assert_eq!(entries[7].change, Change::Veto { recovery: id });
    assert_eq!(entries[6].hash(), id);
    // Round trip of the stored form.
    let stored = Change::Recovery {
        approver: "ann".into(),
        credential: w.new.credential(),
        activates_at,
    };
    assert_eq!(
        stored.to_json()["recovery"]["activatesAt"],
        json!(activates_at)
    );

    // The recovery's activation moved earlier in the store: its hash no
    // longer names it.
    let key = format!("policy/{}/entry/6/{}", hex::encode(WALLET), hex::encode(id));
    let record = w.store.get(&key).wait().unwrap().unwrap();
    let mut value: Value = serde_json::from_slice(&record.value).unwrap();
    value["change"]["recovery"]["activatesAt"] = json!(w.now);
    put(&w.store, &key, Some(record.version), &value);
    assert_eq!(
        broken(w.reader().load(WALLET, None).wait()),
        (6, "the entry's hash is not the one that names it")
    );
}

#[test]
fn a_recovery_rewritten_with_its_chain_fails_its_approvals() {
    // Someone with write access to the store puts their own device in the
    // recovery and re-chains it: the support approvers' assertions signed
    // the original.
    let mut w = World::new();
    let (id, _) = w.recover();
    let entries = w.reader().entries(WALLET).wait().unwrap();
    let mut forged = entries[6].clone();
    let Change::Recovery { credential, .. } = &mut forged.change else {
        unreachable!()
    };
    *credential = Device::p256(66).credential();
    let hash = forged.hash();
    let prefix = format!("policy/{}", hex::encode(WALLET));
    let forged_key = format!("{prefix}/entry/6/{}", hex::encode(hash));
    put(&w.store, &forged_key, None, &forged.to_json());
    let head = w
        .store
        .get(&format!("{prefix}/head"))
        .wait()
        .unwrap()
        .unwrap();
    let moved = json!({"index": 6, "hash": hex::encode(hash)});
    put(
        &w.store,
        &format!("{prefix}/head"),
        Some(head.version),
        &moved,
    );
    assert_ne!(hash, id);
    assert!(matches!(
        w.reader().load(WALLET, None).wait(),
        Err(PolicyError::Approval { .. })
    ));
}
