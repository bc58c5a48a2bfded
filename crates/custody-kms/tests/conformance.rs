//! The conformance suite (`support/conformance.rs`) run for every backend
//! that is built: the software vault and its local KEK always; AWS KMS
//! (`KmsSigner`, `KmsKek`) with the feature `aws-kms` against the emulator
//! named by `CUSTODY_TEST_KMS_ENDPOINT`; PKCS#11 with the feature `pkcs11`
//! against the module named by `CUSTODY_TEST_PKCS11_MODULE`. A backend's
//! run is skipped, saying so, only when its endpoint variable is unset;
//! `.ci/run` sets them all.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[path = "support/conformance.rs"]
mod suite;

use std::sync::Arc;

use custody_core::{
    DataKey, KekId, KeyAlgorithm, KeyId, KeyRef, LocalKek, PrivateKeyBytes, SharedBackend, Vault,
    WalletScheme,
};

/// The embedded default: a local KEK (two, for the wrong-KEK check) and a
/// vault over it holding an HD master and one imported key.
fn software() -> (SharedBackend, SharedBackend, KekId, KekId, KeyRef) {
    let kek = KekId::new("local-a").unwrap();
    let other = KekId::new("local-b").unwrap();
    let local = LocalKek::from_key(kek.clone(), DataKey::new([0x11; 32]))
        .with_retired(LocalKek::from_key(other.clone(), DataKey::new([0x22; 32])))
        .unwrap();
    let kek_backend: SharedBackend = Arc::new(local);
    let mut vault = Vault::new(kek_backend.clone(), WalletScheme::Default);
    vault.set_master_seed(&[0x42; 64]).unwrap();
    let id = KeyId::new("imported").unwrap();
    vault
        .insert_key(
            id.clone(),
            PrivateKeyBytes::from_slice(&[0x07; 32]).unwrap(),
        )
        .unwrap();
    vault
        .insert_algorithm_key(
            KeyId::new(P256_KEY).unwrap(),
            KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&[0x09; 32]).unwrap(),
        )
        .unwrap();
    (Arc::new(vault), kek_backend, kek, other, KeyRef::Stored(id))
}

/// The software vault's P-256 key (it signs and agrees).
const P256_KEY: &str = "p256";

/// The records of a P-256 signature and agreement, as the software vault
/// leaves them: what every other backend is compared with.
fn reference_p256_behaviour() -> suite::P256Behaviour {
    let (signer, ..) = software();
    let key = KeyRef::Stored(KeyId::new(P256_KEY).unwrap());
    suite::p256_signs_and_agrees(signer, key.clone(), key)
}

/// The behaviour every backend must share with the embedded default, as
/// the software backends show it.
fn reference_behaviour() -> (suite::GateBehaviour, suite::EnrolledBehaviour) {
    let (signer, kek_backend, _, _, key) = software();
    (
        suite::audited_totp_gate(signer, key, kek_backend.clone()),
        suite::enrolled_wallet_through_the_gate(kek_backend),
    )
}

#[test]
fn software_vault_and_local_kek_conform() {
    let (signer, kek_backend, kek, other, key) = software();
    let pinned = suite::signs_and_normalizes(signer.clone(), key.clone(), 32);
    suite::many_threads_sign(&pinned, 4, 16);
    suite::wraps_and_refuses_alike(kek_backend.as_ref(), &kek, &other, suite::opaque);
    suite::capabilities_are_honest(&signer, Some(key));
    suite::capabilities_are_honest(&kek_backend, None);
    assert!(kek_backend.signing().is_none());

    // The gate over the software backends: what every other backend is
    // compared with.
    let (gate, enrolled) = reference_behaviour();
    assert!(gate.open.0);
    assert_eq!(gate.required.0, "forbidden");
    assert_eq!(
        enrolled.0,
        ["totp-required", "totp-invalid", "", "totp-replayed"]
    );
    assert!(enrolled.1.2.contains("totp-step"), "{:?}", enrolled.1);
    let p256 = reference_p256_behaviour();
    assert_eq!(p256.len(), 6);
    assert_eq!(p256[0].0, "sign");
    assert_eq!(p256[5].0, "decrypt");
}

#[cfg(feature = "aws-kms")]
#[path = "support/aws.rs"]
#[allow(dead_code, reason = "shared with aws_kms.rs, which uses more of it")]
mod aws_fixture;

