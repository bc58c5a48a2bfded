//! AWS KMS through custody against the same SDK call made raw, in the same
//! run, against the KMS emulator named by `CUSTODY_TEST_KMS_ENDPOINT`
//! (`.ci/run` and the README show how to start it):
//!
//! - `kms_paired/sign`: a digest signed through `KeySigner` over `KmsSigner`
//!   (one `Sign`, then custody's normalization: DER parsed, low-s, recovery
//!   id found against the pinned key) interleaved with a raw
//!   `aws_sdk_kms::Client::sign` of the same digest (see `Pairing`): the
//!   ratio is custody's overhead on a KMS signature (target <= 1.05);
//! - `kms_paired/open`: an envelope opened under `KmsKek` (one `Decrypt`,
//!   then AES-256-GCM) interleaved with a raw `Decrypt` of the same wrapped
//!   data key: the cold open of a KMS-wrapped secret;
//! - `kms_paired/keystore_open`: `Keystore::open_with` on a keystore whose
//!   root KEK is a KMS key (one `Decrypt` of the keyring; the master seed
//!   opened in process, checked against the xpub; the unwrap audited with
//!   one fsynced record) interleaved with a raw `Decrypt` of the keyring's
//!   wrapped data key.
//!
//! Every KMS request is counted by an SDK interceptor, and the counts per
//! operation are written beside the results (`calls.json`): exactly one
//! `Sign` per signature, no `GetPublicKey` after pin, one `Decrypt` per
//! open, of an envelope or of a whole keystore.

#![expect(
    clippy::unwrap_used,
    reason = "a bench's setup failing is the bench failing: unwrap says where"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};

use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_kms::error::BoxError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use criterion::{Criterion, criterion_group, criterion_main};
use custody_benches::{Pairing, save_calls};
use custody_core::{
    Authorization, CreateOptions, Digest32, EncryptionContext, Envelope, Intent, KekId, KeyId,
    KeyRef, KeySigner, Keystore, RootKek, Seed, SharedBackend, Unlock,
};
use custody_kms::{KmsClient, KmsKek, KmsSigner};

/// Counts the SDK's requests by KMS operation (`X-Amz-Target`).
#[derive(Debug, Clone, Default)]
struct Calls(Arc<Mutex<HashMap<String, u64>>>);

impl Calls {
    fn take(&self) -> HashMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let op = target.rsplit('.').next().unwrap_or_default().to_owned();
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

/// Writes the counts, sorted by operation, for `report.sh`.
fn save_kms_calls(name: &str, per: &str, n: u64, calls: &HashMap<String, u64>) {
    let mut ops: Vec<(&str, u64)> = calls.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    ops.sort_unstable();
    save_calls("kms_paired", name, per, n, &ops);
}

fn digest(i: u64) -> Digest32 {
    let mut d = [0x5a; 32];
    d[..8].copy_from_slice(&i.to_be_bytes());
    Digest32(d)
}

fn kms(c: &mut Criterion) {
    let Ok(endpoint) = std::env::var("CUSTODY_TEST_KMS_ENDPOINT") else {
        println!("skipped: set CUSTODY_TEST_KMS_ENDPOINT to a KMS emulator (moto)");
        return;
    };
    let calls = Calls::default();
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("bench", "bench", None, None, "bench"))
        .endpoint_url(endpoint)
        .interceptor(calls.clone())
        .build();
    let sdk = aws_sdk_kms::Client::from_conf(conf);
    let client = KmsClient::with_own_runtime(&sdk).unwrap();
    let rt = client.runtime().clone();
    let create = |spec: KeySpec, usage: KeyUsageType| {
        let sdk = sdk.clone();
        rt.block_on(async move {
            sdk.create_key()
                .key_spec(spec)
                .key_usage(usage)
                .send()
                .await
                .unwrap()
                .key_metadata
                .unwrap()
                .key_id
        })
    };
    let signing_id = create(KeySpec::EccSecgP256K1, KeyUsageType::SignVerify);
    let kek_id = create(KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt);

    let mut g = c.benchmark_group("kms_paired");
    g.sample_size(10);

