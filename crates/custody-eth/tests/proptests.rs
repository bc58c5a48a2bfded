//! Property tests: every transaction type round-trips through its signed
//! encoding and through its JSON-RPC forms, and the decoders (RLP, JSON
//! transactions, EIP-712 typed data) never panic: on random bytes, random
//! JSON, or any truncation, bit flip or field substitution of valid input.
#![cfg(test)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use common::*;
use custody_core::Authorization as Consent;
use custody_core::RecoverableSignature;
use custody_eth::{
    AccessList, AccessListItem, Address, SignedAuthorization, SignedTransaction, Transaction,
    TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy, TypedData, U256, decode_signed,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;

fn u256() -> impl Strategy<Value = U256> {
    prop_oneof![
        Just(U256::ZERO),
        any::<u64>().prop_map(U256::from_u64),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes),
        Just(U256::MAX),
    ]
}

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..4), vec(any::<u8>(), 0..200)]
}

fn access_list() -> impl Strategy<Value = AccessList> {
    vec(
        (address(), vec(any::<[u8; 32]>(), 0..3)).prop_map(|(address, storage_keys)| {
            AccessListItem {
                address,
                storage_keys,
            }
        }),
        0..3,
    )
    .prop_map(AccessList)
}

fn u64_edge() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 0..256u64]
}

/// A valid signature: `0 < r, s` with the top byte below 0x7f, so `r < n`
/// and `s < n/2` (not necessarily made by any key: encoding does not care).
fn signature() -> impl Strategy<Value = RecoverableSignature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>(), any::<bool>()).prop_map(|(mut r, mut s, p)| {
        r[0] &= 0x7e;
        s[0] &= 0x7e;
        r[31] |= 1;
        s[31] |= 1;
        RecoverableSignature::from_parts(r, s, p).unwrap()
    })
}

fn legacy() -> impl Strategy<Value = Transaction> {
    (
        proptest::option::of(u64_edge()),
        u64_edge(),
        u256(),
        u64_edge(),
        proptest::option::of(address()),
        u256(),
        data(),
    )
        .prop_map(|(chain_id, nonce, gas_price, gas_limit, to, value, data)| {
            TxLegacy {
                chain_id,
                nonce,
                gas_price,
                gas_limit,
                to,
                value,
                data,
            }
            .into()
        })
}

fn eip2930() -> impl Strategy<Value = Transaction> {
    (
        u64_edge(),
        u64_edge(),
        u256(),
        u64_edge(),
        proptest::option::of(address()),
        u256(),
        data(),
        access_list(),
    )
        .prop_map(
            |(chain_id, nonce, gas_price, gas_limit, to, value, data, access_list)| {
                TxEip2930 {
                    chain_id,
                    nonce,
                    gas_price,
                    gas_limit,
                    to,
                    value,
                    data,
                    access_list,
                }
                .into()
            },
        )
}

/// The fields types 2 to 4 share.
fn fee_market() -> impl Strategy<Value = (u64, u64, U256, U256, u64, U256, Vec<u8>, AccessList)> {
    (
        u64_edge(),
        u64_edge(),
        u256(),
        u256(),
        u64_edge(),
        u256(),
        data(),
        access_list(),
    )
}

fn eip1559() -> impl Strategy<Value = Transaction> {
    (fee_market(), proptest::option::of(address())).prop_map(
        |((chain_id, nonce, prio, max, gas_limit, value, data, access_list), to)| {
            TxEip1559 {
                chain_id,
                nonce,
                max_priority_fee_per_gas: prio,
                max_fee_per_gas: max,
                gas_limit,
                to,
                value,
                data,
                access_list,
            }
            .into()
        },
    )
}

fn eip4844() -> impl Strategy<Value = Transaction> {
    (
        fee_market(),
        address(),
        u256(),
        vec(any::<[u8; 32]>(), 0..4),
    )
        .prop_map(
            |(
                (chain_id, nonce, prio, max, gas_limit, value, data, access_list),
                to,
                blob_fee,
                hashes,
            )| {
                TxEip4844 {
                    chain_id,
                    nonce,
                    max_priority_fee_per_gas: prio,
                    max_fee_per_gas: max,
                    gas_limit,
                    to,
                    value,
                    data,
                    access_list,
                    max_fee_per_blob_gas: blob_fee,
                    blob_versioned_hashes: hashes,
                }
                .into()
            },
        )
}

fn signed_authorization() -> impl Strategy<Value = SignedAuthorization> {
    (u256(), address(), u64_edge(), any::<u8>(), u256(), u256()).prop_map(
        |(chain_id, address, nonce, y_parity, r, s)| SignedAuthorization {
            chain_id,
            address,
            nonce,
            y_parity,
            r,
            s,
        },
    )
}

fn eip7702() -> impl Strategy<Value = Transaction> {
    (fee_market(), address(), vec(signed_authorization(), 0..3)).prop_map(
        |((chain_id, nonce, prio, max, gas_limit, value, data, access_list), to, auths)| {
            TxEip7702 {
                chain_id,
                nonce,
                max_priority_fee_per_gas: prio,
                max_fee_per_gas: max,
                gas_limit,
                to,
                value,
                data,
                access_list,
                authorization_list: auths,
            }
            .into()
        },
    )
}

