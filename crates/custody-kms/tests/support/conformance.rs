//! The backend conformance suite, written once and run for every backend
//! that is built (`tests/conformance.rs`): the software vault and local
//! KEK, AWS KMS and PKCS#11. Each check takes the backend as
//! `SharedBackend` (the seam callers hold) and knows nothing of which one it
//! is, so a backend passes only by behaving as the seam says.

use std::collections::BTreeSet;
use std::sync::Arc;

use custody_core::{
    AuditOutcome, Audited, Authorization, Capabilities, DataKey, DerivationPath, Digest32,
    EncryptionContext, Envelope, Error, Intent, KekId, KeyBackend, KeyRef, KeySigner,
    MemoryAuditLog, MemoryStore, SharedBackend, Vault, WalletScheme,
};
use custody_totp::{EnrolMode, ManualClock, TotpConfig, TotpGate, TotpRegistry};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, VerifyingKey};

/// Half the secp256k1 group order, big-endian: a low-s signature has
/// `s <= HALF_ORDER`.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// A deterministic, distinct digest per `i`.
pub(crate) fn digest(i: u32) -> Digest32 {
    let mut d = [0u8; 32];
    for (j, b) in d.iter_mut().enumerate() {
        *b = u8::try_from((i as usize * 131 + j * 29 + 7) % 251).unwrap();
    }
    d[..4].copy_from_slice(&i.to_be_bytes());
    Digest32(d)
}

/// A digest is signed: the signature verifies (k256) against the pinned
/// public key, recovers to it, is low-s, and over `n` digests both recovery
/// ids occur (a backend that returns no recovery id has it found by
/// recovery, never assumed to be 0).
pub(crate) fn signs_and_normalizes(backend: SharedBackend, key: KeyRef, n: u32) -> KeySigner {
    let signer = KeySigner::pin(backend, key).wait().unwrap();
    let public = *signer.key().secp256k1().unwrap();
    let verifying = VerifyingKey::from(public.as_k256());
    let mut parities = BTreeSet::new();
    for i in 0..n {
        let d = digest(i);
        let sig = signer
            .sign(d, Intent::raw_digest(), &Authorization::none())
            .wait()
            .unwrap();
        assert!(sig.s() <= &HALF_ORDER, "high s for digest {i}");
        assert_eq!(sig.recover(&d).unwrap(), public, "recovery for digest {i}");
        let k = Signature::from_slice(&sig.to_compact()).unwrap();
        verifying.verify_prehash(&d.0, &k).unwrap();
        parities.insert(sig.y_parity());
    }
    assert_eq!(parities.len(), 2, "both recovery ids over {n} digests");
    signer
}

/// Many threads sign through one backend at once; every signature is
/// valid for its own digest.
pub(crate) fn many_threads_sign(signer: &KeySigner, threads: u32, each: u32) {
    let public = *signer.key().secp256k1().unwrap();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..each {
                    let d = digest(10_000 + t * each + i);
                    let sig = signer
                        .sign(d, Intent::raw_digest(), &Authorization::none())
                        .wait()
                        .unwrap();
                    assert_eq!(sig.recover(&d).unwrap(), public);
                }
            });
        }
    });
}

fn context(purpose: &str) -> EncryptionContext {
    EncryptionContext::new()
        .with("purpose", purpose)
        .unwrap()
        .with("wallet", "alice@example.com")
        .unwrap()
}

/// The one opaque refusal of a wrong context, KEK or bytes.
pub(crate) fn opaque(e: &Error) -> bool {
    matches!(e, Error::DecryptionFailed)
}

