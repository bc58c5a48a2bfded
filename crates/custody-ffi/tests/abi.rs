//! The C ABI called as C calls it (through the exported functions and raw
//! pointers), checked value for value against the Rust API on the same
//! keystore, plus every misuse path: null pointers, invalid UTF-8, freed
//! handles, double frees, wrong lengths. The last test compiles
//! `tests/c/smoke.c` with `cc` against the committed header and the built
//! library and runs it (under valgrind when `CUSTODY_FFI_VALGRIND=1`).
#![expect(unsafe_code, reason = "calls the C ABI through raw pointers")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]
#![expect(
    clippy::undocumented_unsafe_blocks,
    reason = "each call passes live locals or pointers the library returned; the helpers say so once"
)]

use std::ffi::{CStr, CString, c_char};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::ptr;

use custody_core::{
    AuditRecord, Authorization, CreateOptions, KeyRef, KeySigner, Keystore, Mnemonic, Passphrase,
};
use custody_eth::{EthSigner, PersonalMessage, Transaction, TypedData};
use custody_ffi::*;
use serde_json::Value;

const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon abandon abandon about";
const PASSPHRASE: &[u8] = b"correct horse battery staple";
const TX: &str = r#"{"type":"0x2","chainId":"0x1","nonce":"0x7","to":"0x3535353535353535353535353535353535353535","value":"0xde0b6b3a7640000","data":"0xdeadbeef","gas":"0x5208","maxFeePerGas":"0x4a817c800","maxPriorityFeePerGas":"0x3b9aca00","accessList":[]}"#;
const TYPED: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}"#;
const MESSAGE: &[u8] = b"hello from C";

/// A keystore made with the Rust API in a fresh directory.
fn make_keystore() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let seed = Mnemonic::parse(MNEMONIC).unwrap().to_seed("");
    let options = CreateOptions::light().unwrap();
    let path = dir.path().join("ks");
    Keystore::create(
        &path,
        &Passphrase::new(PASSPHRASE.to_vec()),
        &seed,
        &options,
    )
    .unwrap();
    dir
}

fn ks_dir(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("ks")
}

/// What the Rust API gives for (wallet, 0) on the keystore, ungated (the
/// wallets are not enrolled yet when this runs).
struct Expected {
    address: String,
    path: String,
    public_key: String,
    raw: String,
    tx_hash: String,
    signing_hash: String,
    v: u64,
    message_signature: String,
    typed_signature: String,
    private_key: [u8; 32],
}

fn expected(dir: &Path, wallet: &str) -> Expected {
    let ks = Keystore::open(dir, &Passphrase::new(PASSPHRASE.to_vec())).unwrap();
    let key = KeyRef::Wallet {
        name: wallet.to_owned(),
        index: 0,
    };
    let signer = EthSigner::new(KeySigner::pin(ks.backend(), key).wait().unwrap()).unwrap();
    let none = Authorization::none();
    let tx = Transaction::from_json_str(TX).unwrap();
    let signed = signer.sign_transaction(&tx, &none).wait().unwrap();
    let message = PersonalMessage::from_bytes(MESSAGE.to_vec());
    let message_sig = signer
        .sign_personal_message(&message, &none)
        .wait()
        .unwrap();
    let typed = TypedData::from_json_str(TYPED).unwrap();
    let typed_sig = signer.sign_typed_data(&typed, &none).wait().unwrap();
    let exporting = ks.backend();
    let secret = exporting
        .exporting()
        .unwrap()
        .export_private_key(signer.key_signer().key(), &none)
        .wait()
        .unwrap();
    let pinned = signer.key_signer().key();
    Expected {
        address: signer.address().to_checksum(),
        path: pinned.path().unwrap().to_string(),
        public_key: format!(
            "0x{}",
            hex::encode(pinned.secp256k1().unwrap().to_uncompressed())
        ),
        raw: format!("0x{}", hex::encode(signed.encoded())),
        tx_hash: format!("0x{}", hex::encode(signed.hash())),
        signing_hash: format!("0x{}", hex::encode(signed.signing_hash().0)),
        v: u64::try_from(signed.v()).unwrap(),
        message_signature: message_sig.to_string(),
        typed_signature: typed_sig.to_string(),
        private_key: *secret.expose_secret(),
    }
}

