//! The `aws-kms` backends end to end.
//!
//! Two halves:
//! - against a KMS emulator (moto, launched by
//!   `python3 tools/moto_kms_server.py -H 127.0.0.1 -p PORT`): real keys made
//!   with `CreateKey`, real signatures checked with k256, real envelopes.
//!   These read the endpoint from `CUSTODY_TEST_KMS_ENDPOINT`
//!   (`http://127.0.0.1:PORT`) and are skipped, saying so, when it is unset.
//!   The fault test starts a moto of its own (the launcher named by
//!   `CUSTODY_TEST_MOTO_SERVER`, default `../shared/tools/moto_kms_server.py` beside
//!   the repository, run by `CUSTODY_TEST_PYTHON` or `python3`)
//!   and kills it.
//! - against the SDK's mocks (`aws-smithy-mocks`), always run: the answers
//!   moto cannot give (disabled keys, throttling, access denied, ...), with
//!   the number of calls each one took.
#![cfg(feature = "aws-kms")]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput;
use aws_sdk_kms::operation::sign::SignOutput;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_smithy_mocks::mock;
use custody_core::{
    Authorization, Capabilities, DataKey, Digest32, EncryptionContext, Envelope, Error, Intent,
    KekId, KeyRef, KeySigner, PinnedKey, PublicKey, RawSignature, SharedBackend, SignRequest,
    SigningBackend, WrappingBackend, normalize, parse_der,
};
use custody_kms::{KmsClient, KmsKek, KmsSigner, RetryPolicy};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};

#[path = "support/aws.rs"]
#[allow(dead_code, reason = "shared with conformance.rs, which uses a subset")]
mod fixture;
use fixture::*;

fn digest(i: u32) -> Digest32 {
    let mut d = [0u8; 32];
    d[..4].copy_from_slice(&i.to_be_bytes());
    d[4..8].copy_from_slice(b"cust");
    d[31] = 0x5a;
    Digest32(d)
}

fn auth() -> Authorization {
    Authorization::none()
}

/// Checks a normalized signature the way a verifier on chain would.
fn check_signature(pinned: &PublicKey, d: &Digest32, sig: &custody_core::RecoverableSignature) {
    let k = Signature::from_scalars(*sig.r(), *sig.s()).unwrap();
    assert!(k.normalize_s() == k, "s is high");
    let vk = VerifyingKey::from(pinned.as_k256());
    vk.verify_prehash(d.as_bytes(), &k).unwrap();
    assert_eq!(&sig.recover(d).unwrap(), pinned);
}

/// A signature of `d` by `signer` as callers ask for it, checked with
/// [`check_signature`] against the pinned key.
fn sign_checked(signer: &KeySigner, d: Digest32) -> custody_core::RecoverableSignature {
    let sig = signer
        .sign(d, Intent::raw_digest(), &auth())
        .wait()
        .unwrap();
    check_signature(signer.key().secp256k1().unwrap(), &d, &sig);
    sig
}

/// A new secp256k1 key on the emulator, and a `KmsSigner` over the
/// emulator's client with that key pinned through it.
fn signing_key_pinned(emu: &Emulator) -> (SharedBackend, KeySigner) {
    let key_id = emu.signing_key();
    let backend: SharedBackend = Arc::new(KmsSigner::new(emu.client.clone()));
    let signer = KeySigner::pin(backend.clone(), stored(&key_id))
        .wait()
        .unwrap();
    (backend, signer)
}

fn is_high_s(der: &[u8]) -> bool {
    let compact = parse_der(der).unwrap();
    let sig = Signature::from_slice(&compact).unwrap();
    sig.normalize_s() != sig
}

// ------------------------------------------------- against the emulator

