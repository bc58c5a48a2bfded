//! Reading Python arguments into Rust values: secrets (passphrases,
//! passwords, mnemonics) copied into zeroizing memory, JSON documents
//! (transactions, typed data) from `dict`s or `str`, and the key an
//! operation names.

use custody_core::{DerivationPath, ErrorReport, KeyId, KeyRef, Passphrase};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::bad_input;

/// How deep a JSON document from Python may nest (a transaction or typed
/// data needs a handful of levels; a self-referencing list would otherwise
/// recurse until the stack ends).
const MAX_DEPTH: usize = 64;

/// The largest integer a JSON number carries exactly everywhere
/// (2^53 - 1); larger ones travel as decimal strings, which every custody
/// quantity and EIP-712 integer accepts.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A secret given as `str` (its UTF-8 bytes), `bytes` or `bytearray`,
/// copied into a zeroizing [`Passphrase`]. The Python object itself is the
/// caller's: a `bytearray` can be cleared after the call, a `str` cannot.
pub(crate) fn secret(value: &Bound<'_, PyAny>, what: &str) -> Result<Passphrase, ErrorReport> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Passphrase::new(bytes.as_bytes().to_vec()));
    }
    if let Ok(array) = value.cast::<PyByteArray>() {
        return Ok(Passphrase::new(array.to_vec()));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Passphrase::new(
            secret_text(text, what)?.as_bytes().to_vec(),
        ));
    }
    Err(bad_input(format!(
        "{what}: expected str, bytes or bytearray"
    )))
}

/// A secret `str` (a mnemonic) as zeroizing UTF-8.
pub(crate) fn secret_text(
    text: &Bound<'_, PyString>,
    what: &str,
) -> Result<Zeroizing<String>, ErrorReport> {
    let cow = text
        .to_cow()
        .map_err(|_| bad_input(format!("{what}: not valid Unicode (lone surrogates)")))?;
    Ok(Zeroizing::new(cow.into_owned()))
}

/// A JSON document given as a `str` (taken as is) or as Python data
/// (`dict`, `list`, `str`, `int`, `bool`, `None`, and `bytes` as 0x-hex),
/// as JSON text for custody-eth's strict parsers.
///
/// Integers beyond 2^53 - 1 become decimal strings (a JSON number that
/// large is not exact in every parser, and custody's refuses it); a
/// `float` is refused (no quantity is fractional).
pub(crate) fn json_text(value: &Bound<'_, PyAny>, what: &str) -> Result<String, ErrorReport> {
    if let Ok(text) = value.cast::<PyString>() {
        return text
            .to_cow()
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| bad_input(format!("{what}: not valid Unicode")));
    }
    let value = json_value(value, what, 0)?;
    Ok(value.to_string())
}

fn json_value(value: &Bound<'_, PyAny>, what: &str, depth: usize) -> Result<Value, ErrorReport> {
    if depth > MAX_DEPTH {
        return Err(bad_input(format!(
            "{what}: nested more than {MAX_DEPTH} levels deep"
        )));
    }
    if value.is_none() {
        return Ok(Value::Null);
    }
    // `bool` before `int`: in Python, True is an int.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if value.cast::<PyInt>().is_ok() {
        return Ok(match value.extract::<i64>() {
            Ok(n) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&n) => Value::from(n),
            _ => Value::String(
                value
                    .str()
                    .map_err(|_| bad_input(format!("{what}: an int that has no decimal form")))?
                    .to_string(),
            ),
        });
    }
    if value.cast::<PyFloat>().is_ok() {
        return Err(bad_input(format!(
            "{what}: a float is not an exact quantity (use int, or a decimal or 0x string)"
        )));
    }
    if let Ok(text) = value.cast::<PyString>() {
        let text = text
            .to_cow()
            .map_err(|_| bad_input(format!("{what}: a str that is not valid Unicode")))?;
        return Ok(Value::String(text.into_owned()));
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Value::String(format!(
            "0x{}",
            hex::encode(bytes.as_bytes())
        )));
    }
    if let Ok(array) = value.cast::<PyByteArray>() {
        return Ok(Value::String(format!("0x{}", hex::encode(array.to_vec()))));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in dict.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| bad_input(format!("{what}: a dict key that is not a str")))?;
            let key = key
                .to_cow()
                .map_err(|_| bad_input(format!("{what}: a dict key that is not valid Unicode")))?
                .into_owned();
            map.insert(key, json_value(&v, what, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = value.cast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        let kind = value
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string());
        return Err(bad_input(format!(
            "{what}: a value of type {kind} has no JSON form (use dict, list, str, int, bool, None or bytes)"
        )));
    };
    items
        .iter()
        .map(|item| json_value(item, what, depth + 1))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// The key an operation names: `wallet` with `index`, or `path` (a BIP32
/// path such as `m/44'/60'/0'/0/7`), exactly one of the two, as the CLI's
/// `--wallet/--index` and `--path`.
pub(crate) fn key_ref(
    wallet: Option<&str>,
    index: Option<u32>,
    path: Option<&str>,
) -> Result<KeyRef, ErrorReport> {
    match (wallet, index, path) {
        (Some(name), Some(index), None) => Ok(KeyRef::Wallet {
            name: name.to_owned(),
            index,
        }),
        (None, None, Some(path)) => {
            let path: DerivationPath = path
                .parse()
                .map_err(|e: custody_core::Error| ErrorReport::from(e).context("path"))?;
            Ok(KeyRef::Path(path))
        }
        (Some(_), None, None) => Err(bad_input("index: required with wallet")),
        (None, Some(_), None) => Err(bad_input("wallet: required with index")),
        (None, None, None) => Err(bad_input("name a key with wallet and index, or with path")),
        _ => Err(bad_input("use either wallet and index, or path, not both")),
    }
}

/// The key an operation names: one of the keystore's (a wallet's, a
/// path's, an imported key's), or an external key by its backend URI.
pub(crate) enum Target {
    /// A key of the keystore.
    Local(KeyRef),
    /// `key="aws-kms:KEY"` or `key="pkcs11:..."`: a key that never leaves
    /// its KMS or token.
    External(String),
}

/// The key `wallet`/`index`, `path`, `key_id` or `key` names (exactly one
/// of them).
///
/// # Errors
/// `bad-input` for none or more than one, or a malformed path or key id.
pub(crate) fn target(
    wallet: Option<&str>,
    index: Option<u32>,
    path: Option<&str>,
    key_id: Option<&str>,
    key: Option<&str>,
) -> Result<Target, ErrorReport> {
    let local = wallet.is_some() || index.is_some() || path.is_some();
    match (key_id, key) {
        (None, None) => key_ref(wallet, index, path).map(Target::Local),
        (Some(id), None) if !local => {
            let id = KeyId::new(id).map_err(|e| ErrorReport::from(e).context("key_id"))?;
            Ok(Target::Local(KeyRef::Stored(id)))
        }
        (None, Some(uri)) if !local => Ok(Target::External(uri.to_owned())),
        _ => Err(bad_input(
            "use exactly one of wallet and index, path, key_id, key",
        )),
    }
}