fn transaction() -> impl Strategy<Value = Transaction> {
    prop_oneof![legacy(), eip2930(), eip1559(), eip4844(), eip7702()]
}

/// Decodes `bytes`; whatever is accepted must be canonical (re-encode to the
/// same bytes) and decode again to the same value.
fn decode_checked(bytes: &[u8]) {
    if let Ok(tx) = decode_signed(bytes) {
        assert_eq!(tx.encoded(), bytes);
        assert_eq!(decode_signed(tx.encoded()).unwrap(), tx);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_type_round_trips(tx in transaction(), sig in signature()) {
        let signed = SignedTransaction::new(tx.clone(), sig);
        prop_assert_eq!(signed.encoded().to_vec(), tx.encode_signed(&sig));
        let decoded = decode_signed(signed.encoded()).unwrap();
        prop_assert_eq!(decoded.transaction(), &tx);
        prop_assert_eq!(decoded.signature(), &sig);
        prop_assert_eq!(decoded.hash(), signed.hash());
        prop_assert_eq!(decoded.v(), signed.v());
        prop_assert_eq!(decoded.signing_hash(), tx.signing_hash());
        // The signed form is not the unsigned payload.
        prop_assert_ne!(tx.encode_unsigned(), signed.encoded().to_vec());
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..400)) {
        decode_checked(&bytes);
    }

    #[test]
    fn decode_never_panics_on_typed_looking_bytes(
        ty in 0u8..6,
        header in 0xc0u8..=0xff,
        rest in vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![ty, header];
        bytes.extend(rest);
        decode_checked(&bytes);
        decode_checked(&bytes[1..]);
    }

    #[test]
    fn mutations_of_round_tripped_transactions_never_panic(
        tx in transaction(),
        sig in signature(),
        flips in vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let raw = tx.encode_signed(&sig);
        let mut flipped = raw.clone();
        for (at, bit) in flips {
            let i = at.index(flipped.len());
            flipped[i] ^= 1 << bit;
        }
        decode_checked(&flipped);
        decode_checked(&raw[..cut.index(raw.len())]);
    }
}

/// Valid signed transactions from the vector files, one or more per type.
fn vector_raws() -> Vec<Vec<u8>> {
    let mut raws = Vec::new();
    let subset = load_json("eth-tx/ethers_transactions_subset_with_hashes.json");
    for entry in subset["vectors"].as_array().unwrap().iter().take(3) {
        for form in entry["signed"].as_object().unwrap().values() {
            raws.push(unhex(form["raw"].as_str().unwrap()));
        }
    }
    let eip155 = load_json("eth-tx/eip155_example.json");
    raws.push(unhex(eip155["signed_tx"].as_str().unwrap()));
    let ox = load_json("eth-tx/eip7702_ox_vectors.json");
    for t in ox["transactions"].as_array().unwrap() {
        if let Some(s) = t.get("signed_serialized") {
            raws.push(unhex(s.as_str().unwrap()));
        }
    }
    let alloy = load_json("eth-tx/eip7702_alloy_rpc_tx.json");
    raws.push(unhex(alloy["derived"]["raw_signed_tx"].as_str().unwrap()));
    let et = load_json("eth-tx/ethereum_tests_TransactionTests_selected.json");
    for t in et["tests"].as_object().unwrap().values() {
        raws.push(unhex(t["txbytes"].as_str().unwrap()));
    }
    raws
}

#[test]
fn every_truncation_and_bit_flip_of_the_vectors_is_handled() {
    let raws = vector_raws();
    assert!(raws.len() >= 20);
    let mut accepted_flips = 0usize;
    let mut cases = 0usize;
    for raw in &raws {
        decode_signed(raw).unwrap();
        for len in 0..raw.len() {
            assert!(
                decode_signed(&raw[..len]).is_err(),
                "a strict prefix was accepted"
            );
            cases += 1;
        }
        let mut flipped = raw.clone();
        for i in 0..raw.len() {
            for bit in 0..8 {
                flipped[i] ^= 1 << bit;
                if decode_signed(&flipped).is_ok() {
                    decode_checked(&flipped);
                    accepted_flips += 1;
                }
                flipped[i] ^= 1 << bit;
                cases += 1;
            }
        }
    }
    // Flips inside data, addresses, hashes and most integers stay well
    // formed; flips in headers, lengths, types and signatures do not.
    assert!(accepted_flips > 0 && accepted_flips < cases);
}

// ------------------------------------------------------------------ JSON

