//! KMS keys of the other algorithms, against the emulator (moto through
//! `../shared/tools/moto_kms_server.py`, real `aws-sdk-kms`): every answer
//! checked by an independent computation with the key's public half as
//! `GetPublicKey` returned it.
//!
//! - `ECC_NIST_P256` `SIGN_VERIFY`: ES256 signatures verified by `p256`.
//! - `RSA_2048/3072/4096` `SIGN_VERIFY`: `RSASSA_PKCS1_V1_5_SHA_256` and
//!   `RSASSA_PSS_SHA_256` verified by `rsa` (PSS salt 32).
//! - `ECC_NIST_P256` `KEY_AGREEMENT`: `DeriveSharedSecret` equals `p256`'s
//!   ECDH of a local ephemeral secret with the KMS key's public key.
//! - `RSA_*` `ENCRYPT_DECRYPT`: what `rsa` encrypts with RSAES-OAEP-SHA256
//!   to the public key, KMS `Decrypt` returns; a tampered ciphertext is the
//!   opaque `DecryptionFailed`.
//! - Keys of the wrong usage or spec: typed errors (from KMS, or at pinning).
//!
//! Skipped, saying so, when `CUSTODY_TEST_KMS_ENDPOINT` is unset; the
//! `GetPublicKey` checks of key specs the emulator omits run on the SDK's
//! mocks, always.
#![cfg(feature = "aws-kms")]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use std::sync::Arc;

use aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_smithy_mocks::mock;
use custody_core::{
    AnyPublicKey, AuditOutcome, Audited, Authorization, Capabilities, Decryption, Error,
    KeyAlgorithm, KeySigner, MemoryAuditLog, P256PublicKey, SharedBackend, SignatureScheme,
    SigningBackend,
};
use custody_kms::{KmsSigner, RetryPolicy};
use rsa::pkcs8::DecodePublicKey as _;

#[path = "support/aws.rs"]
#[allow(dead_code, reason = "shared with aws_kms.rs, which uses more of it")]
mod fixture;
use fixture::*;

#[path = "support/algorithms.rs"]
mod algorithms;
use algorithms::{
    RSA_SIGNATURES_PER_DIGEST, assert_ecdh_agrees, assert_ecdh_records, assert_es256_verifies,
    assert_rsa_records, assert_rsa_signs, decrypt, oaep_encrypted_cek, oaep_labelled, sign,
};

/// The DER SPKI `GetPublicKey` returns for `key`, fetched with the SDK
/// directly (not through custody).
fn spki_of(emu: &Emulator, key: &str) -> Vec<u8> {
    let sdk = emu.sdk.clone();
    let key = key.to_owned();
    emu.client.runtime().block_on_spawned(async move {
        sdk.get_public_key()
            .key_id(key)
            .send()
            .await
            .unwrap()
            .public_key
            .unwrap()
            .into_inner()
    })
}

/// A P-256 key from its SPKI, read by `p256` (the fixed RFC 5480 prefix,
/// then the uncompressed point).
fn p256_of(spki: &[u8]) -> p256::PublicKey {
    let prefix = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
    assert_eq!(spki[..26], prefix[..], "a P-256 SPKI");
    p256::PublicKey::from_sec1_bytes(&spki[26..]).unwrap()
}

fn audited(emu: &Emulator) -> (SharedBackend, Arc<MemoryAuditLog>) {
    let audit = Arc::new(MemoryAuditLog::new());
    let backend: SharedBackend = Arc::new(Audited::new(
        Arc::new(KmsSigner::new(emu.client.clone())),
        audit.clone(),
    ));
    (backend, audit)
}

#[test]
fn p256_keys_sign_es256_that_p256_verifies() {
    let Some(ep) = endpoint("p256_keys_sign_es256_that_p256_verifies") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let id = emu.create_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
    let (backend, audit) = audited(&emu);
    let signer = KeySigner::pin(backend, stored(&id)).wait().unwrap();
    let public = p256_of(&spki_of(&emu, &id));
    assert_eq!(
        signer.key().public(),
        &AnyPublicKey::P256(P256PublicKey::from(public))
    );
    let verifying = p256::ecdsa::VerifyingKey::from(&public);
    assert_es256_verifies(&signer, &verifying);
    // A secp256k1 scheme on the P-256 key is refused before KMS is asked.
    assert!(matches!(
        sign(&signer, SignatureScheme::EcdsaSecp256k1, &[1; 32]),
        Err(Error::Unsupported(_))
    ));
    let records = audit.records();
    assert_eq!(records.len(), 4);
    for r in &records {
        assert_eq!(r.event().outcome(), AuditOutcome::Success);
        assert_eq!(r.event().field("algorithm"), Some("P-256"));
        assert_eq!(r.event().field("scheme"), Some("ecdsa-p256-sha256"));
        assert_eq!(r.event().field("intent"), Some("jwt"));
    }
}