#[test]
fn recovery_id_found_for_both_parities() {
    // openzeppelin-relayer#411: KMS returns no recovery id and either `s`;
    // the recovery parity must be found (and flipped with `s`) for both.
    let Some(ep) = endpoint("recovery_id_found_for_both_parities") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let (backend, signer) = signing_key_pinned(&emu);
    let pinned = *signer.key().secp256k1().unwrap();

    let (mut high, mut low, mut odd, mut even) = (0, 0, 0, 0);
    for i in 0..40 {
        let d = digest(i);
        // The raw answer, to see KMS's `s` before normalization...
        let raw = backend
            .signing()
            .unwrap()
            .sign_digest(SignRequest::new(
                signer.key(),
                d,
                Intent::raw_digest(),
                &auth(),
            ))
            .wait()
            .unwrap();
        let RawSignature::Der(der) = &raw.signature else {
            panic!("KMS signatures are DER: {raw:?}")
        };
        if is_high_s(der) {
            high += 1;
        } else {
            low += 1;
        }
        check_signature(
            &pinned,
            &d,
            &normalize(&raw.signature, &pinned, &d).unwrap(),
        );
        // ...and the path callers take.
        let sig = sign_checked(&signer, d);
        if sig.y_parity() {
            odd += 1;
        } else {
            even += 1;
        }
    }
    println!("s: {high} high / {low} low; parity: {odd} odd / {even} even");
    assert!(high > 0 && low > 0, "both high and low s must occur");
    assert!(odd > 0 && even > 0, "both recovery parities must occur");
}

#[test]
fn public_key_fetched_once_at_pin_not_per_signature() {
    // alloy#3521: a public key fetched on every signature.
    let Some(ep) = endpoint("public_key_fetched_once_at_pin_not_per_signature") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let (_, signer) = signing_key_pinned(&emu);
    assert_eq!(emu.calls.get("GetPublicKey"), 1);
    assert_eq!(emu.calls.get("Sign"), 0);
    for i in 0..10 {
        let d = digest(100 + i);
        sign_checked(&signer, d);
        // Exactly one Sign per signature, as it happens.
        assert_eq!(emu.calls.get("Sign"), usize::try_from(i).unwrap() + 1);
    }
    assert_eq!(
        emu.calls.get("GetPublicKey"),
        1,
        "no GetPublicKey after pin"
    );
}

#[test]
fn client_built_once_not_per_signature() {
    // A KMS client (with its credentials cache and connection pool) built
    // per signature: the credentials provider would be asked each time.
    let Some(ep) = endpoint("client_built_once_not_per_signature") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let key_id = emu.signing_key();
    // The caller's own client (CreateKey) filled its credentials cache once.
    assert_eq!(emu.creds.0.load(Ordering::SeqCst), 1);
    let backend: SharedBackend = Arc::new(KmsSigner::new(emu.client.clone()));
    let signer = KeySigner::pin(backend, stored(&key_id)).wait().unwrap();
    // `KmsClient` built its one client (the caller's configuration, SDK
    // retries off) at construction; its cache filled at the first call.
    assert_eq!(emu.creds.0.load(Ordering::SeqCst), 2);
    for i in 0..20 {
        signer
            .sign(digest(200 + i), Intent::raw_digest(), &auth())
            .wait()
            .unwrap();
    }
    assert_eq!(emu.calls.get("Sign"), 20);
    // A client built per signature would have asked 20 more times.
    assert_eq!(emu.creds.0.load(Ordering::SeqCst), 2);
    // Clones of the backend and of the client share that one SDK client.
    let other = KmsSigner::new(emu.client.clone());
    let signer2 = KeySigner::from_pinned(Arc::new(other), signer.key().clone());
    signer2
        .sign(digest(299), Intent::raw_digest(), &auth())
        .wait()
        .unwrap();
    assert_eq!(emu.creds.0.load(Ordering::SeqCst), 2);
}

