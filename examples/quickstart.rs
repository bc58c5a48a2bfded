//! The custody quickstart: the seed's whole journey through the embedded
//! keystore, with no cloud and no server.
//!
//! Run: `cargo run --example quickstart`
//!
//! 1. a fresh 24-word BIP39 mnemonic becomes the keystore's master, stored
//!    only as an AES-256-GCM envelope under a passphrase-derived KEK;
//! 2. the address of key 0 of the wallet `alice@example.com`;
//! 3. the wallet is enrolled for TOTP (otpauth URI and QR code);
//! 4. an EIP-1559 transaction is signed with a valid code, through
//!    `Audited(TotpGate(Vault))`;
//! 5. the same code presented again is refused as a replay;
//! 6. the signed raw transaction, and the audit log verified.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use custody_core::{
    AuditLog, Audited, Authorization, CreateOptions, Denial, Error as CoreError, KeyRef, KeySigner,
    Keystore, Mnemonic, Passphrase, SharedBackend,
};
use custody_eth::{EthSigner, Transaction};
use custody_totp::{EnrolMode, TotpConfig, TotpGate, TotpRegistry};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let passphrase = Passphrase::from_str_copy("correct horse battery staple");

    // 1. The master. (`light` = a cheap scrypt so the demo is quick; a real
    //    keystore uses `CreateOptions::standard()`.)
    let mnemonic = Mnemonic::generate(24)?;
    let keystore = Keystore::create(
        dir.path(),
        &passphrase,
        &mnemonic.to_seed(""),
        &CreateOptions::light()?,
    )?;
    drop(mnemonic);
    println!("1. keystore created in {}", dir.path().display());
    println!("   master xpub {}", keystore.xpub());

    // Every signature goes through the TOTP gate, and the audit layer
    // records what passed it.
    let registry = Arc::new(TotpRegistry::new(
        keystore.backend(),
        keystore.state(),
        keystore.audit(),
        TotpConfig::new(keystore.scheme()),
    )?);
    let gate: SharedBackend = Arc::new(TotpGate::new(keystore.backend(), registry.clone()));
    let backend: SharedBackend = Arc::new(Audited::new(gate, keystore.audit()));

    // 2. The wallet's address.
    let wallet = "alice@example.com";
    let key = KeyRef::Wallet {
        name: wallet.into(),
        index: 0,
    };
    let alice = EthSigner::new(KeySigner::pin(backend, key).wait()?)?;
    let path = alice
        .key_signer()
        .key()
        .path()
        .map(ToString::to_string)
        .unwrap_or_default();
    println!(
        "2. {wallet} key 0: {} (path {path})",
        alice.address().to_checksum()
    );

    // 3. TOTP enrolment: the user scans this once.
    let enrolment = registry.enrol(wallet, EnrolMode::New).wait()?;
    println!("3. enrolled {wallet} for TOTP:");
    println!("   {}", enrolment.to_uri().as_str());
    println!("{}", enrolment.qr()?.to_terminal().as_str());

    // 4. An EIP-1559 transaction, as a wallet backend receives it.
    let tx = Transaction::from_json_str(
        r#"{
            "type": "0x2", "chainId": "0x1", "nonce": "0x0",
            "to": "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
            "value": "0xde0b6b3a7640000", "gas": "0x5208",
            "maxFeePerGas": "0x6fc23ac00", "maxPriorityFeePerGas": "0x3b9aca00"
        }"#,
    )?;
    let refused = alice.sign_transaction(&tx, &Authorization::none()).wait();
    println!(
        "4. without a code: {}",
        refused.err().map_or("signed?!".into(), |e| e.to_string())
    );
    // What the user's authenticator app shows now.
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let code = enrolment
        .params()
        .code_at(enrolment.uri().expose_secret(), now)?;
    let consent = Authorization::totp(code.expose_str());
    let signed = alice.sign_transaction(&tx, &consent).wait()?;
    println!(
        "   with the code from the app: signed, from {}",
        signed.recover_sender()?.to_checksum()
    );

    // 5. The same code again is a replay.
    match alice.sign_transaction(&tx, &consent).wait() {
        Err(custody_eth::Error::Core(CoreError::Denied(Denial::TotpReplayed))) => {
            println!("5. the same code again: refused (totp-replayed)");
        }
        other => return Err(format!("a replayed code must be refused, got {other:?}").into()),
    }

    // 6. The signed raw transaction, ready for eth_sendRawTransaction.
    println!("6. raw transaction 0x{}", hex::encode(signed.encoded()));
    println!("   hash            0x{}", hex::encode(signed.hash()));
    let log = std::fs::read(dir.path().join("audit.log"))?;
    let head = AuditLog::verify(log.as_slice())?;
    println!("   audit log: {} records, hash chain verified", head.seq);
    Ok(())
}
