//! RSA in the seam: [`RsaPublicKey`] parses the SPKI and PKCS#1 encodings
//! pyca/cryptography (OpenSSL) writes, to the same key and back to the
//! same bytes, and refuses what is out of bounds with a typed error;
//! [`check_signature`] accepts that implementation's RS256 (PKCS#1 v1.5)
//! and PS256 (PSS, MGF1-SHA-256, salt 32) signatures and refuses tampered
//! ones and other PSS parameters; an RSA key signs through `Audited` with
//! a short record (its SPKI fingerprint); RSA-OAEP requests are made only
//! for RSA keys, and the vault holds no RSA key.
//!
//! The vectors are tests/vectors/rsa_signatures.json, made by
//! tests/vectors/gen_rsa_signatures.py.
#![expect(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

use std::sync::Arc;

use custody_core::{
    AnyPublicKey, AuditOutcome, Audited, Authorization, DataKey, DecryptRequest, Decryption,
    Digest32, Error, Intent, KekId, KeyAlgorithm, KeyBackend, KeyId, KeyKinds, KeyRef, KeySigner,
    LocalKek, MemoryAuditLog, P256PublicKey, Pending, PinnedKey, PrivateKeyBytes, RawSignature,
    RsaPublicKey, SharedBackend, SignRequest, SignatureScheme, Signed, SigningBackend, Vault,
    WalletScheme, check_signature,
};
use serde_json::Value;
use sha2::Digest as _;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/rsa_signatures.json")).unwrap()
}

fn hexof(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap()).unwrap()
}

fn valid_keys() -> Vec<Value> {
    vectors()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["valid"].as_bool().unwrap())
        .cloned()
        .collect()
}

fn check(
    scheme: SignatureScheme,
    sig: Vec<u8>,
    key: &AnyPublicKey,
    digest: &[u8],
) -> Result<Vec<u8>, Error> {
    check_signature(
        scheme,
        &RawSignature::Rsa(sig),
        key,
        &Digest32(digest.try_into().unwrap()),
        None,
    )
    .map(|s| s.to_bytes())
}

#[test]
fn spki_and_pkcs1_from_openssl_parse_to_the_same_key_and_re_encode_byte_for_byte() {
    let keys = valid_keys();
    assert_eq!(keys.len(), 3);
    for k in &keys {
        let spki = hexof(k, "spki");
        let pkcs1 = hexof(k, "pkcs1");
        let from_spki = RsaPublicKey::from_spki_der(&spki).unwrap();
        let from_pkcs1 = RsaPublicKey::from_pkcs1_der(&pkcs1).unwrap();
        let from_parts = RsaPublicKey::from_components(&hexof(k, "n"), &hexof(k, "e")).unwrap();
        assert_eq!(from_spki, from_pkcs1);
        assert_eq!(from_spki, from_parts);
        assert_eq!(from_spki.bits() as u64, k["bits"].as_u64().unwrap());
        assert_eq!(from_spki.size() * 8, from_spki.bits());
        assert_eq!(from_spki.to_spki_der(), spki);
        assert_eq!(from_spki.to_pkcs1_der(), pkcs1);
        assert_eq!(from_spki.modulus(), hexof(k, "n"));
        assert_eq!(from_spki.exponent(), [1, 0, 1]);
        // The audit identifier is the SHA-256 of the SPKI, computed here.
        assert_eq!(
            from_spki.fingerprint(),
            <[u8; 32]>::from(sha2::Sha256::digest(&spki))
        );
        let any = AnyPublicKey::from(from_spki.clone());
        assert_eq!(any.algorithm(), KeyAlgorithm::Rsa);
        assert_eq!(any.to_bytes(), spki);
        assert_eq!(any.audit_id(), from_spki.fingerprint());
        // Debug names the size and fingerprint, not the modulus.
        let debug = format!("{from_spki:?}");
        assert!(debug.contains(&hex::encode(from_spki.fingerprint())));
        assert!(!debug.contains(&k["n"].as_str().unwrap()[..32]));
    }
}

#[test]
fn keys_out_of_bounds_are_refused_with_a_typed_error() {
    let v = vectors();
    let refused: Vec<&Value> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["valid"].as_bool().unwrap())
        .collect();
    assert_eq!(refused.len(), 2);
    for k in refused {
        // Well-formed DER (OpenSSL made it), refused for its numbers.
        for result in [
            RsaPublicKey::from_spki_der(&hexof(k, "spki")),
            RsaPublicKey::from_pkcs1_der(&hexof(k, "pkcs1")),
            RsaPublicKey::from_components(&hexof(k, "n"), &hexof(k, "e")),
        ] {
            assert!(
                matches!(result, Err(Error::InvalidKeyMaterial(_))),
                "{}",
                k["why"]
            );
        }
    }
}