/// Envelopes sealed under `kek` open with the same context; a wrong
/// context, a data key unwrapped under the wrong KEK (`other`) and tampered
/// bytes are all the one opaque [`Error::DecryptionFailed`]. The wrong KEK
/// is checked by `wrong_kek` ([`opaque`] but for an emulator that answers
/// otherwise than the service it stands for).
pub(crate) fn wraps_and_refuses_alike(
    backend: &dyn KeyBackend,
    kek: &KekId,
    other: &KekId,
    wrong_kek: fn(&Error) -> bool,
) {
    let wrapping = backend.wrapping().expect("a wrapping backend");
    let plaintext = b"an HD master seed, or a TOTP secret".to_vec();
    let ctx = context("conformance");
    let envelope = Envelope::seal(wrapping, kek, &ctx, &plaintext)
        .wait()
        .unwrap();
    assert_eq!(envelope.kek(), kek);
    let opened = envelope.open(wrapping, &ctx).wait().unwrap();
    assert_eq!(opened.expose_secret(), plaintext.as_slice());
    // The bytes survive a round trip through storage.
    let stored = Envelope::from_bytes(&envelope.to_bytes()).unwrap();
    assert_eq!(
        stored.open(wrapping, &ctx).wait().unwrap().expose_secret(),
        plaintext.as_slice()
    );

    // A wrong context: at the envelope and at the wrapped data key.
    let wrong = context("another-purpose");
    assert!(matches!(
        envelope.open(wrapping, &wrong).wait(),
        Err(Error::DecryptionFailed)
    ));
    let (_key, wrapped) = wrapping.generate_data_key(kek, &ctx).wait().unwrap();
    assert!(matches!(
        wrapping.unwrap(kek, &wrapped, &wrong).wait(),
        Err(Error::DecryptionFailed)
    ));
    assert!(matches!(
        wrapping
            .unwrap(kek, &wrapped, &EncryptionContext::new())
            .wait(),
        Err(Error::DecryptionFailed)
    ));

    // The wrong KEK: a data key wrapped under `kek` presented to `other`.
    match wrapping.unwrap(other, &wrapped, &ctx).wait() {
        Err(e) => assert!(wrong_kek(&e), "the wrong KEK: {e:?}"),
        Ok(_) => panic!("unwrapped under the wrong KEK"),
    }

    // Tampered bytes: every byte of the wrapped key's second half flipped
    // in turn (the first may be a key reference a backend reads first),
    // and the envelope's ciphertext.
    for i in wrapped.len() / 2..wrapped.len() {
        let mut bad = wrapped.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(
                wrapping.unwrap(kek, &bad, &ctx).wait(),
                Err(Error::DecryptionFailed)
            ),
            "flipped byte {i} of {}",
            wrapped.len()
        );
    }
    let mut bytes = envelope.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    let tampered = Envelope::from_bytes(&bytes).unwrap();
    assert!(matches!(
        tampered.open(wrapping, &ctx).wait(),
        Err(Error::DecryptionFailed)
    ));

    // A data key given to wrap comes back from unwrap.
    let given = DataKey::new([0x42; 32]);
    let w = wrapping.wrap(kek, &given, &ctx).wait().unwrap();
    let back = wrapping.unwrap(kek, &w, &ctx).wait().unwrap();
    assert_eq!(back.expose_secret(), given.expose_secret());
}

/// What the backend declares is what it does: each declared capability
/// works, each undeclared one is absent (no method to call by mistake), and
/// the key kinds it resolves are the ones it says.
pub(crate) fn capabilities_are_honest(backend: &SharedBackend, stored: Option<KeyRef>) {
    let caps = Capabilities::of(backend.as_ref());
    assert_eq!(caps.signing.is_some(), backend.signing().is_some());
    assert_eq!(caps.wrapping, backend.wrapping().is_some());
    assert_eq!(caps.exporting, backend.exporting().is_some());
    let Some(kinds) = caps.signing else {
        assert!(stored.is_none());
        return;
    };
    let signing = backend.signing().unwrap();
    if let Some(key) = stored {
        assert!(kinds.stored);
        signing.pin(&key).wait().unwrap();
    }
    let path = KeyRef::Path("m/44'/60'/0'/0/0".parse::<DerivationPath>().unwrap());
    match signing.pin(&path).wait() {
        Ok(pinned) => {
            assert!(kinds.hd, "resolved a path without declaring hd");
            assert_eq!(pinned.path(), Some(&"m/44'/60'/0'/0/0".parse().unwrap()));
        }
        Err(Error::Unsupported(_)) => assert!(!kinds.hd, "declared hd, refused a path"),
        Err(e) => panic!("a path reference: {e:?}"),
    }
    if !kinds.stored {
        let id = custody_core::KeyId::new("no-such-key").unwrap();
        assert!(matches!(
            signing.pin(&KeyRef::Stored(id)).wait(),
            Err(Error::Unsupported(_))
        ));
    }
}

/// What a record says happened: its operation, outcome and field names
/// (not the values, which differ from key to key).
pub(crate) type RecordShape = (String, AuditOutcome, BTreeSet<String>);

/// The error kinds (empty: signed) of an enrolled wallet's four requests,
/// and the shape of the signature's record.
pub(crate) type EnrolledBehaviour = (Vec<String>, RecordShape);

fn shape(event: &custody_core::AuditEvent) -> RecordShape {
    (
        event.op().to_string(),
        event.outcome(),
        event.fields().map(|(k, _)| k.to_owned()).collect(),
    )
}

