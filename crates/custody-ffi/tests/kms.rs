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

use std::process::Command;

use calls::*;
use custody_core::{CreateOptions, KeyRef, KeySigner, Keystore, Mnemonic, RootKek};
use custody_eth::{EthSigner, PersonalMessage};
use custody_ffi::*;
use custody_kms::{BackendConfig, BackendUri};

const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon abandon abandon about";

/// Creates a KMS key with boto3 (another SDK than the one under test).
fn create_key(python: &str, endpoint: &str, spec: &str, usage: &str) -> String {
    let script = format!(
        "import boto3\n\
         c=boto3.client('kms',endpoint_url='{endpoint}',region_name='us-east-1',\
         aws_access_key_id='AKIDCUSTODYTEST',aws_secret_access_key='x')\n\
         print(c.create_key(KeySpec='{spec}',KeyUsage='{usage}')['KeyMetadata']['KeyId'])"
    );
    let out = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_kms_kek_opens_the_keystore_and_a_kms_key_signs() {
    let (Ok(endpoint), Ok(python)) = (
        std::env::var("CUSTODY_TEST_KMS_ENDPOINT"),
        std::env::var("CUSTODY_TEST_PYTHON"),
    ) else {
        println!(
            "skipped a_kms_kek_opens_the_keystore_and_a_kms_key_signs: set CUSTODY_TEST_KMS_ENDPOINT to a KMS emulator (moto) and CUSTODY_TEST_PYTHON to a Python with boto3"
        );
        return;
    };
    for (k, v) in [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDCUSTODYTEST"),
        ("AWS_SECRET_ACCESS_KEY", "custody-test-secret-key-not-real"),
        // Never a developer's own AWS profile or instance metadata.
        ("AWS_CONFIG_FILE", "/nonexistent/custody-test"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/custody-test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        // SAFETY: this is the only test of this binary, and it sets the
        // environment before anything of it (or of the library) runs on
        // another thread.
        unsafe { std::env::set_var(k, v) };
    }
    let kek_id = create_key(&python, &endpoint, "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    let signing_id = create_key(&python, &endpoint, "ECC_SECG_P256K1", "SIGN_VERIFY");

    // `custody init --kek aws-kms:KEY`, through the library as the CLI does.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let kek_uri = format!("aws-kms:{kek_id}");
    let config = BackendConfig::from_env();
    let kek = config.kek(&BackendUri::parse(&kek_uri).unwrap()).unwrap();
    let rust = Keystore::create_with(
        &dir,
        RootKek::Backend {
            uri: &kek_uri,
            backend: kek,
        },
        &Mnemonic::parse(MNEMONIC).unwrap().to_seed(""),
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
    let wallet = EthSigner::new(
        KeySigner::pin(
            rust.backend(),
            KeyRef::Wallet {
                name: "alice".into(),
                index: 0,
            },
        )
        .wait()
        .unwrap(),
    )
    .unwrap();
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
    let digest = format!(
        "0x{}",
        hex::encode(
            PersonalMessage::from_bytes(message.to_vec())
                .signing_hash()
                .0
        )
    );
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
