//! The seam's third capability, [`DecryptingBackend`]: a P-256 key held by
//! the software vault agrees (ECDH) through the audit layer, checked
//! against RFC 7518 Appendix C's published shared secret and against
//! RustCrypto's `p256` computing the other side; its record is the one
//! record of a signature's shape (op `decrypt`); a request that names the
//! wrong algorithm or key is refused before any arithmetic; a layer that
//! does not gate decryption does not offer it.
#![expect(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

use std::sync::Arc;

use custody_core::{
    AnyPublicKey, AuditOutcome, Audited, Authorization, Capabilities, DataKey, DecryptRequest,
    Decryption, Digest32, Error, Intent, IntentKind, KekId, KeyAlgorithm, KeyBackend, KeyId,
    KeyRef, LocalKek, MemoryAuditLog, P256PublicKey, PinnedKey, PrivateKeyBytes, SharedBackend,
    Vault, WalletScheme,
};

/// RFC 7518 Appendix C: Bob's static P-256 key `d` (base64url
/// `VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw`) in hex.
const BOB_D: &str = "5449836690d75caf29f0dd029ddb31b3ddb8aba9d2d515c5012465e817d4a9dc";
/// Alice's ephemeral public key (`gI0GAILB…`, `SLW_xSff…`): 04‖x‖y.
const ALICE_EPK: &str = concat!(
    "04",
    "808d060082c176eed3e776a4ac598cc8672c1779f974eecc9b03411ca5b9495d",
    "48b5bfc527dfce53d6ac7115237d031ccff87a0570b77350a9e503ee7305a69b"
);
/// The shared secret Z the appendix lists, as bytes `[158, 86, 217, …]`.
const RFC7518_Z: &str = "9e56d91d817135d372834283bf84269cfb316ea3da806a48f6daa7798cfe90c4";

const BOB: &str = "sealing-bob";
const K1: &str = "signing-k1";

struct World {
    audit: Arc<MemoryAuditLog>,
    backend: SharedBackend,
}

fn world() -> World {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let vault = Vault::new(kek, WalletScheme::Default);
    vault
        .insert_algorithm_key(
            KeyId::new(BOB).unwrap(),
            KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&hex::decode(BOB_D).unwrap()).unwrap(),
        )
        .unwrap();
    vault
        .insert_algorithm_key(
            KeyId::new(K1).unwrap(),
            KeyAlgorithm::Secp256k1,
            PrivateKeyBytes::from_slice(&[0x11; 32]).unwrap(),
        )
        .unwrap();
    let audit = Arc::new(MemoryAuditLog::new());
    let backend: SharedBackend = Arc::new(Audited::new(Arc::new(vault), audit.clone()));
    World { audit, backend }
}

fn pin(backend: &SharedBackend, id: &str) -> PinnedKey {
    backend
        .signing()
        .unwrap()
        .pin(&KeyRef::Stored(KeyId::new(id).unwrap()))
        .wait()
        .unwrap()
}

fn agree(backend: &SharedBackend, key: &PinnedKey, peer: &P256PublicKey) -> Result<Vec<u8>, Error> {
    let auth = Authorization::none();
    let intent = Intent::typed(IntentKind::Unseal, &()).with_note("scope", "importer/api-keys");
    let request = DecryptRequest::new(
        key,
        Digest32([0xab; 32]),
        Decryption::EcdhP256 { peer },
        intent,
        &auth,
    )?;
    backend
        .decrypting()
        .unwrap()
        .decrypt(request)
        .wait()
        .map(|d| d.secret.expose_secret().to_vec())
}