#[test]
fn rsa_keys_sign_pkcs1_and_pss_that_rsa_verifies() {
    let Some(ep) = endpoint("rsa_keys_sign_pkcs1_and_pss_that_rsa_verifies") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let (backend, audit) = audited(&emu);
    for (spec, bits) in [
        (KeySpec::Rsa2048, 2048),
        (KeySpec::Rsa3072, 3072),
        (KeySpec::Rsa4096, 4096),
    ] {
        let id = emu.create_key(spec, KeyUsageType::SignVerify);
        let signer = KeySigner::pin(backend.clone(), stored(&id)).wait().unwrap();
        let spki = spki_of(&emu, &id);
        let AnyPublicKey::Rsa(pinned) = signer.key().public() else {
            panic!("an RSA key");
        };
        assert_eq!(pinned.bits(), bits);
        assert_eq!(pinned.to_spki_der(), spki, "pinned as KMS encodes it");
        let public = rsa::PublicKey::from_public_key_der(&spki).unwrap();
        assert_rsa_signs(&signer, &public, bits);
    }
    assert_rsa_records(&audit.records(), 3 * 2 * RSA_SIGNATURES_PER_DIGEST);
}

#[test]
fn derive_shared_secret_equals_p256_ecdh_with_a_local_ephemeral_key() {
    let Some(ep) = endpoint("derive_shared_secret_equals_p256_ecdh_with_a_local_ephemeral_key")
    else {
        return;
    };
    let emu = Emulator::new(&ep);
    let id = emu.create_key(KeySpec::EccNistP256, KeyUsageType::KeyAgreement);
    let (backend, audit) = audited(&emu);
    assert!(Capabilities::of(backend.as_ref()).decrypting);
    let signer = KeySigner::pin(backend.clone(), stored(&id)).wait().unwrap();
    let kms_public = p256_of(&spki_of(&emu, &id));
    let secrets = assert_ecdh_agrees(&backend, signer.key(), &kms_public);
    assert_ecdh_records(&audit.records(), 4, &secrets);
}

#[test]
fn kms_rsa_oaep_decrypt_returns_what_rsa_encrypted_to_its_public_key() {
    let Some(ep) = endpoint("kms_rsa_oaep_decrypt_returns_what_rsa_encrypted_to_its_public_key")
    else {
        return;
    };
    let emu = Emulator::new(&ep);
    let (backend, audit) = audited(&emu);
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072] {
        let id = emu.create_key(spec, KeyUsageType::EncryptDecrypt);
        let signer = KeySigner::pin(backend.clone(), stored(&id)).wait().unwrap();
        assert_eq!(signer.key().algorithm(), KeyAlgorithm::Rsa);
        let public = rsa::PublicKey::from_public_key_der(&spki_of(&emu, &id)).unwrap();
        let oaep = |ciphertext: &[u8]| {
            decrypt(
                &backend,
                signer.key(),
                Decryption::RsaOaepSha256 { ciphertext },
            )
        };
        for len in [16usize, 32, 64] {
            let (cek, ciphertext) = oaep_encrypted_cek(&public, len);
            assert_eq!(oaep(&ciphertext).unwrap(), cek);
            // One bit flipped: the opaque decryption failure.
            let mut tampered = ciphertext.clone();
            tampered[len] ^= 0x10;
            assert!(matches!(oaep(&tampered), Err(Error::DecryptionFailed)));
        }
        // OAEP with a label is not KMS's (empty label): refused as tampered.
        assert!(matches!(
            oaep(&oaep_labelled(&public)),
            Err(Error::DecryptionFailed)
        ));
    }
    let records = audit.records();
    assert!(
        records
            .iter()
            .any(|r| r.event().outcome() == AuditOutcome::Failed)
    );
    assert!(records.iter().all(|r| r.event().op().as_str() == "decrypt"));
}

