//! Key handles: one signing key pinned behind a keystore's gates, named by
//! an external key URI (`aws-kms:KEY`, `pkcs11:token=…;object=…`: the
//! CLI's `--key`) or by the id of a key imported into the keystore (the
//! CLI's `--key-id`). [`custody_key_open`] and [`custody_key_open_id`]
//! give C an opaque [`CustodyKey`]; [`custody_key_free`] takes it back.
//!
//! The key's backend is opened and its public key read once, when the
//! handle is made (for KMS one client, for PKCS#11 one logged-in session
//! pool); every signature through it then passes `Audited(TotpGate(...))`
//! over the keystore's own records ([`KeystoreGate`], the CLI's gates), so
//! an external key is gated and audited exactly as a wallet's.
//!
//! Handles live in a table keyed by their address, as keystore handles do:
//! the C pointer is compared, never dereferenced.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use custody_core::{ErrorReport, KeyId, KeyRef, KeySigner, SharedBackend};
use custody_eth::{EthSigner, PersonalMessage, Transaction, TypedData};
use custody_kms::{BackendConfig, BackendUri};
use custody_totp::KeystoreGate;
use serde_json::{Value, json};

use crate::error::{CustodyError, bad_input, enter};
use crate::input::{self, Out};
use crate::keystore::{CustodyKeystore, handle, hex0x};
use crate::memory::hand_out_string;
use crate::signing::{personal_message_json, transaction_json, typed_data_result};

/// How a key handle's key was named.
enum KeyName {
    /// An external key URI, as given.
    Uri(String),
    /// The id of a key imported into the keystore.
    Id(String),
}

/// A signing key behind a keystore's gates (opaque to C): made by
/// [`custody_key_open`] or [`custody_key_open_id`], released by
/// [`custody_key_free`]. Safe to use from several threads at once.
pub struct CustodyKey {
    /// The keystore whose gates, state store and audit log the key's
    /// signatures pass (kept open while the key is).
    keystore: Arc<CustodyKeystore>,
    /// The key, pinned behind `Audited(TotpGate(...))`.
    signer: EthSigner,
    name: KeyName,
}

impl std::fmt::Debug for CustodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("CustodyKey");
        match &self.name {
            KeyName::Uri(uri) => d.field("key", &BackendUri::label(uri)),
            KeyName::Id(id) => d.field("key_id", id),
        };
        d.field("address", &self.signer.address().to_checksum())
            .field("keystore", &self.keystore)
            .finish()
    }
}

/// `key` behind `backend`, as an Ethereum signer; a missing key is
/// `not-found` ("no such key", as the CLI says it).
fn pin(backend: SharedBackend, key: KeyRef, what: &str) -> Result<EthSigner, ErrorReport> {
    let signer = KeySigner::pin(backend, key).wait().map_err(|e| match e {
        custody_core::Error::KeyNotFound => ErrorReport::new("not-found", "no such key"),
        other => ErrorReport::from(other).context(what),
    })?;
    Ok(EthSigner::new(signer)?)
}

/// Every open key handle, by address.
static KEYS: Mutex<BTreeMap<usize, Arc<CustodyKey>>> = Mutex::new(BTreeMap::new());

fn keys() -> MutexGuard<'static, BTreeMap<usize, Arc<CustodyKey>>> {
    // Each operation on the map is a single insert, get or remove: a
    // poisoned lock still guards a consistent map.
    KEYS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The open key `ptr` names, for the length of one call.
fn key_handle(ptr: *const CustodyKey) -> Result<Arc<CustodyKey>, ErrorReport> {
    if ptr.is_null() {
        return Err(bad_input("key: null handle"));
    }
    keys()
        .get(&ptr.addr())
        .cloned()
        .ok_or_else(|| bad_input("key: not an open key handle (freed already, or never opened)"))
}

/// Registers a new key handle and returns its pointer.
fn register(key: CustodyKey) -> *mut CustodyKey {
    let key = Arc::new(key);
    let ptr = Arc::as_ptr(&key).cast_mut();
    keys().insert(ptr.addr(), key);
    ptr
}

