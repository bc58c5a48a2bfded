//! Shared by the integration tests (included with `#[path]`).
//!
//! Keys are held by the real software backend, `custody_core::Vault`
//! (`insert_key`), so every signature goes through `KeySigner` and
//! `custody_core::normalize` exactly as in production.

use std::sync::Arc;

use custody_core::{
    DataKey, KekId, KeyId, KeyRef, KeySigner, LocalKek, PrivateKeyBytes, SharedBackend, Vault,
    WalletScheme,
};
use custody_eth::{AccessList, AccessListItem, Address, EthSigner, U256};
use serde_json::Value;

/// A vault holding one imported key under the id `test`.
pub(crate) fn vault_backend(private_key_hex: &str) -> SharedBackend {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([0x5a; 32]),
    ));
    let vault = Vault::new(kek, WalletScheme::Default);
    vault
        .insert_key(
            KeyId::new("test").unwrap(),
            PrivateKeyBytes::from_slice(&unhex(private_key_hex)).unwrap(),
        )
        .unwrap();
    Arc::new(vault)
}

/// An `EthSigner` for a raw private key given as hex, held by a vault.
pub(crate) fn signer_for(private_key_hex: &str) -> EthSigner {
    let key_ref = KeyRef::Stored(KeyId::new("test").unwrap());
    EthSigner::new(
        KeySigner::pin(vault_backend(private_key_hex), key_ref)
            .wait()
            .unwrap(),
    )
    .unwrap()
}

pub(crate) fn vector_path(rel: &str) -> String {
    format!("{}/../../vectors/{rel}", env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn load_json(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(vector_path(rel)).unwrap()).unwrap()
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).unwrap()
}

pub(crate) fn hex32(s: &str) -> [u8; 32] {
    unhex(s).try_into().unwrap()
}

/// A quantity given as a JSON number, a decimal string or a 0x-hex string;
/// absent (or null) is zero.
pub(crate) fn u256(v: Option<&Value>) -> U256 {
    match v {
        None | Some(Value::Null) => U256::ZERO,
        Some(Value::Number(n)) => U256::from_u64(n.as_u64().unwrap()),
        Some(Value::String(s)) => U256::parse(s).unwrap(),
        Some(other) => panic!("not a quantity: {other}"),
    }
}

pub(crate) fn u64(v: Option<&Value>) -> u64 {
    u256(v).to_u64().unwrap()
}

pub(crate) fn address(v: &Value) -> Address {
    Address::parse(v.as_str().unwrap()).unwrap()
}

pub(crate) fn optional_address(v: Option<&Value>) -> Option<Address> {
    match v {
        None | Some(Value::Null) => None,
        Some(a) => Some(address(a)),
    }
}

pub(crate) fn data(v: Option<&Value>) -> Vec<u8> {
    v.map(|d| unhex(d.as_str().unwrap())).unwrap_or_default()
}

pub(crate) fn access_list(v: Option<&Value>) -> AccessList {
    let Some(items) = v else {
        return AccessList::default();
    };
    AccessList(
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|item| AccessListItem {
                address: address(&item["address"]),
                storage_keys: item["storageKeys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| hex32(k.as_str().unwrap()))
                    .collect(),
            })
            .collect(),
    )
}

pub(crate) fn hashes(v: Option<&Value>) -> Vec<[u8; 32]> {
    v.map(|a| {
        a.as_array()
            .unwrap()
            .iter()
            .map(|h| hex32(h.as_str().unwrap()))
            .collect()
    })
    .unwrap_or_default()
}
