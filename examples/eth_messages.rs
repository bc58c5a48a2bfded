//! EIP-191 personal messages (text and bytes) and EIP-712 typed data,
//! signed through the vault and verified.
//!
//! Run: `cargo run --example eth_messages`

use std::sync::Arc;

use custody_core::{
    Authorization as Consent, DataKey, KekId, KeyRef, KeySigner, LocalKek, Mnemonic, SharedBackend,
    Vault, WalletScheme,
};
use custody_eth::{Error, EthSigner, MessageSignature, PersonalMessage, TypedData};

/// The EIP's own example (the Mail message of EIP-712).
const MAIL: &str = r#"{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"},
      {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"},
      {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [
      {"name": "name", "type": "string"},
      {"name": "wallet", "type": "address"}
    ],
    "Mail": [
      {"name": "from", "type": "Person"},
      {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
  },
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}"#;

fn main() -> Result<(), Error> {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("example-kek")?,
        DataKey::random()?,
    ));
    let mut vault = Vault::new(kek, WalletScheme::Default);
    vault.set_master_seed(Mnemonic::generate(24)?.to_seed("").expose_secret())?;
    let backend: SharedBackend = Arc::new(vault);
    let key = KeyRef::Wallet {
        name: "alice@example.com".into(),
        index: 0,
    };
    let signer = EthSigner::new(KeySigner::pin(backend, key).wait()?)?;
    println!("signer {}", signer.address());

    // EIP-191: a UTF-8 text message and a raw 32-byte message (signed as
    // bytes, never hex-decoded or re-encoded).
    for message in [
        PersonalMessage::from_text("Sign in to example.com\nNonce: 8f3a"),
        PersonalMessage::from_bytes(custody_eth::keccak256(b"order 8f3a")),
    ] {
        let sig = signer
            .sign_personal_message(&message, &Consent::none())
            .wait()?;
        println!("\n== personal_sign ({} bytes)", message.as_bytes().len());
        if let Some(text) = message.as_text() {
            println!("text      {text:?}");
        }
        println!("digest    0x{}", hex::encode(message.signing_hash().0));
        println!("signature {sig}");
        println!("v         {} (27/28, never EIP-155)", sig.v());
        // A verifier holding the 65 bytes recovers the address.
        let parsed = MessageSignature::from_bytes(&sig.to_bytes())?;
        assert_eq!(message.recover_signer(&parsed)?, signer.address());
    }

    // EIP-712: the typed data itself is parsed, validated and hashed; the
    // signer takes nothing else (no caller-computed digest).
    let typed = TypedData::from_json_str(MAIL)?;
    let sig = signer.sign_typed_data(&typed, &Consent::none()).wait()?;
    println!("\n== eth_signTypedData_v4 ({})", typed.primary_type());
    println!("encodeType        {}", typed.encode_type());
    println!(
        "domain separator  0x{}",
        hex::encode(typed.domain_separator())
    );
    println!("hashStruct        0x{}", hex::encode(typed.struct_hash()));
    println!(
        "digest            0x{}",
        hex::encode(typed.signing_hash().0)
    );
    println!("signature         {sig}");
    assert_eq!(typed.recover_signer(&sig)?, signer.address());

    // A message field its type does not declare would be shown to the user
    // but not signed: refused.
    let extra = MAIL.replace(
        r#""contents": "Hello, Bob!""#,
        r#""contents": "Hello, Bob!", "amount": "1000000""#,
    );
    println!(
        "\nrefused: {}",
        TypedData::from_json_str(&extra)
            .err()
            .map_or_else(String::new, |e| e.to_string())
    );
    Ok(())
}
