//! The AWS KMS test fixtures shared by `aws_kms.rs` and `conformance.rs`:
//! the emulator's endpoint (or a skip), SDK clients that count calls and
//! credential look-ups, key creation through the SDK, and a moto of a
//! test's own for fault tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_credential_types::provider::{ProvideCredentials, future};
use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_kms::error::BoxError;
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use custody_core::{Error, KeyId, KeyRef};
use custody_kms::{KmsClient, KmsError, RetryPolicy};

pub(crate) const ENDPOINT_VAR: &str = "CUSTODY_TEST_KMS_ENDPOINT";
pub(crate) const MOTO_VAR: &str = "CUSTODY_TEST_MOTO_SERVER";
/// The launcher in the shared tools beside the repository.
pub(crate) const DEFAULT_MOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/tools/moto_kms_server.py"
);
/// The Python that has moto installed (`.ci/run`'s virtualenv).
pub(crate) const PYTHON_VAR: &str = "CUSTODY_TEST_PYTHON";
/// Static test credentials: never real ones.
pub(crate) const ACCESS_KEY: &str = "AKIDCUSTODYTEST";
pub(crate) const SECRET_KEY: &str = "custody-test-secret-key-not-real";

// ---------------------------------------------------------------- fixtures

/// A stored key reference.
pub(crate) fn stored(id: &str) -> KeyRef {
    KeyRef::Stored(KeyId::new(id).unwrap())
}

/// The `KmsError` inside a core error, or a panic saying what came instead.
pub(crate) fn kms_error(e: &Error) -> &KmsError {
    match e {
        Error::Backend { source: src, .. } => src
            .downcast_ref::<KmsError>()
            .unwrap_or_else(|| panic!("not a KmsError: {e:?}")),
        other => panic!("not a backend error: {other:?}"),
    }
}

/// A `KmsClient` whose SDK answers from `rules` (no network), retrying as
/// `policy` says.
pub(crate) fn mocked(rules: &[&Rule], policy: RetryPolicy) -> KmsClient {
    let interceptor = rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::Sequential),
        |i, r| i.with_rule(r),
    );
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "custody-test",
        ))
        .http_client(create_mock_http_client())
        .interceptor(interceptor)
        .build();
    KmsClient::with_own_runtime(&aws_sdk_kms::Client::from_conf(config))
        .unwrap()
        .with_retry_policy(policy)
}

/// The emulator's endpoint, or `None` after saying the test is skipped.
pub(crate) fn endpoint(test: &str) -> Option<String> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            println!(
                "skipped {test}: set {ENDPOINT_VAR}=http://127.0.0.1:PORT to a KMS emulator (moto)"
            );
            None
        }
    }
}

/// Counts every HTTP request the SDK sends, by KMS operation (the
/// `X-Amz-Target` header, `TrentService.Sign`): one per try.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallCounter(Arc<Mutex<HashMap<String, usize>>>);

impl CallCounter {
    pub(crate) fn get(&self, operation: &str) -> usize {
        self.0.lock().unwrap().get(operation).copied().unwrap_or(0)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
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

/// Static credentials that count how often the SDK asks for them: once per
/// client (its identity cache), not once per call.
#[derive(Debug, Clone, Default)]
pub(crate) struct CountingCredentials(pub(crate) Arc<AtomicUsize>);

impl ProvideCredentials for CountingCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.0.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "custody-test",
        )))
    }
}

pub(crate) fn sdk_config(
    endpoint: &str,
    counter: &CallCounter,
    creds: &CountingCredentials,
) -> aws_sdk_kms::Config {
    aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(creds.clone())
        .endpoint_url(endpoint)
        .interceptor(counter.clone())
        .build()
}

/// A client on the emulator with call and credential counters.
pub(crate) struct Emulator {
    pub(crate) sdk: aws_sdk_kms::Client,
    pub(crate) client: KmsClient,
    pub(crate) calls: CallCounter,
    pub(crate) creds: CountingCredentials,
}

impl Emulator {
    pub(crate) fn new(endpoint: &str) -> Self {
        Self::with_policy(endpoint, RetryPolicy::new())
    }

    pub(crate) fn with_policy(endpoint: &str, policy: RetryPolicy) -> Self {
        let calls = CallCounter::default();
        let creds = CountingCredentials::default();
        let sdk = aws_sdk_kms::Client::from_conf(sdk_config(endpoint, &calls, &creds));
        let client = KmsClient::with_own_runtime(&sdk)
            .unwrap()
            .with_retry_policy(policy);
        Self {
            sdk,
            client,
            calls,
            creds,
        }
    }

    /// `CreateKey` through the SDK, on the client's runtime.
    pub(crate) fn create_key(&self, spec: KeySpec, usage: KeyUsageType) -> String {
        let sdk = self.sdk.clone();
        self.client.runtime().block_on_spawned(async move {
            let out = sdk
                .create_key()
                .key_spec(spec)
                .key_usage(usage)
                .send()
                .await
                .unwrap();
            out.key_metadata.unwrap().key_id
        })
    }

    pub(crate) fn signing_key(&self) -> String {
        self.create_key(KeySpec::EccSecgP256K1, KeyUsageType::SignVerify)
    }

    pub(crate) fn kek_key(&self) -> String {
        self.create_key(KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt)
    }
}

/// Runs a future on a runtime from a plain thread (fixtures only).
pub(crate) trait BlockOnSpawned {
    fn block_on_spawned<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T;
}

impl BlockOnSpawned for tokio::runtime::Handle {
    fn block_on_spawned<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        self.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap()
    }
}