#[test]
fn pin_refuses_keys_of_specs_custody_does_not_use() {
    let Some(ep) = endpoint("pin_refuses_keys_of_specs_custody_does_not_use") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let backend = KmsSigner::new(emu.client.clone());
    // P-256 and RSA keys pin (tests/aws_kms_algorithms.rs); other curves not.
    for spec in [KeySpec::EccNistP384, KeySpec::EccNistP521] {
        let id = emu.create_key(spec.clone(), KeyUsageType::SignVerify);
        let e = backend.pin(&stored(&id)).wait().unwrap_err();
        assert_eq!(kms_error(&e).kind(), "wrong-key-usage", "{spec:?}: {e:?}");
        assert!(kms_error(&e).to_string().contains("ECC_SECG_P256K1"));
    }
    let missing = backend
        .pin(&stored("11111111-2222-3333-4444-555555555555"))
        .wait()
        .unwrap_err();
    assert!(matches!(missing, Error::KeyNotFound), "{missing:?}");
    assert_eq!(missing.kind(), "not-found");
    let hd = backend
        .pin(&KeyRef::Path("m/44'/60'/0'/0/0".parse().unwrap()))
        .wait()
        .unwrap_err();
    assert!(matches!(hd, Error::Unsupported(_)), "{hd:?}");
    let wallet = backend
        .pin(&KeyRef::Wallet {
            name: "alice".into(),
            index: 0,
        })
        .wait()
        .unwrap_err();
    assert!(matches!(wallet, Error::Unsupported(_)), "{wallet:?}");
}

#[path = "support/envelope.rs"]
mod envelope;
use envelope::{context, with_wrapped_key};

#[test]
fn envelope_round_trip_through_the_kms_kek() {
    let Some(ep) = endpoint("envelope_round_trip_through_the_kms_kek") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let kek_id = KekId::new(emu.kek_key()).unwrap();
    let kek = KmsKek::new(emu.client.clone(), kek_id.clone());
    let ctx = context("alice");
    let secret = b"an HD master seed, say".as_slice();

    let env = Envelope::seal(&kek, &kek_id, &ctx, secret).wait().unwrap();
    assert_eq!(emu.calls.get("GenerateDataKey"), 1);
    assert_eq!(env.kek(), &kek_id);
    assert_eq!(env.open(&kek, &ctx).wait().unwrap().expose_secret(), secret);
    assert_eq!(emu.calls.get("Decrypt"), 1);

    // A wrong context: KMS refuses the data key, opaquely.
    let wrong = env.open(&kek, &context("mallory")).wait().unwrap_err();
    assert!(matches!(wrong, Error::DecryptionFailed), "{wrong:?}");
    let none = env
        .open(&kek, &EncryptionContext::new())
        .wait()
        .unwrap_err();
    assert!(matches!(none, Error::DecryptionFailed), "{none:?}");

    // Tampered wrapped bytes: the IV, the ciphertext, the tag. (moto's
    // blob starts with the key id in the clear, and a changed id there is
    // moto's AccessDeniedException, where AWS answers
    // InvalidCiphertextException; that path is a mock test.)
    let wrapped = env.wrapped_key().to_vec();
    assert!(wrapped.len() > 64, "{}", wrapped.len());
    for at in [wrapped.len() - 60, wrapped.len() / 2 + 8, wrapped.len() - 1] {
        let mut bad = wrapped.clone();
        bad[at] ^= 0x01;
        let e = kek.unwrap(&kek_id, &bad, &ctx).wait().unwrap_err();
        assert!(matches!(e, Error::DecryptionFailed), "byte {at}: {e:?}");
        let e = with_wrapped_key(&env, &kek_id, &bad)
            .open(&kek, &ctx)
            .wait()
            .unwrap_err();
        assert!(matches!(e, Error::DecryptionFailed), "byte {at}: {e:?}");
    }

    // `wrap` (Encrypt) of a key made here, and back.
    let key = DataKey::random().unwrap();
    let blob = kek.wrap(&kek_id, &key, &ctx).wait().unwrap();
    assert_eq!(kek.unwrap(&kek_id, &blob, &ctx).wait().unwrap(), key);
    let e = kek
        .unwrap(&kek_id, &blob, &context("bob"))
        .wait()
        .unwrap_err();
    assert!(matches!(e, Error::DecryptionFailed), "{e:?}");

    // A KEK that does not exist.
    let ghost = KekId::new("22222222-3333-4444-5555-666666666666").unwrap();
    let e = Envelope::seal(&kek, &ghost, &ctx, secret)
        .wait()
        .unwrap_err();
    assert!(matches!(e, Error::UnknownKek), "{e:?}");
    assert_eq!(e.kind(), "not-found");
}