#[test]
fn modulus_and_exponent_bounds_are_exact() {
    // An odd modulus of exactly `bits` bits: 1, zeros, 1.
    let modulus = |bits: usize| {
        let mut n = vec![0u8; bits.div_ceil(8)];
        n[0] = 1 << ((bits - 1) % 8);
        *n.last_mut().unwrap() |= 1;
        n
    };
    let e = [1, 0, 1];
    assert!(RsaPublicKey::from_components(&modulus(2048), &e).is_ok());
    assert!(RsaPublicKey::from_components(&modulus(8192), &e).is_ok());
    // Leading zero bytes are ignored.
    let mut padded = vec![0, 0];
    padded.extend(modulus(2048));
    assert_eq!(
        RsaPublicKey::from_components(&padded, &[0, 1, 0, 1])
            .unwrap()
            .bits(),
        2048
    );
    for bad in [modulus(2047), modulus(8193), Vec::new(), vec![0; 300]] {
        assert!(matches!(
            RsaPublicKey::from_components(&bad, &e),
            Err(Error::InvalidKeyMaterial(_))
        ));
    }
    let mut even = modulus(2048);
    *even.last_mut().unwrap() &= 0xfe;
    assert!(RsaPublicKey::from_components(&even, &e).is_err());
    let n = modulus(2048);
    for (e, ok) in [
        (&[1u8, 0, 1][..], true),
        (&[1, 0, 3], true),
        (&[1, 0xff, 0xff, 0xff, 0xff], true), // 2^33 - 1
        (&[3], false),
        (&[1, 0, 0], false),       // even
        (&[0, 0xff, 0xff], false), // 65535
        (&[2, 0, 0, 0, 1], false), // 2^33 + 1
        (&[1, 0, 0, 0, 0, 1], false),
        (&[], false),
    ] {
        assert_eq!(
            RsaPublicKey::from_components(&n, e).is_ok(),
            ok,
            "e = {}",
            hex::encode(e)
        );
    }
}

#[test]
fn malformed_der_is_refused_with_a_typed_error() {
    let k = &valid_keys()[0];
    let spki = hexof(k, "spki");
    let pkcs1 = hexof(k, "pkcs1");
    let refused = |r: Result<RsaPublicKey, Error>| matches!(r, Err(Error::InvalidKeyMaterial(_)));
    // Trailing bytes, truncation, nothing.
    for cut in [0, 1, spki.len() / 2, spki.len() - 1] {
        assert!(refused(RsaPublicKey::from_spki_der(&spki[..cut])));
    }
    let mut trailing = spki.clone();
    trailing.push(0);
    assert!(refused(RsaPublicKey::from_spki_der(&trailing)));
    let mut trailing = pkcs1.clone();
    trailing.push(0);
    assert!(refused(RsaPublicKey::from_pkcs1_der(&trailing)));
    // A PKCS#1 key where an SPKI is expected, and the reverse.
    assert!(refused(RsaPublicKey::from_spki_der(&pkcs1)));
    assert!(refused(RsaPublicKey::from_pkcs1_der(&spki)));
    // Another algorithm: id-RSASSA-PSS (…1.1.10) instead of rsaEncryption
    // (…1.1.1); the OID's last byte sits just before the NULL parameters.
    let oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let at = spki.windows(oid.len()).position(|w| w == oid).unwrap() + oid.len() - 1;
    let mut pss = spki.clone();
    pss[at] = 0x0a;
    assert!(refused(RsaPublicKey::from_spki_der(&pss)));
    // Parameters other than NULL (05 00 → 04 00, an empty OCTET STRING).
    let mut params = spki.clone();
    assert_eq!(params[at + 1..at + 3], [0x05, 0x00]);
    params[at + 1] = 0x04;
    assert!(refused(RsaPublicKey::from_spki_der(&params)));
    // A P-256 SPKI.
    let p256_spki = {
        // RFC 5480: id-ecPublicKey, prime256v1, then the uncompressed point.
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        let point =
            P256PublicKey::from(p256::SecretKey::from_slice(&[7; 32]).unwrap().public_key());
        der.extend_from_slice(&point.to_uncompressed());
        der
    };
    assert!(refused(RsaPublicKey::from_spki_der(&p256_spki)));
    // A non-minimal INTEGER: the modulus with one more leading zero.
    // pkcs1 = 30 82 LL LL 02 82 MM MM 00 <n…>: insert a 00 and fix lengths.
    assert_eq!(pkcs1[4..6], [0x02, 0x82]);
    let mut loose = pkcs1.clone();
    loose.insert(8, 0);
    let inner = u16::from_be_bytes([loose[6], loose[7]]) + 1;
    loose[6..8].copy_from_slice(&inner.to_be_bytes());
    let outer = u16::from_be_bytes([loose[2], loose[3]]) + 1;
    loose[2..4].copy_from_slice(&outer.to_be_bytes());
    assert!(refused(RsaPublicKey::from_pkcs1_der(&loose)));
    // A negative modulus (its leading 00 removed, so the top bit is set).
    let mut negative = pkcs1.clone();
    assert_eq!(negative[8], 0);
    negative.remove(8);
    let inner = u16::from_be_bytes([negative[6], negative[7]]) - 1;
    negative[6..8].copy_from_slice(&inner.to_be_bytes());
    let outer = u16::from_be_bytes([negative[2], negative[3]]) - 1;
    negative[2..4].copy_from_slice(&outer.to_be_bytes());
    assert!(refused(RsaPublicKey::from_pkcs1_der(&negative)));
}

