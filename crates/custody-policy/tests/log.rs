//! The policy log: who may append what, the chain read back and checked
//! from its start, edits, drops, rollbacks and forks detected, racing
//! appenders, and approvals spent once.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::sync::Arc;

use custody_core::{Digest32, MemoryStore, StateStore};
use custody_policy::PolicyError;
use custody_policy::log::{Change, Checkpoint, EntryAuth, LogState, PolicyLog};
use custody_policy::policy::Policy;
use custody_policy::webauthn::RelyingParty;
use serde_json::{Value, json};

#[path = "support/authenticator.rs"]
mod authenticator;
#[path = "support/policy_key.rs"]
mod policy_key;
use authenticator::*;
use policy_key::{PolicyKey, memory_log};

const WALLET: &str = "treasury";

struct World {
    store: Arc<MemoryStore>,
    log: PolicyLog,
    key: PolicyKey,
    now: u64,
}

fn policy(members: &[&str], threshold: u32) -> Policy {
    let doc = json!({
        "schema": "custody-policy/v1",
        "wallet": WALLET,
        "groups": {"owners": {"role": "owner", "members": members}},
        "governance": {"group": "owners", "threshold": threshold},
        "rules": [{"id": "any", "effect": "allow", "require": [{"group": "owners", "threshold": 1}]}]
    });
    Policy::from_json(doc.to_string().as_bytes()).unwrap()
}

impl World {
    fn new() -> Self {
        let key = PolicyKey::new(9);
        let (store, log) = memory_log(&key);
        Self {
            store,
            log,
            key,
            now: 1_800_000_000,
        }
    }

    fn state(&self) -> LogState {
        self.log.load(WALLET, None).wait().unwrap()
    }

    /// The policy key's authorisation of `change` as the next entry.
    fn signed(&self, change: &Change) -> EntryAuth {
        let op = self.state().next_operation(change);
        EntryAuth::PolicyKey(self.key.sign(&op.hash().0))
    }

    fn approvals(&self, change: &Change, by: &mut [(&str, &mut Device)]) -> EntryAuth {
        let op = self.state().next_operation(change);
        EntryAuth::Approvals(
            by.iter_mut()
                .map(|(who, device)| ((*who).to_owned(), device.assert(&op.hash().0)))
                .collect(),
        )
    }

    fn append(&mut self, change: Change, auth: EntryAuth) -> Result<Checkpoint, PolicyError> {
        self.now += 1;
        self.log.append(WALLET, change, auth, self.now).wait()
    }

    /// A log with three owners (one device each) and a 2-of-3 policy.
    fn with_owners() -> (Self, [Device; 3]) {
        let mut world = Self::new();
        let devices = [Device::p256(1), Device::ed25519(2), Device::p256(3)];
        for (who, device) in ["ann", "ben", "cat"].iter().zip(&devices) {
            let change = Change::Device {
                approver: (*who).to_owned(),
                credential: device.credential(),
            };
            let auth = world.signed(&change);
            world.append(change, auth).unwrap();
        }
        let change = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 2)));
        let auth = world.signed(&change);
        world.append(change, auth).unwrap();
        (world, devices)
    }
}

fn broken(result: Result<impl std::fmt::Debug, PolicyError>) -> (u64, &'static str) {
    match result {
        Err(PolicyError::LogBroken { index, reason }) => (index, reason),
        other => panic!("expected a broken log, got {other:?}"),
    }
}

#[test]
fn the_first_policy_and_new_approvers_are_signed_by_the_policy_key() {
    let (world, _) = World::with_owners();
    let state = world.state();
    assert_eq!(state.head().unwrap().index, 3);
    assert_eq!(state.policy().unwrap().governance().threshold, 2);
    assert_eq!(state.devices("ann").len(), 1);
    assert_eq!(state.owner_of(&Device::ed25519(2).id), Some("ben"));
    let entries = world.log.entries(WALLET).wait().unwrap();
    assert_eq!(entries.len(), 4);
    for (i, pair) in entries.windows(2).enumerate() {
        assert_eq!(pair[1].previous, pair[0].hash(), "link {i}");
    }
}

#[test]
fn a_first_policy_signed_by_another_key_is_refused() {
    let mut world = World::new();
    let change = Change::Policy(Box::new(policy(&["ann"], 1)));
    let op = world.state().next_operation(&change);
    let forged = EntryAuth::PolicyKey(PolicyKey::new(10).sign(&op.hash().0));
    assert_eq!(
        broken(world.append(change.clone(), forged)),
        (0, "the first policy is not signed by the policy key")
    );
    // A signature by the right key over another operation is refused too.
    let other = EntryAuth::PolicyKey(world.key.sign(&[0; 32]));
    assert_eq!(broken(world.append(change, other)).0, 0);
    assert!(world.state().head().is_none());
}