#[test]
fn reencrypt_rotation_opens_with_the_new_key() {
    let Some(ep) = endpoint("reencrypt_rotation_opens_with_the_new_key") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let old_id = KekId::new(emu.kek_key()).unwrap();
    let new_id = KekId::new(emu.kek_key()).unwrap();
    let kek = KmsKek::new(emu.client.clone(), old_id.clone());
    let ctx = context("alice");
    let env = Envelope::seal(&kek, &old_id, &ctx, b"rotate me")
        .wait()
        .unwrap();

    // ReEncrypt: the data key never leaves KMS.
    let rewrapped = kek
        .reencrypt(env.wrapped_key(), &old_id, &new_id, &ctx)
        .wait()
        .unwrap();
    assert_eq!(emu.calls.get("ReEncrypt"), 1);
    let rotated = with_wrapped_key(&env, &new_id, &rewrapped);
    assert_eq!(rotated.kek(), &new_id);
    assert_eq!(
        rotated.open(&kek, &ctx).wait().unwrap().expose_secret(),
        b"rotate me"
    );
    // The context is still bound after rotation.
    let e = rotated.open(&kek, &context("bob")).wait().unwrap_err();
    assert!(matches!(e, Error::DecryptionFailed), "{e:?}");
    let e = kek
        .reencrypt(env.wrapped_key(), &old_id, &new_id, &context("bob"))
        .wait()
        .unwrap_err();
    assert!(matches!(e, Error::DecryptionFailed), "{e:?}");

    // Core's own rotation (Decrypt + Encrypt) agrees.
    let moved = env.rewrap(&kek, &new_id, &ctx).wait().unwrap();
    assert_eq!(moved.kek(), &new_id);
    assert_eq!(
        moved.open(&kek, &ctx).wait().unwrap().expose_secret(),
        b"rotate me"
    );
}