/// What `Audited(TotpGate(signer))` does with a key held by `signer`,
/// TOTP secrets sealed by `kek_backend`: the shapes of the audit records
/// and the answers, for comparing across backends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GateBehaviour {
    /// An unenrolled key, enrolment not required: the answer and records.
    pub(crate) open: (bool, Vec<RecordShape>),
    /// An unenrolled key, enrolment required: the error kind and records.
    pub(crate) required: (String, Vec<RecordShape>),
}

/// `Audited(TotpGate(signer))` over a key of `signer`, with the registry's
/// secrets wrapped by `kek_backend`.
pub(crate) fn audited_totp_gate(
    signer: SharedBackend,
    key: KeyRef,
    kek_backend: SharedBackend,
) -> GateBehaviour {
    let run = |require: bool| {
        let log = Arc::new(MemoryAuditLog::new());
        let registry = Arc::new(
            TotpRegistry::new(
                kek_backend.clone(),
                Arc::new(MemoryStore::new()),
                log.clone(),
                TotpConfig::new(WalletScheme::Default),
            )
            .unwrap(),
        );
        let gate = TotpGate::new(signer.clone(), registry).require_enrolment(require);
        let audited: SharedBackend = Arc::new(Audited::new(Arc::new(gate), log.clone()));
        let pinned = KeySigner::pin(audited, key.clone()).wait().unwrap();
        let d = digest(7);
        let answer = pinned
            .sign(d, Intent::raw_digest(), &Authorization::none())
            .wait();
        if let Ok(sig) = &answer {
            assert_eq!(&sig.recover(&d).unwrap(), pinned.key().secp256k1().unwrap());
        }
        let records: Vec<_> = log.drain().iter().map(|r| shape(r.event())).collect();
        (answer, records)
    };
    let (answer, open_records) = run(false);
    let (refused, required_records) = run(true);
    GateBehaviour {
        open: (answer.is_ok(), open_records),
        required: (refused.err().unwrap().kind().to_owned(), required_records),
    }
}

/// The code an authenticator shows for `secret_b32` at `unix`, computed by
/// totp-rs (an independent implementation).
fn code_at(secret_b32: &str, unix: u64) -> String {
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret_b32).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    totp.generate(unix).to_string()
}

/// What an enrolled wallet's requests get through
/// `Audited(TotpGate(Vault))`, the vault's master and the TOTP secret both
/// sealed by `kek_backend` under `kek`: the error kinds of no code, a
/// wrong code, a valid code (empty: signed) and its replay, and the shape
/// of the signature's record.
pub(crate) fn enrolled_wallet_through_the_gate(kek_backend: SharedBackend) -> EnrolledBehaviour {
    let log = Arc::new(MemoryAuditLog::new());
    let clock = Arc::new(ManualClock::new(1_764_633_600));
    let registry = Arc::new(
        TotpRegistry::new(
            kek_backend.clone(),
            Arc::new(MemoryStore::new()),
            log.clone(),
            TotpConfig::new(WalletScheme::Default),
        )
        .unwrap()
        .with_clock(clock.clone()),
    );
    let enrolment = registry
        .enrol("alice@example.com", EnrolMode::New)
        .wait()
        .unwrap();
    let secret = enrolment.secret_base32();
    let mut vault = Vault::new(kek_backend, WalletScheme::Default);
    vault.set_master_seed(&[0x5e; 64]).unwrap();
    let gate = TotpGate::new(Arc::new(vault), registry);
    let audited: SharedBackend = Arc::new(Audited::new(Arc::new(gate), log.clone()));
    let signer = KeySigner::pin(
        audited,
        KeyRef::Wallet {
            name: "alice@example.com".into(),
            index: 0,
        },
    )
    .wait()
    .unwrap();
    let code = code_at(&secret, 1_764_633_600);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut kinds = Vec::new();
    for auth in [
        Authorization::none(),
        Authorization::totp(wrong),
        Authorization::totp(code.clone()),
        Authorization::totp(code),
    ] {
        let answer = signer.sign(digest(1), Intent::raw_digest(), &auth).wait();
        kinds.push(answer.err().map_or(String::new(), |e| e.kind().to_owned()));
    }
    let records = log.drain();
    let signed = records
        .iter()
        .find(|r| {
            r.event().op().to_string() == "sign" && r.event().outcome() == AuditOutcome::Success
        })
        .unwrap();
    (kinds, shape(signed.event()))
}

/// What a P-256 key's ES256 signature and ECDH agreement through
/// `Audited(backend)` leave in the audit log: the records' shapes.
pub(crate) type P256Behaviour = Vec<RecordShape>;

