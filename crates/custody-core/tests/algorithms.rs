//! Keys of other algorithms than secp256k1 on the seam: P-256 (ES256) and
//! Ed25519 (EdDSA) keys held by the software vault, signed through the
//! audit layer with `KeySigner::sign_with`, checked against published
//! vectors (RFC 8032, RFC 8037, RFC 6979) and against RustCrypto's own
//! verifiers; and every way a request can name the wrong algorithm,
//! refused.
#![expect(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

use std::sync::Arc;

use custody_core::{
    AnyPublicKey, Audited, Authorization, DataKey, Digest32, Error, Intent, KekId, KeyAlgorithm,
    KeyBackend, KeyId, KeyRef, KeySigner, LocalKek, MemoryAuditLog, PinnedKey, PrivateKeyBytes,
    RawSignature, SharedBackend, SignRequest, SignatureScheme, Signed, SigningBackend, Vault,
    WalletScheme, check_signature,
};
use sha2::{Digest as _, Sha256};

fn vault() -> Vault {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let mut vault = Vault::new(kek, WalletScheme::Default);
    vault.set_master_seed(&[0x42; 64]).unwrap();
    vault
}

fn secret(hex_text: &str) -> PrivateKeyBytes {
    PrivateKeyBytes::from_slice(&hex::decode(hex_text).unwrap()).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    use base64ct_shim::encode;
    encode(bytes)
}

/// base64url without padding, written out here so the test depends on no
/// encoder of the code under test.
mod base64ct_shim {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    pub(crate) fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
        out
    }
}

/// The vault behind the audit layer, with the keys the tests use.
struct World {
    audit: Arc<MemoryAuditLog>,
    backend: SharedBackend,
}

const ED_ID: &str = "jwt-ed25519";
const P256_ID: &str = "jwt-p256";
const K1_ID: &str = "jwt-es256k";
/// RFC 8037 A.1's Ed25519 key (the RFC 8032 seed `d`).
const RFC8037_D: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// RFC 6979 A.2.5's P-256 key.
const RFC6979_P256: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";

impl World {
    fn new() -> Self {
        let vault = vault();
        vault
            .insert_algorithm_key(
                KeyId::new(ED_ID).unwrap(),
                KeyAlgorithm::Ed25519,
                secret(RFC8037_D),
            )
            .unwrap();
        vault
            .insert_algorithm_key(
                KeyId::new(P256_ID).unwrap(),
                KeyAlgorithm::P256,
                secret(RFC6979_P256),
            )
            .unwrap();
        vault
            .insert_algorithm_key(
                KeyId::new(K1_ID).unwrap(),
                KeyAlgorithm::Secp256k1,
                secret(&"11".repeat(32)),
            )
            .unwrap();
        let audit = Arc::new(MemoryAuditLog::new());
        let backend: SharedBackend = Arc::new(Audited::new(Arc::new(vault), audit.clone()));
        Self { audit, backend }
    }

    fn signer(&self, id: &str) -> KeySigner {
        KeySigner::pin(
            self.backend.clone(),
            KeyRef::Stored(KeyId::new(id).unwrap()),
        )
        .wait()
        .unwrap()
    }
}

