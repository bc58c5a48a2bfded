//! The attested unwrap (feature `nitro-kms`): `AttestedKek` unwraps only
//! through KMS `Decrypt` with a `Recipient`, against `aws-smithy-mocks`
//! (the moto emulator does not implement `Recipient`). The mock plays KMS:
//! it checks the request (key, context, `RSAES_OAEP_SHA_256`, an
//! attestation document that verifies under the fake NSM's root and binds
//! an RSA-2048 public key) and answers with a `CiphertextForRecipient`
//! built for that key independently (`support/recipient.rs`).
#![cfg(all(feature = "nitro-kms", feature = "nsm-fake"))]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[path = "support/recipient.rs"]
mod build;

use std::sync::{Arc, Mutex};

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kms::operation::decrypt::{DecryptInput, DecryptOutput};
use aws_sdk_kms::operation::encrypt::EncryptOutput;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyEncryptionMechanism;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use custody_core::{DataKey, EncryptionContext, Error, KekId, KeyBackend, WrappingBackend};
use custody_kms::nitro::fake::{FakeNsm, T0, pcr};
use custody_kms::nitro::transport::{EnclaveLink, HostLink};
use custody_kms::nitro::{AttestedKek, EphemeralRsaKey, Expectations, VerificationTime, Verifier};
use custody_kms::{KmsClient, KmsError, RetryPolicy};

fn mocked(rules: &[&Rule]) -> KmsClient {
    let interceptor = rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny),
        |i, r| i.with_rule(r),
    );
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "not-a-secret",
            None,
            None,
            "t",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    KmsClient::with_own_runtime(&aws_sdk_kms::Client::from_conf(config))
        .unwrap()
        .with_retry_policy(RetryPolicy::new().with_max_attempts(1))
}

fn kms_error(e: &Error) -> &KmsError {
    match e {
        Error::Backend { source, .. } => source.downcast_ref::<KmsError>().unwrap(),
        other => panic!("not a backend error: {other:?}"),
    }
}

const KEK: &str = "arn:aws:kms:us-east-1:111122223333:key/enclave-master";
const DATA_KEY: [u8; 32] = [0x42; 32];

fn context() -> EncryptionContext {
    EncryptionContext::new().with("purpose", "master").unwrap()
}

/// What the mock saw, for the test to assert after the call.
#[derive(Default, Debug)]
struct Seen {
    key_id: Option<String>,
    blob: Option<Vec<u8>>,
    context: Option<Vec<(String, String)>>,
    algorithm: Option<KeyEncryptionMechanism>,
    document: Option<Vec<u8>>,
    /// The public key the document bound, once it verified.
    verified_key: Option<Vec<u8>>,
}

/// Plays KMS: checks the document under the fake's root and answers for
/// the key it binds (with `plaintext` too if asked to misbehave).
fn kms_decrypt(seen: Arc<Mutex<Seen>>, leak_plaintext: bool, answer_for_other_key: bool) -> Rule {
    let verifier = Verifier::new(FakeNsm::new().anchor().unwrap());
    mock!(aws_sdk_kms::Client::decrypt).then_compute_output(move |req: &DecryptInput| {
        let mut s = seen.lock().unwrap();
        s.key_id = req.key_id().map(str::to_owned);
        s.blob = req.ciphertext_blob().map(|b| b.as_ref().to_vec());
        let mut ctx: Vec<(String, String)> = req
            .encryption_context()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        ctx.sort();
        s.context = Some(ctx);
        let recipient = req.recipient();
        s.algorithm = recipient.and_then(|r| r.key_encryption_algorithm().cloned());
        s.document = recipient
            .and_then(|r| r.attestation_document())
            .map(|d| d.as_ref().to_vec());
        let mut out = DecryptOutput::builder().key_id(KEK);
        if let Some(document) = &s.document
            && let Ok(v) = verifier.verify(
                document,
                &Expectations::for_image(&pcr(0), &pcr(1), &pcr(2)),
                VerificationTime::At(T0),
            )
            && let Some(spki) = v.public_key()
        {
            s.verified_key = Some(spki.to_vec());
            let target = if answer_for_other_key {
                EphemeralRsaKey::generate()
                    .unwrap()
                    .public_key_der()
                    .to_vec()
            } else {
                spki.to_vec()
            };
            let answer = build::build(&target, &build::Parts::new(&DATA_KEY), build::BER);
            out = out.ciphertext_for_recipient(Blob::new(answer));
        }
        if leak_plaintext {
            out = out.plaintext(Blob::new(DATA_KEY.to_vec()));
        }
        out.build()
    })
}

