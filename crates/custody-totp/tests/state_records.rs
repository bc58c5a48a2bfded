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
    Authorization, CasOutcome, DataKey, Denial, Digest32, Error as CoreError, Intent, KekId, KeyId,
    KeyRef, KeySigner, LocalKek, MemoryAuditLog, MemoryStore, OneTimeCode, PrivateKeyBytes,
    PublicKey, SharedBackend, StateStore, Vault, WalletScheme,
};
use custody_totp::{EnrolMode, ManualClock, TotpConfig, TotpGate, TotpRegistry, Verification};
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
        store
            .compare_and_swap(key, None, value.as_bytes())
            .wait()
            .unwrap(),
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
        assert!(reg.is_enrolled(wallet).wait().unwrap(), "{wallet}");
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
                reg.verify(wallet, Some(&code)).wait().unwrap(),
                Verification::Accepted { step },
                "{wallet} at {}",
                c["time"]
            );
            assert_eq!(
                reg.verify(wallet, Some(&code)).wait().unwrap(),
                Verification::Replayed
            );
            last = Some(step);
        }
        // The guard the registry wrote is byte for byte the generator's.
        assert_eq!(last, v["guards"][1]["lastStep"].as_u64());
        let guard = store
            .get(e["guardKey"].as_str().unwrap())
            .wait()
            .unwrap()
            .unwrap();
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
        reg.verify(wallet, Some(&wrong)).wait().unwrap(),
        Verification::Locked { until_unix: until }
    );
    // After the lock, one wrong code locks again at the next level (3:
    // 30 s doubled twice).
    clock.set(until);
    assert_eq!(
        reg.verify(wallet, Some(&wrong)).wait().unwrap(),
        Verification::Invalid
    );
    assert_eq!(
        reg.verify(wallet, Some(&wrong)).wait().unwrap(),
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
        .wait()
        .unwrap();
    let scheme = store
        .get(v["scheme"]["key"].as_str().unwrap())
        .wait()
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
        let record = store.get(key.as_str().unwrap()).wait().unwrap().unwrap();
        assert_eq!(&*record.value, counter, "{key}");
    }
    let node = store
        .get(e["nodeKey"].as_str().unwrap())
        .wait()
        .unwrap()
        .unwrap();
    let json: Value = serde_json::from_slice(&node.value).unwrap();
    assert_eq!(json["node"], e["node"]);
    assert_eq!(json["wallet"], e["wallet"]);
    assert_eq!(json["v"], 1);
    assert!(
        store
            .get(e["guardKey"].as_str().unwrap())
            .wait()
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
        reg.verify(e["wallet"].as_str().unwrap(), Some(&code))
            .wait(),
        Err(custody_totp::Error::Core(
            custody_core::Error::DecryptionFailed
        ))
    ));
}

/// The public key of a vector's key enrolment (computed by the generator
/// with pyca/cryptography), checked against the one custody-core derives
/// from the vector's private key.
fn vector_key(e: &Value) -> (PrivateKeyBytes, PublicKey) {
    let secret =
        PrivateKeyBytes::from_slice(&hex::decode(e["privateKey"].as_str().unwrap()).unwrap())
            .unwrap();
    let public =
        PublicKey::from_sec1_bytes(&hex::decode(e["publicKey"].as_str().unwrap()).unwrap())
            .unwrap();
    (secret, public)
}

