//! P-256 and RSA keys on a PKCS#11 token (SoftHSM2), every answer checked
//! by an independent computation with the key's public half as the test
//! reads it from the token itself (its own session, not custody's):
//!
//! - P-256 `CKA_SIGN`: ES256 (`CKM_ECDSA`) verified by `p256`.
//! - RSA `CKA_SIGN`: RS256 (`CKM_RSA_PKCS` over the SHA-256 `DigestInfo`)
//!   and PS256 (`CKM_RSA_PKCS_PSS`, salt 32) verified by `rsa`.
//! - P-256 `CKA_DERIVE`: `CKM_ECDH1_DERIVE` equals `p256`'s ECDH of a local
//!   ephemeral secret with the token key's public key, and leaves no
//!   object behind.
//! - RSA `CKA_DECRYPT`: what `rsa` encrypts with RSAES-OAEP-SHA256 to the
//!   public key, the token decrypts; tampered, labelled, short and long
//!   ciphertexts are the one opaque `DecryptionFailed`.
//! - Keys of the wrong usage, type, curve or size: typed errors.
//!
//! Skipped, saying so, when `CUSTODY_TEST_PKCS11_MODULE` is unset (see
//! `pkcs11.rs` for the variables).
#![cfg(feature = "pkcs11")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use std::sync::Arc;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use custody_core::{
    AnyPublicKey, AuditOutcome, Audited, Authorization, Capabilities, Decryption, Error, Intent,
    KeyAlgorithm, KeySigner, MemoryAuditLog, P256PublicKey, PinnedKey, SharedBackend,
    SignatureScheme,
};
use custody_kms::{Pkcs11KeySpec, Pkcs11Signer};

/// How many tokens the process-wide fixture makes (one per test).
const TOKENS: usize = 6;

#[path = "support/pkcs11.rs"]
#[allow(dead_code, reason = "shared with pkcs11.rs, which uses more of it")]
mod fixture;
use fixture::*;

#[path = "support/algorithms.rs"]
mod algorithms;
use algorithms::{
    RSA_SIGNATURES_PER_DIGEST, assert_ecdh_agrees, assert_ecdh_records, assert_es256_verifies,
    assert_rsa_records, assert_rsa_signs, decrypt, digests, oaep_encrypted_cek, oaep_labelled,
    sign,
};

/// A signer on the fixture's token and the same signer under the audit
/// layer.
fn audited(fx: &Fixture) -> (Arc<Pkcs11Signer>, SharedBackend, Arc<MemoryAuditLog>) {
    let signer = Arc::new(Pkcs11Signer::new(fx.open()));
    let audit = Arc::new(MemoryAuditLog::new());
    let backend: SharedBackend = Arc::new(Audited::new(signer.clone(), audit.clone()));
    (signer, backend, audit)
}

/// Generates a key of `spec` labelled `label` with `signer`, then pins it
/// afresh (not from the generation cache) through `backend`: what the
/// generation returned, and the signer.
fn generate_and_pin(
    signer: &Pkcs11Signer,
    backend: &SharedBackend,
    label: &str,
    spec: Pkcs11KeySpec,
) -> (PinnedKey, KeySigner) {
    let generated = signer.generate_key(label, spec).unwrap();
    let key = KeySigner::pin(backend.clone(), stored(label))
        .wait()
        .unwrap();
    (generated, key)
}

/// One attribute's bytes of the object labelled `label` of `class`, read
/// through the test's own session.
fn attribute(fx: &Fixture, label: &str, class: ObjectClass, which: AttributeType) -> Vec<u8> {
    let session = fx.user_session();
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    let [handle] = found.as_slice() else {
        panic!("one {class} labelled {label}, found {}", found.len());
    };
    let attrs = session.get_attributes(*handle, &[which]).unwrap();
    match attrs.into_iter().next() {
        Some(Attribute::EcPoint(v) | Attribute::Modulus(v) | Attribute::PublicExponent(v)) => v,
        other => panic!("{which} of {label}: {other:?}"),
    }
}

/// The token's P-256 public key, read by `p256` from `CKA_EC_POINT` (a DER
/// OCTET STRING of 65 bytes around the uncompressed point).
fn p256_of(fx: &Fixture, label: &str) -> p256::PublicKey {
    let value = attribute(fx, label, ObjectClass::PUBLIC_KEY, AttributeType::EcPoint);
    assert_eq!(value[..2], [0x04, 0x41], "a DER OCTET STRING of 65 bytes");
    p256::PublicKey::from_sec1_bytes(&value[2..]).unwrap()
}

