//! Differential tests against alloy, an independent implementation (a
//! dev-dependency only): random transactions of every type must give
//! byte-identical unsigned encodings, signing hashes, signatures (RFC 6979 is
//! deterministic, so the same key gives the same signature on both sides),
//! signed encodings and transaction hashes, and decode on each side to the
//! other's value; random EIP-712 typed data (random struct types, member
//! types and values) must give identical `encodeType`, `encodeData`, domain
//! separators, digests and signatures.
//!
//! alloy keeps fees in `u128` where the format (and this crate) allow 256
//! bits, so the generated fees stay below 2^128.
#![cfg(test)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use std::collections::BTreeMap;

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{EthereumTxEnvelope, EthereumTypedTransaction, SignableTransaction};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{B256, Bytes, Signature, TxKind};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use common::*;
use custody_core::Authorization as Consent;
use custody_eth::{
    AccessList, AccessListItem, Address, EthSigner, SignedAuthorization, SignedTransaction,
    Transaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy, TypedData, U256,
    decode_signed,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Value, json};

type AlloyTx = EthereumTypedTransaction<alloy_consensus::TxEip4844>;
type AlloyEnvelope = EthereumTxEnvelope<alloy_consensus::TxEip4844>;

/// Cases per transaction type (and for typed data).
const CASES: u32 = 2000;

// ------------------------------------------------------------ conversion

fn a_u256(v: &U256) -> alloy_primitives::U256 {
    alloy_primitives::U256::from_be_bytes(v.to_be_bytes())
}

fn a_address(a: &Address) -> alloy_primitives::Address {
    alloy_primitives::Address::from(a.0)
}

fn a_kind(to: Option<&Address>) -> TxKind {
    to.map_or(TxKind::Create, |a| TxKind::Call(a_address(a)))
}

fn a_u128(v: &U256) -> u128 {
    v.to_u128().expect("the generators keep fees below 2^128")
}

fn a_access_list(list: &AccessList) -> alloy_eips::eip2930::AccessList {
    alloy_eips::eip2930::AccessList(
        list.items()
            .iter()
            .map(|item| alloy_eips::eip2930::AccessListItem {
                address: a_address(&item.address),
                storage_keys: item.storage_keys.iter().map(|k| B256::from(*k)).collect(),
            })
            .collect(),
    )
}

fn a_authorization(a: &SignedAuthorization) -> alloy_eips::eip7702::SignedAuthorization {
    alloy_eips::eip7702::SignedAuthorization::new_unchecked(
        alloy_eips::eip7702::Authorization {
            chain_id: a_u256(&a.chain_id),
            address: a_address(&a.address),
            nonce: a.nonce,
        },
        a.y_parity,
        a_u256(&a.r),
        a_u256(&a.s),
    )
}