/// A failure as C sees it: status, kind, message.
#[derive(Debug, PartialEq)]
struct Failure {
    status: i32,
    kind: String,
    message: String,
}

fn c_text(raw: &[c_char]) -> String {
    unsafe { CStr::from_ptr(raw.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

fn fresh_error() -> CustodyError {
    // A struct full of garbage: every call must overwrite all of it.
    CustodyError {
        status: 99,
        kind: [0x41; CUSTODY_ERROR_KIND_LEN],
        message: [0x41; CUSTODY_ERROR_MESSAGE_LEN],
    }
}

/// Turns a status and its error struct into a result.
fn check(status: i32, err: &CustodyError) -> Result<(), Failure> {
    assert_eq!(status, err.status, "the struct repeats the status");
    if status == CUSTODY_OK {
        assert_eq!(c_text(&err.kind), "");
        assert_eq!(c_text(&err.message), "");
        return Ok(());
    }
    Err(Failure {
        status,
        kind: c_text(&err.kind),
        message: c_text(&err.message),
    })
}

/// Takes a string the library handed out: copies it and frees it (the
/// free must succeed once and fail the second time).
fn take_string(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let text = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    let mut err = fresh_error();
    check(unsafe { custody_string_free(s, &raw mut err) }, &err).unwrap();
    let again = check(unsafe { custody_string_free(s, &raw mut err) }, &err).unwrap_err();
    assert_eq!(again.kind, "bad-input", "double free");
    text
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn opt_ptr(s: Option<&CString>) -> *const c_char {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

/// An open keystore handle (freed on drop).
struct Handle(*mut CustodyKeystore);

impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { custody_keystore_free(self.0, ptr::null_mut()) };
    }
}

fn open(dir: &Path, passphrase: &[u8]) -> Result<Handle, Failure> {
    let dir = cstr(dir.to_str().unwrap());
    let mut out: *mut CustodyKeystore = ptr::dangling_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_keystore_open(
            dir.as_ptr(),
            passphrase.as_ptr(),
            passphrase.len(),
            &raw mut out,
            &raw mut err,
        )
    };
    match check(status, &err) {
        Ok(()) => Ok(Handle(out)),
        Err(e) => {
            assert!(out.is_null(), "the out-pointer is NULL after a failure");
            Err(e)
        }
    }
}

fn derive(ks: *const CustodyKeystore, wallet: &str, index: u32) -> Result<Value, Failure> {
    let wallet = cstr(wallet);
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe { custody_derive(ks, wallet.as_ptr(), index, &raw mut out, &raw mut err) };
    check(status, &err)?;
    Ok(serde_json::from_str(&take_string(out)).unwrap())
}

fn enrol(
    ks: *const CustodyKeystore,
    wallet: &str,
    rotate: Option<&str>,
) -> Result<String, Failure> {
    let wallet = cstr(wallet);
    let rotate = rotate.map(cstr);
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_totp_enrol(
            ks,
            wallet.as_ptr(),
            ptr::null(),
            opt_ptr(rotate.as_ref()),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    Ok(take_string(out))
}

fn sign_tx(
    ks: *const CustodyKeystore,
    wallet: &str,
    tx: &str,
    code: Option<&str>,
) -> Result<Value, Failure> {
    let (wallet, tx, code) = (cstr(wallet), cstr(tx), code.map(cstr));
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_sign_transaction(
            ks,
            wallet.as_ptr(),
            0,
            tx.as_ptr(),
            opt_ptr(code.as_ref()),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    Ok(serde_json::from_str(&take_string(out)).unwrap())
}

fn sign_message(
    ks: *const CustodyKeystore,
    wallet: &str,
    message: &[u8],
    code: Option<&str>,
) -> Result<Value, Failure> {
    let (wallet, code) = (cstr(wallet), code.map(cstr));
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_sign_message(
            ks,
            wallet.as_ptr(),
            0,
            message.as_ptr(),
            message.len(),
            opt_ptr(code.as_ref()),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    Ok(serde_json::from_str(&take_string(out)).unwrap())
}

fn sign_typed(
    ks: *const CustodyKeystore,
    wallet: &str,
    typed: &str,
    code: Option<&str>,
) -> Result<Value, Failure> {
    let (wallet, typed, code) = (cstr(wallet), cstr(typed), code.map(cstr));
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_sign_typed_data(
            ks,
            wallet.as_ptr(),
            0,
            typed.as_ptr(),
            opt_ptr(code.as_ref()),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    Ok(serde_json::from_str(&take_string(out)).unwrap())
}

fn export(
    ks: *const CustodyKeystore,
    wallet: &str,
    code: Option<&str>,
) -> Result<Vec<u8>, Failure> {
    let (wallet, code) = (cstr(wallet), code.map(cstr));
    let mut out: *mut u8 = ptr::null_mut();
    let mut len = 99usize;
    let mut err = fresh_error();
    let status = unsafe {
        custody_export_private_key(
            ks,
            wallet.as_ptr(),
            0,
            opt_ptr(code.as_ref()),
            &raw mut out,
            &raw mut len,
            &raw mut err,
        )
    };
    if let Err(e) = check(status, &err) {
        assert!(out.is_null());
        assert_eq!(len, 0);
        return Err(e);
    }
    let key = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
    // A wrong length frees nothing; the right one frees; a second free fails.
    let wrong = check(
        unsafe { custody_buffer_free(out, len - 1, &raw mut err) },
        &err,
    );
    assert_eq!(wrong.unwrap_err().kind, "bad-input");
    check(unsafe { custody_buffer_free(out, len, &raw mut err) }, &err).unwrap();
    let again = check(unsafe { custody_buffer_free(out, len, &raw mut err) }, &err);
    assert_eq!(again.unwrap_err().kind, "bad-input");
    Ok(key)
}

/// The base32 secret of an otpauth URI.
fn secret_of(uri: &str) -> Vec<u8> {
    let query = uri.split_once('?').unwrap().1;
    let b32 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap();
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, b32).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The current code of an otpauth URI, by totp-rs (an independent RFC 6238
/// implementation).
fn code_now(uri: &str) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(secret_of(uri))
        .build()
        .unwrap();
    totp.generate(now()).to_string()
}

/// A wrong code: the right one with its last digit changed.
fn wrong(code: &str) -> String {
    let (head, last) = code.split_at(code.len() - 1);
    let d = last.parse::<u8>().unwrap();
    format!("{head}{}", (d + 1) % 10)
}

fn audit_records(dir: &Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| AuditRecord::from_line(l).unwrap())
        .collect()
}

#[test]
fn derive_matches_the_rust_api() {
    let dir = make_keystore();
    let want = expected(&ks_dir(&dir), "alice");
    let ks = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    let got = derive(ks.0, "alice", 0).unwrap();
    assert_eq!(got["address"], want.address.as_str());
    assert_eq!(got["path"], want.path.as_str());
    assert_eq!(got["publicKey"], want.public_key.as_str());
    assert_eq!(got["wallet"], "alice");
    assert_eq!(got["index"], 0);
    // The default scheme's path for index 0 of the first wallet is a BIP44
    // path under m/44'/60'.
    assert!(want.path.starts_with("m/44'/60'/"), "{}", want.path);
    let other = derive(ks.0, "alice", 1).unwrap();
    assert_ne!(other["address"], got["address"]);
}

#[test]
fn signing_a_transaction_goes_through_the_totp_gate_and_matches_the_rust_api() {
    let dir = make_keystore();
    let want = expected(&ks_dir(&dir), "alice");
    let ks = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    // Not enrolled: signs without a code, as the CLI does.
    let unenrolled = sign_tx(ks.0, "alice", TX, None).unwrap();
    assert_eq!(unenrolled["raw"], want.raw.as_str());

    let uri = enrol(ks.0, "alice", None).unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let again = enrol(ks.0, "alice", None).unwrap_err();
    assert_eq!((again.status, again.kind.as_str()), (1, "already-exists"));

    let e = sign_tx(ks.0, "alice", TX, None).unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_AUTH, "totp-required")
    );
    let code = code_now(&uri);
    let e = sign_tx(ks.0, "alice", TX, Some(&wrong(&code))).unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_AUTH, "totp-invalid")
    );
    let before = audit_records(&ks_dir(&dir)).len();
    let got = sign_tx(ks.0, "alice", TX, Some(&code)).unwrap();
    assert_eq!(got["raw"], want.raw.as_str());
    assert_eq!(got["hash"], want.tx_hash.as_str());
    assert_eq!(got["from"], want.address.as_str());
    assert_eq!(got["v"], want.v);
    assert_eq!(got["signingHash"], want.signing_hash.as_str());
    // Decoding the raw transaction recovers the same sender.
    let raw = hex::decode(&want.raw[2..]).unwrap();
    let decoded = custody_eth::decode_signed(&raw).unwrap();
    assert_eq!(
        decoded.recover_sender().unwrap().to_checksum(),
        want.address
    );
    // The signature was audited (through `Audited`, as the CLI's).
    let records = audit_records(&ks_dir(&dir));
    assert!(records.len() > before, "the signature left an audit record");
    let e = sign_tx(ks.0, "alice", TX, Some(&code)).unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_AUTH, "totp-replayed")
    );
    // Another wallet is not gated by alice's enrolment.
    sign_tx(ks.0, "bob", TX, None).unwrap();
}