/// The token's RSA public key, read by `rsa` from `CKA_MODULUS` and
/// `CKA_PUBLIC_EXPONENT`.
fn rsa_of(fx: &Fixture, label: &str) -> rsa::PublicKey {
    let n = attribute(fx, label, ObjectClass::PUBLIC_KEY, AttributeType::Modulus);
    let e = attribute(
        fx,
        label,
        ObjectClass::PUBLIC_KEY,
        AttributeType::PublicExponent,
    );
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
    )
    .unwrap()
}

/// Whether a token's answer to an RSA-OAEP-SHA256 decryption of a valid
/// ciphertext says it has that mechanism. SoftHSM2 2.6 (Debian 12's) has
/// OAEP with SHA-1 only and refuses SHA-256 parameters at
/// `C_DecryptInit` with `CKR_ARGUMENTS_BAD` (softhsm/SoftHSMv2#474, fixed
/// upstream after 2.6.1): custody reports that as a typed
/// `wrong-key-usage` naming the return code, never as a decryption
/// failure and never by falling back to SHA-1. Tokens that have it
/// (CloudHSM, YubiHSM 2, SoftHSM2 from its development branch) run the
/// whole differential test.
fn oaep_supported(answer: &Error) -> bool {
    let Error::Backend { .. } = answer else {
        return true;
    };
    let p11 = p11_error(answer);
    if p11.kind() != "wrong-key-usage" {
        return true;
    }
    assert!(
        matches!(
            p11.return_code(),
            Some("CKR_ARGUMENTS_BAD" | "CKR_MECHANISM_PARAM_INVALID")
        ),
        "{p11}"
    );
    assert!(p11.to_string().contains("CKM_SHA256"), "{p11}");
    println!(
        "RSA-OAEP-SHA256 not run: this token has no CKM_RSA_PKCS_OAEP over SHA-256 ({p11}); checked that it is a typed wrong-key-usage"
    );
    false
}

/// How many secret-key objects (token or session) the token shows.
fn secret_objects(fx: &Fixture) -> usize {
    fx.user_session()
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .unwrap()
        .len()
}

#[test]
fn p256_keys_sign_es256_that_p256_verifies() {
    let Some(fx) = fresh_token("p256_keys_sign_es256_that_p256_verifies") else {
        return;
    };
    let (signer, backend, audit) = audited(&fx);
    let (generated, key) = generate_and_pin(
        &signer,
        &backend,
        "es256",
        Pkcs11KeySpec::P256 {
            sign: true,
            derive: false,
        },
    );
    let token_public = p256_of(&fx, "es256");
    // Pinned afresh (not from the generation cache) through the audit layer.
    assert_eq!(key.key(), &generated);
    let AnyPublicKey::P256(pinned) = key.key().public() else {
        panic!("a P-256 key");
    };
    assert_eq!(pinned.as_p256(), &token_public);
    let verifying = p256::ecdsa::VerifyingKey::from(&token_public);
    let high_s = assert_es256_verifies(&key, &verifying);
    // ECDSA is randomized on the token: two signatures of one digest differ.
    let d = digests().next().unwrap();
    assert_ne!(
        sign(&key, SignatureScheme::EcdsaP256Sha256, &d).unwrap(),
        sign(&key, SignatureScheme::EcdsaP256Sha256, &d).unwrap()
    );
    println!("{high_s} of 4 ES256 signatures had a high s (kept: ES256 does not ask for low s)");
    let records = audit.records();
    assert_eq!(records.len(), 6);
    for r in &records {
        assert_eq!(r.event().op().as_str(), "sign");
        assert_eq!(r.event().outcome(), AuditOutcome::Success);
        assert_eq!(r.event().field("algorithm"), Some("P-256"));
    }
}

