//! The C calls of the key-handle tests, made as C makes them (pointers,
//! an error struct full of garbage, results copied then freed), shared by
//! `keys.rs` and `kms.rs` with `#[path]`; and the keystore both make
//! under a backend's KEK through the library, as the CLI does.

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;

use custody_core::{CreateOptions, KeyRef, KeySigner, Keystore, Mnemonic, RootKek};
use custody_eth::{EthSigner, PersonalMessage};
use custody_ffi::*;
use custody_kms::{BackendConfig, BackendUri};
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde_json::Value;

/// A failure as C sees it: status, kind, message.
#[derive(Debug, PartialEq)]
pub(crate) struct Failure {
    pub(crate) status: i32,
    pub(crate) kind: String,
    pub(crate) message: String,
}

fn c_text(raw: &[c_char]) -> String {
    // SAFETY: the library NUL-terminates both arrays.
    unsafe { CStr::from_ptr(raw.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn fresh_error() -> CustodyError {
    CustodyError {
        status: 99,
        kind: [0x41; CUSTODY_ERROR_KIND_LEN],
        message: [0x41; CUSTODY_ERROR_MESSAGE_LEN],
    }
}

pub(crate) fn check(status: i32, err: &CustodyError) -> Result<(), Failure> {
    assert_eq!(status, err.status, "the struct repeats the status");
    if status == CUSTODY_OK {
        assert_eq!(c_text(&err.kind), "");
        return Ok(());
    }
    Err(Failure {
        status,
        kind: c_text(&err.kind),
        message: c_text(&err.message),
    })
}

/// Copies a string the library handed out, then frees it.
fn take_json(s: *mut c_char) -> Value {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    let mut err = fresh_error();
    check(unsafe { custody_string_free(s, &raw mut err) }, &err).unwrap();
    serde_json::from_str(&text).unwrap()
}

pub(crate) fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// An open keystore handle (freed on drop).
#[derive(Debug)]
pub(crate) struct Ks(pub(crate) *mut CustodyKeystore);

impl Drop for Ks {
    fn drop(&mut self) {
        let mut err = fresh_error();
        check(unsafe { custody_keystore_free(self.0, &raw mut err) }, &err).unwrap();
    }
}

/// Opens `dir`, with `passphrase` or (None) a NULL pointer.
pub(crate) fn open(dir: &Path, passphrase: Option<&[u8]>) -> Result<Ks, Failure> {
    let dir = cstr(dir.to_str().unwrap());
    let (p, len) = passphrase.map_or((ptr::null(), 0), |p| (p.as_ptr(), p.len()));
    let mut out: *mut CustodyKeystore = ptr::dangling_mut();
    let mut err = fresh_error();
    let status = unsafe { custody_keystore_open(dir.as_ptr(), p, len, &raw mut out, &raw mut err) };
    match check(status, &err) {
        Ok(()) => Ok(Ks(out)),
        Err(e) => {
            assert!(out.is_null(), "the out-pointer is NULL after a failure");
            Err(e)
        }
    }
}

pub(crate) fn derive_wallet(ks: &Ks, wallet: &str) -> Value {
    let wallet = cstr(wallet);
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe { custody_derive(ks.0, wallet.as_ptr(), 0, &raw mut out, &raw mut err) };
    check(status, &err).unwrap();
    take_json(out)
}

/// An open key handle (freed on drop).
#[derive(Debug)]
pub(crate) struct Key(pub(crate) *mut CustodyKey);

impl Drop for Key {
    fn drop(&mut self) {
        let mut err = fresh_error();
        check(unsafe { custody_key_free(self.0, &raw mut err) }, &err).unwrap();
    }
}

fn key_result(status: i32, err: &CustodyError, out: *mut CustodyKey) -> Result<Key, Failure> {
    match check(status, err) {
        Ok(()) => Ok(Key(out)),
        Err(e) => {
            assert!(out.is_null(), "the out-pointer is NULL after a failure");
            Err(e)
        }
    }
}

pub(crate) fn key_open(ks: &Ks, uri: &str) -> Result<Key, Failure> {
    let uri = cstr(uri);
    let mut out: *mut CustodyKey = ptr::dangling_mut();
    let mut err = fresh_error();
    let status = unsafe { custody_key_open(ks.0, uri.as_ptr(), &raw mut out, &raw mut err) };
    key_result(status, &err, out)
}

pub(crate) fn key_open_id(ks: &Ks, id: &str) -> Result<Key, Failure> {
    let id = cstr(id);
    let mut out: *mut CustodyKey = ptr::dangling_mut();
    let mut err = fresh_error();
    let status = unsafe { custody_key_open_id(ks.0, id.as_ptr(), &raw mut out, &raw mut err) };
    key_result(status, &err, out)
}

pub(crate) fn key_derive(key: &Key) -> Value {
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe { custody_key_derive(key.0, &raw mut out, &raw mut err) };
    check(status, &err).unwrap();
    take_json(out)
}

pub(crate) fn key_sign_message(
    key: &Key,
    message: &[u8],
    code: Option<&str>,
) -> Result<Value, Failure> {
    let code = code.map(cstr);
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_key_sign_message(
            key.0,
            message.as_ptr(),
            message.len(),
            code.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    Ok(take_json(out))
}

pub(crate) fn key_sign_transaction(
    key: &Key,
    tx: &str,
    code: Option<&str>,
) -> Result<Value, Failure> {
    let (tx, code) = (cstr(tx), code.map(cstr));
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_key_sign_transaction(
            key.0,
            tx.as_ptr(),
            code.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    Ok(take_json(out))
}

pub(crate) fn key_sign_typed_data(
    key: &Key,
    typed: &str,
    code: Option<&str>,
) -> Result<Value, Failure> {
    let (typed, code) = (cstr(typed), code.map(cstr));
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_key_sign_typed_data(
            key.0,
            typed.as_ptr(),
            code.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    Ok(take_json(out))
}

/// The uncompressed public key (0x-hex) that signed `digest` (0x-hex) with
/// the 65-byte r‖s‖v `signature` (0x-hex, v 27/28), recovered with k256.
pub(crate) fn recover(digest: &str, signature: &str) -> String {
    let rsv = hex::decode(&signature[2..]).unwrap();
    let sig = Signature::from_slice(&rsv[..64]).unwrap();
    assert_eq!(sig.normalize_s(), sig, "low s");
    let recid = RecoveryId::from_byte(rsv[64] - 27).unwrap();
    let hash = hex::decode(&digest[2..]).unwrap();
    let key = VerifyingKey::recover_from_prehash(&hash, &sig, recid).unwrap();
    format!("0x{}", hex::encode(key.to_sec1_point(false).as_bytes()))
}

/// `custody init --kek URI`, through the library as the CLI does: a
/// keystore in `dir` under the KEK `kek_uri` (reached through `config`)
/// holding the seed of `mnemonic`, and its wallet `alice`'s key 0 as an
/// Ethereum signer (what the C ABI must derive once it opens the
/// keystore).
pub(crate) fn create_under_kek(
    dir: &Path,
    config: &BackendConfig,
    kek_uri: &str,
    mnemonic: &str,
) -> (Keystore, EthSigner) {
    let kek = config.kek(&BackendUri::parse(kek_uri).unwrap()).unwrap();
    let keystore = Keystore::create_with(
        dir,
        RootKek::Backend {
            uri: kek_uri,
            backend: kek,
        },
        &Mnemonic::parse(mnemonic).unwrap().to_seed(""),
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
    let wallet = EthSigner::new(
        KeySigner::pin(
            keystore.backend(),
            KeyRef::Wallet {
                name: "alice".into(),
                index: 0,
            },
        )
        .wait()
        .unwrap(),
    )
    .unwrap();
    (keystore, wallet)
}

/// The EIP-191 digest of the personal message `message`, `0x` and hex,
/// as the C ABI reports it.
pub(crate) fn personal_digest(message: &[u8]) -> String {
    format!(
        "0x{}",
        hex::encode(
            PersonalMessage::from_bytes(message.to_vec())
                .signing_hash()
                .0
        )
    )
}
