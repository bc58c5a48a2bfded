//! Rotation and revocation of a scope's sealing keys: secrets sealed to
//! an old key keep opening until it is retired, `reseal` moves them to the
//! current key, and a revoked key makes every secret sealed to it fail with
//! `Revoked` before any backend is asked.
#![expect(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

use std::sync::Arc;

use custody_core::{
    Audited, Authorization, DataKey, KekId, KeyAlgorithm, KeyId, KeyRef, KeySigner, LocalKek,
    MemoryAuditLog, PrivateKeyBytes, SharedBackend, Vault, WalletScheme,
};
use custody_jose::jwe::{self, CompactJwe, OpenError, Scope};
use custody_jose::{JoseError, SealingKeyring};

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
    for (id, byte) in [
        ("seal-2025", 0x21u8),
        ("seal-2026", 0x22),
        ("seal-2027", 0x23),
    ] {
        vault
            .insert_algorithm_key(
                KeyId::new(id).unwrap(),
                KeyAlgorithm::P256,
                PrivateKeyBytes::from_slice(&[byte; 32]).unwrap(),
            )
            .unwrap();
    }
    let audit = Arc::new(MemoryAuditLog::new());
    let backend: SharedBackend = Arc::new(Audited::new(Arc::new(vault), audit.clone()));
    World { audit, backend }
}

fn signer(w: &World, id: &str) -> KeySigner {
    KeySigner::pin(w.backend.clone(), KeyRef::Stored(KeyId::new(id).unwrap()))
        .wait()
        .unwrap()
}

fn scope() -> Scope {
    Scope::new("importer/api-keys").unwrap()
}

fn open(ring: &SealingKeyring, token: &str) -> Result<Vec<u8>, OpenError> {
    ring.open(token, &Authorization::none())
        .wait()
        .map(|s| s.expose_secret().to_vec())
}

fn kid_of(token: &str) -> String {
    CompactJwe::parse(token)
        .unwrap()
        .header()
        .kid()
        .unwrap()
        .to_owned()
}

#[test]
fn an_old_key_opens_until_retired_and_reseal_moves_secrets_to_the_current_key() {
    let w = world();
    let mut ring = SealingKeyring::new(scope(), signer(&w, "seal-2025")).unwrap();
    let k2025 = ring.current_kid().to_owned();
    let old = ring.seal(b"sk_live_2025").unwrap();
    assert_eq!(kid_of(&old), k2025);

    ring.rotate(signer(&w, "seal-2026")).unwrap();
    let k2026 = ring.current_kid().to_owned();
    assert_ne!(k2025, k2026);
    assert_eq!(ring.kids(), vec![k2026.as_str(), k2025.as_str()]);
    // The old key still opens; new secrets go to the new key.
    assert_eq!(open(&ring, &old).unwrap(), b"sk_live_2025");
    let new = ring.seal(b"sk_live_2026").unwrap();
    assert_eq!(kid_of(&new), k2026);

    // Reseal: same secret, now under the current key, in one process.
    let resealed = ring.reseal(&old, &Authorization::none()).wait().unwrap();
    assert_eq!(kid_of(&resealed), k2026);
    assert_eq!(open(&ring, &resealed).unwrap(), b"sk_live_2025");

    // Retired: what still names the old key no longer opens, and the
    // backend is not asked.
    ring.retire(&k2025).unwrap();
    let before = w.audit.records().len();
    assert!(matches!(open(&ring, &old), Err(OpenError::UnknownKey)));
    assert_eq!(w.audit.records().len(), before);
    assert_eq!(open(&ring, &resealed).unwrap(), b"sk_live_2025");
    assert_eq!(ring.retire(&k2025), Err(JoseError::UnknownKey));
    // Every open and reseal went through the seam as an unseal.
    for record in w.audit.records() {
        assert_eq!(record.event().op().as_str(), "decrypt");
        assert_eq!(record.event().field("intent"), Some("unseal"));
    }
}