#[test]
fn messages_and_typed_data_match_the_rust_api_and_are_gated() {
    let dir = make_keystore();
    let want = expected(&ks_dir(&dir), "carol");
    let ks = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    let m = sign_message(ks.0, "carol", MESSAGE, None).unwrap();
    assert_eq!(m["signature"], want.message_signature.as_str());
    assert_eq!(m["address"], want.address.as_str());
    assert_eq!(
        m["digest"],
        format!(
            "0x{}",
            hex::encode(custody_eth::personal_message_hash(MESSAGE).0)
        )
        .as_str()
    );
    let t = sign_typed(ks.0, "carol", TYPED, None).unwrap();
    assert_eq!(t["signature"], want.typed_signature.as_str());
    // EIP-712's own example digest (the Mail example of the EIP).
    assert_eq!(
        t["digest"],
        "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );

    let uri = enrol(ks.0, "carol", None).unwrap();
    let e = sign_message(ks.0, "carol", MESSAGE, None).unwrap_err();
    assert_eq!(e.kind, "totp-required");
    let e = sign_typed(ks.0, "carol", TYPED, None).unwrap_err();
    assert_eq!(e.kind, "totp-required");
    let code = code_now(&uri);
    let m = sign_message(ks.0, "carol", MESSAGE, Some(&code)).unwrap();
    assert_eq!(m["signature"], want.message_signature.as_str());
    // The same code again is a replay, whatever is signed with it.
    let e = sign_typed(ks.0, "carol", TYPED, Some(&code)).unwrap_err();
    assert_eq!(e.kind, "totp-replayed");
    // An empty message: a NULL pointer with length 0 is an empty range.
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let wallet = cstr("dave");
    let status = unsafe {
        custody_sign_message(
            ks.0,
            wallet.as_ptr(),
            0,
            ptr::null(),
            0,
            ptr::null(),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err).unwrap();
    let v: Value = serde_json::from_str(&take_string(out)).unwrap();
    assert_eq!(
        v["digest"],
        format!(
            "0x{}",
            hex::encode(custody_eth::personal_message_hash(b"").0)
        )
        .as_str()
    );
}

#[test]
fn export_goes_through_the_gate_and_gives_the_rust_api_key() {
    let dir = make_keystore();
    let want = expected(&ks_dir(&dir), "erin");
    let ks = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    assert_eq!(export(ks.0, "erin", None).unwrap(), want.private_key);
    let uri = enrol(ks.0, "erin", None).unwrap();
    let e = export(ks.0, "erin", None).unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_AUTH, "totp-required")
    );
    let e = export(ks.0, "erin", Some(&wrong(&code_now(&uri)))).unwrap_err();
    assert_eq!(e.kind, "totp-invalid");
    let key = export(ks.0, "erin", Some(&code_now(&uri))).unwrap();
    assert_eq!(key, want.private_key);
    let e = export(ks.0, "erin", Some(&code_now(&uri))).unwrap_err();
    assert_eq!(e.kind, "totp-replayed");
}