fn attested(client: KmsClient) -> AttestedKek {
    AttestedKek::new(client, KekId::new(KEK).unwrap(), Arc::new(FakeNsm::new()))
        .with_user_data(b"manifest-hash")
}

#[test]
fn unwrap_goes_through_decrypt_with_a_recipient_and_opens_the_answer() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rule = kms_decrypt(seen.clone(), false, false);
    let kek = attested(mocked(&[&rule]));
    let key = kek
        .unwrap(&KekId::new(KEK).unwrap(), b"wrapped-blob", &context())
        .wait()
        .unwrap();
    assert_eq!(key.expose_secret(), &DATA_KEY);
    assert_eq!(rule.num_calls(), 1);
    let s = seen.lock().unwrap();
    assert_eq!(s.key_id.as_deref(), Some(KEK));
    assert_eq!(s.blob.as_deref(), Some(&b"wrapped-blob"[..]));
    assert_eq!(
        s.context.as_deref(),
        Some(&[("purpose".to_owned(), "master".to_owned())][..])
    );
    assert_eq!(s.algorithm, Some(KeyEncryptionMechanism::RsaesOaepSha256));
    // The document verified under the fake's root, bound an RSA-2048 SPKI
    // (294 bytes of DER) and carried the backend's user data.
    let spki = s.verified_key.as_ref().unwrap();
    assert_eq!(spki.len(), 294);
    let verified = Verifier::new(FakeNsm::new().anchor().unwrap())
        .verify(
            s.document.as_ref().unwrap(),
            &Expectations::any_image().with_user_data(b"manifest-hash"),
            VerificationTime::At(T0),
        )
        .unwrap();
    assert_eq!(verified.public_key(), Some(&spki[..]));
}

#[test]
fn every_unwrap_attests_a_fresh_key() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rule = kms_decrypt(seen.clone(), false, false);
    let kek = attested(mocked(&[&rule]));
    let kek_id = KekId::new(KEK).unwrap();
    kek.unwrap(&kek_id, b"a", &context()).wait().unwrap();
    let first = seen.lock().unwrap().verified_key.clone().unwrap();
    kek.unwrap(&kek_id, b"b", &context()).wait().unwrap();
    let second = seen.lock().unwrap().verified_key.clone().unwrap();
    assert_ne!(first, second, "one key per decryption");
    assert_eq!(rule.num_calls(), 2);
}

#[test]
fn answer_carrying_a_plaintext_is_refused() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rule = kms_decrypt(seen, true, false);
    let kek = attested(mocked(&[&rule]));
    let err = kek
        .unwrap(&KekId::new(KEK).unwrap(), b"blob", &context())
        .wait()
        .unwrap_err();
    let k = kms_error(&err);
    assert_eq!(k.kind(), "malformed");
    assert!(k.to_string().contains("plaintext"), "{k}");
}

#[test]
fn answer_without_ciphertext_for_recipient_is_refused() {
    // A KMS (or proxy) that ignored the Recipient: neither field usable.
    let rule = mock!(aws_sdk_kms::Client::decrypt)
        .then_output(|| DecryptOutput::builder().key_id(KEK).build());
    let kek = attested(mocked(&[&rule]));
    let err = kek
        .unwrap(&KekId::new(KEK).unwrap(), b"blob", &context())
        .wait()
        .unwrap_err();
    let k = kms_error(&err);
    assert_eq!(k.kind(), "malformed");
    assert!(k.to_string().contains("CiphertextForRecipient"), "{k}");
}

#[test]
fn answer_for_another_key_is_the_opaque_decryption_failure() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rule = kms_decrypt(seen, false, true);
    let kek = attested(mocked(&[&rule]));
    let err = kek
        .unwrap(&KekId::new(KEK).unwrap(), b"blob", &context())
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::DecryptionFailed), "{err:?}");
}