#[test]
fn an_ed25519_key_signs_rfc_8037_a4_through_the_seam() {
    let w = World::new();
    let signer = w.signer(ED_ID);
    assert_eq!(signer.key().algorithm(), KeyAlgorithm::Ed25519);
    // RFC 8037 A.2: the public key.
    assert_eq!(
        b64url(&signer.key().public().to_bytes()),
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    );
    // RFC 8037 A.4: the JWS signing input and its signature.
    let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let sig = signer
        .sign_with(
            SignatureScheme::Ed25519,
            input,
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait()
        .unwrap();
    assert_eq!(
        b64url(&sig.to_bytes()),
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    // RFC 8032 §7.1 test 1 (the same key): the empty message.
    let sig = signer
        .sign_with(
            SignatureScheme::Ed25519,
            b"",
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait()
        .unwrap();
    assert_eq!(
        hex::encode(sig.to_bytes()),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    // The audit record names the algorithm, the scheme and the message's
    // SHA-256 as its digest.
    let records = w.audit.records();
    let last = records.last().unwrap().event();
    assert_eq!(last.field("algorithm"), Some("Ed25519"));
    assert_eq!(last.field("scheme"), Some("ed25519"));
    assert_eq!(
        last.field("digest"),
        Some(hex::encode(Sha256::digest(b"")).as_str())
    );
    assert_eq!(last.field("key"), Some(ED_ID));
}

#[test]
fn a_p256_key_signs_rfc_6979_a25_and_verifies_with_p256() {
    let w = World::new();
    let signer = w.signer(P256_ID);
    assert_eq!(signer.key().algorithm(), KeyAlgorithm::P256);
    // RFC 6979 A.2.5, SHA-256, message "sample".
    let digest = Sha256::digest(b"sample");
    let sig = signer
        .sign_with(
            SignatureScheme::EcdsaP256Sha256,
            &digest,
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait()
        .unwrap();
    assert_eq!(
        hex::encode(sig.to_bytes()),
        concat!(
            "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
            "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"
        )
    );
    // And RustCrypto's verifier, given only the public key, agrees.
    use p256::ecdsa::signature::Verifier as _;
    let AnyPublicKey::P256(public) = signer.key().public() else {
        panic!("a P-256 key");
    };
    let verifying = p256::ecdsa::VerifyingKey::from(public.as_p256());
    let signature = p256::ecdsa::Signature::from_slice(&sig.to_bytes()).unwrap();
    verifying.verify(b"sample", &signature).unwrap();
    let records = w.audit.records();
    let last = records.last().unwrap().event();
    assert_eq!(last.field("algorithm"), Some("P-256"));
    assert_eq!(last.field("scheme"), Some("ecdsa-p256-sha256"));
}

#[test]
fn a_secp256k1_key_signs_es256k_low_s_and_its_record_is_unchanged() {
    let w = World::new();
    let signer = w.signer(K1_ID);
    let mut lows = 0;
    for i in 0u8..16 {
        let digest = Sha256::digest([i]);
        let sig = signer
            .sign_with(
                SignatureScheme::EcdsaSecp256k1,
                &digest,
                Intent::raw_digest(),
                &Authorization::none(),
            )
            .wait()
            .unwrap();
        let k = k256::ecdsa::Signature::from_slice(&sig.to_bytes()).unwrap();
        assert!(k.normalize_s() == k, "low s");
        lows += 1;
        let public = signer.key().secp256k1().unwrap().as_k256();
        use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
        k256::ecdsa::VerifyingKey::from(public)
            .verify_prehash(&digest, &k)
            .unwrap();
    }
    assert_eq!(lows, 16);
    // A secp256k1 key's record carries no algorithm or scheme field: the
    // Ethereum path's records are as they were.
    let records = w.audit.records();
    let last = records.last().unwrap().event();
    assert_eq!(last.field("algorithm"), None);
    assert_eq!(last.field("scheme"), None);
}

#[test]
fn a_scheme_not_the_keys_algorithm_is_refused_everywhere() {
    let w = World::new();
    let p256 = w.signer(P256_ID);
    let ed = w.signer(ED_ID);
    let auth = Authorization::none();
    // The request cannot be made.
    for (signer, scheme) in [
        (&p256, SignatureScheme::Ed25519),
        (&p256, SignatureScheme::EcdsaSecp256k1),
        (&ed, SignatureScheme::EcdsaP256Sha256),
    ] {
        assert!(matches!(
            signer
                .sign_with(scheme, &[0; 32], Intent::raw_digest(), &auth)
                .wait(),
            Err(Error::Unsupported(_))
        ));
    }
    // The Ethereum path refuses a key of another algorithm.
    assert!(matches!(
        p256.sign(Digest32([1; 32]), Intent::raw_digest(), &auth)
            .wait(),
        Err(Error::Unsupported(_))
    ));
    assert!(p256.key().secp256k1().is_err());
    // A P-256 digest that is not 32 bytes.
    assert!(
        p256.sign_with(
            SignatureScheme::EcdsaP256Sha256,
            &[0; 31],
            Intent::raw_digest(),
            &auth
        )
        .wait()
        .is_err()
    );
    // A hand-made request whose scheme is not its key's reaches the vault
    // directly: the vault refuses it too.
    let vault = vault();
    let key = vault
        .pin(&KeyRef::Wallet {
            name: "alice".into(),
            index: 0,
        })
        .wait()
        .unwrap();
    let mut request = SignRequest::new(&key, Digest32([3; 32]), Intent::raw_digest(), &auth);
    request.scheme = SignatureScheme::EcdsaP256Sha256;
    assert!(matches!(
        vault.sign_digest(request).wait(),
        Err(Error::Unsupported(_))
    ));
    // A P-256 pinned key presented under an id whose held key is another.
    let forged = PinnedKey::with_public(
        KeyRef::Stored(KeyId::new(P256_ID).unwrap()),
        None,
        ed.key().public().clone(),
    );
    let mut request = SignRequest::new(&forged, Digest32([3; 32]), Intent::raw_digest(), &auth);
    request.scheme = SignatureScheme::Ed25519;
    request.message = Some(b"m");
    let w2 = World::new();
    let signing = w2.backend.signing().unwrap();
    assert!(signing.sign_digest(request).wait().is_err());
}

/// A backend that signs with another key than the one it pinned.
#[derive(Debug)]
struct Lying {
    pinned: AnyPublicKey,
}

impl SigningBackend for Lying {
    fn key_kinds(&self) -> custody_core::KeyKinds {
        custody_core::KeyKinds {
            stored: true,
            hd: false,
        }
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> custody_core::Pending<'a, Result<PinnedKey, Error>> {
        custody_core::Pending::ready(Ok(PinnedKey::with_public(
            key.clone(),
            None,
            self.pinned.clone(),
        )))
    }

    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> custody_core::Pending<'a, Result<Signed, Error>> {
        use p256::ecdsa::signature::hazmat::PrehashSigner as _;
        let other = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
        let sig: p256::ecdsa::Signature = other.sign_prehash(request.digest.as_bytes()).unwrap();
        custody_core::Pending::ready(Ok(Signed::new(RawSignature::Der(
            sig.to_der().as_bytes().to_vec(),
        ))))
    }
}

impl KeyBackend for Lying {
    fn name(&self) -> &str {
        "lying"
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

#[test]
fn a_signature_by_another_key_than_the_pinned_one_is_refused() {
    let honest = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
    let pinned = AnyPublicKey::P256(custody_core::P256PublicKey::from(p256::PublicKey::from(
        honest.verifying_key(),
    )));
    let backend: SharedBackend = Arc::new(Lying { pinned });
    let signer = KeySigner::pin(backend, KeyRef::Stored(KeyId::new("kms-key").unwrap()))
        .wait()
        .unwrap();
    assert!(matches!(
        signer
            .sign_with(
                SignatureScheme::EcdsaP256Sha256,
                &[7; 32],
                Intent::raw_digest(),
                &Authorization::none()
            )
            .wait(),
        Err(Error::InvalidSignature)
    ));
}

#[test]
fn check_signature_reads_der_and_compact_and_nothing_else() {
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    let key = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
    let public = AnyPublicKey::P256(custody_core::P256PublicKey::from(p256::PublicKey::from(
        key.verifying_key(),
    )));
    let digest = Digest32([0x33; 32]);
    let sig: p256::ecdsa::Signature = key.sign_prehash(&digest.0).unwrap();
    let compact: [u8; 64] = sig.to_bytes().into();
    let scheme = SignatureScheme::EcdsaP256Sha256;
    let from_der = check_signature(
        scheme,
        &RawSignature::Der(sig.to_der().as_bytes().to_vec()),
        &public,
        &digest,
        None,
    )
    .unwrap();
    let from_compact = check_signature(
        scheme,
        &RawSignature::Compact(compact),
        &public,
        &digest,
        None,
    )
    .unwrap();
    assert_eq!(from_der.to_bytes(), compact);
    assert_eq!(from_compact.to_bytes(), compact);
    // Another digest, a flipped byte, a recoverable form, truncated DER.
    assert!(
        check_signature(
            scheme,
            &RawSignature::Compact(compact),
            &public,
            &Digest32([0x34; 32]),
            None
        )
        .is_err()
    );
    let mut flipped = compact;
    flipped[40] ^= 1;
    assert!(
        check_signature(
            scheme,
            &RawSignature::Compact(flipped),
            &public,
            &digest,
            None
        )
        .is_err()
    );
    assert!(
        check_signature(
            scheme,
            &RawSignature::Recoverable {
                compact,
                y_parity: false
            },
            &public,
            &digest,
            None
        )
        .is_err()
    );
    let der = sig.to_der().as_bytes().to_vec();
    assert!(
        check_signature(
            scheme,
            &RawSignature::Der(der[..der.len() - 1].to_vec()),
            &public,
            &digest,
            None
        )
        .is_err()
    );
    // An Ed25519 signature needs its message.
    let ed = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    use ed25519_dalek::Signer as _;
    let ed_sig = ed.sign(b"m").to_bytes();
    let ed_public = AnyPublicKey::Ed25519(custody_core::Ed25519PublicKey::from(ed.verifying_key()));
    let ed_digest = Digest32(Sha256::digest(b"m").into());
    assert!(
        check_signature(
            SignatureScheme::Ed25519,
            &RawSignature::Compact(ed_sig),
            &ed_public,
            &ed_digest,
            Some(b"m")
        )
        .is_ok()
    );
    assert!(
        check_signature(
            SignatureScheme::Ed25519,
            &RawSignature::Compact(ed_sig),
            &ed_public,
            &ed_digest,
            None
        )
        .is_err()
    );
    assert!(
        check_signature(
            SignatureScheme::Ed25519,
            &RawSignature::Compact(ed_sig),
            &ed_public,
            &ed_digest,
            Some(b"n")
        )
        .is_err()
    );
}

#[test]
fn public_keys_of_each_algorithm_parse_strictly() {
    // Ed25519: a small-order point is refused (any signature could match).
    assert!(custody_core::Ed25519PublicKey::from_bytes(&[0; 32]).is_err());
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(custody_core::Ed25519PublicKey::from_bytes(&identity).is_err());
    // P-256: the secp256k1 generator is not a P-256 point.
    let mut one = [0u8; 32];
    one[31] = 1;
    let k1_g = k256::SecretKey::from_slice(&one).unwrap().public_key();
    use k256::elliptic_curve::sec1::ToSec1Point as _;
    let bytes = k1_g.to_sec1_point(true);
    assert!(custody_core::P256PublicKey::from_sec1_bytes(bytes.as_bytes()).is_err());
    assert_eq!(KeyAlgorithm::from_name("P-256"), Some(KeyAlgorithm::P256));
    assert_eq!(KeyAlgorithm::from_name("p-256"), None);
    // A secret that is not a valid P-256 scalar is refused on insertion.
    let v = vault();
    assert!(
        v.insert_algorithm_key(
            KeyId::new("zero").unwrap(),
            KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&[0; 32]).unwrap()
        )
        .is_err()
    );
}

/// The twelve edge cases of "Taming the many EdDSAs" (ed25519-speccheck,
/// committed unchanged): custody verifies as the strictest verifiers of
/// that study do (small-order keys and `R` refused, `S` reduced, only the
/// cofactorless equation), so exactly case 3 is accepted. A key the case
/// gives that custody refuses to hold at all counts as refused.
#[test]
fn ed25519_edge_cases_are_decided_as_the_strictest_verifiers_decide() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("vectors/ed25519_speccheck.json")).unwrap();
    let accepted: Vec<u64> = v["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_u64().unwrap())
        .collect();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    let mut ours = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let bytes = |name: &str| hex::decode(case[name].as_str().unwrap()).unwrap();
        let message = bytes("message");
        let key: [u8; 32] = bytes("pub_key").try_into().unwrap();
        let signature: [u8; 64] = bytes("signature").try_into().unwrap();
        let Ok(key) = custody_core::Ed25519PublicKey::from_bytes(&key) else {
            continue;
        };
        let digest = Digest32(Sha256::digest(&message).into());
        if check_signature(
            SignatureScheme::Ed25519,
            &RawSignature::Compact(signature),
            &AnyPublicKey::Ed25519(key),
            &digest,
            Some(&message),
        )
        .is_ok()
        {
            ours.push(u64::try_from(i).unwrap());
        }
    }
    assert_eq!(ours, accepted);
}