#[test]
fn openssl_rs256_and_ps256_signatures_verify_and_every_other_is_refused() {
    let mut checked = 0;
    for k in valid_keys() {
        let key = AnyPublicKey::Rsa(RsaPublicKey::from_spki_der(&hexof(&k, "spki")).unwrap());
        for s in k["signatures"].as_array().unwrap() {
            let digest = hexof(s, "digest");
            assert_eq!(digest, sha2::Sha256::digest(hexof(s, "message")).to_vec());
            let pkcs1 = hexof(s, "pkcs1");
            let pss = hexof(s, "pss");
            assert_eq!(
                check(
                    SignatureScheme::RsaPkcs1Sha256,
                    pkcs1.clone(),
                    &key,
                    &digest
                )
                .unwrap(),
                pkcs1
            );
            assert_eq!(
                check(SignatureScheme::RsaPssSha256, pss.clone(), &key, &digest).unwrap(),
                pss
            );
            // Each scheme refuses the other's signature.
            assert!(check(SignatureScheme::RsaPssSha256, pkcs1.clone(), &key, &digest).is_err());
            assert!(check(SignatureScheme::RsaPkcs1Sha256, pss.clone(), &key, &digest).is_err());
            // Other PSS salts and MGF hashes, another DigestInfo.
            for (scheme, other) in [
                (SignatureScheme::RsaPssSha256, "pss_salt_max"),
                (SignatureScheme::RsaPssSha256, "pss_mgf1_sha1"),
                (SignatureScheme::RsaPkcs1Sha256, "pkcs1_sha384"),
            ] {
                assert!(
                    matches!(
                        check(scheme, hexof(s, other), &key, &digest),
                        Err(Error::InvalidSignature)
                    ),
                    "{other}"
                );
            }
            // Tampered: each signature with one bit flipped, another digest,
            // a leading zero byte (longer than the modulus), one byte short.
            for (scheme, sig) in [
                (SignatureScheme::RsaPkcs1Sha256, &pkcs1),
                (SignatureScheme::RsaPssSha256, &pss),
            ] {
                for bit in [0, sig.len() * 4, sig.len() * 8 - 1] {
                    let mut flipped = sig.clone();
                    flipped[bit / 8] ^= 1 << (bit % 8);
                    assert!(matches!(
                        check(scheme, flipped, &key, &digest),
                        Err(Error::InvalidSignature)
                    ));
                }
                let mut other = digest.clone();
                other[31] ^= 1;
                assert!(check(scheme, sig.clone(), &key, &other).is_err());
                let mut longer = vec![0];
                longer.extend_from_slice(sig);
                assert!(check(scheme, longer, &key, &digest).is_err());
                assert!(check(scheme, sig[1..].to_vec(), &key, &digest).is_err());
                // Not an RSA signature at all.
                assert!(matches!(
                    check_signature(
                        scheme,
                        &RawSignature::Der(sig.clone()),
                        &key,
                        &Digest32(digest.clone().try_into().unwrap()),
                        None
                    ),
                    Err(Error::InvalidSignature)
                ));
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
    // Another key's signature does not verify.
    let keys = valid_keys();
    let other = AnyPublicKey::Rsa(RsaPublicKey::from_spki_der(&hexof(&keys[1], "spki")).unwrap());
    let s = &keys[0]["signatures"][0];
    assert!(
        check(
            SignatureScheme::RsaPkcs1Sha256,
            hexof(s, "pkcs1"),
            &other,
            &hexof(s, "digest")
        )
        .is_err()
    );
    // An RSA scheme on a curve key, a curve scheme on an RSA key.
    let p256 = AnyPublicKey::P256(P256PublicKey::from(
        p256::SecretKey::from_slice(&[7; 32]).unwrap().public_key(),
    ));
    assert!(matches!(
        check(SignatureScheme::RsaPssSha256, vec![0; 256], &p256, &[0; 32]),
        Err(Error::Unsupported(_))
    ));
    let rsa = AnyPublicKey::Rsa(RsaPublicKey::from_spki_der(&hexof(&keys[0], "spki")).unwrap());
    assert!(matches!(
        check_signature(
            SignatureScheme::EcdsaP256Sha256,
            &RawSignature::Compact([1; 64]),
            &rsa,
            &Digest32([0; 32]),
            None
        ),
        Err(Error::Unsupported(_))
    ));
}

/// A backend holding one RSA key whose signatures were made elsewhere
/// (by OpenSSL, in the vector file): it answers each digest it knows with
/// the signature of the requested scheme, as KMS or an HSM would.
#[derive(Debug)]
struct Replay {
    key: PinnedKey,
    signatures: Vec<Value>,
}

impl SigningBackend for Replay {
    fn key_kinds(&self) -> KeyKinds {
        KeyKinds {
            stored: true,
            hd: false,
        }
    }
    fn pin<'a>(&'a self, _key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>> {
        Pending::ready(Ok(self.key.clone()))
    }
    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>> {
        let field = match request.scheme {
            SignatureScheme::RsaPkcs1Sha256 => "pkcs1",
            SignatureScheme::RsaPssSha256 => "pss",
            _ => return Pending::ready(Err(Error::Unsupported("RSA only"))),
        };
        let digest = hex::encode(request.digest.as_bytes());
        let found = self
            .signatures
            .iter()
            .find(|s| s["digest"].as_str() == Some(&digest))
            .map(|s| Signed::new(RawSignature::Rsa(hexof(s, field))))
            .ok_or(Error::KeyNotFound);
        Pending::ready(found)
    }
}

impl KeyBackend for Replay {
    fn name(&self) -> &str {
        "replay"
    }
    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

#[test]
fn an_rsa_key_signs_through_the_audit_layer_with_a_short_record() {
    let k = &valid_keys()[2];
    let rsa = RsaPublicKey::from_spki_der(&hexof(k, "spki")).unwrap();
    let key = PinnedKey::with_public(
        KeyRef::Stored(KeyId::new("jwt-rsa").unwrap()),
        None,
        AnyPublicKey::Rsa(rsa.clone()),
    );
    let audit = Arc::new(MemoryAuditLog::new());
    let backend: SharedBackend = Arc::new(Audited::new(
        Arc::new(Replay {
            key: key.clone(),
            signatures: k["signatures"].as_array().unwrap().clone(),
        }),
        audit.clone(),
    ));
    let signer = KeySigner::from_pinned(backend, key);
    assert_eq!(signer.key().algorithm(), KeyAlgorithm::Rsa);
    let s = &k["signatures"][1];
    for (scheme, field) in [
        (SignatureScheme::RsaPkcs1Sha256, "pkcs1"),
        (SignatureScheme::RsaPssSha256, "pss"),
    ] {
        let sig = signer
            .sign_with(
                scheme,
                &hexof(s, "digest"),
                Intent::raw_digest(),
                &Authorization::none(),
            )
            .wait()
            .unwrap();
        assert_eq!(sig.scheme(), scheme);
        assert_eq!(sig.as_bytes(), hexof(s, field));
        assert_eq!(sig.as_bytes().len(), 512);
    }
    // A digest the backend answers with a signature over another one.
    let mut wrong = hexof(s, "digest");
    wrong[0] ^= 1;
    assert!(
        signer
            .sign_with(
                SignatureScheme::RsaPssSha256,
                &wrong,
                Intent::raw_digest(),
                &Authorization::none(),
            )
            .wait()
            .is_err()
    );
    // A curve scheme is refused before the backend is asked.
    assert!(matches!(
        signer
            .sign_with(
                SignatureScheme::EcdsaP256Sha256,
                &[0; 32],
                Intent::raw_digest(),
                &Authorization::none(),
            )
            .wait(),
        Err(Error::Unsupported(_))
    ));
    let records = audit.records();
    assert_eq!(records.len(), 3);
    let fingerprint = hex::encode(rsa.fingerprint());
    for (record, scheme) in records.iter().zip(["rsa-pkcs1-sha256", "rsa-pss-sha256"]) {
        let event = record.event();
        assert_eq!(event.outcome(), AuditOutcome::Success);
        assert_eq!(event.field("algorithm"), Some("RSA"));
        assert_eq!(event.field("scheme"), Some(scheme));
        assert_eq!(event.field("public-key"), Some(fingerprint.as_str()));
        assert_eq!(event.field("key"), Some("jwt-rsa"));
        // Short: no field carries the modulus.
        assert!(event.fields().all(|(_, v)| v.len() < 200));
    }
    assert_eq!(records[2].event().outcome(), AuditOutcome::Failed);
}

#[test]
fn rsa_oaep_is_asked_of_rsa_keys_only_and_ecdh_of_p256_keys_only() {
    let k = &valid_keys()[0];
    let rsa = PinnedKey::with_public(
        KeyRef::Stored(KeyId::new("sealing-rsa").unwrap()),
        None,
        AnyPublicKey::Rsa(RsaPublicKey::from_spki_der(&hexof(k, "spki")).unwrap()),
    );
    let p256 = P256PublicKey::from(p256::SecretKey::from_slice(&[7; 32]).unwrap().public_key());
    let curve = PinnedKey::with_public(
        KeyRef::Stored(KeyId::new("sealing-p256").unwrap()),
        None,
        AnyPublicKey::P256(p256),
    );
    let auth = Authorization::none();
    let oaep = Decryption::RsaOaepSha256 {
        ciphertext: &[1; 256],
    };
    let ecdh = Decryption::EcdhP256 { peer: &p256 };
    assert_eq!(oaep.key_algorithm(), KeyAlgorithm::Rsa);
    assert_eq!(ecdh.key_algorithm(), KeyAlgorithm::P256);
    let request = |key: &PinnedKey, d: Decryption<'_>| {
        DecryptRequest::new(key, Digest32([0; 32]), d, Intent::raw_digest(), &auth).map(|_| ())
    };
    assert!(request(&rsa, oaep).is_ok());
    assert!(request(&curve, ecdh).is_ok());
    assert!(matches!(request(&curve, oaep), Err(Error::Unsupported(_))));
    assert!(matches!(request(&rsa, ecdh), Err(Error::Unsupported(_))));
}

#[test]
fn the_vault_holds_no_rsa_key_and_performs_no_rsa_operation() {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let vault = Vault::new(kek, WalletScheme::Default);
    assert!(matches!(
        vault.insert_algorithm_key(
            KeyId::new("rsa").unwrap(),
            KeyAlgorithm::Rsa,
            PrivateKeyBytes::from_slice(&[0x11; 32]).unwrap(),
        ),
        Err(Error::Unsupported(_))
    ));
    // A forged pin of an RSA key under an id the vault does not hold: its
    // decryption is refused, not attempted.
    let k = &valid_keys()[0];
    let rsa = PinnedKey::with_public(
        KeyRef::Stored(KeyId::new("rsa").unwrap()),
        None,
        AnyPublicKey::Rsa(RsaPublicKey::from_spki_der(&hexof(k, "spki")).unwrap()),
    );
    let auth = Authorization::none();
    let request = DecryptRequest::new(
        &rsa,
        Digest32([0; 32]),
        Decryption::RsaOaepSha256 {
            ciphertext: &[1; 256],
        },
        Intent::raw_digest(),
        &auth,
    )
    .unwrap();
    assert!(matches!(
        vault.decrypting().unwrap().decrypt(request).wait(),
        Err(Error::Unsupported(_))
    ));
    let sign = SignRequest::with_scheme(
        &rsa,
        SignatureScheme::RsaPssSha256,
        &[0; 32],
        Intent::raw_digest(),
        &auth,
    )
    .unwrap();
    assert!(vault.signing().unwrap().sign_digest(sign).wait().is_err());
    assert_eq!(KeyAlgorithm::from_name("RSA"), Some(KeyAlgorithm::Rsa));
    assert_eq!(KeyAlgorithm::Rsa.as_str(), "RSA");
    assert_eq!(
        SignatureScheme::RsaPssSha256.key_algorithm(),
        KeyAlgorithm::Rsa
    );
    assert!(!SignatureScheme::RsaPkcs1Sha256.signs_message());
}