#[test]
fn a_vault_p256_key_agrees_rfc_7518_appendix_c_and_records_it() {
    let w = world();
    let bob = pin(&w.backend, BOB);
    let alice = P256PublicKey::from_sec1_bytes(&hex::decode(ALICE_EPK).unwrap()).unwrap();
    let z = agree(&w.backend, &bob, &alice).unwrap();
    assert_eq!(hex::encode(&z), RFC7518_Z);
    // One record, of a signature's shape, naming the operation and the
    // scope; the secret is in none of its fields.
    let records = w.audit.records();
    assert_eq!(records.len(), 1);
    let event = records[0].event();
    assert_eq!(event.op().as_str(), "decrypt");
    assert_eq!(event.outcome(), AuditOutcome::Success);
    assert_eq!(event.field("intent"), Some("unseal"));
    assert_eq!(event.field("scheme"), Some("ecdh-p256"));
    assert_eq!(event.field("algorithm"), Some("P-256"));
    assert_eq!(event.field("key"), Some(BOB));
    assert_eq!(event.field("scope"), Some("importer/api-keys"));
    assert_eq!(event.field("digest"), Some("ab".repeat(32).as_str()));
    assert!(event.fields().all(|(_, v)| !v.contains(RFC7518_Z)));
}

#[test]
fn ecdh_through_the_seam_equals_p256_computing_the_other_side() {
    let w = world();
    let bob = pin(&w.backend, BOB);
    let AnyPublicKey::P256(bob_public) = bob.public() else {
        panic!("a P-256 key");
    };
    for seed in 1u8..=16 {
        // An ephemeral key made by RustCrypto directly, not by custody.
        let mut bytes = [seed; 32];
        bytes[0] = 0x01;
        let ephemeral = p256::SecretKey::from_slice(&bytes).unwrap();
        let expected = p256::ecdh::diffie_hellman(
            ephemeral.to_nonzero_scalar(),
            bob_public.as_p256().as_affine(),
        );
        let peer = P256PublicKey::from(ephemeral.public_key());
        let z = agree(&w.backend, &bob, &peer).unwrap();
        assert_eq!(z.as_slice(), expected.raw_secret_bytes().as_slice());
        assert_eq!(z.len(), 32, "the x-coordinate, zero-padded to 32 bytes");
    }
}

#[test]
fn a_request_of_the_wrong_algorithm_is_refused_before_any_arithmetic() {
    let w = world();
    let k1 = pin(&w.backend, K1);
    let alice = P256PublicKey::from_sec1_bytes(&hex::decode(ALICE_EPK).unwrap()).unwrap();
    // ECDH on P-256 with a secp256k1 key.
    assert!(matches!(
        agree(&w.backend, &k1, &alice),
        Err(Error::Unsupported(_))
    ));
    // RSA-OAEP with a P-256 key.
    let bob = pin(&w.backend, BOB);
    let auth = Authorization::none();
    assert!(matches!(
        DecryptRequest::new(
            &bob,
            Digest32([0; 32]),
            Decryption::RsaOaepSha256 {
                ciphertext: &[0; 256]
            },
            Intent::raw_digest(),
            &auth,
        ),
        Err(Error::Unsupported(_))
    ));
    // Nothing reached the vault, so nothing was recorded.
    assert!(w.audit.records().is_empty());
}

#[test]
fn a_pinned_key_the_vault_does_not_hold_under_that_id_is_refused_and_recorded() {
    let w = world();
    let alice = P256PublicKey::from_sec1_bytes(&hex::decode(ALICE_EPK).unwrap()).unwrap();
    // Bob's id, pinned with Alice's public key: a forged pin.
    let forged = PinnedKey::with_public(
        KeyRef::Stored(KeyId::new(BOB).unwrap()),
        None,
        AnyPublicKey::P256(alice),
    );
    assert!(matches!(
        agree(&w.backend, &forged, &alice),
        Err(Error::PublicKeyMismatch)
    ));
    let records = w.audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event().outcome(), AuditOutcome::Failed);
}

#[test]
fn only_layers_that_gate_decryption_offer_it() {
    let w = world();
    assert!(Capabilities::of(w.backend.as_ref()).decrypting);
    // A KEK-only backend cannot agree, and the audit layer over it says so.
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let audited = Audited::new(kek, Arc::new(MemoryAuditLog::new()));
    assert!(!Capabilities::of(&audited).decrypting);
    assert!(audited.decrypting().is_none());
}
