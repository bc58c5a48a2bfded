//! The quorum boot example's ceremony (`custody_examples::quorum_ceremony`),
//! run by `cargo test` with its values checked: both boots rebuild the
//! split's key from different holders, the KEK is the quorum key's, another
//! image's document is refused by its PCR, and the signature made with the
//! key unwrapped in the restarted enclave recovers to its address.

use custody_examples::quorum_ceremony::{ALICE, MESSAGE, run};
use sha2::{Digest, Sha256};

#[test]
fn the_quorum_boot_example_signs_as_alice_after_a_restart_with_other_holders() {
    let mut narration = Vec::new();
    let outcome = run(&mut narration).unwrap();
    let narration = String::from_utf8(narration).unwrap();

    assert_eq!(outcome.booted_keys.len(), 2);
    for key in &outcome.booted_keys {
        assert_eq!(key, &outcome.quorum_public_key);
    }
    assert_eq!(outcome.shares_used, vec![vec![1, 2], vec![2, 3]]);
    let public = hex::decode(&outcome.quorum_public_key).unwrap();
    assert_eq!(public.len(), 33);
    assert_eq!(
        outcome.kek_id,
        format!("quorum:{}", hex::encode(&Sha256::digest(&public)[..8]))
    );
    assert_eq!(
        outcome.refusal,
        "policy: PCR2 does not match the expected value"
    );
    assert_eq!(outcome.recovered, ALICE);

    // The signature, checked independently of custody-eth: EIP-191 digest,
    // k256 recovery, keccak256 address.
    let sig = hex::decode(&outcome.signature).unwrap();
    assert_eq!(sig.len(), 65);
    let prefixed = format!("\x19Ethereum Signed Message:\n{}{MESSAGE}", MESSAGE.len());
    let digest = sha3::Keccak256::digest(prefixed.as_bytes());
    let signature = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    let key = k256::ecdsa::VerifyingKey::recover_from_prehash(
        &digest,
        &signature,
        k256::ecdsa::RecoveryId::new(sig[64] == 28, false),
    )
    .unwrap();
    let point = custody_core::PublicKey::from(k256::PublicKey::from(&key)).to_uncompressed();
    let address = &sha3::Keccak256::digest(&point[1..])[12..];
    assert_eq!(
        hex::encode(address),
        ALICE.trim_start_matches("0x").to_lowercase()
    );

    // Nothing secret in the narration: not Alice's key, not a share.
    assert!(!narration.contains("ac0974bec39a17e36ba4a6b4d238ff944bacb478"));
    assert!(narration.contains(&outcome.quorum_public_key));
}