#[test]
fn a_later_policy_needs_the_governance_quorum() {
    let (mut world, [mut ann, mut ben, mut cat]) = World::with_owners();
    let change = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 3)));
    // The policy key alone cannot change a policy.
    let auth = world.signed(&change);
    assert_eq!(
        broken(world.append(change.clone(), auth)).1,
        "a later policy needs the governance quorum, not the policy key"
    );
    // One owner is not two.
    let auth = world.approvals(&change, &mut [("ann", &mut ann)]);
    assert_eq!(
        broken(world.append(change.clone(), auth)).1,
        "the change lacks the current policy's governance quorum"
    );
    // One owner twice is not two.
    let op = world.state().next_operation(&change);
    let twice = EntryAuth::Approvals(vec![
        ("ben".into(), ben.assert(&op.hash().0)),
        ("ben".into(), ben.assert(&op.hash().0)),
    ]);
    assert_eq!(broken(world.append(change.clone(), twice)).0, 4);
    // Two owners: appended, and the new policy is in force.
    let auth = world.approvals(&change, &mut [("ann", &mut ann), ("cat", &mut cat)]);
    let head = world.append(change, auth).unwrap();
    assert_eq!(head.index, 4);
    assert_eq!(world.state().policy().unwrap().governance().threshold, 3);
}

#[test]
fn an_approval_by_a_device_of_someone_else_is_refused() {
    let (mut world, [_, mut ben, _]) = World::with_owners();
    let change = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 1)));
    let op = world.state().next_operation(&change);
    // Ben's device claiming to be Ann.
    let auth = EntryAuth::Approvals(vec![
        ("ann".into(), ben.assert(&op.hash().0)),
        ("ben".into(), ben.assert(&op.hash().0)),
    ]);
    match world.append(change, auth) {
        Err(PolicyError::Approval { approver, reason }) => {
            assert_eq!(approver, "ann");
            assert!(reason.contains("not a device of this approver"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_approval_over_another_change_is_refused() {
    let (mut world, [mut ann, mut ben, _]) = World::with_owners();
    let asked = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 3)));
    let sneaked = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 1)));
    let auth = world.approvals(&asked, &mut [("ann", &mut ann), ("ben", &mut ben)]);
    match world.append(sneaked, auth) {
        Err(PolicyError::Approval { reason, .. }) => {
            assert!(reason.contains("challenge"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_replayed_approval_is_refused_by_its_counter() {
    let (mut world, [mut ann, mut ben, _]) = World::with_owners();
    let change = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 3)));
    let auth = world.approvals(&change, &mut [("ann", &mut ann), ("ben", &mut ben)]);
    world.append(change, auth.clone()).unwrap();
    // The same assertions again, over an entry that would extend the same
    // head: their counters were spent (and the head moved anyway).
    let EntryAuth::Approvals(approvals) = &auth else {
        unreachable!()
    };
    assert_eq!(approvals.len(), 2);
    let state = world.state();
    let op = state.next_operation(&Change::Policy(Box::new(policy(&["ann"], 1))));
    assert!(
        state
            .verify_approvals(world.log.relying_party(), &op.hash(), approvals, true)
            .is_err()
    );
    // The counters in the store moved past the assertions'.
    let err = world
        .log
        .counters()
        .record_counter(&ann.id, ann.counter)
        .wait()
        .unwrap_err();
    assert_eq!(err.kind(), "webauthn-counter-regressed");
}

#[test]
fn another_device_is_added_by_one_of_the_approvers_own_devices() {
    let (mut world, [mut ann, mut ben, _]) = World::with_owners();
    let phone = Device::ed25519(40);
    let change = Change::Device {
        approver: "ann".into(),
        credential: phone.credential(),
    };
    // Ben cannot add a device for Ann, nor can the policy key.
    let auth = world.approvals(&change, &mut [("ben", &mut ben)]);
    assert_eq!(
        broken(world.append(change.clone(), auth)).1,
        "another device of an approver needs one of theirs"
    );
    let auth = world.signed(&change);
    assert_eq!(broken(world.append(change.clone(), auth)).0, 4);
    let auth = world.approvals(&change, &mut [("ann", &mut ann)]);
    world.append(change.clone(), auth).unwrap();
    assert_eq!(world.state().devices("ann").len(), 2);
    // A device is in a log once, for anyone.
    let again = Change::Device {
        approver: "dan".into(),
        credential: phone.credential(),
    };
    let auth = world.signed(&again);
    assert_eq!(
        broken(world.append(again, auth)).1,
        "the device is already in the log"
    );
}

/// A compare-and-swap that must succeed.
fn put<'a>(
    store: &'a MemoryStore,
    key: &'a str,
    expected: Option<u64>,
    value: &'a [u8],
) -> Put<'a> {
    Put(store.compare_and_swap(key, expected, value))
}

