//! Keystore handles: [`custody_keystore_open`] gives C an opaque
//! [`CustodyKeystore`] pointer, [`custody_keystore_free`] takes it back.
//!
//! A handle holds the keystore and the gated backend every signature and
//! export goes through, composed exactly as the `custody` CLI composes it:
//! `Audited(TotpGate(keystore backend))` over the keystore's own state
//! store and audit log.
//!
//! Handles live in a table keyed by their address, each an `Arc`: a call
//! looks its handle up (and holds a reference for the call's length), so
//! the C pointer is compared, never dereferenced. A freed or never-opened
//! handle is a `bad-input` error, and freeing a handle while another
//! thread uses it is safe (the keystore goes when the last call ends).

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use custody_core::{ErrorReport, KekKind, KeyRef, KeySigner, Keystore, Passphrase, SharedBackend};
use custody_eth::keystore_v3;
use custody_eth::{Address, EthSigner};
use custody_kms::BackendConfig;
use custody_totp::{KeystoreGate, TotpRegistry};
use serde_json::json;

use crate::error::{CustodyError, bad_input, enter};
use crate::input::{self, Out};
use crate::memory::hand_out_string;

/// An open keystore (opaque to C): made by [`custody_keystore_open`],
/// released by [`custody_keystore_free`]. Safe to use from several threads
/// at once.
pub struct CustodyKeystore {
    keystore: Keystore,
    /// `Audited(TotpGate(keystore.backend()))` and its registry (the
    /// default issuer).
    gate: KeystoreGate,
}

impl std::fmt::Debug for CustodyKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustodyKeystore")
            .field("dir", &self.keystore.dir())
            .finish_non_exhaustive()
    }
}

impl CustodyKeystore {
    /// Composes the gates over an open keystore, as the CLI does
    /// ([`KeystoreGate`], shared with every binding).
    fn new(keystore: Keystore) -> Result<Self, ErrorReport> {
        let gate = KeystoreGate::new(&keystore, keystore.backend())?;
        Ok(Self { keystore, gate })
    }

    /// The keystore.
    pub(crate) fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    /// The registry the gate consults.
    pub(crate) fn registry(&self) -> &Arc<TotpRegistry> {
        self.gate.registry()
    }

    /// The gated signer of a wallet's key: every signature through it
    /// passes the TOTP gate and lands in the audit log.
    pub(crate) fn gated_signer(&self, wallet: &str, index: u32) -> Result<EthSigner, ErrorReport> {
        pin(self.gate.backend().clone(), wallet, index)
    }

    /// The gated backend (for export).
    pub(crate) fn gated(&self) -> &SharedBackend {
        self.gate.backend()
    }
}

/// The TOTP registry over the keystore's KEK, state store and audit log,
/// with `issuer` in its URIs if given (the CLI's `registry`).
pub(crate) fn registry(
    ks: &Keystore,
    issuer: Option<&str>,
) -> Result<Arc<TotpRegistry>, ErrorReport> {
    Ok(KeystoreGate::registry_for(ks, issuer)?)
}

/// The key of (`wallet`, `index`) behind `backend`, as an Ethereum signer.
fn pin(backend: SharedBackend, wallet: &str, index: u32) -> Result<EthSigner, ErrorReport> {
    let key = KeyRef::Wallet {
        name: wallet.to_owned(),
        index,
    };
    let signer = KeySigner::pin(backend, key)
        .wait()
        .map_err(|e| ErrorReport::from(e).context("wallet/index"))?;
    Ok(EthSigner::new(signer)?)
}

/// Every open handle, by address.
static HANDLES: Mutex<BTreeMap<usize, Arc<CustodyKeystore>>> = Mutex::new(BTreeMap::new());

fn handles() -> MutexGuard<'static, BTreeMap<usize, Arc<CustodyKeystore>>> {
    // Each operation on the map is a single insert, get or remove: a
    // poisoned lock still guards a consistent map.
    HANDLES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The open keystore `ptr` names, for the length of one call.
