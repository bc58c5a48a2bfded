//! Shared by the integration tests (included with `#[path]`).
//!
//! `OneKey` is an in-process signing backend holding one raw key, standing in
//! for `custody_core::Vault::insert_key`, which this copy of custody-core does
//! not build yet. It returns `RawSignature::Recoverable` like the vault does,
//! so signatures still go through `KeySigner` and `custody_core::normalize`.

use std::sync::Arc;

use custody_core::{
    Error as CoreError, KeyBackend, KeyId, KeyKinds, KeyRef, KeySigner, Pending, PinnedKey,
    PublicKey, RawSignature, SignRequest, SigningBackend,
};
use custody_eth::{AccessList, AccessListItem, Address, EthSigner, U256};
use k256::ecdsa::SigningKey;
use serde_json::Value;

#[derive(Debug)]
struct OneKey(SigningKey);

impl KeyBackend for OneKey {
    fn name(&self) -> &str {
        "test-one-key"
    }
    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

impl SigningBackend for OneKey {
    fn key_kinds(&self) -> KeyKinds {
        KeyKinds {
            stored: true,
            hd: false,
        }
    }
    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, CoreError>> {
        let pk = PublicKey::from(k256::PublicKey::from(self.0.verifying_key()));
        Pending::ready(Ok(PinnedKey::new(key.clone(), None, pk)))
    }
    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> Pending<'a, Result<RawSignature, CoreError>> {
        let (sig, id) = self.0.sign_prehash_recoverable(request.digest.as_bytes());
        Pending::ready(Ok(RawSignature::Recoverable {
            compact: sig.to_bytes().into(),
            y_parity: id.is_y_odd(),
        }))
    }
}

/// An `EthSigner` for a raw private key given as hex.
pub(crate) fn signer_for(private_key_hex: &str) -> EthSigner {
    let key = SigningKey::from_slice(&unhex(private_key_hex)).unwrap();
    let backend: custody_core::SharedBackend = Arc::new(OneKey(key));
    let key_ref = KeyRef::Stored(KeyId::new("test").unwrap());
    EthSigner::new(KeySigner::pin(backend, key_ref).wait().unwrap())
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
