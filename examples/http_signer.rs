//! An HTTP signer beside a node: JSON-RPC `eth_signTransaction`,
//! `eth_sign`, `personal_sign` and `eth_signTypedData_v4` over `POST /`,
//! every request through `Audited(TotpGate(keystore))`, the TOTP code a
//! member of the request (`"authorization": {"totp": "123456"}`).
//!
//! Run: `cargo run -p custody-examples --features http --example http_signer`
//! (listens on 127.0.0.1:8545, or the address given as its argument). It
//! makes a throwaway keystore with one wallet, enrols it for TOTP and
//! prints the otpauth URI and a `curl` line to try. The service itself is
//! `custody_examples::signer_service::SignerService`: hold your own
//! `Arc<dyn KeyBackend>` stack there (a keystore, KMS, an HSM; the guard
//! and the audit log in PostgreSQL for several replicas).

use std::sync::Arc;

use custody_core::{
    Audited, CreateOptions, KeyRef, KeySigner, Keystore, Mnemonic, Passphrase, SharedBackend,
};
use custody_eth::EthSigner;
use custody_examples::signer_service::SignerService;
use custody_totp::{EnrolMode, TotpConfig, TotpGate, TotpRegistry};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8545".to_owned());
    let dir = tempfile::tempdir()?;
    let passphrase = Passphrase::from_str_copy("correct horse battery staple");
    let mnemonic = Mnemonic::generate(24)?;
    let keystore = Keystore::create(
        dir.path(),
        &passphrase,
        &mnemonic.to_seed(""),
        &CreateOptions::light()?,
    )?;
    drop(mnemonic);
    let registry = Arc::new(TotpRegistry::new(
        keystore.backend(),
        keystore.state(),
        keystore.audit(),
        TotpConfig::new(keystore.scheme()),
    )?);
    let gate: SharedBackend = Arc::new(TotpGate::new(keystore.backend(), registry.clone()));
    let backend: SharedBackend = Arc::new(Audited::new(gate, keystore.audit()));
    let wallet = "alice@example.com";
    let alice = EthSigner::new(
        KeySigner::pin(
            backend,
            KeyRef::Wallet {
                name: wallet.into(),
                index: 0,
            },
        )
        .await?,
    )?;
    let enrolment = registry.enrol(wallet, EnrolMode::New).await?;
    let address = alice.address().to_checksum();
    println!("account {address} ({wallet} key 0), enrolled for TOTP:");
    println!("  {}", enrolment.to_uri().as_str());
    println!("listening on http://{addr}; try:");
    println!(
        r#"  curl -s http://{addr} -d '{{"jsonrpc":"2.0","id":1,"method":"personal_sign","params":["0x68656c6c6f","{address}"],"authorization":{{"totp":"<code>"}}}}'"#
    );
    let service = Arc::new(SignerService::new([alice]));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, service.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