#[test]
fn rsa_keys_sign_pkcs1_and_pss_that_rsa_verifies() {
    let Some(fx) = fresh_token("rsa_keys_sign_pkcs1_and_pss_that_rsa_verifies") else {
        return;
    };
    let (signer, backend, audit) = audited(&fx);
    for bits in [2048u32, 3072] {
        let label = format!("rsa-{bits}");
        let (_, key) = generate_and_pin(
            &signer,
            &backend,
            &label,
            Pkcs11KeySpec::Rsa {
                bits,
                sign: true,
                decrypt: false,
            },
        );
        let public = rsa_of(&fx, &label);
        let AnyPublicKey::Rsa(pinned) = key.key().public() else {
            panic!("an RSA key");
        };
        assert_eq!(pinned.bits(), bits as usize);
        assert_eq!(
            pinned.to_pkcs1_der(),
            rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&public)
                .unwrap()
                .as_bytes()
        );
        assert_rsa_signs(&key, &public, bits as usize);
    }
    assert_rsa_records(&audit.records(), 2 * 2 * RSA_SIGNATURES_PER_DIGEST);
}

#[test]
fn ecdh_equals_p256_with_a_local_ephemeral_key_and_leaves_no_object() {
    let Some(fx) = fresh_token("ecdh_equals_p256_with_a_local_ephemeral_key_and_leaves_no_object")
    else {
        return;
    };
    let (signer, backend, audit) = audited(&fx);
    assert!(Capabilities::of(backend.as_ref()).decrypting);
    let (_, key) = generate_and_pin(
        &signer,
        &backend,
        "ecdh",
        Pkcs11KeySpec::P256 {
            sign: false,
            derive: true,
        },
    );
    let token_public = p256_of(&fx, "ecdh");
    let before = secret_objects(&fx);
    let secrets = assert_ecdh_agrees(&backend, key.key(), &token_public);
    // Each derived session object was destroyed at once.
    assert_eq!(secret_objects(&fx), before);
    assert_ecdh_records(&audit.records(), 4, &secrets);
}

#[test]
fn rsa_oaep_decrypts_what_rsa_encrypted_to_its_public_key() {
    let Some(fx) = fresh_token("rsa_oaep_decrypts_what_rsa_encrypted_to_its_public_key") else {
        return;
    };
    let (signer, backend, audit) = audited(&fx);
    let (_, key) = generate_and_pin(
        &signer,
        &backend,
        "oaep",
        Pkcs11KeySpec::Rsa {
            bits: 2048,
            sign: false,
            decrypt: true,
        },
    );
    let public = rsa_of(&fx, "oaep");
    assert_eq!(key.key().algorithm(), KeyAlgorithm::Rsa);
    let oaep = |ciphertext: &[u8]| {
        decrypt(
            &backend,
            key.key(),
            Decryption::RsaOaepSha256 { ciphertext },
        )
    };
    let probe = public
        .encrypt(
            &mut getrandom::SysRng,
            rsa::Oaep::<sha2::Sha256>::new(),
            b"probe",
        )
        .unwrap();
    if let Err(e) = oaep(&probe)
        && !oaep_supported(&e)
    {
        // Still refused before the token: what is not as long as the
        // modulus, with the one opaque failure.
        for bad in [&probe[1..], &[probe.clone(), vec![0]].concat(), &[]] {
            assert!(matches!(oaep(bad), Err(Error::DecryptionFailed)));
        }
        let records = audit.records();
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].event().field("detail"), Some("wrong-key-usage"));
        return;
    }
    for len in [16usize, 32, 64, 190] {
        let (cek, ciphertext) = oaep_encrypted_cek(&public, len);
        assert_eq!(oaep(&ciphertext).unwrap(), cek);
        // One bit flipped anywhere: the one opaque decryption failure.
        for at in [0, len, 255] {
            let mut tampered = ciphertext.clone();
            tampered[at] ^= 0x10;
            assert!(matches!(oaep(&tampered), Err(Error::DecryptionFailed)));
        }
        // Short, long and empty ciphertexts: the same failure, before the
        // token is asked.
        for bad in [
            &ciphertext[1..],
            &[ciphertext.clone(), vec![0]].concat(),
            &[],
        ] {
            assert!(matches!(oaep(bad), Err(Error::DecryptionFailed)));
        }
    }
    // OAEP with a label, with SHA-1, and PKCS#1 v1.5 encryption: not
    // RSA-OAEP-256 with the empty label, refused as tampered.
    let labelled = oaep_labelled(&public);
    let sha1 = public
        .encrypt(
            &mut getrandom::SysRng,
            rsa::Oaep::<sha1::Sha1>::new(),
            b"cek",
        )
        .unwrap();
    let pkcs1 = public
        .encrypt(&mut getrandom::SysRng, rsa::Pkcs1v15Encrypt, b"cek")
        .unwrap();
    for wrong in [labelled, sha1, pkcs1] {
        assert!(matches!(oaep(&wrong), Err(Error::DecryptionFailed)));
    }
    // A ciphertext as long as the modulus but not below it.
    assert!(matches!(oaep(&[0xff; 256]), Err(Error::DecryptionFailed)));
    let records = audit.records();
    assert!(records.iter().all(|r| r.event().op().as_str() == "decrypt"));
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event().outcome() == AuditOutcome::Success)
            .count(),
        5
    );
    assert!(
        records
            .iter()
            .filter(|r| r.event().outcome() != AuditOutcome::Success)
            .all(|r| r.event().field("detail") == Some("decryption-failed"))
    );
}