/// A P-256 key of `backend` (`sign_key`: one that signs; `agree_key`: one
/// that agrees, the same key where the backend allows both) through the
/// audit layer: each ES256 signature verifies with `p256` against the
/// pinned key and is refused for another digest; each ECDH answer equals
/// `p256`'s agreement of a local ephemeral secret with the pinned key; the
/// shared secret appears in no record. Returns the records' shapes, which
/// must be the same for every backend.
pub(crate) fn p256_signs_and_agrees(
    backend: SharedBackend,
    sign_key: KeyRef,
    agree_key: KeyRef,
) -> P256Behaviour {
    use custody_core::{
        AnyPublicKey, DecryptRequest, Decryption, IntentKind, KeyAlgorithm, P256PublicKey,
        SignatureScheme,
    };
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
    let audit = Arc::new(MemoryAuditLog::new());
    let audited: SharedBackend = Arc::new(Audited::new(backend, audit.clone()));
    assert!(Capabilities::of(audited.as_ref()).decrypting);

    let signer = KeySigner::pin(audited.clone(), sign_key).wait().unwrap();
    assert_eq!(signer.key().algorithm(), KeyAlgorithm::P256);
    let AnyPublicKey::P256(public) = signer.key().public() else {
        panic!("a P-256 key");
    };
    let verifying = p256::ecdsa::VerifyingKey::from(public.as_p256());
    for i in 0..3 {
        let d = digest(i);
        let sig = signer
            .sign_with(
                SignatureScheme::EcdsaP256Sha256,
                &d.0,
                Intent::typed(IntentKind::Jwt, &i),
                &Authorization::none(),
            )
            .wait()
            .unwrap();
        let sig = p256::ecdsa::Signature::from_slice(sig.as_bytes()).unwrap();
        verifying.verify_prehash(&d.0, &sig).unwrap();
        assert!(verifying.verify_prehash(&digest(i + 100).0, &sig).is_err());
    }

    let agreeing = KeySigner::pin(audited.clone(), agree_key).wait().unwrap();
    let AnyPublicKey::P256(public) = agreeing.key().public() else {
        panic!("a P-256 key");
    };
    let mut secrets = Vec::new();
    for seed in 1u8..=3 {
        let ephemeral = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        let expected =
            p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), public.as_p256().as_affine());
        let peer = P256PublicKey::from(ephemeral.public_key());
        let auth = Authorization::none();
        let request = DecryptRequest::new(
            agreeing.key(),
            digest(u32::from(seed)),
            Decryption::EcdhP256 { peer: &peer },
            Intent::typed(IntentKind::Unseal, &()).with_note("scope", "svc/purpose"),
            &auth,
        )
        .unwrap();
        let z = audited
            .decrypting()
            .unwrap()
            .decrypt(request)
            .wait()
            .unwrap();
        assert_eq!(
            z.secret.expose_secret(),
            expected.raw_secret_bytes().as_slice()
        );
        secrets.push(hex::encode(expected.raw_secret_bytes()));
    }
    let records = audit.records();
    assert_eq!(records.len(), 6);
    successes_without(&records, "P-256", &secrets)
}

/// Checks that every one of `records` is a success with a key of
/// `algorithm` and that no field holds any of `secrets`: the records'
/// shapes.
fn successes_without(
    records: &[custody_core::AuditRecord],
    algorithm: &str,
    secrets: &[String],
) -> Vec<RecordShape> {
    for r in records {
        assert_eq!(r.event().outcome(), AuditOutcome::Success);
        assert_eq!(r.event().field("algorithm"), Some(algorithm));
        assert!(
            r.event()
                .fields()
                .all(|(_, v)| secrets.iter().all(|s| !v.contains(s.as_str())))
        );
    }
    records.iter().map(|r| shape(r.event())).collect()
}

/// What an RSA key's RS256 and PS256 signatures and RSA-OAEP-256
/// decryptions through `Audited(backend)` leave in the audit log: the
/// records' shapes.
///
/// Only the remote backends (AWS KMS, PKCS#11) run this case: the software
/// vault holds no RSA keys and performs no local RSA private-key operation
/// (the `rsa` crate's private operations are not constant-time,
/// RUSTSEC-2023-0071), so there is no vault behaviour to compare with.
/// What the backends are compared with instead is the vault's P-256
/// behaviour ([`p256_signs_and_agrees`]): three signatures then three
/// decryptions leave records of the same shapes whatever the key's
/// algorithm (the seam's records do not depend on it), which is what a
/// caller auditing JWTs and unseals relies on.
pub(crate) type RsaBehaviour = Vec<RecordShape>;

