//! Helpers of the tests of keys of every algorithm through a backend
//! (`aws_kms_algorithms.rs`, `pkcs11_algorithms.rs`): four digests, one
//! signature with a scheme, one decryption with a pinned key, each through
//! whatever backend the caller holds (the audit layer included); and the
//! checks both make of ES256, RS256 and PS256 signatures and of ECDH
//! agreements against `p256` and `rsa` with the key's public half.

use custody_core::{
    AuditOutcome, AuditRecord, Authorization, DecryptRequest, Decryption, Digest32, Error, Intent,
    IntentKind, KeySigner, P256PublicKey, PinnedKey, SharedBackend, SignatureScheme,
};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
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

/// Signs each of [`digests`] with ES256 through `key` and checks each
/// signature with `p256` against `verifying`: JOSE r‖s (64 bytes, not a
/// DER signature), valid for its digest and for no other (one bit
/// flipped, or hashed again). Returns how many had a high s (kept: ES256
/// does not ask for low s).
pub(crate) fn assert_es256_verifies(
    key: &KeySigner,
    verifying: &p256::ecdsa::VerifyingKey,
) -> usize {
    let mut high_s = 0;
    for digest in digests() {
        let sig = sign(key, SignatureScheme::EcdsaP256Sha256, &digest).unwrap();
        assert_eq!(sig.len(), 64, "JOSE r‖s");
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        verifying.verify_prehash(&digest, &sig).unwrap();
        let mut flipped = digest;
        flipped[0] ^= 1;
        let hashed: [u8; 32] = sha2::Sha256::digest(digest).into();
        for other in [flipped, hashed] {
            assert!(verifying.verify_prehash(&other, &sig).is_err());
        }
        high_s += usize::from(sig.normalize_s() != sig);
    }
    high_s
}

/// How many signatures [`assert_rsa_signs`] makes of each digest.
pub(crate) const RSA_SIGNATURES_PER_DIGEST: usize = 4;

/// Signs two of [`digests`] through the RSA `key` of `bits` and checks
/// each signature with `rsa` against `public`: RS256 (`bits / 8` bytes,
/// deterministic: the same digest, the same bytes) and PS256 (salt 32,
/// randomized: a second signature differs and verifies; not a PKCS#1 v1.5
/// signature, nor one of another digest).
pub(crate) fn assert_rsa_signs(key: &KeySigner, public: &rsa::PublicKey, bits: usize) {
    let pkcs1 = || rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
    let pss = || rsa::Pss::<sha2::Sha256>::new_with_salt(32);
    for digest in digests().take(2) {
        let sig = sign(key, SignatureScheme::RsaPkcs1Sha256, &digest).unwrap();
        assert_eq!(sig.len(), bits / 8);
        public.verify(pkcs1(), &digest, &sig).unwrap();
        assert_eq!(
            sign(key, SignatureScheme::RsaPkcs1Sha256, &digest).unwrap(),
            sig
        );
        let sig = sign(key, SignatureScheme::RsaPssSha256, &digest).unwrap();
        public.verify(pss(), &digest, &sig).unwrap();
        let again = sign(key, SignatureScheme::RsaPssSha256, &digest).unwrap();
        assert_ne!(sig, again);
        public.verify(pss(), &digest, &again).unwrap();
        assert!(public.verify(pkcs1(), &digest, &sig).is_err());
        let other: [u8; 32] = sha2::Sha256::digest(digest).into();
        assert!(public.verify(pss(), &other, &sig).is_err());
    }
}

/// Four ECDH agreements through `backend` with the P-256 `key`, each
/// with a local ephemeral secret, each equal to `p256`'s agreement of
/// that secret with `public` (the key's public half): the shared secrets
/// (hex), for [`assert_ecdh_records`].
pub(crate) fn assert_ecdh_agrees(
    backend: &SharedBackend,
    key: &PinnedKey,
    public: &p256::PublicKey,
) -> Vec<String> {
    let mut secrets = Vec::new();
    for seed in 1u8..=4 {
        let ephemeral = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let expected =
            p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), public.as_affine());
        let peer = P256PublicKey::from(ephemeral.public_key());
        let z = decrypt(backend, key, Decryption::EcdhP256 { peer: &peer }).unwrap();
        assert_eq!(z.as_slice(), expected.raw_secret_bytes().as_slice());
        secrets.push(hex::encode(z));
    }
    secrets
}

/// A content key of `len` bytes, and it encrypted to `public` by `rsa`
/// with RSA-OAEP, SHA-256 and the empty label (RSA-OAEP-256, what the
/// backend's decryption must open).
pub(crate) fn oaep_encrypted_cek(public: &rsa::PublicKey, len: usize) -> (Vec<u8>, Vec<u8>) {
    let cek: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
    let ciphertext = public
        .encrypt(
            &mut getrandom::SysRng,
            rsa::Oaep::<sha2::Sha256>::new(),
            &cek,
        )
        .unwrap();
    (cek, ciphertext)
}

/// `b"cek"` encrypted to `public` by `rsa` with RSA-OAEP and SHA-256
/// under the label `custody`: not RSA-OAEP-256 (whose label is empty).
pub(crate) fn oaep_labelled(public: &rsa::PublicKey) -> Vec<u8> {
    public
        .encrypt(
            &mut getrandom::SysRng,
            rsa::Oaep::<sha2::Sha256>::new_with_label(&b"custody"[..]),
            b"cek",
        )
        .unwrap()
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
