//! A keystore whose KEK is in AWS KMS and a KMS signing key, through the C
//! ABI, against the KMS emulator (moto, started by `.ci/run`): skipped only
//! when `CUSTODY_TEST_KMS_ENDPOINT` or `CUSTODY_TEST_PYTHON` (a Python with
//! boto3, which creates the keys) is unset.
//!
//! The library reads the standard AWS environment, so this test sets it
//! for its process: it is the only test of this binary (no other thread
//! reads the environment meanwhile).
#![expect(
    clippy::unwrap_used,
    clippy::undocumented_unsafe_blocks,
    unsafe_code,
    reason = "tests call the C ABI the way C does, and unwrap: a failure is a test failure"
)]

#[path = "support/calls.rs"]
#[expect(dead_code, reason = "this test uses a part of the shared calls")]
mod calls;

use calls::*;
use custody_ffi::*;
use custody_kms::BackendConfig;

const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon abandon abandon about";

/// The emulator, shared with the binary's KMS tests (keys made with
/// boto3, another SDK than the one under test).
#[path = "../../../testing/kms_emulator.rs"]
mod kms_emulator;

#[test]
fn a_kms_kek_opens_the_keystore_and_a_kms_key_signs() {
    let Some(kms) = kms_emulator::emulator("a_kms_kek_opens_the_keystore_and_a_kms_key_signs")
    else {
        return;
    };
    for (k, v) in kms.aws_env() {
        // SAFETY: this is the only test of this binary, and it sets the
        // environment before anything of it (or of the library) runs on
        // another thread.
        unsafe { std::env::set_var(k, v) };
    }
    let kek_id = kms.kek();
    let (signing_id, _) = kms.signing_key();

    // `custody init --kek aws-kms:KEY`, through the library as the CLI does.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let kek_uri = format!("aws-kms:{kek_id}");
    let (rust, wallet) = create_under_kek(&dir, &BackendConfig::from_env(), &kek_uri, MNEMONIC);
    drop(rust);

    // Opened with no passphrase: KMS unwraps the master seed.
    let ks = open(&dir, None).unwrap();
    assert_eq!(
        derive_wallet(&ks, "alice")["address"],
        wallet.address().to_checksum()
    );

    // A KMS signing key behind the keystore's gates (not enrolled: no code).
    let uri = format!("aws-kms:{signing_id}");
    let key = key_open(&ks, &uri).unwrap();
    let derived = key_derive(&key);
    assert_eq!(derived["key"], uri.as_str());
    let message = b"signed inside KMS";
    let sig = key_sign_message(&key, message, None).unwrap();
    let digest = personal_digest(message);
    assert_eq!(sig["digest"], digest);
    assert_eq!(sig["address"], derived["address"]);
    assert_eq!(
        recover(&digest, sig["signature"].as_str().unwrap()),
        derived["publicKey"].as_str().unwrap(),
        "the KMS signature recovers to the key's public key"
    );

    // A key KMS does not have, and a key that cannot sign.
    let e = key_open(&ks, "aws-kms:alias/custody-ffi-missing").unwrap_err();
    assert_eq!(
        (e.status, e.kind.as_str()),
        (CUSTODY_ERR_OTHER, "not-found")
    );
    let e = key_open(&ks, &kek_uri).unwrap_err();
    assert_ne!(e.status, CUSTODY_OK, "a symmetric key is not a signing key");
    assert_eq!(custody_outstanding_buffers(), 0);
}