#[test]
fn rotation_needs_the_current_code() {
    let dir = make_keystore();
    let ks = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    let first = enrol(ks.0, "frank", None).unwrap();
    let e = enrol(ks.0, "frank", Some(&wrong(&code_now(&first)))).unwrap_err();
    assert_eq!(e.kind, "totp-invalid");
    let second = enrol(ks.0, "frank", Some(&code_now(&first))).unwrap();
    assert_ne!(secret_of(&first), secret_of(&second));
    // Rotating a wallet not enrolled yet enrols it (EnrolMode::Rotate).
    let fresh = enrol(ks.0, "nobody", Some("123456")).unwrap();
    assert!(fresh.contains(":nobody?"), "{fresh}");
}

#[test]
fn opening_fails_with_the_cli_kinds() {
    let dir = make_keystore();
    let e = open(&ks_dir(&dir), b"wrong").err().unwrap();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_AUTH, "wrong-passphrase")
    );
    let e = open(&dir.path().join("missing"), PASSPHRASE).err().unwrap();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_OTHER, "not-found")
    );

    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let d = cstr(ks_dir(&dir).to_str().unwrap());
    let status = unsafe {
        custody_keystore_open(
            ptr::null(),
            PASSPHRASE.as_ptr(),
            1,
            &raw mut out,
            &raw mut err,
        )
    };
    let e = check(status, &err).unwrap_err();
    assert_eq!(
        (e.kind.as_str(), e.message.as_str()),
        ("bad-input", "dir: null pointer")
    );
    let status =
        unsafe { custody_keystore_open(d.as_ptr(), ptr::null(), 0, &raw mut out, &raw mut err) };
    let e = check(status, &err).unwrap_err();
    assert_eq!(e.message, "passphrase: null pointer");
    let status = unsafe {
        custody_keystore_open(
            d.as_ptr(),
            PASSPHRASE.as_ptr(),
            PASSPHRASE.len(),
            ptr::null_mut(),
            &raw mut err,
        )
    };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "out: null pointer"
    );
    // A non-UTF-8 directory name.
    let latin1 = CString::new(vec![b'/', 0xe9]).unwrap();
    let status = unsafe {
        custody_keystore_open(
            latin1.as_ptr(),
            PASSPHRASE.as_ptr(),
            PASSPHRASE.len(),
            &raw mut out,
            &raw mut err,
        )
    };
    assert_eq!(check(status, &err).unwrap_err().message, "dir: not UTF-8");
}

