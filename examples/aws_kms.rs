//! The root of trust in AWS KMS, in both custody models, with nothing
//! above the `KeyBackend` seam changed from the quickstart:
//!
//! 1. **wrapped by a KMS key** (Fortmatic's model): the HD master seed and
//!    the TOTP secrets are sealed under a `SYMMETRIC_DEFAULT` KMS key
//!    (`KmsKek`); signing happens in process, through
//!    `Audited(TotpGate(Vault))`, exactly as with the local keystore;
//! 2. **a key that never leaves** (`KmsSigner`): an `ECC_SECG_P256K1`
//!    `SIGN_VERIFY` key signs the digest inside KMS; custody pins its public
//!    key once and normalizes every signature (low-s, recovery id found).
//!
//! Run against AWS (credentials, region and endpoint from the standard AWS
//! environment) with two keys you made:
//!
//! ```sh
//! CUSTODY_KMS_KEK=alias/custody-kek CUSTODY_KMS_SIGNING_KEY=alias/custody-hot \
//!   cargo run -p custody-examples --features aws-kms --example aws_kms
//! ```
//!
//! or against the KMS emulator, which makes its own keys:
//!
//! ```sh
//! python3 ../shared/tools/moto_kms_server.py -H 127.0.0.1 -p 4566 &
//! AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
//!   cargo run -p custody-examples --features aws-kms --example aws_kms -- --create-keys
//! ```

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use custody_core::{
    Audited, Authorization, EncryptionContext, Envelope, KekId, KeyId, KeyRef, KeySigner,
    MemoryAuditLog, MemoryStore, Mnemonic, SharedBackend, Vault, WalletScheme,
};
use custody_eth::{EthSigner, Transaction};
use custody_kms::{KmsClient, KmsKek, KmsSigner};
use custody_totp::{EnrolMode, TotpConfig, TotpGate, TotpRegistry};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A key id from the environment, or a fresh key on an emulator.
fn key_id(
    client: &KmsClient,
    var: &str,
    create: bool,
    spec: KeySpec,
    usage: KeyUsageType,
) -> Result<String> {
    if let Ok(id) = std::env::var(var) {
        return Ok(id);
    }
    if !create {
        return Err(format!(
            "set {var} to a KMS key id, ARN or alias (or pass --create-keys on an emulator)"
        )
        .into());
    }
    let sdk = client.sdk_client().clone();
    let made = client.runtime().block_on(async move {
        sdk.create_key()
            .key_spec(spec)
            .key_usage(usage)
            .send()
            .await
    })?;
    made.key_metadata
        .map(|m| m.key_id)
        .ok_or_else(|| "CreateKey returned no key".into())
}

fn main() -> Result<()> {
    let create = std::env::args().any(|a| a == "--create-keys");
    // One KMS client for every call, configured from the AWS environment.
    let client = KmsClient::from_env_with_own_runtime()?;
    let kek_id = KekId::new(key_id(
        &client,
        "CUSTODY_KMS_KEK",
        create,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )?)?;
    let signing_id = KeyId::new(key_id(
        &client,
        "CUSTODY_KMS_SIGNING_KEY",
        create,
        KeySpec::EccSecgP256K1,
        KeyUsageType::SignVerify,
    )?)?;

    // 1. The master seed under the KMS KEK: GenerateDataKey once, and only
    //    the envelope is stored. Opening it later is one Decrypt.
    let kek: SharedBackend = Arc::new(KmsKek::new(client.clone(), kek_id.clone()));
    let wrapping = kek.wrapping().ok_or("a KMS KEK wraps")?;
    let mnemonic = Mnemonic::generate(24)?;
    let context = EncryptionContext::new().with("purpose", "hd-master")?;
    let seed = mnemonic.to_seed("");
    let sealed = Envelope::seal(wrapping, &kek_id, &context, seed.expose_secret())
        .wait()?
        .to_bytes();
    drop((seed, mnemonic));
    println!(
        "1. master seed sealed under {kek_id}: {} bytes at rest",
        sealed.len()
    );
    let seed = Envelope::from_bytes(&sealed)?
        .open(wrapping, &context)
        .wait()?;
    let mut vault = Vault::new(kek.clone(), WalletScheme::Default);
    vault.set_master_seed(seed.expose_secret())?;
    drop(seed);

    // The same gate and audit layer as the quickstart, TOTP secrets sealed
    // by KMS too.
    let audit = Arc::new(MemoryAuditLog::new());
    let registry = Arc::new(TotpRegistry::new(
        kek,
        Arc::new(MemoryStore::new()),
        audit.clone(),
        TotpConfig::new(WalletScheme::Default),
    )?);
    let gate: SharedBackend = Arc::new(TotpGate::new(Arc::new(vault), registry.clone()));
    let backend: SharedBackend = Arc::new(Audited::new(gate, audit.clone()));
    let wallet = "alice@example.com";
    let alice = EthSigner::new(
        KeySigner::pin(
            backend,
            KeyRef::Wallet {
                name: wallet.into(),
                index: 0,
            },
        )
        .wait()?,
    )?;
    let enrolment = registry.enrol(wallet, EnrolMode::New).wait()?;
    let tx = Transaction::from_json_str(
        r#"{
            "type": "0x2", "chainId": "0x1", "nonce": "0x0",
            "to": "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
            "value": "0xde0b6b3a7640000", "gas": "0x5208",
            "maxFeePerGas": "0x6fc23ac00", "maxPriorityFeePerGas": "0x3b9aca00"
        }"#,
    )?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let code = enrolment
        .params()
        .code_at(enrolment.uri().expose_secret(), now)?;
    let signed = alice
        .sign_transaction(&tx, &Authorization::totp(code.expose_str()))
        .wait()?;
    assert_eq!(signed.recover_sender()?, alice.address());
    println!(
        "   {wallet} key 0 ({}) signed an EIP-1559 transaction with a TOTP code",
        alice.address().to_checksum()
    );

    // 2. A key that never leaves KMS: GetPublicKey once at pin, then one
    //    Sign per signature.
    let hot = EthSigner::new(
        KeySigner::pin(
            Arc::new(KmsSigner::new(client)),
            KeyRef::Stored(signing_id.clone()),
        )
        .wait()?,
    )?;
    let signed = hot.sign_transaction(&tx, &Authorization::none()).wait()?;
    assert_eq!(signed.recover_sender()?, hot.address());
    println!(
        "2. KMS key {signing_id} ({}) signed the same transaction inside KMS",
        hot.address().to_checksum()
    );
    println!("   raw 0x{}", hex::encode(signed.encoded()));
    println!(
        "   audit records of the gated path: {}",
        audit.records().len()
    );
    Ok(())
}
