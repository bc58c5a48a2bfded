//! EIP-191 personal messages and EIP-712 typed data: the public vectors
//! (ethers, viem/ox, the EIP's own Mail example), signed through the vault,
//! and one test per rejection rule of the typed-data reader.
#![cfg(test)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use common::*;
use custody_core::Authorization as Consent;
use custody_eth::{
    Error, MessageSignature, PersonalMessage, TypedData, keccak256, personal_message_hash,
};
use serde_json::{Value, json};

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} missing"))
}

// ---------------------------------------------------------------- EIP-191

#[test]
fn eip191_hash_vectors() {
    let v = load_json("eip191/eip191_personal_message_hash.json");
    let mut n = 0;
    for case in v["vectors"].as_array().unwrap() {
        let message = unhex(s(case, "message_hex"));
        let preimage = unhex(s(case, "prefixed_preimage_hex"));
        assert_eq!(keccak256(&preimage), hex32(s(case, "hash")));
        assert_eq!(
            personal_message_hash(&message).0,
            hex32(s(case, "hash")),
            "{}",
            s(case, "name")
        );
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn eip191_personal_sign_vectors() {
    let v = load_json("eip191/eip191_personal_sign_vectors.json");
    let mut n = 0;
    for case in v["vectors"].as_array().unwrap() {
        let name = s(case, "name");
        let signer = signer_for(s(case, "privateKey"));
        assert_eq!(signer.address(), address(&case["address"]), "{name}");
        let message = PersonalMessage::from_bytes(unhex(s(case, "message_hex")));
        if let Some(text) = case.get("message_utf8") {
            assert_eq!(
                PersonalMessage::from_text(text.as_str().unwrap()),
                message,
                "{name}"
            );
        }
        assert_eq!(message.signing_hash().0, hex32(s(case, "messageHash")));
        let sig = signer
            .sign_personal_message(&message, &Consent::none())
            .wait()
            .unwrap();
        // RFC 6979: the same key and digest give the same signature.
        assert_eq!(
            sig.to_bytes().to_vec(),
            unhex(s(case, "signature")),
            "{name}"
        );
        assert_eq!(
            u64::from(sig.v()),
            case["signature_v"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(sig.to_string(), s(case, "signature"));
        // And it verifies, from its bytes, against the address.
        let parsed = MessageSignature::from_bytes(&unhex(s(case, "signature"))).unwrap();
        assert_eq!(parsed, sig);
        assert_eq!(message.recover_signer(&parsed).unwrap(), signer.address());
        n += 1;
    }
    assert_eq!(n, 4);
}

// ---------------------------------------------------------------- EIP-712

/// An ethers typed-data case as the object `eth_signTypedData_v4` takes.
fn v4(case: &Value) -> Value {
    json!({
        "types": case["types"],
        "primaryType": case["primaryType"],
        "domain": case["domain"],
        "message": case["data"],
    })
}

#[test]
fn eip712_ethers_vectors() {
    let cases = load_json("eip712/ethers_typed-data.json");
    let mut n = 0;
    let mut signed = 0;
    for case in cases.as_array().unwrap() {
        let name = s(case, "name");
        let td = TypedData::from_json_value(&v4(case)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            td.encoded_message(),
            unhex(s(case, "encoded")).as_slice(),
            "{name}: encodeData"
        );
        assert_eq!(
            td.signing_hash().0,
            hex32(s(case, "digest")),
            "{name}: digest"
        );
        assert_eq!(td.struct_hash(), keccak256(td.encoded_message()));
        // The output form reads back to the same digest, and so does the
        // typed data sent as a JSON string (as RPC parameters often are).
        let back = TypedData::from_json_value(&td.to_json()).unwrap();
        assert_eq!(back.signing_hash(), td.signing_hash(), "{name}");
        let text = serde_json::to_string(&v4(case)).unwrap();
        assert_eq!(
            TypedData::from_json_value(&Value::String(text.clone()))
                .unwrap()
                .signing_hash(),
            td.signing_hash()
        );
        assert_eq!(
            TypedData::from_json_str(&text).unwrap().signing_hash(),
            td.signing_hash()
        );
        if let Some(key) = case.get("privateKey") {
            let signer = signer_for(key.as_str().unwrap());
            let sig = signer
                .sign_typed_data(&td, &Consent::none())
                .wait()
                .unwrap();
            assert_eq!(
                sig.to_bytes().to_vec(),
                unhex(s(case, "signature")),
                "{name}"
            );
            assert_eq!(td.recover_signer(&sig).unwrap(), signer.address());
            signed += 1;
        }
        n += 1;
    }
    assert_eq!((n, signed), (130, 1));
}

#[test]
fn eip712_mail_example() {
    let v = load_json("eip712/eip712_mail.json");
    let e = &v["expected"];
    let td = TypedData::from_json_value(&v["typedData"]).unwrap();
    assert_eq!(td.primary_type(), "Mail");
    assert_eq!(td.encode_type(), s(e, "encodeType_Mail"));
    assert_eq!(
        keccak256(td.encode_type().as_bytes()),
        hex32(s(e, "typeHash_Mail"))
    );
    assert_eq!(
        td.encoded_message(),
        unhex(s(e, "encodeData_Mail")).as_slice()
    );
    assert_eq!(td.struct_hash(), hex32(s(e, "hashStruct_Mail")));
    assert_eq!(td.domain_separator(), hex32(s(e, "domainSeparator")));
    assert_eq!(td.domain().separator(), td.domain_separator());
    assert_eq!(
        td.domain().encode_type(),
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    );
    assert_eq!(td.signing_hash().0, hex32(s(e, "digest")));
    // The private key is keccak256("cow"), as the EIP's example derives it.
    assert_eq!(keccak256(b"cow"), hex32(s(e, "signer_private_key")));
    let signer = signer_for(s(e, "signer_private_key"));
    assert_eq!(signer.address(), address(&e["signer_address"]));
    let sig = signer
        .sign_typed_data(&td, &Consent::none())
        .wait()
        .unwrap();
    let expected = &e["signature"];
    assert_eq!(u64::from(sig.v()), expected["v"].as_u64().unwrap());
    assert_eq!(sig.signature().r(), &hex32(s(expected, "r")));
    assert_eq!(sig.signature().s(), &hex32(s(expected, "s")));
    // The same typed data without `EIP712Domain` in `types` (inferred from
    // the domain object) gives the same digest.
    let mut inferred = v["typedData"].clone();
    inferred["types"]
        .as_object_mut()
        .unwrap()
        .remove("EIP712Domain");
    assert_eq!(
        TypedData::from_json_value(&inferred)
            .unwrap()
            .signing_hash(),
        td.signing_hash()
    );
}

/// The Mail example's typed data, to break.
fn mail() -> Value {
    load_json("eip712/eip712_mail.json")["typedData"].clone()
}

fn reject(v: &Value) -> (&'static str, &'static str) {
    match TypedData::from_json_value(v) {
        Err(Error::TypedData { what, reason }) => (what, reason),
        other => panic!("expected a typed-data error, got {other:?}"),
    }
}

#[test]
fn eip712_rejects_malformed_types() {
    let mut cyclic = mail();
    cyclic["types"]["Person"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "boss", "type": "Mail"}));
    assert_eq!(reject(&cyclic), ("types", "cyclic type"));
    let mut self_ref = mail();
    self_ref["types"]["Person"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "friends", "type": "Person[]"}));
    assert_eq!(reject(&self_ref), ("types", "cyclic type"));
    let mut undefined = mail();
    undefined["types"]["Mail"][0]["type"] = json!("Persona");
    assert_eq!(reject(&undefined), ("types", "undefined type"));
    let mut unused = mail();
    unused["types"]["Unused"] = json!([{"name": "x", "type": "uint8"}]);
    assert_eq!(
        reject(&unused),
        ("types", "a type is not used by primaryType")
    );
    for bad in [
        "uint",
        "uint7",
        "bytes33",
        "Person[0]",
        "Person[",
        "int264",
        "uint08",
        "string[01]",
    ] {
        let mut v = mail();
        v["types"]["Mail"][2]["type"] = json!(bad);
        assert_eq!(reject(&v).0, "types", "{bad}");
    }
    for bad in ["to from", "a,b", "x)", "", "1x"] {
        let mut v = mail();
        v["types"]["Mail"][1]["name"] = json!(bad);
        assert_eq!(reject(&v), ("types", "malformed member name"), "{bad:?}");
    }
    let mut dup = mail();
    dup["types"]["Mail"][1]["name"] = json!("from");
    assert_eq!(reject(&dup), ("types", "duplicate member name"));
    let mut extra_key = mail();
    extra_key["types"]["Mail"][0]["note"] = json!("x");
    assert_eq!(reject(&extra_key).0, "types");
    let mut atomic_name = mail();
    atomic_name["types"]["uint256"] = json!([]);
    assert_eq!(reject(&atomic_name).0, "types");
    let mut bad_struct_name = mail();
    let person = bad_struct_name["types"]["Person"].clone();
    bad_struct_name["types"]["Per son"] = person;
    assert_eq!(reject(&bad_struct_name).0, "types");
    // primaryType.
    let mut p = mail();
    p["primaryType"] = json!("Letter");
    assert_eq!(reject(&p), ("primaryType", "undefined type"));
    p["primaryType"] = json!("EIP712Domain");
    assert_eq!(reject(&p).0, "primaryType");
    // Depth: a chain of structs deeper than the limit.
    let mut types = serde_json::Map::new();
    for i in 0..70 {
        types.insert(
            format!("S{i}"),
            json!([{"name": "next", "type": format!("S{}", i + 1)}]),
        );
    }
    types.insert("S70".into(), json!([{"name": "x", "type": "bool"}]));
    let deep = json!({"types": types, "primaryType": "S0", "domain": {}, "message": {}});
    assert_eq!(reject(&deep), ("types", "nested too deeply"));
    // Missing top-level parts, and extra ones.
    for part in ["types", "primaryType", "domain", "message"] {
        let mut v = mail();
        v.as_object_mut().unwrap().remove(part);
        assert_eq!(reject(&v), (part, "missing"));
    }
    let mut v = mail();
    v["data"] = json!({});
    assert_eq!(reject(&v).0, "typedData");
}