/// The same transaction, built field by field as an alloy value.
fn to_alloy(tx: &Transaction) -> AlloyTx {
    match tx {
        Transaction::Legacy(t) => alloy_consensus::TxLegacy {
            chain_id: t.chain_id,
            nonce: t.nonce,
            gas_price: a_u128(&t.gas_price),
            gas_limit: t.gas_limit,
            to: a_kind(t.to.as_ref()),
            value: a_u256(&t.value),
            input: Bytes::from(t.data.clone()),
        }
        .into(),
        Transaction::Eip2930(t) => alloy_consensus::TxEip2930 {
            chain_id: t.chain_id,
            nonce: t.nonce,
            gas_price: a_u128(&t.gas_price),
            gas_limit: t.gas_limit,
            to: a_kind(t.to.as_ref()),
            value: a_u256(&t.value),
            access_list: a_access_list(&t.access_list),
            input: Bytes::from(t.data.clone()),
        }
        .into(),
        Transaction::Eip1559(t) => alloy_consensus::TxEip1559 {
            chain_id: t.chain_id,
            nonce: t.nonce,
            gas_limit: t.gas_limit,
            max_fee_per_gas: a_u128(&t.max_fee_per_gas),
            max_priority_fee_per_gas: a_u128(&t.max_priority_fee_per_gas),
            to: a_kind(t.to.as_ref()),
            value: a_u256(&t.value),
            access_list: a_access_list(&t.access_list),
            input: Bytes::from(t.data.clone()),
        }
        .into(),
        Transaction::Eip4844(t) => alloy_consensus::TxEip4844 {
            chain_id: t.chain_id,
            nonce: t.nonce,
            gas_limit: t.gas_limit,
            max_fee_per_gas: a_u128(&t.max_fee_per_gas),
            max_priority_fee_per_gas: a_u128(&t.max_priority_fee_per_gas),
            to: a_address(&t.to),
            value: a_u256(&t.value),
            access_list: a_access_list(&t.access_list),
            blob_versioned_hashes: t
                .blob_versioned_hashes
                .iter()
                .map(|h| B256::from(*h))
                .collect(),
            max_fee_per_blob_gas: a_u128(&t.max_fee_per_blob_gas),
            input: Bytes::from(t.data.clone()),
        }
        .into(),
        Transaction::Eip7702(t) => alloy_consensus::TxEip7702 {
            chain_id: t.chain_id,
            nonce: t.nonce,
            gas_limit: t.gas_limit,
            max_fee_per_gas: a_u128(&t.max_fee_per_gas),
            max_priority_fee_per_gas: a_u128(&t.max_priority_fee_per_gas),
            to: a_address(&t.to),
            value: a_u256(&t.value),
            access_list: a_access_list(&t.access_list),
            authorization_list: t.authorization_list.iter().map(a_authorization).collect(),
            input: Bytes::from(t.data.clone()),
        }
        .into(),
        _ => unreachable!("every type is converted"),
    }
}

// ------------------------------------------------------------ strategies

fn u256() -> impl Strategy<Value = U256> {
    prop_oneof![
        Just(U256::ZERO),
        any::<u64>().prop_map(U256::from_u64),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes),
        Just(U256::MAX),
    ]
}

/// A fee: alloy holds it in a `u128`.
fn fee() -> impl Strategy<Value = U256> {
    prop_oneof![
        Just(U256::ZERO),
        any::<u64>().prop_map(U256::from_u64),
        any::<u128>().prop_map(U256::from_u128),
        Just(U256::from_u128(u128::MAX)),
    ]
}

fn u64_edge() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        any::<u64>(),
        0..256u64,
        0..0x80u64
    ]
}

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..2),
        vec(any::<u8>(), 0..60),
        vec(any::<u8>(), 50..300)
    ]
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

/// The fields types 2 to 4 share.
type FeeMarket = (u64, u64, U256, U256, u64, U256, Vec<u8>, AccessList);

fn fee_market() -> impl Strategy<Value = FeeMarket> {
    (
        u64_edge(),
        u64_edge(),
        fee(),
        fee(),
        u64_edge(),
        u256(),
        data(),
        access_list(),
    )
}