/// Opens the external signing key `uri` names and sets `*out` to a new key
/// handle behind the gates of keystore `ks` (NULL on failure), as the
/// CLI's `--key URI`:
///
/// - `aws-kms:KEY`: an `ECC_SECG_P256K1` `SIGN_VERIFY` key in AWS KMS (id,
///   ARN or `alias/NAME`), with region, credentials and endpoint from the
///   standard AWS environment;
/// - `pkcs11:token=LABEL;object=LABEL`: an EC secp256k1 key on a PKCS#11
///   token, the module from the URI's `module-path=` or
///   `CUSTODY_PKCS11_MODULE`, the PIN from its `pin-source=file:` or
///   `CUSTODY_PKCS11_PIN`.
///
/// The key never leaves its KMS or token: each signature is one call to it.
/// Its signatures pass the keystore's TOTP gate (`custody totp register
/// --key URI` enrols it) and land in its audit log. The backend is reached
/// here, once, to read the public key.
///
/// Errors: `bad-input` (a null or non-UTF-8 argument, a malformed URI,
/// `passphrase`, no module or PIN), `not-found`, `access-denied`,
/// `wrong-key-usage`, `key-disabled`, `unavailable`, `throttled`,
/// `unsupported` (a backend this library was built without).
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `uri` is NULL or
/// a NUL-terminated string; `out` is NULL or writable for one pointer;
/// `err` is NULL or writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_key_open(
    ks: *const CustodyKeystore,
    uri: *const c_char,
    out: *mut *mut CustodyKey,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out, "out")?;
            let keystore = handle(ks)?;
            let text = input::text(uri, "uri")?;
            let parsed = BackendUri::parse(text).map_err(|e| e.report("uri"))?;
            let (inner, key) = BackendConfig::from_env()
                .signer(&parsed)
                .map_err(|e| e.report("uri"))?;
            let gate = KeystoreGate::new(keystore.keystore(), inner).map_err(ErrorReport::from)?;
            let signer = pin(gate.backend().clone(), key, "uri")?;
            out.set(register(CustodyKey {
                keystore,
                signer,
                name: KeyName::Uri(text.to_owned()),
            }));
            Ok(())
        })
    }
}

/// Sets `*out` to a new key handle for the key imported into keystore `ks`
/// under `key_id` (the `keyId` that `custody keystore import` or
/// `custody_keystore_import_v3` gave; NULL on failure), behind the
/// keystore's gates as the CLI's `--key-id`.
///
/// Errors: `bad-input` (a null or non-UTF-8 argument, a malformed id),
/// `not-found` (no key with that id).
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `key_id` is NULL
/// or a NUL-terminated string; `out` is NULL or writable for one pointer;
/// `err` is NULL or writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_key_open_id(
    ks: *const CustodyKeystore,
    key_id: *const c_char,
    out: *mut *mut CustodyKey,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out, "out")?;
            let keystore = handle(ks)?;
            let id = input::text(key_id, "key_id")?;
            let key = KeyId::new(id).map_err(|e| ErrorReport::from(e).context("key_id"))?;
            let signer = pin(keystore.gated().clone(), KeyRef::Stored(key), "key_id")?;
            out.set(register(CustodyKey {
                keystore,
                signer,
                name: KeyName::Id(id.to_owned()),
            }));
            Ok(())
        })
    }
}

/// Closes a key handle. NULL is allowed and does nothing.
///
/// Returns `CUSTODY_OK`, or `CUSTODY_ERR_BAD_INPUT` for a handle that is
/// not open. Calls already running on other threads finish normally. The
/// keystore handle the key was opened on stays open (and may be freed
/// before or after: the key keeps what it needs).
///
/// # Safety
/// `err` is NULL or writable for one `CustodyError`. `key` is only
/// compared with the library's table of open handles, never dereferenced.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_key_free(key: *mut CustodyKey, err: *mut CustodyError) -> i32 {
    // SAFETY: `err` is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            if key.is_null() {
                return Ok(());
            }
            let removed = keys().remove(&key.addr());
            match removed {
                Some(handle) => {
                    drop(handle);
                    Ok(())
                }
                None => Err(bad_input(
                    "key: not an open key handle (freed already, or never opened)",
                )),
            }
        })
    }
}