    // Signing: pinned once (one GetPublicKey), then counted from here.
    let backend: SharedBackend = Arc::new(KmsSigner::new(client.clone()));
    let signer = KeySigner::pin(backend, KeyRef::Stored(KeyId::new(&signing_id).unwrap()))
        .wait()
        .unwrap();
    calls.take();
    let none = Authorization::none();
    let raw_sign = |i: u64| {
        let request = sdk
            .sign()
            .key_id(&signing_id)
            .message(Blob::new(digest(i).0.to_vec()))
            .message_type(MessageType::Digest)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256);
        black_box(rt.block_on(request.send()).unwrap());
    };
    let mut pairing = Pairing::default();
    let mut signatures = 0u64;
    g.bench_function("sign", |b| {
        b.iter_custom(|iters| {
            signatures += iters;
            let mut n = 0;
            pairing.run(
                iters,
                || {
                    raw_sign(n);
                    n += 1;
                },
                |i| {
                    let sig = signer
                        .sign(digest(i as u64), Intent::raw_digest(), &none)
                        .wait()
                        .unwrap();
                    black_box(sig);
                },
            )
        });
    });
    pairing.save("kms_paired", "sign");
    let mut counted = calls.take();
    // The raw baseline's Sign calls are as many as custody's.
    if let Some(sign) = counted.get_mut("Sign") {
        *sign -= signatures;
    }
    save_kms_calls("sign", "signature", signatures, &counted);

    // Opening an envelope under the KMS KEK: one Decrypt.
    let kek = KmsKek::new(client.clone(), KekId::new(&kek_id).unwrap());
    let context = EncryptionContext::new().with("purpose", "bench").unwrap();
    let envelope = Envelope::seal(&kek, &KekId::new(&kek_id).unwrap(), &context, &[7; 64])
        .wait()
        .unwrap();
    let wrapped = envelope.wrapped_key().to_vec();
    calls.take();
    let raw_decrypt = || {
        let request = sdk
            .decrypt()
            .key_id(&kek_id)
            .ciphertext_blob(Blob::new(wrapped.clone()))
            .encryption_context("purpose", "bench");
        black_box(rt.block_on(request.send()).unwrap());
    };
    let mut pairing = Pairing::default();
    let mut opens = 0u64;
    g.bench_function("open", |b| {
        b.iter_custom(|iters| {
            opens += iters;
            pairing.run(iters, raw_decrypt, |_| {
                black_box(envelope.open(&kek, &context).wait().unwrap());
            })
        });
    });
    pairing.save("kms_paired", "open");
    let mut counted = calls.take();
    if let Some(decrypt) = counted.get_mut("Decrypt") {
        *decrypt -= opens;
    }
    save_kms_calls("open", "open", opens, &counted);

    // The cold open of a keystore whose root KEK is this KMS key: read
    // keystore.json, one Decrypt of the keyring, then the master seed
    // opened under the keyring in process, checked against the xpub, and
    // the unwrap audited (one fsynced record).
    let dir = tempfile::tempdir().unwrap();
    let kek_backend: SharedBackend = Arc::new(kek.clone());
    drop(
        Keystore::create_with(
            dir.path(),
            RootKek::Backend {
                uri: &format!("aws-kms:{kek_id}"),
                backend: kek_backend.clone(),
            },
            &Seed::new([0x42; 64]),
            &CreateOptions::light().unwrap(),
        )
        .unwrap(),
    );
    let keyring = Envelope::from_vec(
        std::fs::read(dir.path().join("secrets.1").join("keyring.env")).unwrap(),
    )
    .unwrap();
    let fingerprint = Keystore::open_with(dir.path(), Unlock::Backend(kek_backend.clone()))
        .unwrap()
        .fingerprint();
    // The keyring's context (SPEC.md, "Keystore directory v2").
    let fingerprint: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
    let keyring_context = EncryptionContext::new()
        .with("custody", "keyring")
        .unwrap()
        .with("fingerprint", &format!("0x{fingerprint}"))
        .unwrap();
    let wrapped = keyring.wrapped_key().to_vec();
    calls.take();
    let raw_keyring_decrypt = || {
        let mut request = sdk
            .decrypt()
            .key_id(&kek_id)
            .ciphertext_blob(Blob::new(wrapped.clone()));
        for (k, v) in keyring_context.iter() {
            request = request.encryption_context(k, v);
        }
        black_box(rt.block_on(request.send()).unwrap());
    };
    let mut pairing = Pairing::default();
    let mut opens = 0u64;
    g.bench_function("keystore_open", |b| {
        b.iter_custom(|iters| {
            opens += iters;
            pairing.run(iters, raw_keyring_decrypt, |_| {
                black_box(
                    Keystore::open_with(dir.path(), Unlock::Backend(kek_backend.clone())).unwrap(),
                );
            })
        });
    });
    pairing.save("kms_paired", "keystore_open");
    let mut counted = calls.take();
    if let Some(decrypt) = counted.get_mut("Decrypt") {
        *decrypt -= opens;
    }
    save_kms_calls("keystore_open", "open", opens, &counted);
    g.finish();
}

criterion_group!(benches, kms);
criterion_main!(benches);