pub(crate) fn handle(ptr: *const CustodyKeystore) -> Result<Arc<CustodyKeystore>, ErrorReport> {
    if ptr.is_null() {
        return Err(bad_input("ks: null handle"));
    }
    handles().get(&ptr.addr()).cloned().ok_or_else(|| {
        bad_input("ks: not an open keystore handle (freed already, or never opened)")
    })
}

/// The version of this library (the crate version), a static
/// NUL-terminated string: do not free it.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub extern "C" fn custody_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Opens the keystore in directory `dir` and sets `*out` to a new handle
/// (NULL on failure), with what the keystore's metadata says holds its
/// key-encryption key (KEK), as the `custody` CLI opens it:
///
/// - a passphrase KEK (the default of `custody init`): `passphrase`, which
///   must then be given;
/// - a KEK in AWS KMS (`custody init --kek aws-kms:KEY`): the key the
///   keystore records, with region, credentials and endpoint from the
///   standard AWS environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
///   `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, profiles);
/// - a KEK on a PKCS#11 token (`--kek pkcs11:token=…;object=…`): the
///   module from the URI's `module-path=` or `CUSTODY_PKCS11_MODULE`, the
///   PIN from its `pin-source=file:` or `CUSTODY_PKCS11_PIN`.
///
/// For a backend KEK `passphrase` is not needed (pass NULL and 0) and is
/// ignored. The TOTP guard, lockouts and audit log are the keystore
/// directory's own (the CLI's `--state file`).
///
/// Errors: `bad-input` (a null or non-UTF-8 argument, no passphrase for a
/// passphrase keystore, a malformed recorded URI or PIN file),
/// `not-found` (no keystore in `dir`, no such KMS key, token or object),
/// `wrong-passphrase`, `access-denied` (the KMS or token refused: wrong
/// credentials or PIN), `unavailable`, `throttled`, `key-disabled`,
/// `wrong-key-usage`, `decryption-failed`, `unsupported` (a backend this
/// library was built without), `malformed`, `io`.
///
/// # Safety
/// `dir` is NULL or a NUL-terminated string; `passphrase` is NULL or
/// readable for `passphrase_len` bytes (the passphrase's bytes, no
/// terminator needed; it is copied, and the copy wiped after use); `out` is
/// NULL or writable for one pointer; `err` is NULL or writable for one
/// `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_keystore_open(
    dir: *const c_char,
    passphrase: *const u8,
    passphrase_len: usize,
    out: *mut *mut CustodyKeystore,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out, "out")?;
            let dir = Path::new(input::text(dir, "dir")?);
            let kind = Keystore::kek_of(dir)?;
            let passphrase = match kind {
                KekKind::Passphrase if passphrase.is_null() => {
                    return Err(bad_input("passphrase: null pointer"));
                }
                KekKind::Passphrase => Some(Passphrase::new(
                    input::bytes(passphrase, passphrase_len, "passphrase")?.to_vec(),
                )),
                _ => None,
            };
            let config = BackendConfig::from_env();
            let unlock = config
                .unlock(&kind, passphrase.as_ref())
                .map_err(|e| e.report("the keystore's KEK"))?;
            let keystore = Keystore::open_with(dir, unlock)?;
            drop(passphrase);
            let handle = Arc::new(CustodyKeystore::new(keystore)?);
            let ptr = Arc::as_ptr(&handle).cast_mut();
            handles().insert(ptr.addr(), handle);
            out.set(ptr);
            Ok(())
        })
    }
}

