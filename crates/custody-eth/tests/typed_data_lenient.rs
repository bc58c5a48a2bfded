//! EIP-712 payloads with fields their types do not declare: refused by
//! default, and with the explicit lenient parse hashed as MetaMask, ethers,
//! viem and eth-account hash them, every ignored field reported by its path
//! and written to the audit record. The oracle is eth-account: its signature
//! over a Seaport listing in OpenSea's API shape is committed
//! (`vectors/eip712/seaport_opensea_listing.json`, made by the script beside
//! it), and with `CUSTODY_TEST_PYTHON` set (as `.ci/run` sets it, to a
//! Python with eth-account) the script runs again here and the two must
//! agree with this crate.
#![cfg(test)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use custody_core::{
    Audited, Authorization as Consent, KeyId, KeyRef, KeySigner, MemoryAuditLog, SharedBackend,
};
use custody_eth::{Error, EthSigner, TypedData};
use serde_json::{Value, json};

fn vector() -> Value {
    load_json("eip712/seaport_opensea_listing.json")
}

/// Signs `typed` with `key` and returns the 65-byte signature as 0x-hex.
fn sign_hex(key: &str, typed: &TypedData) -> String {
    let sig = signer_for(key)
        .sign_typed_data(typed, &Consent::none())
        .wait()
        .unwrap();
    format!("0x{}", hex::encode(sig.to_bytes()))
}

fn check_against(oracle: &Value) {
    let typed_json = &oracle["typedData"];
    let typed = TypedData::from_json_value_lenient(typed_json).unwrap();
    assert_eq!(
        format!("0x{}", hex::encode(typed.signing_hash().0)),
        oracle["digest"].as_str().unwrap(),
        "digest"
    );
    let key = oracle["privateKey"].as_str().unwrap();
    assert_eq!(
        signer_for(key).address().to_checksum(),
        oracle["address"].as_str().unwrap()
    );
    assert_eq!(sign_hex(key, &typed), oracle["signature"].as_str().unwrap());
    let expected: Vec<String> = serde_json::from_value(oracle["ignoredFields"].clone()).unwrap();
    assert_eq!(typed.ignored_fields(), expected.as_slice());
}

#[test]
fn seaport_order_from_opensea_is_refused_by_default() {
    let v = vector();
    match TypedData::from_json_value(&v["typedData"]) {
        Err(Error::TypedData { what, reason }) => {
            assert_eq!(
                (what, reason),
                ("message", "a field its type does not declare")
            );
        }
        other => panic!("expected the undeclared field to be refused, got {other:?}"),
    }
}

#[test]
fn lenient_parse_signs_a_seaport_order_as_eth_account_does() {
    check_against(&vector());
}

#[test]
fn lenient_digest_is_the_strict_digest_without_the_ignored_field() {
    let v = vector();
    let lenient = TypedData::from_json_value_lenient(&v["typedData"]).unwrap();
    let mut declared = v["typedData"].clone();
    declared["message"]
        .as_object_mut()
        .unwrap()
        .remove("totalOriginalConsiderationItems")
        .unwrap();
    let strict = TypedData::from_json_value(&declared).unwrap();
    assert_eq!(lenient.signing_hash(), strict.signing_hash());
    assert!(strict.ignored_fields().is_empty());
    // The same data read leniently without extras ignores nothing.
    let clean = TypedData::from_json_value_lenient(&declared).unwrap();
    assert!(clean.ignored_fields().is_empty());
    assert_eq!(clean.signing_hash(), strict.signing_hash());
}