/// Sets `*out_json` to the JSON object `custody derive --key URI` (or
/// `--key-id ID`) prints for this key: `{"address", "key", "publicKey"}`
/// (or `"keyId"` instead of `"key"`). Free it with `custody_string_free`.
///
/// Public data only (read when the handle was opened): no TOTP code is
/// needed, and nothing is audited.
///
/// Errors: `bad-input` (a null argument, a handle that is not open).
///
/// # Safety
/// `key` is any value (it is looked up, not dereferenced); `out_json` is
/// NULL or writable for one pointer; `err` is NULL or writable for one
/// `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_key_derive(
    key: *const CustodyKey,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let key = key_handle(key)?;
            let public = key.signer.public_key();
            let mut value = json!({
                "publicKey": hex0x(public.to_uncompressed()),
                "address": key.signer.address().to_checksum(),
            });
            match &key.name {
                KeyName::Uri(uri) => value["key"] = Value::String(uri.clone()),
                KeyName::Id(id) => value["keyId"] = Value::String(id.clone()),
            }
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}

/// As `custody_sign_transaction`, with the key of a key handle (the CLI's
/// `sign-tx --key URI` or `--key-id ID`): `{"from", "hash", "r", "raw",
/// "s", "signingHash", "v"}`.
///
/// `code` is the key's current TOTP code, or NULL: a key enrolled for TOTP
/// refuses to sign without a valid, unused one.
///
/// Errors: `bad-input`, `totp-required`, `totp-invalid`, `totp-replayed`,
/// `totp-locked`, and the backend's (`access-denied`, `unavailable`,
/// `throttled`, `key-disabled`, ...).
///
/// # Safety
/// `key` is any value (it is looked up, not dereferenced); `tx_json` is
/// NULL or a NUL-terminated string, and so is `code`; `out_json` is NULL or
/// writable for one pointer; `err` is NULL or writable for one
/// `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_key_sign_transaction(
    key: *const CustodyKey,
    tx_json: *const c_char,
    code: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let key = key_handle(key)?;
            let text = input::text(tx_json, "tx_json")?;
            let code = input::optional_text(code, "code")?;
            let tx = Transaction::from_json_str(text).map_err(ErrorReport::from)?;
            let value = transaction_json(&key.signer, &tx, code)?;
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}

/// As `custody_sign_message`, with the key of a key handle:
/// `{"address", "digest", "signature"}`.
///
/// `code` as for `custody_key_sign_transaction`.
///
/// Errors: as `custody_key_sign_transaction`.
///
/// # Safety
/// `key` is any value (it is looked up, not dereferenced); `message` is
/// NULL (with `message_len` 0) or readable for `message_len` bytes; `code`
/// is NULL or a NUL-terminated string; `out_json` is NULL or writable for
/// one pointer; `err` is NULL or writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_key_sign_message(
    key: *const CustodyKey,
    message: *const u8,
    message_len: usize,
    code: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let key = key_handle(key)?;
            let message =
                PersonalMessage::from_bytes(input::bytes(message, message_len, "message")?);
            let code = input::optional_text(code, "code")?;
            let value = personal_message_json(&key.signer, &message, code)?;
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}

/// As `custody_sign_typed_data`, with the key of a key handle:
/// `{"address", "digest", "signature"}`.
///
/// `code` as for `custody_key_sign_transaction`.
///
/// Errors: as `custody_key_sign_transaction`.
///
/// # Safety
/// `key` is any value (it is looked up, not dereferenced);
/// `typed_data_json` is NULL or a NUL-terminated string, and so is `code`;
/// `out_json` is NULL or writable for one pointer; `err` is NULL or
/// writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_key_sign_typed_data(
    key: *const CustodyKey,
    typed_data_json: *const c_char,
    code: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let key = key_handle(key)?;
            let text = input::text(typed_data_json, "typed_data_json")?;
            let code = input::optional_text(code, "code")?;
            let typed = TypedData::from_json_str(text).map_err(ErrorReport::from)?;
            let value = typed_data_result(&key.signer, &typed, code)?;
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}