#[test]
fn keys_of_the_wrong_usage_type_or_curve_are_refused_with_typed_errors() {
    let Some(fx) =
        fresh_token("keys_of_the_wrong_usage_type_or_curve_are_refused_with_typed_errors")
    else {
        return;
    };
    let (signer, backend, _audit) = audited(&fx);
    let sign_only = signer
        .generate_key(
            "p256-sign",
            Pkcs11KeySpec::P256 {
                sign: true,
                derive: false,
            },
        )
        .unwrap();
    let derive_only = signer
        .generate_key(
            "p256-derive",
            Pkcs11KeySpec::P256 {
                sign: false,
                derive: true,
            },
        )
        .unwrap();
    let rsa_sign = signer
        .generate_key(
            "rsa-sign",
            Pkcs11KeySpec::Rsa {
                bits: 2048,
                sign: true,
                decrypt: false,
            },
        )
        .unwrap();
    let rsa_decrypt = signer
        .generate_key(
            "rsa-decrypt",
            Pkcs11KeySpec::Rsa {
                bits: 2048,
                sign: false,
                decrypt: true,
            },
        )
        .unwrap();
    let k1 = signer.generate("k1").unwrap();
    let wrong_usage = |e: Error| {
        let kind = p11_error(&e).kind();
        assert_eq!(kind, "wrong-key-usage", "{e}");
    };
    let as_signer = |key: &PinnedKey| KeySigner::pin(backend.clone(), key.reference().clone());
    let d = digests().next().unwrap();
    let none = Authorization::none();

    // Agreement with a key without CKA_DERIVE, decryption with one without
    // CKA_DECRYPT, signing with one without CKA_SIGN.
    let peer = P256PublicKey::from(p256::SecretKey::from_slice(&[7; 32]).unwrap().public_key());
    wrong_usage(decrypt(&backend, &sign_only, Decryption::EcdhP256 { peer: &peer }).unwrap_err());
    wrong_usage(
        decrypt(
            &backend,
            &rsa_sign,
            Decryption::RsaOaepSha256 {
                ciphertext: &[0; 256],
            },
        )
        .unwrap_err(),
    );
    let derive_signer = as_signer(&derive_only).wait().unwrap();
    wrong_usage(sign(&derive_signer, SignatureScheme::EcdsaP256Sha256, &d).unwrap_err());
    let decrypt_signer = as_signer(&rsa_decrypt).wait().unwrap();
    wrong_usage(sign(&decrypt_signer, SignatureScheme::RsaPssSha256, &d).unwrap_err());
    // The seam refuses a scheme or an operation of another algorithm
    // before the backend is asked.
    let k1_signer = as_signer(&k1).wait().unwrap();
    assert!(matches!(
        sign(&k1_signer, SignatureScheme::EcdsaP256Sha256, &d),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        decrypt(&backend, &rsa_decrypt, Decryption::EcdhP256 { peer: &peer }),
        Err(Error::Unsupported(_))
    ));
    // A key pinned as P-256 whose label names the secp256k1 key: the
    // token's key is not of the curve asked for.
    let claimed = PinnedKey::with_public(k1.reference().clone(), None, AnyPublicKey::P256(peer));
    let request = custody_core::SignRequest::with_scheme(
        &claimed,
        SignatureScheme::EcdsaP256Sha256,
        &d,
        Intent::raw_digest(),
        &none,
    )
    .unwrap();
    wrong_usage(
        custody_core::SigningBackend::sign_digest(signer.as_ref(), request)
            .wait()
            .unwrap_err(),
    );
    // A P-256 key pinned with another P-256 public key.
    let other = PinnedKey::with_public(
        sign_only.reference().clone(),
        None,
        AnyPublicKey::P256(peer),
    );
    let request = custody_core::SignRequest::with_scheme(
        &other,
        SignatureScheme::EcdsaP256Sha256,
        &d,
        Intent::raw_digest(),
        &none,
    )
    .unwrap();
    assert!(matches!(
        custody_core::SigningBackend::sign_digest(signer.as_ref(), request).wait(),
        Err(Error::PublicKeyMismatch)
    ));

    // Keys custody does not use, made with the test's own session: P-384,
    // RSA-1024, and a P-256 key that allows neither signing nor deriving.
    let session = fx.user_session();
    let make =
        |label: &str, mechanism: Mechanism, public: Vec<Attribute>, private: Vec<Attribute>| {
            let lbl = Attribute::Label(label.as_bytes().to_vec());
            let public = [public, vec![Attribute::Token(true), lbl.clone()]].concat();
            let private = [
                private,
                vec![
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    lbl,
                ],
            ]
            .concat();
            session
                .generate_key_pair(&mechanism, &public, &private)
                .unwrap();
        };
    let p384_oid = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    make(
        "p384",
        Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(p384_oid)],
        vec![Attribute::Sign(true), Attribute::Derive(true)],
    );
    make(
        "rsa-1024",
        Mechanism::RsaPkcsKeyPairGen,
        vec![
            Attribute::ModulusBits(1024u64.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ],
        vec![Attribute::Sign(true), Attribute::Decrypt(true)],
    );
    make(
        "p256-nothing",
        Mechanism::EccKeyPairGen,
        vec![Attribute::EcParams(vec![
            0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
        ])],
        vec![Attribute::Sign(false), Attribute::Derive(false)],
    );
    for label in ["p384", "rsa-1024", "p256-nothing"] {
        let e = KeySigner::pin(backend.clone(), stored(label))
            .wait()
            .unwrap_err();
        wrong_usage(e);
    }
    // Specs that allow nothing, or an RSA size out of bounds: bad input,
    // before the token is asked.
    for spec in [
        Pkcs11KeySpec::P256 {
            sign: false,
            derive: false,
        },
        Pkcs11KeySpec::Rsa {
            bits: 1024,
            sign: true,
            decrypt: true,
        },
        Pkcs11KeySpec::Rsa {
            bits: 2048,
            sign: false,
            decrypt: false,
        },
    ] {
        let e = signer.generate_key("never", spec).unwrap_err();
        assert_eq!(p11_error(&e).kind(), "bad-input", "{spec:?}");
    }
    // A label in use.
    let e = signer
        .generate_key(
            "p256-sign",
            Pkcs11KeySpec::P256 {
                sign: true,
                derive: true,
            },
        )
        .unwrap_err();
    assert_eq!(p11_error(&e).kind(), "already-exists");
}

