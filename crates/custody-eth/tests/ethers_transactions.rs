//! ethers.js transaction vectors: the 60-entry subset with hashes and the
//! full 3200-entry `transactions.json.gz`, every signed form of each.
#![cfg(test)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use std::io::Read;

use common::*;
use custody_core::Authorization as Consent;
use custody_eth::{
    EthSigner, SignedTransaction, Transaction, TxEip1559, TxEip2930, TxEip4844, TxLegacy, U256,
    decode_signed, keccak256,
};
use serde_json::Value;

/// The signed forms ethers gives, by the suffix of their field names.
const FORMS: [&str; 5] = ["Legacy", "Eip155", "Berlin", "London", "Cancun"];

/// The transaction of `form` built from an ethers `transaction` object
/// (absent fields are zero or empty, as ethers treats them).
fn build(form: &str, t: &Value) -> Transaction {
    let chain_id = u64(t.get("chainId"));
    let nonce = u64(t.get("nonce"));
    let gas_limit = u64(t.get("gasLimit"));
    let to = optional_address(t.get("to"));
    let value = u256(t.get("value"));
    let data = data(t.get("data"));
    let access_list = access_list(t.get("accessList"));
    match form {
        "Legacy" | "Eip155" => TxLegacy {
            chain_id: (form == "Eip155").then_some(chain_id),
            nonce,
            gas_price: u256(t.get("gasPrice")),
            gas_limit,
            to,
            value,
            data,
        }
        .into(),
        "Berlin" => TxEip2930 {
            chain_id,
            nonce,
            gas_price: u256(t.get("gasPrice")),
            gas_limit,
            to,
            value,
            data,
            access_list,
        }
        .into(),
        "London" => TxEip1559 {
            chain_id,
            nonce,
            max_priority_fee_per_gas: u256(t.get("maxPriorityFeePerGas")),
            max_fee_per_gas: u256(t.get("maxFeePerGas")),
            gas_limit,
            to,
            value,
            data,
            access_list,
        }
        .into(),
        "Cancun" => TxEip4844 {
            chain_id,
            nonce,
            max_priority_fee_per_gas: u256(t.get("maxPriorityFeePerGas")),
            max_fee_per_gas: u256(t.get("maxFeePerGas")),
            gas_limit,
            to: to.expect("ethers gives a Cancun form only with a `to`"),
            value,
            data,
            access_list,
            max_fee_per_blob_gas: u256(t.get("maxFeePerBlobGas")),
            blob_versioned_hashes: hashes(t.get("blobVersionedHashes")),
        }
        .into(),
        _ => unreachable!(),
    }
}

struct Expected<'a> {
    unsigned: &'a str,
    signed: &'a str,
    r: &'a str,
    s: &'a str,
    v: &'a str,
    tx_hash: Option<&'a str>,
}

/// Checks one signed form end to end; returns false if the form is absent.
fn check(name: &str, form: &str, t: &Value, signer: &EthSigner, e: &Expected<'_>) -> bool {
    if e.signed.is_empty() {
        return false;
    }
    let ctx = format!("{name}/{form}");
    let tx = build(form, t);

    // Unsigned payload and signing.
    assert_eq!(tx.encode_unsigned(), unhex(e.unsigned), "{ctx}: unsigned");
    let signed = signer
        .sign_transaction(&tx, &Consent::none())
        .wait()
        .unwrap();
    let raw = unhex(e.signed);
    assert_eq!(signed.encoded(), raw.as_slice(), "{ctx}: signed (RFC 6979)");
    // The signer copies the encoded fields out of the unsigned payload it
    // hashed; encoding the signed form from scratch gives the same bytes.
    assert_eq!(
        tx.encode_signed(signed.signature()),
        raw,
        "{ctx}: signed (encoded from scratch)"
    );
    assert_eq!(
        SignedTransaction::new(tx.clone(), *signed.signature()),
        signed,
        "{ctx}: SignedTransaction::new"
    );
    assert_eq!(
        U256::from_be_bytes(*signed.signature().r()),
        U256::parse(e.r).unwrap(),
        "{ctx}: r"
    );
    assert_eq!(
        U256::from_be_bytes(*signed.signature().s()),
        U256::parse(e.s).unwrap(),
        "{ctx}: s"
    );
    assert_eq!(
        U256::from_u128(signed.v()),
        U256::parse(e.v).unwrap(),
        "{ctx}: v"
    );
    assert_eq!(signed.hash(), keccak256(&raw), "{ctx}: hash");
    if let Some(h) = e.tx_hash {
        assert_eq!(signed.hash(), hex32(h), "{ctx}: tx_hash");
    }

    // Strict decoding round-trips, and the sender recovers.
    let decoded = decode_signed(&raw).unwrap_or_else(|err| panic!("{ctx}: decode: {err}"));
    assert_eq!(decoded, signed, "{ctx}: decode round trip");
    assert_eq!(
        decoded.recover_sender().unwrap(),
        signer.address(),
        "{ctx}: sender"
    );
    true
}

