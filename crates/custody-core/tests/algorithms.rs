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

/// What a stand-in backend answers to a request.
type Answer = Box<dyn Fn(&SignRequest<'_>) -> Signed + Send + Sync>;

/// A backend outside the process as far as the seam can tell (a KMS, an
/// HSM): it pins `pinned` and answers every request with `answer`'s
/// signature, made by [`Signed::new`] ([`custody_core::Origin::Backend`]).
struct Remote {
    pinned: AnyPublicKey,
    answer: Answer,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Remote")
    }
}

impl SigningBackend for Remote {
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
        custody_core::Pending::ready(Ok((self.answer)(&request)))
    }
}

impl KeyBackend for Remote {
    fn name(&self) -> &str {
        "remote"
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

/// A [`Remote`] backend's key pinned.
fn remote(
    pinned: AnyPublicKey,
    answer: impl Fn(&SignRequest<'_>) -> Signed + Send + Sync + 'static,
) -> KeySigner {
    let backend: SharedBackend = Arc::new(Remote {
        pinned,
        answer: Box::new(answer),
    });
    KeySigner::pin(backend, KeyRef::Stored(KeyId::new("remote-key").unwrap()))
        .wait()
        .unwrap()
}

/// `raw` with the lowest bit of its last byte flipped (in `s` for ECDSA
/// and EdDSA), in the same form: a fault in the signing computation.
fn faulted(raw: &RawSignature) -> RawSignature {
    let mut raw = raw.clone();
    match &mut raw {
        RawSignature::Compact(b) | RawSignature::Recoverable { compact: b, .. } => b[63] ^= 1,
        RawSignature::Der(b) | RawSignature::Rsa(b) => *b.last_mut().unwrap() ^= 1,
        _ => unreachable!("a form these tests do not make"),
    }
    raw
}

/// How a stand-in backend spoils the pinned key's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spoilt {
    /// The pinned key's own signature, untouched.
    No,
    /// The same request signed by another key.
    OtherKey,
    /// The pinned key's signature with one bit flipped.
    Faulted,
}

const SPOILT: [Spoilt; 3] = [Spoilt::No, Spoilt::OtherKey, Spoilt::Faulted];

impl Spoilt {
    /// The answer: `own` (by the pinned key) or `other` (by another key).
    fn answer(self, own: RawSignature, other: RawSignature) -> Signed {
        Signed::new(match self {
            Self::No => own,
            Self::OtherKey => other,
            Self::Faulted => faulted(&own),
        })
    }
}

/// The pinned secret and another key's, for every curve below.
const PINNED: [u8; 32] = [9; 32];
const OTHER: [u8; 32] = [5; 32];

/// A secp256k1 signature of `digest` by `secret`, low `s`, in form `form`:
/// 0 DER (KMS), 1 `r‖s` (PKCS#11), 2 with its recovery id (as an enclave
/// may return it).
fn k1_raw(secret: &[u8; 32], digest: &Digest32, form: usize) -> RawSignature {
    let key = k256::ecdsa::SigningKey::from_slice(secret).unwrap();
    let (sig, id) = key.sign_prehash_recoverable(digest.as_bytes());
    match form {
        0 => RawSignature::Der(sig.to_der().as_bytes().to_vec()),
        1 => RawSignature::Compact(sig.to_bytes().into()),
        _ => RawSignature::Recoverable {
            compact: sig.to_bytes().into(),
            y_parity: id.is_y_odd(),
        },
    }
}

/// A P-256 signature of `digest` by `secret`: DER (form 0) or `r‖s`.
fn p256_raw(secret: &[u8; 32], digest: &Digest32, form: usize) -> RawSignature {
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    let key = p256::ecdsa::SigningKey::from_slice(secret).unwrap();
    let sig: p256::ecdsa::Signature = key.sign_prehash(digest.as_bytes()).unwrap();
    if form == 0 {
        RawSignature::Der(sig.to_der().as_bytes().to_vec())
    } else {
        RawSignature::Compact(sig.to_bytes().into())
    }
}

/// An Ed25519 signature of `message` by `secret`.
fn ed_raw(secret: &[u8; 32], message: &[u8]) -> RawSignature {
    let key = ed25519_dalek::SigningKey::from_bytes(secret);
    RawSignature::Compact(ed25519_dalek::Signer::sign(&key, message).to_bytes())
}

/// Verify after sign for a backend outside the process
/// (`custody_core::Origin::Backend`): for every algorithm and every form
/// a KMS, a token or an enclave may answer in, a signature by another key
/// and the pinned key's own with one bit flipped never leave `KeySigner`
/// (`Error::InvalidSignature`), on both entry points for secp256k1 (the
/// one with a recovery id included, which the seam used to trust from
/// any backend, too); the genuine signature passes, normalized, so each
/// refusal is the check's and not the form's.
#[test]
fn a_backend_signature_by_another_key_or_faulted_is_refused_for_every_algorithm() {
    let auth = Authorization::none();
    let digest = Digest32([7; 32]);
    let refused = |r: Result<_, Error>, what: &str| {
        assert!(matches!(r, Err(Error::InvalidSignature)), "{what}");
    };

    let k1_pinned =
        custody_core::PublicKey::from(k256::SecretKey::from_slice(&PINNED).unwrap().public_key());
    let k1_good: [u8; 64] = match k1_raw(&PINNED, &digest, 1) {
        RawSignature::Compact(c) => c,
        _ => unreachable!(),
    };
    for form in 0..3 {
        for spoilt in SPOILT {
            let signer = remote(AnyPublicKey::Secp256k1(k1_pinned), move |r| {
                spoilt.answer(
                    k1_raw(&PINNED, &r.digest, form),
                    k1_raw(&OTHER, &r.digest, form),
                )
            });
            let what = format!("secp256k1, form {form}, {spoilt:?}");
            let plain = signer.sign(digest, Intent::raw_digest(), &auth).wait();
            let jose = signer
                .sign_with(
                    SignatureScheme::EcdsaSecp256k1,
                    &digest.0,
                    Intent::raw_digest(),
                    &auth,
                )
                .wait();
            if spoilt == Spoilt::No {
                let plain = plain.unwrap();
                assert_eq!(plain.to_compact(), k1_good, "{what}");
                assert_eq!(plain.recover(&digest).unwrap(), k1_pinned, "{what}");
                assert_eq!(jose.unwrap().to_bytes(), k1_good, "{what}");
            } else {
                refused(plain.map(|_| ()), &what);
                refused(jose.map(|_| ()), &what);
            }
        }
    }

    let p256_pinned = AnyPublicKey::P256(custody_core::P256PublicKey::from(
        p256::SecretKey::from_slice(&PINNED).unwrap().public_key(),
    ));
    let RawSignature::Compact(p256_good) = p256_raw(&PINNED, &digest, 1) else {
        unreachable!()
    };
    for form in 0..2 {
        for spoilt in SPOILT {
            let signer = remote(p256_pinned.clone(), move |r| {
                spoilt.answer(
                    p256_raw(&PINNED, &r.digest, form),
                    p256_raw(&OTHER, &r.digest, form),
                )
            });
            let out = signer
                .sign_with(
                    SignatureScheme::EcdsaP256Sha256,
                    &digest.0,
                    Intent::raw_digest(),
                    &auth,
                )
                .wait();
            let what = format!("P-256, form {form}, {spoilt:?}");
            if spoilt == Spoilt::No {
                assert_eq!(out.unwrap().to_bytes(), p256_good, "{what}");
            } else {
                refused(out.map(|_| ()), &what);
            }
        }
    }

    let ed_pinned = AnyPublicKey::Ed25519(custody_core::Ed25519PublicKey::from(
        ed25519_dalek::SigningKey::from_bytes(&PINNED).verifying_key(),
    ));
    let message = b"a JWS signing input";
    let RawSignature::Compact(ed_good) = ed_raw(&PINNED, message) else {
        unreachable!()
    };
    for spoilt in SPOILT {
        let signer = remote(ed_pinned.clone(), move |r| {
            let m = r.message.unwrap();
            spoilt.answer(ed_raw(&PINNED, m), ed_raw(&OTHER, m))
        });
        let out = signer
            .sign_with(
                SignatureScheme::Ed25519,
                message,
                Intent::raw_digest(),
                &auth,
            )
            .wait();
        if spoilt == Spoilt::No {
            assert_eq!(out.unwrap().to_bytes(), ed_good);
        } else {
            refused(out.map(|_| ()), &format!("Ed25519, {spoilt:?}"));
        }
    }

    // RSA: OpenSSL's signatures (tests/vectors/rsa_signatures.json) of a
    // 2048-bit key pinned; another key's (3072 bits) and the pinned key's
    // of another digest are the wrong signatures.
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("vectors/rsa_signatures.json")).unwrap();
    let hexof = |v: &serde_json::Value, name: &str| hex::decode(v[name].as_str().unwrap()).unwrap();
    let keys = &vectors["keys"];
    let rsa_pinned = AnyPublicKey::Rsa(
        custody_core::RsaPublicKey::from_spki_der(&hexof(&keys[0], "spki")).unwrap(),
    );
    let (own, other_key, other_digest) = (
        &keys[0]["signatures"][1],
        &keys[1]["signatures"][1],
        &keys[0]["signatures"][2],
    );
    let rsa_digest = hexof(own, "digest");
    assert_eq!(rsa_digest, hexof(other_key, "digest"));
    for (scheme, field) in [
        (SignatureScheme::RsaPkcs1Sha256, "pkcs1"),
        (SignatureScheme::RsaPssSha256, "pss"),
    ] {
        let good = hexof(own, field);
        for (what, answer) in [
            ("own", good.clone()),
            ("another key's", hexof(other_key, field)),
            ("another digest's", hexof(other_digest, field)),
            ("faulted", {
                let mut b = good.clone();
                *b.last_mut().unwrap() ^= 1;
                b
            }),
        ] {
            let answer = RawSignature::Rsa(answer);
            let signer = remote(rsa_pinned.clone(), move |_| Signed::new(answer.clone()));
            let out = signer
                .sign_with(scheme, &rsa_digest, Intent::raw_digest(), &auth)
                .wait();
            if what == "own" {
                assert_eq!(out.unwrap().to_bytes(), good, "{scheme:?}");
            } else {
                refused(out.map(|_| ()), &format!("{scheme:?}, {what}"));
            }
        }
    }
}

/// The software vault, its every answer spoilt on the way up when
/// `fault` is set (one bit flipped, its origin kept): a fault in the
/// vault's own signing computation, which cannot be produced from outside.
#[derive(Debug)]
struct Faulting {
    vault: Vault,
    fault: bool,
}

impl SigningBackend for Faulting {
    fn key_kinds(&self) -> custody_core::KeyKinds {
        SigningBackend::key_kinds(&self.vault)
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> custody_core::Pending<'a, Result<PinnedKey, Error>> {
        SigningBackend::pin(&self.vault, key)
    }

    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> custody_core::Pending<'a, Result<Signed, Error>> {
        let fault = self.fault;
        self.vault.sign_digest(request).map(move |signed| {
            signed.map(|signed| {
                if fault {
                    Signed {
                        signature: faulted(&signed.signature),
                        ..signed
                    }
                } else {
                    signed
                }
            })
        })
    }
}

