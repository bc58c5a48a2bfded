//! Key handles through the C ABI: a key imported from an eth-account v3
//! file, signing by its id; and a keystore whose KEK is on a PKCS#11 token
//! (SoftHSM2) with a token key that signs behind the keystore's TOTP gate.
//! The PKCS#11 test is skipped only when `CUSTODY_TEST_PKCS11_MODULE` is
//! unset (`.ci/run` sets it and `SOFTHSM2_CONF`).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::undocumented_unsafe_blocks,
    unsafe_code,
    reason = "tests call the C ABI the way C does, and unwrap: a failure is a test failure"
)]

#[path = "support/calls.rs"]
mod calls;

use std::path::Path;
use std::ptr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use calls::*;
use custody_core::{
    Authorization, CreateOptions, KeyRef, KeySigner, Keystore, Mnemonic, Passphrase,
    PrivateKeyBytes, RootKek,
};
use custody_eth::{EthSigner, PersonalMessage, Transaction, TypedData};
use custody_ffi::*;
use custody_kms::BackendUri;
use custody_totp::{EnrolMode, KeystoreGate};
use serde_json::Value;

const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon abandon abandon about";
const PASSPHRASE: &[u8] = b"correct horse battery staple";
const TX: &str = r#"{"type":"0x2","chainId":"0x1","nonce":"0x7","to":"0x3535353535353535353535353535353535353535","value":"0xde0b6b3a7640000","data":"0xdeadbeef","gas":"0x5208","maxFeePerGas":"0x4a817c800","maxPriorityFeePerGas":"0x3b9aca00","accessList":[]}"#;
const TYPED: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],"Mail":[{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","chainId":1},"message":{"contents":"Hello, Bob!"}}"#;
const MESSAGE: &[u8] = b"hello from C";

fn v3_vector(file: &str) -> (String, Value) {
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../custody-eth/tests/vectors/keystore_v3/eth_account/"
    );
    let index: Value =
        serde_json::from_slice(&std::fs::read(format!("{base}index.json")).unwrap()).unwrap();
    let v = index["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["file"] == file)
        .unwrap()
        .clone();
    (std::fs::read_to_string(format!("{base}{file}")).unwrap(), v)
}

fn import_v3(ks: &Ks, json: &str, password: &[u8]) -> Result<Value, Failure> {
    let json = cstr(json);
    let mut out = ptr::null_mut();
    let mut err = fresh_error();
    let status = unsafe {
        custody_keystore_import_v3(
            ks.0,
            json.as_ptr(),
            password.as_ptr(),
            password.len(),
            &raw mut out,
            &raw mut err,
        )
    };
    check(status, &err)?;
    let text = unsafe { std::ffi::CStr::from_ptr(out) }
        .to_str()
        .unwrap()
        .to_owned();
    check(unsafe { custody_string_free(out, &raw mut err) }, &err).unwrap();
    Ok(serde_json::from_str(&text).unwrap())
}

fn make_passphrase_keystore(dir: &Path) {
    let seed = Mnemonic::parse(MNEMONIC).unwrap().to_seed("");
    Keystore::create(
        dir,
        &Passphrase::new(PASSPHRASE.to_vec()),
        &seed,
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
}

#[test]
fn an_eth_account_v3_key_imports_and_signs_by_its_id_as_the_rust_api() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    make_passphrase_keystore(&dir);
    let (json, v) = v3_vector("scrypt_n8192_unicode.json");
    let password = v["password"].as_str().unwrap().as_bytes();
    let ks = open(&dir, Some(PASSPHRASE)).unwrap();

    // Wrong password, and a file that is not a v3 keystore: nothing imported.
    let e = import_v3(&ks, &json, b"not the password").unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_AUTH, "wrong-passphrase")
    );
    let e = import_v3(&ks, r#"{"version":3}"#, password).unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_BAD_INPUT, "bad-input")
    );
    assert!(e.message.starts_with("v3_json: "), "{}", e.message);

    let out = import_v3(&ks, &json, password).unwrap();
    let address = out["address"].as_str().unwrap();
    assert_eq!(
        address.to_lowercase(),
        format!("0x{}", v["address"].as_str().unwrap())
    );
    let id = out["keyId"].as_str().unwrap();

    // The same private key, signed with by the Rust API (RFC 6979: the
    // signatures are equal byte for byte).
    let secret: [u8; 32] = hex::decode(v["privateKey"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let other = tmp.path().join("other");
    make_passphrase_keystore(&other);
    let rust = Keystore::open(&other, &Passphrase::new(PASSPHRASE.to_vec())).unwrap();
    let (rust_id, _) = rust.import_key(PrivateKeyBytes::new(secret)).unwrap();
    let signer = EthSigner::new(
        KeySigner::pin(rust.backend(), KeyRef::Stored(rust_id))
            .wait()
            .unwrap(),
    )
    .unwrap();
    let none = Authorization::none();

    let key = key_open_id(&ks, id).unwrap();
    let derived = key_derive(&key);
    assert_eq!(derived["address"], address);
    assert_eq!(derived["keyId"], id);
    assert_eq!(
        derived["publicKey"],
        format!("0x{}", hex::encode(signer.public_key().to_uncompressed()))
    );
    let sig = key_sign_message(&key, MESSAGE, None).unwrap();
    let want = signer
        .sign_personal_message(&PersonalMessage::from_bytes(MESSAGE.to_vec()), &none)
        .wait()
        .unwrap();
    assert_eq!(sig["signature"], want.to_string());
    assert_eq!(sig["address"], address);
    let tx = key_sign_transaction(&key, TX, None).unwrap();
    let want = signer
        .sign_transaction(&Transaction::from_json_str(TX).unwrap(), &none)
        .wait()
        .unwrap();
    assert_eq!(tx["raw"], format!("0x{}", hex::encode(want.encoded())));
    assert_eq!(tx["from"], address);
    let typed = key_sign_typed_data(&key, TYPED, None).unwrap();
    let want = signer
        .sign_typed_data(&TypedData::from_json_str(TYPED).unwrap(), &none)
        .wait()
        .unwrap();
    assert_eq!(typed["signature"], want.to_string());

    // The key survives its keystore handle's release (it holds what it
    // needs), and an unknown id is not-found.
    drop(ks);
    assert_eq!(
        key_sign_message(&key, b"x", None).unwrap()["address"],
        address
    );
    let ks = open(&dir, Some(PASSPHRASE)).unwrap();
    let e = key_open_id(&ks, "no-such-key").unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str(), e.message.as_str()),
        (CUSTODY_ERR_OTHER, "not-found", "no such key")
    );
    let e = key_open_id(&ks, "two words").unwrap_err();
    assert_eq!(e.kind, "bad-input");
    assert!(e.message.starts_with("key_id: "), "{}", e.message);
}