#[test]
fn answer_that_is_not_cms_is_a_typed_backend_error() {
    let rule = mock!(aws_sdk_kms::Client::decrypt).then_output(|| {
        DecryptOutput::builder()
            .key_id(KEK)
            .ciphertext_for_recipient(Blob::new(vec![0x30, 0x03, 0x02, 0x01]))
            .build()
    });
    let kek = attested(mocked(&[&rule]));
    let err = kek
        .unwrap(&KekId::new(KEK).unwrap(), b"blob", &context())
        .wait()
        .unwrap_err();
    match err {
        Error::Backend { kind, .. } => assert_eq!(kind, "enclave-recipient"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn kms_refusal_passes_through_typed() {
    let rule = mock!(aws_sdk_kms::Client::decrypt)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"AccessDeniedException","message":"no"}"#.to_owned()),
        )
        .build();
    let kek = attested(mocked(&[&rule]));
    let err = kek
        .unwrap(&KekId::new(KEK).unwrap(), b"blob", &context())
        .wait()
        .unwrap_err();
    assert_eq!(kms_error(&err).kind(), "access-denied");
}

#[test]
fn wrap_is_encrypt_with_the_same_context_and_generate_never_asks_kms_for_a_plaintext() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let rule = mock!(aws_sdk_kms::Client::encrypt).then_compute_output(move |req| {
        let mut ctx: Vec<(String, String)> = req
            .encryption_context()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        ctx.sort();
        let plaintext = req.plaintext().map(|b| b.as_ref().to_vec()).unwrap();
        record.lock().unwrap().push((ctx, plaintext.clone()));
        let mut blob = b"wrapped:".to_vec();
        blob.extend_from_slice(&plaintext);
        EncryptOutput::builder()
            .key_id(KEK)
            .ciphertext_blob(Blob::new(blob))
            .build()
    });
    let gdk = mock!(aws_sdk_kms::Client::generate_data_key)
        .then_output(|| panic!("GenerateDataKey would return a plaintext"));
    let kek = attested(mocked(&[&rule, &gdk]));
    let kek_id = KekId::new(KEK).unwrap();
    let data_key = DataKey::from_slice(&[7; 32]).unwrap();
    let wrapped = kek.wrap(&kek_id, &data_key, &context()).wait().unwrap();
    assert_eq!(&wrapped[..8], b"wrapped:");
    assert_eq!(&wrapped[8..], &[7; 32]);
    let (fresh, wrapped_fresh) = kek.generate_data_key(&kek_id, &context()).wait().unwrap();
    assert_eq!(&wrapped_fresh[8..], fresh.expose_secret());
    assert_ne!(fresh.expose_secret(), &[7; 32]);
    assert_eq!(gdk.num_calls(), 0);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (ctx, _) in seen.iter() {
        assert_eq!(ctx, &[("purpose".to_owned(), "master".to_owned())]);
    }
    // It is a KeyBackend whose wrapping capability is itself.
    assert_eq!(kek.name(), "aws-kms-nitro");
    assert!(kek.wrapping().is_some());
    assert_eq!(kek.default_kek().as_str(), KEK);
    assert!(!format!("{kek:?}").contains("manifest"));
}

/// The host's side of the split deployment: the enclave has no KMS
/// client; the host asks it for a document over the link, checks it, calls
/// KMS with it and forwards the answer. The host never sees the key.
#[test]
fn host_forwards_decrypt_with_recipient_for_an_enclave_over_the_link() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rule = kms_decrypt(seen.clone(), false, false);
    let client = mocked(&[&rule]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (enclave_end, host_end) = tokio::io::duplex(1024);
        let nsm = FakeNsm::new();
        let verifier = Verifier::new(nsm.anchor().unwrap());
        let enclave = tokio::spawn(async move {
            EnclaveLink::new(enclave_end)
                .serve_unwrap(&nsm, Some(b"manifest-hash"))
                .await
        });
        let mut host = HostLink::new(host_end);
        let expected =
            Expectations::for_image(&pcr(0), &pcr(1), &pcr(2)).with_user_data(b"manifest-hash");
        let (document, _) = host
            .request_attestation(
                b"boot nonce",
                &verifier,
                &expected,
                VerificationTime::At(T0),
            )
            .await
            .unwrap();
        let answer = AttestedKek::decrypt_for_recipient(
            &client,
            &KekId::new(KEK).unwrap(),
            b"wrapped-blob",
            &context(),
            &document,
        )
        .await
        .unwrap();
        host.forward(&answer).await.unwrap();
        let plaintext = enclave.await.unwrap().unwrap();
        assert_eq!(plaintext.expose_secret(), &DATA_KEY);
    });
    assert_eq!(
        seen.lock().unwrap().algorithm,
        Some(KeyEncryptionMechanism::RsaesOaepSha256)
    );
    assert_eq!(rule.num_calls(), 1);
}