struct Put<'a>(custody_core::Pending<'a, Result<custody_core::CasOutcome, custody_core::Error>>);

impl Put<'_> {
    fn wait(self) -> Result<(), custody_core::Error> {
        match self.0.wait()? {
            custody_core::CasOutcome::Swapped { .. } => Ok(()),
            other => panic!("{other:?}"),
        }
    }
}

/// Rewrites the stored JSON of entry `index` with `edit`, keeping its key.
fn tamper(world: &World, index: u64, edit: impl Fn(&mut Value)) {
    let entries = world.log.entries(WALLET).wait().unwrap();
    let entry = &entries[usize::try_from(index).unwrap()];
    let key = format!(
        "policy/{}/entry/{index}/{}",
        hex::encode(WALLET),
        hex::encode(entry.hash())
    );
    let record = world.store.get(&key).wait().unwrap().unwrap();
    let mut value: Value = serde_json::from_slice(&record.value).unwrap();
    edit(&mut value);
    put(
        &world.store,
        &key,
        Some(record.version),
        &serde_json::to_vec(&value).unwrap(),
    )
    .wait()
    .unwrap();
}

#[test]
fn an_edited_entry_is_detected() {
    let (world, _) = World::with_owners();
    tamper(&world, 3, |v| {
        v["change"]["policy"]["governance"]["threshold"] = json!(1);
    });
    assert_eq!(
        broken(world.log.load(WALLET, None).wait()),
        (3, "the entry's hash is not the one that names it")
    );
}

#[test]
fn an_edited_entry_with_a_recomputed_chain_fails_its_authorisation() {
    // An attacker with write access to the store rewrites the policy entry
    // and the head to match: the policy key's signature no longer covers it.
    let (world, _) = World::with_owners();
    let entries = world.log.entries(WALLET).wait().unwrap();
    let mut forged = entries[3].clone();
    forged.change = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 1)));
    let hash = forged.hash();
    let prefix = format!("policy/{}", hex::encode(WALLET));
    put(
        &world.store,
        &format!("{prefix}/entry/3/{}", hex::encode(hash)),
        None,
        &serde_json::to_vec(&forged.to_json()).unwrap(),
    )
    .wait()
    .unwrap();
    let head = world
        .store
        .get(&format!("{prefix}/head"))
        .wait()
        .unwrap()
        .unwrap();
    put(
        &world.store,
        &format!("{prefix}/head"),
        Some(head.version),
        json!({"index": 3, "hash": hex::encode(hash)})
            .to_string()
            .as_bytes(),
    )
    .wait()
    .unwrap();
    assert_eq!(
        broken(world.log.load(WALLET, None).wait()),
        (3, "the first policy is not signed by the policy key")
    );
}

#[test]
fn an_edit_after_a_verified_load_changes_nothing_loaded_and_an_audit_finds_it() {
    let (world, _) = World::with_owners();
    let before = world.state();
    assert_eq!(before.policy().unwrap().governance().threshold, 2);
    tamper(&world, 3, |v| {
        v["change"]["policy"]["governance"]["threshold"] = json!(1);
    });
    // The head is unchanged: the state verified before is the one used.
    let after = world.state();
    assert_eq!(after.policy().unwrap().governance().threshold, 2);
    // A fresh reader, and the audit of the stored entries, find the edit.
    let fresh = PolicyLog::new(
        Arc::clone(&world.store) as Arc<dyn StateStore>,
        RelyingParty::new(RP_ID, [ORIGIN]).unwrap(),
        world.key.public(),
    );
    assert_eq!(broken(fresh.load(WALLET, None).wait()).0, 3);
    assert_eq!(broken(world.log.entries(WALLET).wait()).0, 3);
}

#[test]
fn a_dropped_entry_is_detected() {
    let (world, _) = World::with_owners();
    let entries = world.log.entries(WALLET).wait().unwrap();
    let key = format!(
        "policy/{}/entry/1/{}",
        hex::encode(WALLET),
        hex::encode(entries[1].hash())
    );
    let record = world.store.get(&key).wait().unwrap().unwrap();
    // The memory store has no delete: overwrite with what no entry is.
    put(&world.store, &key, Some(record.version), b"{}")
        .wait()
        .unwrap();
    let (index, _) = broken(world.log.load(WALLET, None).wait());
    assert_eq!(index, 1);
}