#[test]
fn keys_of_the_wrong_usage_are_refused_with_typed_errors() {
    let Some(ep) = endpoint("keys_of_the_wrong_usage_are_refused_with_typed_errors") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let (backend, _audit) = audited(&emu);
    // ECDH with a P-256 signing key: KMS refuses it.
    let id = emu.create_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
    let signer = KeySigner::pin(backend.clone(), stored(&id)).wait().unwrap();
    let peer = P256PublicKey::from(p256::SecretKey::from_slice(&[9; 32]).unwrap().public_key());
    let e = decrypt(&backend, signer.key(), Decryption::EcdhP256 { peer: &peer }).unwrap_err();
    assert_eq!(kms_error(&e).kind(), "wrong-key-usage", "{e:?}");
    // RSA-OAEP with that P-256 key: refused before KMS is asked.
    assert!(matches!(
        decrypt(
            &backend,
            signer.key(),
            Decryption::RsaOaepSha256 {
                ciphertext: &[1; 256]
            }
        ),
        Err(Error::Unsupported(_))
    ));
    // Decrypt with an RSA signing key: KMS refuses it.
    let id = emu.create_key(KeySpec::Rsa2048, KeyUsageType::SignVerify);
    let signer = KeySigner::pin(backend.clone(), stored(&id)).wait().unwrap();
    let e = decrypt(
        &backend,
        signer.key(),
        Decryption::RsaOaepSha256 {
            ciphertext: &[1; 256],
        },
    )
    .unwrap_err();
    assert_eq!(kms_error(&e).kind(), "wrong-key-usage", "{e:?}");
    // ES256 with the RSA key, ECDH with it: refused before KMS is asked.
    assert!(matches!(
        sign(&signer, SignatureScheme::EcdsaP256Sha256, &[1; 32]),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        decrypt(&backend, signer.key(), Decryption::EcdhP256 { peer: &peer }),
        Err(Error::Unsupported(_))
    ));
    // Curves custody does not use are refused at pinning.
    for spec in [KeySpec::EccNistP384, KeySpec::EccNistP521] {
        let id = emu.create_key(spec.clone(), KeyUsageType::SignVerify);
        let e = backend
            .signing()
            .unwrap()
            .pin(&stored(&id))
            .wait()
            .unwrap_err();
        assert_eq!(kms_error(&e).kind(), "wrong-key-usage", "{spec:?}: {e:?}");
    }
}

// ---------------------------------------------- GetPublicKey, mocked

#[test]
fn pinning_checks_the_spec_and_usage_against_the_spki() {
    let p256_spki = {
        let mut v = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        let point = p256::SecretKey::from_slice(&[5; 32]).unwrap().public_key();
        v.extend_from_slice(&P256PublicKey::from(point).to_uncompressed());
        v
    };
    let answer = |spec: KeySpec, usage: KeyUsageType, spki: &[u8]| {
        let spki = spki.to_vec();
        move || {
            GetPublicKeyOutput::builder()
                .key_id("k")
                .key_spec(spec.clone())
                .key_usage(usage.clone())
                .public_key(Blob::new(spki.clone()))
                .build()
        }
    };
    let cases: Vec<(KeySpec, KeyUsageType, Option<&str>)> = vec![
        (KeySpec::EccNistP256, KeyUsageType::SignVerify, None),
        (KeySpec::EccNistP256, KeyUsageType::KeyAgreement, None),
        (
            KeySpec::EccNistP256,
            KeyUsageType::EncryptDecrypt,
            Some("wrong-key-usage"),
        ),
        // The spec names another algorithm than the SPKI.
        (
            KeySpec::Rsa2048,
            KeyUsageType::SignVerify,
            Some("wrong-key-usage"),
        ),
        (
            KeySpec::EccSecgP256K1,
            KeyUsageType::SignVerify,
            Some("wrong-key-usage"),
        ),
        (
            KeySpec::EccNistP384,
            KeyUsageType::SignVerify,
            Some("wrong-key-usage"),
        ),
        (
            KeySpec::SymmetricDefault,
            KeyUsageType::EncryptDecrypt,
            Some("wrong-key-usage"),
        ),
    ];
    for (spec, usage, expected) in cases {
        let rule = mock!(aws_sdk_kms::Client::get_public_key).then_output(answer(
            spec.clone(),
            usage.clone(),
            &p256_spki,
        ));
        let signer = KmsSigner::new(mocked(&[&rule], RetryPolicy::new().with_max_attempts(1)));
        let result = signer.pin(&stored("alias/k")).wait();
        match expected {
            None => assert_eq!(
                result.unwrap().algorithm(),
                KeyAlgorithm::P256,
                "{spec:?} {usage:?}"
            ),
            Some(kind) => {
                assert_eq!(
                    kms_error(&result.unwrap_err()).kind(),
                    kind,
                    "{spec:?} {usage:?}"
                );
            }
        }
    }
}