/// AWS KMS: a `KmsSigner` key (`ECC_SECG_P256K1`) and two `KmsKek` keys
/// (`SYMMETRIC_DEFAULT`) on the emulator.
#[cfg(feature = "aws-kms")]
#[test]
fn aws_kms_conforms() {
    use custody_kms::{KmsKek, KmsSigner};
    let Some(endpoint) = aws_fixture::endpoint("aws_kms_conforms") else {
        return;
    };
    let emu = aws_fixture::Emulator::new(&endpoint);
    let key = KeyRef::Stored(KeyId::new(emu.signing_key()).unwrap());
    let kek = KekId::new(emu.kek_key()).unwrap();
    let other = KekId::new(emu.kek_key()).unwrap();
    let signer: SharedBackend = Arc::new(KmsSigner::new(emu.client.clone()));
    let kek_backend: SharedBackend = Arc::new(KmsKek::new(emu.client.clone(), kek.clone()));

    let pinned = suite::signs_and_normalizes(signer.clone(), key.clone(), 32);
    suite::many_threads_sign(&pinned, 4, 8);
    // AWS answers a Decrypt under the wrong key with IncorrectKeyException
    // (opaque here: aws_kms.rs's mocks check it); moto 5.2.5 answers
    // AccessDeniedException instead (see its launcher's docstring).
    suite::wraps_and_refuses_alike(kek_backend.as_ref(), &kek, &other, |e| {
        suite::opaque(e) || e.kind() == "access-denied"
    });
    suite::capabilities_are_honest(&signer, Some(key.clone()));
    suite::capabilities_are_honest(&kek_backend, None);
    assert!(kek_backend.signing().is_none());
    assert!(signer.exporting().is_none(), "a KMS key cannot leave");
    // P-256: KMS keys sign (SIGN_VERIFY) or agree (KEY_AGREEMENT), not both.
    {
        use aws_sdk_kms::types::{KeySpec, KeyUsageType};
        let sign = emu.create_key(KeySpec::EccNistP256, KeyUsageType::SignVerify);
        let agree = emu.create_key(KeySpec::EccNistP256, KeyUsageType::KeyAgreement);
        assert_eq!(
            suite::p256_signs_and_agrees(
                signer.clone(),
                KeyRef::Stored(KeyId::new(sign).unwrap()),
                KeyRef::Stored(KeyId::new(agree).unwrap()),
            ),
            reference_p256_behaviour()
        );
        // RSA: SIGN_VERIFY and ENCRYPT_DECRYPT keys (see the suite for why
        // the reference is the vault's P-256 behaviour).
        let sign = emu.create_key(KeySpec::Rsa2048, KeyUsageType::SignVerify);
        let decrypt = emu.create_key(KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt);
        assert_eq!(
            suite::rsa_signs_and_decrypts(
                signer.clone(),
                KeyRef::Stored(KeyId::new(sign).unwrap()),
                Some(KeyRef::Stored(KeyId::new(decrypt).unwrap())),
            ),
            reference_p256_behaviour()
        );
    }

    let (gate, enrolled) = reference_behaviour();
    assert_eq!(
        suite::audited_totp_gate(signer, key, kek_backend.clone()),
        gate
    );
    assert_eq!(
        suite::enrolled_wallet_through_the_gate(kek_backend),
        enrolled
    );
}

#[cfg(feature = "pkcs11")]
#[path = "support/pkcs11.rs"]
#[allow(dead_code, reason = "shared with pkcs11.rs, which uses more of it")]
mod pkcs11_fixture;

/// How many fresh tokens the PKCS#11 fixture makes for this binary.
#[cfg(feature = "pkcs11")]
const TOKENS: usize = 1;

