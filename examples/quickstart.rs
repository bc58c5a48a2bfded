//! The custody quickstart: the seed's whole journey through the embedded
//! keystore (no cloud, no server).
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;

use custody_core::{
    AuditLog, Audited, Authorization, Capabilities, CreateOptions, Digest32, Error, Intent, KeyRef,
    KeySigner, Keystore, Mnemonic, Passphrase, SharedBackend,
};

fn main() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let passphrase = Passphrase::from_str_copy("correct horse battery staple");

    // 1. A fresh 24-word BIP39 mnemonic becomes the keystore's master. The
    //    seed is stored only as an AES-256-GCM envelope under a KEK derived
    //    from the passphrase (light scrypt here so the demo is quick).
    let mnemonic = Mnemonic::generate(24)?;
    let seed = mnemonic.to_seed("");
    let keystore = Keystore::create(dir.path(), &passphrase, &seed, &CreateOptions::light()?)?;
    println!("1. created a keystore in {}", dir.path().display());
    println!("   master xpub        {}", keystore.xpub());
    println!(
        "   master fingerprint 0x{}",
        hex::encode(keystore.fingerprint())
    );

    // 2. Reopen it as a service would (a wrong passphrase is a typed error).
    drop(keystore);
    let wrong = Keystore::open(dir.path(), &Passphrase::from_str_copy("guess"));
    println!(
        "2. open with a wrong passphrase -> {}",
        wrong.err().map_or("opened?!".into(), |e| e.to_string())
    );
    let keystore = Keystore::open(dir.path(), &passphrase)?;

    // 3. Every signature goes through the KeyBackend seam, here audited.
    let backend: SharedBackend = Arc::new(Audited::new(keystore.backend(), keystore.audit()));
    println!(
        "3. backend capabilities: {:?}",
        Capabilities::of(backend.as_ref())
    );

    // 4. Key 0 of the wallet "alice@example.com": pinned once, then signing.
    let alice = KeySigner::pin(
        backend.clone(),
        KeyRef::Wallet {
            name: "alice@example.com".into(),
            index: 0,
        },
    )
    .wait()?;
    let path = alice
        .key()
        .path()
        .map(ToString::to_string)
        .unwrap_or_default();
    println!("4. alice@example.com/0 at {path}");
    println!(
        "   public key 0x{}",
        hex::encode(alice.key().public_key().to_uncompressed())
    );

    let digest = Digest32([0x11; 32]);
    let sig = alice
        .sign(digest, Intent::raw_digest(), &Authorization::none())
        .wait()?;
    println!("5. signed digest 0x{}", hex::encode(digest.0));
    println!("   r 0x{}", hex::encode(sig.r()));
    println!("   s 0x{} (low-s)", hex::encode(sig.s()));
    println!("   yParity {}", u8::from(sig.y_parity()));
    let recovered = sig.recover(&digest)?;
    println!(
        "   recovers the pinned key: {}",
        &recovered == alice.key().public_key()
    );

    // 6. The audit log is a hash chain anyone can verify.
    let log = std::fs::read(dir.path().join("audit.log"))?;
    let head = AuditLog::verify(log.as_slice())?;
    println!(
        "6. audit log verified: {} records, head {}",
        head.seq,
        hex::encode(head.hash)
    );
    Ok(())
}