#[test]
fn key_records_from_the_generator_are_enforced_by_the_gate() {
    let v = vectors();
    let store = Arc::new(MemoryStore::new());
    put(
        &store,
        v["scheme"]["key"].as_str().unwrap(),
        v["scheme"]["record"].as_str().unwrap(),
    );
    let vault = Vault::new(kek(&v), WalletScheme::Default);
    let keys = v["keyEnrolments"].as_array().unwrap();
    for (i, e) in keys.iter().enumerate() {
        put(
            &store,
            e["recordKey"].as_str().unwrap(),
            e["record"].as_str().unwrap(),
        );
        let (secret, public) = vector_key(e);
        let held = vault
            .insert_key(KeyId::new(format!("vector-{i}")).unwrap(), secret)
            .unwrap();
        assert_eq!(held, public);
    }
    let clock = Arc::new(ManualClock::new(0));
    let registry = Arc::new(registry(&v, store.clone(), clock.clone()));
    let gate: SharedBackend = Arc::new(TotpGate::new(Arc::new(vault), registry.clone()));
    let final_guard = v["guards"][1]["record"].as_str().unwrap();
    for (i, e) in keys.iter().enumerate() {
        let (_, public) = vector_key(e);
        assert!(registry.is_key_enrolled(&public).wait().unwrap());
        let signer = KeySigner::pin(
            gate.clone(),
            KeyRef::Stored(KeyId::new(format!("vector-{i}")).unwrap()),
        )
        .wait()
        .unwrap();
        let digest = Digest32([0x5a; 32]);
        assert!(matches!(
            signer
                .sign(digest, Intent::raw_digest(), &Authorization::none())
                .wait(),
            Err(CoreError::Denied(Denial::TotpRequired))
        ));
        let mut last = None;
        for c in e["codes"].as_array().unwrap() {
            clock.set(c["time"].as_u64().unwrap());
            let code = c["code"].as_str().unwrap();
            let step = c["step"].as_u64().unwrap();
            let sig = signer
                .sign(digest, Intent::raw_digest(), &Authorization::totp(code))
                .wait()
                .unwrap();
            assert_eq!(&sig.recover(&digest).unwrap(), &public);
            assert_eq!(
                registry
                    .verify_key(&public, Some(&OneTimeCode::new(code)))
                    .wait()
                    .unwrap(),
                Verification::Replayed
            );
            last = Some(step);
        }
        // The guard the registry wrote is byte for byte the generator's.
        assert_eq!(last, v["guards"][1]["lastStep"].as_u64());
        let guard = store
            .get(e["guardKey"].as_str().unwrap())
            .wait()
            .unwrap()
            .unwrap();
        assert_eq!(std::str::from_utf8(&guard.value).unwrap(), final_guard);
    }
}

#[test]
fn key_enrolment_writes_the_keys_the_spec_gives() {
    let v = vectors();
    let e = &v["keyEnrolments"][0];
    let (_, public) = vector_key(e);
    let store = Arc::new(MemoryStore::new());
    let reg = registry(&v, store.clone(), Arc::new(ManualClock::new(59)));
    let enrolment = reg
        .enrol_key(e["label"].as_str().unwrap(), &public, EnrolMode::New)
        .wait()
        .unwrap();
    assert_eq!(
        &*store
            .get(v["scheme"]["key"].as_str().unwrap())
            .wait()
            .unwrap()
            .unwrap()
            .value,
        v["scheme"]["record"].as_str().unwrap().as_bytes()
    );
    let record = store
        .get(e["recordKey"].as_str().unwrap())
        .wait()
        .unwrap()
        .unwrap();
    let json: Value = serde_json::from_slice(&record.value).unwrap();
    let mut fields: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    let mut expected = vec![
        "v",
        "label",
        "issuer",
        "algorithm",
        "digits",
        "period",
        "publicKey",
        "envelope",
        "enrolledAt",
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected);
    assert_eq!(json["publicKey"], e["publicKey"]);
    assert_eq!(json["label"], e["label"]);
    assert_eq!(json["v"], 1);
    assert_eq!(json["enrolledAt"], 59);
    // No guard until the first check, no ancestor counters for a key.
    assert!(
        store
            .get(e["guardKey"].as_str().unwrap())
            .wait()
            .unwrap()
            .is_none()
    );
    let code = enrolment
        .params()
        .code_at(enrolment.uri().expose_secret(), 59)
        .unwrap();
    assert!(
        reg.verify_key(&public, Some(&OneTimeCode::new(code.expose_str())))
            .wait()
            .unwrap()
            .is_accepted()
    );
    assert!(
        store
            .get(e["guardKey"].as_str().unwrap())
            .wait()
            .unwrap()
            .is_some()
    );
    for key in v["enrolments"][0]["ancestorKeys"].as_array().unwrap() {
        assert!(store.get(key.as_str().unwrap()).wait().unwrap().is_none());
    }
}

#[test]
fn edited_key_records_no_longer_open() {
    // The public key and the parameters are bound into the envelope's
    // context: a key record whose digits were edited fails closed.
    let v = vectors();
    let e = &v["keyEnrolments"][0];
    let (_, public) = vector_key(e);
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
    put(&store, e["recordKey"].as_str().unwrap(), &edited);
    let reg = registry(&v, store, Arc::new(ManualClock::new(59)));
    assert!(matches!(
        reg.verify_key(&public, Some(&OneTimeCode::new("287082")))
            .wait(),
        Err(custody_totp::Error::Core(
            custody_core::Error::DecryptionFailed
        ))
    ));
}