/// PKCS#11: a `Pkcs11Signer` secp256k1 key, a P-256 key that signs and
/// agrees, an RSA key that signs and decrypts, and two `Pkcs11Kek` AES keys
/// on a fresh SoftHSM2 token.
#[cfg(feature = "pkcs11")]
#[test]
fn pkcs11_conforms() {
    use custody_kms::{Pkcs11Kek, Pkcs11KeySpec, Pkcs11Signer};
    let Some(fx) = pkcs11_fixture::fresh_token("pkcs11_conforms") else {
        return;
    };
    let token = fx.open();
    let signing = Pkcs11Signer::new(token.clone());
    let pinned = signing.generate("conformance-signer").unwrap();
    let key = pinned.reference().clone();
    // A token key may both sign and agree (CKA_SIGN and CKA_DERIVE), and
    // both sign and decrypt (CKA_SIGN and CKA_DECRYPT): one key each.
    let p256 = signing
        .generate_key(
            "conformance-p256",
            Pkcs11KeySpec::P256 {
                sign: true,
                derive: true,
            },
        )
        .unwrap()
        .reference()
        .clone();
    let rsa = signing
        .generate_key(
            "conformance-rsa",
            Pkcs11KeySpec::Rsa {
                bits: 2048,
                sign: true,
                decrypt: true,
            },
        )
        .unwrap()
        .reference()
        .clone();
    let kek_backend = Pkcs11Kek::new(token, KekId::new("conformance-kek").unwrap()).unwrap();
    let kek = kek_backend.generate("conformance-kek").unwrap();
    let other = kek_backend.generate("conformance-other").unwrap();
    let signer: SharedBackend = Arc::new(signing);
    let kek_backend: SharedBackend = Arc::new(kek_backend);

    let pinned = suite::signs_and_normalizes(signer.clone(), key.clone(), 32);
    suite::many_threads_sign(&pinned, 4, 8);
    suite::wraps_and_refuses_alike(kek_backend.as_ref(), &kek, &other, suite::opaque);
    suite::capabilities_are_honest(&signer, Some(key.clone()));
    suite::capabilities_are_honest(&kek_backend, None);
    assert!(kek_backend.signing().is_none());
    assert!(signer.exporting().is_none(), "an HSM key cannot leave");
    assert_eq!(
        suite::p256_signs_and_agrees(signer.clone(), p256.clone(), p256),
        reference_p256_behaviour()
    );
    let oaep = token_has_rsa_oaep_sha256(&signer, &rsa);
    let reference = reference_p256_behaviour();
    assert_eq!(
        suite::rsa_signs_and_decrypts(signer.clone(), rsa.clone(), oaep.then_some(rsa)),
        reference[..if oaep { 6 } else { 3 }]
    );

    let (gate, enrolled) = reference_behaviour();
    assert_eq!(
        suite::audited_totp_gate(signer, key, kek_backend.clone()),
        gate
    );
    assert_eq!(
        suite::enrolled_wallet_through_the_gate(kek_backend),
        enrolled
    );
}

/// Whether the token decrypts RSA-OAEP over SHA-256 with `key` (one
/// decryption of what `rsa` encrypts to it). SoftHSM2 2.6, Debian 12's,
/// has OAEP over SHA-1 only and refuses the parameters (`CKR_ARGUMENTS_BAD`,
/// softhsm/SoftHSMv2#474): custody's answer must then be the typed
/// `wrong-key-usage`, and the suite's decryption half is not run.
#[cfg(feature = "pkcs11")]
fn token_has_rsa_oaep_sha256(backend: &SharedBackend, key: &KeyRef) -> bool {
    use custody_core::{
        AnyPublicKey, Authorization, DecryptRequest, Decryption, Digest32, Error, Intent,
        IntentKind,
    };
    let pinned = backend.signing().unwrap().pin(key).wait().unwrap();
    let AnyPublicKey::Rsa(public) = pinned.public() else {
        panic!("an RSA key");
    };
    let ciphertext = public
        .as_rsa()
        .encrypt(
            &mut getrandom::SysRng,
            rsa::Oaep::<sha2::Sha256>::new(),
            b"probe",
        )
        .unwrap();
    let auth = Authorization::none();
    let request = DecryptRequest::new(
        &pinned,
        Digest32([0; 32]),
        Decryption::RsaOaepSha256 {
            ciphertext: &ciphertext,
        },
        Intent::typed(IntentKind::Unseal, &()),
        &auth,
    )
    .unwrap();
    match backend.decrypting().unwrap().decrypt(request).wait() {
        Ok(plain) => {
            assert_eq!(plain.secret.expose_secret(), b"probe");
            true
        }
        Err(e @ Error::Backend { .. }) if e.kind() == "wrong-key-usage" => {
            let p11 = match &e {
                Error::Backend { source, .. } => {
                    source.downcast_ref::<custody_kms::Pkcs11Error>().unwrap()
                }
                _ => unreachable!(),
            };
            assert!(
                matches!(
                    p11.return_code(),
                    Some("CKR_ARGUMENTS_BAD" | "CKR_MECHANISM_PARAM_INVALID")
                ),
                "{p11}"
            );
            println!(
                "pkcs11_conforms: RSA-OAEP-SHA256 not run, the token has no such mechanism ({p11})"
            );
            false
        }
        Err(e) => panic!("RSA-OAEP-SHA256 on the token: {e:?}"),
    }
}