#[test]
fn ethers_subset_with_hashes() {
    let v = load_json("eth-tx/ethers_transactions_subset_with_hashes.json");
    let mut checked = 0;
    for entry in v["vectors"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let private_key = entry["privateKey"].as_str().unwrap();
        let signer = signer_for(private_key);
        assert_eq!(
            signer.address(),
            address(&entry["expected_sender"]),
            "{name}: address"
        );
        for form in FORMS {
            let Some(s) = entry["signed"].get(format!("signed{form}")) else {
                continue;
            };
            let e = Expected {
                unsigned: s["unsigned"].as_str().unwrap(),
                signed: s["raw"].as_str().unwrap(),
                r: s["signature"]["r"].as_str().unwrap(),
                s: s["signature"]["s"].as_str().unwrap(),
                v: s["signature"]["v"].as_str().unwrap(),
                tx_hash: Some(s["tx_hash"].as_str().unwrap()),
            };
            if check(name, form, &entry["transaction"], &signer, &e) {
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 300);
}

#[test]
fn ethers_full_transactions_gz() {
    let started = std::time::Instant::now();
    let mut json = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(vector_path("eth-tx/ethers_transactions.json.gz")).unwrap(),
    )
    .read_to_string(&mut json)
    .unwrap();
    let entries: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(entries.len(), 3200);
    // Every entry is independent: spread them over the available cores.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = entries.len().div_ceil(threads);
    let checked = std::thread::scope(|scope| {
        let workers: Vec<_> = entries
            .chunks(chunk)
            .map(|part| scope.spawn(move || check_entries(part)))
            .collect();
        workers.into_iter().fold([0usize; 5], |mut acc, w| {
            for (a, n) in acc.iter_mut().zip(w.join().unwrap()) {
                *a += n;
            }
            acc
        })
    });
    // Legacy, Berlin and London exist for every entry; EIP-155 only with a
    // chain id and Cancun only with a `to` (1664 entries each).
    assert_eq!(checked, [3200, 1664, 3200, 3200, 1664]);
    eprintln!(
        "ethers_full_transactions_gz: {} signed forms in {:?}",
        checked.iter().sum::<usize>(),
        started.elapsed()
    );
}

fn check_entries(entries: &[Value]) -> [usize; 5] {
    let mut checked = [0usize; 5];
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        let signer = signer_for(entry["privateKey"].as_str().unwrap());
        for (i, form) in FORMS.iter().enumerate() {
            let str_of = |k: String| entry[k.as_str()].as_str().unwrap_or_default();
            let sig = &entry[format!("signature{form}").as_str()];
            let e = Expected {
                unsigned: str_of(format!("unsigned{form}")),
                signed: str_of(format!("signed{form}")),
                r: sig["r"].as_str().unwrap(),
                s: sig["s"].as_str().unwrap(),
                v: sig["v"].as_str().unwrap(),
                tx_hash: None,
            };
            if check(name, form, &entry["transaction"], &signer, &e) {
                checked[i] += 1;
            }
        }
    }
    checked
}