#[test]
fn key_handles_refuse_misuse_with_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    make_passphrase_keystore(&dir);
    let ks = open(&dir, Some(PASSPHRASE)).unwrap();
    let mut err = fresh_error();
    let mut out = ptr::null_mut();

    // Null and unknown handles, double free.
    let status = unsafe { custody_key_derive(ptr::null(), &raw mut out, &raw mut err) };
    let e = check(status, &err).unwrap_err();
    assert_eq!(
        (e.kind.as_str(), e.message.as_str()),
        ("bad-input", "key: null handle")
    );
    let bogus = ptr::dangling::<CustodyKey>();
    let status = unsafe { custody_key_derive(bogus, &raw mut out, &raw mut err) };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "key: not an open key handle (freed already, or never opened)"
    );
    assert_eq!(
        unsafe { custody_key_free(ptr::null_mut(), &raw mut err) },
        CUSTODY_OK
    );

    // URIs: the library's parser, the CLI's messages (with the argument).
    for (uri, kind, message) in [
        (
            "passphrase",
            "bad-input",
            "uri: expected aws-kms:KEY or pkcs11:token=LABEL;object=LABEL",
        ),
        (
            "file:/k",
            "bad-input",
            "uri: expected passphrase, aws-kms:KEY or pkcs11:token=LABEL;object=LABEL",
        ),
        (
            "aws-kms:",
            "bad-input",
            "uri: aws-kms:KEY needs a key id, ARN or alias/NAME (printable ASCII, no spaces)",
        ),
        (
            "pkcs11:token=t",
            "bad-input",
            "uri: the pkcs11: URI names no object (object=LABEL)",
        ),
        (
            "pkcs11:token=t;object=o?pin-source=file:/nonexistent/custody-pin&module-path=/nonexistent/p11.so",
            "bad-input",
            "invalid PKCS#11 input: the PIN file cannot be read",
        ),
    ] {
        let e = key_open(&ks, uri).unwrap_err();
        assert_eq!(
            (e.status, e.kind.as_str(), e.message.as_str()),
            (CUSTODY_ERR_BAD_INPUT, kind, message),
            "{uri}"
        );
    }
    let mut key: *mut CustodyKey = ptr::dangling_mut();
    let status = unsafe { custody_key_open(ks.0, ptr::null(), &raw mut key, &raw mut err) };
    assert_eq!(
        check(status, &err).unwrap_err().message,
        "uri: null pointer"
    );
    assert!(key.is_null());

    // A freed key handle.
    let (json, v) = v3_vector("scrypt_light_p6_empty_password.json");
    let id = import_v3(&ks, &json, b"").unwrap()["keyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = key_open_id(&ks, &id).unwrap();
    assert_eq!(
        key_derive(&key)["address"].as_str().unwrap().to_lowercase(),
        format!("0x{}", v["address"].as_str().unwrap())
    );
    let raw = key.0;
    drop(key);
    let e = check(unsafe { custody_key_free(raw, &raw mut err) }, &err).unwrap_err();
    assert_eq!(e.kind, "bad-input", "double free");
    assert_eq!(custody_outstanding_buffers(), 0);
}