#[test]
fn eth_account_live_agrees_when_python_is_given() {
    let Some(python) = std::env::var_os("CUSTODY_TEST_PYTHON") else {
        println!("skipped: CUSTODY_TEST_PYTHON is not set (a Python with eth-account)");
        return;
    };
    let script = vector_path("eip712/seaport_opensea_listing.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .output()
        .expect("run the eth-account script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(live["source"].as_str().unwrap().starts_with("eth-account "));
    check_against(&live);
    // And the committed vector is what eth-account makes today.
    let committed = vector();
    for field in ["typedData", "digest", "signature", "address"] {
        assert_eq!(live[field], committed[field], "{field}");
    }
}

#[test]
fn nested_and_oddly_named_ignored_fields_are_reported_by_path() {
    let mut v = vector()["typedData"].clone();
    let message = v["message"].as_object_mut().unwrap();
    message.insert("odd key.with\"quote".into(), json!(1));
    message["offer"][0]
        .as_object_mut()
        .unwrap()
        .insert("note".into(), json!("not signed"));
    message["consideration"][2]
        .as_object_mut()
        .unwrap()
        .insert("_marketplace".into(), json!({"fee": 1}));
    let typed = TypedData::from_json_value_lenient(&v).unwrap();
    assert_eq!(
        typed.ignored_fields(),
        [
            "message.offer[0].note",
            "message.consideration[2]._marketplace",
            r#"message["odd key.with\"quote"]"#,
            "message.totalOriginalConsiderationItems",
        ]
    );
    // None of them changes the digest.
    let expected = TypedData::from_json_value_lenient(&vector()["typedData"]).unwrap();
    assert_eq!(typed.signing_hash(), expected.signing_hash());
}

#[test]
fn lenient_parse_keeps_every_other_rule() {
    let v = vector()["typedData"].clone();
    // A declared field still missing.
    let mut missing = v.clone();
    missing["message"].as_object_mut().unwrap().remove("salt");
    assert!(matches!(
        TypedData::from_json_value_lenient(&missing),
        Err(Error::TypedData {
            what: "message",
            reason: "missing a field of its type"
        })
    ));
    // The domain stays strict: wallets disagree on undeclared domain fields.
    let mut domain = v.clone();
    domain["domain"]
        .as_object_mut()
        .unwrap()
        .insert("salt".into(), json!(format!("0x{}", "00".repeat(32))));
    assert!(matches!(
        TypedData::from_json_value_lenient(&domain),
        Err(Error::TypedData { what: "domain", .. })
    ));
    // A value out of range for its type.
    let mut range = v;
    range["message"]["orderType"] = json!(256);
    assert!(matches!(
        TypedData::from_json_value_lenient(&range),
        Err(Error::TypedData {
            what: "message",
            ..
        })
    ));
}

#[test]
fn ignored_fields_land_in_the_audit_record() {
    let v = vector();
    let key = v["privateKey"].as_str().unwrap();
    let log = Arc::new(MemoryAuditLog::new());
    let audited: SharedBackend = Arc::new(Audited::new(vault_backend(key), log.clone()));
    let signer = EthSigner::new(
        KeySigner::pin(audited, KeyRef::Stored(KeyId::new("test").unwrap()))
            .wait()
            .unwrap(),
    )
    .unwrap();
    let lenient = TypedData::from_json_value_lenient(&v["typedData"]).unwrap();
    signer
        .sign_typed_data(&lenient, &Consent::none())
        .wait()
        .unwrap();
    let records = log.drain();
    let sign = records.last().unwrap().event();
    assert_eq!(sign.field("intent"), Some("typed-data"));
    assert_eq!(
        sign.field("ignored-fields"),
        Some(r#"["message.totalOriginalConsiderationItems"]"#)
    );
    // A strict parse (nothing ignored) writes no such field.
    let mut declared = v["typedData"].clone();
    declared["message"]
        .as_object_mut()
        .unwrap()
        .remove("totalOriginalConsiderationItems");
    let strict = TypedData::from_json_value(&declared).unwrap();
    signer
        .sign_typed_data(&strict, &Consent::none())
        .wait()
        .unwrap();
    let records = log.drain();
    assert_eq!(
        records.last().unwrap().event().field("ignored-fields"),
        None
    );
}