#[test]
fn misuse_is_a_typed_error() {
    let dir = make_keystore();
    let ks = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    let alice = cstr("alice");
    let mut out = ptr::null_mut();
    let mut err = fresh_error();

    // A null handle, in every function that takes one.
    let e = derive(ptr::null(), "alice", 0).unwrap_err();
    assert_eq!(
        (e.status, e.message.as_str()),
        (CUSTODY_ERR_BAD_INPUT, "ks: null handle")
    );
    assert_eq!(
        enrol(ptr::null(), "alice", None).unwrap_err().message,
        "ks: null handle"
    );
    assert_eq!(
        sign_tx(ptr::null(), "alice", TX, None).unwrap_err().message,
        "ks: null handle"
    );
    assert_eq!(
        sign_message(ptr::null(), "alice", b"m", None)
            .unwrap_err()
            .message,
        "ks: null handle"
    );
    assert_eq!(
        sign_typed(ptr::null(), "alice", TYPED, None)
            .unwrap_err()
            .message,
        "ks: null handle"
    );
    assert_eq!(
        export(ptr::null(), "alice", None).unwrap_err().message,
        "ks: null handle"
    );
    // A pointer that was never a handle (not dereferenced, only looked up).
    let bogus = 0x1000 as *const CustodyKeystore;
    assert_eq!(derive(bogus, "alice", 0).unwrap_err().kind, "bad-input");

    // Null string arguments and out-pointers.
    let status = unsafe { custody_derive(ks.0, ptr::null(), 0, &raw mut out, &raw mut err) };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "wallet: null pointer"
    );
    let status = unsafe { custody_derive(ks.0, alice.as_ptr(), 0, ptr::null_mut(), &raw mut err) };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "out_json: null pointer"
    );
    let status = unsafe {
        custody_sign_transaction(
            ks.0,
            alice.as_ptr(),
            0,
            ptr::null(),
            ptr::null(),
            &raw mut out,
            &raw mut err,
        )
    };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "tx_json: null pointer"
    );
    let status = unsafe {
        custody_sign_message(
            ks.0,
            alice.as_ptr(),
            0,
            ptr::null(),
            5,
            ptr::null(),
            &raw mut out,
            &raw mut err,
        )
    };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "message: null pointer with length 5"
    );
    let mut key: *mut u8 = ptr::null_mut();
    let status = unsafe {
        custody_export_private_key(
            ks.0,
            alice.as_ptr(),
            0,
            ptr::null(),
            &raw mut key,
            ptr::null_mut(),
            &raw mut err,
        )
    };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "out_len: null pointer"
    );

    // Invalid UTF-8 in a wallet name and a code.
    let latin1 = CString::new(vec![b'a', 0xe9]).unwrap();
    let status = unsafe { custody_derive(ks.0, latin1.as_ptr(), 0, &raw mut out, &raw mut err) };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "wallet: not UTF-8"
    );
    let tx = cstr(TX);
    let status = unsafe {
        custody_sign_transaction(
            ks.0,
            alice.as_ptr(),
            0,
            tx.as_ptr(),
            latin1.as_ptr(),
            &raw mut out,
            &raw mut err,
        )
    };
    assert_eq!(check(status, &err).unwrap_err().message, "code: not UTF-8");

    // Malformed inputs: the CLI's kinds and messages.
    let e = sign_tx(ks.0, "alice", r#"{"type":"0x2","chainId":"0x1"}"#, None).unwrap_err();
    assert_eq!(e.kind, "bad-input");
    assert!(
        e.message.contains("missing for a type 0x2 transaction"),
        "{}",
        e.message
    );
    let e = sign_tx(ks.0, "alice", "not json", None).unwrap_err();
    assert_eq!(e.kind, "bad-input");
    let e = sign_typed(ks.0, "alice", "{}", None).unwrap_err();
    assert_eq!(e.kind, "bad-input");
    let e = derive(ks.0, "", 0).unwrap_err();
    assert_eq!(e.kind, "bad-input");
    let e = derive(ks.0, "alice", 1 << 31).unwrap_err();
    assert_eq!(e.kind, "bad-input");
    assert!(e.message.starts_with("wallet/index: "), "{}", e.message);

    // An error struct is optional.
    let status = unsafe {
        custody_derive(
            ptr::null(),
            alice.as_ptr(),
            0,
            &raw mut out,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, CUSTODY_ERR_BAD_INPUT);

    // Freeing: a handle twice, then using it.
    let handle = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    let raw = handle.0;
    std::mem::forget(handle);
    check(unsafe { custody_keystore_free(raw, &raw mut err) }, &err).unwrap();
    let e = check(unsafe { custody_keystore_free(raw, &raw mut err) }, &err).unwrap_err();
    assert_eq!(e.kind, "bad-input");
    let e = derive(raw, "alice", 0).unwrap_err();
    assert!(
        e.message.starts_with("ks: not an open keystore handle"),
        "{}",
        e.message
    );
    check(
        unsafe { custody_keystore_free(ptr::null_mut(), &raw mut err) },
        &err,
    )
    .unwrap();
    // A string given to the buffer function, and a pointer never handed out.
    let text = {
        let mut s = ptr::null_mut();
        check(
            unsafe { custody_derive(ks.0, alice.as_ptr(), 0, &raw mut s, &raw mut err) },
            &err,
        )
        .unwrap();
        s
    };
    let e = check(
        unsafe { custody_buffer_free(text.cast(), 10, &raw mut err) },
        &err,
    )
    .unwrap_err();
    assert!(e.message.contains("custody_string_free"), "{}", e.message);
    take_string(text);
    let local = [0u8; 4];
    let e = check(
        unsafe { custody_buffer_free(local.as_ptr().cast_mut(), 4, &raw mut err) },
        &err,
    )
    .unwrap_err();
    assert_eq!(e.kind, "bad-input");
}

#[test]
fn handles_work_from_many_threads() {
    let dir = make_keystore();
    let ks = open(&ks_dir(&dir), PASSPHRASE).unwrap();
    let addr = ks.0 as usize;
    let want = derive(ks.0, "alice", 3).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || derive(addr as *const CustodyKeystore, "alice", 3).unwrap())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), want);
    }
}