#[test]
fn a_rolled_back_or_forked_log_is_refused_against_a_checkpoint() {
    let (mut world, [mut ann, mut ben, _]) = World::with_owners();
    let before = world.state().head().unwrap();
    let change = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 3)));
    let auth = world.approvals(&change, &mut [("ann", &mut ann), ("ben", &mut ben)]);
    let after = world.append(change, auth).unwrap();
    // Extends both checkpoints.
    world.log.load(WALLET, Some(before)).wait().unwrap();
    world.log.load(WALLET, Some(after)).wait().unwrap();
    // The head moved back to `before` (a restored backup): rolled back.
    let prefix = format!("policy/{}", hex::encode(WALLET));
    let head = world
        .store
        .get(&format!("{prefix}/head"))
        .wait()
        .unwrap()
        .unwrap();
    put(
        &world.store,
        &format!("{prefix}/head"),
        Some(head.version),
        json!({"index": before.index, "hash": hex::encode(before.hash)})
            .to_string()
            .as_bytes(),
    )
    .wait()
    .unwrap();
    world.log.load(WALLET, None).wait().unwrap();
    match world.log.load(WALLET, Some(after)).wait() {
        Err(PolicyError::RolledBack { known, found }) => {
            assert_eq!((known, found), (4, Some(3)));
        }
        other => panic!("{other:?}"),
    }
    // A checkpoint whose entry is not on the chain: forked.
    let other = Checkpoint {
        index: 2,
        hash: [7; 32],
    };
    assert!(matches!(
        world.log.load(WALLET, Some(other)).wait(),
        Err(PolicyError::Forked { index: 2 })
    ));
}

#[test]
fn of_two_racing_appends_exactly_one_wins() {
    let (world, [mut ann, mut ben, mut cat]) = World::with_owners();
    let a = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 3)));
    let b = Change::Policy(Box::new(policy(&["ann", "ben", "cat"], 1)));
    let auth_a = world.approvals(&a, &mut [("ann", &mut ann), ("ben", &mut ben)]);
    let auth_b = world.approvals(&b, &mut [("cat", &mut cat), ("ann", &mut ann)]);
    let log = world.log.clone();
    let results: Vec<_> = std::thread::scope(|s| {
        let first = s.spawn(|| log.append(WALLET, a, auth_a, 1).wait());
        let second = s.spawn(|| log.append(WALLET, b, auth_b, 1).wait());
        vec![first.join().unwrap(), second.join().unwrap()]
    });
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
    // The loser failed cleanly (a conflict, or a counter its rival spent),
    // and the log holds exactly the winner's entry.
    let state = world.state();
    assert_eq!(state.head().unwrap().index, 4);
    let threshold = state.policy().unwrap().governance().threshold;
    assert!(threshold == 3 || threshold == 1);
}

#[test]
fn a_stored_entry_is_read_strictly() {
    let (world, _) = World::with_owners();
    type Edit = fn(&mut Value);
    let cases: [(Edit, &str); 5] = [
        (
            |v| v["extra"] = json!(1),
            "the entry's members are not exactly the six",
        ),
        (
            |v| v["index"] = json!(2),
            "the entry's index is not its position",
        ),
        (
            |v| v["auth"] = json!({"policyKey": "00"}),
            "policyKey is not 65 bytes",
        ),
        (
            |v| v["auth"] = json!({"approvals": []}),
            "approvals: not 1 to 64",
        ),
        (
            |v| v["change"] = json!({"policy": {}, "device": {}}),
            "the change is not exactly one member",
        ),
    ];
    for (edit, reason) in cases {
        let (world, _) = World::with_owners();
        tamper(&world, 1, edit);
        assert_eq!(broken(world.log.load(WALLET, None).wait()), (1, reason));
    }
    drop(world);
}

#[test]
fn the_change_hash_and_the_operation_are_what_approvers_sign() {
    let (world, _) = World::with_owners();
    let entries = world.log.entries(WALLET).wait().unwrap();
    let policy_entry = &entries[3];
    let op = policy_entry.operation();
    let custody_policy::operation::Operation::PolicyChange {
        wallet,
        change_hash,
        previous,
    } = &op
    else {
        panic!("{op:?}")
    };
    assert_eq!(wallet, WALLET);
    assert_eq!(*previous, entries[2].hash());
    // The change hash is SHA-256 of the canonical JSON of {"policy": …}.
    let Change::Policy(policy) = &policy_entry.change else {
        panic!()
    };
    let mut text = br#"{"policy":"#.to_vec();
    text.extend_from_slice(&policy.to_canonical_json());
    text.push(b'}');
    use sha2::Digest as _;
    assert_eq!(*change_hash, <[u8; 32]>::from(sha2::Sha256::digest(&text)));
    let EntryAuth::PolicyKey(sig) = &policy_entry.auth else {
        panic!()
    };
    assert_eq!(
        sig.recover(&Digest32(op.hash().0)).unwrap(),
        *world.log.policy_key()
    );
}