#[test]
fn eip712_rejects_malformed_domains() {
    let mut wrong_order = mail();
    wrong_order["types"]["EIP712Domain"] = json!([
        {"name": "version", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"}
    ]);
    assert_eq!(reject(&wrong_order).0, "types");
    let mut wrong_type = mail();
    wrong_type["types"]["EIP712Domain"][2]["type"] = json!("uint64");
    assert_eq!(reject(&wrong_type).0, "types");
    let mut undeclared = mail();
    undeclared["domain"]["salt"] = json!(format!("0x{}", "00".repeat(32)));
    assert_eq!(
        reject(&undeclared),
        ("domain", "a field EIP712Domain does not declare")
    );
    let mut missing = mail();
    missing["domain"].as_object_mut().unwrap().remove("version");
    assert_eq!(
        reject(&missing),
        ("domain", "missing a field EIP712Domain declares")
    );
    let mut unknown = mail();
    unknown["domain"]["chain"] = json!(1);
    assert_eq!(reject(&unknown).0, "domain");
    let mut bad_chain = mail();
    bad_chain["domain"]["chainId"] = json!("-1");
    assert_eq!(reject(&bad_chain).0, "domain");
    let mut bad_contract = mail();
    bad_contract["domain"]["verifyingContract"] = json!("0x1234");
    assert_eq!(reject(&bad_contract).0, "domain");
    let mut bad_salt = mail();
    bad_salt["types"]
        .as_object_mut()
        .unwrap()
        .remove("EIP712Domain");
    bad_salt["domain"]["salt"] = json!("0x01");
    assert_eq!(reject(&bad_salt).0, "domain");
    // Any subset, in order, is fine; the empty domain too.
    let mut empty = mail();
    empty["types"]
        .as_object_mut()
        .unwrap()
        .remove("EIP712Domain");
    empty["domain"] = json!({});
    let td = TypedData::from_json_value(&empty).unwrap();
    assert_eq!(td.domain().encode_type(), "EIP712Domain()");
    assert_eq!(
        td.domain_separator(),
        keccak256(&keccak256(b"EIP712Domain()"))
    );
}

#[test]
fn eip712_rejects_bad_values() {
    let mut missing = mail();
    missing["message"]["from"]
        .as_object_mut()
        .unwrap()
        .remove("wallet");
    assert_eq!(reject(&missing), ("message", "missing a field of its type"));
    // A field the type does not declare: viem ignores it, a wallet would
    // show it, and the signature would not cover it.
    let mut extra = mail();
    extra["message"]["amount"] = json!("1000000");
    assert_eq!(
        reject(&extra),
        ("message", "a field its type does not declare")
    );
    let mut nested_extra = mail();
    nested_extra["message"]["to"]["note"] = json!("x");
    assert_eq!(
        reject(&nested_extra),
        ("message", "a field its type does not declare")
    );
    let mut not_object = mail();
    not_object["message"]["to"] = json!("Bob");
    assert_eq!(reject(&not_object).0, "message");
    let mut bad_address = mail();
    bad_address["message"]["to"]["wallet"] = json!("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbb");
    assert_eq!(reject(&bad_address).0, "message");
    let mut not_string = mail();
    not_string["message"]["contents"] = json!(5);
    assert_eq!(reject(&not_string), ("message", "expected a string"));

    // Atomic values, one type at a time.
    let one = |ty: &str, value: Value| {
        json!({
            "types": {"T": [{"name": "v", "type": ty}]},
            "primaryType": "T",
            "domain": {},
            "message": {"v": value}
        })
    };
    let ok = |ty: &str, value: Value| TypedData::from_json_value(&one(ty, value)).is_ok();
    assert!(ok("uint8", json!(255)));
    assert!(ok("uint8", json!("255")));
    assert!(ok("uint8", json!("0xff")));
    assert!(!ok("uint8", json!(256)));
    assert!(!ok("uint8", json!("0x100")));
    assert!(!ok("uint8", json!(-1)));
    assert!(!ok("uint8", json!("-1")));
    assert!(ok("int8", json!(-128)));
    assert!(ok("int8", json!("-0x80")));
    assert!(!ok("int8", json!(-129)));
    assert!(!ok("int8", json!(128)));
    assert!(ok("uint256", json!(format!("0x{}", "f".repeat(64)))));
    assert!(!ok("uint256", json!(format!("0x1{}", "0".repeat(64)))));
    assert!(!ok("uint64", json!(9_007_199_254_740_992u64)));
    assert!(ok("uint64", json!("9007199254740992")));
    assert!(!ok("uint64", json!(1.5)));
    assert!(!ok("uint64", json!(true)));
    assert!(ok("bool", json!(false)));
    assert!(!ok("bool", json!("true")));
    assert!(!ok("bool", json!(1)));
    assert!(ok("bytes4", json!("0x01020304")));
    assert!(!ok("bytes4", json!("0x010203")));
    assert!(!ok("bytes4", json!("0x0102030405")));
    assert!(ok("bytes", json!("0x")));
    assert!(!ok("bytes", json!("0x1")));
    assert!(!ok("bytes", json!("hello")));
    assert!(ok("uint8[2]", json!([1, 2])));
    assert!(!ok("uint8[2]", json!([1])));
    assert!(!ok("uint8[2]", json!([1, 2, 3])));
    assert!(ok("uint8[][2]", json!([[], [1, 2, 3]])));
    assert!(!ok("uint8[][2]", json!([1, 2])));
    assert!(!ok("uint8[]", json!({})));
    assert!(!ok("string", Value::Null));
    // The same value written three ways hashes the same.
    let h = |v: Value| {
        TypedData::from_json_value(&one("int32", v))
            .unwrap()
            .signing_hash()
    };
    assert_eq!(h(json!(-5)), h(json!("-5")));
    assert_eq!(h(json!(-5)), h(json!("-0x5")));
    assert_ne!(h(json!(-5)), h(json!(5)));
}

#[test]
fn typed_data_text_rejects_duplicate_keys() {
    let text = serde_json::to_string(&mail()).unwrap();
    assert!(TypedData::from_json_str(&text).is_ok());
    let dup = text.replacen(
        "\"contents\":\"Hello, Bob!\"",
        "\"contents\":\"Hello, Bob!\",\"contents\":\"Pay Eve\"",
        1,
    );
    assert_ne!(dup, text);
    assert!(matches!(
        TypedData::from_json_str(&dup),
        Err(Error::DuplicateKey { .. })
    ));
    let back: TypedData = serde_json::from_str(&text).unwrap();
    assert_eq!(
        back.signing_hash(),
        TypedData::from_json_value(&mail()).unwrap().signing_hash()
    );
    assert!(serde_json::from_str::<TypedData>(&dup).is_err());
}

#[test]
fn densely_wired_types_cost_what_the_message_needs() {
    // 48 layers of 48 structs, each struct using every struct of the next
    // layer: about 110 000 members, 3 MB of JSON. Hashing every declared
    // type's `encodeType` up front would build and hash gigabytes of text;
    // type hashes are made only for the values the message holds, so an
    // empty message fails at once.
    const LAYERS: usize = 48;
    const WIDTH: usize = 48;
    let mut types = serde_json::Map::new();
    for layer in 0..LAYERS {
        for i in 0..WIDTH {
            let members: Vec<Value> = if layer + 1 == LAYERS {
                vec![json!({"name": "b", "type": "bool"})]
            } else {
                (0..WIDTH)
                    .map(
                        |j| json!({"name": format!("m{j}"), "type": format!("L{}x{j}", layer + 1)}),
                    )
                    .collect()
            };
            types.insert(format!("L{layer}x{i}"), Value::Array(members));
        }
    }
    // One root using the whole first layer, so every type is used.
    types.insert(
        "Root".into(),
        Value::Array(
            (0..WIDTH)
                .map(|j| json!({"name": format!("m{j}"), "type": format!("L0x{j}[]")}))
                .collect(),
        ),
    );
    let mut message = serde_json::Map::new();
    for j in 0..WIDTH {
        message.insert(format!("m{j}"), json!([]));
    }
    let v = json!({"types": types, "primaryType": "Root", "domain": {}, "message": message});
    let started = std::time::Instant::now();
    // Empty arrays: a valid message that instantiates no struct below Root.
    let td = TypedData::from_json_value(&v).unwrap();
    assert!(td.encode_type().starts_with("Root(L0x0[] m0,"));
    let mut bad = v.clone();
    bad["message"] = json!({});
    assert_eq!(reject(&bad), ("message", "missing a field of its type"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