/// The sealed-secrets path end to end (issue #18, item 3): custody-jose
/// seals to the public half of a KMS key (RSA-OAEP-256 to an `RSA_2048`
/// `ENCRYPT_DECRYPT` key; ECDH-ES and ECDH-ES+A256KW to an `ECC_NIST_P256`
/// `KEY_AGREEMENT` key), and `jwe::open` opens each through `Audited` over
/// KMS (`Decrypt` with `RSAES_OAEP_SHA_256`, `DeriveSharedSecret`) to the
/// same bytes, one `decrypt` record per open; another scope is refused
/// before KMS is asked, and a tampered tag is the one opaque error.
#[test]
fn jwes_sealed_to_kms_keys_open_through_kms() {
    use custody_jose::jwe::{self, JweAlgorithm, OpenError, Recipient, Scope};
    let Some(ep) = endpoint("jwes_sealed_to_kms_keys_open_through_kms") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let secret = b"exchange api key: 7Hq2vN9xKpWm3ZrT4sLd8";
    let scope = Scope::new("importer/api-keys").unwrap();
    let auth = Authorization::none();
    let cases = [
        (
            KeySpec::Rsa2048,
            KeyUsageType::EncryptDecrypt,
            JweAlgorithm::RsaOaep256,
        ),
        (
            KeySpec::EccNistP256,
            KeyUsageType::KeyAgreement,
            JweAlgorithm::EcdhEs,
        ),
        (
            KeySpec::EccNistP256,
            KeyUsageType::KeyAgreement,
            JweAlgorithm::EcdhEsA256kw,
        ),
    ];
    for (spec, usage, alg) in cases {
        let id = emu.create_key(spec, usage);
        let (backend, audit) = audited(&emu);
        let signer = KeySigner::pin(backend.clone(), stored(&id)).wait().unwrap();
        let recipient = Recipient::from_pinned(signer.key()).unwrap();
        let sealed = jwe::seal_with(&recipient, alg, &scope, secret).unwrap();
        let opened = jwe::open(backend.as_ref(), signer.key(), &sealed, &scope, &auth)
            .wait()
            .unwrap();
        assert_eq!(opened.expose_secret(), secret, "{alg:?}");
        let records = audit.records();
        assert_eq!(records.len(), 1, "{alg:?}");
        assert_eq!(records[0].event().op().as_str(), "decrypt");
        assert_eq!(records[0].event().field("intent"), Some("unseal"));
        // Another service's scope: refused before KMS is asked.
        let other = Scope::new("billing/api-keys").unwrap();
        let refused = jwe::open(backend.as_ref(), signer.key(), &sealed, &other, &auth).wait();
        assert!(matches!(refused, Err(OpenError::ScopeMismatch)), "{alg:?}");
        assert_eq!(audit.records().len(), 1, "{alg:?}");
        // A flipped tag bit: the one opaque error.
        let mut parts: Vec<String> = sealed.split('.').map(str::to_owned).collect();
        let tag = parts[4].clone();
        let flipped = if tag.starts_with('A') { 'B' } else { 'A' };
        parts[4] = format!("{flipped}{}", &tag[1..]);
        let tampered = parts.join(".");
        let failed = jwe::open(backend.as_ref(), signer.key(), &tampered, &scope, &auth).wait();
        assert!(
            matches!(failed, Err(OpenError::DecryptionFailed)),
            "{alg:?}"
        );
    }
}