#[test]
fn a_keystore_under_a_backend_kek_reaches_for_that_backend() {
    // A keystore whose root KEK a backend holds (a software KEK standing in
    // for a token): opening it needs no passphrase and reaches for the
    // backend its URI names, here a token whose PIN file is missing.
    let dir = tempfile::tempdir().unwrap();
    let kek: custody_core::SharedBackend = Arc::new(custody_core::LocalKek::from_key(
        custody_core::KekId::new("root-kek").unwrap(),
        custody_core::DataKey::new([1; 32]),
    ));
    Keystore::create_with(
        dir.path(),
        RootKek::Backend {
            uri: "pkcs11:token=t;object=root-kek?module-path=/nonexistent/p11.so&pin-source=file:/nonexistent/custody-pin",
            backend: kek,
        },
        &custody_core::Seed::new([0x42; 64]),
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
    let e = open(dir.path(), None).err().unwrap();
    assert_eq!(
        (e.status, e.kind.as_str(), e.message.as_str()),
        (
            CUSTODY_ERR_BAD_INPUT,
            "bad-input",
            "invalid PKCS#11 input: the PIN file cannot be read"
        )
    );
    // A passphrase keystore still needs its passphrase.
    let other = dir.path().join("other");
    make_passphrase_keystore(&other);
    let e = open(&other, None).err().unwrap();
    assert_eq!(e.message, "passphrase: null pointer");
}

// ----------------------------------------------------------------- PKCS#11

/// A fresh token with a KEK and a signing key (the workspace's one copy
/// of its set-up, shared with the other crate's PKCS#11 test).
#[path = "../../../testing/softhsm_token.rs"]
mod softhsm_token;
use softhsm_token::USER_PIN;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The current code of a TOTP secret (an independent RFC 6238
/// implementation).
fn code_now(secret: &[u8]) -> String {
    let totp = totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .build()
        .unwrap();
    totp.generate(now()).to_string()
}

#[test]
fn a_pkcs11_token_holds_the_kek_and_a_gated_signing_key() {
    let test = "a_pkcs11_token_holds_the_kek_and_a_gated_signing_key";
    let Some(softhsm_token::Token {
        module,
        label,
        signer: public,
    }) = softhsm_token::token(test, "ffi")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pin_file = tmp.path().join("pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    let query = format!(
        "?module-path={}&pin-source=file:{}",
        module.display(),
        pin_file.display()
    );
    let kek_uri = format!("pkcs11:token={label};object=root-kek{query}");
    let dir = tmp.path().join("ks");

    // `custody init --kek pkcs11:...`, through the library as the CLI does.
    let (rust, wallet) =
        create_under_kek(&dir, &custody_kms::BackendConfig::new(), &kek_uri, MNEMONIC);
    // The token key enrolled for TOTP (`custody totp register --key URI`).
    let signer_uri = format!("pkcs11:token={label};object=signer{query}");
    let enrolment = KeystoreGate::registry_for(&rust, None)
        .unwrap()
        .enrol_key(BackendUri::label(&signer_uri), &public, EnrolMode::New)
        .wait()
        .unwrap();
    let totp_secret = enrolment.uri().expose_secret().to_vec();
    drop(rust);

    // The C ABI opens it with no passphrase: the token holds the KEK.
    let ks = open(&dir, None).unwrap();
    assert_eq!(
        derive_wallet(&ks, "alice")["address"],
        wallet.address().to_checksum()
    );

    let key = key_open(&ks, &signer_uri).unwrap();
    let derived = key_derive(&key);
    let public_hex = format!("0x{}", hex::encode(public.to_uncompressed()));
    assert_eq!(derived["publicKey"], public_hex);
    assert_eq!(derived["key"], signer_uri);
    assert_eq!(
        derived["address"],
        custody_eth::Address::from_public_key(&public).to_checksum()
    );

    // Gated as a wallet: no code, a wrong code, then the right one.
    let e = key_sign_message(&key, MESSAGE, None).unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_AUTH, "totp-required")
    );
    let e = key_sign_message(&key, MESSAGE, Some("000000")).unwrap_err();
    assert!(
        matches!(e.kind.as_str(), "totp-invalid" | "totp-replayed"),
        "{e:?}"
    );
    let code = code_now(&totp_secret);
    let sig = key_sign_message(&key, MESSAGE, Some(&code)).unwrap();
    assert_eq!(sig["address"], derived["address"]);
    let digest = personal_digest(MESSAGE);
    assert_eq!(sig["digest"], digest);
    assert_eq!(
        recover(&digest, sig["signature"].as_str().unwrap()),
        public_hex,
        "the token's signature recovers to its key"
    );
    let e = key_sign_message(&key, MESSAGE, Some(&code)).unwrap_err();
    assert_eq!(e.kind, "totp-replayed");

    // A token object that does not exist, and one that is not a signing key.
    let e = key_open(&ks, &format!("pkcs11:token={label};object=missing{query}")).unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_OTHER, "not-found")
    );
    assert_eq!(custody_outstanding_buffers(), 0);
}