/// Names the readers know, so random objects often hit real fields.
const NAMES: &[&str] = &[
    "type",
    "chainId",
    "nonce",
    "to",
    "value",
    "input",
    "data",
    "gas",
    "gasLimit",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "accessList",
    "maxFeePerBlobGas",
    "blobVersionedHashes",
    "authorizationList",
    "address",
    "storageKeys",
    "yParity",
    "v",
    "r",
    "s",
    "hash",
    "from",
    "blockHash",
    "types",
    "primaryType",
    "domain",
    "message",
    "name",
    "version",
    "verifyingContract",
    "salt",
    "EIP712Domain",
    "Mail",
    "Person",
    "wallet",
    "contents",
];

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(NAMES).prop_map(str::to_owned),
        1 => "[a-zA-Z$_]{0,6}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..1 << 54).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "0x[0-9a-fA-F]{0,70}".prop_map(Value::String),
        "-?(0x)?[0-9]{0,80}".prop_map(Value::String),
        prop::sample::select(
            &[
                "0x0",
                "0x1",
                "0x2",
                "0x3",
                "0x4",
                "0x5",
                "uint256",
                "int8",
                "bytes32",
                "bytes",
                "string",
                "address",
                "bool",
                "Person",
                "Person[]",
                "Mail",
                "uint8[2][]",
                "EIP712Domain",
            ][..]
        )
        .prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((json_key(), inner), 0..10).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Reads `v` every way; whatever is accepted must write back to itself.
fn read_checked(v: &Value) {
    if let Ok(tx) = Transaction::from_json_value(v) {
        assert_eq!(Transaction::from_json_value(&tx.to_json()).unwrap(), tx);
    }
    if let Ok(signed) = SignedTransaction::from_json_value(v) {
        let out = signed.to_json().unwrap();
        assert_eq!(SignedTransaction::from_json_value(&out).unwrap(), signed);
    }
    if let Ok(td) = TypedData::from_json_value(v) {
        let back = TypedData::from_json_value(&td.to_json()).unwrap();
        assert_eq!(back.signing_hash(), td.signing_hash());
    }
}

/// Sets `value` at a random place in `v` (an existing key of a random
/// object on the way, or a new one).
fn substitute(v: &mut Value, path: &[prop::sample::Index], key: &str, value: Value) {
    // Find the place with shared borrows, as a JSON pointer; then edit it.
    let mut pointer = String::new();
    let mut at = &*v;
    for step in path {
        let (token, next) = match at {
            Value::Object(m) if !m.is_empty() => {
                let (k, n) = m.iter().nth(step.index(m.len())).unwrap();
                (k.replace('~', "~0").replace('/', "~1"), n)
            }
            Value::Array(a) if !a.is_empty() => {
                let i = step.index(a.len());
                (i.to_string(), &a[i])
            }
            _ => break,
        };
        if !(next.is_object() || next.is_array()) {
            break;
        }
        pointer.push('/');
        pointer.push_str(&token);
        at = next;
    }
    match v.pointer_mut(&pointer) {
        Some(Value::Object(m)) => {
            m.insert(key.to_owned(), value);
        }
        Some(Value::Array(a)) => a.push(value),
        _ => {}
    }
}

fn mail() -> Value {
    load_json("eip712/eip712_mail.json")["typedData"].clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_type_round_trips_through_json(tx in transaction(), sig in signature()) {
        let out = tx.to_json();
        prop_assert_eq!(&Transaction::from_json_value(&out).unwrap(), &tx);
        let text = serde_json::to_string(&out).unwrap();
        prop_assert_eq!(&Transaction::from_json_str(&text).unwrap(), &tx);
        // A signature not made by a key may recover no sender; when it
        // does, the signed form round-trips too.
        let signed = SignedTransaction::new(tx, sig);
        if let Ok(out) = signed.to_json() {
            prop_assert_eq!(SignedTransaction::from_json_value(&out).unwrap(), signed);
        }
    }

    #[test]
    fn json_readers_never_panic_on_arbitrary_json(v in json_value()) {
        read_checked(&v);
        let text = serde_json::to_string(&v).unwrap();
        let _ = Transaction::from_json_str(&text);
        let _ = TypedData::from_json_str(&text);
    }

    #[test]
    fn json_readers_never_panic_on_arbitrary_text(text in ".{0,200}") {
        let _ = Transaction::from_json_str(&text);
        let _ = SignedTransaction::from_json_str(&text);
        let _ = TypedData::from_json_str(&text);
    }

    #[test]
    fn substituted_fields_of_valid_json_never_panic(
        tx in transaction(),
        path in vec(any::<prop::sample::Index>(), 0..4),
        key in json_key(),
        value in json_value(),
    ) {
        let mut v = tx.to_json();
        substitute(&mut v, &path, &key, value.clone());
        read_checked(&v);
        let mut typed = mail();
        substitute(&mut typed, &path, &key, value);
        read_checked(&typed);
    }
}

proptest! {
    // Each case signs through the vault (about 0.1 ms), so fewer cases.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn signed_transactions_round_trip_through_json(tx in transaction()) {
        let signer = signer_for(&format!("0x{}", "46".repeat(32)));
        let signed = signer.sign_transaction(&tx, &Consent::none()).wait().unwrap();
        let out = signed.to_json().unwrap();
        prop_assert_eq!(
            out["from"].as_str().unwrap(),
            signer.address().to_checksum()
        );
        prop_assert_eq!(&SignedTransaction::from_json_value(&out).unwrap(), &signed);
        let text = serde_json::to_string(&signed).unwrap();
        prop_assert_eq!(SignedTransaction::from_json_str(&text).unwrap(), signed);
    }
}