/// An RSA key of `backend` (`sign_key`: one that signs; `decrypt_key`: one
/// that decrypts, the same key where the backend allows both) through the
/// audit layer: RS256 and PS256 signatures verify with `rsa` against the
/// pinned key (and not over another digest); what `rsa` encrypts with
/// RSAES-OAEP-SHA256 to the pinned key decrypts to the plaintext; a
/// tampered ciphertext is the opaque [`Error::DecryptionFailed`] (not part
/// of the returned shapes); the plaintexts appear in no record. No
/// `decrypt_key` (a token without RSA-OAEP over SHA-256, as the caller
/// found out and says): the signatures only.
pub(crate) fn rsa_signs_and_decrypts(
    backend: SharedBackend,
    sign_key: KeyRef,
    decrypt_key: Option<KeyRef>,
) -> RsaBehaviour {
    use custody_core::{
        AnyPublicKey, DecryptRequest, Decryption, IntentKind, KeyAlgorithm, SignatureScheme,
    };
    let audit = Arc::new(MemoryAuditLog::new());
    let audited: SharedBackend = Arc::new(Audited::new(backend, audit.clone()));
    assert!(Capabilities::of(audited.as_ref()).decrypting);

    let signer = KeySigner::pin(audited.clone(), sign_key).wait().unwrap();
    assert_eq!(signer.key().algorithm(), KeyAlgorithm::Rsa);
    let AnyPublicKey::Rsa(public) = signer.key().public() else {
        panic!("an RSA key");
    };
    for (i, scheme) in [
        SignatureScheme::RsaPkcs1Sha256,
        SignatureScheme::RsaPssSha256,
        SignatureScheme::RsaPkcs1Sha256,
    ]
    .into_iter()
    .enumerate()
    {
        let i = u32::try_from(i).unwrap();
        let d = digest(i);
        let sig = signer
            .sign_with(
                scheme,
                &d.0,
                Intent::typed(IntentKind::Jwt, &i),
                &Authorization::none(),
            )
            .wait()
            .unwrap();
        let verify = |digest: &Digest32| match scheme {
            SignatureScheme::RsaPkcs1Sha256 => public.as_rsa().verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &digest.0,
                sig.as_bytes(),
            ),
            _ => public.as_rsa().verify(
                rsa::Pss::<sha2::Sha256>::new_with_salt(32),
                &digest.0,
                sig.as_bytes(),
            ),
        };
        assert_eq!(sig.as_bytes().len(), public.size());
        verify(&d).unwrap();
        assert!(verify(&digest(i + 100)).is_err());
    }

    let Some(decrypt_key) = decrypt_key else {
        let records = audit.records();
        assert_eq!(records.len(), 3);
        return records.iter().map(|r| shape(r.event())).collect();
    };
    let decrypting = KeySigner::pin(audited.clone(), decrypt_key).wait().unwrap();
    let AnyPublicKey::Rsa(public) = decrypting.key().public() else {
        panic!("an RSA key");
    };
    let open = |ciphertext: &[u8], seed: u32| {
        let auth = Authorization::none();
        let request = DecryptRequest::new(
            decrypting.key(),
            digest(seed),
            Decryption::RsaOaepSha256 { ciphertext },
            Intent::typed(IntentKind::Unseal, &()).with_note("scope", "svc/purpose"),
            &auth,
        )
        .unwrap();
        audited.decrypting().unwrap().decrypt(request).wait()
    };
    let mut plaintexts = Vec::new();
    for seed in 1u32..=3 {
        let cek: Vec<u8> = (0..32u32)
            .map(|j| u8::try_from((seed * 37 + j * 11) % 256).unwrap())
            .collect();
        let ciphertext = public
            .as_rsa()
            .encrypt(
                &mut getrandom::SysRng,
                rsa::Oaep::<sha2::Sha256>::new(),
                &cek,
            )
            .unwrap();
        let plain = open(&ciphertext, seed).unwrap();
        assert_eq!(plain.secret.expose_secret(), cek.as_slice());
        plaintexts.push(hex::encode(&cek));
        if seed == 3 {
            let mut tampered = ciphertext;
            tampered[7] ^= 0x01;
            assert!(matches!(
                open(&tampered, seed + 10),
                Err(Error::DecryptionFailed)
            ));
        }
    }
    let mut records = audit.records();
    assert_eq!(records.len(), 7);
    let failed = records.pop().unwrap();
    assert_eq!(failed.event().outcome(), AuditOutcome::Failed);
    successes_without(&records, "RSA", &plaintexts)
}
