//! The Ethereum JSON-RPC transaction object: reading it into a
//! [`Transaction`] or [`SignedTransaction`], and writing one out. The rules
//! are on [`Transaction::from_json_value`],
//! [`SignedTransaction::from_json_value`] and [`Transaction::to_json`].
//!
//! Reading is done over a `serde_json::Value` (not derived `Deserialize`
//! impls) so that every error names its field and the set of fields of each
//! type is checked as a whole.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Error as _, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json::{self, StrictValue};
use crate::tx::{chain_id_and_parity, signature_from_parts};
use crate::{
    AccessList, AccessListItem, Address, Error, SignedAuthorization, SignedTransaction,
    Transaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy, TxType, U256,
};

/// Every top-level name the transaction forms define, so that a known field
/// in the wrong place is reported by name.
const KNOWN: &[&str] = &[
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
    "from",
    "hash",
    "v",
    "r",
    "s",
    "yParity",
    "blockHash",
    "blockNumber",
    "blockTimestamp",
    "transactionIndex",
];

/// Which JSON form is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// A transaction to sign.
    Unsigned,
    /// A signed transaction as nodes return it.
    Signed,
}

/// Whether `key` belongs to a transaction of type `ty` in `form`.
fn allowed(ty: TxType, form: Form, key: &str) -> bool {
    let n = ty.as_u8();
    match key {
        "type" | "chainId" | "nonce" | "to" | "value" | "input" | "data" | "gas" | "gasLimit" => {
            true
        }
        // Types 2-4 carry the effective gas price only in a node's answer.
        "gasPrice" => n <= 1 || form == Form::Signed,
        "maxFeePerGas" | "maxPriorityFeePerGas" => n >= 2,
        "accessList" => n >= 1,
        "maxFeePerBlobGas" | "blobVersionedHashes" => ty == TxType::Eip4844,
        "authorizationList" => ty == TxType::Eip7702,
        "from" | "hash" | "v" | "r" | "s" | "yParity" | "blockHash" | "blockNumber"
        | "blockTimestamp" | "transactionIndex" => form == Form::Signed,
        _ => false,
    }
}

/// A JSON object being read as a transaction of a known type.
struct Object<'a> {
    map: &'a Map<String, Value>,
    ty: TxType,
}

impl<'a> Object<'a> {
    /// Reads `type` and checks every key against it.
    fn new(value: &'a Value, form: Form) -> Result<Self, Error> {
        let map = json::object(value, "transaction")?;
        let ty = match map.get("type").filter(|v| !v.is_null()) {
            None => TxType::Legacy,
            Some(v) => {
                let t = json::u256(v, "type")?;
                match t.to_u64().map(u8::try_from) {
                    Some(Ok(t)) => TxType::try_from(t)?,
                    _ => {
                        return Err(Error::Json {
                            field: "type",
                            reason: "not an EIP-2718 transaction type",
                        });
                    }
                }
            }
        };
        for (key, v) in map {
            if v.is_null() || allowed(ty, form, key) {
                continue;
            }
            return Err(match KNOWN.iter().find(|k| **k == key) {
                Some(field) => Error::FieldNotAllowed { field, tx_type: ty },
                None => Error::UnknownField {
                    object: "transaction",
                },
            });
        }
        Ok(Self { map, ty })
    }