#[test]
fn version_is_the_crate_version() {
    let v = unsafe { CStr::from_ptr(custody_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// The directory holding the built `libcustody_ffi.so`: beside this test's
/// binary in `target/<profile>/deps`, where cargo builds the library's
/// every crate type for the tests. (The copy one level up is refreshed only
/// by a `cargo build` of the library itself, so it may be stale.)
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    assert!(
        deps.join("libcustody_ffi.so").exists(),
        "libcustody_ffi.so not found in {}",
        deps.display()
    );
    deps
}

/// Compiles `tests/c/smoke.c` against `include/custody.h` and the cdylib,
/// runs it (under valgrind with `CUSTODY_FFI_VALGRIND=1`) on a keystore made
/// here, types in the TOTP codes it asks for (computed here by totp-rs from
/// the URIs it prints), and checks every value it compares against the Rust
/// API's.
#[test]
fn the_c_program_agrees_with_the_rust_api() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = library_dir();
    let dir = make_keystore();
    let out_dir = tempfile::tempdir().unwrap();
    let exe = out_dir.path().join("smoke");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-g",
            "-I",
        ])
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c/smoke.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lcustody_ffi", "-o"])
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success(), "cc failed");

    let alice = expected(&ks_dir(&dir), "alice");
    let bob = expected(&ks_dir(&dir), "bob");
    let dave = expected(&ks_dir(&dir), "dave");
    let valgrind = std::env::var("CUSTODY_FFI_VALGRIND").is_ok_and(|v| v == "1");
    let mut cmd = if valgrind {
        let mut c = Command::new("valgrind");
        c.args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--quiet",
        ])
        .arg(format!(
            "--suppressions={}",
            crate_dir.join("tests/c/valgrind.supp").display()
        ))
        .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    // cargo test puts target/<profile> on LD_LIBRARY_PATH, which would win
    // over the rpath: name the fresh library's directory alone.
    cmd.env("LD_LIBRARY_PATH", &lib)
        .arg(ks_dir(&dir))
        .arg(std::str::from_utf8(PASSPHRASE).unwrap())
        .arg(TX)
        .arg(&alice.address)
        .arg(&alice.raw)
        .arg(&bob.message_signature)
        .arg(hex::encode(dave.private_key))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut transcript = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        transcript.push(line.trim_end().to_owned());
        // "uri WALLET otpauth://...": answer "CODE" for that wallet.
        if let Some(rest) = line.trim_end().strip_prefix("uri ") {
            let (_, uri) = rest.split_once(' ').unwrap();
            writeln!(stdin, "{}", code_now(uri)).unwrap();
            stdin.flush().unwrap();
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let text = transcript.join("\n");
    assert!(status.success(), "the C program failed:\n{text}");
    let last = transcript.last().unwrap();
    assert!(
        last.starts_with("ok: ") && last.ends_with(" checks"),
        "{text}"
    );
    let checks: u32 = last["ok: ".len()..last.len() - " checks".len()]
        .parse()
        .unwrap();
    assert!(checks >= 30, "{text}");
    // The program's gated signature and export are in the audit log.
    assert!(audit_records(&ks_dir(&dir)).len() >= 2);
}