#[test]
fn generated_private_keys_stay_on_the_token() {
    let Some(fx) = fresh_token("generated_private_keys_stay_on_the_token") else {
        return;
    };
    let signer = Pkcs11Signer::new(fx.open());
    signer
        .generate_key(
            "p256",
            Pkcs11KeySpec::P256 {
                sign: true,
                derive: true,
            },
        )
        .unwrap();
    signer
        .generate_key(
            "rsa",
            Pkcs11KeySpec::Rsa {
                bits: 2048,
                sign: true,
                decrypt: true,
            },
        )
        .unwrap();
    let session = fx.user_session();
    for label in ["p256", "rsa"] {
        let [private] = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .unwrap()[..]
        else {
            panic!("one private key {label}");
        };
        let attrs = session
            .get_attributes(
                private,
                &[
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Value,
                    AttributeType::PrivateExponent,
                ],
            )
            .unwrap();
        for want in [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::NeverExtractable(true),
        ] {
            assert!(attrs.contains(&want), "{label}: {want:?} in {attrs:?}");
        }
        // The private value and exponent cannot be read.
        assert!(
            !attrs
                .iter()
                .any(|a| matches!(a, Attribute::Value(_) | Attribute::PrivateExponent(_))),
            "{label}: {attrs:?}"
        );
    }
}
