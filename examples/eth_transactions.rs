//! Every Ethereum transaction type, end to end: JSON-RPC JSON in, signed
//! through the vault, raw bytes out, and decoded back.
//!
//! Run: `cargo run --example eth_transactions`

use std::sync::Arc;

use custody_core::{
    Authorization as Consent, DataKey, KekId, KeyRef, KeySigner, LocalKek, Mnemonic, SharedBackend,
    Vault, WalletScheme,
};
use custody_eth::{
    Address, Authorization, Error, EthSigner, SignedTransaction, Transaction, U256, decode_signed,
};

/// The signer for key `index` of the wallet "alice@example.com".
fn wallet_key(backend: &SharedBackend, index: u32) -> Result<EthSigner, Error> {
    let key = KeyRef::Wallet {
        name: "alice@example.com".into(),
        index,
    };
    EthSigner::new(KeySigner::pin(backend.clone(), key).wait()?)
}

fn main() -> Result<(), Error> {
    // The software vault: an HD master from a fresh BIP39 mnemonic, its
    // secrets wrapped by a KEK (here an in-memory one; a passphrase keystore,
    // KMS or an enclave in production).
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("example-kek")?,
        DataKey::random()?,
    ));
    let mut vault = Vault::new(kek, WalletScheme::Default);
    vault.set_master_seed(Mnemonic::generate(24)?.to_seed("").expose_secret())?;
    let backend: SharedBackend = Arc::new(vault);

    let alice = wallet_key(&backend, 0)?;
    println!("sender  {} (alice@example.com/0)", alice.address());

    // An EIP-7702 authorization, signed by another key of the wallet (the
    // authority delegating its code), to carry in the type 4 transaction.
    let authority = wallet_key(&backend, 1)?;
    let delegate = Address::parse("0x63c0c19a282a1B52b07dD5a65b58948A07DAE32B")?;
    let authorization = authority
        .sign_authorization(
            &Authorization {
                chain_id: U256::from_u64(1),
                address: delegate,
                nonce: 0,
            },
            &Consent::none(),
        )
        .wait()?;
    println!(
        "authority {} delegates to {delegate}",
        authorization.recover_authority()?
    );

    let to = "0x3535353535353535353535353535353535353535";
    let requests = [
        (
            "legacy (EIP-155)",
            format!(
                r#"{{"chainId": "0x1", "nonce": "0x0", "gasPrice": "20000000000",
                    "gas": "0x5208", "to": "{to}", "value": "0xde0b6b3a7640000"}}"#
            ),
        ),
        (
            "type 0x1 (EIP-2930)",
            format!(
                r#"{{"type": "0x1", "chainId": "0x1", "nonce": "0x1",
                    "gasPrice": "0x4a817c800", "gas": "0x7530", "to": "{to}",
                    "value": "0x0", "data": "0xa9059cbb",
                    "accessList": [{{"address": "{to}", "storageKeys":
                        ["0x0000000000000000000000000000000000000000000000000000000000000001"]}}]}}"#
            ),
        ),
        (
            "type 0x2 (EIP-1559)",
            format!(
                r#"{{"type": "0x2", "chainId": "0x1", "nonce": "0x2",
                    "maxPriorityFeePerGas": "2000000000", "maxFeePerGas": "0xba43b7400",
                    "gas": 21000, "to": "{to}", "value": "1000000000000000000",
                    "input": "0x"}}"#
            ),
        ),
        (
            "type 0x3 (EIP-4844)",
            format!(
                r#"{{"type": "0x3", "chainId": "0x1", "nonce": "0x3",
                    "maxPriorityFeePerGas": "0x3b9aca00", "maxFeePerGas": "0x12a05f200",
                    "gas": "0x5208", "to": "{to}", "value": "0x0", "input": "0x",
                    "maxFeePerBlobGas": "0x3b9aca00", "blobVersionedHashes":
                        ["0x01b0a4cdd5f55589f5c5b4d46c76704bb6ce95c0a8c09f77f197a57808dded28"]}}"#
            ),
        ),
        (
            "type 0x4 (EIP-7702)",
            format!(
                r#"{{"type": "0x4", "chainId": "0x1", "nonce": "0x4",
                    "maxPriorityFeePerGas": "0x3b9aca00", "maxFeePerGas": "0x12a05f200",
                    "gas": "0x186a0", "to": "{authority}", "value": "0x0", "input": "0x",
                    "authorizationList": [{{"chainId": "0x1", "address": "{delegate}",
                        "nonce": "0x0", "yParity": "{y:#x}", "r": "{r:#x}", "s": "{s:#x}"}}]}}"#,
                authority = authority.address(),
                y = authorization.y_parity,
                r = authorization.r,
                s = authorization.s,
            ),
        ),
    ];

    for (label, json) in &requests {
        println!("\n== {label}");
        // JSON-RPC in: every field checked, errors name the field.
        let tx = Transaction::from_json_str(json)?;
        println!("signing hash  0x{}", hex::encode(tx.signing_hash().0));
        println!("max cost      {} wei", tx.max_cost()?);

        // Signed through the vault (intent: this transaction).
        let signed = alice.sign_transaction(&tx, &Consent::none()).wait()?;
        println!("raw           0x{}", hex::encode(signed.encoded()));
        println!("tx hash       0x{}", hex::encode(signed.hash()));
        println!("v             {}", signed.v());

        // Decoded back: same transaction, same sender.
        let decoded = decode_signed(signed.encoded())?;
        assert_eq!(decoded.transaction(), &tx);
        assert_eq!(decoded.recover_sender()?, alice.address());

        // And the JSON-RPC object a node would return for it.
        let out = signed.to_json()?;
        assert_eq!(SignedTransaction::from_json_value(&out)?, signed);
        println!("as JSON-RPC   {out}");
    }

    // What is not a transaction of its type is refused, by field name.
    let bad = r#"{"type": "0x2", "chainId": "0x1", "nonce": "0x0", "gas": "0x5208",
                  "gasPrice": "0x1", "to": null}"#;
    println!(
        "\nrefused: {}",
        Transaction::from_json_str(bad)
            .err()
            .map_or_else(String::new, |e| e.to_string())
    );
    let conflicting = r#"{"nonce": "0x0", "gas": "0x5208", "gasPrice": "0x1",
                          "input": "0xa9059cbb", "data": "0x"}"#;
    println!(
        "refused: {}",
        Transaction::from_json_str(conflicting)
            .err()
            .map_or_else(String::new, |e| e.to_string())
    );
    Ok(())
}