/// Closes a keystore handle. NULL is allowed and does nothing.
///
/// Returns `CUSTODY_OK`, or `CUSTODY_ERR_BAD_INPUT` for a handle that is
/// not open (freed already, or never opened). Calls already running on
/// other threads finish normally: the keystore is released when the last
/// of them returns.
///
/// # Safety
/// `err` is NULL or writable for one `CustodyError`. `ks` is only compared
/// with the library's table of open handles, never dereferenced.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_keystore_free(
    ks: *mut CustodyKeystore,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: `err` is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            if ks.is_null() {
                return Ok(());
            }
            let removed = handles().remove(&ks.addr());
            match removed {
                Some(handle) => {
                    drop(handle);
                    Ok(())
                }
                None => Err(bad_input(
                    "ks: not an open keystore handle (freed already, or never opened)",
                )),
            }
        })
    }
}

/// Derives the key of (`wallet`, `index`) and sets `*out_json` to the JSON
/// object `custody derive --wallet NAME --index N` prints:
/// `{"address", "index", "path", "publicKey", "wallet"}` (EIP-55 address,
/// 65-byte uncompressed public key as 0x-hex, the full BIP32 path the
/// keystore's wallet scheme gives). Free it with `custody_string_free`.
///
/// Public data only: no TOTP code is needed, and nothing is audited.
///
/// Errors: `bad-input` (a null or non-UTF-8 argument, a wallet name or
/// index the scheme refuses).
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `wallet` is NULL
/// or a NUL-terminated string; `out_json` is NULL or writable for one
/// pointer; `err` is NULL or writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_derive(
    ks: *const CustodyKeystore,
    wallet: *const c_char,
    index: u32,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let handle = handle(ks)?;
            let wallet = input::text(wallet, "wallet")?;
            // A public key: nothing to gate (as the CLI's `derive`).
            let signer = pin(handle.keystore().backend(), wallet, index)?;
            let key = signer.key_signer().key();
            let mut value = json!({
                "publicKey": hex0x(signer.public_key().to_uncompressed()),
                "address": signer.address().to_checksum(),
                "wallet": wallet,
                "index": index,
            });
            if let Some(path) = key.path() {
                value["path"] = json!(path.to_string());
            }
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}

/// `0x` and lowercase hex.
pub(crate) fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Imports the private key of a Web3 Secret Storage v3 keystore file (the
/// JSON geth, eth-account, MetaMask and `custody keystore export` write;
/// scrypt or pbkdf2) into keystore `ks`, wrapped under its KEK, and sets
/// `*out_json` to what `custody keystore import --file` prints:
/// `{"address", "keyId"}`. Free it with `custody_string_free`; open the key
/// with `custody_key_open_id(ks, keyId, ...)`.
///
/// Errors: `bad-input` (a null or non-UTF-8 argument, a file that is not a
/// v3 keystore, the message naming the field), `wrong-passphrase` (a
/// wrong password or a tampered file: the MAC does not verify),
/// `unsupported` (a KDF or cipher v3
/// files may name but this library does not take), and the keystore's
/// (`io`, a backend KEK's errors).
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `v3_json` is
/// NULL or a NUL-terminated string; `password` is NULL (with
/// `password_len` 0, the empty password) or readable for `password_len`
/// bytes (copied, and the copy wiped after use); `out_json` is NULL or
/// writable for one pointer; `err` is NULL or writable for one
/// `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_keystore_import_v3(
    ks: *const CustodyKeystore,
    v3_json: *const c_char,
    password: *const u8,
    password_len: usize,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let handle = handle(ks)?;
            let text = input::text(v3_json, "v3_json")?;
            let password =
                Passphrase::new(input::bytes(password, password_len, "password")?.to_vec());
            let v3 =
                keystore_v3::parse(text).map_err(|e| ErrorReport::from(e).context("v3_json"))?;
            let secret = v3.decrypt(&password).map_err(ErrorReport::from)?;
            drop(password);
            let (id, public) = handle.keystore().import_key(secret)?;
            let value = json!({
                "address": Address::from_public_key(&public).to_checksum(),
                "keyId": id.as_str(),
            });
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}