#[test]
fn many_threads_sign_at_once_through_one_backend() {
    let Some(ep) = endpoint("many_threads_sign_at_once_through_one_backend") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let (_, signer) = signing_key_pinned(&emu);
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let signer = signer.clone();
            std::thread::spawn(move || {
                for i in 0..8 {
                    let d = digest(1000 + t * 100 + i);
                    sign_checked(&signer, d);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(emu.calls.get("Sign"), 64);
    assert_eq!(emu.calls.get("GetPublicKey"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_callers_await_on_their_own_runtime() {
    let Some(ep) = endpoint("async_callers_await_on_their_own_runtime") else {
        return;
    };
    let calls = CallCounter::default();
    let creds = CountingCredentials::default();
    let sdk = aws_sdk_kms::Client::from_conf(sdk_config(&ep, &calls, &creds));
    let out = sdk
        .create_key()
        .key_spec(KeySpec::EccSecgP256K1)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let key_id = out.key_metadata.unwrap().key_id;
    // The caller's runtime, by handle.
    let client = KmsClient::new(&sdk, tokio::runtime::Handle::current());
    let backend: SharedBackend = Arc::new(KmsSigner::new(client));
    let signer = KeySigner::pin(backend, stored(&key_id)).await.unwrap();
    let tasks: Vec<_> = (0..4u32)
        .map(|i| {
            let signer = signer.clone();
            tokio::spawn(async move {
                let d = digest(5000 + i);
                let sig = signer.sign(d, Intent::raw_digest(), &auth()).await.unwrap();
                check_signature(signer.key().secp256k1().unwrap(), &d, &sig);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(calls.get("Sign"), 4);
}

#[test]
fn a_client_from_sdk_config_signs() {
    let Some(ep) = endpoint("a_client_from_sdk_config_signs") else {
        return;
    };
    let emu = Emulator::new(&ep);
    let key_id = emu.signing_key();
    let config = aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                CountingCredentials::default(),
            ),
        )
        .endpoint_url(&ep)
        .build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = KmsClient::from_sdk_config(&config, rt.handle().clone());
    let backend: SharedBackend = Arc::new(KmsSigner::new(client));
    // Waited on from this plain thread; the I/O runs on `rt`'s worker.
    let signer = KeySigner::pin(backend, stored(&key_id)).wait().unwrap();
    let d = digest(77);
    sign_checked(&signer, d);
    drop(signer);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// A free local port (bound, read, released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A moto of our own, killed by PID when dropped.
struct Moto(Child);

impl Moto {
    fn start(port: u16) -> Self {
        let script = std::env::var(MOTO_VAR).unwrap_or_else(|_| DEFAULT_MOTO.to_owned());
        let python = std::env::var(PYTHON_VAR).unwrap_or_else(|_| "python3".to_owned());
        let child = Command::new(python)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
        let moto = Self(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn emulator_killed_mid_run_is_unavailable_within_the_timeout() {
    if endpoint("emulator_killed_mid_run_is_unavailable_within_the_timeout").is_none() {
        return;
    }
    let port = free_port();
    let mut moto = Moto::start(port);
    let policy = RetryPolicy::new()
        .with_max_attempts(3)
        .with_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .with_attempt_timeout(Duration::from_secs(2));
    let emu = Emulator::with_policy(&format!("http://127.0.0.1:{port}"), policy);
    let key_id = emu.signing_key();
    let kek_id = KekId::new(emu.kek_key()).unwrap();
    let backend: SharedBackend = Arc::new(KmsSigner::new(emu.client.clone()));
    let signer = KeySigner::pin(backend, stored(&key_id)).wait().unwrap();
    signer
        .sign(digest(1), Intent::raw_digest(), &auth())
        .wait()
        .unwrap();
    let kek = KmsKek::new(emu.client.clone(), kek_id.clone());
    let env = Envelope::seal(&kek, &kek_id, &context("a"), b"x")
        .wait()
        .unwrap();

    moto.kill();

    // Bound: 3 tries of at most 2 s each, and two back-offs of at most 0.1 s.
    let bound = Duration::from_millis(3 * 2000 + 2 * 100 + 1000);
    let started = Instant::now();
    let e = signer
        .sign(digest(2), Intent::raw_digest(), &auth())
        .wait()
        .unwrap_err();
    let took = started.elapsed();
    let k = kms_error(&e);
    assert_eq!(k.kind(), "unavailable", "{e:?}");
    assert_eq!(k.tries(), Some(3), "{k}");
    assert!(took < bound, "took {took:?}");
    println!("after the kill: {k} ({took:?})");
    let e = env.open(&kek, &context("a")).wait().unwrap_err();
    assert_eq!(kms_error(&e).kind(), "unavailable", "{e:?}");
}

#[test]
fn unresponsive_endpoint_times_out_as_unavailable() {
    // Always run: a local listener that accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            let mut s2 = s;
            let mut buf = [0u8; 1024];
            let _ = s2.set_read_timeout(Some(Duration::from_millis(10)));
            let _ = s2.read(&mut buf);
            held.push(s2);
        }
    });
    let policy = RetryPolicy::new()
        .with_max_attempts(2)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_attempt_timeout(Duration::from_millis(300));
    let emu = Emulator::with_policy(&format!("http://127.0.0.1:{port}"), policy);
    let backend = KmsSigner::new(emu.client.clone());
    let started = Instant::now();
    let e = backend.pin(&stored("alias/any")).wait().unwrap_err();
    let took = started.elapsed();
    let k = kms_error(&e);
    assert_eq!(k.kind(), "unavailable", "{e:?}");
    assert_eq!(k.tries(), Some(2));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(emu.calls.get("GetPublicKey"), 2);
}

// ------------------------------------------------------ against mocks

fn fast_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::new()
        .with_max_attempts(max_attempts)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(4))
        .with_attempt_timeout(Duration::from_secs(5))
}

/// A KMS JSON error answer, as the service sends it.
fn aws_error(code: &str) -> String {
    format!(r#"{{"__type":"{code}","message":"test: {code}"}}"#)
}

/// A local secp256k1 key standing in for the KMS key, and its pinned form.
fn local_key() -> (SigningKey, PinnedKey) {
    let sk = SigningKey::from_slice(&[0x11; 32]).unwrap();
    let pk = PublicKey::from(k256::PublicKey::from(sk.verifying_key()));
    (sk, PinnedKey::new(stored("alias/mocked"), None, pk))
}

fn der_signature(sk: &SigningKey, d: &Digest32) -> Vec<u8> {
    let (sig, _) = sk.sign_prehash_recoverable(d.as_bytes());
    sig.to_der().as_bytes().to_vec()
}

fn sign_with(
    client: KmsClient,
    pinned: &PinnedKey,
    d: Digest32,
) -> Result<custody_core::RecoverableSignature, Error> {
    let signer = KeySigner::from_pinned(Arc::new(KmsSigner::new(client)), pinned.clone());
    signer.sign(d, Intent::raw_digest(), &auth()).wait()
}

/// A mock of the KMS operation `$op` answering every call with HTTP
/// `$status` and the AWS error `$code`.
macro_rules! always_failing {
    ($op:path, $status:expr, $code:expr) => {
        mock!($op)
            .sequence()
            .http_status($status, Some(aws_error($code)))
            .repeatedly()
            .build()
    };
}

/// KMS's answer to `Sign`: the DER signature `der`.
fn sign_output(der: &[u8]) -> SignOutput {
    SignOutput::builder()
        .signature(Blob::new(der.to_vec()))
        .build()
}

#[test]
fn throttling_gets_bounded_retries() {
    // hyperlane#2391: no bounded retry on throttling.
    let (sk, pinned) = local_key();
    let d = digest(7);
    let der = der_signature(&sk, &d);

    // Throttled twice (two codes), then a signature: three calls, success.
    let der2 = der.clone();
    let rule = mock!(aws_sdk_kms::Client::sign)
        .sequence()
        .http_status(400, Some(aws_error("ThrottlingException")))
        .http_status(400, Some(aws_error("LimitExceededException")))
        .output(move || sign_output(&der2))
        .build();
    let sig = sign_with(mocked(&[&rule], fast_policy(4)), &pinned, d).unwrap();
    check_signature(pinned.secp256k1().unwrap(), &d, &sig);
    assert_eq!(rule.num_calls(), 3);

    // HTTP 429 with no code is throttling too.
    let der3 = der.clone();
    let rule = mock!(aws_sdk_kms::Client::sign)
        .sequence()
        .http_status(429, None)
        .output(move || sign_output(&der3))
        .build();
    sign_with(mocked(&[&rule], fast_policy(4)), &pinned, d).unwrap();
    assert_eq!(rule.num_calls(), 2);

    // Throttled forever: `throttled` after exactly the bound, with the count.
    let rule = always_failing!(aws_sdk_kms::Client::sign, 400, "ThrottlingException");
    let e = sign_with(mocked(&[&rule], fast_policy(5)), &pinned, d).unwrap_err();
    let k = kms_error(&e);
    assert_eq!(k.kind(), "throttled", "{e:?}");
    assert_eq!(k.tries(), Some(5));
    assert!(k.to_string().contains("after 5 tries"), "{k}");
    assert_eq!(rule.num_calls(), 5);
}

#[test]
fn transient_failures_are_retried() {
    let (sk, pinned) = local_key();
    let d = digest(8);
    let der = der_signature(&sk, &d);
    let rule = mock!(aws_sdk_kms::Client::sign)
        .sequence()
        .http_status(500, Some(aws_error("KMSInternalException")))
        .http_status(503, None)
        .http_status(400, Some(aws_error("DependencyTimeoutException")))
        .output(move || sign_output(&der))
        .build();
    sign_with(mocked(&[&rule], fast_policy(4)), &pinned, d).unwrap();
    assert_eq!(rule.num_calls(), 4);

    // Still failing at the bound: `unavailable`, with the count.
    let rule = always_failing!(aws_sdk_kms::Client::sign, 500, "KMSInternalException");
    let e = sign_with(mocked(&[&rule], fast_policy(3)), &pinned, d).unwrap_err();
    assert_eq!(kms_error(&e).kind(), "unavailable");
    assert_eq!(kms_error(&e).tries(), Some(3));
    assert_eq!(rule.num_calls(), 3);
}

/// One `Sign` answered with `code`: the core error, and how many calls it took.
fn sign_error(code: &str) -> (Error, usize) {
    let (_, pinned) = local_key();
    let rule = always_failing!(aws_sdk_kms::Client::sign, 400, code);
    let e = sign_with(mocked(&[&rule], fast_policy(4)), &pinned, digest(9)).unwrap_err();
    (e, rule.num_calls())
}

#[test]
fn access_denied_is_not_retried() {
    let (e, calls) = sign_error("AccessDeniedException");
    assert_eq!(calls, 1);
    let k = kms_error(&e);
    assert_eq!(k.kind(), "access-denied");
    assert!(k.to_string().contains("kms:Sign"), "{k}");
    let (e, calls) = sign_error("UnrecognizedClientException");
    assert_eq!((kms_error(&e).kind(), calls), ("access-denied", 1));
    let (e, calls) = sign_error("ValidationException");
    assert_eq!((kms_error(&e).kind(), calls), ("bad-input", 1));
}

#[test]
fn disabled_and_pending_deletion_keys_are_key_disabled() {
    for code in ["DisabledException", "KMSInvalidStateException"] {
        let (e, calls) = sign_error(code);
        assert_eq!(calls, 1, "{code} retried");
        let k = kms_error(&e);
        assert_eq!(k.kind(), "key-disabled", "{code}");
        assert!(k.to_string().contains("enable it"), "{k}");
    }
    // The same for a KEK.
    let rule = always_failing!(
        aws_sdk_kms::Client::decrypt,
        400,
        "KMSInvalidStateException"
    );
    let kek_id = KekId::new("alias/kek").unwrap();
    let kek = KmsKek::new(mocked(&[&rule], fast_policy(4)), kek_id.clone());
    let e = kek
        .unwrap(&kek_id, b"blob", &EncryptionContext::new())
        .wait()
        .unwrap_err();
    assert_eq!(kms_error(&e).kind(), "key-disabled");
    assert_eq!(rule.num_calls(), 1);
}

#[test]
fn wrong_key_usage_is_typed() {
    let (e, calls) = sign_error("InvalidKeyUsageException");
    assert_eq!((kms_error(&e).kind(), calls), ("wrong-key-usage", 1));

    // A KEK that is a signing key.
    let rule = always_failing!(
        aws_sdk_kms::Client::generate_data_key,
        400,
        "InvalidKeyUsageException"
    );
    let kek_id = KekId::new("alias/signing-key").unwrap();
    let kek = KmsKek::new(mocked(&[&rule], fast_policy(4)), kek_id.clone());
    let e = Envelope::seal(&kek, &kek_id, &EncryptionContext::new(), b"x")
        .wait()
        .unwrap_err();
    assert_eq!(kms_error(&e).kind(), "wrong-key-usage");

    // Wrong key specs in GetPublicKey, as real KMS reports them.
    let p256_spki = {
        let mut v = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        v.extend_from_slice(&[4u8; 65]);
        v
    };
    let spki = p256_spki.clone();
    let rule = mock!(aws_sdk_kms::Client::get_public_key)
        .sequence()
        .output(move || {
            GetPublicKeyOutput::builder()
                .key_id("k")
                .key_spec(KeySpec::EccNistP384)
                .public_key(Blob::new(spki.clone()))
                .build()
        })
        .output(|| {
            GetPublicKeyOutput::builder()
                .key_id("k")
                .key_spec(KeySpec::EccNistP256)
                .key_usage(KeyUsageType::EncryptDecrypt)
                .public_key(Blob::new(vec![0x30, 0x00]))
                .build()
        })
        .output(|| {
            GetPublicKeyOutput::builder()
                .key_id("k")
                .key_spec(KeySpec::EccSecgP256K1)
                .key_usage(KeyUsageType::EncryptDecrypt)
                .build()
        })
        .output(|| {
            GetPublicKeyOutput::builder()
                .key_id("k")
                .public_key(Blob::new(vec![1, 2, 3]))
                .build()
        })
        .build();
    let signer = KmsSigner::new(mocked(&[&rule], fast_policy(4)));
    for expected in [
        "wrong-key-usage",
        "wrong-key-usage",
        "wrong-key-usage",
        "malformed",
    ] {
        let e = signer.pin(&stored("alias/k")).wait().unwrap_err();
        assert_eq!(kms_error(&e).kind(), expected, "{e:?}");
    }
    assert_eq!(rule.num_calls(), 4);
}

#[test]
fn decryption_failures_are_opaque_and_unknown_keys_not_found() {
    for code in ["InvalidCiphertextException", "IncorrectKeyException"] {
        let rule = always_failing!(aws_sdk_kms::Client::decrypt, 400, code);
        let kek_id = KekId::new("alias/kek").unwrap();
        let kek = KmsKek::new(mocked(&[&rule], fast_policy(4)), kek_id.clone());
        let e = kek
            .unwrap(&kek_id, b"blob", &EncryptionContext::new())
            .wait()
            .unwrap_err();
        assert!(matches!(e, Error::DecryptionFailed), "{code}: {e:?}");
        assert_eq!(e.to_string(), "decryption failed");
        assert_eq!(rule.num_calls(), 1);
    }
    let (e, calls) = sign_error("NotFoundException");
    assert!(matches!(e, Error::KeyNotFound), "{e:?}");
    assert_eq!(calls, 1);
}

#[test]
fn debug_and_errors_show_no_secrets() {
    let rule = always_failing!(
        aws_sdk_kms::Client::generate_data_key,
        400,
        "AccessDeniedException"
    );
    let client = mocked(&[&rule], fast_policy(2));
    let kek_id = KekId::new("alias/kek-public-id").unwrap();
    let kek = KmsKek::new(client.clone(), kek_id.clone());
    let signer = KmsSigner::new(client.clone());
    let e = Envelope::seal(&kek, &kek_id, &context("alice"), b"plaintext-secret")
        .wait()
        .unwrap_err();
    for text in [
        format!("{kek:?}"),
        format!("{signer:?}"),
        format!("{client:?}"),
        format!("{e:?}"),
        e.to_string(),
        kms_error(&e).to_string(),
    ] {
        for secret in [
            ACCESS_KEY,
            SECRET_KEY,
            "plaintext-secret",
            "us-east-1",
            "test: Access",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    assert!(format!("{kek:?}").contains("alias/kek-public-id"));
    assert!(kms_error(&e).to_string().contains("alias/kek-public-id"));
}

#[test]
fn backends_are_object_safe_and_declare_capabilities() {
    let rule = mock!(aws_sdk_kms::Client::sign).then_output(|| SignOutput::builder().build());
    let client = mocked(&[&rule], fast_policy(1));
    let signer: SharedBackend = Arc::new(KmsSigner::new(client.clone()));
    let kek: SharedBackend = Arc::new(KmsKek::new(client, KekId::new("alias/k").unwrap()));
    let caps = Capabilities::of(signer.as_ref());
    assert_eq!(signer.name(), "aws-kms");
    assert!(caps.signing.is_some_and(|k| k.stored && !k.hd));
    assert!(!caps.wrapping && !caps.exporting);
    let caps = Capabilities::of(kek.as_ref());
    assert!(caps.signing.is_none() && caps.wrapping && !caps.exporting);
    assert_eq!(kek.wrapping().unwrap().default_kek().as_str(), "alias/k");
    // A Sign answer without a signature is a typed error, not a panic.
    let (_, pinned) = local_key();
    let e = signer
        .signing()
        .unwrap()
        .sign_digest(SignRequest::new(
            &pinned,
            digest(1),
            Intent::raw_digest(),
            &auth(),
        ))
        .wait()
        .unwrap_err();
    assert_eq!(kms_error(&e).kind(), "malformed");
}

#[test]
fn dropping_the_client_inside_an_async_context_does_not_panic() {
    // The runtime a client owns is shut down in the background when the
    // last clone goes, even from a task of another runtime.
    let rule = mock!(aws_sdk_kms::Client::sign).then_output(|| SignOutput::builder().build());
    let client = mocked(&[&rule], fast_policy(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move { drop(client) });
}