#[test]
fn a_revoked_key_fails_every_secret_sealed_to_it_with_revoked() {
    let w = world();
    let mut ring = SealingKeyring::new(scope(), signer(&w, "seal-2025")).unwrap();
    let k2025 = ring.current_kid().to_owned();
    let sealed: Vec<String> = (0..3)
        .map(|i| ring.seal(format!("secret-{i}").as_bytes()).unwrap())
        .collect();
    // The current key cannot be revoked: rotate first.
    assert!(matches!(
        ring.revoke(&k2025),
        Err(JoseError::InvalidKey { .. })
    ));
    ring.rotate(signer(&w, "seal-2026")).unwrap();
    ring.revoke(&k2025).unwrap();
    assert_eq!(ring.revoked(), std::slice::from_ref(&k2025));
    let before = w.audit.records().len();
    for token in &sealed {
        let e = open(&ring, token).unwrap_err();
        assert!(matches!(e, OpenError::Revoked), "{e:?}");
        assert_eq!(e.kind(), "revoked");
        assert_ne!(e.to_string(), OpenError::DecryptionFailed.to_string());
        assert!(matches!(
            ring.reseal(token, &Authorization::none()).wait(),
            Err(OpenError::Revoked)
        ));
    }
    assert_eq!(w.audit.records().len(), before, "no backend was asked");
    // A revoked key never becomes current again.
    assert!(matches!(
        ring.rotate(signer(&w, "seal-2025")),
        Err(JoseError::InvalidKey { .. })
    ));
    // Secrets of the current key are unaffected.
    let fresh = ring.seal(b"fresh").unwrap();
    assert_eq!(open(&ring, &fresh).unwrap(), b"fresh");
}

#[test]
fn revoking_a_retired_key_still_answers_revoked() {
    let w = world();
    let mut ring = SealingKeyring::new(scope(), signer(&w, "seal-2025")).unwrap();
    let k2025 = ring.current_kid().to_owned();
    let old = ring.seal(b"x").unwrap();
    ring.rotate(signer(&w, "seal-2026")).unwrap();
    ring.retire(&k2025).unwrap();
    assert!(matches!(open(&ring, &old), Err(OpenError::UnknownKey)));
    ring.revoke(&k2025).unwrap();
    assert!(matches!(open(&ring, &old), Err(OpenError::Revoked)));
}

#[test]
fn the_keyring_opens_only_its_scope_and_only_by_kid() {
    let w = world();
    let ring = SealingKeyring::new(scope(), signer(&w, "seal-2025")).unwrap();
    let billing = SealingKeyring::new(
        Scope::new("billing/api-keys").unwrap(),
        signer(&w, "seal-2025"),
    )
    .unwrap();
    let token = billing.seal(b"billing secret").unwrap();
    assert!(matches!(open(&ring, &token), Err(OpenError::ScopeMismatch)));
    // Sealed to a key outside the ring (same scope): unknown key.
    let outsider = SealingKeyring::new(scope(), signer(&w, "seal-2027")).unwrap();
    let token = outsider.seal(b"x").unwrap();
    assert!(matches!(open(&ring, &token), Err(OpenError::UnknownKey)));
    // A JWE without kid (sealed through the free function is always with
    // one; strip it): unknown key.
    let no_kid = jwe::seal(ring.recipient(), &scope(), b"x").unwrap();
    let mut parts: Vec<String> = no_kid.split('.').map(str::to_owned).collect();
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&custody_jose::b64::decode(&parts[0], "h").unwrap()).unwrap();
    header.remove("kid");
    parts[0] = custody_jose::b64::encode(serde_json::to_string(&header).unwrap().as_bytes());
    assert!(matches!(
        open(&ring, &parts.join(".")),
        Err(OpenError::UnknownKey)
    ));
    // Rotating to a key already in the ring is refused.
    let mut ring = ring;
    assert!(matches!(
        ring.rotate(signer(&w, "seal-2025")),
        Err(JoseError::InvalidKey { .. })
    ));
}