fn legacy() -> impl Strategy<Value = Transaction> {
    (
        proptest::option::of(u64_edge()),
        u64_edge(),
        fee(),
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
        fee(),
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
    (fee_market(), address(), fee(), vec(any::<[u8; 32]>(), 0..4)).prop_map(
        |((chain_id, nonce, prio, max, gas_limit, value, data, access_list), to, blob, hashes)| {
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
                max_fee_per_blob_gas: blob,
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

/// A secret key (a valid scalar: below the order, not zero).
fn secret() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>().prop_map(|mut k| {
        k[0] &= 0x7f;
        k[31] |= 1;
        k
    })
}

// ------------------------------------------------------------ transactions

/// Both sides agree on everything about `tx` signed with `key`.
fn check_transaction(tx: &Transaction, key: [u8; 32]) -> Result<(), TestCaseError> {
    let ours_signer: EthSigner = signer_for(&hex::encode(key));
    let alloy_signer = PrivateKeySigner::from_slice(&key).unwrap();
    prop_assert_eq!(
        ours_signer.address().0,
        <[u8; 20]>::from(alloy_signer.address())
    );

    let theirs = to_alloy(tx);
    // Unsigned payload and signing hash.
    prop_assert_eq!(tx.encode_unsigned(), theirs.encoded_for_signing());
    let hash = theirs.signature_hash();
    prop_assert_eq!(tx.signing_hash().0, hash.0);

    // Signature: RFC 6979 over the same digest with the same key.
    let signed = ours_signer
        .sign_transaction(tx, &Consent::none())
        .wait()
        .unwrap();
    let their_sig: Signature = alloy_signer.sign_hash_sync(&hash).unwrap();
    let their_sig = their_sig.normalize_s().unwrap_or(their_sig);
    prop_assert_eq!(signed.signature().r(), &their_sig.r().to_be_bytes::<32>());
    prop_assert_eq!(signed.signature().s(), &their_sig.s().to_be_bytes::<32>());
    prop_assert_eq!(signed.signature().y_parity(), their_sig.v());

    // Signed encoding and transaction hash.
    let envelope = AlloyEnvelope::from((theirs, their_sig));
    let their_encoding = envelope.encoded_2718();
    prop_assert_eq!(signed.encoded(), their_encoding.as_slice());
    // The signer copies the encoded fields out of the unsigned payload it
    // hashed; encoding the signed form from scratch gives the same bytes.
    prop_assert_eq!(
        tx.encode_signed(signed.signature()),
        their_encoding.as_slice()
    );
    prop_assert_eq!(
        &SignedTransaction::new(tx.clone(), *signed.signature()),
        &signed
    );
    prop_assert_eq!(signed.hash(), envelope.tx_hash().0);

    // Each side decodes the other's bytes to the same thing.
    let decoded = AlloyEnvelope::decode_2718(&mut &signed.encoded()[..]).unwrap();
    prop_assert_eq!(&decoded, &envelope);
    prop_assert_eq!(
        <[u8; 20]>::from(decoded.recover_signer().unwrap()),
        ours_signer.address().0
    );
    let ours_decoded = decode_signed(&their_encoding).unwrap();
    prop_assert_eq!(&ours_decoded, &signed);
    prop_assert_eq!(
        ours_decoded.recover_sender().unwrap(),
        ours_signer.address()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn legacy_matches_alloy(tx in legacy(), key in secret()) {
        check_transaction(&tx, key)?;
    }

    #[test]
    fn eip2930_matches_alloy(tx in eip2930(), key in secret()) {
        check_transaction(&tx, key)?;
    }

    #[test]
    fn eip1559_matches_alloy(tx in eip1559(), key in secret()) {
        check_transaction(&tx, key)?;
    }

    #[test]
    fn eip4844_matches_alloy(tx in eip4844(), key in secret()) {
        check_transaction(&tx, key)?;
    }

    #[test]
    fn eip7702_matches_alloy(tx in eip7702(), key in secret()) {
        check_transaction(&tx, key)?;
    }

    #[test]
    fn authorizations_match_alloy(
        chain_id in u256(),
        address in address(),
        nonce in u64_edge(),
        key in secret(),
    ) {
        let auth = custody_eth::Authorization { chain_id, address, nonce };
        let theirs = alloy_eips::eip7702::Authorization {
            chain_id: a_u256(&chain_id),
            address: a_address(&address),
            nonce,
        };
        prop_assert_eq!(auth.signing_hash().0, theirs.signature_hash().0);
        let signer = signer_for(&hex::encode(key));
        let signed = signer.sign_authorization(&auth, &Consent::none()).wait().unwrap();
        let alloy_signer = PrivateKeySigner::from_slice(&key).unwrap();
        let sig = alloy_signer.sign_hash_sync(&theirs.signature_hash()).unwrap();
        let their_signed = theirs.into_signed(sig);
        prop_assert_eq!(&a_authorization(&signed), &their_signed);
        prop_assert_eq!(
            <[u8; 20]>::from(their_signed.recover_authority().unwrap()),
            signed.recover_authority().unwrap().0
        );
    }
}

// ------------------------------------------------------------ typed data

/// A small deterministic generator (SplitMix64): typed data depends on the
/// types drawn before it, so it is drawn from a seed proptest provides.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn hex(&mut self, n: usize) -> String {
        format!("0x{}", hex::encode(self.bytes(n)))
    }

    fn name(&mut self, first: &[u8]) -> String {
        const REST: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
        let mut s = String::new();
        s.push(char::from(first[self.below(first.len() as u64) as usize]));
        for _ in 0..self.below(8) {
            s.push(char::from(REST[self.below(REST.len() as u64) as usize]));
        }
        s
    }
}

#[derive(Clone, Debug)]
enum Base {
    Atomic(String),
    Struct(usize),
}

#[derive(Clone, Debug)]
struct Member {
    name: String,
    base: Base,
    /// Array dimensions as written (the last is the outermost).
    dims: Vec<Option<usize>>,
}

impl Member {
    fn type_name(&self, names: &[String]) -> String {
        let mut s = match &self.base {
            Base::Atomic(a) => a.clone(),
            Base::Struct(i) => names[*i].clone(),
        };
        for d in &self.dims {
            match d {
                Some(n) => s.push_str(&format!("[{n}]")),
                None => s.push_str("[]"),
            }
        }
        s
    }
}

fn atomic(rng: &mut Rng) -> String {
    match rng.below(7) {
        0 => "bool".into(),
        1 => "address".into(),
        2 => "string".into(),
        3 => "bytes".into(),
        4 => format!("bytes{}", 1 + rng.below(32)),
        5 => format!("uint{}", 8 * (1 + rng.below(32))),
        _ => format!("int{}", 8 * (1 + rng.below(32))),
    }
}

/// Random struct types: struct `i` may use structs `j > i` only (so the
/// types are acyclic), and every struct is reachable from struct 0.
fn random_types(rng: &mut Rng) -> (Vec<String>, Vec<Vec<Member>>) {
    let count = 1 + rng.below(5) as usize;
    let mut names: Vec<String> = Vec::new();
    while names.len() < count {
        // Upper-case first letters never collide with the atomic type names.
        let n = rng.name(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut structs = Vec::new();
    for i in 0..count {
        let mut members: Vec<Member> = Vec::new();
        let n = 1 + rng.below(5);
        while (members.len() as u64) < n {
            let name = rng.name(b"abcdefghijklmnopqrstuvwxyz_");
            if members.iter().any(|m| m.name == name) {
                continue;
            }
            let base = if i + 1 < count && rng.chance(30) {
                Base::Struct(i + 1 + rng.below((count - i - 1) as u64) as usize)
            } else {
                Base::Atomic(atomic(rng))
            };
            let dims = (0..rng.below(3))
                .map(|_| rng.chance(50).then(|| 1 + rng.below(3) as usize))
                .collect();
            members.push(Member { name, base, dims });
        }
        structs.push(members);
    }
    // Make every struct reachable: struct i (i > 0) gets a member in an
    // earlier struct if nothing refers to it yet.
    for j in 1..count {
        let used = structs[..j]
            .iter()
            .flatten()
            .any(|m| matches!(m.base, Base::Struct(k) if k == j));
        if !used {
            let owner = rng.below(j as u64) as usize;
            let name = format!("ref_{j}");
            structs[owner].push(Member {
                name,
                base: Base::Struct(j),
                dims: Vec::new(),
            });
        }
    }
    (names, structs)
}

/// How many values a value of struct `i` holds at most (dynamic arrays
/// counted at their largest length, 2), to keep cases small.
fn weight(structs: &[Vec<Member>], i: usize) -> u64 {
    structs[i]
        .iter()
        .map(|m| {
            let copies: u64 = m.dims.iter().map(|d| d.map_or(2, |n| n as u64)).product();
            let inner = match m.base {
                Base::Struct(j) => weight(structs, j),
                Base::Atomic(_) => 1,
            };
            copies.saturating_mul(inner)
        })
        .fold(1u64, u64::saturating_add)
}

fn atomic_value(rng: &mut Rng, ty: &str) -> Value {
    let number = |rng: &mut Rng, bits: u32, signed: bool| -> Value {
        // A random magnitude below the type's limit, in one of the forms
        // both implementations read.
        let width = if signed { bits - 1 } else { bits };
        let take = 1 + rng.below(u64::from(width)) as u32;
        let mut b: [u8; 32] = rng.bytes(32).try_into().unwrap();
        // Keep the low `take` bits.
        for (i, byte) in b.iter_mut().enumerate() {
            let bit_index_from_low = (31 - i) as u32 * 8;
            if bit_index_from_low >= take {
                *byte = 0;
            } else if bit_index_from_low + 8 > take {
                *byte &= (1u16 << (take - bit_index_from_low)).wrapping_sub(1) as u8;
            }
        }
        let m = U256::from_be_bytes(b);
        let negative = signed && rng.chance(50);
        match (negative, m.to_u64(), rng.below(3)) {
            (false, Some(small), 0) if small < (1 << 53) => json!(small),
            (true, Some(small), 0) if small < (1 << 53) => json!(-(small as i64)),
            (false, _, 1) => json!(format!("{m:#x}")),
            (false, _, _) => json!(m.to_string()),
            (true, _, _) => {
                if m.is_zero() {
                    json!("0")
                } else {
                    json!(format!("-{m}"))
                }
            }
        }
    };
    match ty {
        "bool" => json!(rng.chance(50)),
        "address" => {
            let a = Address::from_slice(&rng.bytes(20)).unwrap();
            if rng.chance(50) {
                json!(a.to_checksum())
            } else {
                json!(format!("0x{}", hex::encode(a.0)))
            }
        }
        "string" => {
            const WORDS: &[&str] = &["Moo", " ", "é", "🚀", "o", "M", "\"", "\\", "\n", ""];
            let s: String = (0..rng.below(12))
                .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                .collect();
            json!(s)
        }
        "bytes" => {
            let n = rng.below(70) as usize;
            json!(rng.hex(n))
        }
        t if t.starts_with("bytes") => json!(rng.hex(t[5..].parse().unwrap())),
        t if t.starts_with("uint") => number(rng, t[4..].parse().unwrap(), false),
        t if t.starts_with("int") => number(rng, t[3..].parse().unwrap(), true),
        other => unreachable!("{other}"),
    }
}

fn value_of(rng: &mut Rng, structs: &[Vec<Member>], m: &Member, dims: usize) -> Value {
    if dims > 0 {
        let len = m.dims[dims - 1].unwrap_or_else(|| rng.below(3) as usize);
        return Value::Array(
            (0..len)
                .map(|_| value_of(rng, structs, m, dims - 1))
                .collect(),
        );
    }
    match &m.base {
        Base::Atomic(a) => atomic_value(rng, a),
        Base::Struct(j) => struct_value(rng, structs, *j),
    }
}

fn struct_value(rng: &mut Rng, structs: &[Vec<Member>], i: usize) -> Value {
    Value::Object(
        structs[i]
            .iter()
            .map(|m| (m.name.clone(), value_of(rng, structs, m, m.dims.len())))
            .collect(),
    )
}

fn random_domain(rng: &mut Rng) -> (Value, Vec<(&'static str, &'static str)>) {
    let mut domain = serde_json::Map::new();
    let mut fields = Vec::new();
    if rng.chance(60) {
        domain.insert("name".into(), atomic_value(rng, "string"));
        fields.push(("name", "string"));
    }
    if rng.chance(60) {
        domain.insert(
            "version".into(),
            json!(format!("{}.{}", rng.below(10), rng.below(10))),
        );
        fields.push(("version", "string"));
    }
    if rng.chance(60) {
        let id = match rng.below(3) {
            0 => json!(1 + rng.below(100_000)),
            1 => json!(format!("{:#x}", rng.next())),
            _ => json!(format!(
                "{:#x}",
                U256::from_be_bytes(rng.bytes(32).try_into().unwrap())
            )),
        };
        domain.insert("chainId".into(), id);
        fields.push(("chainId", "uint256"));
    }
    if rng.chance(60) {
        domain.insert("verifyingContract".into(), atomic_value(rng, "address"));
        fields.push(("verifyingContract", "address"));
    }
    if rng.chance(40) {
        domain.insert("salt".into(), json!(rng.hex(32)));
        fields.push(("salt", "bytes32"));
    }
    (Value::Object(domain), fields)
}

/// Random typed data as `eth_signTypedData_v4` takes it.
fn random_typed_data(seed: u64) -> Value {
    let mut rng = Rng(seed);
    let (names, structs) = loop {
        let (names, structs) = random_types(&mut rng);
        if weight(&structs, 0) <= 400 {
            break (names, structs);
        }
    };
    let mut types = BTreeMap::new();
    for (name, members) in names.iter().zip(&structs) {
        let list: Vec<Value> = members
            .iter()
            .map(|m| json!({"name": m.name, "type": m.type_name(&names)}))
            .collect();
        types.insert(name.clone(), Value::Array(list));
    }
    let (domain, fields) = random_domain(&mut rng);
    if rng.chance(50) {
        let list: Vec<Value> = fields
            .iter()
            .map(|(n, t)| json!({"name": n, "type": t}))
            .collect();
        types.insert("EIP712Domain".into(), Value::Array(list));
    }
    let message = struct_value(&mut rng, &structs, 0);
    json!({
        "types": types,
        "primaryType": names[0],
        "domain": domain,
        "message": message,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn typed_data_matches_alloy(seed in any::<u64>(), key in secret()) {
        let v = random_typed_data(seed);
        let ours = TypedData::from_json_value(&v)
            .map_err(|e| TestCaseError::fail(format!("{e}: {v}")))?;
        let theirs: alloy_dyn_abi::TypedData = serde_json::from_value(v.clone()).unwrap();
        prop_assert_eq!(ours.encode_type(), theirs.encode_type().unwrap(), "{}", v);
        let their_data = theirs.encode_data().unwrap();
        prop_assert_eq!(&ours.encoded_message()[32..], their_data.as_slice());
        prop_assert_eq!(ours.struct_hash(), theirs.hash_struct().unwrap().0);
        prop_assert_eq!(ours.domain_separator(), theirs.domain.separator().0);
        let digest = theirs.eip712_signing_hash().unwrap();
        prop_assert_eq!(ours.signing_hash().0, digest.0);
        // Our output form reads back, in alloy too, to the same digest.
        let again: alloy_dyn_abi::TypedData = serde_json::from_value(ours.to_json()).unwrap();
        prop_assert_eq!(again.eip712_signing_hash().unwrap(), digest);
        // And the signatures agree (v = 27/28 on both sides).
        let signer = signer_for(&hex::encode(key));
        let sig = signer.sign_typed_data(&ours, &Consent::none()).wait().unwrap();
        let alloy_signer = PrivateKeySigner::from_slice(&key).unwrap();
        let their_sig = alloy_signer.sign_hash_sync(&digest).unwrap();
        prop_assert_eq!(sig.to_bytes(), their_sig.as_bytes());
    }
}

#[test]
fn the_generators_cover_every_kind_of_member() {
    // The typed-data generator reaches every atomic kind, struct members,
    // fixed and dynamic arrays, nested arrays and every domain field.
    let mut seen = BTreeMap::<&str, usize>::new();
    for seed in 0..400 {
        let v = random_typed_data(seed);
        let text = v.to_string();
        for (needle, label) in [
            ("\"bool", "bool"),
            ("\"address", "address"),
            ("\"string", "string"),
            ("\"bytes\"", "bytes"),
            ("\"bytes1", "bytesN"),
            ("\"uint", "uint"),
            ("\"int", "int"),
            ("[]", "dynamic array"),
            ("][", "nested array"),
            ("ref_", "struct member"),
            ("EIP712Domain", "declared domain"),
            ("\"salt\"", "salt"),
            ("\"chainId\"", "chainId"),
            ("\"-", "negative integer"),
        ] {
            if text.contains(needle) {
                *seen.entry(label).or_default() += 1;
            }
        }
        TypedData::from_json_value(&v).unwrap();
    }
    assert_eq!(seen.len(), 14, "{seen:?}");
}
