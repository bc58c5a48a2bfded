//! The state records against frozen vectors built independently (Python,
//! pyca/cryptography: `tests/vectors/gen_state_records_v1.py`): records
//! written by that generator are read, opened and enforced by the registry,
//! and what the registry writes has the keys and bytes the SPEC gives.

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use custody_core::{
    CasOutcome, DataKey, KekId, LocalKek, MemoryAuditLog, MemoryStore, OneTimeCode, SharedBackend,
    StateStore, WalletScheme,
};
use custody_totp::{EnrolMode, ManualClock, TotpConfig, TotpRegistry, Verification};
use serde_json::Value;

fn vectors() -> Value {
    let path = format!(
        "{}/tests/vectors/state_records_v1.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn kek(v: &Value) -> SharedBackend {
    Arc::new(LocalKek::from_key(
        KekId::new(v["kekId"].as_str().unwrap()).unwrap(),
        DataKey::from_slice(&hex::decode(v["kekKey"].as_str().unwrap()).unwrap()).unwrap(),
    ))
}

fn put(store: &MemoryStore, key: &str, value: &str) {
    assert!(matches!(
        store.compare_and_swap(key, None, value.as_bytes()).unwrap(),
        CasOutcome::Swapped { version: 1 }
    ));
}

fn registry(v: &Value, store: Arc<MemoryStore>, clock: Arc<ManualClock>) -> TotpRegistry {
    TotpRegistry::new(
        kek(v),
        store,
        Arc::new(MemoryAuditLog::new()),
        TotpConfig::new(WalletScheme::Default),
    )
    .unwrap()
    .with_clock(clock)
}

#[test]
fn records_from_the_generator_are_enforced() {
    let v = vectors();
    let store = Arc::new(MemoryStore::new());
    put(
        &store,
        v["scheme"]["key"].as_str().unwrap(),
        v["scheme"]["record"].as_str().unwrap(),
    );
    for e in v["enrolments"].as_array().unwrap() {
        put(
            &store,
            e["nodeKey"].as_str().unwrap(),
            e["record"].as_str().unwrap(),
        );
    }
    let clock = Arc::new(ManualClock::new(0));
    let reg = registry(&v, store.clone(), clock.clone());
    let final_guard = v["guards"][1]["record"].as_str().unwrap();
    for e in v["enrolments"].as_array().unwrap() {
        let wallet = e["wallet"].as_str().unwrap();
        assert!(reg.is_enrolled(wallet).unwrap(), "{wallet}");
        assert_eq!(
            reg.node_path(wallet).unwrap().to_string(),
            e["node"].as_str().unwrap()
        );
        let mut last = None;
        for c in e["codes"].as_array().unwrap() {
            clock.set(c["time"].as_u64().unwrap());
            let code = OneTimeCode::new(c["code"].as_str().unwrap());
            let step = c["step"].as_u64().unwrap();
            assert_eq!(
                reg.verify(wallet, Some(&code)).unwrap(),
                Verification::Accepted { step },
                "{wallet} at {}",
                c["time"]
            );
            assert_eq!(
                reg.verify(wallet, Some(&code)).unwrap(),
                Verification::Replayed
            );
            last = Some(step);
        }
        // The guard the registry wrote is byte for byte the generator's.
        assert_eq!(last, v["guards"][1]["lastStep"].as_u64());
        let guard = store.get(e["guardKey"].as_str().unwrap()).unwrap().unwrap();
        assert_eq!(std::str::from_utf8(&guard.value).unwrap(), final_guard);
    }
}

#[test]
fn a_locked_guard_from_the_generator_is_honoured() {
    let v = vectors();
    let e = &v["enrolments"][0];
    let locked = &v["guards"][2];
    let until = locked["lockedUntil"].as_u64().unwrap();
    let store = Arc::new(MemoryStore::new());
    put(
        &store,
        v["scheme"]["key"].as_str().unwrap(),
        v["scheme"]["record"].as_str().unwrap(),
    );
    put(
        &store,
        e["nodeKey"].as_str().unwrap(),
        e["record"].as_str().unwrap(),
    );
    put(
        &store,
        e["guardKey"].as_str().unwrap(),
        locked["record"].as_str().unwrap(),
    );
    let clock = Arc::new(ManualClock::new(until - 1));
    let reg = registry(&v, store.clone(), clock.clone());
    let wallet = e["wallet"].as_str().unwrap();
    let wrong = OneTimeCode::new("00000001");
    assert_eq!(
        reg.verify(wallet, Some(&wrong)).unwrap(),
        Verification::Locked { until_unix: until }
    );
    // After the lock, one wrong code locks again at the next level (3:
    // 30 s doubled twice).
    clock.set(until);
    assert_eq!(
        reg.verify(wallet, Some(&wrong)).unwrap(),
        Verification::Invalid
    );
    assert_eq!(
        reg.verify(wallet, Some(&wrong)).unwrap(),
        Verification::Locked {
            until_unix: until + 120
        }
    );
}

#[test]
fn enrolment_writes_the_keys_the_spec_gives() {
    let v = vectors();
    let store = Arc::new(MemoryStore::new());
    let reg = registry(&v, store.clone(), Arc::new(ManualClock::new(1_700_000_000)));
    let e = &v["enrolments"][0];
    reg.enrol(e["wallet"].as_str().unwrap(), EnrolMode::New)
        .unwrap();
    let scheme = store
        .get(v["scheme"]["key"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        &*scheme.value,
        v["scheme"]["record"].as_str().unwrap().as_bytes()
    );
    let counter = v["counter"]["record"].as_str().unwrap().as_bytes();
    let ancestors = e["ancestorKeys"].as_array().unwrap();
    assert_eq!(ancestors.len(), 6);
    for key in ancestors {
        let record = store.get(key.as_str().unwrap()).unwrap().unwrap();
        assert_eq!(&*record.value, counter, "{key}");
    }
    let node = store.get(e["nodeKey"].as_str().unwrap()).unwrap().unwrap();
    let json: Value = serde_json::from_slice(&node.value).unwrap();
    assert_eq!(json["node"], e["node"]);
    assert_eq!(json["wallet"], e["wallet"]);
    assert_eq!(json["v"], 1);
    assert!(
        store
            .get(e["guardKey"].as_str().unwrap())
            .unwrap()
            .is_none()
    );
}

#[test]
fn edited_parameters_no_longer_open() {
    // The parameters are bound into the envelope's context: a record whose
    // digits were edited fails closed instead of weakening the codes.
    let v = vectors();
    let e = &v["enrolments"][0];
    let edited = e["record"]
        .as_str()
        .unwrap()
        .replace("\"digits\":8", "\"digits\":6");
    let store = Arc::new(MemoryStore::new());
    put(
        &store,
        v["scheme"]["key"].as_str().unwrap(),
        v["scheme"]["record"].as_str().unwrap(),
    );
    put(&store, e["nodeKey"].as_str().unwrap(), &edited);
    let reg = registry(&v, store, Arc::new(ManualClock::new(59)));
    let code = OneTimeCode::new("287082");
    assert!(matches!(
        reg.verify(e["wallet"].as_str().unwrap(), Some(&code)),
        Err(custody_totp::Error::Core(
            custody_core::Error::DecryptionFailed
        ))
    ));
}
