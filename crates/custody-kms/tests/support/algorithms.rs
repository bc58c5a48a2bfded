//! Helpers of the tests of keys of every algorithm through a backend
//! (`aws_kms_algorithms.rs`, `pkcs11_algorithms.rs`): four digests, one
//! signature with a scheme, one decryption with a pinned key, each through
//! whatever backend the caller holds (the audit layer included).

use custody_core::{
    AuditOutcome, AuditRecord, Authorization, DecryptRequest, Decryption, Digest32, Error, Intent,
    IntentKind, KeySigner, PinnedKey, SharedBackend, SignatureScheme,
};
use sha2::Digest as _;

/// Four distinct SHA-256 digests.
pub(crate) fn digests() -> impl Iterator<Item = [u8; 32]> {
    (0u8..4).map(|i| sha2::Sha256::digest([b'j', b'w', b't', i]).into())
}

/// `signer`'s signature of `digest` with `scheme` (a JWT's intent), as
/// JOSE bytes.
pub(crate) fn sign(
    signer: &KeySigner,
    scheme: SignatureScheme,
    digest: &[u8; 32],
) -> Result<Vec<u8>, Error> {
    signer
        .sign_with(
            scheme,
            digest,
            Intent::typed(IntentKind::Jwt, &"claims"),
            &Authorization::none(),
        )
        .wait()
        .map(|s| s.to_bytes())
}

/// `decryption` with `key` through `backend` (an unseal's intent, scope
/// `importer/api-keys`): the secret's bytes.
pub(crate) fn decrypt(
    backend: &SharedBackend,
    key: &PinnedKey,
    decryption: Decryption<'_>,
) -> Result<Vec<u8>, Error> {
    let auth = Authorization::none();
    let intent = Intent::typed(IntentKind::Unseal, &()).with_note("scope", "importer/api-keys");
    let request = DecryptRequest::new(key, Digest32([0xcd; 32]), decryption, intent, &auth)?;
    backend
        .decrypting()
        .unwrap()
        .decrypt(request)
        .wait()
        .map(|d| d.secret.expose_secret().to_vec())
}

/// `records` are `n` successful ECDH agreements made by [`decrypt`] (op
/// `decrypt`, scheme `ecdh-p256`, its scope), and no field holds any of the
/// shared `secrets` (hex).
pub(crate) fn assert_ecdh_records(records: &[AuditRecord], n: usize, secrets: &[String]) {
    assert_eq!(records.len(), n);
    for r in records {
        let event = r.event();
        assert_eq!(event.op().as_str(), "decrypt");
        assert_eq!(event.outcome(), AuditOutcome::Success);
        assert_eq!(event.field("scheme"), Some("ecdh-p256"));
        assert_eq!(event.field("scope"), Some("importer/api-keys"));
        assert!(
            event
                .fields()
                .all(|(_, v)| secrets.iter().all(|s| !v.contains(s.as_str())))
        );
    }
}

/// `records` are `n` records of RSA operations, each naming the key by its
/// fingerprint (64 hex digits), not its modulus.
pub(crate) fn assert_rsa_records(records: &[AuditRecord], n: usize) {
    assert_eq!(records.len(), n);
    for r in records {
        assert_eq!(r.event().outcome(), AuditOutcome::Success);
        assert_eq!(r.event().field("algorithm"), Some("RSA"));
        assert_eq!(r.event().field("public-key").unwrap().len(), 64);
    }
}
