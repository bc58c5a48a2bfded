//! Property tests: every transaction type round-trips through its signed
//! encoding, and the decoder never panics, on random bytes or on any
//! truncation or bit flip of a valid transaction.
#![cfg(test)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use common::*;
use custody_core::RecoverableSignature;
use custody_eth::{
    AccessList, AccessListItem, Address, SignedAuthorization, SignedTransaction, Transaction,
    TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy, U256, decode_signed,
};
use proptest::collection::vec;
use proptest::prelude::*;

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