impl KeyBackend for Faulting {
    fn name(&self) -> &str {
        "faulting"
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

/// Verify after sign for the vault (`Vault::with_verify_after_sign`):
/// with it on, a faulted signature of each algorithm is refused
/// (`Error::InvalidSignature`) and a good one passes, bit for bit the
/// signature RustCrypto makes with the same key; with it off (the
/// default, `custody_core::Origin::InProcess`), the vault's signature is
/// released as computed, so the same fault goes out: the boundary the
/// switch exists for.
#[test]
fn a_vault_verifying_after_signing_refuses_a_faulted_signature_and_passes_a_good_one() {
    use p256::ecdsa::signature::hazmat::PrehashSigner as _;
    let auth = Authorization::none();
    let payload = [0x61; 32];
    let digest = Digest32(payload);
    let k1_secret: [u8; 32] = hex::decode("11".repeat(32)).unwrap().try_into().unwrap();
    let (k1_sig, _) = k256::ecdsa::SigningKey::from_slice(&k1_secret)
        .unwrap()
        .sign_prehash_recoverable(&payload);
    let p256_sig: p256::ecdsa::Signature =
        p256::ecdsa::SigningKey::from_slice(&hex::decode(RFC6979_P256).unwrap())
            .unwrap()
            .sign_prehash(&payload)
            .unwrap();
    let ed_secret: [u8; 32] = hex::decode(RFC8037_D).unwrap().try_into().unwrap();
    let good: [(&str, SignatureScheme, [u8; 64]); 3] = [
        (
            K1_ID,
            SignatureScheme::EcdsaSecp256k1,
            k1_sig.to_bytes().into(),
        ),
        (
            P256_ID,
            SignatureScheme::EcdsaP256Sha256,
            p256_sig.to_bytes().into(),
        ),
        (
            ED_ID,
            SignatureScheme::Ed25519,
            ed25519_dalek::Signer::sign(
                &ed25519_dalek::SigningKey::from_bytes(&ed_secret),
                &payload,
            )
            .to_bytes(),
        ),
    ];
    for check in [false, true] {
        for fault in [false, true] {
            let vault = vault().with_verify_after_sign(check);
            for (id, algorithm, secret_hex) in [
                (K1_ID, KeyAlgorithm::Secp256k1, "11".repeat(32)),
                (P256_ID, KeyAlgorithm::P256, RFC6979_P256.to_owned()),
                (ED_ID, KeyAlgorithm::Ed25519, RFC8037_D.to_owned()),
            ] {
                vault
                    .insert_algorithm_key(KeyId::new(id).unwrap(), algorithm, secret(&secret_hex))
                    .unwrap();
            }
            let backend: SharedBackend = Arc::new(Faulting { vault, fault });
            let pin = |id: &str| {
                KeySigner::pin(backend.clone(), KeyRef::Stored(KeyId::new(id).unwrap()))
                    .wait()
                    .unwrap()
            };
            for (id, scheme, good) in good {
                let what = format!("{scheme:?}, verify after sign {check}, fault {fault}");
                let signer = pin(id);
                let mut outs = vec![
                    signer
                        .sign_with(scheme, &payload, Intent::raw_digest(), &auth)
                        .wait()
                        .map(|s| s.to_bytes()),
                ];
                if scheme == SignatureScheme::EcdsaSecp256k1 {
                    outs.push(
                        signer
                            .sign(digest, Intent::raw_digest(), &auth)
                            .wait()
                            .map(|s| s.to_compact().to_vec()),
                    );
                }
                let mut bad = good;
                bad[63] ^= 1;
                for out in outs {
                    match (fault, check) {
                        (false, _) => assert_eq!(out.unwrap(), good, "{what}"),
                        (true, true) => {
                            assert!(matches!(out, Err(Error::InvalidSignature)), "{what}");
                        }
                        (true, false) => assert_eq!(out.unwrap(), bad, "{what}"),
                    }
                }
            }
        }
    }
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
