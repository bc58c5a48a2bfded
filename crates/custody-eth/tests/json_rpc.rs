//! The JSON-RPC transaction object: public vectors read through it (ethers,
//! ox, alloy), the output form read back, and one test per malformation,
//! each checking that the error names its field.
#![cfg(test)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use common::*;
use custody_core::Authorization as Consent;
use custody_eth::{Error, SignedTransaction, Transaction, TxEip1559, TxType, U256, decode_signed};
use serde_json::{Value, json};

/// The fields each ethers signed form carries, by JSON-RPC name.
fn form_fields(form: &str) -> (Option<&'static str>, &'static [&'static str]) {
    const BASE: [&str; 6] = ["nonce", "gasLimit", "to", "value", "data", "gasPrice"];
    match form {
        "Legacy" => (None, &BASE),
        "Eip155" => (
            None,
            &[
                "nonce", "gasLimit", "to", "value", "data", "gasPrice", "chainId",
            ],
        ),
        "Berlin" => (
            Some("0x1"),
            &[
                "nonce",
                "gasLimit",
                "to",
                "value",
                "data",
                "gasPrice",
                "chainId",
                "accessList",
            ],
        ),
        "London" => (
            Some("0x2"),
            &[
                "nonce",
                "gasLimit",
                "to",
                "value",
                "data",
                "chainId",
                "accessList",
                "maxFeePerGas",
                "maxPriorityFeePerGas",
            ],
        ),
        "Cancun" => (
            Some("0x3"),
            &[
                "nonce",
                "gasLimit",
                "to",
                "value",
                "data",
                "chainId",
                "accessList",
                "maxFeePerGas",
                "maxPriorityFeePerGas",
                "maxFeePerBlobGas",
                "blobVersionedHashes",
            ],
        ),
        _ => unreachable!(),
    }
}

/// An ethers `transaction` object restricted to the fields of `form`, as a
/// JSON-RPC object. Every other entry uses `gas`/`input` instead of
/// `gasLimit`/`data`, so both spellings are read.
fn rpc_object(form: &str, t: &Value, alternate: bool) -> Value {
    let (ty, fields) = form_fields(form);
    let mut m = serde_json::Map::new();
    if let Some(ty) = ty {
        m.insert("type".into(), json!(ty));
    }
    for f in fields {
        if let Some(v) = t.get(*f) {
            let key = match (*f, alternate) {
                ("gasLimit", true) => "gas",
                ("data", true) => "input",
                (k, _) => k,
            };
            m.insert(key.into(), v.clone());
        }
    }
    Value::Object(m)
}

#[test]
fn ethers_vectors_read_from_json_rpc_objects() {
    let v = load_json("eth-tx/ethers_transactions_subset_with_hashes.json");
    let mut n = 0;
    for (i, vector) in v["vectors"].as_array().unwrap().iter().enumerate() {
        let t = &vector["transaction"];
        let signer = signer_for(vector["privateKey"].as_str().unwrap());
        for (form, key) in [
            ("Legacy", "signedLegacy"),
            ("Eip155", "signedEip155"),
            ("Berlin", "signedBerlin"),
            ("London", "signedLondon"),
            ("Cancun", "signedCancun"),
        ] {
            let Some(raw) = vector["signed"][key]["raw"].as_str() else {
                continue;
            };
            let raw = unhex(raw);
            let ctx = format!("{}/{form}", vector["name"]);
            let object = rpc_object(form, t, i % 2 == 1);
            let tx = Transaction::from_json_value(&object).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            // The transaction read from JSON is the one ethers signed.
            assert_eq!(&tx, decode_signed(&raw).unwrap().transaction(), "{ctx}");
            let signed = signer
                .sign_transaction(&tx, &Consent::none())
                .wait()
                .unwrap();
            assert_eq!(signed.encoded(), raw.as_slice(), "{ctx}");
            // The text form reads the same.
            let text = serde_json::to_string(&object).unwrap();
            assert_eq!(Transaction::from_json_str(&text).unwrap(), tx, "{ctx}");
            // The output forms read back.
            assert_eq!(
                Transaction::from_json_value(&tx.to_json()).unwrap(),
                tx,
                "{ctx}"
            );
            let out = signed.to_json().unwrap();
            assert_eq!(
                SignedTransaction::from_json_value(&out).unwrap(),
                signed,
                "{ctx}"
            );
            assert_eq!(
                out["hash"],
                json!(format!("0x{}", hex::encode(keccak(&raw))))
            );
            assert_eq!(
                out["from"].as_str().unwrap().to_lowercase(),
                vector["expected_sender"].as_str().unwrap().to_lowercase()
            );
            n += 1;
        }
        // The whole ethers object (every fee field) is not a type 2
        // transaction: `gasPrice` does not belong to it.
        let mut all = t.clone();
        all["type"] = json!("0x2");
        assert!(matches!(
            Transaction::from_json_value(&all),
            Err(Error::FieldNotAllowed {
                field: "blobVersionedHashes" | "gasPrice" | "maxFeePerBlobGas",
                tx_type: TxType::Eip1559
            })
        ));
    }
    assert_eq!(n, 300);
}

fn keccak(b: &[u8]) -> [u8; 32] {
    custody_eth::keccak256(b)
}

#[test]
fn ox_eip7702_objects_read_and_sign() {
    let v = load_json("eth-tx/eip7702_ox_vectors.json");
    let mut read = 0;
    for case in v["transactions"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut object = case["tx"].clone();
        object["type"] = json!("0x4");
        let parsed = Transaction::from_json_value(&object);
        if case["tx"].get("to").is_none_or(Value::is_null) {
            // ox encodes a set-code transaction without `to`; EIP-7702 does not allow it.
            assert!(
                matches!(parsed, Err(Error::MissingTo(TxType::Eip7702))),
                "{name}"
            );
            continue;
        }
        let tx = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(unsigned) = case.get("unsigned_serialized") {
            assert_eq!(
                tx.encode_unsigned(),
                unhex(unsigned.as_str().unwrap()),
                "{name}"
            );
        }
        if let (Some(key), Some(raw)) = (case.get("privateKey"), case.get("signed_serialized")) {
            let signed = signer_for(key.as_str().unwrap())
                .sign_transaction(&tx, &Consent::none())
                .wait()
                .unwrap();
            assert_eq!(signed.encoded(), unhex(raw.as_str().unwrap()), "{name}");
        }
        read += 1;
    }
    assert_eq!(read, 7);
}

#[test]
fn alloy_rpc_response_reads_as_a_signed_transaction() {
    // A node's answer for a real devnet type 4 transaction: `v` and
    // `yParity`, the effective `gasPrice`, block fields, `hash` and `from`.
    let v = load_json("eth-tx/eip7702_alloy_rpc_tx.json");
    let rpc = &v["rpc_transaction"];
    let signed = SignedTransaction::from_json_value(rpc).unwrap();
    assert_eq!(
        signed.encoded(),
        unhex(v["derived"]["raw_signed_tx"].as_str().unwrap())
    );
    assert_eq!(signed.hash().to_vec(), unhex(rpc["hash"].as_str().unwrap()));
    let Transaction::Eip7702(tx) = signed.transaction() else {
        panic!("not type 4");
    };
    // The authorization's parity was given as `v` (alloy's alias).
    assert_eq!(
        tx.authorization_list[0].recover_authority().unwrap(),
        address(&v["derived"]["authorization_authority"])
    );
    // As an unsigned transaction, the answer's extra fields are refused by name.
    assert!(matches!(
        Transaction::from_json_value(rpc),
        Err(Error::FieldNotAllowed {
            field: "blockHash",
            tx_type: TxType::Eip7702
        })
    ));
    // A wrong hash, sender, or effective gas price is caught.
    let mut bad = rpc.clone();
    bad["hash"] = json!(format!("0x{}", "11".repeat(32)));
    assert!(matches!(
        SignedTransaction::from_json_value(&bad),
        Err(Error::Mismatch("hash"))
    ));
    let mut bad = rpc.clone();
    bad["from"] = json!("0x3535353535353535353535353535353535353535");
    assert!(matches!(
        SignedTransaction::from_json_value(&bad),
        Err(Error::Mismatch("from"))
    ));
    let mut bad = rpc.clone();
    bad["gasPrice"] = json!("0xe0789a1");
    assert!(matches!(
        SignedTransaction::from_json_value(&bad),
        Err(Error::Json {
            field: "gasPrice",
            ..
        })
    ));
    let mut bad = rpc.clone();
    bad["v"] = json!("0x0");
    assert!(matches!(
        SignedTransaction::from_json_value(&bad),
        Err(Error::ConflictingFields {
            field: "yParity",
            other: "v"
        })
    ));
    // `v` alone (older nodes) is enough.
    let mut only_v = rpc.clone();
    only_v.as_object_mut().unwrap().remove("yParity");
    assert_eq!(SignedTransaction::from_json_value(&only_v).unwrap(), signed);
    let mut neither = only_v.clone();
    neither.as_object_mut().unwrap().remove("v");
    assert!(matches!(
        SignedTransaction::from_json_value(&neither),
        Err(Error::MissingField {
            field: "yParity",
            ..
        })
    ));
}

#[test]
fn eip155_example_reads_as_a_signed_legacy_transaction() {
    let v = load_json("eth-tx/eip155_example.json");
    let raw = unhex(v["signed_tx"].as_str().unwrap());
    let signed = decode_signed(&raw).unwrap();
    let out = signed.to_json().unwrap();
    assert_eq!(out["v"], json!("0x25"));
    assert_eq!(out["chainId"], json!("0x1"));
    assert!(out.get("yParity").is_none());
    assert_eq!(SignedTransaction::from_json_value(&out).unwrap(), signed);
    // `v` alone carries the chain id.
    let mut no_chain = out.clone();
    no_chain.as_object_mut().unwrap().remove("chainId");
    assert_eq!(
        SignedTransaction::from_json_value(&no_chain).unwrap(),
        signed
    );
    // A chain id that disagrees with `v` is refused.
    let mut other = out.clone();
    other["chainId"] = json!("0x5");
    assert!(matches!(
        SignedTransaction::from_json_value(&other),
        Err(Error::Mismatch("chainId"))
    ));
    let mut bad_v = out.clone();
    bad_v["v"] = json!("0x1");
    assert!(matches!(
        SignedTransaction::from_json_value(&bad_v),
        Err(Error::InvalidV)
    ));
}

/// A valid type 2 object to break, one field at a time.
fn type2() -> Value {
    json!({
        "type": "0x2",
        "chainId": "0x1",
        "nonce": "0x7",
        "gas": "0x5208",
        "maxFeePerGas": "0xba43b7400",
        "maxPriorityFeePerGas": "0x77359400",
        "to": "0x3535353535353535353535353535353535353535",
        "value": "1000000000000000000",
        "input": "0xabcdef",
        "accessList": [{
            "address": "0x0000000000000000000000000000000000000001",
            "storageKeys": [format!("0x{}", "00".repeat(32))]
        }]
    })
}

/// The smallest valid object of each type.
fn minimal(ty: &str) -> Value {
    let mut v = json!({"nonce": "0x0", "gas": "0x0", "chainId": "0x1"});
    let fee = |v: &mut Value| {
        v["maxFeePerGas"] = json!("0x0");
        v["maxPriorityFeePerGas"] = json!("0x0");
        v["to"] = json!("0x0000000000000000000000000000000000000003");
    };
    match ty {
        "0x0" | "0x1" => v["gasPrice"] = json!("0x0"),
        "0x2" => fee(&mut v),
        "0x3" => {
            fee(&mut v);
            v["maxFeePerBlobGas"] = json!("0x0");
            v["blobVersionedHashes"] = json!([]);
        }
        "0x4" => {
            fee(&mut v);
            v["authorizationList"] = json!([]);
        }
        _ => unreachable!(),
    }
    v["type"] = json!(ty);
    v
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn read(v: &Value) -> Result<Transaction, Error> {
    Transaction::from_json_value(v)
}

#[test]
fn type2_reads_and_quantities_take_every_form() {
    let tx = read(&type2()).unwrap();
    let Transaction::Eip1559(t) = &tx else {
        panic!("not type 2")
    };
    assert_eq!(t.nonce, 7);
    assert_eq!(t.gas_limit, 21_000);
    assert_eq!(t.value, U256::from_u64(10u64.pow(18)));
    assert_eq!(t.data, [0xab, 0xcd, 0xef]);
    // 0x-hex, decimal string and safe JSON number are the same quantity.
    for nonce in [json!("0x7"), json!("7"), json!(7), json!("0x07")] {
        assert_eq!(read(&with(type2(), "nonce", nonce)).unwrap(), tx);
    }
    // `null` is absent: `to: null` creates a contract; value defaults to 0.
    let creation = read(&with(type2(), "to", Value::Null)).unwrap();
    assert_eq!(creation.to(), None);
    assert_eq!(
        read(&without(type2(), "value")).unwrap().value(),
        U256::ZERO
    );
    // `gasLimit` is `gas` under another name.
    let renamed = with(without(type2(), "gas"), "gasLimit", json!(21_000));
    assert_eq!(read(&renamed).unwrap(), tx);
    assert!(matches!(
        read(&with(type2(), "gasLimit", json!("0x5209"))),
        Err(Error::ConflictingFields {
            field: "gas",
            other: "gasLimit"
        })
    ));
    assert_eq!(
        read(&with(type2(), "gasLimit", json!("21000"))).unwrap(),
        tx
    );
}

#[test]
fn each_malformation_names_its_field() {
    let missing = read(&without(type2(), "maxFeePerGas")).unwrap_err();
    assert!(matches!(
        missing,
        Error::MissingField {
            field: "maxFeePerGas",
            tx_type: TxType::Eip1559
        }
    ));
    assert_eq!(
        missing.to_string(),
        "maxFeePerGas: missing for a type 0x2 transaction"
    );
    for field in ["nonce", "gas", "chainId", "maxPriorityFeePerGas"] {
        assert!(
            matches!(read(&without(type2(), field)), Err(Error::MissingField { field: f, .. }) if f == field),
            "{field}"
        );
    }
    let two_pow_256 =
        "115792089237316195423570985008687907853269984665640564039457584007913129639936";
    assert!(matches!(
        read(&with(type2(), "value", json!(two_pow_256))),
        Err(Error::Overflow("value"))
    ));
    assert!(matches!(
        read(&with(
            type2(),
            "maxFeePerGas",
            json!(format!("0x1{}", "0".repeat(64)))
        )),
        Err(Error::Overflow("maxFeePerGas"))
    ));
    assert!(matches!(
        read(&with(type2(), "nonce", json!("0x10000000000000000"))),
        Err(Error::Overflow("nonce"))
    ));
    assert!(matches!(
        read(&with(type2(), "input", json!("0xabcdeg"))),
        Err(Error::Json {
            field: "input",
            reason: "not a hex digit"
        })
    ));
    assert!(matches!(
        read(&with(without(type2(), "input"), "data", json!("0xabc"))),
        Err(Error::Json {
            field: "data",
            reason: "odd number of hex digits"
        })
    ));
    assert!(matches!(
        read(&with(type2(), "input", json!("abcd"))),
        Err(Error::Json {
            field: "input",
            reason: "missing 0x prefix"
        })
    ));
    assert!(matches!(
        read(&with(
            type2(),
            "to",
            json!("0x35353535353535353535353535353535353535")
        )),
        Err(Error::Json { field: "to", .. })
    ));
    assert!(matches!(
        read(&with(
            type2(),
            "to",
            json!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
        )),
        Err(Error::Json { field: "to", .. })
    ));
    // JSON numbers: safe integers only.
    for n in [
        json!(9_007_199_254_740_992u64),
        json!(-1),
        json!(1.5),
        json!(1e20),
    ] {
        assert!(
            matches!(
                read(&with(type2(), "nonce", n.clone())),
                Err(Error::Json { field: "nonce", .. })
            ),
            "{n}"
        );
    }
    assert!(read(&with(type2(), "nonce", json!(9_007_199_254_740_991u64))).is_ok());
    assert!(matches!(
        read(&with(type2(), "value", json!(true))),
        Err(Error::Json { field: "value", .. })
    ));
    // Fields of other types.
    for (ty, field, value) in [
        ("0x2", "gasPrice", json!("0x1")),
        ("0x2", "blobVersionedHashes", json!([])),
        ("0x2", "maxFeePerBlobGas", json!("0x1")),
        ("0x2", "authorizationList", json!([])),
        ("0x1", "maxFeePerGas", json!("0x1")),
        ("0x0", "accessList", json!([])),
        ("0x0", "maxPriorityFeePerGas", json!("0x1")),
        ("0x3", "authorizationList", json!([])),
        ("0x4", "blobVersionedHashes", json!([])),
    ] {
        let valid = minimal(ty);
        assert!(read(&valid).is_ok(), "{ty}");
        let v = with(valid, field, value);
        assert!(
            matches!(read(&v), Err(Error::FieldNotAllowed { field: f, .. }) if f == field),
            "{field} on {ty}: {:?}",
            read(&v)
        );
    }
    let legacy = json!({"nonce": 0, "gas": 21000, "gasPrice": 1, "accessList": []});
    let e = read(&legacy).unwrap_err();
    assert_eq!(
        e.to_string(),
        "accessList: not a field of a type 0x0 transaction"
    );
    // A signed transaction's fields are not part of an unsigned one.
    for field in ["from", "hash", "r", "v", "blockHash"] {
        assert!(
            matches!(read(&with(type2(), field, json!("0x1"))), Err(Error::FieldNotAllowed { field: f, .. }) if f == field),
            "{field}"
        );
    }
    // A key no transaction defines (a misspelling) is never ignored.
    for key in ["Data", "maxFeePerGass", "calldata", ""] {
        assert!(
            matches!(
                read(&with(type2(), key, json!("0x01"))),
                Err(Error::UnknownField {
                    object: "transaction"
                })
            ),
            "{key}"
        );
    }
    // Types.
    assert!(matches!(
        read(&with(type2(), "type", json!("0x5"))),
        Err(Error::UnsupportedType(5))
    ));
    assert!(matches!(
        read(&with(type2(), "type", json!("0x7f"))),
        Err(Error::UnsupportedType(0x7f))
    ));
    assert!(matches!(
        read(&with(type2(), "type", json!("0x102"))),
        Err(Error::Json { field: "type", .. })
    ));
    assert!(matches!(
        read(&with(type2(), "type", json!("two"))),
        Err(Error::Json { field: "type", .. })
    ));
    // Blob and set-code transactions need a `to`.
    let blob = with(
        with(
            with(type2(), "type", json!("0x3")),
            "maxFeePerBlobGas",
            json!("0x1"),
        ),
        "blobVersionedHashes",
        json!([format!("0x01{}", "00".repeat(31))]),
    );
    assert!(read(&blob).is_ok());
    assert!(matches!(
        read(&without(blob.clone(), "to")),
        Err(Error::MissingTo(TxType::Eip4844))
    ));
    assert!(matches!(
        read(&with(blob.clone(), "to", Value::Null)),
        Err(Error::MissingTo(TxType::Eip4844))
    ));
    assert!(matches!(
        read(&without(blob.clone(), "blobVersionedHashes")),
        Err(Error::MissingField {
            field: "blobVersionedHashes",
            tx_type: TxType::Eip4844
        })
    ));
    assert!(matches!(
        read(&with(blob, "blobVersionedHashes", json!(["0x01"]))),
        Err(Error::InvalidLength {
            field: "blobVersionedHashes",
            expected: 32,
            found: 1
        })
    ));
    let setcode = with(
        with(type2(), "type", json!("0x4")),
        "authorizationList",
        json!([]),
    );
    assert!(read(&setcode).is_ok());
    assert!(matches!(
        read(&without(setcode.clone(), "to")),
        Err(Error::MissingTo(TxType::Eip7702))
    ));
    assert!(matches!(
        read(&without(setcode, "authorizationList")),
        Err(Error::MissingField {
            field: "authorizationList",
            tx_type: TxType::Eip7702
        })
    ));
    // Nested objects name their fields too.
    assert!(matches!(
        read(&with(
            type2(),
            "accessList",
            json!([{"address": "0x0000000000000000000000000000000000000001", "storageKeys": ["0x00"]}])
        )),
        Err(Error::InvalidLength {
            field: "accessList.storageKeys",
            ..
        })
    ));
    assert!(matches!(
        read(&with(
            type2(),
            "accessList",
            json!([{"address": "0x0000000000000000000000000000000000000001"}])
        )),
        Err(Error::Json {
            field: "accessList.storageKeys",
            reason: "missing"
        })
    ));
    assert!(matches!(
        read(&with(
            type2(),
            "accessList",
            json!([{"address": "0x0000000000000000000000000000000000000001", "storageKeys": [], "extra": 1}])
        )),
        Err(Error::UnknownField {
            object: "accessList"
        })
    ));
    assert!(matches!(
        read(&with(type2(), "accessList", json!({}))),
        Err(Error::Json {
            field: "accessList",
            ..
        })
    ));
    assert!(matches!(
        read(&json!([1, 2])),
        Err(Error::Json {
            field: "transaction",
            ..
        })
    ));
}

#[test]
fn authorization_list_reads_y_parity_or_v() {
    let auth = json!({
        "chainId": "0x1",
        "address": "0x0000000000000000000000000000000000000002",
        "nonce": "0x3",
        "yParity": "0x1",
        "r": "0x5",
        "s": "0x6"
    });
    let tx = |a: Value| {
        read(&with(
            with(type2(), "type", json!("0x4")),
            "authorizationList",
            json!([a]),
        ))
    };
    let by_parity = tx(auth.clone()).unwrap();
    let by_v = tx(with(without(auth.clone(), "yParity"), "v", json!("0x1"))).unwrap();
    assert_eq!(by_parity, by_v);
    assert_eq!(tx(with(auth.clone(), "v", json!(1))).unwrap(), by_parity);
    assert!(matches!(
        tx(with(auth.clone(), "v", json!("0x0"))),
        Err(Error::ConflictingFields {
            field: "authorizationList.yParity",
            other: "authorizationList.v"
        })
    ));
    assert!(matches!(
        tx(without(auth.clone(), "yParity")),
        Err(Error::Json {
            field: "authorizationList.yParity",
            reason: "missing"
        })
    ));
    assert!(matches!(
        tx(with(auth.clone(), "yParity", json!("0x100"))),
        Err(Error::Overflow("authorizationList.yParity"))
    ));
    assert!(matches!(
        tx(without(auth.clone(), "r")),
        Err(Error::Json {
            field: "authorizationList.r",
            ..
        })
    ));
    assert!(matches!(
        tx(with(auth, "nonce", json!("0x10000000000000000"))),
        Err(Error::Overflow("authorizationList.nonce"))
    ));
}

#[test]
fn text_input_rejects_duplicate_keys_and_bad_syntax() {
    let text = serde_json::to_string(&type2()).unwrap();
    assert!(Transaction::from_json_str(&text).is_ok());
    // The same key twice: one reader would take the first, another the last.
    let dup = text.replacen(
        "\"nonce\":\"0x7\"",
        "\"nonce\":\"0x7\",\"nonce\":\"0x8\"",
        1,
    );
    assert!(matches!(
        Transaction::from_json_str(&dup),
        Err(Error::DuplicateKey { line: 1, .. })
    ));
    assert!(matches!(
        Transaction::from_json_str(&text[..text.len() - 1]),
        Err(Error::JsonSyntax { .. })
    ));
    // Through serde, as a field of a caller's struct.
    #[derive(serde::Deserialize)]
    struct Request {
        tx: Transaction,
    }
    let wrapped = format!("{{\"tx\":{text}}}");
    let r: Request = serde_json::from_str(&wrapped).unwrap();
    assert_eq!(r.tx, read(&type2()).unwrap());
    let wrapped_dup = format!("{{\"tx\":{dup}}}");
    assert!(serde_json::from_str::<Request>(&wrapped_dup).is_err());
    // Errors carry no input: the bad value does not appear in the message.
    let e = read(&with(type2(), "input", json!("0xsecretsecret"))).unwrap_err();
    assert!(!e.to_string().contains("secret"));
}

#[test]
fn output_form_has_the_json_rpc_names() {
    let tx = Transaction::from(TxEip1559 {
        chain_id: 1,
        nonce: 2,
        data: vec![0xde, 0xad],
        ..TxEip1559::default()
    });
    let out = tx.to_json();
    assert_eq!(out["type"], json!("0x2"));
    assert_eq!(out["chainId"], json!("0x1"));
    assert_eq!(out["nonce"], json!("0x2"));
    assert_eq!(out["gas"], json!("0x0"));
    assert_eq!(out["to"], Value::Null);
    assert_eq!(out["input"], json!("0xdead"));
    assert_eq!(out["data"], json!("0xdead"));
    assert_eq!(out["accessList"], json!([]));
    assert!(out.get("gasPrice").is_none());
    assert_eq!(serde_json::to_value(&tx).unwrap(), out);
    let signed = signer_for(&format!("0x{}", "46".repeat(32)))
        .sign_transaction(&tx, &Consent::none())
        .wait()
        .unwrap();
    let out = signed.to_json().unwrap();
    assert_eq!(out["yParity"], out["v"]);
    assert_eq!(
        out["hash"],
        json!(format!("0x{}", hex::encode(signed.hash())))
    );
    let back: SignedTransaction = serde_json::from_value(out).unwrap();
    assert_eq!(back, signed);
}