    /// The field, if present and not `null`.
    fn opt(&self, key: &str) -> Option<&'a Value> {
        opt(self.map, key)
    }

    /// The field, which the type requires.
    fn req(&self, key: &'static str) -> Result<&'a Value, Error> {
        self.opt(key).ok_or(Error::MissingField {
            field: key,
            tx_type: self.ty,
        })
    }

    fn req_u256(&self, key: &'static str) -> Result<U256, Error> {
        json::u256(self.req(key)?, key)
    }

    fn req_u64(&self, key: &'static str) -> Result<u64, Error> {
        json::u64(self.req(key)?, key)
    }

    /// `to`, which types 3 and 4 require.
    fn required_to(&self) -> Result<Address, Error> {
        match self.opt("to") {
            Some(v) => json::address(v, "to"),
            None => Err(Error::MissingTo(self.ty)),
        }
    }

    fn access_list(&self) -> Result<AccessList, Error> {
        self.opt("accessList")
            .map(access_list)
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

fn opt<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// A field written under one of two names: either, or both when they agree.
fn either<T: PartialEq>(
    map: &Map<String, Value>,
    a: &'static str,
    b: &'static str,
    read: impl Fn(&Value, &'static str) -> Result<T, Error>,
) -> Result<Option<T>, Error> {
    match (opt(map, a), opt(map, b)) {
        (Some(x), Some(y)) => {
            let x = read(x, a)?;
            if read(y, b)? != x {
                return Err(Error::ConflictingFields { field: a, other: b });
            }
            Ok(Some(x))
        }
        (Some(x), None) => read(x, a).map(Some),
        (None, Some(y)) => read(y, b).map(Some),
        (None, None) => Ok(None),
    }
}

/// Checks that every key of a nested object is one of `keys`.
fn only_keys(map: &Map<String, Value>, keys: &[&str], object: &'static str) -> Result<(), Error> {
    if map.keys().all(|k| keys.contains(&k.as_str())) {
        Ok(())
    } else {
        Err(Error::UnknownField { object })
    }
}

fn nested<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a Value, Error> {
    opt(map, key).ok_or(Error::Json {
        field,
        reason: "missing",
    })
}

fn access_list(v: &Value) -> Result<AccessList, Error> {
    json::array(v, "accessList")?
        .iter()
        .map(|item| {
            let map = json::object(item, "accessList")?;
            only_keys(map, &["address", "storageKeys"], "accessList")?;
            let address = json::address(
                nested(map, "address", "accessList.address")?,
                "accessList.address",
            )?;
            let storage_keys = json::array(
                nested(map, "storageKeys", "accessList.storageKeys")?,
                "accessList.storageKeys",
            )?
            .iter()
            .map(|k| json::fixed::<32>(k, "accessList.storageKeys"))
            .collect::<Result<_, _>>()?;
            Ok(AccessListItem {
                address,
                storage_keys,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(AccessList)
}

fn authorization_list(v: &Value) -> Result<Vec<SignedAuthorization>, Error> {
    json::array(v, "authorizationList")?
        .iter()
        .map(|item| {
            let map = json::object(item, "authorizationList")?;
            only_keys(
                map,
                &["chainId", "address", "nonce", "yParity", "v", "r", "s"],
                "authorizationList",
            )?;
            let y_parity = authorization_parity(map)?.ok_or(Error::Json {
                field: "authorizationList.yParity",
                reason: "missing",
            })?;
            Ok(SignedAuthorization {
                chain_id: json::u256(
                    nested(map, "chainId", "authorizationList.chainId")?,
                    "authorizationList.chainId",
                )?,
                address: json::address(
                    nested(map, "address", "authorizationList.address")?,
                    "authorizationList.address",
                )?,
                nonce: json::u64(
                    nested(map, "nonce", "authorizationList.nonce")?,
                    "authorizationList.nonce",
                )?,
                y_parity,
                r: json::u256(
                    nested(map, "r", "authorizationList.r")?,
                    "authorizationList.r",
                )?,
                s: json::u256(
                    nested(map, "s", "authorizationList.s")?,
                    "authorizationList.s",
                )?,
            })
        })
        .collect()
}

/// `yParity` or its alias `v` (as alloy reads it) of an authorization.
fn authorization_parity(map: &Map<String, Value>) -> Result<Option<u8>, Error> {
    match (opt(map, "yParity"), opt(map, "v")) {
        (Some(y), Some(v)) => {
            let y = json::u8(y, "authorizationList.yParity")?;
            if json::u8(v, "authorizationList.v")? != y {
                return Err(Error::ConflictingFields {
                    field: "authorizationList.yParity",
                    other: "authorizationList.v",
                });
            }
            Ok(Some(y))
        }
        (Some(y), None) => json::u8(y, "authorizationList.yParity").map(Some),
        (None, Some(v)) => json::u8(v, "authorizationList.v").map(Some),
        (None, None) => Ok(None),
    }
}

fn blob_hashes(v: &Value) -> Result<Vec<[u8; 32]>, Error> {
    json::array(v, "blobVersionedHashes")?
        .iter()
        .map(|h| json::fixed::<32>(h, "blobVersionedHashes"))
        .collect()
}

/// Reads the transaction fields of `obj` (both forms).
fn read_transaction(obj: &Object<'_>) -> Result<Transaction, Error> {
    let ty = obj.ty;
    let chain_id = obj
        .opt("chainId")
        .map(|v| json::u64(v, "chainId"))
        .transpose()?;
    let typed_chain_id = || {
        chain_id.ok_or(Error::MissingField {
            field: "chainId",
            tx_type: ty,
        })
    };
    let nonce = obj.req_u64("nonce")?;
    let gas_limit = either(obj.map, "gas", "gasLimit", json::u64)?.ok_or(Error::MissingField {
        field: "gas",
        tx_type: ty,
    })?;
    let value = obj
        .opt("value")
        .map(|v| json::u256(v, "value"))
        .transpose()?
        .unwrap_or_default();
    let data = either(obj.map, "input", "data", json::bytes)?.unwrap_or_default();
    let to = || obj.opt("to").map(|v| json::address(v, "to")).transpose();
    Ok(match ty {
        TxType::Legacy => Transaction::Legacy(TxLegacy {
            chain_id,
            nonce,
            gas_price: obj.req_u256("gasPrice")?,
            gas_limit,
            to: to()?,
            value,
            data,
        }),
        TxType::Eip2930 => Transaction::Eip2930(TxEip2930 {
            chain_id: typed_chain_id()?,
            nonce,
            gas_price: obj.req_u256("gasPrice")?,
            gas_limit,
            to: to()?,
            value,
            data,
            access_list: obj.access_list()?,
        }),
        TxType::Eip1559 => Transaction::Eip1559(TxEip1559 {
            chain_id: typed_chain_id()?,
            nonce,
            max_priority_fee_per_gas: obj.req_u256("maxPriorityFeePerGas")?,
            max_fee_per_gas: obj.req_u256("maxFeePerGas")?,
            gas_limit,
            to: to()?,
            value,
            data,
            access_list: obj.access_list()?,
        }),
        TxType::Eip4844 => Transaction::Eip4844(TxEip4844 {
            chain_id: typed_chain_id()?,
            nonce,
            max_priority_fee_per_gas: obj.req_u256("maxPriorityFeePerGas")?,
            max_fee_per_gas: obj.req_u256("maxFeePerGas")?,
            gas_limit,
            to: obj.required_to()?,
            value,
            data,
            access_list: obj.access_list()?,
            max_fee_per_blob_gas: obj.req_u256("maxFeePerBlobGas")?,
            blob_versioned_hashes: blob_hashes(obj.req("blobVersionedHashes")?)?,
        }),
        TxType::Eip7702 => Transaction::Eip7702(TxEip7702 {
            chain_id: typed_chain_id()?,
            nonce,
            max_priority_fee_per_gas: obj.req_u256("maxPriorityFeePerGas")?,
            max_fee_per_gas: obj.req_u256("maxFeePerGas")?,
            gas_limit,
            to: obj.required_to()?,
            value,
            data,
            access_list: obj.access_list()?,
            authorization_list: authorization_list(obj.req("authorizationList")?)?,
        }),
    })
}

/// Reads the signed form (see [`SignedTransaction::from_json_value`]).
fn read_signed(value: &Value) -> Result<SignedTransaction, Error> {
    // A legacy transaction's chain id may be carried by `v` alone.
    let obj = Object::new(value, Form::Signed)?;
    let r = obj.req_u256("r")?;
    let s = obj.req_u256("s")?;
    let (transaction, parity) = if obj.ty == TxType::Legacy {
        // Read the fields with the chain id `v` implies when `chainId` is
        // absent, then check the two agree when both are given.
        let v = obj.req_u256("v")?;
        let (from_v, parity) = chain_id_and_parity(&v)?;
        let Transaction::Legacy(mut legacy) = read_transaction(&obj)? else {
            return Err(Error::Json {
                field: "type",
                reason: "not an EIP-2718 transaction type",
            });
        };
        match (legacy.chain_id, from_v) {
            (None, implied) => legacy.chain_id = implied,
            (Some(given), Some(implied)) if given == implied => {}
            _ => return Err(Error::Mismatch("chainId")),
        }
        if let Some(y) = obj.opt("yParity")
            && json::u8(y, "yParity")? != u8::from(parity)
        {
            return Err(Error::ConflictingFields {
                field: "yParity",
                other: "v",
            });
        }
        (Transaction::Legacy(legacy), parity)
    } else {
        let y = either(obj.map, "yParity", "v", json::u256)?.ok_or(Error::MissingField {
            field: "yParity",
            tx_type: obj.ty,
        })?;
        let parity = if y.is_zero() {
            false
        } else if y == U256::from_u64(1) {
            true
        } else {
            return Err(Error::InvalidYParity);
        };
        (read_transaction(&obj)?, parity)
    };
    if let Some(price) = obj.opt("gasPrice") {
        let price = json::u256(price, "gasPrice")?;
        let max = match &transaction {
            Transaction::Eip1559(t) => Some(t.max_fee_per_gas),
            Transaction::Eip4844(t) => Some(t.max_fee_per_gas),
            Transaction::Eip7702(t) => Some(t.max_fee_per_gas),
            _ => None,
        };
        if max.is_some_and(|max| price > max) {
            return Err(Error::Json {
                field: "gasPrice",
                reason: "effective gas price above maxFeePerGas",
            });
        }
    }
    if let Some(v) = obj.opt("blockHash") {
        json::fixed::<32>(v, "blockHash")?;
    }
    for field in ["blockNumber", "blockTimestamp", "transactionIndex"] {
        if let Some(v) = obj.opt(field) {
            json::u64(v, field)?;
        }
    }
    let signature = signature_from_parts(&r, &s, parity)?;
    let signed = SignedTransaction::new(transaction, signature);
    if let Some(h) = obj.opt("hash")
        && json::fixed::<32>(h, "hash")? != signed.hash()
    {
        return Err(Error::Mismatch("hash"));
    }
    if let Some(from) = obj.opt("from")
        && json::address(from, "from")? != signed.recover_sender()?
    {
        return Err(Error::Mismatch("from"));
    }
    Ok(signed)
}

impl Transaction {
    /// Reads a JSON-RPC transaction object: the form `eth_signTransaction`
    /// and `eth_sendTransaction` take, without `from`.
    ///
    /// | field | types | notes |
    /// |---|---|---|
    /// | `type` | all | `0x0`–`0x4`; absent means legacy; any other type is [`Error::UnsupportedType`] (never read as legacy) |
    /// | `chainId` | all | required for types 1–4; absent on legacy means pre-EIP-155 |
    /// | `nonce` | all | required |
    /// | `to` | all | absent or `null` creates a contract; required for types 3 and 4 ([`Error::MissingTo`]) |
    /// | `value` | all | absent means 0 |
    /// | `input` / `data` | all | the same field under two names: either or both (then equal, else [`Error::ConflictingFields`]); absent means empty |
    /// | `gas` / `gasLimit` | all | the same field under two names, as `input`/`data`; required |
    /// | `gasPrice` | 0, 1 | required |
    /// | `maxFeePerGas`, `maxPriorityFeePerGas` | 2, 3, 4 | required |
    /// | `accessList` | 1–4 | `[{address, storageKeys}]`; absent means empty |
    /// | `maxFeePerBlobGas`, `blobVersionedHashes` | 3 | required |
    /// | `authorizationList` | 4 | `[{chainId, address, nonce, yParity (or v), r, s}]`; required |
    ///
    /// Quantities are `0x`-hex or decimal strings, or JSON numbers that are safe
    /// integers (at most 2^53 - 1: a larger number may already have been rounded
    /// by whoever wrote it). Byte strings are `0x` and an even number of hex
    /// digits; addresses are 40 hex digits, with a valid EIP-55 checksum if
    /// mixed-case. `null` is the same as absent, for every field.
    ///
    /// Nothing is guessed or dropped: a field that belongs to another type
    /// (`gasPrice` on type 2, `accessList` on legacy, `blobVersionedHashes` on
    /// type 2) is [`Error::FieldNotAllowed`], and a key no transaction defines is
    /// [`Error::UnknownField`] (a misspelt `Data` or `maxFeePerGass` must not be
    /// silently ignored). An unsigned transaction has no `from`: a service
    /// handling `eth_signTransaction` checks the request's `from` against
    /// [`crate::EthSigner::address`] and removes it before parsing.
    ///
    /// # Errors
    /// [`Error::Json`] for a malformed field; [`Error::Overflow`] for a
    /// value too large for its field; [`Error::MissingField`],
    /// [`Error::FieldNotAllowed`], [`Error::UnknownField`],
    /// [`Error::ConflictingFields`]; [`Error::UnsupportedType`];
    /// [`Error::MissingTo`]; [`Error::InvalidLength`] for a storage key or
    /// blob hash that is not 32 bytes. Each names the field.
    pub fn from_json_value(value: &Value) -> Result<Self, Error> {
        read_transaction(&Object::new(value, Form::Unsigned)?)
    }

    /// Parses JSON text and reads it as [`Transaction::from_json_value`]
    /// does. Duplicate keys are rejected.
    ///
    /// # Errors
    /// [`Error::JsonSyntax`], [`Error::DuplicateKey`], or as
    /// [`Transaction::from_json_value`].
    pub fn from_json_str(s: &str) -> Result<Self, Error> {
        Self::from_json_value(&json::parse_str(s)?)
    }

    /// Writes the JSON-RPC transaction object.
    ///
    /// Every field of the type is written with its JSON-RPC name,
    /// quantities as minimal hex, addresses EIP-55 checksummed, `to: null`
    /// for a contract creation, and the call data under **both** `input` and
    /// `data`, so that a reader that knows only one of the names still gets
    /// it (peers dropped calldata because one side wrote `input` and the
    /// other read `data`). The output reads back with
    /// [`Transaction::from_json_value`] to the same transaction.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        put(
            "type",
            json::quantity_u64(u64::from(self.tx_type().as_u8())),
        );
        if let Some(id) = self.chain_id() {
            put("chainId", json::quantity_u64(id));
        }
        put("nonce", json::quantity_u64(self.nonce()));
        put("gas", json::quantity_u64(self.gas_limit()));
        put(
            "to",
            self.to().as_ref().map_or(Value::Null, json::address_value),
        );
        put("value", json::quantity(&self.value()));
        put("input", json::hex_bytes(self.data()));
        put("data", json::hex_bytes(self.data()));
        let (access, fees) = match self {
            Self::Legacy(tx) => (None, Fees::Legacy(tx.gas_price)),
            Self::Eip2930(tx) => (Some(&tx.access_list), Fees::Legacy(tx.gas_price)),
            Self::Eip1559(tx) => (
                Some(&tx.access_list),
                Fees::Market(tx.max_fee_per_gas, tx.max_priority_fee_per_gas),
            ),
            Self::Eip4844(tx) => (
                Some(&tx.access_list),
                Fees::Market(tx.max_fee_per_gas, tx.max_priority_fee_per_gas),
            ),
            Self::Eip7702(tx) => (
                Some(&tx.access_list),
                Fees::Market(tx.max_fee_per_gas, tx.max_priority_fee_per_gas),
            ),
        };
        match fees {
            Fees::Legacy(price) => put("gasPrice", json::quantity(&price)),
            Fees::Market(max, priority) => {
                put("maxFeePerGas", json::quantity(&max));
                put("maxPriorityFeePerGas", json::quantity(&priority));
            }
        }
        if let Some(list) = access {
            put("accessList", access_list_json(list));
        }
        if let Self::Eip4844(tx) = self {
            put("maxFeePerBlobGas", json::quantity(&tx.max_fee_per_blob_gas));
            put(
                "blobVersionedHashes",
                Value::Array(
                    tx.blob_versioned_hashes
                        .iter()
                        .map(|h| json::hex_bytes(h))
                        .collect(),
                ),
            );
        }
        if let Self::Eip7702(tx) = self {
            put(
                "authorizationList",
                Value::Array(
                    tx.authorization_list
                        .iter()
                        .map(authorization_json)
                        .collect(),
                ),
            );
        }
        Value::Object(m)
    }
}

enum Fees {
    Legacy(U256),
    Market(U256, U256),
}

fn access_list_json(list: &AccessList) -> Value {
    Value::Array(
        list.items()
            .iter()
            .map(|item| {
                let mut m = Map::new();
                m.insert("address".into(), json::address_value(&item.address));
                m.insert(
                    "storageKeys".into(),
                    Value::Array(
                        item.storage_keys
                            .iter()
                            .map(|k| json::hex_bytes(k))
                            .collect(),
                    ),
                );
                Value::Object(m)
            })
            .collect(),
    )
}

fn authorization_json(a: &SignedAuthorization) -> Value {
    let mut m = Map::new();
    m.insert("chainId".into(), json::quantity(&a.chain_id));
    m.insert("address".into(), json::address_value(&a.address));
    m.insert("nonce".into(), json::quantity_u64(a.nonce));
    m.insert("yParity".into(), json::quantity_u64(u64::from(a.y_parity)));
    m.insert("r".into(), json::quantity(&a.r));
    m.insert("s".into(), json::quantity(&a.s));
    Value::Object(m)
}

impl SignedTransaction {
    /// Reads a signed JSON-RPC transaction object, as nodes return it.
    ///
    /// This is what nodes return from `eth_getTransactionByHash`: the fields
    /// of [`Transaction::from_json_value`] plus `r`, `s` and `v`
    /// (legacy: 27/28 or EIP-155; typed: `yParity` and/or `v`, equal if both),
    /// optionally `hash` and `from` (checked against the transaction:
    /// [`Error::Mismatch`]), the block fields (`blockHash`, `blockNumber`,
    /// `blockTimestamp`, `transactionIndex`; shape-checked, not kept) and, for
    /// types 2–4, the effective `gasPrice` (at most `maxFeePerGas`; not part of
    /// the transaction).
    ///
    /// # Errors
    /// As [`Transaction::from_json_value`]; [`Error::InvalidV`],
    /// [`Error::InvalidYParity`], [`Error::HighS`],
    /// [`Error::InvalidSignature`] for a bad signature; [`Error::Mismatch`]
    /// when `hash`, `from` or `chainId` disagree with it.
    pub fn from_json_value(value: &Value) -> Result<Self, Error> {
        read_signed(value)
    }

    /// Parses JSON text and reads it as
    /// [`SignedTransaction::from_json_value`] does.
    ///
    /// # Errors
    /// [`Error::JsonSyntax`], [`Error::DuplicateKey`], or as
    /// [`SignedTransaction::from_json_value`].
    pub fn from_json_str(s: &str) -> Result<Self, Error> {
        Self::from_json_value(&json::parse_str(s)?)
    }

    /// Writes the signed JSON-RPC transaction object: the fields of
    /// [`Transaction::to_json`] plus `hash`, `from`, `r`, `s`, `v` and, for
    /// typed transactions, `yParity`.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if no sender recovers from the signature
    /// (possible only for a signature not made by a key).
    pub fn to_json(&self) -> Result<Value, Error> {
        let from = self.recover_sender()?;
        let mut value = self.transaction().to_json();
        if let Value::Object(m) = &mut value {
            m.insert("hash".into(), json::hex_bytes(&self.hash()));
            m.insert("from".into(), json::address_value(&from));
            m.insert(
                "r".into(),
                json::quantity(&U256::from_be_bytes(*self.signature().r())),
            );
            m.insert(
                "s".into(),
                json::quantity(&U256::from_be_bytes(*self.signature().s())),
            );
            m.insert("v".into(), json::quantity_u128(self.v()));
            if self.transaction().tx_type() != TxType::Legacy {
                m.insert(
                    "yParity".into(),
                    json::quantity_u64(u64::from(self.signature().y_parity())),
                );
            }
        }
        Ok(value)
    }
}

impl Serialize for Transaction {
    /// As [`Transaction::to_json`].
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Transaction {
    /// As [`Transaction::from_json_value`], rejecting duplicate keys.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let StrictValue(v) = StrictValue::deserialize(deserializer)?;
        Self::from_json_value(&v).map_err(D::Error::custom)
    }
}

impl Serialize for SignedTransaction {
    /// As [`SignedTransaction::to_json`].
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json()
            .map_err(S::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedTransaction {
    /// As [`SignedTransaction::from_json_value`], rejecting duplicate keys.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let StrictValue(v) = StrictValue::deserialize(deserializer)?;
        Self::from_json_value(&v).map_err(D::Error::custom)
    }
}
